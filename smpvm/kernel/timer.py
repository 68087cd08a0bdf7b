"""Linux timers (``struct timer_list``): a callback run later, in softirq context.

``t = Timer(m, "sc_timer", callback, *args, owner=sc)`` is ``timer_setup``;
``yield t.mod_timer(delay_ns)`` arms it: after ``delay_ns`` the timer
softirq (an interrupt at ``SPLSOFT``) on the CPU that armed it runs
``callback(*args)``, a generator function.  The semantics follow
``kernel/time/timer.c``:

* ``mod_timer`` on a pending timer moves it; a callback may re-arm its own
  timer.  A timer re-armed while its callback runs stays on the running
  callback's CPU.
* ``del_timer`` removes a pending timer and never waits: the callback may be
  running on another CPU when it returns, and may re-arm the timer.
* ``del_timer_sync`` (``timer_delete_sync``) also waits, spinning, until a
  running callback has finished; the callback's own re-arm is removed when
  the loop retries.  Called with a lock the callback takes, it deadlocks:
  lockdep's annotation (the timer as a pseudo-lock, held by the callback,
  taken by ``del_timer_sync`` with interrupts off) makes witness report the
  circular dependency even in runs where the callback is not running.
* ``timer_shutdown_sync`` is ``del_timer_sync`` after which every
  ``mod_timer`` is silently ignored.

Freeing ``owner`` (the structure the timer is embedded in) while the timer
is pending or its callback runs is a ``use-after-free`` naming the timer
(``ODEBUG: free active object type: timer_list`` for a pending one).
Callbacks run in softirq context: sleeping in one is ``sleep-in-atomic``,
and a lock they take must be taken elsewhere with ``spin_lock_bh`` or
``spin_lock_irqsave``, or witness reports ``{IN-SOFTIRQ-W} -> {SOFTIRQ-ON-W}``
and the search can find the CPU spinning on a lock it holds.
"""

from __future__ import annotations

from ..locks.pseudo import LockMap
from ..memory import watch_free
from ..ops import SPLHIGH, SPLSOFT
from .waits import Kobj, op, wait_for


class Timer(Kobj):
    """A Linux ``struct timer_list``: ``mod_timer`` arms it, ``del_timer`` removes it, ``del_timer_sync`` also waits.

    The callback runs in softirq context on the arming CPU (``cpu`` pins
    it); ``owner`` is the item the timer is embedded in (freeing it while the
    timer is pending or running is a use-after-free naming it).
    """

    kind = "timer_list"
    deferred = ("callback", "args")

    def __init__(self, m, name: str, callback, *args, owner=None, cpu: int | None = None):
        super().__init__(m, name)
        #: The callback (a generator function) and its arguments.
        self.callback = callback
        self.args = args
        #: CPU it is pinned to (``add_timer_on``); None: the arming CPU.
        self.cpu = cpu
        #: Armed and not yet started (``timer_pending``).
        self.pending = False
        #: Bumped at every arming; a softirq run for an older arming does nothing.
        self.gen = 0
        #: The CPU running the callback (``base->running_timer``), or None.
        self.running = None
        #: ``timer_shutdown``: later arming is ignored.
        self.shut_down = False
        #: The CPU of the current or last arming.
        self.armed_cpu = None
        #: Where the current arming was made, for reports.
        self.armed_at = ""
        #: Lockdep's map for the timer: held by the callback, taken by ``del_timer_sync``.
        self.map = LockMap(m, f"({name})")
        if owner is not None:
            watch_free(owner, self._freed)

    # -- the API ------------------------------------------------------------------------

    def mod_timer(self, delay_ns: int, slack_ns: int = 0):
        """``was_pending = yield t.mod_timer(delay_ns)``: arm (or move) the timer.

        ``slack_ns``: the timer may expire anywhere from ``delay_ns`` to
        ``delay_ns + slack_ns`` (the timer wheel's granularity, timer slack),
        and the search places it there (an interrupt given a window).
        """
        return op(lambda m, c: self._arm(m, c, int(delay_ns), int(slack_ns)))

    def add_timer(self, delay_ns: int, slack_ns: int = 0):
        """``yield t.add_timer(delay_ns)``: arm a timer that is not pending (``slack_ns``: as
        for ``mod_timer``)."""
        return op(lambda m, c: self._arm(m, c, int(delay_ns), int(slack_ns)))

    def del_timer(self):
        """``was_pending = yield t.del_timer()``: remove it if pending; never waits for the callback."""
        return op(lambda m, c: self._detach())

    def del_timer_sync(self):
        """``was_pending = yield t.del_timer_sync()``: remove it and spin until its callback is done."""
        return self._sync(shutdown=False)

    def timer_shutdown_sync(self):
        """``yield t.timer_shutdown_sync()``: ``del_timer_sync``, then ignore every later arming."""
        return self._sync(shutdown=True)

    def timer_pending(self) -> bool:
        """``timer_pending``: armed and not yet started."""
        self.touch(write=False)
        return self.pending

    # -- mechanics ---------------------------------------------------------------------------

    def _arm(self, m, c, delay_ns, slack_ns=0):
        self.touch()
        if self.shut_down:
            return 0
        was = int(self.pending)
        if self.running is not None:
            cpu = self.running.id  # stays on the running callback's base
        elif self.cpu is not None:
            cpu = self.cpu
        else:
            cpu = c.id
        self.pending = True
        self.gen += 1
        self.armed_cpu = cpu
        self.armed_at = m.site(c) if m.sites else ""
        gen = self.gen
        at = m.now + delay_ns
        when = {"window": (at, at + slack_ns)} if slack_ns > 0 else {"at_ns": at}
        m.interrupt(cpu, SPLSOFT, lambda: self._expire(gen), name=f"timer:{self.name}", **when)
        return was

    def _detach(self):
        self.touch()
        was = int(self.pending)
        self.pending = False
        return was

    def _sync(self, shutdown):
        def start(c):
            m = self.m
            # lockdep's annotation: the timer's map, taken with interrupts off
            old, c.spl = c.spl, max(c.spl, SPLHIGH)
            try:
                m.witness.before_acquire(c, self.map, "x", False, m.site(c) if m.sites else "")
            finally:
                c.spl = old
            if shutdown:
                self.touch()
                self.shut_down = True

        def finish(c):
            return self._detach()

        what = "timer_shutdown_sync" if shutdown else "del_timer_sync"
        return wait_for(self, lambda c: self.running is None, finish, f"{what}({self.name})",
                        sleeps=False, start=start)

    def _expire(self, gen):
        """call_timer_fn: one run of the callback, in softirq context."""
        self.touch()
        if not self.pending or gen != self.gen:
            return  # deleted or re-armed since
        self.pending = False
        self.running = self.m.current
        yield self.map.acquire()
        yield from self.callback(*self.args)
        yield self.map.release()
        self.touch()
        self.running = None
        self.waiters.wake_all()

    def _freed(self, m, c, owner) -> None:
        if self.pending:
            m.fail("use-after-free", f"free of {owner.label()} with {self.label()} still pending "
                   f"(armed at {self.armed_at or '?'}, to fire on CPU{self.armed_cpu}) "
                   f"(ODEBUG: free active object type: timer_list): del_timer_sync() it first",
                   extra={"object": owner.label(), "timer": self.name})
        elif self.running is not None:
            m.fail("use-after-free", f"free of {owner.label()} while the callback of "
                   f"{self.label()} runs on CPU{self.running.id}: del_timer() does not wait "
                   f"for it; del_timer_sync() does", extra={"object": owner.label(),
                                                           "timer": self.name})
