"""Iterative preemption and delay bounding: exact counts, minimal bounds, many threads."""

from __future__ import annotations

import json
import os
from math import comb

import pytest

from conftest import MODELS, ROOT, cli, spec_of
from smpvm import load_target, run_spec
from smpvm.search.explore import explore
from smpvm.search.iterative import iterate
from smpvm.strategies.bounding import BoundedTree, Delays, delay_positions, round_robin

SCT = os.path.join(os.path.dirname(__file__), "bench", "sct", "cs.py")


def schedules(target, measure, bound, **spec):
    """Every schedule of ``target`` within ``bound``, as choice tuples."""
    scn = load_target(target)
    tree = BoundedTree(measure, bound)
    out = []
    while True:
        out.append(tuple(run_spec(spec_of(scn, **spec), tree, scn=scn).choices))
        if not tree.advance():
            return out


@pytest.mark.parametrize("bound,expected", [
    (0, {(0, 0), (1, 1)}),
    (1, {(0, 0), (1, 1), (0, 1, 1), (1, 0, 0)}),
    (2, {(0, 0), (1, 1), (0, 1, 1), (1, 0, 0), (0, 1, 0), (1, 0, 1)}),
])
def test_preemption_bound_keeps_exactly_the_schedules_within_it(bound, expected):
    # two threads of two steps; (0, 1, 0) switches twice while the last CPU could go on
    got = schedules(f"{MODELS}/dfs_cases.py::independent", "preemption", bound)
    assert len(got) == len(set(got)) and set(got) == expected


def test_delay_bound_zero_is_one_schedule_and_one_delay_one_per_decision():
    assert schedules(f"{MODELS}/dfs_cases.py::independent", "delay", 0) == [(1, 1)]
    got = schedules(f"{MODELS}/dfs_cases.py::independent", "delay", 1)
    assert sorted(got) == [(0, 0), (1, 0, 0), (1, 1)]


def test_round_robin_goes_down_from_the_last_cpu_and_wraps():
    assert round_robin([0, 2, 3, 5], 3) == [3, 2, 0, 5]
    assert round_robin([1, 2, 4], 0) == [4, 2, 1]  # a joining main: newest thread first


def test_delay_schedules_are_numbered_by_bound_then_position():
    k = 5
    seen = [tuple(delay_positions(i, k, 2)) for i in range(1 + k + comb(k + 1, 2))]
    assert seen[0] == () and seen[1:1 + k] == [(p,) for p in range(k)]
    assert len(set(seen)) == len(seen)
    assert all(len(s) == 2 and s[0] <= s[1] for s in seen[1 + k:])
    assert tuple(delay_positions(len(seen), k, 2)) == ()  # and round again


def test_the_first_failure_is_at_the_fewest_preemptions():
    scn = load_target(f"{MODELS}/tiny.py::check_then_use")
    rep = iterate(spec_of(scn, variant="buggy"), scn=scn, stop_on_first=True)
    assert rep.first_failure_bound == 1 and rep.bound_done == 0
    assert rep.failures[0].kinds() == ["use-after-free"]
    fixed = iterate(spec_of(scn, variant="fixed"), scn=scn, max_bound=2)
    assert fixed.failing_runs == 0 and fixed.bound_done == 2
    assert fixed.repeats > 0 and fixed.schedules == len(set(
        schedules(f"{MODELS}/tiny.py::check_then_use", "preemption", 2, variant="fixed")))


def test_a_small_model_is_used_up_and_says_so():
    scn = load_target(f"{MODELS}/dfs_cases.py::independent")
    rep = iterate(spec_of(scn), scn=scn)
    assert rep.exhausted and rep.bound_done == 2 and rep.schedules == 6


def test_only_the_requested_kind_counts():
    # carter01 reverses two locks at once (witness), and deadlocks only with a preemption
    scn = load_target(f"{SCT}::carter01")
    any_kind = iterate(spec_of(scn), scn=scn, stop_on_first=True)
    assert "lock-order-reversal" in any_kind.failures[0].kinds()
    rep = iterate(spec_of(scn), scn=scn, stop_on_first=True, kind="deadlock")
    assert rep.first_failure_bound == 1 and "deadlock" in rep.failures[0].kinds()


