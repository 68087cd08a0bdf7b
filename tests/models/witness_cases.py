"""Witness's test table: the case families of Linux's locking self-test, in smpvm locks.

Linux checks lockdep with ``lib/locking-selftest.c``: small sequences of
lock events (AA, ABBA, AB-BC-CA, ...), each run with every lock type and,
for the interrupt cases, in every order of its events, with an expected
verdict per type.  This file is the same idea for witness.  A *case* is a
list of *events*; an event is a short critical-section program run either
by a thread or by an interrupt handler at a given level.  ``CASES`` says,
for every lock kind the case applies to, which violation kinds witness (and
the locks themselves) must report: an empty set means silent.

``selftest`` runs one case with one lock kind, its events in a given order,
placed either all on one CPU (one thread does them in turn, the handler
event arriving as a real interrupt between two of them) or one event per
CPU (the strategy runs the CPUs one after the other).  The verdict must not
depend on the order or the placement: witness works from history.

``declared`` and ``blessed`` are the same runner for cases that need a
documented order or a blessed pair; ``split_orders`` takes one of two
opposite orders per run (drawn from the run's seed), so only the graph
merged over runs shows the reversal.
"""

from dataclasses import dataclass, field

from smpvm import (Mutex, RwLock, RwlockT, SleepMutex, Spinlock, SpinMutex, Sx, may_sleep,
                   pause, scenario, splraise, splx, work, SPLBIO, SPLNET, SPLVM)

LOR = "lock-order-reversal"
SPL = "spl-violation"
SLEEP = "sleep-with-spinlock"
ATOMIC = "sleep-in-atomic"
RECURSION = "recursion"
UNLOCK = "unlock-not-held"
SILENT = frozenset()

#: Lock kinds: name -> (lock type, mode of a plain "lock" op: x exclusive, s shared).
KINDS = {
    "spin": (Spinlock, "x"),        # Linux spinlock_t
    "wlock": (RwlockT, "x"),        # Linux rwlock_t, write side
    "rlock": (RwlockT, "s"),        # Linux rwlock_t, read side (recursive readers)
    "mutex": (Mutex, "x"),          # Linux struct mutex
    "wsem": (Sx, "x"),              # sx exclusive (rw_semaphore down_write)
    "rsem": (Sx, "s"),              # sx shared: readers queue behind waiting writers
    "mtx": (SleepMutex, "x"),       # FreeBSD default mutex
    "spin_mtx": (SpinMutex, "x"),   # FreeBSD spin mutex (interrupts off while held)
    "rw_w": (RwLock, "x"),          # FreeBSD rw, write
    "rw_r": (RwLock, "s"),          # FreeBSD rw, read
    # Families for cases that say "read" and "write" explicitly.
    "rwlock_t": (RwlockT, "x"),
    "sx": (Sx, "x"),
    "rw": (RwLock, "x"),
}

#: Kind groups the table refers to.
ALL = ("spin", "wlock", "rlock", "mutex", "wsem", "rsem", "mtx", "spin_mtx", "rw_w", "rw_r")
SLEEPABLE = ("mutex", "wsem", "rsem")
NON_SLEEPABLE = tuple(k for k in ALL if k not in SLEEPABLE)
READ_WRITE = ("rwlock_t", "sx", "rw")
#: Time at which a one-CPU run's interrupt event arrives (events before it take no time).
IRQ_AT_NS = 1000


@dataclass(frozen=True)
class Case:
    """One family: its events and the expected verdict for each kind it applies to."""

    #: What it checks, and which self-test it mirrors.
    doc: str
    #: Events: ("thread", [ops]) or ("irq", level, [ops]).
    events: tuple
    #: Kind -> expected violation kinds (empty: silent).
    verdicts: dict
    #: Lock name -> (class, options for the lock: instance, dupok, subclass, kind).
    locks: dict = field(default_factory=dict)
    #: Runner scenario: selftest, declared or blessed.
    scenario: str = "selftest"


