"""Small scenarios that exercise the engine through the command line.

None of these is a kernel model: each is the smallest program that makes
the engine show one behaviour a test checks from outside the process —
a clean run, a model that misbehaves in each way the CLI must answer with
exit status 2, a deadlock and a livelock the engine must report (exit 1)
instead of hanging, and a workload full of sets and dicts of objects whose
trace must not depend on hash randomisation.
"""

from smpvm import (SPLBIO, LockPool, SleepMutex, SpinMutex, Sx, Zone, kassert, msleep, note,
                   pause, scenario, splvm, splx, wakeup, work)

LOCK_ORDER = [["table lock", "entry lock"]]


def _worker(m, table, entry, rounds, hold_ns):
    for _ in range(rounds):
        yield table.lock()
        yield entry.lock()
        yield work(hold_ns)
        m.count("updates")
        yield entry.unlock()
        yield table.unlock()
        yield work(hold_ns // 2)


@scenario(variants={"plain": "two CPUs take two locks in the documented order",
                    "contended": "four CPUs do the same"},
          params={"rounds": 3, "hold_ns": 100},
          param_help={"rounds": "critical sections per CPU", "hold_ns": "time inside"},
          description="Two nested locks taken in order; never fails")
def two_locks(m, variant, rounds, hold_ns):
    if rounds < 0:
        raise ValueError(f"rounds must be >= 0, got {rounds}")
    table = SleepMutex(m, "table lock")
    entry = SpinMutex(m, "entry lock")
    for cpu in range(2 if variant == "plain" else 4):
        m.spawn(_worker(m, table, entry, rounds, hold_ns), name=f"worker{cpu}")


def _raising_thread():
    yield work(10)
    raise RuntimeError("the thread broke")


def _junk_thread():
    yield work(10)
    yield 42


@scenario(variants={"raises-in-setup": "set-up raises", "raises-in-thread": "a thread raises",
                    "yields-junk": "a thread yields something that is not an operation",
                    "spawns-nothing": "no thread at all",
                    "spawns-a-function": "spawn() given a function, not a generator"},
          description="Models that are wrong in each way the engine must report as bad input")
def misbehaves(m, variant):
    if variant == "raises-in-setup":
        raise RuntimeError("the set-up broke")
    if variant == "raises-in-thread":
        m.spawn(_raising_thread())
    elif variant == "yields-junk":
        m.spawn(_junk_thread())
    elif variant == "spawns-a-function":
        m.spawn(_junk_thread)


def _take_two(first, second):
    yield first.lock()
    yield work(100)
    yield second.lock()
    yield second.unlock()
    yield first.unlock()


@scenario(description="Two CPUs take two mutexes in opposite orders: an ABBA deadlock")
def abba(m, variant):
    a = SleepMutex(m, "lock a")
    b = SleepMutex(m, "lock b")
    m.spawn(_take_two(a, b), name="ab")
    m.spawn(_take_two(b, a), name="ba")


def _spin_on_flag(flag):
    while not flag.set:
        yield pause()


@scenario(max_steps=2_000, description="A CPU waits for a flag nobody sets: a livelock")
def livelock(m, variant):
    flag = m.shared("flag word", set=False)
    m.spawn(_spin_on_flag(flag), name="spinner")


@scenario(params={"threads": 3}, description="Spawns a thread per CPU it is given")
def three_threads(m, variant, threads):
    for i in range(threads):
        m.spawn(_worker_alone(i), name=f"t{i}")


def _worker_alone(i):
    yield work(10 * (i + 1))


# -- a workload whose objects live in sets and dicts ----------------------------------------

def _producer(m, objects, mtx, pending, pool):
    for obj in objects:
        lk = pool.lock_for(obj.pa)
        yield lk.lock()
        obj.hits += 1
        yield work(40)
        yield lk.unlock()
        # Published last: the consumer may free the item once it has it.
        yield mtx.lock()
        pending[obj] = m.rng.integers(1, 100).item()   # dict keyed by items
        yield wakeup(obj)                                # the item is the wait channel
        yield mtx.unlock()


def _consumer(m, objects, mtx, pending, seen, zone, names):
    for obj in objects:
        yield mtx.lock()
        while obj not in pending:
            yield msleep(obj, mtx)
        cost = pending.pop(obj)
        seen.add(obj)                                    # a set of items
        yield mtx.unlock()
        s = yield splvm()
        yield work(cost)
        yield splx(s)
    # Sorted by label before use: a set's own order is the hash's.
    for obj in sorted(seen, key=lambda o: o.label()):
        yield zone.free(obj)
    kassert(len(names) == 3, "the names set lost an entry")


def _reader(sx, labels):
    for label in sorted(labels):
        yield sx.slock()
        kassert(label in labels, "a label vanished")
        yield work(25)
        yield sx.sunlock()


@scenario(params={"objects": 6},
          description="Wait channels, dict keys and set members are objects; order must not leak")
def hash_order(m, variant, objects):
    zone = Zone(m, "ITEM", {"pa": 0, "hits": 0}, type_name="item")
    items = [zone.new(pa=(i * 7) << 12) for i in range(objects)]
    mtx = SleepMutex(m, "pending lock")
    sx = Sx(m, "catalogue")
    pool = LockPool(m, "pa lock", count=4, shift=12)
    pending, seen = {}, set()
    names = {"alpha", "beta", "gamma"}                   # a set of strings
    m.spawn(_producer(m, items, mtx, pending, pool), name="producer")
    m.spawn(_consumer(m, items, mtx, pending, seen, zone, names), name="consumer")
    m.spawn(_reader(sx, {obj.label() for obj in items}), name="reader")
    m.interrupt_source("tick", 4, lambda: _tick(m), cpu=1, rate_per_s=2e6)


def _tick(m):
    m.count("ticks")
    yield work(30)


def _disk_done():
    yield note("done")


def _disk(m):
    yield m.env.timeout(150)
    m.interrupt(0, SPLBIO, _disk_done)


def _two_steps():
    yield work(100)
    yield work(100)


@scenario(description="Two CPUs work while a disk (a SimPy process) interrupts CPU0 at 150 ns")
def disk_interrupt(m, variant):
    m.spawn(_two_steps())
    m.spawn(_two_steps())
    m.env.process(_disk(m))
