"""Lock invariants under random programs and random schedules (hypothesis stateful).

Hypothesis builds a small *program* per CPU, one rule at a time: critical
sections nesting up to three locks of assorted kinds (sleep and spin
mutexes, sx shared and exclusive, rw with upgrade and downgrade, Linux
rwlock_t, mutex, ticket and queued spin locks), trylocks, spl sections,
plain work, and msleep/wakeup handshakes between two CPUs; the machine has
2-4 CPUs and up to two interrupt sources whose handlers take a spin mutex.
After every rule the whole program runs under ``timed`` (free and default
costs) and under three seeds of a random exploration strategy, and each run
is checked from the inside and from the outside.  A second machine does
the same with a recursive sleep mutex (taken twice, released twice) in
every example.

Programs are well formed by construction, so any violation is the
engine's fault:

* locks are nested in one global order (sleepable kinds outermost, then
  default mutexes and rw, then spin kinds, then the interrupt handlers'
  spin mutex), which rules out deadlock and lock-order reversals;
* a handshake's consumer sleeps with ``msleep`` in a loop that checks a
  flag under the interlock, and the producer sets the flag under it, so a
  wakeup cannot be lost; a handshake's two halves are appended at the same
  time, which keeps the graph of waits acyclic.

What is checked, and how (instrumentation inside the model threads, so no
engine internals are read):

* mutual exclusion and the reader/writer rules: per lock, counters of
  exclusive and shared holders, checked right after each acquisition and
  updated right before each release (code between yields is atomic),
  across msleep (which drops and retakes its interlock), upgrades,
  downgrades and the inner release of a recursed mutex;
* no lost wakeups: every consumer returns (a lost wakeup would stall the
  run, a ``deadlock`` violation) and every program runs to its end;
* interrupts masked while spl is raised: each thread records the level it
  has raised to (set after the raise, cleared before the ``splx``, so the
  record never exceeds the real level); each handler asserts that the
  level it interrupted is below its own and that no interrupt-disabling
  spin lock is held on its CPU; a thread's spl raise must find level 0
  (handlers restore what they found);
* FIFO kinds grant in the order their waiters queued (from the trace);
* statistics conservation: acquisitions and trylock failures equal what
  the threads counted, contended <= acquisitions, and for a lock class
  without shared holders the total hold time is at most the simulated time
  times the number of instances (utilisation <= 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from conftest import RandomWalk, free_costs, simulate
from smpvm import (SPLBIO, SPLCLOCK, SPLHIGH, SPLNET, SPLVM, IrqSpinlock, Mutex, QueuedLock,
                   RwLock, RwlockT, SleepMutex, Spinlock, SpinMutex, Sx, TicketLock, kassert,
                   msleep, pause, splbio, splhigh, splnet, splvm, splx, wakeup, wakeup_one,
                   work)
from smpvm.trace import MemorySink


@dataclass(frozen=True)
class Kind:
    """A lock kind as the programs use it."""

    cls: type
    #: Nesting rank: lower ranks are taken first (outermost).
    rank: int
    #: Mode letter -> (acquire method, release method, trylock method or None).
    modes: dict
    #: Taken twice and released twice (MTX_RECURSE) each time it is used.
    recursive: bool = False

    @property
    def shared(self) -> bool:
        return "s" in self.modes

    @property
    def disables_irqs(self) -> bool:
        return self.cls.disables_irqs

    @property
    def fifo(self) -> bool:
        return self.cls.fifo


SLEEPABLE, DEFAULT, SPIN = 0, 1, 2
X = ("lock", "unlock", "trylock")
KINDS = {
    "sx": Kind(Sx, SLEEPABLE, {"x": ("xlock", "xunlock", "try_xlock"),
                               "s": ("slock", "sunlock", "try_slock")}),
    "mutex": Kind(Mutex, SLEEPABLE, {"x": ("mutex_lock", "mutex_unlock", "mutex_trylock")}),
    "sleep mutex": Kind(SleepMutex, DEFAULT, {"x": X}),
    "recursive sleep mutex": Kind(SleepMutex, DEFAULT, {"x": X}, recursive=True),
    "rw": Kind(RwLock, DEFAULT, {"x": ("wlock", "wunlock", "try_wlock"),
                                 "s": ("rlock", "runlock", "try_rlock")}),
    "spin mutex": Kind(SpinMutex, SPIN, {"x": X}),
    "spinlock_t": Kind(Spinlock, SPIN, {"x": ("spin_lock", "spin_unlock", "spin_trylock")}),
    "irq spinlock_t": Kind(IrqSpinlock, SPIN, {"x": X}),
    "rwlock_t": Kind(RwlockT, SPIN, {"x": ("write_lock", "write_unlock", "write_trylock"),
                                     "s": ("read_lock", "read_unlock", "read_trylock")}),
    "ticket": Kind(TicketLock, SPIN, {"x": ("lock", "unlock", None)}),
    "queued": Kind(QueuedLock, SPIN, {"x": ("lock", "unlock", None)}),
}
#: The spin mutex interrupt handlers take; innermost of all.
IRQ_LOCK = "irq lock"
SPL_RAISES = {SPLNET: splnet, SPLBIO: splbio, SPLVM: splvm, SPLHIGH: splhigh}
IRQ_LEVELS = [SPLNET, SPLBIO, SPLVM, SPLCLOCK]


@dataclass
class Program:
    """What hypothesis has built so far: the machine's shape and each CPU's blocks."""

    ncpus: int
    #: Lock kind names in nesting order; the handlers' lock comes after all of them.
    kinds: list
    #: (cpu, level, arrival times, handler work ns) per interrupt source.
    irqs: list
    seed: int
    blocks: list = field(default_factory=list)
    handshakes: int = 0

    def lock_names(self) -> list:
        return [f"{k} {i}" for i, k in enumerate(self.kinds)] + [IRQ_LOCK]


class Run:
    """One execution of a program: the machine's locks plus what the threads observed."""

    def __init__(self, prog: Program, m):
        self.prog = prog
        self.m = m
        self.locks = [KINDS[k].cls(m, name, recursive=KINDS[k].recursive or None)
                      for k, name in zip(prog.kinds, prog.lock_names())]
        self.locks.append(SpinMutex(m, IRQ_LOCK))
        self.kinds = [KINDS[k] for k in prog.kinds] + [KINDS["spin mutex"]]
        self.hs_locks = [SleepMutex(m, "handshake lock", instance=h)
                         for h in range(prog.handshakes)]
        self.hs_boxes = [m.shared("handshake", ready=False) for _ in range(prog.handshakes)]
        n = len(self.locks) + prog.handshakes
        #: Per lock (handshake locks after the others): exclusive and shared holders now.
        self.writers = [0] * n
        self.readers = [0] * n
        #: Successful acquisitions and failed trylocks the threads made, per lock.
        self.acquired = [0] * n
        self.try_failed = [0] * n
        #: Per CPU: the spl level its thread (or running handler) has raised to,
        #: and how many interrupt-disabling locks it holds.
        self.spl_claim = [0] * prog.ncpus
        self.irq_off = [0] * prog.ncpus
        self.finished = [False] * prog.ncpus
        self.handled = [0] * len(prog.irqs)

    # -- instrumented lock operations ------------------------------------------------------

    def acquire(self, cpu, i, mode, trylock=False):
        lk, kind = self._lock(i)
        acq, _, try_name = kind.modes[mode]
        if trylock and try_name is not None:
            ok = yield getattr(lk, try_name)()
            if not ok:
                self.try_failed[i] += 1
                return False
        else:
            yield getattr(lk, acq)()
        self.note_acquired(cpu, i, mode)
        if kind.recursive:
            yield getattr(lk, acq)()                # a recursion: not an acquisition
        return True

    def release(self, cpu, i, mode):
        lk, kind = self._lock(i)
        rel = getattr(lk, kind.modes[mode][1])
        if kind.recursive:
            yield rel()                             # still held once: nobody may take it
            yield work(1)
            yield pause()                           # give a wrongly woken waiter its step
        self.note_releasing(cpu, i, mode)
        yield rel()

    def note_acquired(self, cpu, i, mode, count=True):
        label = self._label(i)
        if mode == "x":
            kassert(self.writers[i] == 0 and self.readers[i] == 0,
                    f"CPU{cpu} took {label} exclusive beside {self.writers[i]} writer(s) "
                    f"and {self.readers[i]} reader(s)")
            self.writers[i] = 1
        else:
            kassert(self.writers[i] == 0, f"CPU{cpu} took {label} shared beside a writer")
            self.readers[i] += 1
        if count:
            self.acquired[i] += 1
        if i < len(self.locks) and self.kinds[i].disables_irqs:
            self.irq_off[cpu] += 1

    def note_releasing(self, cpu, i, mode):
        if mode == "x":
            self.writers[i] = 0
        else:
            self.readers[i] -= 1
        if i < len(self.locks) and self.kinds[i].disables_irqs:
            self.irq_off[cpu] -= 1

    def _lock(self, i):
        if i < len(self.locks):
            return self.locks[i], self.kinds[i]
        return self.hs_locks[i - len(self.locks)], KINDS["sleep mutex"]

    def _label(self, i):
        return self._lock(i)[0].label()

    # -- blocks ------------------------------------------------------------------------------

    def nested(self, cpu, steps, hold_ns):
        """Take ``steps`` (lock, mode, trylock) outermost first, work, release in reverse."""
        if not steps:
            yield work(hold_ns)
            return
        (i, mode, trylock), rest = steps[0], steps[1:]
        got = yield from self.acquire(cpu, i, mode, trylock)
        yield from self.nested(cpu, rest, hold_ns)
        if got:
            yield from self.release(cpu, i, mode)

    def spl_section(self, cpu, level, steps, hold_ns):
        old = yield SPL_RAISES[level]()
        kassert(old == 0, f"CPU{cpu}'s thread found spl {old}: a handler did not restore it")
        self.spl_claim[cpu] = level
        yield from self.nested(cpu, steps, hold_ns)
        self.spl_claim[cpu] = 0
        yield splx(old)

    def produce(self, cpu, h, one):
        i = len(self.locks) + h
        yield from self.acquire(cpu, i, "x")
        self.hs_boxes[h].ready = True
        woken = yield (wakeup_one if one else wakeup)(self.hs_boxes[h])
        kassert(woken in (0, 1), f"handshake {h} woke {woken} sleepers")
        yield from self.release(cpu, i, "x")

    def consume(self, cpu, h):
        i = len(self.locks) + h
        box, mtx = self.hs_boxes[h], self.hs_locks[h]
        yield from self.acquire(cpu, i, "x")
        while not box.ready:
            self.note_releasing(cpu, i, "x")
            yield msleep(box, mtx)
            self.note_acquired(cpu, i, "x")        # msleep took the interlock again
        yield from self.release(cpu, i, "x")

    def upgrade(self, cpu, i, hold_ns):
        yield from self.acquire(cpu, i, "s")
        if (yield self.locks[i].try_upgrade()):
            self.note_releasing(cpu, i, "s")
            self.note_acquired(cpu, i, "x", count=False)
            yield work(hold_ns)
            yield from self.release(cpu, i, "x")
        else:
            yield work(hold_ns)
            yield from self.release(cpu, i, "s")

    def downgrade(self, cpu, i, hold_ns):
        yield from self.acquire(cpu, i, "x")
        yield work(hold_ns)
        yield self.locks[i].downgrade()
        self.note_releasing(cpu, i, "x")
        self.note_acquired(cpu, i, "s", count=False)
        yield work(hold_ns)
        yield from self.release(cpu, i, "s")

    def thread(self, cpu):
        for block in self.prog.blocks[cpu]:
            what, args = block[0], block[1:]
            if what == "work":
                yield work(args[0])
            elif what == "crit":
                yield from self.nested(cpu, *args)
            elif what == "spl":
                yield from self.spl_section(cpu, *args)
            elif what == "produce":
                yield from self.produce(cpu, *args)
            elif what == "consume":
                yield from self.consume(cpu, *args)
            elif what == "upgrade":
                yield from self.upgrade(cpu, *args)
            elif what == "downgrade":
                yield from self.downgrade(cpu, *args)
        self.finished[cpu] = True

    def handler(self, src):
        cpu, level, _, work_ns = self.prog.irqs[src]

        def h():
            kassert(self.spl_claim[cpu] < level,
                    f"interrupt at level {level} delivered to CPU{cpu} at spl "
                    f"{self.spl_claim[cpu]}")
            kassert(self.irq_off[cpu] == 0,
                    f"interrupt delivered to CPU{cpu} holding an interrupt-disabling lock")
            saved, self.spl_claim[cpu] = self.spl_claim[cpu], level
            self.handled[src] += 1
            yield work(work_ns)
            irq = len(self.locks) - 1
            yield from self.acquire(cpu, irq, "x")
            yield work(work_ns)
            yield from self.release(cpu, irq, "x")
            self.spl_claim[cpu] = saved
        return h

    def start(self):
        for cpu in range(self.prog.ncpus):
            self.m.spawn(self.thread(cpu), name=f"p{cpu}")
        for src, (cpu, level, times, _) in enumerate(self.prog.irqs):
            self.m.interrupt_source(f"irq{src}", level, self.handler(src), cpu=cpu,
                                    at_ns=times)