def lock_unlock(*names, mode=None):
    """Take ``names`` nested, release them in reverse: LOCK_UNLOCK_2 of the self-test."""
    verb = {None: "lock", "s": "read", "x": "write"}[mode]
    return [(verb, n) for n in names] + [("unlock", n) for n in reversed(names)]


def thread(*ops):
    return ("thread", list(ops))


def irq(level, *ops):
    return ("irq", level, list(ops))


def verdicts(default, **by_kind):
    """Every kind in ``ALL`` gets ``default`` unless named."""
    out = {k: frozenset(default) for k in ALL}
    out.update({k: frozenset(v) for k, v in by_kind.items()})
    return out


def cycle_case(doc, *pairs):
    """A circular-dependency family: reported for every kind except rwlock_t readers."""
    return Case(doc, tuple(thread(*lock_unlock(*p)) for p in pairs),
                verdicts({LOR}, rlock=SILENT))


X_INSTANCES = {"X1": ("X", {"instance": 1}), "X2": ("X", {"instance": 2})}

CASES = {
    # -- circular dependencies ---------------------------------------------------------
    "AA": Case("two instances of one class nested (AA with X1, X2)",
               (thread(*lock_unlock("X1", "X2")),), verdicts({LOR}, rlock=SILENT),
               X_INSTANCES),
    "AA-dupok": Case("two instances of a duplicate-ok class nested",
                     (thread(*lock_unlock("X1", "X2")),), verdicts(SILENT),
                     {"X1": ("X", {"instance": 1, "dupok": True}),
                      "X2": ("X", {"instance": 2, "dupok": True})}),
    "AA-subclass": Case("the inner instance has a nesting subclass",
                        (thread(*lock_unlock("X1", "X2")),), verdicts(SILENT),
                        {"X1": ("X", {"instance": 1}),
                         "X2": ("X", {"instance": 2, "subclass": 1})}),
    "AA-subclass-reversed": Case("X -> X/1 and X/1 -> X: the subclass order reversed",
                                 (thread(*lock_unlock("X1", "X2")),
                                  thread(*lock_unlock("X2", "X1"))),
                                 verdicts({LOR}, rlock=SILENT),
                                 {"X1": ("X", {"instance": 1}),
                                  "X2": ("X", {"instance": 2, "subclass": 1})}),
    "AA-same-lock": Case("one lock taken twice: recursion, except read re-entry",
                         (thread(("lock", "A"), ("lock", "A"), ("unlock", "A"),
                                 ("unlock", "A")),),
                         verdicts({RECURSION}, rlock=SILENT, rw_r=SILENT, rsem={LOR})),
    "ABBA": cycle_case("A-B-B-A", "AB", "BA"),
    "ABBCCA": cycle_case("A-B-B-C-C-A", "AB", "BC", "CA"),
    "ABCABC": cycle_case("A-B-C-A-B-C", "AB", "CA", "BC"),
    "ABBCCDDA": cycle_case("A-B-B-C-C-D-D-A", "AB", "BC", "CD", "DA"),
    "ABCDBDDA": cycle_case("A-B-C-D-B-D-D-A", "AB", "CD", "BD", "DA"),
    "ABCDBCDA": cycle_case("A-B-C-D-B-C-D-A", "AB", "CD", "BC", "DA"),
    "ABBA-trylock": Case("the reverse order only try-locks: a trylock adds no edge",
                         (thread(*lock_unlock("A", "B")),
                          thread(("lock", "B"), ("try", "A"), ("unlock", "A"),
                                 ("unlock", "B"))), verdicts(SILENT)),
    # -- unlock misuse -----------------------------------------------------------------
    "double-unlock": Case("lock A, unlock A, unlock A",
                          (thread(("lock", "A"), ("unlock", "A"), ("unlock", "A")),),
                          verdicts({UNLOCK})),
    "bad-unlock-order": Case("lock A, lock B, unlock A, unlock B: legal, must stay silent",
                             (thread(("lock", "A"), ("lock", "B"), ("unlock", "A"),
                                     ("unlock", "B")),), verdicts(SILENT)),
    # -- readers: rwlock_t (recursive) against sx and FreeBSD rw (queue behind writers)
    "read-AA-two-instances": Case("read X1 then read X2 (rlock_AA1B / rsem_AA1B)",
                                  (thread(*lock_unlock("X1", "X2", mode="s")),),
                                  {"rwlock_t": SILENT, "sx": {LOR}, "rw": {LOR}}, X_INSTANCES),
    "read-write-AA": Case("read X1 then write X2 (rlock_AA2)",
                          (thread(("read", "X1"), ("write", "X2"), ("unlock", "X2"),
                                  ("unlock", "X1")),),
                          {k: {LOR} for k in READ_WRITE}, X_INSTANCES),
    "write-read-AA": Case("write X1 then read X2 (rlock_AA3)",
                          (thread(("write", "X1"), ("read", "X2"), ("unlock", "X2"),
                                  ("unlock", "X1")),),
                          {k: {LOR} for k in READ_WRITE}, X_INSTANCES),
    "ABBA-readers": Case("A then B and B then A, all read: readers never wait for readers",
                         (thread(*lock_unlock("A", "B", mode="s")),
                          thread(*lock_unlock("B", "A", mode="s"))),
                         {"rwlock_t": SILENT, "sx": {LOR}, "rw": {LOR}}),
    "ABBA-read-write": Case("A then B read, B then A written: the writer waits for the reader",
                            (thread(*lock_unlock("A", "B", mode="s")),
                             thread(*lock_unlock("B", "A", mode="x"))),
                            {k: {LOR} for k in READ_WRITE}),
    "X-ER-Y-ER-Z-ER-X": Case("write-read three times round: a deadlock even with recursive reads",
                             (thread(("write", "X"), ("read", "Y"), ("unlock", "Y"),
                                     ("unlock", "X")),
                              thread(("write", "Y"), ("read", "Z"), ("unlock", "Z"),
                                     ("unlock", "Y")),
                              thread(("write", "Z"), ("read", "X"), ("unlock", "X"),
                                     ("unlock", "Z"))),
                             {k: {LOR} for k in READ_WRITE}),
    "X-EN-Y-SR-Z-ER-X": Case("strong cycle through a reader pair: a deadlock",
                             (thread(*lock_unlock("X", "Y", mode="x")),
                              thread(*lock_unlock("Y", "Z", mode="s")),
                              thread(("write", "Z"), ("read", "X"), ("unlock", "X"),
                                     ("unlock", "Z"))),
                             {k: {LOR} for k in READ_WRITE}),
    "X-EN-Y-SR-Z-SN-X": Case("a recursive read of Z, then Z held shared: not a deadlock "
                             "for rwlock_t",
                             (thread(*lock_unlock("X", "Y", mode="x")),
                              thread(*lock_unlock("Y", "Z", mode="s")),
                              thread(("read", "Z"), ("write", "X"), ("unlock", "X"),
                                     ("unlock", "Z"))),
                             {"rwlock_t": SILENT, "sx": {LOR}, "rw": {LOR}}),
    "X-ER-Y-SR-Z-EN-X": Case("a recursive read of Y, then Y held shared: not a deadlock "
                             "for rwlock_t",
                             (thread(("write", "X"), ("read", "Y"), ("unlock", "Y"),
                                     ("unlock", "X")),
                              thread(*lock_unlock("Y", "Z", mode="s")),
                              thread(*lock_unlock("Z", "X", mode="x"))),
                             {"rwlock_t": SILENT, "sx": {LOR}, "rw": {LOR}}),
    # -- interrupt levels --------------------------------------------------------------
    "irq-safe-A-unmasked": Case(
        "A taken in a bio handler and in a thread at spl0 (irqsafe1)",
        (irq(SPLBIO, ("lock", "A"), ("unlock", "A")), thread(("lock", "A"), ("unlock", "A"))),
        verdicts({SPL}, rlock=SILENT, spin_mtx=SILENT, mutex={SPL, ATOMIC}, wsem={SPL, ATOMIC},
                 rsem={SPL, ATOMIC})),
    "irq-safe-A-masked": Case(
        "A taken in a bio handler and in a thread at splbio: correct",
        (irq(SPLBIO, ("lock", "A"), ("unlock", "A")),
         thread(("spl", SPLBIO), ("lock", "A"), ("unlock", "A"), ("splx",))),
        verdicts(SILENT, mutex={ATOMIC, SLEEP}, wsem={ATOMIC}, rsem={ATOMIC})),
    "irq-safe-A-unsafe-B": Case(
        "bio-safe A held (at splbio) while taking B, and B taken at spl0 (irqsafe4)",
        (thread(("spl", SPLBIO), *lock_unlock("A", "B"), ("splx",)),
         thread(("lock", "B"), ("unlock", "B")),
         irq(SPLBIO, ("lock", "A"), ("unlock", "A"))),
        verdicts({SPL}, rlock=SILENT, spin_mtx=SILENT, mutex={SPL, ATOMIC, SLEEP},
                 wsem={SPL, ATOMIC}, rsem={SPL, ATOMIC})),
    "irq-safe-A-masked-B": Case(
        "the same, but B is always taken at splbio: correct",
        (thread(("spl", SPLBIO), *lock_unlock("A", "B"), ("splx",)),
         thread(("spl", SPLBIO), ("lock", "B"), ("unlock", "B"), ("splx",)),
         irq(SPLBIO, ("lock", "A"), ("unlock", "A"))),
        verdicts(SILENT, mutex={ATOMIC, SLEEP}, wsem={ATOMIC}, rsem={ATOMIC})),
    "irq-nested-levels": Case(
        "A taken in a net handler and in a vm handler: vm interrupts the net handler",
        (irq(SPLNET, ("lock", "A"), ("unlock", "A")), irq(SPLVM, ("lock", "A"), ("unlock", "A"))),
        verdicts({SPL}, rlock=SILENT, spin_mtx=SILENT, mutex={SPL, ATOMIC}, wsem={SPL, ATOMIC},
                 rsem={SPL, ATOMIC})),
    "irq-read-recursion": Case(
        "irq_read_recursion: written with interrupts masked, read unmasked, read in a handler",
        (thread(("spl", SPLBIO), ("write", "A"), ("unlock", "A"), ("splx",)),
         thread(("read", "A"), ("unlock", "A")),
         irq(SPLBIO, ("read", "A"), ("lock", "B"), ("unlock", "B"), ("unlock", "A"))),
        {"rwlock_t": SILENT, "rw": {SPL}, "sx": {SPL, ATOMIC}},
        {"A": ("A", {}), "B": ("B", {"kind": "spin"})}),
    # -- sleeping ----------------------------------------------------------------------
    "blocking-under-spin": Case(
        "a Linux mutex taken while A is held",
        (thread(("lock", "A"), ("lock", "M"), ("unlock", "M"), ("unlock", "A")),),
        verdicts({LOR}, spin={ATOMIC}, wlock={ATOMIC}, rlock={ATOMIC}, spin_mtx={ATOMIC},
                 mutex=SILENT, wsem=SILENT, rsem=SILENT),
        {"A": ("A", {}), "M": ("M", {"kind": "mutex"})}),
    "sleep-with-lock": Case(
        "a call that may sleep while A is held",
        (thread(("lock", "A"), ("sleep",), ("unlock", "A")),),
        verdicts({ATOMIC}, mtx={SLEEP}, rw_w={SLEEP}, rw_r={SLEEP}, mutex=SILENT, wsem=SILENT,
                 rsem=SILENT)),
    "sleep-in-handler": Case(
        "a call that may sleep inside an interrupt handler",
        (irq(SPLBIO, ("sleep",)), thread(("lock", "A"), ("unlock", "A"))),
        verdicts({ATOMIC})),
    # -- declared order and blessed pairs ------------------------------------------------
    "declared-reverse": Case("B then A against the documented A -> B -> C",
                             (thread(*lock_unlock("B", "A")),), verdicts({LOR}),
                             scenario="declared"),
    "declared-transitive": Case("C then A against the documented A -> B -> C",
                                (thread(*lock_unlock("C", "A")),), verdicts({LOR}),
                                scenario="declared"),
    "declared-follow": Case("A then C, as documented",
                            (thread(*lock_unlock("A", "C")),), verdicts(SILENT),
                            scenario="declared"),
    "blessed-ABBA": Case("A-B-B-A on the blessed pair (A, B)",
                         (thread(*lock_unlock("A", "B")), thread(*lock_unlock("B", "A"))),
                         verdicts(SILENT), scenario="blessed"),
    "blessed-other-pair": Case("C-D-D-C: the blessing is for (A, B) only",
                               (thread(*lock_unlock("C", "D")), thread(*lock_unlock("D", "C"))),
                               verdicts({LOR}, rlock=SILENT), scenario="blessed"),
}


