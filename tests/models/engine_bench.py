"""Workloads for the engine's benchmarks (``tests/bench``).

``contended_mutex`` is the engine's side of the comparison with a plain
SimPy ``Resource(capacity=1)``: N CPUs take one sleep mutex, hold it for a
while and let it go, over and over, with no time outside the lock, so every
release hands the lock to a waiter.  It runs with the default costs, lock
statistics and witness on: the engine as a study would use it.
"""

from smpvm import SleepMutex, scenario, work


def _cycles(mtx, cycles, hold_ns):
    for _ in range(cycles):
        yield mtx.lock()
        yield work(hold_ns)
        yield mtx.unlock()


@scenario(params={"n": 8, "cycles": 1000, "hold_ns": 100},
          param_help={"n": "CPUs", "cycles": "acquisitions per CPU", "hold_ns": "hold time"},
          description="N CPUs hammer one sleep mutex: every release is a hand-off")
def contended_mutex(m, variant, n, cycles, hold_ns):
    mtx = SleepMutex(m, "hot lock")
    for cpu in range(n):
        m.spawn(_cycles(mtx, cycles, hold_ns), name=f"cpu{cpu}")