# -- checks after a run ------------------------------------------------------------------------


def run_and_check(prog: Program, strategy, seed, costs):
    sink = MemorySink()
    runs = []

    def setup(m):
        run = Run(prog, m)
        runs.append(run)
        run.start()

    r = simulate(setup, strategy=strategy, seed=seed, params=costs, trace=sink)
    (run,) = runs
    _events(sink.records)
    where = f"({'timed' if strategy is None else 'exploration'}, seed {seed})"
    assert r.violations == [], f"{where} {[v.one_line() for v in r.violations]}"
    assert all(run.finished), f"{where} a program did not finish: {run.finished}"
    assert run.writers == [0] * len(run.writers) and run.readers == [0] * len(run.readers)
    _check_interrupts(r, run, where)
    _check_statistics(r, run, prog, where)
    _check_fifo(sink.records, run, where)


def _events(records):
    """Tell hypothesis's statistics what the runs exercised (``--hypothesis-show-statistics``)."""
    if any(x.action == "wait" for x in records):
        event("a CPU waited for a lock")
    if any(x.action == "sleep" for x in records):
        event("a consumer slept")
    if any(x.action == "trylock-fail" for x in records):
        event("a trylock failed")
    if any(x.action == "irq-begin" for x in records):
        event("an interrupt was delivered")
    if any(x.action == "acquire" and "upgraded" in x.detail for x in records):
        event("an upgrade succeeded")
    if any(x.action == "wait" and x.detail == "block" for x in records):
        event("a waiter blocked")


