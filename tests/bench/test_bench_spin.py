"""Exhaustive search against SPIN: the fixed doomed-object model, side by side in one run.

SPIN 6 checks ``tests/bench/spin/doomed_object.pml`` (the same threads, locks,
fields and invariants, hand-written in Promela; its header says what
corresponds to what): ``spin -a``, ``gcc pan.c`` and ``./pan``, compilation
included, as a user would run it.  smpvm's ``dfs`` exhausts the Python model.
Both are timed in the same session, best of a few rounds, and the ratio
(smpvm's time over SPIN's) goes in the session's summary with SPIN's states
and smpvm's schedules.  With two allocators the goal is a ratio of 1 or
less, and with three within 2; four are timed too (SPIN stores 1.3 million
states, ``dfs`` runs 7,658 schedules), and the tree shared out over every
core of the machine (``--workers``) against SPIN on one.  ``dfs`` gets a
budget of schedules from three on (``SMPVM_BENCH_SPIN3_RUNS``, default
50,000; three allocators are 379 schedules) and reports whether it got
through.

A further check keeps the Promela model honest: SPIN must find the buggy
variant's use-after-free (``-DBUGGY``), as smpvm does.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time

import pytest

from smpvm import RunSpec, load_target
from smpvm.search.executors import make_executor
from smpvm.search.exhaust import exhaust
from smpvm.search.pardfs import exhaust_parallel, warm_up

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PML = os.path.join(HERE, "spin", "doomed_object.pml")
DOOMED = os.path.join(ROOT, "models", "freebsd", "device_pager.py")

pytestmark = pytest.mark.skipif(
    shutil.which("spin") is None or shutil.which("gcc") is None,
    reason="SPIN and gcc are needed (apt-get install spin gcc)")

#: dfs schedules allowed with three allocators (its space is far larger than SPIN's).
RUNS_3 = int(os.environ.get("SMPVM_BENCH_SPIN3_RUNS", "50000"))
CORES = os.cpu_count() or 1


def spin(workdir, *defines):
    """Generate, compile and run the verifier; (seconds, states stored, errors, output)."""
    t0 = time.perf_counter()
    subprocess.run(["spin", "-a", *defines, PML], cwd=workdir, check=True,
                   capture_output=True)
    subprocess.run(["gcc", "-w", "-o", "pan", "pan.c"], cwd=workdir, check=True,
                   capture_output=True)
    # -c0 -e: go on after an error, keep every trail (SPIN's count of all errors)
    run = subprocess.run(["./pan", "-c0", "-e"], cwd=workdir, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    out = run.stdout
    states = int(re.search(r"(\d+) states, stored", out).group(1))
    errors = int(re.search(r"errors: (\d+)", out).group(1))
    return seconds, states, errors, out


def smpvm_dfs(allocators, max_runs=None):
    """Exhaust (or search ``max_runs`` schedules of) the fixed model; (seconds, report)."""
    scn = load_target(f"{DOOMED}::doomed_object")
    spec = RunSpec(f"{DOOMED}::doomed_object", variant="fixed",
                   params={"allocators": allocators}, seed=1)
    t0 = time.perf_counter()
    report = exhaust(spec, scn=scn, max_runs=max_runs)
    return time.perf_counter() - t0, report


def smpvm_dfs_shared(allocators, workers):
    """Exhaust the fixed model with the tree shared out over ``workers`` local processes,
    as ``smpvm explore -s dfs -w N`` does, the pool's start included; (seconds, report)."""
    scn = load_target(f"{DOOMED}::doomed_object")
    spec = RunSpec(f"{DOOMED}::doomed_object", variant="fixed",
                   params={"allocators": allocators}, seed=1)
    t0 = time.perf_counter()
    warm_up(spec, scn)
    with make_executor(workers) as pool:
        report = exhaust_parallel(spec, pool)
    return time.perf_counter() - t0, report


def test_spin_finds_the_buggy_variants_use_after_free(tmp_path):
    for n in (2, 3):
        _, _, errors, out = spin(tmp_path, "-DBUGGY", f"-DNALLOC={n}")
        assert errors > 0
        assert "assertion violated  !(freed[obj])" in out  # A3: the use-after-free
        assert "assertion violated  !(doomed)" in out      # A1


def test_spin_finds_nothing_in_the_fixed_variant(tmp_path):
    for n in (1, 2, 3):
        _, states, errors, out = spin(tmp_path, f"-DNALLOC={n}")
        assert errors == 0 and states > 0, out


@pytest.mark.parametrize("allocators", [2, 3, 4])
def test_dfs_against_spin(benchmark, report_ratio, tmp_path, allocators):
    spin_runs = [spin(tmp_path, f"-DNALLOC={allocators}") for _ in range(3)]
    spin_s = min(s for s, _, _, _ in spin_runs)
    states = spin_runs[0][1]
    assert all(errors == 0 for _, _, errors, _ in spin_runs)
    budget = None if allocators == 2 else RUNS_3
    rounds = []

    def search():
        rounds.append(smpvm_dfs(allocators, budget))

    benchmark.pedantic(search, rounds=3 if allocators < 4 else 1, iterations=1)
    dfs_s = min(s for s, _ in rounds)
    report = rounds[-1][1]
    assert report.failing_runs == 0
    assert all(r.runs == report.runs for _, r in rounds)  # the search is deterministic
    benchmark.extra_info.update(spin_seconds=round(spin_s, 3), spin_states=states,
                                dfs_seconds=round(dfs_s, 3), schedules=report.runs,
                                exhausted=report.exhausted, ratio=round(dfs_s / spin_s, 2))
    what = "exhausted" if report.exhausted else "NOT exhausted (budget)"
    report_ratio(f"dfs / SPIN, doomed_object fixed, {allocators} allocators",
                 f"{dfs_s / spin_s:.2f}x: dfs {dfs_s:.2f} s, {report.runs} schedules {what}; "
                 f"SPIN {spin_s:.2f} s (spin -a, gcc, pan), {states} states")
    assert report.exhausted


@pytest.mark.skipif(CORES < 2, reason="one core: nothing to share the tree with")
def test_dfs_on_every_core_against_spin(report_ratio, tmp_path):
    # SPIN's figure is one core's; the search shares its tree over every core here.
    # (Four allocators: three take 379 schedules, too few for the workers' start.)
    spin_runs = [spin(tmp_path, "-DNALLOC=4") for _ in range(2)]
    spin_s = min(s for s, _, _, _ in spin_runs)
    rounds = [smpvm_dfs_shared(4, CORES) for _ in range(2)]
    dfs_s = min(s for s, _ in rounds)
    report = rounds[-1][1]
    assert report.exhausted and report.failing_runs == 0
    assert all(r.runs == report.runs for _, r in rounds)  # the same runs whatever the timing
    report_ratio(f"dfs on {CORES} workers / SPIN, doomed_object fixed, 4 allocators",
                 f"{dfs_s / spin_s:.2f}x: dfs {dfs_s:.2f} s on {CORES} local worker processes "
                 f"(their start included), {report.runs} schedules exhausted; SPIN "
                 f"{spin_s:.2f} s on one core (spin -a, gcc, pan), {spin_runs[0][1]} states")
