"""Lock kinds: who may hold them together, who gets them next, what misuse is.

For each kind the tests show the rule that distinguishes it: writer
preference of ``sx`` and ``rw`` against the reader preference of Linux
``rwlock_t``; arrival order of the FIFO kinds (Linux mutex, ticket and
queued spin locks) and its absence elsewhere; recursion rules; upgrade and
downgrade; trylocks, which never wait; adaptive spinning; and how a ticket
lock's hand-off slows as spinners pile up while a queued lock's does not.
Costs are zero unless a test sets them, so times are exact.
"""

from __future__ import annotations

import pytest

from conftest import RandomWalk, free_costs, simulate, simulate_traced, stat_of
from smpvm import (IrqSpinlock, LockMap, LockPool, Mutex, QueuedLock, RwLock, RwlockT,
                   SleepMutex, Spinlock, SpinMutex, Sx, TicketLock, kassert, might_lock,
                   pause, work)

EXCLUSIVE_KINDS = [SleepMutex, SpinMutex, Spinlock, IrqSpinlock, Mutex, TicketLock, QueuedLock]


def xlock(lk):
    """The exclusive acquisition of any kind."""
    if isinstance(lk, Sx):
        return lk.xlock()
    if isinstance(lk, RwLock):
        return lk.wlock()
    if isinstance(lk, RwlockT):
        return lk.write_lock()
    return lk.lock()


def xunlock(lk):
    if isinstance(lk, Sx):
        return lk.xunlock()
    if isinstance(lk, RwLock):
        return lk.wunlock()
    if isinstance(lk, RwlockT):
        return lk.write_unlock()
    return lk.unlock()


def slock(lk):
    """The shared acquisition of a reader/writer kind."""
    if isinstance(lk, Sx):
        return lk.slock()
    if isinstance(lk, RwLock):
        return lk.rlock()
    return lk.read_lock()


def sunlock(lk):
    if isinstance(lk, Sx):
        return lk.sunlock()
    if isinstance(lk, RwLock):
        return lk.runlock()
    return lk.read_unlock()


def acquire_times(records, label="L"):
    """(time, cpu) of every acquisition of lock ``label``, in trace order."""
    return [(x.time_ns, x.cpu) for x in records if x.action == "acquire" and x.target == label]


# -- mutual exclusion ---------------------------------------------------------------------------


def _counter_under(kind, threads=3, rounds=4):
    """Threads increment a counter in two separate steps, under ``kind``; none may be lost."""
    def setup(m):
        lk = kind(m, "L")
        box = m.shared("counter", value=0, inside=0)

        def t():
            for _ in range(rounds):
                yield xlock(lk)
                box.inside += 1
                kassert(box.inside == 1, f"{box.inside} CPUs inside {lk.kind}")
                v = yield box.load("value")
                yield box.store("value", v + 1)
                box.inside -= 1
                yield xunlock(lk)
        for _ in range(threads):
            m.spawn(t())
        m.on_quiescence(lambda: kassert(box.value == threads * rounds, "lost update"))
    return setup


@pytest.mark.parametrize("kind", EXCLUSIVE_KINDS + [Sx, RwLock, RwlockT],
                         ids=lambda k: k.__name__)
def test_exclusive_holds_exclude_everyone(kind):
    setup = _counter_under(kind)
    assert simulate(setup).violations == []
    for seed in range(25):
        r = simulate(setup, strategy=RandomWalk(), seed=seed)
        assert r.violations == [], (seed, r.violations)


@pytest.mark.parametrize("kind", [Sx, RwLock, RwlockT], ids=lambda k: k.__name__)
def test_readers_share(kind):
    def setup(m):
        lk = kind(m, "L")
        box = m.shared("readers", now=0, most=0)

        def reader():
            yield slock(lk)
            box.now += 1
            box.most = max(box.most, box.now)
            yield work(100)
            yield pause()                  # runs when the work is done
            box.now -= 1
            yield sunlock(lk)
        for _ in range(3):
            m.spawn(reader())
        m.on_quiescence(lambda: kassert(box.most == 3, f"at most {box.most} readers at once"))

    r = simulate(setup)
    assert r.violations == []
    assert stat_of(r, "L").contended == 0


