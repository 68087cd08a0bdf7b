"""kill -9 and Ctrl-C of real ``explore`` and ``sweep`` processes, then ``--resume``.

Each case starts the command in its own process group (as a shell would), waits
for a moment drawn from a seeded generator (measured in rows on disk, so the
moment does not depend on the machine's speed), and kills the whole group with
SIGKILL or SIGINT.  The resumed output must hold exactly the rows of an
uninterrupted run: nothing lost, nothing twice, no torn line.  A Ctrl-C must
end in one line and exit status 3; output to ``/dev/full`` in one line too.
A worker process killed under a shared ``dfs`` search is replaced: the search
ends whole, with the runs.csv of one process.
"""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from conftest import DOOMED3_DFS, ROOT
from smpvm.search.explore import explore
from smpvm.studies.sweep import load_config, run_sweep

TARGET = os.path.join("tests", "models", "tiny.py") + "::check_then_use"
CRASH = os.path.join(ROOT, "tests", "models", "crash.py")
RUNS = 3000
#: A dfs search long enough to be cut into (1,773 schedules).
DOOMED3 = ["explore", *DOOMED3_DFS]
#: The moments (rows on disk when the signal is sent), drawn once from a fixed seed.
MOMENTS = random.Random(17).sample(range(1, 1500), 2)


def smpvm(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "smpvm", *map(str, args)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **kw)


def finish(proc, timeout=120):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def rows(path):
    with open(path, newline="") as fp:
        return {int(r["run"]): r for r in csv.DictReader(fp)}


def count_lines(path):
    try:
        with open(path, "rb") as fp:
            return fp.read().count(b"\n") - 1
    except FileNotFoundError:
        return 0


