"""Demo: a 1 GB contigmalloc on a 4 GB i386 with 1 GB of kernel address space (model f).

Each variant's documented outcome, through the public API: the 4.7 code
fails the allocation and leaks the run it took off the free queues; the
split API alone gets the pages without touching kernel address space; the
split code behind the contigmalloc wrapper fails cleanly and gives every
page back.  The scan keeps disk interrupts masked for milliseconds.

Why the run counts suffice: the leak is sequential logic (one driver
thread; the interrupts never touch the pages the scan takes), so every run
of a variant takes the same path and a few seeds (different timing jitter
and interrupt arrivals) are enough to show the outcome does not depend on
them.
"""

import os

import pytest

from smpvm import BadInput, load_target, make_strategy, run_scenario

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGET = os.path.join(ROOT, "models", "freebsd", "contigmalloc.py") + "::large_buffer"
GB_PAGES = 262144          # 1 GB in 4 KB pages
FREE_AT_BOOT_MB = 3552     # 4096 MB - 32 MB kernel - 512 MB in use (the defaults)
KVA_FREE_MB = 624          # 1024 MB of kernel address space - 400 MB used



@pytest.fixture(scope="module")
def scn():
    return load_target(TARGET)


def runs(scn, variant, seeds=range(3), **params):
    return [run_scenario(scn, variant=variant, params=params, seed=s, strategy=make_strategy("random"))
            for s in seeds]


def test_47_fails_and_leaks_the_run(scn):
    for r in runs(scn, "contigmalloc-4.7"):
        assert r.kinds() == ["assertion"]
        v = r.violations[0]
        assert v.message.startswith(f"page conservation: {GB_PAGES} pages off every queue "
                                    "and owned by nobody (1024 MB")
        assert r.metrics["allocated"] == 0
        assert r.metrics["lost_pages"] == GB_PAGES
        assert r.metrics["kva_free_mb"] == KVA_FREE_MB          # nothing was mapped
        assert r.metrics["free_mb"] <= FREE_AT_BOOT_MB - 1024 + 1


def test_split_allocates_without_kernel_address_space(scn):
    for r in runs(scn, "split"):
        assert not r.violations
        assert r.metrics["allocated"] == 1
        assert r.metrics["lost_pages"] == 0
        assert r.metrics["kva_free_mb"] == KVA_FREE_MB


def test_split_wrapper_fails_cleanly_and_gives_the_pages_back(scn):
    for r in runs(scn, "split-wrapper"):
        assert not r.violations
        assert r.metrics["allocated"] == 0
        assert r.metrics["lost_pages"] == 0
        # Disk completions only free pages in the full in-use region at the top.
        assert FREE_AT_BOOT_MB <= r.metrics["free_mb"] <= FREE_AT_BOOT_MB + 1


def test_the_scan_masks_disk_interrupts_for_milliseconds(scn):
    r = run_scenario(scn, variant="split", seed=1)
    bound = r.metrics["max_irq_latency_ns"]
    assert 5e6 < bound < 20e6          # ~270k pages examined + 262k unfreed, at splvm
    disk = r.interrupts["disk"]
    assert disk["delivered"] > 0
    assert 1e6 < disk["latency_max_ns"] <= bound


def test_each_failed_47_attempt_leaks_another_run(scn):
    r = run_scenario(scn, variant="contigmalloc-4.7", params={"request_mb": 256, "requests": 3})
    assert r.metrics["allocated"] == 2                     # 624 MB of free KVA: two fit
    assert r.metrics["lost_pages"] == GB_PAGES // 4        # the third leaks its 256 MB
    r = run_scenario(scn, variant="split-wrapper", params={"request_mb": 256, "requests": 3})
    assert not r.violations and r.metrics["allocated"] == 2


def test_fragmented_memory_makes_the_scan_quadratic(scn):
    # Free stretches shorter than the request are re-walked from every page of them.
    r = run_scenario(scn, variant="split", params={"scatter_pct": 0.5, "request_mb": 64})
    assert not r.violations and r.metrics["allocated"] == 1
    assert r.metrics["scan_pages"] > 100 * GB_PAGES * 4
    assert r.metrics["launder_flushes"] >= 1               # pass 0 failed, laundering ran
    assert r.metrics["max_irq_latency_ns"] > 1e9


def test_bad_alignment_is_bad_input(scn):
    with pytest.raises(BadInput, match="align_kb"):
        run_scenario(scn, variant="split", params={"align_kb": 12})
