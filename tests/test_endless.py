"""A model whose runs may never end: an exploration says so, instead of grinding for hours.

A sampled exploration (``portfolio``, ``random``, ...) whose first pilot
runs all run into the step bound is bad input: one line, exit 2, before any
batch goes out; so is ``lor`` whose first runs do.  A systematic search (``dfs``, ``ipb``) stops at the first
schedule that runs into it, counts that schedule as the failure it is, says
why in a note and claims no proof: what branches off such a run may never
end either.  Before, ``dfs`` analysed the cut run's races, which grows with
the square of its length: hours for a million steps of two threads.  A
sweep's timed runs get twenty million steps (where they grew tenfold up to
ten billion before: hours per run of a model that loops); a sweep none of
whose runs ended is one error line, exit 2, its rows kept.
"""

from __future__ import annotations

import csv
import json
import os

import pytest

from conftest import ROOT, assert_one_error_line, cli
from smpvm import RunSpec
from smpvm.search.exhaust import exhaust
from smpvm.search.executors import make_executor
from smpvm.search.iterative import iterate
from smpvm.search.pardfs import exhaust_parallel

MODEL = os.path.join(ROOT, "tests", "models", "endless.py")
SPINS = f"{MODEL}::spins"
SECOND_FIRST = f"{MODEL}::second_first"
LONG = f"{MODEL}::long_but_finite"


@pytest.mark.parametrize("strategy", ["portfolio", "random", "pct"])
def test_a_sampled_exploration_of_a_model_that_loops_forever_is_one_line(
        capsys, tmp_path, strategy):
    code, out, err = cli(capsys, "explore", SPINS, "--strategy", strategy, "--workers", 2,
                         "--out", tmp_path)
    assert code == 2 and out == ""
    assert_one_error_line(err, "each of the first 4 runs ran into the step bound (2,000 steps",
                          "endless.py:15", "loop forever", "--max-steps")


def test_max_steps_sets_the_bound_and_is_checked(capsys, tmp_path):
    code, _, err = cli(capsys, "explore", SPINS, "--max-steps", 300, "--out", tmp_path / "a")
    assert code == 2
    assert_one_error_line(err, "(300 steps")
    code, _, err = cli(capsys, "explore", SPINS, "--max-steps", 0, "--out", tmp_path / "b")
    assert code == 2
    assert_one_error_line(err, "--max-steps must be at least 1")


def test_a_model_that_ends_in_the_pilot_runs_is_explored_as_ever(capsys, tmp_path):
    # second_first ends wherever A steps first: some pilot runs end, so no verdict; its
    # runs that do not end are failures like any other.
    code, out, _ = cli(capsys, "explore", SECOND_FIRST, "--runs", 40, "--workers", 1,
                       "--out", tmp_path, "--json")
    doc = json.loads(out)
    assert code == 1 and doc["runs"] == 40
    assert 0 < doc["violations"]["max-steps"] < 40


def test_dfs_stops_at_the_first_schedule_that_runs_into_the_bound():
    report = exhaust(RunSpec(SECOND_FIRST, seed=1))
    # schedule 0 steps A first and ends; schedule 1 steps B first and never would
    assert (report.runs, report.cut_at, report.first_failure_run) == (2, 1, 1)
    assert not report.exhausted
    assert [v.kind for v in report.failures[0].violations] == ["max-steps"]
    assert "stopped at schedule 1, which ran into the step bound" in report.summary()
    assert report.to_dict()["cut_at"] == 1


def test_dfs_finishes_a_model_whose_runs_end_with_no_cut():
    report = exhaust(RunSpec(f"{ROOT}/tests/models/tiny.py::check_then_use", variant="fixed"))
    assert report.exhausted and report.cut_at is None


@pytest.mark.parametrize("workers", [1, 2])
def test_dfs_shared_out_stops_at_the_same_schedule(workers):
    with make_executor(workers) as ex:
        report = exhaust_parallel(RunSpec(SECOND_FIRST, seed=1), ex)
    assert (report.runs, report.cut_at, report.exhausted) == (2, 1, False)