def _check_interrupts(r, run, where):
    for src, (_, _, times, _) in enumerate(run.prog.irqs):
        delivered = r.interrupts[f"irq{src}"]["delivered"]
        assert delivered == run.handled[src] <= len(times), where
        assert r.interrupts[f"irq{src}"]["latency_max_ns"] >= 0


def _check_statistics(r, run, prog, where):
    stats = {s.name: s for s in r.lockstat}
    names = prog.lock_names()
    for i, name in enumerate(names):
        s = stats[name]
        assert s.acquisitions == run.acquired[i], (where, name)
        assert s.try_failures == run.try_failed[i], (where, name)
        _check_conservation(s, r, run.kinds[i].shared, where)
    if prog.handshakes:
        s = stats["handshake lock"]
        assert s.acquisitions == sum(run.acquired[len(names):]), where
        _check_conservation(s, r, False, where)


def _check_conservation(s, r, shared, where):
    assert 0 <= s.contended <= s.acquisitions, where
    assert 0 <= s.wait_max_ns <= r.time_ns and 0 <= s.hold_max_ns <= r.time_ns, where
    assert s.wait_total_ns >= s.wait_max_ns and s.hold_total_ns >= s.hold_max_ns, where
    if not shared:
        assert s.hold_total_ns <= r.time_ns * s.instances, (where, s)
        assert s.utilization <= 1.0, (where, s)


