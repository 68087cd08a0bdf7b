"""Faults from the outside: lost workers, torn files, interrupts, misbehaving models.

Each test injects one fault and checks the contract: nothing finished is
lost or counted twice, a resumed search equals an uninterrupted one, and the
command ends with one line and a documented exit status (0 nothing found,
1 found, 2 bad input, 3 incomplete), never a traceback or a hang.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, assert_one_error_line, cli
from smpvm.search.explore import explore, read_runs_csv
from smpvm.search.plan import end_of_rows

TINY = os.path.join("tests", "models", "tiny.py")
DEPTH2 = f"{TINY}::check_then_use"
FAULTY = os.path.join("tests", "models", "faulty.py") + "::misbehave"


@pytest.fixture(autouse=True)
def _in_project_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def rows(out_dir):
    with open(os.path.join(out_dir, "runs.csv"), newline="") as fp:
        got = list(csv.DictReader(fp))
    by_run = {int(r["run"]): r for r in got}
    assert len(by_run) == len(got), "a run was recorded twice"
    return by_run


# -- lost runs change the verdict ------------------------------------------------------------

def test_an_exploration_whose_runs_were_all_lost_is_incomplete_not_clean(capsys, tmp_path):
    code, out, err = cli(capsys, "explore", FAULTY, "--set", "how=os_exit", "--runs", 20,
                         "--workers", 2, "--strategy", "random", "--out", tmp_path, "--json")
    d = json.loads(out)
    assert code == 3
    assert d["runs"] == 0 and d["failing_runs"] == 0
    assert sum(x["last"] - x["first"] + 1 for x in d["lost_runs"]) == 20
    assert "incomplete: 20 run(s) were lost" in err and "Traceback" not in err


# -- models that try to end the process ------------------------------------------------------

@pytest.mark.parametrize("how, says", [("exit", "called sys.exit(3)"),
                                       ("base", "raised Shutdown: stop the world")])
@pytest.mark.parametrize("where", ["thread", "setup"])
@pytest.mark.parametrize("workers", [1, 2])
def test_a_model_raising_a_base_exception_is_one_line_and_exit_2(capsys, tmp_path, how, says,
                                                                 where, workers):
    code, _, err = cli(capsys, "explore", FAULTY, "--set", f"how={how}", "--set",
                       f"where={where}", "--runs", 4, "--strategy", "random",
                       "--workers", workers, "--out", tmp_path)
    assert code == 2
    assert_one_error_line(err, says, "faulty.py:")


def test_nan_work_is_a_model_error(capsys, tmp_path):
    model = tmp_path / "nan.py"
    model.write_text("from smpvm import scenario, work\n"
                     "@scenario()\n"
                     "def nan(m, variant):\n"
                     "    def t():\n"
                     "        yield work(float('nan'))\n"
                     "    m.spawn(t(), name='a')\n")
    code, _, err = cli(capsys, "explore", f"{model}::nan", "--runs", 4, "--workers", 2,
                       "--out", tmp_path / "out")
    assert code == 2
    assert_one_error_line(err, "needs a finite ns, got nan", "nan.py:5")


def test_an_absurd_cpu_count_is_refused_before_anything_runs(capsys, tmp_path):
    for command in ("run", "explore"):
        code, _, err = cli(capsys, command, DEPTH2, "--cpus", 10_000_000,
                           *(["--out", tmp_path] if command == "explore" else []))
        assert code == 2
        assert_one_error_line(err, "--cpus must be a whole number from 1 to 8192")
    assert not (tmp_path / "runs.csv").exists()


# -- --stop-on-first counts runs in order ------------------------------------------------------

def test_stop_on_first_with_workers_counts_runs_up_to_the_first_failure(tmp_path):
    one = explore(DEPTH2, variant="buggy", runs=2000, seed=6, workers=1, stop_on_first=True,
                  out=tmp_path / "one")
    two = explore(DEPTH2, variant="buggy", runs=2000, seed=6, workers=2, stop_on_first=True,
                  out=tmp_path / "two")
    assert one.first_failure_run > 16, "the failure is in the first batch: proves nothing"
    assert (two.runs, two.failing_runs, two.first_failure_run) == (
        one.first_failure_run + 1, 1, one.first_failure_run)
    assert rows(tmp_path / "two") == rows(tmp_path / "one")


# -- resume never drops results ------------------------------------------------------------------

@pytest.mark.parametrize("resume", [True, False])
def test_runs_without_their_explore_json_are_never_dropped(capsys, tmp_path, resume):
    explore(DEPTH2, variant="buggy", runs=40, seed=2, workers=1, out=tmp_path)
    os.remove(tmp_path / "explore.json")
    before = (tmp_path / "runs.csv").read_bytes()
    code, _, err = cli(capsys, "explore", DEPTH2, "--variant", "buggy", "--runs", 40,
                       "--workers", 1, "--seed", 2, "--out", tmp_path,
                       *(["--resume"] if resume else []))
    assert code == 2
    assert_one_error_line(err, "runs.csv but no explore.json")
    assert (tmp_path / "runs.csv").read_bytes() == before


def test_a_dfs_search_that_ended_refuses_to_resume_rather_than_start_over(capsys, tmp_path):
    # stopped at --runs: it ended, with no state to go on from (an interrupted one resumes)
    explore(f"{TINY}::abba", variant="fixed", strategy="dfs", runs=5, out=tmp_path)
    before = (tmp_path / "runs.csv").read_bytes()
    code, _, err = cli(capsys, "explore", f"{TINY}::abba", "--variant", "fixed", "--strategy",
                       "dfs", "--runs", 5, "--out", tmp_path, "--resume")
    assert code == 2
    assert_one_error_line(err, "holds no interrupted dfs search")
    assert (tmp_path / "runs.csv").read_bytes() == before


def test_ipb_refuses_to_resume(capsys, tmp_path):
    code, _, err = cli(capsys, "explore", f"{TINY}::abba", "--variant", "fixed", "--strategy",
                       "ipb", "--out", tmp_path, "--resume")
    assert code == 2
    assert_one_error_line(err, "ipb searches do not resume")


def test_a_saved_dfs_state_from_another_smpvm_or_unreadable_is_refused(capsys, tmp_path,
                                                                      monkeypatch):
    import pickle
    from smpvm.search.explore import DFS_STATE
    explore(f"{TINY}::abba", variant="fixed", strategy="dfs", out=tmp_path)
    args = ("explore", f"{TINY}::abba", "--variant", "fixed", "--strategy", "dfs",
            "--out", tmp_path, "--resume")
    (tmp_path / DFS_STATE).write_bytes(pickle.dumps({"smpvm": "another", "search": {}}))
    code, _, err = cli(capsys, *args)
    assert code == 2
    assert_one_error_line(err, "saved by another version of smpvm")
    (tmp_path / DFS_STATE).write_bytes(b"not a pickle")
    code, _, err = cli(capsys, *args)
    assert code == 2
    assert_one_error_line(err, "is unreadable")


# -- a torn last line, at every byte ------------------------------------------------------------

@pytest.fixture(scope="module")
def explored(tmp_path_factory):
    out = tmp_path_factory.mktemp("explored")
    os.chdir(ROOT)
    explore(DEPTH2, variant="buggy", strategy="random", runs=24, seed=5, workers=1, out=out)
    return out


def test_a_runs_csv_cut_at_any_byte_of_its_last_row_reads_as_the_rows_before(tmp_path,
                                                                               explored):
    data = (explored / "runs.csv").read_bytes()
    last = data.rstrip(b"\n").rfind(b"\n") + 1
    whole = read_runs_csv(str(explored / "runs.csv"))
    path = tmp_path / "runs.csv"
    for cut in range(last, len(data)):
        path.write_bytes(data[:cut])
        got = read_runs_csv(str(path))
        assert got == whole[:-1], f"cut at byte {cut}"
        assert path.read_bytes() == data[:last], f"cut at byte {cut}: not trimmed to the rows"


@pytest.mark.parametrize("where", ["after a comma", "mid-field", "before the newline"])
def test_resume_after_a_torn_last_row_equals_an_uninterrupted_exploration(tmp_path, explored,
                                                                          where):
    data = (explored / "runs.csv").read_bytes()
    last = data.rstrip(b"\n").rfind(b"\n") + 1
    cut = {"after a comma": data.index(b",", last) + 1, "mid-field": last + 1,
           "before the newline": len(data) - 1}[where]
    shutil.copytree(explored, tmp_path / "cut")
    (tmp_path / "cut" / "runs.csv").write_bytes(data[:cut])
    rep = explore(DEPTH2, variant="buggy", strategy="random", runs=24, seed=5, workers=1,
                  out=tmp_path / "cut", resume=True)
    assert rep.runs == 24 and rep.runs_this_session == 1
    assert rows(tmp_path / "cut") == rows(explored)


# -- a failure file is data: replay imports only the model its target names -------------------------

@pytest.fixture(scope="module")
def saved_failure(tmp_path_factory):
    """A failure saved by exploring tiny.py's depth-2 bug: its path."""
    out = tmp_path_factory.mktemp("failure")
    os.chdir(ROOT)
    rep = explore(DEPTH2, variant="buggy", runs=200, seed=2, workers=1, stop_on_first=True,
                  out=out)
    return rep.first["use-after-free"].path