# -- who goes next ----------------------------------------------------------------------------


def _reader_writer_race(kind):
    """CPU0 reads from 0 to 1000; CPU1 asks to write at 100; CPU2 asks to read at 200."""
    entered = {}

    def setup(m):
        lk = kind(m, "L")

        def first_reader():
            yield slock(lk)
            yield work(1000)
            yield sunlock(lk)

        def writer():
            yield work(100)
            yield xlock(lk)
            entered["writer"] = m.now
            yield work(100)
            yield xunlock(lk)

        def late_reader():
            yield work(200)
            yield slock(lk)
            entered["late reader"] = m.now
            yield work(100)
            yield sunlock(lk)
        m.spawn(first_reader())
        m.spawn(writer())
        m.spawn(late_reader())

    r = simulate(setup)
    assert r.violations == []
    return entered


@pytest.mark.parametrize("kind", [Sx, RwLock], ids=lambda k: k.__name__)
def test_sx_and_rw_prefer_writers(kind):
    # The late reader queues behind the waiting writer.
    assert _reader_writer_race(kind) == {"writer": 1000, "late reader": 1100}


def test_rwlock_t_prefers_readers():
    # The late reader walks past the waiting writer, which gets in after both readers.
    assert _reader_writer_race(RwlockT) == {"late reader": 200, "writer": 1000}


def test_rwlock_t_readers_can_starve_a_writer():
    entered = {}

    def setup(m):
        lk = RwlockT(m, "vmlist_lock")

        def reader(offset):
            yield work(offset)
            for _ in range(5):            # overlapping read holds, never a gap
                yield lk.read_lock()
                yield work(100)
                yield lk.read_unlock()
                yield pause()

        def writer():
            yield work(10)
            yield lk.write_lock()
            entered["writer"] = m.now
            yield lk.write_unlock()
        m.spawn(reader(0))
        m.spawn(reader(50))
        m.spawn(writer())

    simulate(setup)
    assert entered["writer"] >= 500


def test_rw_reader_may_recurse_past_a_waiting_writer():
    def setup(m):
        lk = RwLock(m, "vm object")

        def reader():
            yield lk.rlock()
            yield work(100)
            yield lk.rlock()               # a writer waits now: allowed for a holder
            yield lk.runlock()
            yield lk.runlock()

        def writer():
            yield work(50)
            yield lk.wlock()
            yield lk.wunlock()
        m.spawn(reader())
        m.spawn(writer())

    assert simulate(setup).violations == []


def test_sx_reader_recursing_past_a_waiting_writer_deadlocks():
    def setup(m):
        lk = Sx(m, "map lock")

        def reader():
            yield lk.slock()
            yield work(100)
            yield lk.slock()               # queues behind the writer, which waits for us
            yield lk.sunlock()
            yield lk.sunlock()

        def writer():
            yield work(50)
            yield lk.xlock()
            yield lk.xunlock()
        m.spawn(reader(), name="reader")
        m.spawn(writer(), name="writer")

    r = simulate(setup, witness=False)
    assert r.kinds() == ["deadlock"]
    assert r.violations[0].extra["cycle"] == ["CPU0"]


@pytest.mark.parametrize("kind", [Mutex, TicketLock, QueuedLock], ids=lambda k: k.__name__)
def test_fifo_kinds_grant_in_arrival_order_under_timed(kind):
    def setup(m):
        lk = kind(m, "L")

        def holder():
            yield lk.lock()
            yield work(1000)
            yield lk.unlock()

        def waiter(arrive_ns):
            yield work(arrive_ns)
            yield lk.lock()
            yield work(10)
            yield lk.unlock()
        m.spawn(holder())
        for arrive_ns in (40, 10, 30, 20):      # CPUs 1..4 arrive in order 2, 4, 3, 1
            m.spawn(waiter(arrive_ns))

    _, recs = simulate_traced(setup)
    assert [cpu for _, cpu in acquire_times(recs)] == [0, 2, 4, 3, 1]


