"""A Dask cluster that fails under a running search: real processes on 127.0.0.1.

The scheduler killed, every worker killed, or an address that is no Dask
scheduler at all: each must end the command within a bounded time (the
``SMPVM_DASK_*`` limits, set short here), with one line saying what happened,
exit status 3 (2 for an address that never was a scheduler), and an output
directory that ``--resume`` completes to exactly the rows of an unbroken run.
"""

from __future__ import annotations

import csv
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from conftest import ROOT

pytest.importorskip("dask.distributed")

TARGET = os.path.join("tests", "models", "tiny.py") + "::check_then_use"
DASK = os.path.join(os.path.dirname(sys.executable), "dask")
FAST = {"SMPVM_DASK_CONNECT_S": "3", "SMPVM_DASK_NO_WORKERS_S": "3"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(*args, **kw):
    return subprocess.Popen(list(args), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, **kw)


def wait_for_port(port, proc, seconds=30):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        assert proc.poll() is None, "the server died while starting"
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listened on {port}")


@pytest.fixture
def cluster():
    """A scheduler and one worker, real processes; yields (address, scheduler, worker)."""
    if not os.path.exists(DASK):
        pytest.skip("no dask command")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = start(DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                      "--no-dashboard")
    procs = [scheduler]
    try:
        wait_for_port(port, scheduler)
        worker = start(DASK, "worker", address, "--nthreads", "1", "--no-nanny",
                       "--no-dashboard")
        procs.append(worker)
        yield address, scheduler, worker
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()


def explore_process(out, *args, env=None):
    cmd = [sys.executable, "-m", "smpvm", "explore", TARGET, "--variant", "fixed",
           "--seed", "1", "--out", str(out), *map(str, args)]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, **FAST, **(env or {})})


def rows_on_disk(out):
    try:
        with open(os.path.join(out, "runs.csv"), newline="") as fp:
            return {int(r["run"]): r for r in csv.DictReader(fp)}
    except FileNotFoundError:
        return {}


def wait_for_rows(out, proc, n=1, seconds=60):
    end = time.monotonic() + seconds
    while time.monotonic() < end and proc.poll() is None:
        if len(rows_on_disk(out)) >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"no rows appeared: {proc.communicate()}")


@pytest.mark.parametrize("victim", ["scheduler", "worker"])
def test_a_cluster_killed_under_a_search_ends_it_within_bounds_and_resume_completes_it(
        tmp_path, cluster, victim):
    address, scheduler, worker = cluster
    runs = 20000
    proc = explore_process(tmp_path / "cut", "--runs", runs, "--dask", address)
    wait_for_rows(tmp_path / "cut", proc)
    (scheduler if victim == "scheduler" else worker).send_signal(signal.SIGKILL)
    killed = time.monotonic()
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 3, err
    assert time.monotonic() - killed < 60
    assert "Traceback" not in err
    said = "went away" if victim == "scheduler" else "no workers for 3 s"
    assert said in err and "--resume continues" in err
    partial = rows_on_disk(tmp_path / "cut")
    assert 0 < len(partial) < runs
    # resume (on local processes) a little past what finished, and compare with one go
    upto = len(partial) + 64
    rest = explore_process(tmp_path / "cut", "--runs", upto, "--workers", 1, "--resume")
    assert rest.communicate(timeout=120)[1] == "" and rest.returncode == 0
    whole = explore_process(tmp_path / "whole", "--runs", upto, "--workers", 1)
    whole.communicate(timeout=120)
    got = {i: r for i, r in rows_on_disk(tmp_path / "cut").items() if i < upto}
    assert sorted(got) == list(range(upto))
    assert got == rows_on_disk(tmp_path / "whole")


def test_an_address_that_is_not_a_dask_scheduler_is_refused_in_bounded_time(tmp_path):
    port = free_port()
    http = start(sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1")
    try:
        wait_for_port(port, http)
        t0 = time.monotonic()
        proc = explore_process(tmp_path, "--runs", 10, "--dask", f"tcp://127.0.0.1:{port}",
                               env={"SMPVM_DASK_CONNECT_S": "1"})
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 2 and time.monotonic() - t0 < 30
        (line,) = err.strip().splitlines()
        assert "no Dask scheduler answered" in line
    finally:
        http.kill()
        http.wait()
