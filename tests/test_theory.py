"""Checks of smpvm.studies.theory against hand-computed values and known identities."""

import math

import pytest

from smpvm.studies.theory import (
    machine_repairman,
    mean_confidence_interval,
    normal_quantile,
    pct_probability,
    queued_lock_markov,
    runs_for_confidence,
    student_t_quantile,
    ticket_lock_markov,
    wilson_interval,
)

approx = pytest.approx


# --- machine repairman ------------------------------------------------------

def test_one_cpu_never_waits():
    m = machine_repairman(1, think_ns=1000.0, hold_ns=100.0)
    # p0 = Z / (Z + S), one cycle takes Z + S
    assert m.p0 == approx(1000 / 1100)
    assert m.utilization == approx(100 / 1100)
    assert m.throughput_per_ns == approx(1 / 1100)
    assert m.mean_wait_ns == 0.0
    assert m.mean_queue_length == 0.0
    assert m.mean_response_ns == approx(100.0)


def test_two_cpus_by_hand():
    # S/Z = 0.1: weights 1, 2*0.1, 2*1*0.01 -> total 1.22
    m = machine_repairman(2, think_ns=1000.0, hold_ns=100.0)
    assert m.p0 == approx(1 / 1.22)
    assert m.utilization == approx(0.22 / 1.22)
    assert m.mean_queue_length == approx(0.02 / 1.22)
    x = 0.22 / 1.22 / 100
    assert m.throughput_per_ns == approx(x)
    assert m.mean_response_ns == approx(2 / x - 1000)
    assert m.mean_wait_ns == approx(2 / x - 1000 - 100)


@pytest.mark.parametrize("n", [3, 7, 16, 100])
def test_little_and_response_time_identities(n):
    think, hold = 500.0, 40.0
    m = machine_repairman(n, think, hold)
    assert m.throughput_per_ns == approx(m.utilization / hold)
    # R = N/X - Z (response-time law) and Lq = X * W (Little)
    assert m.mean_response_ns == approx(n / m.throughput_per_ns - think)
    assert m.mean_queue_length == approx(m.throughput_per_ns * m.mean_wait_ns)
    assert m.mean_wait_ns == approx(m.mean_response_ns - hold)


def test_large_population_is_stable_and_saturated():
    m = machine_repairman(1024, think_ns=1000.0, hold_ns=100.0)
    assert m.p0 == approx(0.0, abs=1e-300)
    assert m.utilization == approx(1.0)
    assert m.throughput_per_ns == approx(1 / 100)
    # saturated: X*Z = 10 CPUs thinking, one holding, the rest waiting
    assert m.mean_queue_length == approx(1024 - 1 - 10)
    assert m.mean_response_ns == approx(1024 * 100 - 1000)


def test_light_load_approaches_no_contention():
    m = machine_repairman(4, think_ns=1e9, hold_ns=1.0)
    assert m.utilization == approx(4e-9, rel=1e-6)
    assert m.mean_wait_ns < 1e-6


@pytest.mark.parametrize("args", [(0, 1.0, 1.0), (2, 0.0, 1.0), (2, 1.0, -1.0)])
def test_machine_repairman_rejects_bad_input(args):
    with pytest.raises(ValueError):
        machine_repairman(*args)


# --- spin lock models -------------------------------------------------------

@pytest.mark.parametrize("n", [1, 2, 5, 32])
def test_spin_models_without_handoff_are_machine_repairman(n):
    mm = machine_repairman(n, 2000.0, 200.0)
    for model in (ticket_lock_markov, queued_lock_markov):
        s = model(n, 2000.0, 200.0, 0.0)
        assert s.throughput_per_ns == approx(mm.throughput_per_ns)
        assert s.utilization == approx(mm.utilization)
        assert s.mean_waiters == approx(mm.mean_queue_length)
        assert s.probabilities[0] == approx(mm.p0)
        assert len(s.probabilities) == n + 1
        assert math.fsum(s.probabilities) == approx(1.0)


def test_queued_model_is_machine_repairman_with_handoff_in_hold():
    q = queued_lock_markov(12, 2000.0, 200.0, 100.0)
    mm = machine_repairman(12, 2000.0, 300.0)
    assert q.throughput_per_ns == approx(mm.throughput_per_ns)
    assert q.mean_waiters == approx(mm.mean_queue_length)


def test_ticket_model_two_cores_by_hand():
    # a=2000, s=200, c=100: service 250 ns with one core, 300 ns with two
    # weights 1, 2*250/2000 = 0.25, 0.25 * 1*300/2000 = 0.0375
    t = ticket_lock_markov(2, 2000.0, 200.0, 100.0)
    total = 1.2875
    assert t.probabilities == approx((1 / total, 0.25 / total, 0.0375 / total))
    assert t.speedup == approx((2 * 1 + 1 * 0.25) / total)
    assert t.throughput_per_ns == approx(t.speedup / 2000.0)
    assert t.mean_waiters == approx(0.0375 / total)