def evil_model(tmp_path):
    """A model file that leaves a mark when imported; (its path, the mark)."""
    mark = tmp_path / "imported"
    evil = tmp_path / "evil.py"
    evil.write_text(f"open({str(mark)!r}, 'w').close()\n")
    return evil, mark


def test_replay_refuses_a_model_path_that_is_not_the_target(capsys, tmp_path, saved_failure):
    evil, mark = evil_model(tmp_path)
    d = json.loads(open(saved_failure).read())
    d["model_path"] = str(evil)
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(d))
    for command in ("replay", "report"):
        code, out, err = cli(capsys, command, forged)
        assert code == 2
        assert_one_error_line(err, "model_path", "refusing")
    assert not mark.exists(), "the forged model_path was imported"


def test_replay_never_falls_back_to_the_recorded_absolute_path(capsys, tmp_path, saved_failure,
                                                                monkeypatch):
    evil, mark = evil_model(tmp_path)
    d = json.loads(open(saved_failure).read())
    # consistent with the target, but somewhere else: found only through model_path
    elsewhere = tmp_path / "models" / "tests" / "models" / "tiny.py"
    elsewhere.parent.mkdir(parents=True)
    shutil.copy(evil, elsewhere)
    d["model_path"] = str(elsewhere)
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(d))
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(capsys, "replay", forged)
    assert code == 2
    assert_one_error_line(err, "is not in this directory", "--root")
    assert not mark.exists()