def test_iterative_bounding_stops_at_the_first_schedule_that_runs_into_the_bound():
    report = iterate(RunSpec(SECOND_FIRST, seed=1), max_bound=3)
    assert report.cut_at is not None and report.cut_at == report.schedules - 1
    assert not report.exhausted
    assert "ran into the step bound" in report.summary()


@pytest.mark.parametrize("strategy", ["dfs", "ipb"])
def test_a_systematic_search_has_a_smaller_default_bound(capsys, monkeypatch, tmp_path,
                                                        strategy):
    # a systematic search records every step of a run; a run of the default million steps
    # took 30 s and 1.8 GB before it was cut (and wrote a 200 MB trace)
    from smpvm.cli import report as report_module
    from smpvm.search import explore as explore_module
    from smpvm.search.failures import load_failure
    from smpvm.search.plan import SYSTEMATIC_MAX_STEPS
    from smpvm.scenario import DEFAULT_MAX_STEPS
    assert SYSTEMATIC_MAX_STEPS < DEFAULT_MAX_STEPS
    unbounded = f"{MODEL}::spins_unbounded"
    for target, given, bound in ((unbounded, None, SYSTEMATIC_MAX_STEPS), (SPINS, None, 2000),
                                 (unbounded, 5000, 5000)):
        ex = explore_module.Exploration(target, strategy=strategy, max_steps=given,
                                        out=tmp_path / "plan")
        assert (ex.plan.max_steps or ex.scn.max_steps) == bound
    sampled = explore_module.Exploration(unbounded, out=tmp_path / "p")
    assert (sampled.plan.max_steps or sampled.scn.max_steps) == DEFAULT_MAX_STEPS
    # end to end, with a bound small enough for a test: the failure file keeps it, and
    # the report's trace holds the run's start (this one's 1,500 steps, 1,000 events)
    monkeypatch.setattr(explore_module, "SYSTEMATIC_MAX_STEPS", 1500)
    monkeypatch.setattr(report_module, "REPORT_TRACE_EVENTS", 1000)
    out = tmp_path / "run"
    code, text, _ = cli(capsys, "explore", unbounded, "--strategy", strategy, "--workers", 1,
                        "--out", out, "--json")
    doc = json.loads(text)
    assert code == 1 and doc["runs"] == 1 and doc["violations"] == {"max-steps": 1}
    failure = load_failure(doc["failure_files"]["max-steps"])
    assert failure.max_steps == 1500 and "exceeded 1500 steps" in failure.violation.message
    with open(out / "explore.json") as fp:
        assert json.load(fp)["max_steps"] == 1500
    with open(out / "trace-max-steps.json") as fp:
        events = json.load(fp)["traceEvents"]
    assert 1000 <= len(events) < 1010 and events[-1]["name"] == "trace cut"
    assert "--trace PATH writes the whole run" in events[-1]["args"]["message"]
    assert "later records left out" in (out / "report.html").read_text()


@pytest.mark.parametrize("strategy", ["dfs", "ipb"])
def test_a_systematic_search_says_why_it_stopped(capsys, tmp_path, strategy):
    code, out, _ = cli(capsys, "explore", SPINS, "--strategy", strategy, "--workers", 1,
                       "--out", tmp_path, "--json")
    doc = json.loads(out)
    assert code == 1 and doc["runs"] == 1 and doc["exhausted"] is False
    assert doc["violations"] == {"max-steps": 1}
    (note,) = [n for n in doc["notes"] if "step bound" in n]
    assert note.startswith(f"{strategy}: schedule 0 ran into the step bound (2,000 steps)")
    assert "--max-steps" in note


def test_a_sweep_whose_every_run_stops_at_the_step_bound_is_one_error(capsys, tmp_path):
    study = tmp_path / "loops.toml"
    study.write_text(f'seeds = 2\nmax_steps = 500\n[model]\ntarget = "{SPINS}"\n'
                     f'[sweep]\ncpus = [1, 2]\n')
    code, out, err = cli(capsys, "sweep", study, "--workers", 1, "--out", tmp_path / "o")
    assert code == 2
    assert_one_error_line(err, "every run stopped at its step bound", "loops forever",
                          "max_steps")
    assert "4 run(s) stopped at their step bound" in out  # measured all the same, and kept
    with open(tmp_path / "o" / "runs.csv") as fp:
        assert len(fp.read().splitlines()) == 1 + 4


