"""What every simulated lock shares: owners, waiters, hand-off, misuse checks.

A lock has a *class* (``name``: what witness and lock statistics group by,
like a WITNESS type or a lockdep class) and an optional *instance* (which
object it protects).  It is held exclusively (mode ``"x"``) or, for kinds that
allow it, shared (``"s"``).

Acquisition is an operation the model yields.  If the lock can be granted the
CPU pays the uncontended cost (plus a cache-line transfer when another CPU
touched the lock last) and goes on.  Otherwise the CPU waits: it spins or
blocks according to the kind, and stops being runnable.

On release the lock goes to a waiter.  Under the ``timed`` strategy it is
handed straight to one waiter (the first for FIFO kinds; for the others the
strategy chooses, since the real lock does not fix the order).  Under the
exploration strategies every compatible waiter becomes runnable again and
retries, so the strategy's choice of which CPU steps next decides the race,
the way a model checker sees it.

A waiter that spins with interrupts enabled takes them, as on hardware: it
leaves the line for the handler and waits again afterwards (the machine's
``spin_wait_irqs``).  A handler that wants a lock the context it interrupted
holds would spin for ever on its own CPU: a deadlock, reported as such.

Misuse is a violation, not a crash: recursion on a non-recursive lock,
releasing a lock one does not hold, taking a lock shared while holding it
exclusive.

Each kind in this package is a subclass that sets a few class attributes:

* ``spin``: holding it forbids blocking on a non-spin lock and sleeping.
* ``sleepable``: acquiring it may sleep (sx, Linux mutex).
* ``waiters_spin``: True, waiters busy-wait; False, they block; None,
  adaptive (spin while the owner runs, block otherwise).
* ``fifo``: the real lock grants in arrival order.
* ``reader_preferring``: new readers pass waiting writers.
* ``read_recursive``: a CPU that reads may read again past waiting writers.
* ``disables_irqs``: holding it keeps interrupts off this CPU.

Two more are derived from those for the hot paths: ``racing_waiters`` (the
timed hand-off may draw the next holder directly) and ``holds_overlap``
(utilisation must track busy stretches rather than add up hold times).
"""

from __future__ import annotations


from ..cpu import BLOCKED as CPU_BLOCKED
from ..cpu import RUNNABLE as CPU_RUNNABLE
from ..cpu import Held
from ..ops import BLOCKED, ISSUED, Op
from ..lockorder import SPL_MASKED


class Acquire(Op):
    """Take ``lock`` in ``mode``; for a trylock, evaluates to True or False."""

    __slots__ = ("lock", "mode", "trylock")

    def __init__(self, lock, mode, trylock):
        self.lock = lock
        self.mode = mode
        self.trylock = trylock

    def execute(self, m, c):
        return self.lock._acquire(m, c, self.mode, self.trylock)


class Release(Op):
    """Release ``lock`` held in ``mode``."""

    __slots__ = ("lock", "mode")

    def __init__(self, lock, mode):
        self.lock = lock
        self.mode = mode

    def execute(self, m, c):
        return self.lock._release(m, c, self.mode)


class Lifecycle(Op):
    """``init()`` or ``destroy()`` of ``lock``: witness checks that nobody holds it."""

    __slots__ = ("lock", "what")

    def __init__(self, lock, what):
        self.lock = lock
        self.what = what

    def execute(self, m, c):
        m.witness.check_lifecycle(c, self.lock, self.what)
        if m.tracing:
            m.record(c, self.what, self.lock.label(), "")
        m.footprint_touch(self.lock._fp_key)
        return None


