"""Faults around studies: workers killed mid-sweep, torn rows, interrupted race studies.

The contract is the one ``explore`` keeps: a sweep or study that is cut short
keeps every row it finished, says it is incomplete (exit 3) and how to go
on, and ``--resume`` completes it to exactly the rows of an uninterrupted run.
"""

from __future__ import annotations

import csv
import json
import os

from conftest import ROOT, assert_one_error_line, cli
from smpvm.studies.races import load_study, run_races
from smpvm.studies.sweep import RunsCsv, load_config, run_sweep

CRASH = os.path.join(ROOT, "tests", "models", "crash.py")


def killer_study(tmp_path, every, once, seeds=6, marker="marker"):
    """A sweep over crash.py's ``killer``, whose runs kill their worker process."""
    path = tmp_path / "killer.toml"
    path.write_text(f'seeds = {seeds}\n[model]\ntarget = "{CRASH}::killer"\n'
                    f'[run]\nevery = {every}\nonce = {str(once).lower()}\n'
                    f'marker = "{tmp_path / marker}"\n[sweep]\ncpus = [2, 3]\n')
    return str(path)


def rows(path):
    with open(path, newline="") as fp:
        return {int(r["run"]): r for r in csv.DictReader(fp)}


def test_a_sweep_worker_killed_mid_run_is_replaced_and_nothing_is_lost(tmp_path):
    study = killer_study(tmp_path, every=3, once=True)
    pooled = run_sweep(load_config(study), str(tmp_path / "pool"), workers=2)
    assert (tmp_path / "marker").exists(), "no worker was killed: the test proves nothing"
    assert pooled["lost_runs"] == []
    inline = run_sweep(load_config(study), str(tmp_path / "inline"), workers=1)
    assert pooled["runs"] == inline["runs"] == 12
    assert rows(tmp_path / "pool" / "runs.csv") == rows(tmp_path / "inline" / "runs.csv")


def test_sweep_runs_that_always_kill_their_worker_are_reported_lost(capsys, tmp_path):
    study = killer_study(tmp_path, every=4, once=False, seeds=5)  # seeds 0 and 4 kill
    code, out, err = cli(capsys, "sweep", study, "--workers", 2, "--out", tmp_path / "o",
                         "--json")
    assert code == 3
    d = json.loads(out)
    assert sorted((x["point"], x["seed"]) for x in d["lost_runs"]) == [
        (0, 0), (0, 4), (1, 0), (1, 4)]
    assert sorted(rows(tmp_path / "o" / "runs.csv")) == [1, 2, 3, 6, 7, 8]
    assert "incomplete: 4 run(s) were lost" in err and "Traceback" not in err


def test_sweep_model_paths_are_absolute_for_workers_elsewhere(tmp_path, monkeypatch):
    from smpvm.studies.sweep import run_specs
    monkeypatch.chdir(ROOT)
    study = tmp_path / "rel.toml"
    study.write_text('[model]\ntarget = "tests/models/crash.py::killer"\n[sweep]\ncpus = [1]\n')
    (spec, *_) = run_specs(load_config(str(study)))
    assert spec["target"] == f"{CRASH}::killer"


def test_a_runs_csv_cut_at_any_byte_of_its_last_row_keeps_the_rows_before(tmp_path):
    study = killer_study(tmp_path, every=0, once=True, seeds=2)
    out = tmp_path / "full"
    run_sweep(load_config(study), str(out), workers=1)
    data = (out / "runs.csv").read_bytes()
    last = data.rstrip(b"\n").rfind(b"\n") + 1
    names = RunsCsv(str(out / "runs.csv"), ["cpus", "every", "once", "marker"])
    assert len(names.rows) == 4
    path = tmp_path / "runs.csv"
    for cut in range(last, len(data)):
        path.write_bytes(data[:cut])
        table = RunsCsv(str(path), ["cpus", "every", "once", "marker"])
        assert sorted(table.rows) == sorted(names.rows)[:-1], f"cut at byte {cut}"
        assert path.read_bytes() == data[:last], f"cut at byte {cut}"


def test_a_resumed_sweep_after_a_torn_row_equals_an_uninterrupted_one(tmp_path):
    study = killer_study(tmp_path, every=0, once=True, seeds=2)
    run_sweep(load_config(study), str(tmp_path / "full"), workers=1)
    data = (tmp_path / "full" / "runs.csv").read_bytes()
    (tmp_path / "cut").mkdir()
    for name in ("manifest.json",):
        (tmp_path / "cut" / name).write_bytes((tmp_path / "full" / name).read_bytes())
    last = data.rstrip(b"\n").rfind(b"\n") + 1
    # cut right after the comma before the last cell: every cell is there, one is empty
    (tmp_path / "cut" / "runs.csv").write_bytes(data[:data.rfind(b",") + 1])
    assert data.rfind(b",") > last
    result = run_sweep(load_config(study), str(tmp_path / "cut"), workers=1, resume=True)
    assert result["ran"] == 1
    assert rows(tmp_path / "cut" / "runs.csv") == rows(tmp_path / "full" / "runs.csv")


def test_a_sweep_of_absurd_size_is_refused_up_front(capsys, tmp_path):
    study = killer_study(tmp_path, every=0, once=True, seeds=10**12)
    code, _, err = cli(capsys, "sweep", study, "--out", tmp_path / "o")
    assert code == 2
    assert_one_error_line(err, "2,000,000,000,000 runs", "at most 1,000,000")