def test_delays_strategy_is_stateless_per_ordinal():
    scn = load_target(f"{SCT}::reorder")
    a = run_spec(spec_of(scn), Delays(max_delays=1, k=40, ordinal=7), scn=scn)
    b = run_spec(spec_of(scn), Delays(max_delays=1, k=40, ordinal=7), scn=scn)
    c = run_spec(spec_of(scn), Delays(max_delays=1, k=40, ordinal=0), scn=scn)
    assert a.choices == b.choices != c.choices


@pytest.mark.parametrize("strategy", ["idb", "portfolio"])
def test_a_depth_one_bug_among_a_hundred_threads(strategy, tmp_path):
    # reorder with 99 setters and one checker (SV-COMP reorder_100): the checker must
    # run first and be preempted between its two reads.  Delay bounding puts that
    # one delay away from its default schedule.
    rep = explore(f"{SCT}::reorder", params={"sets": "99", "checks": "1"}, strategy=strategy,
                  runs=10_000, workers=1, stop_on_first=True, out=tmp_path)
    assert rep.first_failure_run is not None and rep.first_failure_run < 10_000
    assert rep.violations == {"assertion": 1} and rep.bug_depth == 1


# -- the shrinker's last step -------------------------------------------------------------


def _failing_random_run(target, kind, **spec):
    from smpvm import make_strategy
    scn = load_target(target)
    for seed in range(300):
        r = run_spec(spec_of(scn, seed=seed, **spec), make_strategy("random"), scn=scn)
        if kind in r.kinds():
            return scn, seed, r
    raise AssertionError("no failing random run")


def test_the_shrunk_depth_is_the_minimum_even_when_ddmin_gets_no_say():
    from smpvm.search.shrink import count_preemptions, shrink
    scn, seed, r = _failing_random_run(f"{SCT}::twostage", "assertion")
    spec = spec_of(scn, seed=seed)
    assert count_preemptions(spec, r.choices, scn=scn) > 1
    # a budget of two replays leaves ddmin and the probes nothing: only the last step shrinks
    s = shrink(spec, scn=scn, choices=r.choices, kind="assertion", budget=2)
    assert s.minimal and s.preemptions == 1
    assert count_preemptions(spec, s.choices, scn=scn) == 1


def test_a_depth_the_bounded_search_could_not_confirm_is_an_upper_bound():
    from smpvm.search.shrink import shrink
    scn, seed, r = _failing_random_run(f"{SCT}::wronglock", "assertion")
    s = shrink(spec_of(scn, seed=seed), scn=scn, choices=r.choices, kind="assertion",
               exhaustive_budget=50)
    assert s.preemptions >= 1 and not s.minimal  # 8 threads: bound 0 alone is thousands


# -- the benchmark programs' known depths ----------------------------------------------------

#: Small instances, where iterative preemption bounding finishes the bounds below the bug.
SMALL = {"reorder": {"sets": 2}, "wronglock": {"b": 1}, "stack": {"size": 3},
         "circular_buffer": {"n": 3}}


PROGRAMS = ["account", "arithmetic_prog", "bluetooth_driver", "carter01", "circular_buffer",
            "phase01", "reorder", "stack", "sync01", "token_ring", "twostage", "wronglock"]


def test_every_benchmark_program_is_checked():
    from smpvm.scenario import load_module
    assert sorted(load_module(SCT).EXPECTED) == PROGRAMS


@pytest.mark.parametrize("name", PROGRAMS)
def test_each_benchmark_program_fails_its_way_at_its_known_depth(name):
    from smpvm.scenario import load_module
    kind, depth = load_module(SCT).EXPECTED[name]
    scn = load_target(f"{SCT}::{name}")
    rep = iterate(spec_of(scn, params=SMALL.get(name, {})), scn=scn, kind=kind,
                  stop_on_first=True, max_runs=5000)
    assert rep.first_failure_bound == depth and rep.bound_done == depth - 1
    assert kind in rep.failures[0].kinds()


def test_explore_ipb_on_a_model_with_a_device_process(capsys, tmp_path):
    # The disk is a SimPy process: ipb's report says so like dfs's (no crash reading it).
    target = os.path.join(ROOT, "models", "freebsd", "pager_io.py") + "::pageout_vs_terminate"
    rc, out, err = cli(capsys, "explore", target,
                       "--variant", "buggy", "--strategy", "ipb", "--runs", "200",
                       "--workers", "1", "--json", "--out", str(tmp_path / "ipb"))
    d = json.loads(out)
    assert rc == 1 and d["violations"] == {"deadlock": d["failing_runs"]} and d["failing_runs"]
    assert "internal error" not in err