# -- the runner -----------------------------------------------------------------------------


def make_locks(m, case: Case, kind: str) -> dict:
    """The case's locks, of ``kind`` unless a lock names its own."""
    names = sorted({op[1] for ev in case.events for op in ev[-1] if len(op) > 1
                    and isinstance(op[1], str)})
    locks = {}
    for name in names:
        cls, opts = case.locks.get(name, (name, {}))
        opts = dict(opts)
        lock_type = KINDS[opts.pop("kind", kind)][0]
        locks[name] = lock_type(m, cls, **opts)
    return locks


def run_ops(ops, locks, kind):
    """One event's operations, as a generator the thread or the handler runs."""
    default_mode = KINDS[kind][1]
    modes = {}
    saved = []
    for op in ops:
        verb = op[0]
        if verb in ("lock", "read", "write", "try"):
            lk = locks[op[1]]
            mode = {"read": "s", "write": "x"}.get(verb, _mode_of(lk, kind, default_mode))
            if verb == "try":
                ok = yield _try(lk, mode)
                if not ok:
                    continue
            else:
                yield _take(lk, mode)
            modes[op[1]] = mode
        elif verb == "unlock":
            lk = locks[op[1]]
            yield _give(lk, modes.get(op[1], _mode_of(lk, kind, default_mode)))
        elif verb == "spl":
            saved.append((yield splraise(op[1])))
        elif verb == "splx":
            yield splx(saved.pop())
        elif verb == "sleep":
            yield may_sleep(100, "a sleeping call")
        else:
            raise ValueError(f"unknown op {op!r}")


