"""Witness: the locking self-test table, and what a report says.

The table in ``tests/models/witness_cases.py`` mirrors the case families of
Linux's ``lib/locking-selftest.c``.  Each case runs with every lock kind it
applies to, in every order of its events (all 24 for four events), both with
every event on one CPU and with each event on its own CPU; the set of
violation kinds found must be the case's verdict for that kind every time.
Since the events of one run are taken strictly one after another, no run
can deadlock for real: whatever is reported comes from the order history.
"""

from __future__ import annotations

import itertools
import os

import pytest

from conftest import MODELS, RandomWalk, Scripted, free_costs, simulate
from smpvm import (Mutex, Replay, RwlockT, SleepMutex, Spinlock, SpinMutex, Sx, load_target,
                   may_sleep, run_scenario, splbio, splx, work)
from smpvm.scenario import load_module
from smpvm.report.lorgraph import witness_digraph
from smpvm.witness import observe

CASES_FILE = os.path.join(MODELS, "witness_cases.py")
TABLE = load_module(CASES_FILE)
#: Violation kinds a verdict speaks about (the locks' own misuse checks included).
CHECKED = {"lock-order-reversal", "spl-violation", "sleep-with-spinlock", "sleep-in-atomic", "recursion",
           "unlock-not-held"}


def verdict(case_name, kind, order, placement):
    case = TABLE.CASES[case_name]
    scn = load_target(f"{CASES_FILE}::{case.scenario}")
    params = dict(free_costs(), case=case_name, kind=kind,
                  order=",".join(map(str, order)), placement=placement)
    strategy = Scripted(order if placement == "spread" else [0])
    r = run_scenario(scn, params=params, strategy=strategy)
    return {v.kind for v in r.violations} & CHECKED, r


TABLE_ROWS = [(name, kind) for name, case in TABLE.CASES.items() for kind in case.verdicts]


@pytest.mark.parametrize("case_name,kind", TABLE_ROWS, ids=[f"{c}-{k}" for c, k in TABLE_ROWS])
def test_selftest_table(case_name, kind):
    case = TABLE.CASES[case_name]
    expected = set(case.verdicts[kind])
    for order in itertools.permutations(range(len(case.events))):
        for placement in ("one", "spread"):
            got, r = verdict(case_name, kind, order, placement)
            assert got == expected, (
                f"{case_name} with {kind}, events in order {order} on {placement} CPU(s): "
                f"expected {sorted(expected) or 'silent'}, got {sorted(got) or 'silent'}: "
                + "; ".join(v.message for v in r.violations))
            assert "deadlock" not in r.kinds()


def test_table_covers_the_selftest_families():
    names = set(TABLE.CASES)
    for family in ("AA", "ABBA", "ABBCCA", "ABCABC", "ABBCCDDA", "double-unlock",
                   "bad-unlock-order", "AA-dupok", "irq-safe-A-unsafe-B",
                   "read-AA-two-instances"):
        assert family in names
    # Each case says something for each kind it applies to, and some cases are silent.
    assert all(case.verdicts for case in TABLE.CASES.values())
    assert any(not v for case in TABLE.CASES.values() for v in case.verdicts.values())


# -- what a report says --------------------------------------------------------------


def _abba(m, cpu_of_second=1):
    a, b = SleepMutex(m, "A"), SleepMutex(m, "B")

    def first():
        yield a.lock()
        yield b.lock()
        yield b.unlock()
        yield a.unlock()

    def second():
        yield b.lock()
        yield a.lock()
        yield a.unlock()
        yield b.unlock()

    m.spawn(first(), name="first")
    m.spawn(second(), name="second")


def test_reversal_names_both_sites_and_the_established_order():
    r = simulate(_abba, strategy=Scripted([0, 1]))
    [v] = r.violations
    assert v.kind == "lock-order-reversal"
    assert v.message.startswith("lock order reversal: 1st B (sleep mutex) @ tests/test_witness.py:")
    assert "/ 2nd A (sleep mutex) @ tests/test_witness.py:" in v.message
    assert "established order A @ tests/test_witness.py:" in v.message
    assert v.extra["cycle"] == ["B", "A", "B"]
    attempted, established = v.extra["sites"]
    assert attempted["edge"] == ["B", "A"] and attempted["attempted"]
    assert established["edge"] == ["A", "B"] and established["ctx"] == "first"
    assert all(s["first"].startswith("tests/test_witness.py:") for s in v.extra["sites"])