def kill_at(proc, path, rows_seen, sig):
    """Send ``sig`` to ``proc``'s process group once ``path`` holds ``rows_seen`` rows."""
    end = time.monotonic() + 60
    while proc.poll() is None and count_lines(path) < rows_seen and time.monotonic() < end:
        time.sleep(0.01)
    assert proc.poll() is None, f"it finished before the fault: {proc.communicate()}"
    if sig == signal.SIGTERM:
        os.kill(proc.pid, sig)  # as `kill PID` does: smpvm alone, its workers are its care
    else:
        os.killpg(proc.pid, sig)  # as a terminal does, or an OOM killer's cgroup


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The exploration made in one go (in this process: runs do not depend on where)."""
    out = tmp_path_factory.mktemp("explore-whole")
    os.chdir(ROOT)
    rep = explore(TARGET, variant="buggy", runs=RUNS, workers=2, out=out)
    assert rep.failing_runs
    return out, rep.to_json()


SAME = ("runs", "failing_runs", "first_failure_run", "violations", "distinct_schedules",
        "bug_depths")


@pytest.mark.parametrize("sig, moment", [(signal.SIGKILL, MOMENTS[0]),
                                         (signal.SIGINT, MOMENTS[1]),
                                         (signal.SIGTERM, MOMENTS[0] // 2)],
                         ids=["kill-9", "ctrl-c", "sigterm"])
def test_explore_killed_at_a_random_moment_resumes_to_the_same_rows(tmp_path, reference, sig,
                                                                    moment):
    whole, summary = reference
    out = tmp_path / "cut"
    proc = smpvm("explore", TARGET, "--variant", "buggy", "--runs", RUNS, "--workers", 2,
                 "--out", out, "--json")
    kill_at(proc, out / "runs.csv", moment, sig)
    code, _, err = finish(proc)
    if sig != signal.SIGKILL:
        assert code in (1, 3), err  # 1 when a failing run had been seen already
        assert "Traceback" not in err
        assert [ln for ln in err.splitlines() if "replay" not in ln][-1].startswith(
            "interrupted:")
    else:
        assert code == -signal.SIGKILL
    resumed = explore(TARGET, variant="buggy", runs=RUNS, workers=2, out=out, resume=True)
    assert rows(out / "runs.csv") == rows(whole / "runs.csv")
    assert {k: resumed.to_json()[k] for k in SAME} == {k: summary[k] for k in SAME}


def killer_study(tmp_path, seeds):
    path = tmp_path / "study.toml"
    path.write_text(f'seeds = {seeds}\n[model]\ntarget = "{CRASH}::killer"\n'
                    f'[sweep]\ncpus = [2, 3]\n')
    return path


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_sweep_killed_at_a_random_moment_resumes_to_the_same_rows(tmp_path, sig):
    study = killer_study(tmp_path, seeds=300)
    run_sweep(load_config(str(study)), str(tmp_path / "whole"), workers=2)
    proc = smpvm("sweep", study, "--workers", 2, "--out", tmp_path / "cut")
    kill_at(proc, tmp_path / "cut" / "runs.csv", MOMENTS[0] // 6, sig)
    code, _, err = finish(proc)
    if sig == signal.SIGINT:
        assert code == 3, err
        assert len(err.strip().splitlines()) == 1, err
        (line,) = err.strip().splitlines()
        assert line.startswith("interrupted:") and "--resume" in line
    run_sweep(load_config(str(study)), str(tmp_path / "cut"), workers=2, resume=True)
    assert rows(tmp_path / "cut" / "runs.csv") == rows(tmp_path / "whole" / "runs.csv")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_output_to_a_full_device_is_one_line_and_exit_3(tmp_path):
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "smpvm", "explore", TARGET, "--variant",
                               "fixed", "--runs", "40", "--workers", "1", "--out", str(tmp_path)],
                              cwd=ROOT, stdout=full, stderr=subprocess.PIPE, text=True,
                              timeout=60)
    assert proc.returncode == 3
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("smpvm: error: No space left on device")
    assert count_lines(tmp_path / "runs.csv") == 40  # the rows were written all the same


def worker_processes(pid):
    """The worker processes ``pid`` forked (its children running its command line)."""
    def cmdline(p):
        with open(f"/proc/{p}/cmdline", "rb") as fp:
            return fp.read()
    with open(f"/proc/{pid}/task/{pid}/children") as fp:
        children = [int(c) for c in fp.read().split()]
    return [c for c in children if cmdline(c) == cmdline(pid)]


@pytest.mark.skipif(not os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children"),
                    reason="needs Linux's /proc children lists")
def test_a_worker_killed_under_a_shared_dfs_search_loses_nothing(tmp_path):
    # The three-allocator buggy tree (1,773 schedules) on two local processes, one of them
    # killed as an OOM killer would: the search goes on to the runs.csv of one process.
    args = [*DOOMED3, "--json"]
    alone = finish(smpvm(*args, "-w", "1", "-o", tmp_path / "one"))
    proc = smpvm(*args, "-w", "2", "-o", tmp_path / "two")
    end = time.monotonic() + 60
    while proc.poll() is None and count_lines(tmp_path / "two" / "runs.csv") < 300 \
            and time.monotonic() < end:
        time.sleep(0.01)
    workers = worker_processes(proc.pid)
    assert proc.poll() is None and workers, "it finished before the fault"
    os.kill(workers[0], signal.SIGKILL)
    code, out, _ = finish(proc)
    assert code == alone[0] == 1  # failures found, the search whole
    two, one = json.loads(out), json.loads(alone[1])
    same = ("runs", "failing_runs", "violations", "exhausted", "interrupted", "distinct_schedules")
    assert {k: two[k] for k in same} == {k: one[k] for k in same}
    assert two["exhausted"] and not two["interrupted"] and two["runs"] == 1773
    assert (tmp_path / "two" / "runs.csv").read_bytes() == \
        (tmp_path / "one" / "runs.csv").read_bytes()


@pytest.fixture(scope="module")
def dfs_reference(tmp_path_factory):
    """The three-allocator buggy tree (1,773 schedules) searched in one go."""
    out = tmp_path_factory.mktemp("dfs-whole")
    assert finish(smpvm(*DOOMED3, "-w", 1, "-o", out))[0] == 1
    return out


@pytest.mark.parametrize("sig, workers", [(signal.SIGKILL, 1), (signal.SIGINT, 2)],
                         ids=["kill-9", "ctrl-c"])
def test_an_interrupted_dfs_search_resumes_to_the_same_rows(tmp_path, dfs_reference, sig,
                                                            workers):
    out = tmp_path / "o"
    proc = smpvm(*DOOMED3, "-w", workers, "-o", out)
    end = time.monotonic() + 60
    while proc.poll() is None and not (out / "dfs-state.pickle").exists() \
            and time.monotonic() < end:
        time.sleep(0.01)  # a state saved: the moment is one with something to go on from
    kill_at(proc, out / "runs.csv", 300, sig)
    code, _, err = finish(proc)
    if sig == signal.SIGINT:
        assert code == 1 and "--resume continues" in err  # failures were found before it
    assert (out / "dfs-state.pickle").exists()
    code, _, err = finish(smpvm(*DOOMED3, "-w", 2, "-o", out, "--resume"))
    assert code == 1, err
    assert (out / "runs.csv").read_bytes() == (dfs_reference / "runs.csv").read_bytes()
    files = sorted(p.name for p in dfs_reference.glob("failure-*.json"))
    assert files and sorted(p.name for p in out.glob("failure-*.json")) == files
    for name in files:
        assert (out / name).read_bytes() == (dfs_reference / name).read_bytes()
    assert not (out / "dfs-state.pickle").exists()  # it ended: nothing to go on with
