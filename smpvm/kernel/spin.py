"""Spin-waits: ``cpu_relax`` and ``spin_until``, and telling a CPU that waits by
re-checking from one that works.

Kernel code waits for another CPU by polling: ``while (!done) cpu_relax();``.
A model writes it ``while not flag.done: yield pause()``.  To a scheduler
that is a CPU that is always ready to step, and a strategy that keeps
choosing it (PCT's highest priority, ``dfs``'s first branch, or the timed
view, where a pause takes no time) starves the CPU it waits for: a correct
fix then looks like a hang.

A *spin* is a pause at the same place (same code, same offset, same frame
depth) as the CPU's previous pause, with the locals of the pausing code
unchanged since then: one more turn of a loop that has learnt nothing.
``paused`` is called by every pause and keeps, per machine:

* the number of spins of each CPU, which the search strategies read to
  schedule fairly (``smpvm.strategies.fair``: after a spin, a CPU waits
  until the CPUs it could be waiting for have stepped, as in Musuvathi and
  Qadeer, "Fair stateless model checking", PLDI 2008);
* a charge of ``SPIN_NS`` per spin, so that in the timed view the spinning
  CPU's clock moves and the others get their turn;
* **livelock detection**: when every runnable CPU (two or more) has spun
  ``LIVELOCK_ROUNDS`` times in a row -- every one of them turning in its
  loop, none doing anything else, no interrupt to come -- nothing can ever
  change what they read, and the run ends with a ``livelock`` naming the
  CPUs and where each spins.  A CPU that works, sleeps on a lock or pauses
  elsewhere meanwhile starts the count again.  (One CPU spinning alone is
  left to ``max_steps``: what it waits for may be a lock holder's thread
  that is gone, which the stall report describes better.)
"""

from __future__ import annotations

from ..cpu import RUNNABLE
from ..ops import pause

#: Time one spin iteration takes (a PAUSE instruction and a re-read), ns.
SPIN_NS = 10
#: Rounds in which every runnable CPU spins, in a row, that make a livelock.
LIVELOCK_ROUNDS = 1000


class SpinWatch:
    """Spins of one run (see the module docstring)."""

    def __init__(self, m):
        self.m = m
        #: CPU id -> spins so far.
        self.spins: dict[int, int] = {}
        #: CPU id -> (site token, frame depth, locals) of its previous pause.
        self.last: dict[int, tuple] = {}
        #: CPU id -> where it spins now (site token), for the livelock report.
        self.where: dict[int, object] = {}
        #: Rounds in a row in which every runnable CPU spun.
        self.rounds = 0
        #: CPUs still to spin in the current round.
        self.pending: set = set()

    def paused(self, c) -> bool:
        """CPU ``c`` paused; True when that was a spin."""
        m = self.m
        token = m.site_token(c)
        depth = len(c.frames)
        local = _locals(c)
        prev = self.last.get(c.id)
        self.last[c.id] = (token, depth, local)
        if prev is None or prev[0] != token or prev[1] != depth or not _same(prev[2], local):
            self._restart()
            return False
        self.spins[c.id] = self.spins.get(c.id, 0) + 1
        self.where[c.id] = token
        c.clock += SPIN_NS
        self._count_round(c)
        return True

    def _restart(self) -> None:
        self.rounds = 0
        self.pending = set()

    def _count_round(self, c) -> None:
        if not self.pending:
            self.pending = {o.id for o in self.m.cpus if o.state == RUNNABLE and o.frames}
        self.pending.discard(c.id)
        if self.pending:
            return
        self.rounds += 1
        if self.rounds >= LIVELOCK_ROUNDS:
            self._livelock(c)

    def _livelock(self, c) -> None:
        m = self.m
        cpus = [o for o in m.cpus if o.state == RUNNABLE and o.frames]
        if len(cpus) < 2 or any(o.irqs for o in m.cpus):
            self.rounds = 0  # one CPU alone, or an interrupt yet to come: not proven stuck
            return
        parts = [f"CPU{o.id} ({o.ctx}) at {m.site_name(self.where.get(o.id))}" for o in cpus]
        names = " -> ".join(f"CPU{o.id}" for o in cpus + cpus[:1])
        m.fail("livelock", f"livelock: {names}: each CPU spins waiting for another and none "
                           f"changes what they read ({self.rounds} rounds): " + "; ".join(parts),
               c, extra={"cycle": [f"CPU{o.id}" for o in cpus],
                         "spins": [{"cpu": o.id, "thread": o.ctx,
                                    "site": m.site_name(self.where.get(o.id)),
                                    "spins": self.spins.get(o.id, 0)} for o in cpus]})


def paused(m, c) -> None:
    """Called by every ``pause()`` operation (see the module docstring)."""
    w = m.spin_watch
    if w is None:
        w = m.spin_watch = SpinWatch(m)
    w.paused(c)


def watch_of(m):
    """The run's ``SpinWatch``, or None while no CPU of ``m`` has paused."""
    return m.spin_watch


def _locals(c):
    """The locals of the innermost generator ``c`` runs (what a spin re-reads)."""
    g = c.frames[-1].gen if c.frames else None
    while g is not None and getattr(g, "gi_yieldfrom", None) is not None and \
            getattr(g.gi_yieldfrom, "gi_frame", None) is not None:
        g = g.gi_yieldfrom
    f = getattr(g, "gi_frame", None)
    return dict(f.f_locals) if f is not None else {}


def _same(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    for k, v in a.items():
        w = b[k]
        if v is w:
            continue
        try:
            if not bool(v == w):
                return False
        except Exception:
            return False
    return True


# -- busy-waiting in the kernel's words ---------------------------------------------------
#
# Kernel code that waits for another CPU without sleeping polls a condition,
# relaxing the CPU between reads (Linux ``cpu_relax()``, FreeBSD
# ``cpu_spinwait()``): ``del_timer_sync`` waiting for a handler running
# elsewhere, a detach polling a "busy" flag.  In a model:
#
#     while timer.running:
#         yield cpu_relax()
#
# or, the same loop in one line, ``yield from spin_until(lambda: not timer.running)``.
#
# Both are ``pause()`` underneath, and every strategy treats a pause repeated
# in place as a spin (``smpvm.kernel.spin``): the search re-runs the spinning CPU
# only after the others have stepped, the timed view charges each turn a few
# nanoseconds, and CPUs that spin on each other forever are reported as a
# ``livelock`` naming each CPU and where it spins.


def cpu_relax():
    """One turn of a busy-wait loop: ``yield cpu_relax()`` (a ``pause()``)."""
    return pause()


def spin_until(cond):
    """Busy-wait until ``cond()`` is true: ``yield from spin_until(lambda: flag.done)``.

    ``cond`` is re-read after every turn; reading it through model state
    (zone item fields, ``SharedList``...) lets the search see what it waits for.
    """
    if not callable(cond):
        raise TypeError(f"spin_until() needs a function to re-check, got {cond!r}")
    while not cond():
        yield pause()