def _line_of(marker: str) -> str:
    """``tests/test_witness.py:N`` of the line holding ``marker`` (a comment) in this file."""
    with open(__file__) as f:
        for n, line in enumerate(f, 1):
            if line.rstrip().endswith(f"# {marker}"):
                return f"tests/test_witness.py:{n}"
    raise AssertionError(marker)


def test_sites_are_the_exact_lines_through_helpers_and_reused_hold_records():
    """A hold's site is where that acquisition happened, even deep in ``yield from``
    helpers and after the lock's previous hold record was reused."""
    def setup(m):
        a, b = SleepMutex(m, "A"), SleepMutex(m, "B")

        def take(lk):
            yield lk.lock()  # site: helper

        def first():
            yield a.lock()  # site: first A
            yield a.unlock()
            yield from take(a)
            yield b.lock()  # site: B under A
            yield b.unlock()
            yield a.unlock()

        def second():
            yield work(1000)
            yield b.lock()  # site: B first
            yield a.lock()  # site: A under B
            yield a.unlock()
            yield b.unlock()

        m.spawn(first(), name="first")
        m.spawn(second(), name="second")

    r = simulate(setup)
    [v] = r.violations
    assert v.kind == "lock-order-reversal"
    attempted, established = v.extra["sites"]
    assert (attempted["first"], attempted["second"]) == (_line_of("site: B first"),
                                                         _line_of("site: A under B"))
    assert (established["first"], established["second"]) == (_line_of("site: helper"),
                                                             _line_of("site: B under A"))


def test_longer_cycles_print_the_whole_chain():
    def setup(m):
        locks = {n: SleepMutex(m, n) for n in "ABCD"}

        def pair(x, y):
            yield locks[x].lock()
            yield locks[y].lock()
            yield locks[y].unlock()
            yield locks[x].unlock()

        for x, y in ("AB", "BC", "CD", "DA"):
            m.spawn(pair(x, y), name=f"{x}{y}")

    r = simulate(setup, strategy=Scripted([0, 1, 2, 3]))
    [v] = r.violations
    assert v.extra["cycle"] == ["D", "A", "B", "C", "D"]
    assert "cycle D -> A -> B -> C -> D" in v.message
    assert [s["edge"] for s in v.extra["sites"]] == [["D", "A"], ["A", "B"], ["B", "C"],
                                                     ["C", "D"]]


def test_a_reversal_is_reported_once_per_run_and_the_run_goes_on():
    def setup(m):
        a, b = Spinlock(m, "A"), Spinlock(m, "B")

        def t(x, y, rounds):
            for _ in range(rounds):
                yield x.lock()
                yield y.lock()
                yield y.unlock()
                yield x.unlock()
            m.count("done")

        m.spawn(t(a, b, 3))
        m.spawn(t(b, a, 3))

    r = simulate(setup, strategy=Scripted([0, 1]))
    assert r.kinds() == ["lock-order-reversal"] and len(r.violations) == 1
    assert r.metrics["done"] == 2
    counts = {(e["from"], e["to"]): e["count"] for e in r.witness_edges}
    assert counts == {("A", "B"): 3, ("B", "A"): 3}


def test_stop_at_first_ends_the_run_at_the_reversal():
    scn = load_target(f"{CASES_FILE}::selftest")
    params = dict(free_costs(), case="ABBCCA", kind="mtx", placement="one")
    r = run_scenario(scn, params=params, strategy=Scripted([0]), stop_at_first=True)
    assert r.kinds() == ["lock-order-reversal"]
    # The reversal is found at the first lock of the third pair; nothing ran after it.
    assert r.steps < 12


def test_edges_remember_first_sites_cpu_run_and_count():
    r = simulate(_abba, strategy=Scripted([1, 0]), seed=9)
    ab = next(e for e in r.witness_edges if (e["from"], e["to"]) == ("A", "B"))
    assert ab["cpu"] == 0 and ab["count"] == 1 and not ab["declared"]
    assert ab["first_site"].startswith("tests/test_witness.py:")
    with observe() as seen:
        simulate(_abba, strategy=Scripted([1, 0]), seed=9)
    [edge] = [e for e in seen[0].edge_list() if e["from"] == "A"]
    assert edge["run"] == 9 and edge["types"] == ["EN"] and edge["ctx"] == "first"


