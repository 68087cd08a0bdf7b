"""Steady-state estimators and the studies built on them, at reduced size.

The window leaves out the warm-up and the drain, so the single-lock queue's
steady-state means agree with the exact M/M/1//N values and the ticket lock
with its Markov chain, where whole-run rates are biased low by the drain.
Sizes here are a few thousand acquisitions per point: each check allows for
the sampling error of that size (several standard errors of the replications)
and is still far tighter than the drain's bias.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
import statistics

import pytest

from conftest import ROOT
from smpvm import load_target, run_scenario
from smpvm.studies import theory
from smpvm.studies.compare import ratio_interval
from smpvm.studies.predictions import ticket_lock
from smpvm.studies.steady import mser5, steady_state
from smpvm.studies.sweep import load_config, run_sweep

LOCKS = os.path.join(ROOT, "models", "synthetic", "locks.py")
FREE = {"acquire_ns": 0, "release_ns": 0, "cacheline_ns": 0, "handoff_ns": 0,
        "block_wakeup_ns": 0, "jitter": 0.0}


def test_mser5_drops_a_transient_and_nothing_from_a_flat_series():
    import numpy as np
    rng = np.random.default_rng(1)
    flat = rng.normal(10, 1, 2000)
    assert mser5(flat) < 200
    ramp = np.concatenate([np.linspace(0, 10, 300), rng.normal(10, 1, 1700)])
    cut = mser5(ramp)
    assert cut % 5 == 0 and 150 <= cut <= 600


def test_window_ends_when_the_first_cpu_runs_out_of_work():
    # CPU 0 is done at 100, CPU 1 at 400: the window is [0, 100) and sees CPU 1's work too
    w = steady_state([[0, 50], [0, 200]], [[0, 50], [10, 200]], [[40, 100], [60, 400]],
                     detect=False)
    assert (w.start_ns, w.end_ns) == (0, 100)
    assert w.releases == 2 and w.throughput_per_ns == pytest.approx(2 / 100)
    # held 0..40, 10..60 and 50..100 (clipped): 140 ns of 100 (a shared hold counts twice)
    assert w.utilization == pytest.approx(1.4)
    assert w.wait_mean_ns == pytest.approx((0 + 0 + 10) / 3)


def test_a_declared_warmup_moves_the_start():
    w = steady_state([[0, 50, 100]], [[0, 50, 100]], [[10, 60, 200]], warmup_fraction=0.25,
                     detect=False)
    assert w.start_ns == 50 and w.acquisitions == 2
    with pytest.raises(ValueError):
        steady_state([[0]], [[0]], [[1]], warmup_fraction=1.0)


def _single(n, seed, acquisitions, variant="mutex", costs=FREE, **params):
    scn = load_target(f"{LOCKS}::single_lock")
    p = {"think_ns": 2000.0, "hold_ns": 200.0, "acquisitions": acquisitions, **params,
         **{f"costs.{k}": v for k, v in costs.items()}}
    return run_scenario(scn, variant=variant, params=p, cpus=n, seed=seed, witness=False,
                        max_steps=10**8).metrics


@pytest.mark.parametrize("n", [4, 8])
def test_steady_state_matches_machine_repairman_where_the_whole_run_rate_is_low(n):
    exact = theory.machine_repairman(n, 2000.0, 200.0)
    runs = [_single(n, seed, 1000) for seed in range(8)]
    for metric, want in (("acquisitions_per_us", exact.throughput_per_ns * 1e3),
                         ("utilization", exact.utilization),
                         ("wait_mean_ns", exact.mean_wait_ns)):
        vals = [r[metric] for r in runs]
        mean, lo, hi = theory.mean_confidence_interval(vals)
        # unbiased: the exact value is within the interval widened to 4 standard errors
        assert abs(mean - want) <= 2.1 * (hi - lo) / 2 + 1e-9, (metric, mean, want)
        assert abs(mean / want - 1) < 0.02, (metric, mean, want)
    # the whole-run rate counts the drain: it sits below the exact value
    whole = statistics.mean(r["run_acquisitions_per_us"] for r in runs)
    assert whole < exact.throughput_per_ns * 1e3 < statistics.mean(
        r["acquisitions_per_us"] for r in runs) * 1.01


TICKET_COSTS = {"acquire_ns": 0, "release_ns": 0, "cacheline_ns": 0, "handoff_ns": 100,
                "ticket_per_spinner_ns": 100, "block_wakeup_ns": 0, "jitter": 0.0}


@pytest.mark.parametrize("n", [8, 48])
def test_ticket_lock_within_2_percent_of_the_markov_model_away_from_the_cliff(n):
    params = {"think_ns": 20000.0, "hold_ns": 400.0}
    want = ticket_lock({**params, "cpus": n, "variant": "ticket"}, TICKET_COSTS)
    got = [_single(n, seed, 400, variant="ticket", costs=TICKET_COSTS, **params)
           ["acquisitions_per_us"] for seed in range(3)]
    assert abs(statistics.mean(got) / want["acquisitions_per_us"] - 1) < 0.02


def test_the_ticket_cliff_is_where_the_model_puts_it_within_one_step():
    params = {"think_ns": 12000.0, "hold_ns": 400.0}
    ns = [8, 16, 24, 32]
    model = [ticket_lock({**params, "cpus": n, "variant": "ticket"}, TICKET_COSTS)
             ["acquisitions_per_us"] for n in ns]
    sim = [statistics.mean(_single(n, s, 300, variant="ticket", costs=TICKET_COSTS, **params)
                           ["acquisitions_per_us"] for s in range(2)) for n in ns]
    assert abs(model.index(max(model)) - sim.index(max(sim))) <= 1


def test_ratio_interval_brackets_the_ratio_and_narrows_with_runs():
    r, lo, hi = ratio_interval([3.0, 3.2, 2.8], [1.0, 1.1, 0.9])
    assert lo < r < hi and r == pytest.approx(3.0)
    r2, lo2, hi2 = ratio_interval([3.0, 3.2, 2.8] * 4, [1.0, 1.1, 0.9] * 4)
    assert hi2 - lo2 < hi - lo
    assert math.isnan(ratio_interval([1.0], [2.0])[1])


STUDY = f"""\
seeds = 2
precision = 0.0001
max_seeds = 4
max_steps = {{max_steps}}
baseline = "mutex"