def _mode_of(lock, kind, default_mode):
    """A lock of another kind than the case's (named in ``locks``) is taken exclusively."""
    return default_mode if isinstance(lock, KINDS[kind][0]) else "x"


def _take(lock, mode):
    if isinstance(lock, RwlockT):
        return lock.read_lock() if mode == "s" else lock.write_lock()
    if isinstance(lock, Sx):
        return lock.slock() if mode == "s" else lock.xlock()
    if isinstance(lock, RwLock):
        return lock.rlock() if mode == "s" else lock.wlock()
    return lock.lock()


def _try(lock, mode):
    if isinstance(lock, RwlockT):
        return lock.read_trylock() if mode == "s" else lock.write_trylock()
    if isinstance(lock, Sx):
        return lock.try_slock() if mode == "s" else lock.try_xlock()
    if isinstance(lock, RwLock):
        return lock.try_rlock() if mode == "s" else lock.try_wlock()
    return lock.trylock()


def _give(lock, mode):
    if isinstance(lock, RwlockT):
        return lock.read_unlock() if mode == "s" else lock.write_unlock()
    if isinstance(lock, Sx):
        return lock.sunlock() if mode == "s" else lock.xunlock()
    if isinstance(lock, RwLock):
        return lock.runlock() if mode == "s" else lock.wunlock()
    return lock.unlock()


