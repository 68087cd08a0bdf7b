"""Demo: page hold/wire counts under the page-queue mutex vs hashed page locks (model c).

Each variant's documented outcome, through the public API: the global
queue mutex and the 9.x hashed locks are clean; the half-converted hold
count loses updates (named at once by the lockset check of the vm_page.h
annotations, or, with that check off, as a held page being freed or a count
that never returns to zero); ignoring tryrelock's EAGAIN holds a page the
unmapper freed.  Under the timed strategy the run reports throughput, and
the global mutex loses to the stripes as CPUs are added.

Why the run counts suffice: under uniform random scheduling (measured over
1000 seeds at the default size) the lockset check fires in ~95% of
partial-conversion runs, the lost update itself shows in ~8% of them with
the check off (about 2% C2, 4% stranded count, 2% underflow), and
ignore-eagain reads a freed frame in ~40%.  The seeds are fixed, so each
test is deterministic; those rates say how far the model could drift before
a test noticed: 300 seeds at 8% leave fewer than 5 hits with probability
about 1e-6, 100 seeds at 40% fewer than 15 with probability below 1e-8.
The clean variants must stay clean over 300 seeds in which the hashed
variant takes the EAGAIN retry in more than half the runs; that is a
regression guard, the 2000-run exploration is the wider check.
"""

import os

import pytest

from smpvm import BadInput, load_target, make_strategy, run_scenario

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGET = os.path.join(ROOT, "models", "freebsd", "page_locks.py") + "::hold_wire"

#: A throughput-study point: no unmapper, a spread-out hot set, one pmap and
#: object per few CPUs, lockset off (it is checked by the race tests).
STUDY = {"unmappers": 0, "hot_pages": 256, "pmaps": 16, "objects": 16, "lockset": False,
         "ops_per_thread": 150}



@pytest.fixture(scope="module")
def scn():
    return load_target(TARGET)


def explore(scn, variant, seeds, **params):
    return [run_scenario(scn, variant=variant, params=params, seed=s, strategy=make_strategy("random"))
            for s in seeds]


@pytest.mark.parametrize("variant", ["queue-lock", "hashed"])
def test_healthy_variants_find_nothing(scn, variant):
    runs = explore(scn, variant, range(300))
    assert [r.violations for r in runs if r.violations] == []
    eagain = sum(1 for r in runs if r.metrics.get("tryrelock_eagain", 0) > 0)
    if variant == "hashed":
        assert eagain > len(runs) // 2  # the retry path the buggy variant skips is exercised
    else:
        assert eagain == 0  # the old form never drops the pmap lock


def test_healthy_variants_hold_their_order(scn):
    for variant in ("queue-lock", "hashed"):
        r = run_scenario(scn, variant=variant, seed=3, params={"cpus": 3, "ops_per_thread": 4})
        assert not r.violations
        seen = {(e["from"], e["to"]) for e in r.witness_edges if e["count"]}
        assert ("pmap", "pa_lock") not in seen and ("vm page queue", "pa_lock") not in seen
        if variant == "queue-lock":
            assert ("vm page queue", "pmap") in seen
        else:
            assert ("pa_lock", "vm page queue") in seen


def test_partial_conversion_is_named_by_the_lockset_check(scn):
    runs = explore(scn, "partial-conversion", range(100))
    failed = [r for r in runs if r.violations]
    assert len(failed) > 80
    msgs = [r.violations[0].message for r in failed]
    assert all(m.startswith("lockset: ") and ".hold_count needs pa_lock[" in m for m in msgs)
    assert all("vm page queue" in m for m in msgs)  # the unconverted path holds the queue lock


def test_partial_conversion_loses_an_update_without_the_lockset_check(scn):
    runs = explore(scn, "partial-conversion", range(300), lockset=False)
    failed = [r for r in runs if r.violations]
    assert len(failed) >= 5
    assert {r.violations[0].kind for r in failed} == {"assertion"}
    assert all("update was lost" in r.violations[0].message for r in failed)
    assert any(r.violations[0].message.startswith("C2: ") for r in failed)


def test_ignore_eagain_uses_a_freed_page(scn):
    runs = explore(scn, "ignore-eagain", range(100))
    failed = [r for r in runs if r.violations]
    assert len(failed) >= 15
    for r in failed:
        v = r.violations[0]
        assert v.kind == "use-after-free"
        assert v.extra["object"].startswith("frame#") and v.extra["field"] == "data"
        assert r.metrics["tryrelock_eagain"] >= 1
    # The same schedules with the retry: nothing.
    clean = explore(scn, "hashed", [r.seed for r in failed])
    assert all(not r.violations for r in clean)


def test_timed_run_reports_throughput_and_lock_statistics(scn):
    r = run_scenario(scn, variant="hashed", params=dict(STUDY, cpus=4), seed=1)
    assert not r.violations
    assert r.metrics["ops"] == 4 * STUDY["ops_per_thread"]
    assert r.metrics["ops_per_ms"] > 0
    assert 0 < r.metrics["op_latency_mean_ns"] <= r.metrics["op_latency_p99_ns"]
    classes = {s.name: s for s in r.lockstat}
    assert set(classes) == {"vm page queue", "vm object", "pmap", "pa_lock"}
    assert classes["pa_lock"].acquisitions > classes["pmap"].acquisitions > 0


def test_stripes_beat_the_global_mutex_as_cpus_grow(scn):
    def ops_per_ms(variant, cpus, **extra):
        r = run_scenario(scn, variant=variant, params=dict(STUDY, cpus=cpus, **extra), seed=1)
        assert not r.violations
        return r.metrics["ops_per_ms"]

    # Hold-only mix: the path kmacy's change moved off the queue mutex.
    holds = {"hold_frac": 1.0, "wire_frac": 0.0}
    q1, h1 = ops_per_ms("queue-lock", 1, **holds), ops_per_ms("hashed", 1, **holds)
    q8, q16 = ops_per_ms("queue-lock", 8, **holds), ops_per_ms("queue-lock", 16, **holds)
    h16 = ops_per_ms("hashed", 16, **holds)
    assert abs(q1 - h1) < 0.1 * q1       # one CPU: no contention, the same
    assert q16 < 1.2 * q8 < 8 * q1       # the global mutex has saturated by 8 CPUs
    assert h16 > 2.5 * q16               # the stripes keep scaling
    # One stripe for everything is the global mutex again.
    assert ops_per_ms("hashed", 16, pa_lock_count=1, **holds) < 1.3 * q16


def test_aligned_hot_set_lands_on_one_stripe(scn):
    aligned = dict(STUDY, cpus=2, hot_pages=512, hot_stride_bytes=4096, ops_per_thread=20)
    spread = dict(aligned, hot_stride_bytes=2 << 20)
    stripes = {}
    for name, params in (("aligned", aligned), ("spread", spread)):
        r = run_scenario(scn, variant="hashed", params=params, seed=1)
        stripes[name] = next(s.instances for s in r.lockstat if s.name == "pa_lock")
    assert stripes == {"aligned": 1, "spread": 256}  # 512 frames of 2 MB over 256 stripes


def test_bad_mix_is_bad_input(scn):
    with pytest.raises(BadInput, match="hold_frac and wire_frac"):
        run_scenario(scn, variant="hashed", params={"hold_frac": 0.8, "wire_frac": 0.4})