@pytest.mark.parametrize("kind", [Mutex, TicketLock, QueuedLock], ids=lambda k: k.__name__)
def test_fifo_kinds_grant_in_wait_order_under_exploration(kind):
    def setup(m):
        lk = kind(m, "L")

        def t():
            for _ in range(2):
                yield lk.lock()
                yield pause()
                yield lk.unlock()
        for _ in range(4):
            m.spawn(t())

    for seed in range(20):
        r, recs = simulate_traced(setup, strategy=RandomWalk(), seed=seed)
        assert r.violations == []
        waits = [x.cpu for x in recs if x.action == "wait"]
        assert len(waits) >= 2
        assert _acquisitions_after_a_wait(recs) == waits, seed


def _acquisitions_after_a_wait(recs):
    """CPUs of the acquisitions that ended a wait, in the order they were granted."""
    out, waiting = [], set()
    for x in recs:
        if x.action == "wait":
            waiting.add(x.cpu)
        elif x.action == "acquire" and x.cpu in waiting:
            waiting.discard(x.cpu)
            out.append(x.cpu)
    return out


@pytest.mark.parametrize("kind", [SleepMutex, Spinlock], ids=lambda k: k.__name__)
def test_unordered_kinds_let_the_strategy_pick_the_next_holder(kind):
    def setup(m):
        lk = kind(m, "L")

        def t(arrive_ns):
            yield work(arrive_ns)
            yield lk.lock()
            yield work(1000)
            yield lk.unlock()
        for arrive_ns in (0, 10, 20, 30):
            m.spawn(t(arrive_ns))

    orders = set()
    for seed in range(12):
        r, recs = simulate_traced(setup, seed=seed)
        assert r.violations == []
        assert r.decisions >= 2             # the hand-offs with two or more waiters
        orders.add(tuple(cpu for _, cpu in acquire_times(recs)))
    assert len(orders) > 1
    assert all(order[0] == 0 for order in orders)


# -- recursion and misuse ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", [SleepMutex, SpinMutex, Mutex, Spinlock, TicketLock],
                         ids=lambda k: k.__name__)
def test_taking_a_non_recursive_lock_twice_is_recursion(kind):
    def setup(m):
        lk = kind(m, "L", instance="obj")

        def t():
            yield lk.lock()
            yield lk.lock()
        m.spawn(t())

    r = simulate(setup)
    assert r.kinds() == ["recursion"]
    assert f"recursive acquisition of non-recursive {kind.kind} L[obj]" in r.violations[0].message


def test_a_recursive_sleep_mutex_needs_as_many_unlocks():
    got = {}

    def setup(m):
        lk = SleepMutex(m, "Giant", recursive=True)

        def owner():
            yield lk.lock()
            yield lk.lock()
            yield work(100)
            yield lk.unlock()
            yield work(100)                 # still held once
            yield lk.unlock()

        def other():
            yield work(50)
            yield lk.lock()
            got["at"] = m.now
            yield lk.unlock()
        m.spawn(owner())
        m.spawn(other())

    r = simulate(setup)
    assert r.violations == []
    assert got == {"at": 200}
    assert stat_of(r, "Giant").acquisitions == 2      # a recursion is not an acquisition


@pytest.mark.parametrize("first,second,words", [
    ("x", "s", "shared acquisition of sx L already held exclusive"),
    ("s", "x", "exclusive acquisition of sx L already held shared"),
    ("x", "x", "recursive acquisition of non-recursive sx L"),
])
def test_sx_mode_recursion_is_reported(first, second, words):
    def setup(m):
        lk = Sx(m, "L")

        def t():
            yield lk.xlock() if first == "x" else lk.slock()
            yield lk.xlock() if second == "x" else lk.slock()
        m.spawn(t())

    r = simulate(setup)
    assert r.kinds() == ["recursion"]
    assert words in r.violations[0].message


def test_a_second_shared_hold_needs_a_second_release():
    """(Witness off: whether it warns about shared recursion is its own business.)"""
    got = {}

    def setup(m):
        lk = Sx(m, "L")

        def reader():
            yield lk.slock()
            yield lk.slock()
            yield work(100)
            yield lk.sunlock()
            yield work(100)
            yield lk.unlock()              # sx_unlock: whichever mode is held

        def writer():
            yield work(10)
            yield lk.xlock()
            got["at"] = m.now
            yield lk.xunlock()
        m.spawn(reader())
        m.spawn(writer())

    r = simulate(setup, witness=False)
    assert r.violations == []
    assert got == {"at": 200}