def test_an_interrupted_sweep_exits_3_and_says_how_to_resume(capsys, tmp_path, monkeypatch):
    import smpvm.studies.sweep as sweep_module
    study = killer_study(tmp_path, every=0, once=True, seeds=3)
    real = sweep_module.run_one

    def interrupted_at_run_4(spec):
        if spec["run"] == 4:
            raise KeyboardInterrupt
        return real(spec)

    monkeypatch.setattr(sweep_module, "run_one", interrupted_at_run_4)
    code, _, err = cli(capsys, "sweep", study, "--workers", 1, "--out", tmp_path / "o")
    assert code == 3
    (line,) = err.strip().splitlines()
    assert line.startswith("interrupted:") and "--resume" in line
    monkeypatch.setattr(sweep_module, "run_one", real)
    code, _, _ = cli(capsys, "sweep", study, "--workers", 1, "--out", tmp_path / "o",
                     "--resume")
    assert code == 0 and sorted(rows(tmp_path / "o" / "runs.csv")) == [0, 1, 2, 3, 4, 5]


# -- race studies --------------------------------------------------------------------------------

RACES = """runs = 30
dfs_runs = 40
seed = 1
strategies = ["random", "pct-d2"]
[study]
kind = "races"
[[race]]
target = "{tiny}::check_then_use"
buggy = ["buggy"]
fixed = ["fixed"]
[[race]]
target = "{tiny}::publish"
buggy = ["buggy"]
fixed = []
"""


def test_an_interrupted_race_study_marks_its_partial_row_and_resumes(capsys, tmp_path,
                                                                     monkeypatch):
    import smpvm.search.explore as explore_module
    study = tmp_path / "races.toml"
    study.write_text(RACES.format(tiny=os.path.join(ROOT, "tests", "models", "tiny.py")))
    full = run_races(load_study(str(study), "races"), str(tmp_path / "full"), workers=1)
    assert not full["interrupted"] and full["rows"] == 6

    calls = []
    real_record = explore_module.Exploration._record

    def interrupt_the_third_exploration(self, outcomes):
        real_record(self, outcomes)
        if self.report.runs >= 10 and len(calls) == 0 and self.plan.strategy == "portfolio":
            calls.append(1)
            raise KeyboardInterrupt

    monkeypatch.setattr(explore_module.Exploration, "_record", interrupt_the_third_exploration)
    monkeypatch.setattr(explore_module.Exploration, "_batch_size", lambda self, w: 8)
    code, _, err = cli(capsys, "sweep", study, "--workers", 1, "--out", tmp_path / "cut")
    assert calls and code == 3
    assert "interrupted:" in err and "--resume" in err
    partial = list(csv.DictReader(open(tmp_path / "cut" / "races.csv")))
    assert [r["complete"] for r in partial] == ["True", "True", "False"]
    assert int(partial[-1]["runs"]) < 30
    monkeypatch.setattr(explore_module.Exploration, "_record", real_record)
    code, _, err = cli(capsys, "sweep", study, "--workers", 1, "--out", tmp_path / "cut",
                       "--resume")
    assert code == 0, err
    got = list(csv.DictReader(open(tmp_path / "cut" / "races.csv")))
    want = list(csv.DictReader(open(tmp_path / "full" / "races.csv")))
    assert got == want


DFS_RACE = """runs = 20
dfs_runs = 5000
seed = 1
strategies = ["random"]
[study]
kind = "races"
[[race]]
target = "{doomed}"
params = {{allocators = 3}}
buggy = []
fixed = ["fixed"]
"""


def test_a_race_study_interrupted_in_a_dfs_row_resumes_that_search(capsys, tmp_path,
                                                                  monkeypatch):
    import smpvm.search.explore as explore_module
    import smpvm.search.pardfs as pardfs
    study = tmp_path / "races.toml"
    doomed = os.path.join(ROOT, "models", "freebsd", "device_pager.py") + "::doomed_object"
    study.write_text(DFS_RACE.format(doomed=doomed))
    full = run_races(load_study(str(study), "races"), str(tmp_path / "full"), workers=1)
    assert not full["interrupted"] and full["rows"] == 2

    # the dfs row (379 schedules) stopped between two parts' results, its state saved
    monkeypatch.setattr(pardfs, "CHECKPOINT_S", 0)
    monkeypatch.setattr(pardfs, "CHECKPOINT_SHARE", float("inf"))
    real_due, states = pardfs._Driver._checkpoint_due, []

    def interrupt_after_a_few_states(self, due):
        states.append(1)
        if len(states) == 5:
            raise KeyboardInterrupt
        return real_due(self, due)
    monkeypatch.setattr(pardfs._Driver, "_checkpoint_due", interrupt_after_a_few_states)
    code, _, err = cli(capsys, "sweep", study, "--workers", 1, "--out", tmp_path / "cut")
    assert code == 3 and "--resume" in err
    partial = list(csv.DictReader(open(tmp_path / "cut" / "races.csv")))
    assert [(r["strategy"], r["complete"]) for r in partial] == [("portfolio", "True"),
                                                                 ("dfs", "False")]
    monkeypatch.setattr(pardfs._Driver, "_checkpoint_due", real_due)
    resumed = []
    real_resume = explore_module.Exploration._resume_dfs
    monkeypatch.setattr(explore_module.Exploration, "_resume_dfs",
                        lambda self, previous: resumed.append(1) or real_resume(self, previous))
    code, _, err = cli(capsys, "sweep", study, "--workers", 1, "--out", tmp_path / "cut",
                       "--resume")
    assert code == 0, err
    assert resumed  # the search went on from its state
    got = list(csv.DictReader(open(tmp_path / "cut" / "races.csv")))
    want = list(csv.DictReader(open(tmp_path / "full" / "races.csv")))
    assert got == want and want[-1]["exhausted"] == "True"
    row = os.path.join("runs", "doomed_object-fixed-dfs", "runs.csv")
    assert (tmp_path / "cut" / row).read_bytes() == (tmp_path / "full" / row).read_bytes()
