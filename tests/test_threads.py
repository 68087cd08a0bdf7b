"""Threads started by running threads, and ``join``: honoured by every strategy."""

from __future__ import annotations

import os

import pytest

from conftest import MODELS, spec_of
from smpvm import load_target, make_strategy, run_scenario
from smpvm.search.exhaust import exhaust

CASES = os.path.join(MODELS, "threads_cases.py")
STRATEGIES = ["timed", "random", "pct", "portfolio"]


def case(name):
    return load_target(f"{CASES}::{name}")


def run(name, strategy="timed", seed=0, **kw):
    s = make_strategy(strategy)
    return run_scenario(case(name), strategy=s, seed=seed, **kw)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_thread_started_mid_run_runs_under_every_strategy(strategy):
    for seed in range(5):
        r = run("spawn_direct", strategy, seed)
        assert r.metrics.get("child_ran") == 1, (strategy, seed)
        assert r.ncpus == 2 and not r.violations


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_join_waits_for_the_workers(strategy):
    for seed in range(5):
        r = run("fork_join", strategy, seed, params={"workers": 3})
        assert not r.violations, r.violations
        assert r.metrics["total"] == 6


def test_fork_join_has_no_failing_schedule():
    scn = case("fork_join")
    rep = exhaust(spec_of(scn, params={"workers": 2}), scn=scn)
    assert rep.exhausted and rep.runs > 1 and rep.failing_runs == 0


def test_creation_is_a_scheduling_point():
    # the child can run before the parent's code after the creation, and only
    # then does it fail; timed runs the parent on (lower CPU number wins the tie)
    scn = case("early_child")
    rep = exhaust(spec_of(scn), scn=scn)
    assert rep.exhausted and rep.runs == 2 and rep.failing_runs == 1
    assert rep.failures[0].kinds() == ["assertion"]
    assert not run("early_child").violations


def test_a_join_that_can_never_return_is_a_stall():
    for strategy in ("timed", "random"):
        r = run("join_stuck", strategy)
        assert r.kinds() == ["deadlock"]
        msg = r.violations[0].message
        assert "end of thread sleeper#1" in msg and "never" in msg


def test_trace_shows_the_creation_and_the_child():
    from smpvm.trace import MemorySink
    sink = MemorySink()
    run("fork_join", "random", 1, trace=sink, params={"workers": 2})
    by = {(r.action, r.target): r for r in sink.records}
    spawn, begin = by[("spawn", "worker1")], by[("thread-begin", "worker1")]
    assert spawn.cpu == 0 and begin.cpu == 1 and spawn.time_ns == begin.time_ns
    assert ("thread-end", "worker2") in by


# -- narratives of many threads ---------------------------------------------------------------


def test_a_narrative_of_a_hundred_threads_fits_a_screen(tmp_path):
    from smpvm import Replay
    from smpvm.report.narrative import narrate
    from smpvm.search.explore import explore
    from smpvm.trace import MemorySink
    sct = os.path.join(os.path.dirname(__file__), "bench", "sct", "cs.py")
    rep = explore(f"{sct}::reorder", params={"sets": "99"}, strategy="idb", runs=2000,
                  workers=1, stop_on_first=True, shrink=False, out=tmp_path)
    f = rep.first["assertion"]
    sink = MemorySink()
    run_scenario(load_target(f"{sct}::reorder"), params={"sets": 99}, seed=f.seed,
                 strategy=Replay(f.choices), trace=sink)
    text = narrate(sink.records)
    lines = text.splitlines()
    assert max(map(len, lines)) <= 160
    header = lines[0]
    # the checker and the setter that raced it have columns; 98 others share one
    assert "CPU100 check0" in header and "other CPUs (" in header
    assert header.count("CPU") <= 5
    assert any("steps of" in line for line in lines)
    assert ">>> CPU100 assertion" in text


def test_a_step_that_only_yields_is_shown():
    from smpvm import pause
    from smpvm.report.narrative import narrate
    from smpvm.trace import MemorySink

    def setup(m):
        def t():
            yield pause()
        m.spawn(t(), name="p")

    from conftest import simulate
    sink = MemorySink()
    simulate(setup, trace=sink)
    assert "yield @ test_threads.py:" in narrate(sink.records)


# -- which waiter a signal wakes ---------------------------------------------------------------


def _first_woken(variant):
    scn = case("signal_one")
    seen = set()
    rep = exhaust(spec_of(scn, variant=variant), scn=scn,
                  on_run=lambda i, r: seen.add(r.metrics["first"]))
    assert rep.exhausted and rep.failing_runs == 0
    return seen


def test_wakeup_one_wakes_the_longest_sleeper_by_default():
    assert _first_woken("fifo") == {("a", "a"), ("b", "b")}


def test_any_waiter_lets_the_search_choose_whom_a_signal_wakes():
    assert _first_woken("any") == {("a", "a"), ("a", "b"), ("b", "a"), ("b", "b")}
    for seed in range(3):  # every strategy runs it through, the timed one included
        for strategy in STRATEGIES:
            r = run("signal_one", strategy, seed, variant="any")
            assert not r.violations and r.metrics["first"][0] in "ab"
