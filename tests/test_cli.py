"""The command line's contract: exit status 0 / 1 / 2 and one clear line for bad input.

Every way a user or a model can be wrong must end in exit status 2 and a
single ``smpvm: error: ...`` line on stderr, never a traceback; a run that
finds something exits 1, including a deadlock or a livelock, which must be
reported rather than hang.  Most checks call ``smpvm.cli.main`` in-process
(the same code the console script runs, without paying for a new Python
each time); a few run the real executable to check the process-level
behaviour.  The models are in ``tests/models/engine_cases.py``.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT, assert_one_error_line, cli

CASES = "tests/models/engine_cases.py"
SMPVM = os.path.join(os.path.dirname(sys.executable), "smpvm")


@pytest.fixture(autouse=True)
def _in_project_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def cli_process(*args, env=None, timeout=120):
    """Run the installed ``smpvm`` executable; the CompletedProcess.

    The timeout only keeps a broken engine from hanging the suite; no
    assertion depends on how long a command takes.
    """
    return subprocess.run([SMPVM, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env)


# -- bad input: exit 2, one line ----------------------------------------------------------

BAD_INPUTS = [
    pytest.param(["run", "tests/models/no_such_file.py::x"], ["no model file"], id="unknown-file"),
    pytest.param(["run", "tests/models/no_such_file.py"], ["path/to/model.py::scenario"],
                 id="target-without-scenario"),
    pytest.param(["run", f"{CASES}::no_such_scenario"], ["no scenario 'no_such_scenario'",
                                                        "two_locks"], id="unknown-scenario"),
    pytest.param(["run", f"{CASES}::two_locks", "--variant", "nope"],
                 ["no variant 'nope'", "plain, contended"], id="unknown-variant"),
    pytest.param(["run", f"{CASES}::two_locks", "--set", "rounds"], ["key=value"],
                 id="set-without-equals"),
    pytest.param(["run", f"{CASES}::two_locks", "--set", "=3"], ["non-empty key"],
                 id="set-empty-key"),
    pytest.param(["run", f"{CASES}::two_locks", "--set", "laps=3"],
                 ["no parameter 'laps'", "hold_ns, rounds"], id="set-unknown-parameter"),
    pytest.param(["run", f"{CASES}::two_locks", "--set", "rounds=many"],
                 ["whole number", "'many'"], id="set-wrong-type"),
    pytest.param(["run", f"{CASES}::two_locks", "--set", "costs.nope=1"],
                 ["unknown cost 'costs.nope'"], id="set-unknown-cost"),
    pytest.param(["run", f"{CASES}::two_locks", "--set", "costs.acquire_ns=abc"],
                 ["takes a number"], id="set-cost-not-a-number"),
    pytest.param(["run", f"{CASES}::two_locks", "--set", "costs.acquire_ns=-5"],
                 [">= 0"], id="set-negative-cost"),
    pytest.param(["run", "README.md::quick_start"], ["'README.md' is not a Python model file"],
                 id="target-not-python"),
    pytest.param(["run", f"{CASES}::two_locks", "--set", "costs.acquire_ns=1e400"],
                 ["finite number", "inf"], id="set-infinite-cost"),
    pytest.param(["run", f"{CASES}::two_locks", "--set", "rounds=-1"],
                 ["rounds must be >= 0"], id="set-value-the-model-rejects"),
    pytest.param(["run", f"{CASES}::two_locks", "--cpus", "0"], ["--cpus", "at least 1"],
                 id="cpus-zero"),
    pytest.param(["run", f"{CASES}::two_locks", "--cpus", "-3"], ["--cpus", "at least 1"],
                 id="cpus-negative"),
    pytest.param(["run", f"{CASES}::three_threads", "--cpus", "2"], ["raise --cpus"],
                 id="fewer-cpus-than-threads"),
    pytest.param(["run", f"{CASES}::two_locks", "--seed", "soon"], ["--seed"],
                 id="seed-not-a-number"),
    pytest.param(["run", f"{CASES}::two_locks", "--max-steps", "0"], ["--max-steps"],
                 id="max-steps-zero"),
    pytest.param(["run", f"{CASES}::two_locks", "--strategy", "replay"], ["--choices"],
                 id="replay-without-choices"),
    pytest.param(["run", f"{CASES}::two_locks", "--strategy", "replay", "--choices", "1,x"],
                 ["comma-separated"], id="replay-bad-choices"),
    pytest.param(["run", f"{CASES}::misbehaves", "--variant", "raises-in-setup"],
                 ["set-up raised RuntimeError: the set-up broke", "engine_cases.py:"],
                 id="model-raises-in-setup"),
    pytest.param(["run", f"{CASES}::misbehaves", "--variant", "raises-in-thread"],
                 ["model raised RuntimeError: the thread broke", "engine_cases.py:"],
                 id="model-raises-in-thread"),
    pytest.param(["run", f"{CASES}::misbehaves", "--variant", "yields-junk"],
                 ["yielded 42", "engine_cases.py:"], id="model-yields-junk"),
    pytest.param(["run", f"{CASES}::misbehaves", "--variant", "spawns-nothing"],
                 ["spawned no thread"], id="model-spawns-nothing"),
    pytest.param(["run", f"{CASES}::misbehaves", "--variant", "spawns-a-function"],
                 ["needs a generator"], id="model-spawns-a-function"),
    pytest.param(["list", "tests/models/no_such_dir"], ["no such file or directory"],
                 id="list-unknown-path"),
    pytest.param(["frobnicate"], ["No such command"], id="unknown-command"),
]


@pytest.mark.parametrize("args,fragments", BAD_INPUTS)
def test_bad_input_is_one_line_and_exit_2(capsys, args, fragments):
    rc, out, err = cli(capsys, *args)
    assert rc == 2, (out, err)
    assert_one_error_line(err, *fragments)


def test_bad_input_from_the_real_executable_is_one_line(tmp_path):
    """The console script itself: exit 2, one line, no traceback, nothing on stdout."""
    p = cli_process("run", f"{CASES}::misbehaves", "--variant", "yields-junk")
    assert p.returncode == 2
    assert p.stdout == ""
    assert_one_error_line(p.stderr, "yielded 42")


def test_a_trace_that_cannot_be_written_is_bad_input(capsys, tmp_path):
    target = tmp_path / "no_such_dir" / "t.json"
    rc, _, err = cli(capsys, "run", f"{CASES}::two_locks", "--trace", str(target))
    assert rc == 2
    assert_one_error_line(err, "cannot write trace")


# -- findings: exit 1, never a hang ------------------------------------------------------------

def test_deadlock_exits_1_with_a_deadlock_violation():
    """A real process, so that a hang would show as the timeout rather than a stuck suite."""
    p = cli_process("run", f"{CASES}::abba", "--json")
    assert p.returncode == 1, p.stderr
    out = json.loads(p.stdout)
    kinds = [v["kind"] for v in out["violations"]]
    assert "deadlock" in kinds
    dead = out["violations"][kinds.index("deadlock")]
    assert dead["extra"]["cycle"] == ["CPU0", "CPU1"]
    assert "lock a" in dead["message"] and "lock b" in dead["message"]


def test_livelock_stops_at_max_steps_with_exit_1(capsys):
    rc, out, _ = cli(capsys, "run", f"{CASES}::livelock", "--json")
    assert rc == 1
    res = json.loads(out)
    assert [v["kind"] for v in res["violations"]] == ["max-steps"]
    assert res["steps"] == 2_001          # the scenario's max_steps, plus the step that broke it


def test_max_steps_option_overrides_the_scenario(capsys):
    rc, out, _ = cli(capsys, "run", f"{CASES}::livelock", "--max-steps", "50", "--json")
    assert rc == 1
    res = json.loads(out)
    assert res["violations"][0]["kind"] == "max-steps"
    assert "50 steps" in res["violations"][0]["message"]
    assert res["steps"] == 51


def test_text_report_names_the_deadlock(capsys):
    rc, out, _ = cli(capsys, "run", f"{CASES}::abba")
    assert rc == 1
    assert "deadlock: " in out
    assert "wait-for cycle CPU0 -> CPU1 -> CPU0" in out


# -- clean runs: exit 0 -------------------------------------------------------------------------

def test_clean_run_exits_0_with_json_fields(capsys):
    rc, out, err = cli(capsys, "run", f"{CASES}::two_locks", "--variant", "contended",
                       "--set", "rounds=2", "--seed", "3", "--json")
    assert rc == 0, err
    res = json.loads(out)
    assert res["target"] == f"{CASES}::two_locks"
    assert res["variant"] == "contended"
    assert res["params"] == {"rounds": 2, "hold_ns": 100}
    assert res["seed"] == 3
    assert res["cpus"] == 4
    assert res["violations"] == []
    assert res["metrics"] == {"updates": 8}
    assert {s["name"]: s["acquisitions"] for s in res["lockstat"]} == \
        {"table lock": 8, "entry lock": 8}
    assert len(res["trace_sha256"]) == 64 and res["events"] > 0


def test_cost_override_changes_the_run(capsys):
    _, base, _ = cli(capsys, "run", f"{CASES}::two_locks", "--json",
                     "--set", "costs.jitter=0")
    _, slow, _ = cli(capsys, "run", f"{CASES}::two_locks", "--json",
                     "--set", "costs.jitter=0", "--set", "costs.acquire_ns=1000")
    assert json.loads(slow)["time_ns"] > json.loads(base)["time_ns"] + 3 * 1000


def test_text_report_and_lockstat_csv(capsys, tmp_path):
    path = tmp_path / "locks.csv"
    rc, out, _ = cli(capsys, "run", f"{CASES}::two_locks", "--lockstat-csv", str(path))
    assert rc == 0
    assert "no violations" in out
    assert "table lock" in out and "updates = 6" in out
    rows = list(csv.DictReader(path.open()))
    assert [r["name"] for r in rows] == ["table lock", "entry lock"]
    assert [int(r["acquisitions"]) for r in rows] == [6, 6]


def test_narrate_prints_the_interleaving(capsys):
    rc, out, _ = cli(capsys, "run", f"{CASES}::abba", "--narrate")
    assert rc == 1
    assert "lock a" in out and "lock b" in out
    assert len(out.splitlines()) > 8


def test_replay_strategy_follows_the_choices(capsys):
    # Four CPUs start together: the first decision is whoever steps first.
    _, out, _ = cli(capsys, "run", f"{CASES}::two_locks", "--variant", "contended", "--json",
                    "--set", "costs.jitter=0")
    timed = json.loads(out)
    rc, out, err = cli(capsys, "run", f"{CASES}::two_locks", "--variant", "contended",
                       "--json", "--set", "costs.jitter=0", "--strategy", "replay",
                       "--choices", ",".join(map(str, timed["choices"])))
    assert rc == 0, err
    assert json.loads(out)["trace_sha256"] == timed["trace_sha256"]


# -- smpvm list and --help ------------------------------------------------------------------

def test_list_shows_scenarios_variants_and_params(capsys):
    rc, out, _ = cli(capsys, "list", CASES)
    assert rc == 0
    assert f"{CASES}::two_locks" in out
    assert "Two nested locks taken in order; never fails" in out
    assert "* plain" in out and "contended" in out
    assert "params: rounds=3, hold_ns=100" in out
    for name in ("misbehaves", "abba", "livelock", "three_threads", "hash_order"):
        assert f"{CASES}::{name}" in out


def test_list_json(capsys):
    rc, out, _ = cli(capsys, "list", CASES, "--json")
    assert rc == 0
    rows = {r["target"].split("::")[1]: r for r in json.loads(out)["scenarios"]}
    two = rows["two_locks"]
    assert two["variants"] == {"plain": "two CPUs take two locks in the documented order",
                               "contended": "four CPUs do the same"}
    assert two["default_variant"] == "plain"
    assert two["params"] == {"rounds": 3, "hold_ns": 100}
    assert two["param_help"]["rounds"] == "critical sections per CPU"
    assert two["lock_order"] == [["table lock", "entry lock"]]
    assert rows["livelock"]["params"] == {}


def test_list_a_directory_walks_it_in_order_and_skips_private_files(capsys, tmp_path):
    source = open(os.path.join(ROOT, CASES), encoding="utf-8").read()
    for rel in ("b/cases.py", "a/cases.py", "_private.py", "a/_helpers.py", ".hidden/cases.py",
                "_drafts/cases.py"):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
    rc, out, err = cli(capsys, "list", str(tmp_path), "--json")
    assert rc == 0, err
    files = []
    for row in json.loads(out)["scenarios"]:
        f = os.path.relpath(row["target"].split("::")[0], tmp_path)
        if f not in files:
            files.append(f)
    assert files == ["a/cases.py", "b/cases.py"]


def test_list_of_an_empty_directory_says_so(capsys, tmp_path):
    rc, out, _ = cli(capsys, "list", str(tmp_path))
    assert rc == 0
    assert out.strip() == "no scenarios found"


def test_help_lists_run_and_list(capsys):
    rc, out, _ = cli(capsys, "--help")
    assert rc == 0
    assert "run" in out and "list" in out


def test_no_arguments_prints_help(capsys):
    rc, out, _ = cli(capsys)
    assert rc == 0
    assert "Usage" in out


def test_cpus_has_one_meaning(tmp_path):
    """--cpus N and --set cpus=N are the same, whether or not the scenario sizes itself by cpus."""
    from smpvm.scenario import load_target, run_scenario
    from smpvm.violations import BadInput as _BadInput
    for target in ("models/freebsd/page_locks.py::hold_wire",
                   "models/freebsd/device_pager.py::doomed_object"):
        scn = load_target(target)
        a = run_scenario(scn, cpus=3, seed=1)
        b = run_scenario(scn, params={"cpus": "3"}, seed=1)
        assert (a.ncpus, a.params, a.choices) == (b.ncpus, b.params, b.choices)
        with pytest.raises(_BadInput, match="disagree"):
            run_scenario(scn, cpus=2, params={"cpus": 3})
