"""Choosing targets (file alone, path::glob*, -k, repeated --variant), replay hints as the
user invoked smpvm, --choices needing replay, and explorations that never overwrite each other."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import ROOT, cli
from smpvm.cli.common import prog
from smpvm.scenario import select_targets
from smpvm.violations import BadInput

MODEL = os.path.join("tests", "models", "forgot.py")
PAGER = os.path.join("models", "freebsd", "device_pager.py")


@pytest.fixture(autouse=True)
def _in_project_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def test_a_file_alone_selects_every_scenario_and_globs_select_by_name():
    assert [(t.rsplit("::")[1], v) for t, _, v in select_targets([PAGER])] == [
        ("doomed_object", "buggy"), ("handle_race", "buggy")]
    assert [t for t, _, _ in select_targets([f"{PAGER}::doomed*"])] == [f"{PAGER}::doomed_object"]
    assert [t for t, _, _ in select_targets([PAGER], keyword="handle")] == [f"{PAGER}::handle_race"]
    picked = select_targets([PAGER], variants=("all",))
    assert [v for _, _, v in picked] == ["buggy", "fixed", "extra-reference", "buggy", "fixed"]
    assert [v for _, _, v in select_targets([PAGER], variants=("extra-reference",))] == [
        "extra-reference"]
    with pytest.raises(BadInput, match="no scenario matching"):
        select_targets([f"{PAGER}::nope*"])
    with pytest.raises(BadInput, match="no selected scenario has variant"):
        select_targets([PAGER], variants=("nope",))


def test_run_over_several_targets_prints_a_summary_and_the_worst_status(capsys):
    code, out, _ = cli(capsys, "run", f"{PAGER}::doomed*", "--variant", "buggy", "--variant", "fixed")
    lines = [ln for ln in out.splitlines() if ln.startswith(("PASS ", "FAIL "))]
    assert lines == [f"FAIL {PAGER}::doomed_object[buggy]", f"PASS {PAGER}::doomed_object[fixed]"]
    assert code == 1
    code, out, _ = cli(capsys, "run", MODEL, "-k", "fine", "--variant", "all")
    assert code == 0 and "2 target(s): 2 passed, 0 failed" in out


def test_lor_takes_a_file_alone(capsys):
    code, out, err = cli(capsys, "lor", PAGER, "--runs", 2)
    assert code in (0, 1) and "Traceback" not in err
    assert f"{PAGER}::handle_race[buggy]" in out


def test_explore_gives_each_target_its_own_directory(capsys, tmp_path):
    code, out, _ = cli(capsys, "explore", MODEL, "-k", "fine", "--variant", "all", "--runs", 5,
                       "--workers", 1, "--out", tmp_path)
    assert code == 0
    assert sorted(os.listdir(tmp_path)) == ["fine-a", "fine-b"]


def test_choices_without_replay_are_refused(capsys):
    code, _, err = cli(capsys, "run", f"{MODEL}::fine", "--choices", "1,0")
    assert code == 2 and "--strategy replay" in err


def test_another_exploration_in_the_same_out_is_refused(capsys, tmp_path):
    args = ("explore", f"{PAGER}::doomed_object", "--runs", 5, "--workers", 1, "--out", tmp_path)
    cli(capsys, *args, "--strategy", "random")
    code, _, err = cli(capsys, *args, "--strategy", "pct")
    assert code == 2 and "holds another exploration" in err
    assert len(err.strip().splitlines()) == 1
    code, _, _ = cli(capsys, *args, "--strategy", "random")  # the same one again is fine
    assert code in (0, 1)


def test_the_default_out_names_the_strategy(tmp_path, monkeypatch):
    from smpvm.search.explore import Exploration
    monkeypatch.chdir(tmp_path)
    a = Exploration(os.path.join(ROOT, PAGER) + "::doomed_object", strategy="random")
    b = Exploration(os.path.join(ROOT, PAGER) + "::doomed_object", strategy="pct")
    assert a.out != b.out and "random" in a.out and "pct" in b.out


def test_prog_names_the_program_as_invoked(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "argv", ["smpvm"])
    assert prog() == "smpvm"
    script = tmp_path / "venv" / "bin" / "smpvm"
    script.parent.mkdir(parents=True)
    script.write_text("")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(sys, "argv", [str(script)])
    assert prog() == os.path.join("venv", "bin", "smpvm")
    monkeypatch.setattr(sys, "argv", [os.path.join(ROOT, "smpvm", "__main__.py")])
    assert prog().endswith(" -m smpvm")


def test_python_m_smpvm_prints_a_replay_command_that_runs(tmp_path):
    out = subprocess.run([sys.executable, "-m", "smpvm", "explore", f"{PAGER}::doomed_object",
                          "--runs", "30", "--workers", "1", "--out", str(tmp_path / "e")],
                         cwd=ROOT, capture_output=True, text=True)
    line = next(ln for ln in out.stdout.splitlines() if " -m smpvm replay " in ln)
    exe, rest = line.split(" -m smpvm ", 1)
    again = subprocess.run([sys.executable, "-m", "smpvm"] + rest.split(), cwd=ROOT,
                           capture_output=True, text=True)
    assert again.returncode == 1 and "reproduced" in again.stdout
