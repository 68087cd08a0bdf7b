"""``dfs`` on the fixed doomed-object model: the whole (reduced) space, timed.

Targets: exhausted with one allocator and one terminator within 1 s, and
with two allocators and one terminator within 10 s; three allocators are
timed against 10 s too, and four against a minute.  Plain enumeration of the second is hundreds of
thousands of schedules; partial-order reduction is what makes it finish.  Each benchmark keeps the schedule counts in
``extra_info`` and prints them in the session's summary.

Run with ``pytest tests/bench -p no:cacheprovider --benchmark-only`` on a
quiet machine: the limits are wall-clock, and the process's CPU time is
reported too, which other load on the machine disturbs less.
"""

from __future__ import annotations

import os
import time

import pytest

from smpvm import RunSpec, load_target
from smpvm.search.exhaust import exhaust

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOOMED = os.path.join(ROOT, "models", "freebsd", "device_pager.py")

pytestmark = pytest.mark.skipif(
    not os.path.isfile(DOOMED),
    reason="models/freebsd/device_pager.py (the doomed-object model) is not in this tree yet")


@pytest.mark.parametrize("allocators, limit_s", [(1, 1.0), (2, 10.0), (3, 10.0), (4, 60.0)])
def test_dfs_exhausts_the_fixed_doomed_object_model(benchmark, report_ratio, allocators,
                                                    limit_s):
    scn = load_target(f"{DOOMED}::doomed_object")
    reports, cpu = [], []

    def search():
        c0 = time.process_time()
        spec = RunSpec(f"{DOOMED}::doomed_object", variant="fixed", params={"allocators": allocators}, seed=1)
        reports.append(exhaust(spec, scn=scn))
        cpu.append(time.process_time() - c0)

    benchmark.pedantic(search, rounds=2 if allocators > 1 else 5, iterations=1)
    report = reports[-1]
    wall = benchmark.stats.stats.min
    benchmark.extra_info.update(schedules=report.runs, pruned=report.pruned,
                                sleep_blocked=report.sleep_blocked,
                                cpu_seconds=round(min(cpu), 3))
    report_ratio(f"dfs doomed_object fixed, {allocators} allocator(s)",
                 f"{report.summary()}; {wall:.2f} s wall, {min(cpu):.2f} s CPU "
                 f"(target <= {limit_s:g} s)")
    assert report.exhausted and report.failing_runs == 0
    assert all(r.runs == report.runs for r in reports)  # the search is deterministic
    assert wall <= limit_s
