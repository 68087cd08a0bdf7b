"""Lock statistics: exact counts, waits, holds, percentiles, bounces and utilisation.

The runs here are scripted so that every wait and hold is known in
advance; the statistics must reproduce them exactly (simulated time has no
sampling error).  Percentiles follow numpy's default (linear) method.
"""

from __future__ import annotations

import io

import numpy as np
import pytest

from conftest import free_costs, simulate, stat_of
from smpvm import SleepMutex, SpinMutex, Sx, work
from smpvm.lockstat import CSV_FIELDS, fmt_ns, plain_table, write_csv

HOLDS = [10, 250, 40, 40, 1000, 5, 70, 300, 90, 120, 15]


def _serial_holds(holds, name="L"):
    """One CPU takes the lock once per hold time: no waiting, known holds."""
    def setup(m):
        lk = SleepMutex(m, name)

        def t():
            for h in holds:
                yield lk.lock()
                yield work(h)
                yield lk.unlock()
                yield work(1000)
        m.spawn(t())
    return setup


def test_hold_times_and_their_percentiles_are_exact():
    r = simulate(_serial_holds(HOLDS))
    s = stat_of(r, "L")
    assert s.acquisitions == len(HOLDS)
    assert s.contended == 0 and s.wait_total_ns == 0
    assert s.hold_total_ns == sum(HOLDS)
    assert s.hold_max_ns == max(HOLDS)
    assert s.hold_mean_ns == pytest.approx(sum(HOLDS) / len(HOLDS))
    assert s.hold_p50_ns == pytest.approx(np.percentile(HOLDS, 50))
    assert s.hold_p99_ns == pytest.approx(np.percentile(HOLDS, 99))
    assert s.utilization == pytest.approx(sum(HOLDS) / r.time_ns)


@pytest.mark.parametrize("holds", [[7], [3, 1], list(range(1, 101)), [5] * 9,
                                   [1, 10**9, 3, 3, 3], [250, 40, 40, 1000, 5, 70, 300, 90]])
def test_percentiles_match_numpy(holds):
    s = stat_of(simulate(_serial_holds(holds)), "L")
    assert s.hold_p50_ns == pytest.approx(np.percentile(holds, 50))
    assert s.hold_p99_ns == pytest.approx(np.percentile(holds, 99))
    assert s.hold_max_ns == max(holds)


def test_long_runs_summarise_exactly_as_short_ones(monkeypatch):
    """Past a few thousand samples the summary sorts with numpy; every figure stays the same."""
    import smpvm.lockstat as lockstat

    rng = np.random.default_rng(5)
    holds = [int(x) for x in rng.integers(1, 10**6, size=500)]
    short = stat_of(simulate(_serial_holds(holds)), "L")
    monkeypatch.setattr(lockstat, "_NUMPY_FROM", 2)
    long = stat_of(simulate(_serial_holds(holds)), "L")
    assert long == short
    assert all(type(v) is type(getattr(short, f)) for f, v in vars(long).items())


def test_percentiles_of_nothing_are_zero():
    def setup(m):
        SleepMutex(m, "never taken")

        def t():
            yield work(1)
        m.spawn(t())

    s = stat_of(simulate(setup), "never taken")
    assert (s.acquisitions, s.wait_p50_ns, s.wait_p99_ns, s.hold_p99_ns, s.hold_mean_ns) == \
        (0, 0.0, 0.0, 0.0, 0.0)


def test_wait_percentiles_match_numpy():
    """Four CPUs queue at 0, 10, 20, 30 behind a 1000 ns hold: waits known up to order."""
    def setup(m):
        lk = SpinMutex(m, "L")

        def t(arrive_ns):
            yield work(arrive_ns)
            yield lk.lock()
            yield work(1000)
            yield lk.unlock()
        for arrive_ns in (0, 10, 20, 30, 40):
            m.spawn(t(arrive_ns))

    s = stat_of(simulate(setup, seed=3), "L")
    # Grants at 0, 1000, 2000, 3000, 4000 to some order of arrivals 0, 10, 20, 30, 40.
    assert s.wait_total_ns == (1000 + 2000 + 3000 + 4000) - (10 + 20 + 30 + 40)
    assert s.wait_p50_ns == pytest.approx(np.percentile([0, 1000, 2000, 3000, 4000], 50), abs=40)
    assert s.wait_p99_ns == pytest.approx(np.percentile([0, 1000, 2000, 3000, 4000], 99), abs=40)


def test_waits_are_measured_from_request_to_grant():
    """CPU0 holds 0..1000; CPUs 1, 2, 3 ask at 100, 200, 300 and hold 100 each (FIFO-free)."""
    def setup(m):
        lk = SpinMutex(m, "L")

        def t(arrive_ns, hold_ns):
            yield work(arrive_ns)
            yield lk.lock()
            yield work(hold_ns)
            yield lk.unlock()
        m.spawn(t(0, 1000))
        for i in (1, 2, 3):
            m.spawn(t(100 * i, 100))

    r = simulate(setup)
    s = stat_of(r, "L")
    assert (s.acquisitions, s.contended) == (4, 3)
    # Whatever order they are handed the lock in, the grants are at 1000, 1100, 1200,
    # so the waits sum to (1000+1100+1200) - (100+200+300).
    assert s.wait_total_ns == 3300 - 600
    assert s.wait_max_ns <= 1100
    assert s.hold_total_ns == 1300
    assert s.utilization == pytest.approx(1300 / r.time_ns)
    assert r.time_ns == 1300


