"""Theory: the yardsticks the engine's statistics are checked against.

A simulator is only believable where it agrees with something known.  This
module holds the few closed forms smpvm can be held to, each small enough to
check by hand:

* the closed M/M/1//N queue (the *machine-repairman* model): N CPUs, one
  lock, exponential think and hold times.  Where its assumptions hold, lock
  statistics measured by the engine must agree with it;
* the ticket spin lock collapse model of Boyd-Wickizer et al. and its
  queued-lock counterpart, the shape a scalability study should show;
* the probability that one PCT run finds a bug of a given depth, and how
  many runs buy a given confidence;
* confidence intervals for hit rates (Wilson) and for means (Student t),
  so that "agrees with theory" is a statement with error bars.

Everything here is plain ``math``: importing this module costs nothing.
Times are in simulated nanoseconds, like the rest of smpvm; rates are per ns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

__all__ = [
    "MM1N",
    "SpinModel",
    "machine_repairman",
    "ticket_lock_markov",
    "queued_lock_markov",
    "pct_probability",
    "runs_for_confidence",
    "normal_quantile",
    "student_t_quantile",
    "wilson_interval",
    "mean_confidence_interval",
]


# ---------------------------------------------------------------------------
# Birth-death chains (shared by the lock models)
# ---------------------------------------------------------------------------

def _stationary(log_ratios: list[float]) -> list[float]:
    """Stationary distribution of a birth-death chain on states 0..len(log_ratios).

    ``log_ratios[k-1]`` is ``log(birth_{k-1} / death_k)``; by detailed
    balance p_k = p_0 * prod_{j<=k} ratio_j.  Working in logs and
    normalising by the largest weight keeps 1024 states free of overflow.
    """
    log_w = [0.0]
    for r in log_ratios:
        log_w.append(log_w[-1] + r)
    top = max(log_w)
    w = [math.exp(x - top) for x in log_w]
    total = math.fsum(w)
    return [x / total for x in w]


def _check_lock_inputs(n: int, think_ns: float, hold_ns: float) -> None:
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"the number of CPUs must be an integer >= 1 (got {n!r})")
    if not think_ns > 0:
        raise ValueError(f"think_ns must be > 0 (got {think_ns!r}); "
                         "use a small value for a saturated lock")
    if not hold_ns > 0:
        raise ValueError(f"hold_ns must be > 0 (got {hold_ns!r})")


# ---------------------------------------------------------------------------
# Closed M/M/1//N: the machine-repairman model
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class MM1N:
    """Exact steady state of one lock shared by N CPUs (see machine_repairman)."""

    utilization: float
    """Fraction of time the lock is held, 1 - p0."""
    throughput_per_ns: float
    """Acquisitions per ns, X = U / S."""
    mean_response_ns: float
    """Mean time from requesting the lock to releasing it, R = N/X - Z."""
    mean_wait_ns: float
    """Mean time queued before getting the lock, W = R - S."""
    mean_queue_length: float
    """Mean number of CPUs waiting (not counting the holder)."""
    p0: float
    """Probability that the lock is free and nobody waits."""


def machine_repairman(n: int, think_ns: float, hold_ns: float) -> MM1N:
    """Closed M/M/1//N queue: N CPUs contending for one lock.

    Each CPU thinks for Exp(mean Z = ``think_ns``), then requests the lock,
    queues FIFO if it is taken, and holds it for Exp(mean S = ``hold_ns``).
    With k CPUs at the lock (holder included) the stationary probabilities
    are the product form

        p_k = p_0 * N! / (N - k)! * (S / Z)^k,        k = 0..N

    (Kleinrock, *Queueing Systems*, Vol. 1, 1975, section 3.8, "finite
    customer population, single server"; Gross & Harris, *Fundamentals of
    Queueing Theory*, finite-source queues).  From it U = 1 - p0, X = U/S,
    and by Little's law the mean waiting time W = Lq / X, the response time
    R = W + S = N/X - Z.  With N = 1 nobody ever waits: W = 0 exactly.

    Times in ns, throughput in acquisitions per ns.
    """
    _check_lock_inputs(n, think_ns, hold_ns)
    rho = math.log(hold_ns) - math.log(think_ns)
    p = _stationary([math.log(n - k) + rho for k in range(n)])
    utilization = math.fsum(p[1:])
    queue = math.fsum((k - 1) * p[k] for k in range(2, n + 1))
    throughput = utilization / hold_ns
    wait = queue / throughput
    return MM1N(
        utilization=utilization,
        throughput_per_ns=throughput,
        mean_response_ns=wait + hold_ns,
        mean_wait_ns=wait,
        mean_queue_length=queue,
        p0=p[0],
    )


# ---------------------------------------------------------------------------
# Spin lock collapse (Boyd-Wickizer et al.)
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class SpinModel:
    """Steady state of the spin-lock Markov model (see ticket_lock_markov)."""

    throughput_per_ns: float
    """Lock acquisitions per ns: sum over k of p_k * (n - k) / a."""
    mean_waiters: float
    """Mean number of cores spinning, not counting the holder."""
    utilization: float
    """Fraction of time the lock is held or being handed off, 1 - p_0."""
    speedup: float
    """Mean number of cores outside the lock, sum of p_k * (n - k): the
    paper's "speedup" (n when the lock never delays anyone)."""
    probabilities: tuple[float, ...]
    """p_k for k = 0..n, k = cores holding or waiting for the lock."""