@pytest.mark.parametrize("make_ops,words", [
    (lambda lk: [lk.unlock()], "release of sleep mutex L not held by CPU0"),
    (lambda lk: [lk.lock(), lk.unlock(), lk.unlock()], "not held"),
], ids=["never-taken", "released-twice"])
def test_releasing_a_lock_not_held_is_reported(make_ops, words):
    def setup(m):
        lk = SleepMutex(m, "L")

        def t():
            for op in make_ops(lk):
                yield op
        m.spawn(t())

    r = simulate(setup)
    assert r.kinds() == ["unlock-not-held"]
    assert words in r.violations[0].message


def test_releasing_in_the_wrong_mode_is_reported():
    def setup(m):
        lk = RwLock(m, "L")

        def t():
            yield lk.rlock()
            yield lk.wunlock()
        m.spawn(t())

    r = simulate(setup)
    assert r.kinds() == ["unlock-not-held"]
    assert "held s, released x" in r.violations[0].message


def test_releasing_a_lock_another_cpu_holds_is_reported():
    def setup(m):
        lk = SleepMutex(m, "L")

        def owner():
            yield lk.lock()
            yield work(100)
            yield lk.unlock()

        def thief():
            yield work(10)
            yield lk.unlock()
        m.spawn(owner())
        m.spawn(thief())

    r = simulate(setup)
    assert r.kinds() == ["unlock-not-held"] and r.violations[0].cpu == 1


# -- upgrade and downgrade --------------------------------------------------------------------


def test_try_upgrade_succeeds_only_for_the_sole_reader():
    results = []

    def setup(m):
        lk = RwLock(m, "L")
        box = m.shared("box", writers=0)

        def a():
            yield lk.rlock()
            yield work(100)
            results.append(("with another reader", (yield lk.try_upgrade())))
            yield work(200)                       # B has gone
            ok = yield lk.try_upgrade()
            results.append(("alone", ok))
            box.writers += 1
            yield work(300)
            box.writers -= 1
            yield lk.wunlock()

        def b():
            yield lk.rlock()
            yield work(150)
            yield lk.runlock()
            yield work(200)
            yield lk.rlock()                      # must wait for A's write hold
            kassert(box.writers == 0, "a reader got in beside the upgraded writer")
            results.append(("b read again", m.now))
            yield lk.runlock()
        m.spawn(a())
        m.spawn(b())

    r = simulate(setup)
    assert r.violations == []
    assert results == [("with another reader", False), ("alone", True), ("b read again", 600)]


def test_try_upgrade_without_a_read_hold_is_reported():
    def setup(m):
        lk = RwLock(m, "L")

        def t():
            yield lk.try_upgrade()
        m.spawn(t())

    r = simulate(setup)
    assert r.kinds() == ["unlock-not-held"]
    assert "try_upgrade of L not read-held" in r.violations[0].message


def test_downgrade_lets_waiting_readers_in_but_keeps_writers_out():
    entered = {}

    def setup(m):
        lk = RwLock(m, "L")

        def a():
            yield lk.wlock()
            yield work(100)
            yield lk.downgrade()
            entered["a downgraded"] = m.now
            yield work(500)
            yield lk.runlock()

        def reader():
            yield work(10)
            yield lk.rlock()
            entered["reader"] = m.now
            yield work(50)
            yield lk.runlock()

        def writer():
            yield work(200)
            yield lk.wlock()
            entered["writer"] = m.now
            yield lk.wunlock()
        m.spawn(a())
        m.spawn(reader())
        m.spawn(writer())

    r = simulate(setup)
    assert r.violations == []
    assert entered == {"a downgraded": 100, "reader": 100, "writer": 600}


def test_downgrade_without_a_write_hold_is_reported():
    def setup(m):
        lk = RwLock(m, "L")

        def t():
            yield lk.rlock()
            yield lk.downgrade()
        m.spawn(t())

    r = simulate(setup)
    assert r.kinds() == ["unlock-not-held"]