def test_every_random_schedule_reports_the_reversal_deadlock_or_not():
    deadlocks = 0
    for seed in range(20):
        r = simulate(_abba, strategy=RandomWalk(), seed=seed)
        lor = [v for v in r.violations if v.kind == "lock-order-reversal"]
        assert len(lor) == 1 and set(lor[0].extra["cycle"]) == {"A", "B"}
        deadlocks += "deadlock" in r.kinds()
    assert 0 < deadlocks < 20  # some runs deadlocked for real; the verdict did not change


def test_a_reversal_found_under_exploration_carries_its_schedule():
    target = f"{MODELS}/tiny.py::abba"
    scn = load_target(target)
    for seed in range(20):
        r = run_scenario(scn, variant="buggy", seed=seed, strategy=RandomWalk())
        lor = [v for v in r.violations if v.kind == "lock-order-reversal"]
        if lor:
            break
    else:
        pytest.fail("no run of tiny.py::abba reported a reversal")
    v = lor[0]
    assert v.choices == r.choices[:len(v.choices)]
    again = run_scenario(scn, variant="buggy", seed=seed,
                         strategy=Replay(r.choices, timed=False))
    assert [x.message for x in again.violations] == [x.message for x in r.violations]


def test_declared_order_is_enrolled_before_the_run():
    with observe() as seen:
        got, _ = verdict("declared-follow", "mtx", (0,), "one")
    assert not got
    declared = [e for e in seen[0].edge_list() if e["declared"]]
    assert [(e["from"], e["to"]) for e in declared] == [("A", "B"), ("B", "C")]
    _, r = verdict("declared-transitive", "mtx", (0,), "one")
    [v] = r.violations
    assert "documented order A -> B -> C" in v.message


def test_sleepable_after_non_sleepable_reads_like_witness():
    def setup(m):
        mtx, sx = SleepMutex(m, "softc mtx"), Sx(m, "cfg sx")

        def t():
            yield mtx.lock()
            yield sx.slock()
            yield sx.sunlock()
            yield mtx.unlock()

        m.spawn(t())

    [v] = simulate(setup).violations
    assert v.kind == "lock-order-reversal"
    assert v.message.startswith("lock order reversal: (sleepable after non-sleepable) "
                                "1st softc mtx (sleep mutex) @ ")
    assert "2nd cfg sx (sx) @ " in v.message


def _bio_lock_run(thread):
    """``thread(lock)`` on CPU0 against a disk handler taking the same spinlock on CPU1."""
    def setup(m):
        lock = Spinlock(m, "bio lock")

        def handler():
            yield lock.lock()
            yield lock.unlock()

        m.interrupt_source("disk", 3, handler, cpu=1, at_ns=[0])
        m.spawn(thread(lock), cpu=0)

    return simulate(setup, strategy=Scripted([1, 0]), cpus=2)


def test_spl_violation_reports_both_sites():
    def thread(lock):
        yield lock.lock()
        yield lock.unlock()
        s = yield splbio()
        yield lock.lock()
        yield lock.unlock()
        yield splx(s)

    [v] = _bio_lock_run(thread).violations
    assert v.kind == "spl-violation"
    # a Linux lock: lockdep's words
    assert v.message.startswith("inconsistent {IN-HARDIRQ-W} -> {HARDIRQ-ON-W} usage: ")
    assert "bio lock (spinlock_t) is taken in hardirq context (irq:disk)" in v.message
    assert "with hardirqs enabled (in thread0)" in v.message
    assert v.extra["safe"]["site"] != v.extra["unsafe"]["site"]
    assert all(v.extra[k]["site"].startswith("tests/test_witness.py:") for k in ("safe", "unsafe"))


def test_a_lock_first_taken_masked_is_still_checked_when_later_taken_unmasked():
    """The usage that matters can come after the same lock was taken at a higher spl."""
    def thread(lock):
        for _ in range(2):
            s = yield splbio()
            yield lock.lock()
            yield lock.unlock()
            yield splx(s)
        yield lock.lock()  # unmasked
        yield lock.unlock()

    [v] = _bio_lock_run(thread).violations
    assert v.kind == "spl-violation"
    assert v.extra["unsafe"]["site"] == _line_of("unmasked")


