"""Spin-waits are fair: a correct busy-wait is clean, a mutual spin is a livelock.

A CPU that polls (``while cond: yield pause()``, ``cpu_relax()``,
``spin_until``) must not starve the CPU it waits for under any strategy:
PCT's top priority, dfs's first branch and the timed view's zero-time pause
all did.  And two CPUs spinning on each other forever are a ``livelock``
with both CPUs named, not a million-step ``max-steps``.  The models are in
``tests/models/coverage_cases.py``.
"""

from __future__ import annotations

import json
import os

import pytest

from conftest import MODELS, cli, spec_of
from smpvm import Replay, load_target, make_strategy, run_scenario
from smpvm.search.exhaust import exhaust
from smpvm.kernel.spin import LIVELOCK_ROUNDS

CASES = os.path.join(MODELS, "coverage_cases.py")
STRATEGIES = [("random", {}), ("pct", {"depth": 2, "k": 20}), ("pct", {"depth": 3, "k": 20})]


def case(name):
    return load_target(f"{CASES}::{name}")


def runs(name, strategy, options, variant=None, seeds=range(100), max_steps=20_000):
    scn = case(name)
    for seed in seeds:
        yield run_scenario(scn, variant=variant, seed=seed, max_steps=max_steps,
                           strategy=make_strategy(strategy, **options))


@pytest.mark.parametrize("variant", ["pause", "cpu_relax", "spin_until"])
@pytest.mark.parametrize("strategy,options", STRATEGIES)
def test_a_correct_busy_wait_is_clean_and_short(variant, strategy, options):
    for r in runs("busy_wait", strategy, options, variant):
        assert r.violations == [], (r.seed, r.kinds())
        assert r.steps < 100           # the waiter re-checks once per step of the other CPU


@pytest.mark.parametrize("variant", ["pause", "spin_until"])
def test_a_correct_busy_wait_is_clean_in_the_timed_view_and_under_dfs(variant):
    scn = case("busy_wait")
    timed = run_scenario(scn, variant=variant, max_steps=20_000)
    assert timed.violations == [] and timed.steps < 200
    report = exhaust(spec_of(scn, variant=variant, seed=0), scn=scn)
    assert report.exhausted and report.failing_runs == 0 and report.runs < 50


@pytest.mark.parametrize("strategy,options", STRATEGIES)
def test_two_cpus_spinning_on_each_other_are_a_livelock_naming_both(strategy, options):
    for r in runs("mutual_spin", strategy, options, seeds=range(5)):
        assert r.kinds() == ["livelock"], r.kinds()
        v = r.violations[0]
        assert v.extra["cycle"] == ["CPU0", "CPU1"]
        assert [s["thread"] for s in v.extra["spins"]] == ["a", "b"]
        assert "coverage_cases.py" in v.extra["spins"][0]["site"]
        assert "livelock: CPU0 -> CPU1 -> CPU0" in v.message
        assert r.steps < 20_000        # found by its rounds, well before the step limit
        again = run_scenario(case("mutual_spin"), seed=r.seed, max_steps=20_000,
                             strategy=Replay(r.choices))
        assert again.kinds() == ["livelock"] and again.steps == r.steps


def test_dfs_reports_the_livelock_too():
    scn = case("mutual_spin")
    report = exhaust(spec_of(scn, seed=0), scn=scn, stop_on_first=True)
    assert report.failing_runs == 1 and report.failures[0].kinds() == ["livelock"]


def test_a_loop_that_makes_progress_is_no_livelock():
    # The worker pauses in place too, but its loop counter changes at every turn.
    for strategy, options in STRATEGIES:
        for r in runs("counting_loop", strategy, options, seeds=range(3)):
            assert r.violations == [], r.kinds()
    assert LIVELOCK_ROUNDS < 1500


def test_explore_reports_livelock_and_keeps_pct_k_from_livelocked_runs(capsys, tmp_path):
    rc, out, _ = cli(capsys, "explore", f"{CASES}::mutual_spin", "--runs", "12",
                     "--workers", "1", "--json", "--out", str(tmp_path / "a"))
    d = json.loads(out)
    assert rc == 1 and set(d["violations"]) == {"livelock"}
    assert all(g["k"] < 100 for g in d["pct_guarantee"])   # a livelocked run's 2,000+ decisions
    rc, out, _ = cli(capsys, "explore", f"{CASES}::busy_wait", "--runs", "600",
                     "--workers", "1", "--json", "--out", str(tmp_path / "b"))
    d = json.loads(out)
    assert rc == 0 and d["failing_runs"] == 0


def test_runs_leave_no_machine_behind():
    # The spin watch and book-keeping declarations belong to their run: an
    # exploration of thousands of runs must not keep every machine alive.
    import gc
    import weakref

    from smpvm import Machine

    def machines():
        gc.collect()
        return [o for o in gc.get_objects() if type(o) is Machine]

    before = weakref.WeakSet(machines())  # other tests' fixtures may hold some
    for seed in range(5):
        for name in ("busy_wait", "step_counter"):
            run_scenario(case(name), variant="pause" if name == "busy_wait" else None,
                         seed=seed, strategy=make_strategy("random"))
    assert [m for m in machines() if m not in before] == []