[study]
name = "t"
question = "q"
expected = "e"

[model]
target = "{LOCKS}::single_lock"

[run]
acquisitions = 60

[sweep]
variant = ["mutex", "queued"]
cpus = [1, 4]

[plot]
x = "cpus"
y = ["acquisitions_per_us"]
lines = "variant"
"""


def _summary(out):
    with open(os.path.join(out, "summary.csv"), newline="") as fp:
        return list(csv.DictReader(fp))


def test_precision_adds_seeds_up_to_the_bound_and_says_it_was_not_reached(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(STUDY.format(max_steps=10**7))
    res = run_sweep(load_config(str(path)), str(tmp_path / "o"), workers=1)
    rows = _summary(str(tmp_path / "o"))
    assert [r["runs"] for r in rows] == ["4"] * 4 and res["runs"] == 16
    assert all("precision" in r["limit"] and "after 4 runs" in r["limit"] for r in rows)
    # design against design: each queued point against the mutex at the same cpus
    with open(tmp_path / "o" / "comparisons.csv", newline="") as fp:
        comps = [c for c in csv.DictReader(fp) if c["kind"] == "ratio"]
    assert [(c["design"], c["cpus"]) for c in comps] == [("queued", "1"), ("queued", "4")]
    for c in comps:
        assert float(c["ci_low"]) <= float(c["ratio"]) <= float(c["ci_high"])


def test_a_step_bound_hit_is_marked_never_blank(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(STUDY.format(max_steps=100).replace("precision = 0.0001\nmax_seeds = 4\n", ""))
    res = run_sweep(load_config(str(path)), str(tmp_path / "o"), workers=1)
    rows = _summary(str(tmp_path / "o"))
    assert res["limited_runs"] == 8
    assert all(r["limit"].startswith("max-steps: 2/2 run(s) stopped at 100 steps") for r in rows)
    assert any(f.endswith(".png") for f in res["files"])


def test_a_timed_run_is_not_cut_at_the_exploration_bound(tmp_path, monkeypatch):
    from smpvm.studies import sweep
    spec = {"run": 0, "point": 0, "seed": 0, "target": f"{LOCKS}::single_lock",
            "params": {"cpus": 2, "acquisitions": 200, "variant": "mutex"}, "costs": {}}

    import sys
    small = dataclasses.replace(load_target(spec["target"]), max_steps=50)
    monkeypatch.setattr(sys.modules["smpvm.scenario"], "load_target", lambda target: small)
    row = sweep.run_one(spec)
    assert "limit.max_steps" not in row["metrics"] and row["metrics"]["violations"] == 0
    assert row["metrics"]["window.acquisitions"] > 0


PAPER = os.path.join(ROOT, "experiments", "ticket_markov_paper.toml")


def test_the_papers_validation_shapes_agree_with_the_chain_at_reduced_size(tmp_path):
    # the shipped study at 8 CPUs (below every case's collapse) with fewer acquisitions
    cfg = dataclasses.replace(load_config(PAPER, sets=["cpus=8", "acquisitions=600"], seeds=3),
                              precision=None)
    run_sweep(cfg, str(tmp_path / "o"), workers=1)
    rows = _summary(str(tmp_path / "o"))
    assert len(rows) == 5
    for r in rows:
        assert abs(float(r["acquisitions_per_us.rel_error"])) < 0.02, (r["case"], r)


def test_the_papers_1600_cycle_section_collapses_where_the_chain_says():
    case = load_config(PAPER).cases["1,600 cycles, 2% serial"]
    ns = [28, 32, 36, 40, 44]
    model = [ticket_lock({**case, "cpus": n, "variant": "ticket"}, TICKET_COSTS)
             ["acquisitions_per_us"] for n in ns]
    sim = [statistics.mean(_single(n, s, 300, variant="ticket", costs=TICKET_COSTS, **case)
                           ["acquisitions_per_us"] for s in range(2)) for n in ns]
    assert 0 < model.index(max(model)) < len(ns) - 1, model  # a peak inside the range
    assert abs(model.index(max(model)) - sim.index(max(sim))) <= 1, (model, sim)