def test_replay_prints_the_model_it_loads_and_takes_a_root(capsys, tmp_path, saved_failure,
                                                           monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = cli(capsys, "replay", saved_failure, "--root", ROOT)
    assert code == 1
    assert out.splitlines()[0] == f"model: {os.path.join(ROOT, TINY)}"
    assert "reproduced use-after-free" in out
    code, out, _ = cli(capsys, "replay", saved_failure, "--root", ROOT, "--json")
    assert json.loads(out)["model_file"] == os.path.join(ROOT, TINY)


# -- a model blocked in a system call ---------------------------------------------------------------

def smpvm_process(*args, env=None, **kw):
    """``python -m smpvm ARGS`` as a new process from the project root."""
    kw = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **kw}
    return subprocess.run([sys.executable, "-m", "smpvm", *map(str, args)], cwd=ROOT,
                          text=True, timeout=60, env={**os.environ, **(env or {})}, **kw)


@pytest.mark.parametrize("how, workers", [("sleep", 1), ("sleep", 2), ("deaf", 1),
                                          ("loop", 2)])
def test_a_model_blocked_in_a_system_call_is_stopped_by_the_watchdog(tmp_path, how, workers):
    """``time.sleep(3600)`` is woken by a real signal; one that ignores it ends the process."""
    r = smpvm_process("explore", FAULTY, "--set", f"how={how}", "--strategy", "random",
                      "--runs", 2, "--workers", workers, "--out", tmp_path,
                      env={"SMPVM_STEP_TIMEOUT": "0.3"})
    assert r.returncode == 2
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("smpvm: error: the model ran") and "a call that blocks" in line
    assert "faulty.py:" in line


@pytest.mark.parametrize("search", [["--runs", 40], ["--strategy", "dfs"]], ids=["sampled", "dfs"])
def test_a_model_stuck_in_a_worker_process_is_stopped_there(tmp_path, search):
    """The watchdog thread does not survive the fork of a worker, and a driver that made
    runs of its own first (PCT's pilot) has one: each worker starts its own."""
    r = smpvm_process("explore", FAULTY, "--set", "how=worker_loop", *search, "--workers", 2,
                      "--out", tmp_path, env={"SMPVM_STEP_TIMEOUT": "0.3"})
    assert r.returncode == 2
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("smpvm: error: the model ran") and "faulty.py:" in line


def test_a_sweep_whose_model_is_stuck_in_a_worker_stops_with_one_line(tmp_path):
    study = tmp_path / "stuck.toml"
    study.write_text(f'seeds = 2\n[model]\ntarget = "{os.path.join(ROOT, FAULTY)}"\n'
                     f'[run]\nhow = "worker_loop"\n[sweep]\ncpus = [2, 3]\n')
    r = smpvm_process("sweep", study, "--workers", 2, "--out", tmp_path / "out",
                      env={"SMPVM_STEP_TIMEOUT": "0.3"})
    assert r.returncode == 2
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("smpvm: error: the model ran") and "faulty.py:" in line


