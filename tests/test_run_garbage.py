"""A batch holds automatic garbage collection off and collects between runs instead.

The hold is process-wide, so it must be counted (threads of a Dask worker run
batches side by side) and must leave the collector as it found it.
"""

import gc
import os
import threading

from smpvm.search.plan import Plan, RunGarbage, run_batch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_nested_holds_restore_the_collector():
    assert gc.isenabled()
    before = gc.get_stats()[0]["collections"]
    with RunGarbage() as g:
        for _ in range(RunGarbage.EVERY):
            g.run_done()
        assert gc.get_stats()[0]["collections"] == before + 1  # one per EVERY runs
        assert not gc.isenabled()
        with RunGarbage():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer batch still runs
    assert gc.isenabled()


def test_a_collector_switched_off_stays_off():
    gc.disable()
    try:
        before = gc.get_stats()[0]["collections"]
        with RunGarbage() as g:
            for _ in range(RunGarbage.EVERY):
                g.run_done()  # no collection is forced on a process that turned it off
        assert gc.get_stats()[0]["collections"] == before
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_holds_in_threads_overlap():
    inside = threading.Barrier(3)
    leave = threading.Barrier(3)
    seen = []

    def batch():
        with RunGarbage():
            inside.wait()
            seen.append(gc.isenabled())
            leave.wait()

    threads = [threading.Thread(target=batch) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [False, False, False]
    assert gc.isenabled()


def test_a_batch_reads_the_same_with_the_collector_held():
    target = os.path.join(ROOT, "models/freebsd/device_pager.py") + "::doomed_object"
    plan = Plan(target=target, variant="buggy", params={}, cpus=None, seed=1,
                strategy="portfolio", depth=3, preemption_bound=None, max_steps=None,
                source_root=ROOT)
    held = run_batch(plan, 0, 3 * RunGarbage.EVERY, 8)
    every, RunGarbage.EVERY = RunGarbage.EVERY, 1
    try:
        often = run_batch(plan, 0, 75, 8)
    finally:
        RunGarbage.EVERY = every
    assert held.rows == often.rows and held.failures == often.failures
    assert held.failures  # the buggy variant fails in some of these runs
