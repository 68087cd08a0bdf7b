"""The driver's CPU per task: smpvm's local pool against ``concurrent.futures``' process pool.

The same stream of tasks (each a few milliseconds of work returning 9 KB,
like a batch of runs and its rows), two per worker out at a time as an
exploration keeps them, through ``ProcessPool`` and through
``ProcessPoolExecutor``; what counts is the CPU of the submitting process,
all its threads, per task.  At 16 workers an exploration sends about 900
batches a second, so this is what the driver takes from the cores the
workers need.  Run with ``pytest tests/bench/test_bench_pool.py
-p no:cacheprovider -s``.
"""

from __future__ import annotations

import concurrent.futures as cf
import resource

from smpvm.search.executors import wait_first
from smpvm.search.pool import ProcessPool

TASKS = 1500
WORKERS = 2
ROUNDS = 3


def batch_like(i: int) -> bytes:
    x = 0
    for j in range(60_000):  # a few milliseconds
        x += j
    return bytes(9000)


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def driver_cpu_per_task(ex) -> float:
    """Seconds of this process's CPU per task, over TASKS tasks, 2 a worker out at once."""
    list(ex.map(batch_like, range(2 * WORKERS)))  # workers started
    c0 = _cpu()
    inflight, sent = set(), 0
    while sent < TASKS or inflight:
        while sent < TASKS and len(inflight) < 2 * WORKERS:
            inflight.add(ex.submit(batch_like, sent))
            sent += 1
        for fut in wait_first(ex, inflight):
            inflight.discard(fut)
            assert len(fut.result()) == 9000
    return (_cpu() - c0) / TASKS


def test_driver_cpu_per_task_against_the_standard_pool(report_ratio):
    ours, theirs = [], []
    for _ in range(ROUNDS):
        with cf.ProcessPoolExecutor(WORKERS) as ex:
            theirs.append(driver_cpu_per_task(ex))
        pool = ProcessPool(WORKERS)
        try:
            ours.append(driver_cpu_per_task(pool))
        finally:
            pool.shutdown()
    ratio = min(ours) / min(theirs)
    report_ratio("driver CPU per task, smpvm pool / ProcessPoolExecutor",
                 f"{ratio:.2f}x ({min(ours) * 1e3:.2f} ms against {min(theirs) * 1e3:.2f} ms "
                 f"a task, {TASKS:,} tasks of a few ms on {WORKERS} workers)")
    assert ratio <= 0.6