# -- a reader that goes away ---------------------------------------------------------------------------

@pytest.mark.parametrize("variant, status", [("fixed", 0), ("buggy", 1)])
def test_a_closed_stdout_does_not_change_the_verdict(tmp_path, variant, status):
    """``smpvm explore ... | head -1``: the reader leaves early; the status is still the verdict."""
    read, write = os.pipe()
    os.close(read)
    try:
        r = smpvm_process("explore", DEPTH2, "--variant", variant, "--runs", 100,
                          "--workers", 1, "--out", tmp_path, stdout=write)
    finally:
        os.close(write)
    assert r.returncode == status and r.stderr == ""


# -- sizes and names that cannot work --------------------------------------------------------------

@pytest.mark.parametrize("option, value, says", [
    ("--depth", 10_000_000, "--depth must be at most 32"),
    ("--workers", 10_000_000, "--workers must be at most"),
])
def test_absurd_sizes_are_refused_up_front(capsys, tmp_path, option, value, says):
    code, _, err = cli(capsys, "explore", DEPTH2, option, value, "--out", tmp_path)
    assert code == 2
    assert_one_error_line(err, says)


def test_a_trillion_runs_cost_no_memory_before_they_run(tmp_path):
    """Batches are made as they are needed: asking for 10**12 runs costs nothing up front."""
    import tracemalloc
    tracemalloc.start()
    rep = explore(DEPTH2, variant="buggy", runs=10**12, seed=2, workers=1, stop_on_first=True,
                  out=tmp_path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert rep.failing_runs == 1 and rep.runs == rep.first_failure_run + 1
    assert peak < 50 * 2**20


@pytest.mark.skipif(sys.platform != "linux", reason="needs a file system that takes any bytes")
def test_a_model_under_a_non_utf8_directory_is_bad_input_not_a_crash(capsys, tmp_path):
    odd = os.path.join(os.fsencode(tmp_path), b"dir\xff")
    os.mkdir(odd)
    shutil.copy(os.path.join(ROOT, TINY), os.path.join(odd, b"tiny.py"))
    target = os.fsdecode(os.path.join(odd, b"tiny.py")) + "::publish"
    for command in ("run", "explore"):
        code, _, err = cli(capsys, command, target,
                           *(["--out", tmp_path / "o"] if command == "explore" else []))
        assert code == 2
        assert_one_error_line(err, "is not valid UTF-8", "rename")


def test_an_interrupted_dfs_says_it_starts_over_rather_than_resumes(capsys, tmp_path,
                                                                    monkeypatch):
    import smpvm.search.pardfs as pardfs

    def interrupted(*args, **kw):
        raise KeyboardInterrupt
    monkeypatch.setattr(pardfs, "exhaust_parallel", interrupted)
    code, _, err = cli(capsys, "explore", f"{TINY}::abba", "--variant", "fixed", "--strategy",
                       "dfs", "--out", tmp_path)
    assert code == 3
    assert "dfs does not resume from here: run it again to start over" in err
    assert "--resume" not in err


@pytest.mark.parametrize("chunk", [1, 3, 7, 1 << 16])
def test_end_of_rows_keeps_all_but_the_last_lines(tmp_path, chunk):
    path = tmp_path / "runs.csv"
    lines = [b"run,seed\r\n"] + [b"%d,%d\r\n" % (i, i * 7919) for i in range(12)]
    path.write_bytes(b"".join(lines))
    for drop in range(len(lines) + 1):
        assert end_of_rows(str(path), drop, chunk) == sum(map(len, lines[:len(lines) - drop]))
    with pytest.raises(ValueError):
        end_of_rows(str(path), len(lines) + 1, chunk)


def test_a_file_written_whole_is_the_old_one_until_its_writer_ends(tmp_path):
    from smpvm.search.manifest import whole_file
    path = tmp_path / "runs.csv"
    path.write_text("old\n")
    with pytest.raises(RuntimeError):
        with whole_file(str(path)) as fp:
            fp.write("half of the new")
            assert path.read_text() == "old\n"  # nothing replaced while it is written
            raise RuntimeError("the writer died")
    assert path.read_text() == "old\n"
    with whole_file(str(path), "wb") as fp:
        fp.write(b"new\n")
    assert path.read_bytes() == b"new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["runs.csv"]  # the torn .tmp written over, then renamed