def test_hand_off_costs_count_as_waiting():
    def setup(m):
        lk = SpinMutex(m, "L")

        def t(arrive_ns):
            yield work(arrive_ns)
            yield lk.lock()
            yield work(500)
            yield lk.unlock()
        m.spawn(t(0))
        m.spawn(t(100))

    s = stat_of(simulate(setup, params=free_costs(handoff_ns=60)), "L")
    assert s.wait_total_ns == 500 - 100 + 60


def test_a_cache_line_bounce_is_counted_when_the_cpu_changes():
    def setup(m):
        lk = SleepMutex(m, "L")

        def t(start_ns, rounds):
            yield work(start_ns)
            for _ in range(rounds):
                yield lk.lock()
                yield work(10)
                yield lk.unlock()
                yield work(200)
        m.spawn(t(0, 3))        # 0, 210, 420
        m.spawn(t(100, 3))      # 100, 310, 520: alternating with CPU0

    s = stat_of(simulate(setup), "L")
    assert (s.acquisitions, s.contended) == (6, 0)
    assert s.bounces == 5       # every acquisition but the very first moved the line


def test_the_same_cpu_never_bounces():
    s = stat_of(simulate(_serial_holds([10] * 5)), "L")
    assert s.bounces == 0


def test_bounces_cost_a_cache_line_transfer():
    def setup(m):
        lk = SleepMutex(m, "L")

        def t(start_ns):
            yield work(start_ns)
            yield lk.lock()
            yield lk.unlock()
        m.spawn(t(0))
        m.spawn(t(100))

    r = simulate(setup, params=free_costs(acquire_ns=20, cacheline_ns=100))
    s = stat_of(r, "L")
    assert s.bounces == 1
    # The second acquisition paid 20 + 100: that is the only thing after 100 ns.
    assert r.time_ns == 100 + 20 + 100


def test_trylock_failures_are_counted_apart():
    def setup(m):
        lk = SleepMutex(m, "L")

        def holder():
            yield lk.lock()
            yield work(100)
            yield lk.unlock()

        def trier():
            for _ in range(3):
                yield lk.trylock()
        m.spawn(holder())
        m.spawn(trier())

    s = stat_of(simulate(setup), "L")
    assert (s.acquisitions, s.try_failures, s.contended) == (1, 3, 0)


def test_classes_group_instances_and_utilisation_divides_by_them():
    def setup(m):
        locks = [SleepMutex(m, "vm object", instance=i) for i in range(4)]

        def t(lk):
            yield lk.lock()
            yield work(500)
            yield lk.unlock()
            yield work(500)
            yield lk.lock()             # keeps the run going to 1000
            yield lk.unlock()
        for lk in locks:
            m.spawn(t(lk))

    r = simulate(setup)
    assert [s.name for s in r.lockstat] == ["vm object"]
    s = r.lockstat[0]
    assert (s.instances, s.acquisitions, s.hold_total_ns) == (4, 8, 2000)
    assert r.time_ns == 1000
    assert s.utilization == pytest.approx(2000 / (1000 * 4))


def test_shared_holds_are_all_counted():
    def setup(m):
        lk = Sx(m, "L")

        def reader():
            yield lk.slock()
            yield work(300)
            yield lk.sunlock()
        for _ in range(3):
            m.spawn(reader())

    s = stat_of(simulate(setup), "L")
    assert (s.acquisitions, s.contended, s.hold_total_ns) == (3, 0, 900)


def test_classes_are_listed_in_creation_order():
    def setup(m):
        names = ["zeta", "alpha", "mid"]
        locks = [SleepMutex(m, n) for n in names]

        def t():
            for lk in reversed(locks):
                yield lk.lock()
                yield lk.unlock()
        m.spawn(t())

    assert [s.name for s in simulate(setup).lockstat] == ["zeta", "alpha", "mid"]


def test_statistics_can_be_turned_off():
    assert simulate(_serial_holds([10, 20]), lockstat=False).lockstat == []


def test_csv_and_plain_table():
    r = simulate(_serial_holds([10, 30], name="pmap lock"))
    buf = io.StringIO()
    write_csv(r.lockstat, buf)
    lines = buf.getvalue().splitlines()
    assert lines[0].split(",") == CSV_FIELDS
    row = dict(zip(CSV_FIELDS, lines[1].split(",")))
    assert row["name"] == "pmap lock" and row["acquisitions"] == "2"
    assert row["hold_total_ns"] == "40" and row["hold_mean_ns"] == "20"
    table = plain_table(r.lockstat).splitlines()
    assert table[0].split() == ["class", "acq", "contended", "wait", "mean", "wait", "max",
                                "hold", "mean", "util"]
    assert table[1].startswith("pmap lock") and "20 ns" in table[1]


@pytest.mark.parametrize("ns,text", [(840, "840 ns"), (12_500, "12.5 us"),
                                     (3_200_000, "3.20 ms"), (1_500_000_000, "1.50 s")])
def test_durations_for_people(ns, text):
    assert fmt_ns(ns) == text


def test_utilisation_counts_overlapping_readers_once():
    """Two readers holding an rwlock over the same 1000 ns keep it busy 1000 ns, not 2000."""
    from smpvm import FREE, Machine, RwLock, work

    m = Machine(seed=0, costs=FREE)
    rw = RwLock(m, "object lock")

    def reader():
        yield rw.rlock()
        yield work(1000)
        yield rw.runlock()

    m.spawn(reader(), "r0")
    m.spawn(reader(), "r1")
    r = m.run()
    s = next(x for x in r.lockstat if x.name == "object lock")
    assert s.hold_total_ns == 2000
    assert r.time_ns == 1000
    assert s.utilization == 1.0