def _spin_chain(n: int, think_ns: float, service_ns) -> SpinModel:
    """Solve the chain with births (n - k)/a and deaths 1/service_ns(k)."""
    p = _stationary([math.log((n - k) * service_ns(k + 1) / think_ns)
                     for k in range(n)])
    outside = math.fsum(p[k] * (n - k) for k in range(n))
    return SpinModel(
        throughput_per_ns=outside / think_ns,
        mean_waiters=math.fsum((k - 1) * p[k] for k in range(2, n + 1)),
        utilization=math.fsum(p[1:]),
        speedup=outside,
        probabilities=tuple(p),
    )


def _lone(service, lone_hold_ns):
    """``service`` with state 1 (a holder nobody waits for) taking ``lone_hold_ns``."""
    if lone_hold_ns is None:
        return service
    if not lone_hold_ns > 0:
        raise ValueError(f"lone_hold_ns must be > 0 (got {lone_hold_ns!r})")
    return lambda k: lone_hold_ns if k == 1 else service(k)


def ticket_lock_markov(n_cores: int, think_ns: float, hold_ns: float,
                       handoff_ns_per_waiter: float, *,
                       lone_hold_ns: float | None = None) -> SpinModel:
    """Ticket spin lock model of Boyd-Wickizer, Kaashoek, Morris, Zeldovich,
    "Non-scalable locks are dangerous", Linux Symposium 2012, section 3.

    State k = number of cores holding or spinning on the lock, k = 0..n.
    Each of the n - k cores outside the lock arrives at rate 1/a
    (a = ``think_ns``, the mean time between a release and the core's next
    acquire), so the birth rate is (n - k)/a.  A release in state k is
    followed by the hand-off: every spinning core re-reads the ticket's
    cache line, the directory answers those reads one at a time, and the
    next holder waits on average behind half of them.  The paper therefore
    takes the service rate

        s_k = 1 / (s + c * k / 2),        k = 1..n

    with s = ``hold_ns`` the critical section and c =
    ``handoff_ns_per_waiter`` the time to answer one cache-line request.
    The stationary distribution follows from detailed balance,
    p_k = p_0 * prod_{j=1..k} ((n - j + 1)/a) / s_j; the paper's speedup is
    sum p_k (n - k), and throughput is that over a.  Because the service
    time grows with the queue it feeds, throughput rises with n, peaks, then
    collapses.  With c = 0 this is machine_repairman(n, a, s).

    ``lone_hold_ns``, when given, is the service time in state 1: a holder
    that nobody waits for releases without a hand-off, which a machine that
    charges hand-offs only to waiters (smpvm's) does; the paper's chain
    charges c/2 there too.

    Times in ns, throughput in acquisitions per ns.
    """
    _check_lock_inputs(n_cores, think_ns, hold_ns)
    if not handoff_ns_per_waiter >= 0:
        raise ValueError("handoff_ns_per_waiter must be >= 0 "
                         f"(got {handoff_ns_per_waiter!r})")
    c = handoff_ns_per_waiter
    return _spin_chain(n_cores, think_ns, _lone(lambda k: hold_ns + c * k / 2, lone_hold_ns))


def queued_lock_markov(n_cores: int, think_ns: float, hold_ns: float,
                       handoff_ns_per_waiter: float, *,
                       lone_hold_ns: float | None = None) -> SpinModel:
    """The same chain for a queued (MCS-style) spin lock.

    Each waiter spins on its own cache line, so a hand-off costs one
    cache-line transfer, c = ``handoff_ns_per_waiter``, however many cores
    wait: the service time is s + c in every state.  That makes the chain
    exactly machine_repairman(n, a, s + c): throughput never falls as cores
    are added.  (With one waiter this hand-off, c, is dearer than the ticket
    lock's c/2, as a queued lock's uncontended path is; what matters is the
    trend in n.)  Same units, fields and ``lone_hold_ns`` as ticket_lock_markov.
    """
    _check_lock_inputs(n_cores, think_ns, hold_ns)
    if not handoff_ns_per_waiter >= 0:
        raise ValueError("handoff_ns_per_waiter must be >= 0 "
                         f"(got {handoff_ns_per_waiter!r})")
    service = hold_ns + handoff_ns_per_waiter
    return _spin_chain(n_cores, think_ns, _lone(lambda k: service, lone_hold_ns))


# The PCT guarantee lives with the strategy it is about; re-exported for studies.
from ..strategies.pct import pct_probability, runs_for_confidence  # noqa: E402,F401