def test_ticket_lock_collapses_and_queued_lock_does_not():
    ns = range(1, 65)
    ticket = [ticket_lock_markov(n, 2000.0, 200.0, 100.0).throughput_per_ns for n in ns]
    queued = [queued_lock_markov(n, 2000.0, 200.0, 100.0).throughput_per_ns for n in ns]
    peak = max(ticket)
    assert ticket.index(peak) + 1 < 16          # peaks with a handful of cores
    assert ticket[-1] < peak / 4                # then collapses
    assert all(b >= a * (1 - 1e-12) for a, b in zip(queued, queued[1:]))
    assert queued[-1] == approx(1 / 300.0)      # saturates at 1/(s + c)


def test_flow_balance_in_spin_model():
    # acquisitions = departures: sum p_k (n-k)/a == sum_{k>=1} p_k / (s + c k/2)
    n, a, s, c = 10, 2000.0, 200.0, 100.0
    t = ticket_lock_markov(n, a, s, c)
    out = math.fsum(p / (s + c * k / 2) for k, p in enumerate(t.probabilities) if k)
    assert t.throughput_per_ns == approx(out)


def test_spin_models_reject_negative_handoff():
    with pytest.raises(ValueError):
        ticket_lock_markov(4, 1.0, 1.0, -1.0)
    with pytest.raises(ValueError):
        queued_lock_markov(4, 1.0, 1.0, -1.0)


# --- PCT --------------------------------------------------------------------

def test_pct_probability():
    assert pct_probability(2, 100, 1) == approx(0.5)
    assert pct_probability(2, 10, 3) == approx(1 / 200)
    assert pct_probability(1, 50, 1) == 1.0
    with pytest.raises(ValueError):
        pct_probability(0, 10, 1)


def test_runs_for_confidence():
    # 1 - 0.5^r >= 0.75 first at r = 2 (exact boundary, no rounding up)
    assert runs_for_confidence(0.5, 0.75) == 2
    assert runs_for_confidence(0.5, 0.76) == 3
    # ln(0.01)/ln(0.99) = 458.2
    assert runs_for_confidence(0.01, 0.99) == 459
    assert runs_for_confidence(1.0) == 1
    assert runs_for_confidence(2.0) == 1
    with pytest.raises(ValueError, match="p must be > 0"):
        runs_for_confidence(0.0)


# --- quantiles --------------------------------------------------------------

@pytest.mark.parametrize("p, z", [(0.975, 1.959963985), (0.995, 2.575829304),
                                  (0.5, 0.0), (0.8413447461, 1.0),
                                  (0.01, -2.326347874), (1e-10, -6.361340902)])
def test_normal_quantile(p, z):
    assert normal_quantile(p) == approx(z, abs=1e-8)


def test_normal_quantile_inverts_erf():
    for p in (1e-12, 0.001, 0.02, 0.3, 0.7, 0.98, 0.999999):
        z = normal_quantile(p)
        assert 0.5 * math.erfc(-z / math.sqrt(2)) == approx(p, rel=1e-12)


@pytest.mark.parametrize("df, t", [(1, 12.706205), (4, 2.776445), (30, 2.042272),
                                   (10, 2.228139), (120, 1.979930)])
def test_student_t_table(df, t):
    assert student_t_quantile(0.975, df) == approx(t, abs=1e-6)


def test_student_t_closed_forms():
    for p in (0.6, 0.9, 0.995):
        # df = 1 is the Cauchy distribution; df = 2 has a closed form
        assert student_t_quantile(p, 1) == approx(math.tan(math.pi * (p - 0.5)), rel=1e-10)
        assert student_t_quantile(p, 2) == approx((2 * p - 1) / math.sqrt(2 * p * (1 - p)),
                                                  rel=1e-10)
    assert student_t_quantile(0.025, 4) == approx(-2.776445, abs=1e-6)
    assert student_t_quantile(0.975, 1e7) == approx(normal_quantile(0.975), abs=1e-6)


# --- confidence intervals ---------------------------------------------------

def test_wilson_interval():
    low, high = wilson_interval(5, 10)
    assert (low, high) == (approx(0.236593, abs=1e-6), approx(0.763407, abs=1e-6))
    z2 = normal_quantile(0.975) ** 2
    assert wilson_interval(0, 10) == (0.0, approx(z2 / (10 + z2)))
    assert wilson_interval(10, 10) == (approx(10 / (10 + z2)), 1.0)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert wilson_interval(1, 1000, 0.99)[1] < 0.01
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


def test_mean_confidence_interval():
    mean, low, high = mean_confidence_interval([1, 2, 3, 4, 5])
    # sd = sqrt(2.5), t(0.975, 4) = 2.776445
    half = 2.776445 * math.sqrt(2.5) / math.sqrt(5)
    assert mean == 3.0
    assert (low, high) == (approx(3 - half, abs=1e-5), approx(3 + half, abs=1e-5))
    assert mean_confidence_interval([4.0, 4.0, 4.0]) == (4.0, 4.0, 4.0)


def test_mean_confidence_interval_single_value_and_empty():
    mean, low, high = mean_confidence_interval([7.5])
    assert mean == 7.5 and math.isnan(low) and math.isnan(high)
    with pytest.raises(ValueError):
        mean_confidence_interval([])
