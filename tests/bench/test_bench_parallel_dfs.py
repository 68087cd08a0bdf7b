"""``dfs`` shared out over two workers against one process, on the fixed doomed-object model.

Target: the whole (reduced) space of four allocators and one terminator
(7,658 schedules, the identical allocators searched up to their names;
three allocators need only 379, too few to share) exhausted at least 1.7x
faster with two local worker processes than in one process, and as fast on a two-worker Dask cluster,
both timed in the same run.  The local pool is started inside the timing
(it is what ``--workers 2`` costs a user); the Dask cluster is started
before it, as a user's cluster would be.

Run with ``pytest tests/bench/test_bench_parallel_dfs.py -p no:cacheprovider
--benchmark-only`` on a quiet machine with at least two free cores: the
figures are wall-clock, and the line printed says what a bare CPU loop gains
from two processes on the machine at that moment.
"""

from __future__ import annotations

import os
import time

import pytest

from smpvm import RunSpec, load_target
from smpvm.search.executors import make_executor
from smpvm.search.exhaust import exhaust
from smpvm.search.pardfs import exhaust_parallel
from test_bench_explore import _machine_parallel_speedup

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOOMED = os.path.join(ROOT, "models", "freebsd", "device_pager.py") + "::doomed_object"

pytestmark = pytest.mark.skipif(not os.path.isfile(DOOMED.split("::")[0]),
                                reason="the doomed-object model is not in this tree")


def spec() -> RunSpec:
    return RunSpec(DOOMED, variant="fixed", params={"allocators": 4}, seed=1)


def timed(search) -> tuple:
    t0 = time.perf_counter()
    report = search()
    return time.perf_counter() - t0, report


def one_process():
    return exhaust(spec(), scn=load_target(DOOMED))


def two_processes():
    with make_executor(2) as pool:
        return exhaust_parallel(spec(), pool)


def test_dfs_speedup_with_two_worker_processes(benchmark, report_ratio):
    timings, reports = {1: [], 2: []}, {}

    def both():
        for workers, search in ((1, one_process), (2, two_processes)):
            seconds, reports[workers] = timed(search)
            timings[workers].append(seconds)

    benchmark.pedantic(both, rounds=3, iterations=1)
    one, two = min(timings[1]), min(timings[2])
    speedup = one / two
    benchmark.extra_info.update(one_process_s=round(one, 3), two_workers_s=round(two, 3),
                                schedules=reports[2].runs, speedup=round(speedup, 2))
    report_ratio("dfs doomed_object fixed, 4 allocators: 2 processes / 1",
                 f"{speedup:.2f}x ({one:.2f} s -> {two:.2f} s, {reports[1].runs} -> "
                 f"{reports[2].runs} schedules; target >= 1.7x; a bare CPU loop gets "
                 f"{_machine_parallel_speedup():.2f}x on this machine now)")
    assert reports[1].exhausted and reports[2].exhausted
    assert reports[2].failing_runs == reports[1].failing_runs == 0
    assert speedup >= 1.7


def test_dfs_speedup_on_a_two_worker_dask_cluster(benchmark, report_ratio):
    pytest.importorskip("dask.distributed")
    timings, reports = {1: [], 2: []}, {}
    with make_executor(2, dask="local") as cluster:
        exhaust_parallel(spec(), cluster, max_runs=64)  # the workers load the model

        def both():
            for workers, search in ((1, one_process),
                                    (2, lambda: exhaust_parallel(spec(), cluster))):
                seconds, reports[workers] = timed(search)
                timings[workers].append(seconds)

        benchmark.pedantic(both, rounds=3, iterations=1)
    one, two = min(timings[1]), min(timings[2])
    speedup = one / two
    benchmark.extra_info.update(one_process_s=round(one, 3), dask_two_workers_s=round(two, 3),
                                speedup=round(speedup, 2))
    report_ratio("dfs doomed_object fixed, 4 allocators: Dask 2 workers / 1 process",
                 f"{speedup:.2f}x ({one:.2f} s -> {two:.2f} s; target >= 1.7x)")
    assert reports[2].exhausted and reports[2].runs == reports[1].runs
    assert speedup >= 1.7