def test_a_timed_run_gets_the_larger_of_the_timed_bound_and_the_scenarios(monkeypatch):
    # spins's own bound is 2,000 steps; a study's max_steps overrides both
    from smpvm.studies import sweep
    spec = {"run": 0, "point": 0, "seed": 0, "target": SPINS, "params": {}, "costs": {}}
    for timed, bound in ((5000, 5000), (1000, 2000)):
        monkeypatch.setattr(sweep, "TIMED_STEP_BOUND", timed)
        assert sweep.run_one(spec)["metrics"]["limit.max_steps"] == bound
    assert sweep.run_one({**spec, "max_steps": 700})["metrics"]["limit.max_steps"] == 700


def test_lor_of_a_model_that_loops_forever_is_one_line(capsys):
    code, out, err = cli(capsys, "lor", SPINS, "--runs", 20)
    assert code == 2 and out == ""
    assert_one_error_line(err, "each of the first 4 runs ran into the step bound (2,000 steps")
    code, _, err = cli(capsys, "lor", SPINS, "--max-steps", 300)
    assert code == 2
    assert_one_error_line(err, "(300 steps")


def test_lor_of_a_model_whose_runs_end_only_sometimes_goes_on(capsys):
    code, out, _ = cli(capsys, "lor", SECOND_FIRST, "--runs", 12, "--json")
    assert code == 0 and json.loads(out)["runs"] == 12


RACES = """runs = 6
dfs_runs = 20
strategies = ["random", "dfs"]
{study_bound}
[study]
kind = "races"
name = "long runs"
[[race]]
target = "{target}"
buggy = []
fixed = ["default"]
{race_bound}
"""


@pytest.mark.parametrize("where", ["study", "race"])
def test_a_race_study_sets_the_step_bound_of_long_but_finite_runs(capsys, tmp_path, where):
    # 3,000 steps against the scenario's 2,000: explore's advice is to raise the
    # bound, and a study file can, for the whole study or for one race
    study = tmp_path / "races.toml"
    study.write_text(RACES.format(target=LONG, study_bound="", race_bound=""))
    code, _, err = cli(capsys, "sweep", study, "--workers", 1, "--out", tmp_path / "short")
    assert code == 2
    assert_one_error_line(err, "(2,000 steps", "max_steps in a study file")
    bound = "max_steps = 4000"
    study.write_text(RACES.format(target=LONG, study_bound=bound if where == "study" else "",
                                  race_bound=bound if where == "race" else ""))
    code, out, err = cli(capsys, "sweep", study, "--workers", 1, "--out", tmp_path / "long")
    assert code == 0, err
    with open(tmp_path / "long" / "races.csv") as fp:
        rows = list(csv.DictReader(fp))
    assert [(r["strategy"], r["failing_runs"]) for r in rows] == [("portfolio", "0"), ("dfs", "0")]
    assert rows[1]["exhausted"] == "True"


def test_a_lor_study_sets_the_step_bound_too(capsys, tmp_path):
    study = tmp_path / "lor.toml"
    text = (f'runs = 4\n{{bound}}\n[study]\nkind = "lor"\nname = "long"\n'
            f'[[model]]\ntarget = "{LONG}"\nold = ["default"]\nfixed = []\n')
    study.write_text(text.format(bound=""))
    code, _, err = cli(capsys, "sweep", study, "--out", tmp_path / "short")
    assert code == 2
    assert_one_error_line(err, "(2,000 steps")
    study.write_text(text.format(bound="max_steps = 4000"))
    code, _, err = cli(capsys, "sweep", study, "--out", tmp_path / "long")
    assert code == 0, err


@pytest.mark.parametrize("bound", ["0", "-3", "2.5", "true", '"many"'])
def test_a_study_step_bound_that_is_no_whole_number_is_one_line(capsys, tmp_path, bound):
    study = tmp_path / "races.toml"
    study.write_text(RACES.format(target=LONG, study_bound="", race_bound=f"max_steps = {bound}"))
    code, out, err = cli(capsys, "sweep", study, "--out", tmp_path / "o")
    assert code == 2 and out == ""
    assert_one_error_line(err, "[[race]] number 1", "max_steps must be a whole number >= 1")