def test_no_order_edges_across_an_interrupt():
    def setup(m):
        outer, inner = Spinlock(m, "thread lock"), Spinlock(m, "handler lock")

        def handler():
            yield inner.lock()
            yield inner.unlock()

        def thread():
            s = yield splbio()
            yield outer.lock()
            yield splx(s)       # the interrupt arrives here, with "thread lock" held
            s = yield splbio()
            yield outer.unlock()
            yield splx(s)

        m.interrupt_source("disk", 3, handler, cpu=0, at_ns=[0])
        m.spawn(thread(), cpu=0)

    r = simulate(setup)
    assert r.interrupts["disk"]["delivered"] == 1
    # The handler took its lock while the interrupted thread held "thread lock": like
    # lockdep, witness adds no edge across contexts (the spl rules cover that case).
    assert r.witness_edges == [] and r.violations == []


def test_sleeping_rules():
    def setup(m):
        spin, mtx, linux = SpinMutex(m, "sched lock"), SleepMutex(m, "proc lock"), Mutex(m, "m")

        def t():
            yield spin.lock()
            yield mtx.lock()            # blocking lock under a spin mutex
            yield mtx.unlock()
            yield spin.unlock()
            yield mtx.lock()
            yield may_sleep(10, "malloc M_WAITOK")   # sleeping with a sleep mutex held
            yield mtx.unlock()
            yield linux.lock()
            yield may_sleep(10, "GFP_KERNEL")         # fine under a sleepable mutex
            yield linux.unlock()

        m.spawn(t())

    r = simulate(setup)
    msgs = [v.message for v in r.violations]
    assert [v.kind for v in r.violations] == ["sleep-in-atomic", "sleep-with-spinlock"]
    assert msgs[0].startswith("acquiring sleep mutex proc lock (it may block)")
    assert "with spin mutex sched lock held" in msgs[0]
    assert msgs[1].startswith("sleeping (malloc M_WAITOK) with non-sleepable sleep mutex "
                              "proc lock held")


def test_might_lock_of_a_held_lock_is_possible_recursion():
    from smpvm import might_lock

    def setup(m):
        mtx = Mutex(m, "cma_mutex")

        def t():
            yield mtx.lock()
            yield might_lock(mtx)    # reclaim may call a shrinker that takes it again
            yield mtx.unlock()

        m.spawn(t())

    [v] = simulate(setup).violations
    assert v.kind == "lock-order-reversal" and v.extra["cycle"] == ["cma_mutex", "cma_mutex"]
    assert v.message.startswith("possible recursive locking of mutex cma_mutex")


def test_reclaim_map_closes_a_cycle_through_a_shrinker():
    from smpvm import LockMap

    def setup(m):
        cma, reclaim = Mutex(m, "cma_mutex"), LockMap(m, "fs_reclaim")

        def allocator():
            yield cma.lock()
            yield reclaim.might_enter()          # migration may enter reclaim
            yield cma.unlock()

        def kswapd():
            yield reclaim.acquire()
            yield cma.lock()                     # a shrinker frees CMA pages
            yield may_sleep(10, "shrinker")      # sleeping under the map is fine
            yield cma.unlock()
            yield reclaim.release()

        m.spawn(allocator())
        m.spawn(kswapd())

    r = simulate(setup, strategy=Scripted([0, 1]))
    [v] = r.violations
    assert v.kind == "lock-order-reversal"
    assert set(v.extra["cycle"]) == {"cma_mutex", "fs_reclaim"}


def test_readers_of_rwlock_t_and_sx_differ_only_in_cycles():
    def setup_for(kind):
        def setup(m):
            a, b = kind(m, "A"), kind(m, "B")
            take = (lambda lk: lk.read_lock()) if kind is RwlockT else (lambda lk: lk.slock())
            give = (lambda lk: lk.read_unlock()) if kind is RwlockT else (lambda lk: lk.sunlock())

            def t(x, y):
                yield take(x)
                yield take(y)
                yield give(y)
                yield give(x)

            m.spawn(t(a, b))
            m.spawn(t(b, a))
        return setup

    assert simulate(setup_for(RwlockT), strategy=Scripted([0, 1])).kinds() == []
    assert simulate(setup_for(Sx), strategy=Scripted([0, 1])).kinds() == ["lock-order-reversal"]


def test_witness_off_sees_nothing():
    r = simulate(_abba, strategy=Scripted([0, 1]), witness=False)
    assert r.violations == [] and r.witness_edges == []


def test_graph_is_a_networkx_view():
    with observe() as seen:
        simulate(_abba, strategy=Scripted([0, 1]))
    g = witness_digraph(seen[0])
    assert sorted(g.edges()) == [("A", "B"), ("B", "A")]
    assert g.nodes["A"]["kind"] == "sleep mutex"
    assert g.edges["B", "A"]["reversal"] and g.edges["A", "B"]["count"] == 1