class Lock:
    """Base of every lock kind: a class name, an instance, holders and waiters.

    Subclasses set class attributes that say how the kind behaves (``spin``,
    ``sleepable``, ``waiters_spin``, ``fifo``, ``reader_preferring``,
    ``read_recursive``, ``disables_irqs``); model code uses the kind's own
    operations (``lock()``/``unlock()`` and the kernel's names) and yields them.
    """

    kind = "lock"
    spin = False
    sleepable = False
    waiters_spin = True
    fifo = False
    recursive = False
    reader_preferring = False
    read_recursive = False
    disables_irqs = False
    shared_allowed = False
    pseudo = False

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        cls.racing_waiters = cls._racing_waiters()
        cls.holds_overlap = cls.shared_allowed or cls.pseudo

    @classmethod
    def _racing_waiters(cls) -> bool:
        """Exclusive only, no arrival order, flat hand-off cost: the timed hand-off's fast path."""
        return (not cls.fifo and not cls.shared_allowed
                and cls.handoff_cost is Lock.handoff_cost)

    def __init__(self, m, name: str, instance=None, *, recursive: bool | None = None,
                 dupok: bool = False, subclass: int = 0):
        #: The machine this lock lives in.
        self.m = m
        #: Lock class name: what witness and statistics group by.
        self.name = name
        #: Which object this instance protects (a label), or None.
        self.instance = None if instance is None else str(instance)
        #: Witness class: the name, plus a nesting subclass when given.
        self.cls = name if not subclass else f"{name}/{subclass}"
        #: Nested acquisition of two instances of this class is allowed.
        self.dupok = dupok
        if recursive is not None:
            self.recursive = recursive
        #: The CPU holding the lock exclusively, or None.
        self.owner = None
        #: Shared holders: CPU id -> number of shared holds.
        self.readers: dict[int, int] = {}
        #: CPUs waiting, in arrival order (their wait mode is ``cpu.wait_mode``).
        self.waiters: list = []
        #: CPU that touched the lock's cache line last (-1: nobody yet).
        self.last_cpu = -1
        #: Stable number of this lock within its machine.
        self.uid = m.register_lock(self)
        #: Statistics record of the lock's class (None when statistics are off).
        self.stat = m.lockstat.for_lock(self) if m.lockstat is not None else None
        self._fp_key = ("lock", self.uid)
        # Operations are immutable, so each lock keeps one of each and hands it out
        # again: a lock() allocates nothing.  The exclusive pair is the common case.
        self._lock_x = Acquire(self, "x", False)
        self._unlock_x = Release(self, "x")
        #: The other operations, made when first asked for (most locks never are).
        self._ops = None
        #: When the lock last went from free to held (for utilisation).
        self.busy_since = 0
        # A released hold's record, for the next acquisition to reuse (see ``_take``).
        self._spare_held = None
        #: Lowest spl at which witness has seen this lock taken with nothing else held.
        self._witness_seen_spl = SPL_MASKED + 1

    def retire(self) -> None:
        """The run is over: drop the operations and the spare hold record, which refer
        back to the lock, so that reference counting frees it (``Machine.dismantle``)."""
        self._lock_x = self._unlock_x = self._ops = self._spare_held = None
        self.waiters.clear()
        self.owner = None
        self.readers.clear()

    # -- naming ---------------------------------------------------------------

    def label(self) -> str:
        """``name[instance]`` (or the class name alone): how reports name this lock."""
        return self.name if self.instance is None else f"{self.name}[{self.instance}]"

    def __repr__(self) -> str:
        return f"<{self.kind} {self.label()}>"

    # -- operations the model yields --------------------------------------------

    def _op(self, mode: str, trylock: bool = False) -> Acquire:
        ISSUED[0] += 1  # handed to the model (see ops.ISSUED)
        if mode == "x" and not trylock:
            return self._lock_x
        ops = self._ops
        if ops is None:
            ops = self._ops = {}
        key = (mode, trylock)
        op = ops.get(key)
        if op is None:
            op = ops[key] = Acquire(self, mode, trylock)
        return op

    def _rel(self, mode: str) -> Release:
        ISSUED[0] += 1
        if mode == "x":
            return self._unlock_x
        ops = self._ops
        if ops is None:
            ops = self._ops = {}
        key = ("rel", mode)
        op = ops.get(key)
        if op is None:
            op = ops[key] = Release(self, mode)
        return op

    def init(self):
        """Initialise the lock again (Linux ``spin_lock_init``, ``mutex_init``, ...).

        Re-initialising a lock someone holds is reported, as lockdep does.
        """
        return Lifecycle(self, "init")

    def destroy(self):
        """Destroy the lock (FreeBSD ``mtx_destroy``, ``sx_destroy``, ``rw_destroy``).

        Destroying a lock someone holds is reported, as WITNESS does.
        """
        return Lifecycle(self, "destroy")

    # -- state queries ------------------------------------------------------------

    def held_by(self, c) -> bool:
        """True when CPU ``c`` holds this lock, exclusively or shared."""
        return self.owner is c or c.id in self.readers

    def holders(self) -> list:
        """CPUs holding the lock (owner, or readers in id order)."""
        if self.owner is not None:
            return [self.owner]
        return [self.m.cpus[i] for i in sorted(self.readers)]

    def can_grant(self, c, mode: str) -> bool:
        """Could ``c`` take the lock in ``mode`` right now?"""
        if self.owner is not None:
            return False
        if mode == "x":
            return not self.readers
        if self.reader_preferring:
            return True
        if self.read_recursive and c.id in self.readers:
            return True
        for w in self.waiters:
            if w.wait_mode == "x":
                return False
        return True

    # -- acquisition ----------------------------------------------------------------

    def _acquire(self, m, c, mode, trylock):
        if c.wait_lock is self:
            return self._retry(m, c, mode)
        if c.held:
            h = c.holding(self)
            if h is not None:
                if h.depth < c.irq_depth and (mode == "x" or h.mode == "x"):
                    return self._held_below(m, c, h, mode, trylock)
                if not self._recursion_ok(m, c, h, mode):
                    return BLOCKED  # not reached: recursion is fatal and stops the run
                if h.mode == "x" and mode == "x":
                    h.count += 1
                    c.clock += m.costs.acquire_ns
                    if m.tracing:
                        m.record(c, "acquire", self.label(), "x (recursed)")
                    return True if trylock else None
        if m.sites:  # Machine.site_token(), inline for a thread not inside a ``yield from``
            g = c.frames[-1].gen
            if g.gi_yieldfrom is None:
                f = g.gi_frame
                site = (f.f_code, f.f_lasti)
            else:
                site = m.site_token(c)
        else:
            site = None
        witness = m.witness
        if witness.enabled:
            if c.held or c.irq_depth or mode != "x":
                witness.before_acquire(c, self, mode, trylock, m.site_name(site))
            else:
                # Nothing held, thread context: witness only notes the spl this class is
                # taken at, and has nothing to learn at or above a level it already saw.
                spl = SPL_MASKED if c.irq_off or self.disables_irqs else c.spl
                if spl < self._witness_seen_spl or (spl and self.sleepable):
                    witness.before_acquire(c, self, mode, trylock, m.site_name(site))
                    if spl < self._witness_seen_spl:
                        self._witness_seen_spl = spl
        if mode == "x" and not self.pseudo:  # can_grant(), inline for the common case
            free = self.owner is None and not self.readers
        else:
            free = self.can_grant(c, mode)
        if free:
            self._take(m, c, mode, site, c.clock, False)
            return True if trylock else None
        if trylock:
            if self.stat is not None:
                self.stat.try_failures += 1
            if m.tracing:
                m.record(c, "trylock-fail", self.label(), mode)
            m.footprint_touch(self._fp_key)
            c.clock += m.costs.acquire_ns
            return False
        # Wait (written out here: every contended acquisition comes this way).
        c.wait_lock = self
        c.wait_mode = mode
        c.wait_since = c.clock
        c.wait_site = site
        spins = self.waiters_spin
        if spins is None:  # adaptive: spin while every holder is running
            owner = self.owner
            if owner is not None:
                spins = owner.state == 0
            else:
                spins = all(h.state == 0 for h in self.holders())
        c.wait_spins = spins
        self.waiters.append(c)
        if m.tracing:
            m.record(c, "wait", self.label(), "spin" if spins else "block")
        if m.footprint is not None:
            m.footprint[self._fp_key] = True
        c.state = CPU_BLOCKED
        if c.irqs and spins:
            m.spin_wait_irqs(c)  # it takes interrupts while it spins
        return BLOCKED

    def _retry(self, m, c, mode):
        """Exploration: a waiter let run again after a release tries once more."""
        if self.can_grant(c, mode):
            self.waiters.remove(c)
            c.wait_lock = None
            self._take(m, c, mode, c.wait_site, c.wait_since, True)
            return None
        if m.footprint is not None:
            m.footprint[self._fp_key] = True  # a failed retry read the lock too
        c.state = CPU_BLOCKED
        if c.irqs:
            m.spin_wait_irqs(c)
        return BLOCKED

    def _held_below(self, m, c, h, mode, trylock):
        """An interrupt handler wants a lock that the context it interrupted holds.

        The holder cannot run until the handler returns, and the handler spins
        until the holder releases: the CPU hangs (the classic lock taken in a
        handler without masking that interrupt around the thread's hold).
        """
        if trylock:
            if m.tracing:
                m.record(c, "trylock-fail", self.label(), mode)
            c.clock += m.costs.acquire_ns
            return False
        below = c.frames[h.depth].ctx if h.depth < len(c.frames) else c.name
        m.fail("deadlock", f"deadlock: CPU{c.id} interrupted while holding {self.label()} "
               f"(taken by {below} at {h.site or '?'}); {c.ctx} waits for {self.label()} "
               f"at {m.site(c)}, and {below} cannot release it until the handler returns", c,
               extra={"cycle": [f"CPU{c.id}"],
                      "waits": [{"cpu": c.id, "thread": c.ctx, "lock": self.label(),
                                 "channel": None, "site": m.site(c),
                                 "held_by": below, "held_at": h.site}]})
        return BLOCKED

    def _recursion_ok(self, m, c, h, mode) -> bool:
        if h.mode == "x" and mode == "x":
            if self.recursive:
                return True
            m.fail("recursion", f"recursive acquisition of non-recursive {self.kind} "
                   f"{self.label()} (first taken at {h.site or '?'})", c)
        if h.mode == "x" and mode == "s":
            m.fail("recursion", f"shared acquisition of {self.kind} {self.label()} "
                   f"already held exclusive (taken at {h.site or '?'})", c)
        if h.mode == "s" and mode == "x":
            m.fail("recursion", f"exclusive acquisition of {self.kind} {self.label()} "
                   f"already held shared (taken at {h.site or '?'}): self-deadlock", c)
        return True  # shared after shared: a second reader hold

    def _take(self, m, c, mode, site, requested_ns, contended) -> None:
        """Make ``c`` a holder and charge the acquisition; ``c.clock`` is the grant time."""
        # busy stretches matter only where holds overlap (see ``holds_overlap``)
        was_free = self.holds_overlap and self.owner is None and not self.readers
        if mode == "x":
            self.owner = c
        else:
            self.readers[c.id] = self.readers.get(c.id, 0) + 1
        bounce = self.last_cpu != c.id and self.last_cpu >= 0
        if not contended:
            cost = m.costs.acquire_ns + (m.costs.cacheline_ns if bounce else 0)
            if cost:
                c.clock += m.duration(cost)
        self.last_cpu = c.id
        if was_free:
            self.busy_since = c.clock
        h = c.holding(self) if mode == "s" else None
        if h is not None:
            h.count += 1
        else:
            h = self._spare_held
            if h is None:
                h = Held(self, mode, site, c.clock, c.irq_depth)
            else:  # the record of the last release, reused: no allocation per acquisition
                self._spare_held = None
                h.mode = mode
                h._site = site
                h.since_ns = c.clock
                h.count = 1
                h.depth = c.irq_depth
            c.held.append(h)
        if self.disables_irqs:
            c.irq_off += 1
        st = self.stat
        if st is not None:  # inline: this runs on every acquisition
            if contended:
                # only a contended acquisition waited (as lock_stat and LOCK_PROFILING count)
                st.contended += 1
                st.waits.append(c.clock - requested_ns)
            else:
                st.waits.append(0)
            if bounce:
                st.bounces += 1
        if m.tracing:
            if c is m.current:
                m.record(c, "acquire", self.label(), mode)
            else:
                c.granted = self.label()  # traced when the new holder next steps
        if m.footprint is not None:
            m.footprint[self._fp_key] = True
        if self.waiters and not m.timed:
            self.reblock_retriers(m)

    # -- release -------------------------------------------------------------------------

    def _release(self, m, c, mode):
        held = c.held
        h = held[-1] if held else None  # locks are mostly released in reverse order
        if h is None or h.lock is not self:
            h = c.holding(self)
        if h is None or (mode is not None and h.mode != mode):
            what = "not held" if h is None else f"held {h.mode}, released {mode}"
            m.fail("unlock-not-held", f"release of {self.kind} {self.label()} {what} "
                   f"by CPU{c.id}", c)
            return BLOCKED
        held_mode = h.mode  # h may be reused once dropped
        released = h.count == 1
        if released:
            self._drop(m, c, h)
        else:  # one level of a recursed hold: the lock stays held
            h.count -= 1
            if held_mode == "s":
                self.readers[c.id] -= 1
        c.clock += m.costs.release_ns
        if m.tracing:
            m.record(c, "release", self.label(), held_mode)
        if m.footprint is not None:
            m.footprint[self._fp_key] = True
        if released and self.waiters:
            self.handoff(m, c.clock)
        return None

    def _drop(self, m, c, h) -> None:
        held = c.held
        if held[-1] is h:
            held.pop()
        else:
            held.remove(h)
        if h.mode == "x":
            self.owner = None
        else:
            n = self.readers[c.id] - 1
            if n:
                self.readers[c.id] = n
            else:
                del self.readers[c.id]
        st = self.stat
        if st is not None:
            st.holds.append(c.clock - h.since_ns)
            if self.holds_overlap and self.owner is None and not self.readers:
                st.busy += c.clock - self.busy_since  # free again: count the busy stretch
        if self.disables_irqs:
            c.irq_off -= 1
            if not c.irq_off and c.held:
                m.witness.irqs_enabled(c)  # the locks still held are now held unmasked
        self.last_cpu = c.id
        self._spare_held = h  # nothing keeps a Held past its release

    def release_for_sleep(self, m, c) -> bool:
        """Drop the lock for an ``msleep``; False (after reporting) if not held."""
        h = c.holding(self)
        if h is None:
            m.fail("unlock-not-held", f"msleep on {self.kind} {self.label()} not held", c)
            return False
        held_mode = h.mode  # h may be reused once dropped
        self._drop(m, c, h)
        if m.tracing:
            m.record(c, "release", self.label(), held_mode)
        m.footprint_touch(self._fp_key)
        if self.waiters:
            self.handoff(m, c.clock)
        return True

    def grant_waiter(self, m, w, now_ns, handoff_ns) -> None:
        """Hand the released lock to waiter ``w`` (timed and FIFO hand-off)."""
        waiters = self.waiters
        if waiters[0] is w:
            del waiters[0]
        else:
            waiters.remove(w)
        self.grant_removed_waiter(m, w, now_ns, handoff_ns)

    def grant_removed_waiter(self, m, w, now_ns, handoff_ns) -> None:
        """``grant_waiter`` for a waiter the caller has already taken off ``waiters``."""
        w.wait_lock = None
        cost = handoff_ns if w.wait_spins else m.costs.block_wakeup_ns
        start = w.clock if w.clock > now_ns else now_ns
        w.clock = start + m.duration(cost)
        self._take(m, w, w.wait_mode, w.wait_site, w.wait_since, True)
        w.op = None
        w.value = None
        m.make_runnable(w)

    def handoff(self, m, now_ns) -> None:
        """Released with waiters: hand the lock on (timed, FIFO) or let the waiters retry."""
        if m.draws_by_index and self.racing_waiters:
            # the common case first: an exclusive lock whose waiters race for it, timed
            ws = self.waiters
            w = ws.pop() if len(ws) == 1 else ws.pop(m.draw(ws))
            self.grant_removed_waiter(m, w, now_ns, m.costs.handoff_ns)
            return
        if m.timed or self.fifo:
            self._hand_on(m, now_ns)
            return
        # exploration: every waiter that could take it now races for it at its next step
        for w in self.waiters:
            if w.state == CPU_BLOCKED and self.can_grant(w, w.wait_mode):
                if w.clock < now_ns:
                    w.clock = now_ns
                w.state = CPU_RUNNABLE

    def _hand_on(self, m, now_ns) -> None:
        """Grant waiters in the lock's order (FIFO) or the strategy's, until one takes it exclusively."""
        while self.waiters:
            if self.shared_allowed:
                cands = [w for w in self.waiters if self.can_grant(w, w.wait_mode)]
            else:  # exclusive-only and just released: every waiter could take it
                cands = self.waiters
            if not cands:
                return
            if self.fifo:
                w = self.waiters[0]
                if w is not cands[0]:
                    return
            elif len(cands) == 1:
                w = cands[0]
            elif m.draws_by_index:
                w = cands[m.draw(cands)]
            else:
                cur = m.current.id if m.current is not None else -1
                w = m.cpus[m.pick("handoff", sorted(x.id for x in cands), cur)]
            self.grant_waiter(m, w, now_ns, self.handoff_cost(m))
            if w.wait_mode == "x":
                return

    def reblock_retriers(self, m) -> None:
        """Exploration: waiters that may no longer get the lock stop being runnable."""
        for w in self.waiters:
            if w.state == CPU_RUNNABLE and not self.can_grant(w, w.wait_mode):
                w.state = CPU_BLOCKED
                if w.irqs:
                    m.spin_wait_irqs(w)  # a spinner may still take an interrupt

    def handoff_cost(self, m) -> int:
        """Time to pass the line to the next spinner (ticket locks grow it)."""
        return m.costs.handoff_ns


Lock.racing_waiters = Lock._racing_waiters()
#: Two holds of one lock can overlap (readers, pseudo-locks): utilisation then needs
#: the lock's busy stretches; otherwise it is simply the sum of the hold times.
Lock.holds_overlap = False


class ExclusiveOps:
    """``lock``/``trylock``/``unlock`` for the kinds that are only ever held exclusively."""

    def lock(self):
        """``yield lk.lock()``: take the lock exclusively, waiting as the kind waits."""
        ISSUED[0] += 1
        return self._lock_x

    def trylock(self):
        """``ok = yield lk.trylock()``: take it if free; evaluates to True or False, never waits."""
        return self._op("x", trylock=True)

    def unlock(self):
        """``yield lk.unlock()``: release it; the next holder is chosen as the kind chooses."""
        ISSUED[0] += 1
        return self._unlock_x