# -- trylocks ---------------------------------------------------------------------------------


TRYLOCKS = [
    (SleepMutex, lambda lk: lk.trylock()),
    (SpinMutex, lambda lk: lk.trylock()),
    (Mutex, lambda lk: lk.mutex_trylock()),
    (Spinlock, lambda lk: lk.spin_trylock()),
    (Sx, lambda lk: lk.try_xlock()),
    (RwLock, lambda lk: lk.try_wlock()),
    (RwlockT, lambda lk: lk.write_trylock()),
]


@pytest.mark.parametrize("kind,trylock", TRYLOCKS, ids=[k.__name__ for k, _ in TRYLOCKS])
def test_a_failed_trylock_returns_at_once_and_adds_no_wait(kind, trylock):
    results = []

    def setup(m):
        lk = kind(m, "L")

        def holder():
            yield xlock(lk)
            yield work(1000)
            yield xunlock(lk)

        def trier():
            yield work(100)
            ok = yield trylock(lk)         # at 100, while the holder holds it
            yield pause()
            results.append((ok, m.now))     # the pause began when the attempt ended
            yield work(1000)
            ok = yield trylock(lk)         # at 1107, after the release at 1000
            yield pause()
            results.append((ok, m.now))
            yield xunlock(lk)
        m.spawn(holder())
        m.spawn(trier())

    r, recs = simulate_traced(setup, params=free_costs(acquire_ns=7))
    assert r.violations == []
    # The failed attempt cost one acquire_ns and no waiting; the later one succeeded.
    assert results == [(False, 107), (True, 1114)]
    assert [x.action for x in recs if x.action in ("wait", "trylock-fail")] == ["trylock-fail"]
    s = stat_of(r, "L")
    assert (s.acquisitions, s.contended, s.try_failures) == (2, 0, 1)
    assert s.wait_max_ns <= 7                 # nothing beyond the cost of the attempt


def test_a_trylock_adds_no_lock_order():
    def setup(m):
        a, b = SleepMutex(m, "a"), SleepMutex(m, "b")

        def t():
            yield a.lock()
            ok = yield b.trylock()           # b after a, but only tried
            kassert(ok, "b was free")
            yield b.unlock()
            yield a.unlock()
            yield b.lock()
            yield a.lock()                   # the reverse order, taken for real
            yield a.unlock()
            yield b.unlock()
        m.spawn(t())

    r = simulate(setup)
    assert r.violations == []
    assert [(e["from"], e["to"]) for e in r.witness_edges] == [("b", "a")]


# -- spinning, blocking and hand-off costs -------------------------------------------------------


HANDOFF = free_costs(handoff_ns=100, block_wakeup_ns=3000)


def _grant_after_release(kind, owner_blocked=False):
    """When does a waiter get ``kind`` released at 1000 (costs: hand-off 100, wake-up 3000)?"""
    def setup(m):
        lk = kind(m, "L")
        other = SleepMutex(m, "other")

        def owner():
            yield xlock(lk)
            yield work(10)
            if owner_blocked:
                yield other.lock()           # held by CPU2 until 1000: the owner is asleep
                yield other.unlock()
            else:
                yield work(990)
            yield xunlock(lk)

        def waiter():
            yield work(100)
            yield xlock(lk)
            yield xunlock(lk)

        def blocker():
            yield other.lock()
            yield work(1000)
            yield other.unlock()
        m.spawn(owner())
        m.spawn(waiter())
        m.spawn(blocker())

    r, recs = simulate_traced(setup, params=HANDOFF, witness=False)
    assert r.violations == []
    return [t for t, cpu in acquire_times(recs) if cpu == 1][0]


@pytest.mark.parametrize("kind,spins", [(SpinMutex, True), (Spinlock, True), (TicketLock, True),
                                        (QueuedLock, True), (Sx, False), (Mutex, False)],
                         ids=lambda k: getattr(k, "__name__", str(k)))
def test_spinning_kinds_hand_off_fast_and_sleeping_kinds_pay_a_wakeup(kind, spins):
    assert _grant_after_release(kind) == (1100 if spins else 4000)