def parse_order(order: str, n: int) -> list[int]:
    if not order:
        return list(range(n))
    seq = [int(x) for x in order.split(",")]
    if sorted(seq) != list(range(n)):
        raise ValueError(f"order {order!r} must be a permutation of 0..{n - 1}")
    return seq


def one_cpu(m, case, kind, locks, seq):
    """Every event on CPU0: the thread runs them in turn; a handler event interrupts it.

    Thread events take no time (the tests make every cost zero), so the
    clock moves only at an interrupt slot: the k-th handler event in the
    order is due at (k+1) * IRQ_AT_NS, exactly when the thread reaches it.
    """
    slots = [i for i in seq if case.events[i][0] == "irq"]
    for k, i in enumerate(slots):
        ev = case.events[i]
        m.interrupt_source(f"irq{i}", ev[1], lambda ops=ev[2]: run_ops(ops, locks, kind),
                           cpu=0, at_ns=[(k + 1) * IRQ_AT_NS])

    def runner():
        for i in seq:
            ev = case.events[i]
            if ev[0] == "irq":
                yield work(IRQ_AT_NS)  # the interrupt is now due: taken at the next yield
                yield pause()
            else:
                yield from run_ops(ev[1], locks, kind)

    m.spawn(runner(), name="events", cpu=0)


