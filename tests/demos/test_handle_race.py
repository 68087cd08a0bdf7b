"""Demo: the loser of ``cdev_pager_allocate``'s race hands a vm_object to ``dev_rel``.

``models/freebsd/device_pager.py::handle_race`` has two threads mmap one
device at once.  Both miss on the pager list and allocate; the loser renames
its object's handle to the object itself and drops it, and in the buggy
``dev_pager_dealloc`` the destructor gets that handle.  These tests check
that the engine finds the type confusion (and, without INVARIANTS, the
leaked cdev reference), and that keeping the cdev in the object fixes it.

Why the numbers of runs suffice: under uniformly random scheduling (measured
over 3,000 seeds) 69% of ``buggy`` runs lose the race and fail, so 100 runs
miss it with probability 0.31**100, which is negligible; the seeds are fixed,
so a failure means the model or the engine changed.  The fixed variant is
proved for two mappers by the exhaustive (partial-order reduced) search.
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
TARGET = os.path.join("models", "freebsd", "device_pager.py") + "::handle_race"


@pytest.fixture(autouse=True)
def _in_project_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def first_violations(variant, runs, **params):
    """First violation of each failing run among ``runs`` random schedules."""
    scn = load_target(TARGET)
    strategy = make_strategy("random")
    out = []
    for seed in range(runs):
        r = run_scenario(scn, variant=variant, params=params, seed=seed, strategy=strategy,
                         lockstat=False)
        out.extend(r.violations[:1])
    return out


def cli(capsys, *args):
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    return exc.value.code or 0, capsys.readouterr().out


def test_buggy_destructor_releases_a_vm_object():
    found = first_violations("buggy", 100)
    assert found, "the race was not lost in 100 random schedules"
    for v in found:
        assert v.kind == "assertion"
        assert v.message.startswith("dev_rel(vm_object#")
        assert "gave negative count" in v.message and "not a struct cdev" in v.message


def test_buggy_without_invariants_leaks_the_cdev_reference():
    found = first_violations("buggy", 100, invariants=False)
    assert found
    for v in found:
        assert v.kind == "assertion"
        assert v.message.startswith("B3: cdev reference leak: 1 device object(s) destroyed "
                                    "but only 0 gave back")


@pytest.mark.parametrize("params", [{}, {"invariants": False}, {"mappers": 3}])
def test_fixed_destructor_gets_the_cdev(params):
    assert first_violations("fixed", 150, **params) == []


def test_exhaustive_search_proves_the_fix_and_finds_the_bug(capsys, tmp_path):
    rc, out = cli(capsys, "explore", TARGET, "--variant", "fixed", "--strategy", "dfs",
                  "--workers", "1", "--out", tmp_path / "fixed", "--json")
    fixed = json.loads(out)
    assert rc == 0 and fixed["exhausted"] is True and fixed["failing_runs"] == 0
    rc, out = cli(capsys, "explore", TARGET, "--variant", "buggy", "--strategy", "dfs",
                  "--workers", "1", "--out", tmp_path / "buggy", "--json")
    assert rc == 1 and json.loads(out)["failing_runs"] > 0


def test_timed_run_shows_the_loser_and_its_destructor():
    sink = MemorySink()
    r = run_scenario(load_target(TARGET), variant="buggy", seed=0, trace=sink)
    assert r.kinds() == ["assertion"]
    story = [(rec.ctx, step_text(rec)) for rec in sink.records
             if rec.action in ("note", "violation")]
    assert story == [
        ("T2", "lost the race: obj1's handle becomes the object itself"),
        ("T2", "dev_pager_dealloc: the destructor gets obj1's handle, vm_object#1"),
        ("T2", f">>> assertion: {r.violations[0].message}")]