def _check_fifo(records, run, where):
    fifo = {lk.label() for lk, kind in zip(run.locks, run.kinds) if kind.fifo}
    for label in fifo:
        waits, granted, waiting = [], [], set()
        for x in records:
            if x.target != label:
                continue
            if x.action == "wait":
                waits.append(x.cpu)
                waiting.add(x.cpu)
            elif x.action == "acquire" and x.cpu in waiting:
                waiting.discard(x.cpu)
                granted.append(x.cpu)
        assert granted == waits, (where, label, waits, granted)


# -- the state machine -----------------------------------------------------------------------

HOLD_NS = st.integers(0, 300)


class LockPrograms(RuleBasedStateMachine):
    """Rules append blocks to CPU programs; the invariant runs the program and checks it."""

    #: Kinds an example may draw from, and kinds every example has.
    kind_names = sorted(k for k in KINDS if not KINDS[k].recursive)
    always: tuple = ()

    @initialize(ncpus=st.integers(2, 4),
                # A random permutation spreads the kinds evenly over examples.
                kind_order=st.permutations(sorted(KINDS)), nkinds=st.integers(2, 4),
                irqs=st.lists(st.tuples(st.integers(0, 3), st.sampled_from(IRQ_LEVELS),
                                        st.lists(st.integers(0, 3000), min_size=1, max_size=3),
                                        st.integers(0, 200)), max_size=2),
                seed=st.integers(0, 2**31))
    def machine(self, ncpus, kind_order, nkinds, irqs, seed):
        kinds = list(self.always) + [k for k in kind_order
                                     if k in self.kind_names and k not in self.always]
        kinds = kinds[:max(nkinds, len(self.always))]
        order = sorted(range(len(kinds)), key=lambda i: (KINDS[kinds[i]].rank, i))
        self.prog = Program(ncpus=ncpus, kinds=[kinds[i] for i in order],
                            irqs=[(cpu % ncpus, level, times, w) for cpu, level, times, w in irqs],
                            seed=seed, blocks=[[] for _ in range(ncpus)])

    def _steps(self, picks):
        """Lock steps from (lock index, shared?, trylock?) picks: unique, in nesting order."""
        nlocks = len(self.prog.kinds) + 1          # the handlers' lock may be nested last
        chosen = {}
        for i, shared, trylock in picks:
            i %= nlocks
            kind = KINDS[self.prog.kinds[i]] if i < len(self.prog.kinds) else KINDS["spin mutex"]
            chosen.setdefault(i, ("s" if shared and kind.shared else "x", trylock))
        return tuple((i, mode, trylock) for i, (mode, trylock) in sorted(chosen.items()))

    @rule(cpu=st.integers(0, 3), hold_ns=HOLD_NS,
          picks=st.lists(st.tuples(st.integers(0, 4), st.booleans(), st.booleans()),
                         min_size=1, max_size=3))
    def critical_section(self, cpu, hold_ns, picks):
        self.prog.blocks[cpu % self.prog.ncpus].append(("crit", self._steps(picks), hold_ns))

    @rule(cpu=st.integers(0, 3), level=st.sampled_from(sorted(SPL_RAISES)), hold_ns=HOLD_NS,
          picks=st.lists(st.tuples(st.integers(0, 4), st.booleans(), st.booleans()),
                         max_size=2))
    def spl_section(self, cpu, level, hold_ns, picks):
        # a Linux mutex with a level masked is an invalid wait context: never inside
        kinds = self.prog.kinds
        steps = tuple(st_ for st_ in self._steps(picks)
                      if st_[0] >= len(kinds) or kinds[st_[0]] != "mutex")
        self.prog.blocks[cpu % self.prog.ncpus].append(("spl", level, steps, hold_ns))

    @rule(cpu=st.integers(0, 3), ns=st.integers(0, 500))
    def plain_work(self, cpu, ns):
        self.prog.blocks[cpu % self.prog.ncpus].append(("work", ns))

    @rule(producer=st.integers(0, 3), gap=st.integers(1, 3), one=st.booleans())
    def handshake(self, producer, gap, one):
        n = self.prog.ncpus
        producer %= n
        consumer = (producer + gap) % n if (producer + gap) % n != producer else (producer + 1) % n
        h = self.prog.handshakes
        self.prog.handshakes += 1
        # Both halves now: a consumer only ever waits for blocks older than itself.
        self.prog.blocks[producer].append(("produce", h, one))
        self.prog.blocks[consumer].append(("consume", h))

    def _rw_locks(self):
        return [i for i, k in enumerate(self.prog.kinds) if k == "rw"]

    @rule(cpu=st.integers(0, 3), which=st.integers(0, 2), up=st.booleans(), hold_ns=HOLD_NS)
    def rw_mode_change(self, cpu, which, up, hold_ns):
        """An rw read hold that tries to upgrade, or a write hold downgraded (if an rw exists)."""
        rws = self._rw_locks()
        if rws:        # a no-op otherwise; a precondition would make hypothesis filter rules
            self.prog.blocks[cpu % self.prog.ncpus].append(
                ("upgrade" if up else "downgrade", rws[which % len(rws)], hold_ns))

    @invariant()
    def every_schedule_keeps_the_rules(self):
        prog = self.prog
        run_and_check(prog, None, prog.seed, free_costs(handoff_ns=50, block_wakeup_ns=300,
                                                         ticket_per_spinner_ns=20))
        run_and_check(prog, None, prog.seed, {"costs.jitter": 0.2})
        for k in range(3):
            run_and_check(prog, RandomWalk(), prog.seed + k, free_costs())


LockPrograms.TestCase.settings = settings(
    max_examples=100, stateful_step_count=12, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
TestLockPrograms = LockPrograms.TestCase


class RecursiveLockPrograms(LockPrograms):
    """The same programs with a recursive sleep mutex in every example (taken twice each time)."""

    kind_names = sorted(KINDS)
    always = ("recursive sleep mutex",)


RecursiveLockPrograms.TestCase.settings = settings(
    max_examples=40, stateful_step_count=12, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
TestRecursiveLockPrograms = RecursiveLockPrograms.TestCase
