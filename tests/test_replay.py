"""Replay: a saved failure comes back identical, or says clearly why it cannot.

The round trip is the user's path: ``smpvm explore`` prints a command, the
test parses that exact line, runs it, and checks the violation has the same
kind, location and simulated time.  Then the ways it can go wrong: the model
file changed (the choices still fit, or they no longer do), and a malformed
or missing file -- each one line and exit status 2, never a traceback.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, cli
from smpvm.search.failures import Failure, load_failure, model_fingerprint, save_failure

TINY = os.path.join("tests", "models", "tiny.py")
SMPVM = os.path.join(os.path.dirname(sys.executable), "smpvm")


@pytest.fixture(autouse=True)
def _in_project_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def explore_and_get_replay_line(capsys, target, out_dir, *extra):
    code, out, _ = cli(capsys, "explore", target, "--variant", "buggy", "--runs", 300,
                       "--seed", 1, "--workers", 1, "--out", out_dir, *extra)
    assert code == 1
    lines = [ln for ln in out.splitlines() if ln.startswith("smpvm replay ")]
    assert lines, out
    return lines


def test_round_trip_the_printed_command_reproduces_the_violation(capsys, tmp_path):
    (line,) = explore_and_get_replay_line(capsys, f"{TINY}::check_then_use", tmp_path)
    argv = shlex.split(line)
    assert argv[:2] == ["smpvm", "replay"]
    saved = json.load(open(argv[2]))["violation"]
    code, out, _ = cli(capsys, *argv[1:], "--json")
    d = json.loads(out)
    assert code == 1 and d["reproduced"] is True and d["model_changed"] is False
    got = d["violations"][0]
    assert (got["kind"], got["location"], got["time_ns"]) == (
        saved["kind"], saved["location"], saved["time_ns"])
    assert got["message"] == saved["message"]


def test_every_kind_found_replays(capsys, tmp_path):
    lines = explore_and_get_replay_line(capsys, f"{TINY}::abba", tmp_path)
    assert len(lines) == 2
    for line in lines:
        code, out, _ = cli(capsys, *shlex.split(line)[1:])
        assert code == 1 and "reproduced" in out and "NOT" not in out


def test_replay_writes_a_trace_and_narrates(capsys, tmp_path):
    (line,) = explore_and_get_replay_line(capsys, f"{TINY}::publish", tmp_path / "x")
    trace = tmp_path / "t.json"
    code, out, _ = cli(capsys, *shlex.split(line)[1:], "--narrate", "--trace", trace)
    assert code == 1
    assert "CPU0 producer" in out and "CPU1 consumer" in out and ">>>" in out
    events = json.load(open(trace))
    assert events  # Chrome trace JSON
    assert "reproduced assertion" in out


def replay_process(*args):
    """``smpvm replay ARGS`` as a new process: it loads the model file as it is now."""
    r = subprocess.run([SMPVM, "replay", *map(str, args)], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    return r.returncode, r.stdout, r.stderr


def copy_model_and_explore(capsys, tmp_path):
    """Explore a private copy of tiny.py (so the test may edit it); the failure file."""
    model = tmp_path / "model.py"
    shutil.copy(TINY, model)
    (line,) = explore_and_get_replay_line(capsys, f"{model}::check_then_use", tmp_path / "o")
    return model, shlex.split(line)[2]


def test_changed_model_whose_choices_still_fit_is_flagged(capsys, tmp_path):
    model, failure = copy_model_and_explore(capsys, tmp_path)
    with open(model, "a") as fp:
        fp.write("\n# an unrelated edit\n")
    code, out, _ = replay_process(failure, "--json")
    d = json.loads(out)
    assert d["model_changed"] is True and d["reproduced"] is True and code == 1


READER_PAD = """    for _ in range(pad):
        yield work(5)
    if locked:"""
RECLAIMER_PAD = """    for _ in range(pad):
        yield work(5)
    yield mtx.lock()"""


def test_changed_model_that_needs_more_choices_says_so(capsys, tmp_path):
    model, failure = copy_model_and_explore(capsys, tmp_path)
    # the reclaimer now takes three more steps: the recorded choices run out
    model.write_text(model.read_text().replace(
        RECLAIMER_PAD, RECLAIMER_PAD.replace("range(pad)", "range(pad + 3)"), 1))
    code, _, err = replay_process(failure)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "model file changed" in lines[0]
    assert "--continue random" in lines[0]
    # finishing the run with a seeded random strategy is allowed when asked for
    code, out, _ = replay_process(failure, "--continue", "random", "--json")
    d = json.loads(out)
    assert d["model_changed"] is True and d["continued"] is True and code in (0, 1)
    # and it is reproducible: the random continuation is seeded by the run's seed
    assert replay_process(failure, "--continue", "random", "--json")[1] == out


def test_changed_model_with_another_outcome_says_not_reproduced(capsys, tmp_path):
    model, failure = copy_model_and_explore(capsys, tmp_path)
    # the reader pads longer: every recorded choice still fits, but the race is missed
    model.write_text(model.read_text().replace(
        READER_PAD, READER_PAD.replace("range(pad)", "range(pad + 3)"), 1))
    code, out, _ = replay_process(failure)
    assert code == 0
    assert "model file changed" in out and "NOT reproduced: recorded use-after-free" in out


def test_changed_model_that_ends_early_says_so(capsys, tmp_path):
    model, failure = copy_model_and_explore(capsys, tmp_path)
    # the reader no longer pads: the run ends before the recorded choices are used up
    model.write_text(model.read_text().replace(READER_PAD, "    if locked:", 1))
    code, out, err = replay_process(failure)
    assert code == 2
    assert "model file changed" in err and "recorded choices" in err


def test_recorded_choices_that_fit_no_more_are_refused_even_unchanged(capsys, tmp_path):
    (line,) = explore_and_get_replay_line(capsys, f"{TINY}::check_then_use", tmp_path / "o")
    path = shlex.split(line)[2]
    f = load_failure(path)
    f.choices = [5] + f.choices  # CPU5 does not exist
    save_failure(path, f)
    code, _, err = cli(capsys, "replay", path)
    assert code == 2 and "CPU5" in err and len(err.strip().splitlines()) == 1
    # with --continue random the run goes on from the first choice that does not fit
    code, out, _ = cli(capsys, "replay", path, "--continue", "random", "--json")
    d = json.loads(out)
    assert d["misfit_choice"] == 0 and d["continued"] is True and code in (0, 1)
    code, out, _ = cli(capsys, "replay", path, "--continue", "random")
    assert "recorded choice 1 no longer fits" in out


@pytest.mark.parametrize("content, fragment", [
    ("not json", "is not JSON"),
    ("[1, 2]", "not a valid smpvm failure file"),
    ('{"format": "smpvm-failure/1"}', "missing 'target'"),
])
def test_malformed_failure_files_are_one_line_exit_2(capsys, tmp_path, content, fragment):
    p = tmp_path / "f.json"
    p.write_text(content)
    code, _, err = cli(capsys, "replay", p)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0] and "Traceback" not in err


def test_wrongly_typed_fields_are_named(capsys, tmp_path):
    (line,) = explore_and_get_replay_line(capsys, f"{TINY}::publish", tmp_path / "o")
    saved = json.load(open(shlex.split(line)[2]))
    for field, value in (("choices", ["a"]), ("cpus", 0), ("max_steps", -5), ("max_steps", "9")):
        p = tmp_path / "bad.json"
        p.write_text(json.dumps({**saved, field: value}))
        code, _, err = cli(capsys, "replay", p)
        assert code == 2 and f"'{field}'" in err and len(err.strip().splitlines()) == 1


def test_missing_failure_file(capsys, tmp_path):
    code, _, err = cli(capsys, "replay", tmp_path / "none.json")
    assert code == 2 and "no failure file" in err


def test_failure_file_round_trips_through_save_and_load(tmp_path):
    from smpvm.violations import Violation
    v = Violation("deadlock", "stuck", 120, 1, "t", "m.py:3", [0, 1], {"cycle": ["CPU0"]})
    f = Failure(target="m.py::s", model_path="/abs/m.py", model_sha256="ab", variant="buggy",
                params={"n": 2}, cpus=3, seed=7, choices=[0, 1, 1], violation=v,
                source_root="/r", strategy={"name": "pct", "depth": 2}, master_seed=1, run=4,
                preemptions=1, original_preemptions=3, max_steps=None, smpvm_version="0.1.0")
    save_failure(str(tmp_path / "f.json"), f)
    assert load_failure(str(tmp_path / "f.json")) == f
    assert model_fingerprint(str(tmp_path / "f.json")) != model_fingerprint(TINY)
