"""Demo: walking vm_object_list against collapse and destroy (model e, rS282660).

Each variant's documented outcome, through the public API: the blocking walk
reverses the lock order (always) and deadlocks (often), the try-lock walk is
safe but skips objects, dropping the list mutex mid-walk leaves a stale
iterator, and the NOFREE discipline is clean.

Why the run counts suffice: under uniform random scheduling (measured over
1000 seeds) the blocking walk deadlocks in ~85% of runs and the unsafe drop
fails in ~40% (~24% use-after-free, ~18% stale-iterator assertion), so 200
seeds miss a finding with probability below 1e-20.  The clean variants are
also exhausted by ``smpvm explore --strategy dfs`` (a few thousand
schedules); 200 random seeds here are a regression guard, not the proof.
"""

import json
import os
import subprocess
import sys

import pytest

from smpvm import BadInput, load_target, make_strategy, run_scenario

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGET = os.path.join(ROOT, "models", "freebsd", "vm_object_list.py") + "::walk_vs_collapse"
SEEDS = range(200)
LIST, OBJECT = "vm object_list", "vm object"



@pytest.fixture(scope="module")
def scn():
    return load_target(TARGET)


def explore(scn, variant, seeds=SEEDS, **params):
    return [run_scenario(scn, variant=variant, params=params, seed=s, strategy=make_strategy("random"))
            for s in seeds]


def edges(r):
    return {(e["from"], e["to"]) for e in r.witness_edges if not e["declared"]}


def test_blocking_walk_reverses_the_order_in_every_run_and_deadlocks(scn):
    runs = explore(scn, "blocking-walk")
    assert all("lock-order-reversal" in r.kinds() for r in runs)
    deadlocks = [r for r in runs if "deadlock" in r.kinds()]
    assert len(deadlocks) > len(runs) // 2
    dl = next(v for v in deadlocks[0].violations if v.kind == "deadlock")
    assert "walker" in dl.message and "collapser" in dl.message
    assert "vm object[front]" in dl.message
    lor = next(v for v in runs[0].violations if v.kind == "lock-order-reversal")
    assert set(lor.extra["cycle"]) == {LIST, OBJECT}
    assert edges(runs[0]) == {(LIST, OBJECT), (OBJECT, LIST)}


def test_blocking_walk_reversal_is_reported_under_the_timed_strategy_too(scn):
    r = run_scenario(scn, variant="blocking-walk", seed=1)
    assert "lock-order-reversal" in r.kinds()


def test_trylock_walk_is_safe_but_skips_objects(scn):
    runs = explore(scn, "trylock-walk")
    assert all(not r.violations for r in runs)
    skipped = [r.metrics.get("objects_skipped", 0) for r in runs]
    assert sum(1 for s in skipped if s) > len(runs) // 4
    # Only collapse's order is ever taken: a try-lock adds no order edge.
    assert all(edges(r) == {(OBJECT, LIST)} for r in runs)


def test_unsafe_drop_resumes_from_an_unlinked_or_freed_object(scn):
    runs = explore(scn, "unsafe-drop")
    kinds = [k for r in runs for k in r.kinds()]
    assert "use-after-free" in kinds
    stale = [v for r in runs for v in r.violations if v.kind == "assertion"]
    assert stale and all("E-inv4" in v.message for v in stale)
    uaf = next(v for r in runs for v in r.violations if v.kind == "use-after-free")
    assert "vm_object#" in uaf.message and "freed at" in uaf.message
    assert all(k in ("use-after-free", "assertion") for k in kinds)


def test_nofree_is_clean_and_exercises_the_recheck(scn):
    runs = explore(scn, "nofree")
    assert all(not r.violations for r in runs)
    assert all(edges(r) == {(LIST, OBJECT)} for r in runs)
    # The walker met objects that died while it waited for their lock.
    assert sum(1 for r in runs if r.metrics.get("died_while_waiting")) > 10
    # Nothing ever leaves the list: set-up objects plus the allocator's one.
    assert {r.metrics["objects_on_list"] for r in runs} <= {3, 4}


def test_nofree_is_clean_under_the_timed_strategy(scn):
    for seed in range(5):
        assert not run_scenario(scn, variant="nofree", seed=seed).violations


def test_parameters_scale_the_scenario_and_bad_values_are_rejected(scn):
    runs = explore(scn, "nofree", seeds=range(20), extra_objects=3, allocators=2)
    assert all(not r.violations for r in runs)
    with pytest.raises(BadInput):
        run_scenario(scn, variant="nofree", params={"allocators": -1})


def smpvm(*args):
    cmd = [sys.executable, "-c", "from smpvm.cli import main; main()", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_lor_command_reports_the_blocking_walk_and_not_the_nofree_walk():
    bad = smpvm("lor", TARGET, "--variant", "blocking-walk", "--runs", "50", "--seed", "1",
                "--json")
    assert bad.returncode == 1, bad.stderr
    assert len(json.loads(bad.stdout)["reversals"]) >= 1
    good = smpvm("lor", TARGET, "--variant", "nofree", "--runs", "50", "--seed", "1", "--json")
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout)["reversals"] == []