# ---------------------------------------------------------------------------
# Quantiles and confidence intervals
# ---------------------------------------------------------------------------

# Acklam's rational approximation to the normal quantile (relative error
# below 1.2e-9), refined below by one Halley step to full double precision.
_A = (-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
      1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00)
_B = (-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
      6.680131188771972e+01, -1.328068155288572e+01)
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
      -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
      3.754408661907416e+00)


def _poly(coeffs, x: float) -> float:
    acc = 0.0
    for c in coeffs:
        acc = acc * x + c
    return acc


def normal_quantile(p: float) -> float:
    """Standard normal quantile: the z with Phi(z) = p, for 0 < p < 1.

    P. J. Acklam's rational approximation (2003), then one Halley step on
    Phi(z) - p using math.erfc, which brings it to about 1e-15.
    """
    if not 0 < p < 1:
        raise ValueError(f"p must be in (0, 1) (got {p!r})")
    low = 0.02425
    if p < low:
        q = math.sqrt(-2 * math.log(p))
        z = _poly(_C, q) / (_poly(_D, q) * q + 1)
    elif p <= 1 - low:
        q = p - 0.5
        r = q * q
        z = _poly(_A, r) * q / (_poly(_B, r) * r + 1)
    else:
        q = math.sqrt(-2 * math.log1p(-p))
        z = -_poly(_C, q) / (_poly(_D, q) * q + 1)
    # one Halley step; the error is computed on the smaller tail for accuracy
    if p < 0.5:
        e = 0.5 * math.erfc(-z / math.sqrt(2)) - p
    else:
        e = (1 - p) - 0.5 * math.erfc(z / math.sqrt(2))
    u = e * math.sqrt(2 * math.pi) * math.exp(z * z / 2)
    return z - u / (1 + z * u / 2)


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction for the incomplete beta (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10_000):
        for num in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                    -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1 + num * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b) (Abramowitz & Stegun 26.5.8)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1 - math.exp(log_front) * _betacf(b, a, 1 - x) / b


def _student_t_upper(t: float, df: float) -> float:
    """P(T > t) for t >= 0: I_{df/(df+t^2)}(df/2, 1/2) / 2 (A&S 26.7.1)."""
    return 0.5 * _betainc(df / 2, 0.5, df / (df + t * t))


def student_t_quantile(p: float, df: float) -> float:
    """Quantile of Student's t with df degrees of freedom (df > 0, 0 < p < 1).

    Inverts the distribution function, P(T > t) = I_x(df/2, 1/2) / 2 with
    x = df / (df + t^2) (Abramowitz & Stegun 26.7.1 and 26.5.27), by
    bisection to about 1e-13 relative; I_x is evaluated by its continued
    fraction (A&S 26.5.8).
    """
    if not 0 < p < 1:
        raise ValueError(f"p must be in (0, 1) (got {p!r})")
    if not df > 0:
        raise ValueError(f"df must be > 0 (got {df!r})")
    if p < 0.5:
        return -student_t_quantile(1 - p, df)
    tail = 1 - p
    if tail == 0.5:
        return 0.0
    lo, hi = 0.0, 1.0
    while _student_t_upper(hi, df) > tail:
        lo, hi = hi, hi * 2
    while hi - lo > 1e-13 * hi:
        mid = (lo + hi) / 2
        if _student_t_upper(mid, df) > tail:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def wilson_interval(successes: int, trials: int,
                    confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (Wilson, JASA 1927).

    With p = successes/trials, n = trials, z the two-sided normal quantile:

        (p + z^2/2n -+ z * sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)

    Unlike the normal approximation it stays inside [0, 1] and is not empty
    for 0 or n successes (the low end is then exactly 0, the high end
    exactly 1).  No trials says nothing: (0.0, 1.0).
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1) (got {confidence!r})")
    if trials < 0 or not 0 <= successes <= trials:
        raise ValueError("need 0 <= successes <= trials "
                         f"(got successes={successes}, trials={trials})")
    if trials == 0:
        return (0.0, 1.0)
    z = normal_quantile(0.5 + confidence / 2)
    n, p = trials, successes / trials
    scale = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / scale
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / scale
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return (low, high)


def mean_confidence_interval(values: Iterable[float], confidence: float = 0.95
                             ) -> tuple[float, float, float]:
    """(mean, low, high): the Student t interval for the mean of the values.

    mean +- t_{(1+confidence)/2, n-1} * sd / sqrt(n), with sd the sample
    standard deviation (n - 1 in the denominator).  One value gives no
    estimate of spread: (v, nan, nan).  No values is an error.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1) (got {confidence!r})")
    xs = [float(v) for v in values]
    n = len(xs)
    if n == 0:
        raise ValueError("mean_confidence_interval needs at least one value")
    mean = math.fsum(xs) / n
    if n == 1:
        return (mean, math.nan, math.nan)
    sd = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))
    half = student_t_quantile(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n)
    return (mean, mean - half, mean + half)
