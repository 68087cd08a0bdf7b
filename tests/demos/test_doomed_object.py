"""Demo: the 2007 doomed-object race in FreeBSD's device pager, found and fixed.

``models/freebsd/device_pager.py::doomed_object`` races a terminator (Pt),
which drops the last reference to a device's VM object, against an
allocator (Pa), which mmaps the same device.  These tests check, through the
public API and the CLI, that the engine's own scheduling finds the bug in the
sx-era allocator, that the fix shows nothing in any schedule, and that the
variant with one reference too many leaks.

Why the numbers of runs suffice: under uniformly random scheduling (measured
over 3,000 seeds) 66% of ``buggy`` runs fail, 44% of them with the
use-after-free; 39% of ``buggy`` runs with ``pageout=true`` end in the
terminator's "object with references" assertion; 20% of ``extra-reference``
runs leak.  So 100 runs miss a bug with probability below 0.8**100 (about
2e-10), and the seeds are fixed anyway, so a failure here means the model or
the engine changed.  For ``fixed`` the random runs are a smoke test; the
proof is the exhaustive search (partial-order reduced ``dfs``).
"""

from __future__ import annotations

import json
import os

import pytest

from smpvm import load_target, make_strategy, run_scenario
from smpvm.cli import main
from smpvm.report.narrative import step_text
from smpvm.trace import MemorySink

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join("models", "freebsd", "device_pager.py")
TARGET = f"{MODEL}::doomed_object"
#: The model's documented lock order, as a rank per lock class.
RANK = {"dev_pager_sx": 0, "dev_pager_mtx": 1, "vm object": 2}


@pytest.fixture(autouse=True)
def _in_project_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def random_runs(variant, runs, **params):
    """Results of ``runs`` randomly scheduled runs (seeds 0..runs-1)."""
    scn = load_target(TARGET)
    strategy = make_strategy("random")
    return [run_scenario(scn, variant=variant, params=params, seed=seed, strategy=strategy,
                         lockstat=False)
            for seed in range(runs)]


def first_violations(results):
    return [r.violations[0] for r in results if r.violations]


def cli(capsys, *args):
    """``smpvm ARGS`` in this process: (exit status, stdout)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    return exc.value.code or 0, capsys.readouterr().out


# -- buggy: the sx-era allocator ------------------------------------------------------------


def test_buggy_allocator_uses_the_freed_object():
    found = first_violations(random_runs("buggy", 100))
    uaf = [v for v in found if v.kind == "use-after-free"]
    assert uaf, "no use-after-free in 100 random schedules"
    for v in uaf:
        assert v.ctx == "Pa"
        assert v.extra["object"] == "vm_object#0"
        assert "by CPU0" in v.extra["free"]  # Pt freed it
    # Every other failure is the same race caught earlier: a reference taken
    # on the doomed object that happened to be used before the free.
    for v in found:
        assert v.kind == "use-after-free" or v.message.startswith("A1: a lookup handed out obj0")


def test_buggy_allocator_with_two_allocators_still_fails():
    kinds = {v.kind for v in first_violations(random_runs("buggy", 100, allocators=2))}
    assert "use-after-free" in kinds


def test_pip_sleep_lets_the_reference_in_and_terminate_asserts():
    found = first_violations(random_runs("buggy", 100, pageout=True))
    msgs = [v.message for v in found if v.kind == "assertion"]
    assert any(m.startswith("vm_object_terminate: object with references") for m in msgs)


def test_lockset_check_flags_the_unlocked_walk_in_every_run():
    for r in random_runs("buggy", 5, lockset=True):
        v = r.violations[0]
        assert v.kind == "assertion"
        assert "lockset: read of pagerlst#0.objects needs dev_pager_mtx" in v.message


def test_timed_run_reads_like_the_commit_message():
    # The default (timed) strategy with seed 0: durations decide, and the
    # lookup lands inside the terminator's teardown, as in the 2007 report.
    sink = MemorySink()
    r = run_scenario(load_target(TARGET), variant="buggy", seed=0, trace=sink)
    assert r.kinds() == ["use-after-free"]
    story = [(rec.ctx, step_text(rec)) for rec in sink.records
             if rec.action in ("note", "wait", "release", "free", "violation")]
    expected = [("Pt", "sets OBJ_DEAD on obj0"), ("Pa", "lookup returns obj0, already doomed"),
                ("Pa", "wait vm object[obj0]"), ("Pt", "unlock vm object[obj0]"),
                ("Pt", "free vm_object#0"), ("Pa", ">>> use-after-free")]
    at = []
    for who, text in expected:
        hits = [i for i, (ctx, t) in enumerate(story) if ctx == who and text in t]
        assert hits, f"{who} never says {text!r}: {story}"
        at.append(hits[0])
    assert at == sorted(at), story


# -- fixed -------------------------------------------------------------------------------


@pytest.mark.parametrize("params", [{}, {"allocators": 2}, {"pageout": True}, {"lockset": True}])
def test_fixed_allocator_has_no_violation(params):
    assert first_violations(random_runs("fixed", 150, **params)) == []


@pytest.mark.parametrize("allocators", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_fixed_allocator_is_proved_by_exhaustive_search(capsys, tmp_path, allocators):
    rc, out = cli(capsys, "explore", TARGET, "--variant", "fixed", "--strategy", "dfs",
                  "--set", f"allocators={allocators}", "--workers", "1", "--out", tmp_path,
                  "--json")
    d = json.loads(out)
    assert rc == 0
    assert d["exhausted"] is True and d["failing_runs"] == 0 and d["runs"] > 1


def test_witness_sees_only_the_documented_lock_order():
    for variant in ("buggy", "fixed"):
        for r in random_runs(variant, 30, allocators=2):
            assert "lock-order-reversal" not in r.kinds()
            for e in r.witness_edges:
                assert RANK[e["from"]] < RANK[e["to"]], e


# -- extra-reference ---------------------------------------------------------------------------


def test_extra_reference_leaks_the_object():
    found = first_violations(random_runs("extra-reference", 100))
    assert found, "no leak in 100 random schedules"
    for v in found:
        assert v.kind == "assertion"
        assert v.message.startswith("reference leak: obj0 has ref_count 2 but 1 mapping(s)")
