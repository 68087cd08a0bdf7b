"""One lock against queueing theory: the closed M/M/1//N (machine-repairman) queue.

N CPUs each think for Exp(mean Z) and then hold one mutex for Exp(mean S);
with lock operations free this is exactly the finite-source single-server
queue, whose mean wait and utilisation ``smpvm.studies.theory.machine_repairman``
computes in closed form.  The simulated values must agree within 3%.

Why these run lengths are enough: the estimates are ratios of sums over
120,000 acquisitions per N (three seeds of 40,000, pooled).  Measured over
eight seeds of 40,000, the per-run standard error of the mean wait was
0.9-1.9% (largest at N = 16) and of the utilisation under 0.5%, with no
visible bias; pooling three runs divides that by 1.7, so 3% sits about
2.7 standard errors out at N = 16 and further at smaller N.  Five disjoint
seed triples gave errors between -1.1% and +1.3%.  The think time is chosen so that the
lock is offered one unit of work (N S / Z = 1): loaded enough that queues
form at every N.

The service order does not matter for these means: the sleep mutex hands
a released lock to a waiter the strategy picks, and with exponential holds
the queue length process (hence W and U) is the same for any order that
does not look at hold times.
"""

from __future__ import annotations

import os

import pytest

from conftest import ROOT, free_costs
from smpvm import load_target, run_scenario
from smpvm.studies.theory import machine_repairman

HOLD_NS = 1000
ACQUISITIONS_PER_RUN = 40_000
SEEDS = (1, 2, 3)
TOLERANCE = 0.03


def _pooled(n: int, think_ns: int):
    """(mean wait, utilisation, acquisitions) pooled over SEEDS runs."""
    scn = load_target(os.path.join(ROOT, "tests/models/queueing.py::repairman"))
    exact = machine_repairman(n, think_ns, HOLD_NS)
    horizon_ns = int(ACQUISITIONS_PER_RUN / exact.throughput_per_ns)
    wait_total = hold_total = elapsed = acquisitions = 0
    for seed in SEEDS:
        r = run_scenario(scn, seed=seed, params={
            **free_costs(), "n": n, "think_ns": think_ns, "hold_ns": HOLD_NS,
            "horizon_ns": horizon_ns})
        assert r.violations == []
        (s,) = r.lockstat
        wait_total += s.wait_total_ns
        hold_total += s.hold_total_ns
        acquisitions += s.acquisitions
        elapsed += r.time_ns
    return wait_total / acquisitions, hold_total / elapsed, acquisitions


@pytest.mark.parametrize("n", [2, 4, 8, 16])
def test_mean_wait_and_utilisation_match_machine_repairman(n):
    think_ns = n * HOLD_NS
    exact = machine_repairman(n, think_ns, HOLD_NS)
    wait, util, acquisitions = _pooled(n, think_ns)
    assert acquisitions > 0.95 * len(SEEDS) * ACQUISITIONS_PER_RUN
    assert wait == pytest.approx(exact.mean_wait_ns, rel=TOLERANCE), \
        f"N={n}: mean wait {wait:.1f} ns, theory {exact.mean_wait_ns:.1f} ns"
    assert util == pytest.approx(exact.utilization, rel=TOLERANCE), \
        f"N={n}: utilisation {util:.4f}, theory {exact.utilization:.4f}"


def test_one_cpu_never_waits():
    scn = load_target(os.path.join(ROOT, "tests/models/queueing.py::repairman"))
    r = run_scenario(scn, seed=1, params={**free_costs(), "n": 1, "think_ns": 3000,
                                          "hold_ns": HOLD_NS, "horizon_ns": 4_000_000})
    (s,) = r.lockstat
    assert s.wait_total_ns == 0 and s.contended == 0
    exact = machine_repairman(1, 3000, HOLD_NS)
    assert s.utilization == pytest.approx(exact.utilization, rel=0.05)


def test_lock_costs_push_the_wait_above_theory():
    """With the default costs the lock itself takes time, so waits exceed the free-lock value."""
    scn = load_target(os.path.join(ROOT, "tests/models/queueing.py::repairman"))
    n = 8
    params = {"n": n, "think_ns": n * HOLD_NS, "hold_ns": HOLD_NS, "horizon_ns": 5_000_000}
    costly = run_scenario(scn, seed=1, params=params).lockstat[0]
    exact = machine_repairman(n, n * HOLD_NS, HOLD_NS)
    assert costly.wait_mean_ns > 1.1 * exact.mean_wait_ns