def test_an_adaptive_mutex_spins_while_its_owner_runs_and_blocks_otherwise():
    assert _grant_after_release(SleepMutex, owner_blocked=False) == 1100
    # The owner waits on another lock: the waiter blocks and pays a full wake-up.
    assert _grant_after_release(SleepMutex, owner_blocked=True) >= 1000 + 3000


def _handoff_gaps(kind, spinners):
    """Times between successive grants when ``spinners`` CPUs queue on a free-costs lock."""
    def setup(m):
        lk = kind(m, "L")

        def t(arrive_ns):
            yield work(arrive_ns)
            yield lk.lock()
            yield work(100)
            yield lk.unlock()
        for i in range(spinners + 1):
            m.spawn(t(i))

    r, recs = simulate_traced(setup, params=free_costs(handoff_ns=100, ticket_per_spinner_ns=50))
    assert r.violations == []
    times = [t for t, _ in acquire_times(recs)]
    return [b - a - 100 for a, b in zip(times, times[1:])]   # minus the hold


def test_ticket_hand_off_slows_with_the_number_of_spinners():
    gaps = _handoff_gaps(TicketLock, 6)
    # Each hand-off costs more the more CPUs still spin; the last, with one spinner, least.
    assert gaps == sorted(gaps, reverse=True)
    assert gaps[0] > gaps[-1] >= 100
    assert gaps[0] - gaps[-1] == 50 * (len(gaps) - 1)


def test_queued_lock_hand_off_is_constant():
    assert _handoff_gaps(QueuedLock, 6) == [100] * 6


# -- pools and pseudo-locks ------------------------------------------------------------------


def test_lock_pool_hashes_addresses_to_shared_stripes():
    seen = {}

    def setup(m):
        pool = LockPool(m, "pa_lock", count=4, shift=21)
        two_mb = 1 << 21
        seen["same frame"] = pool.lock_for(0x1000) is pool.lock_for(two_mb - 1)
        seen["next frame"] = pool.lock_for(two_mb) is pool.lock_for(0)
        seen["wraps"] = pool.lock_for(4 * two_mb) is pool.lock_for(0)
        seen["index"] = [pool.index_for(k * two_mb) for k in range(6)]
        seen["getitem"] = pool[1] is pool.lock_for(two_mb)
        seen["label"] = pool.lock_for(3 * two_mb).label()
        a, b = pool.lock_for(0), pool.lock_for(two_mb)

        def t():
            yield a.lock()
            yield b.lock()                  # two stripes of one class: duplicate-ok
            yield b.unlock()
            yield a.unlock()
        m.spawn(t())

    r = simulate(setup)
    assert r.violations == []
    assert seen == {"same frame": True, "next frame": False, "wraps": True,
                    "index": [0, 1, 2, 3, 0, 1], "getitem": True, "label": "pa_lock[3]"}
    s = stat_of(r, "pa_lock")
    assert (s.instances, s.acquisitions) == (3, 2)      # stripes 0, 1 and 3 were made


@pytest.mark.parametrize("count,shift,words", [(0, 21, "count >= 1"), (4, -1, "shift >= 0")])
def test_lock_pool_rejects_bad_geometry(count, shift, words):
    def setup(m):
        LockPool(m, "pa_lock", count=count, shift=shift)

    with pytest.raises(Exception, match=words):
        simulate(setup)


def test_a_lock_map_never_contends_and_might_lock_only_orders():
    inside = []

    def setup(m):
        reclaim = LockMap(m, "fs_reclaim")
        mtx = Mutex(m, "cma_mutex")

        def t(i):
            yield reclaim.acquire()
            inside.append(i)
            yield work(100)
            yield might_lock(mtx)
            yield reclaim.release()
            yield reclaim.might_enter()
        m.spawn(t(0))
        m.spawn(t(1))

    r = simulate(setup)
    assert r.violations == []
    assert sorted(inside) == [0, 1]
    assert r.time_ns == 100                 # both held the map at once
    assert ("fs_reclaim", "cma_mutex") in {(e["from"], e["to"]) for e in r.witness_edges}
    assert stat_of(r, "cma_mutex").acquisitions == 0
