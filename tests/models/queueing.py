"""One lock, N CPUs, exponential think and hold times: the machine-repairman queue.

Each CPU thinks for Exp(mean ``think_ns``), takes the one sleep mutex, holds
it for Exp(mean ``hold_ns``) and lets it go, again and again until the
simulated clock passes ``horizon_ns``.  Run with lock operations free
(``costs.*=0``, no jitter) this is exactly the closed M/M/1//N queue, so the
lock statistics must agree with ``smpvm.studies.theory.machine_repairman``.

The run stops on a time horizon rather than after a fixed number of
acquisitions per CPU: with a fixed count the CPUs finish at scattered times
and the lock sees less contention at the end, a bias of order
1/sqrt(count) that a horizon shrinks to one cycle per CPU.  Exponential
draws come from the run's seeded generator in batches (one draw at a time
would cost more than the simulation).
"""

from smpvm import SleepMutex, scenario, work

#: Exponential draws taken from the generator at a time.
BATCH = 512


def _exponentials(m, mean_ns):
    """Endless whole-ns Exp(mean_ns) draws from the run's generator."""
    while True:
        for x in m.rng.exponential(mean_ns, BATCH).tolist():
            # The engine's clock counts whole nanoseconds.
            yield round(x)


def _cpu_loop(m, mtx, think_ns, hold_ns, horizon_ns):
    thinks = _exponentials(m, think_ns)
    holds = _exponentials(m, hold_ns)
    while m.now < horizon_ns:
        yield work(next(thinks))
        yield mtx.lock()
        yield work(next(holds))
        yield mtx.unlock()


@scenario(params={"n": 4, "think_ns": 4000, "hold_ns": 1000, "horizon_ns": 10_000_000},
          param_help={"n": "CPUs contending", "think_ns": "mean think time",
                      "hold_ns": "mean hold time", "horizon_ns": "simulated time to run"},
          description="N CPUs contending for one mutex with exponential think/hold times")
def repairman(m, variant, n, think_ns, hold_ns, horizon_ns):
    mtx = SleepMutex(m, "repairman lock")
    for cpu in range(n):
        m.spawn(_cpu_loop(m, mtx, think_ns, hold_ns, horizon_ns), name=f"cpu{cpu}")