def spread(m, case, kind, locks, seq):
    """Event i on CPU i; the test's strategy runs the CPUs in the order ``seq``.

    A handler event's CPU runs a thread that only yields once: the
    interrupt, due at time 0, is taken at that thread's first step.
    """
    for i, ev in enumerate(case.events):
        if ev[0] == "irq":
            m.interrupt_source(f"irq{i}", ev[1], lambda ops=ev[2]: run_ops(ops, locks, kind),
                               cpu=i, at_ns=[0])
            m.spawn(_host(), name=f"host{i}", cpu=i)
        else:
            m.spawn(run_ops(ev[1], locks, kind), name=f"event{i}", cpu=i)


def _host():
    yield pause()


def run_case(m, case_name, kind, order, placement):
    case = CASES.get(case_name)
    if case is None:
        raise ValueError(f"no case {case_name!r}")
    if kind not in case.verdicts:
        raise ValueError(f"case {case_name} does not apply to kind {kind!r}")
    locks = make_locks(m, case, kind)
    seq = parse_order(order, len(case.events))
    if placement == "one":
        one_cpu(m, case, kind, locks, seq)
    elif placement == "spread":
        spread(m, case, kind, locks, seq)
    else:
        raise ValueError(f"placement must be 'one' or 'spread', got {placement!r}")


PARAMS = {"case": "ABBA", "kind": "spin", "order": "", "placement": "one"}
HELP = {"case": "a name from CASES", "kind": "a name from KINDS",
        "order": "event order, e.g. 2,0,1 (default: as listed)",
        "placement": "one (all events on CPU0) or spread (event i on CPU i)"}


@scenario(params=PARAMS, param_help=HELP, description="one locking self-test case")
def selftest(m, variant, case, kind, order, placement):
    run_case(m, case, kind, order, placement)


@scenario(params=PARAMS, param_help=HELP, lock_order=[["A", "B", "C"]],
          description="a self-test case with the documented order A -> B -> C")
def declared(m, variant, case, kind, order, placement):
    run_case(m, case, kind, order, placement)


@scenario(params=PARAMS, param_help=HELP, blessed=[["A", "B"]],
          description="a self-test case with the pair (A, B) blessed")
def blessed(m, variant, case, kind, order, placement):
    run_case(m, case, kind, order, placement)


@scenario(variants={"split": "each run takes one of the two orders, drawn from its seed",
                    "consistent": "every run takes A then B"},
          description="two orders that never meet in one run")
def split_orders(m, variant):
    a, b = SleepMutex(m, "split A"), SleepMutex(m, "split B")
    first, second = (a, b)
    if variant == "split" and m.rng.random() < 0.5:
        first, second = (b, a)

    def taker():
        yield first.lock()
        yield second.lock()
        yield second.unlock()
        yield first.unlock()

    m.spawn(taker(), name="taker")
