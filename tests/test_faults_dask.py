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

from conftest import DOOMED3_DFS, ROOT, assert_one_error_line, cli
from smpvm.search.explore import explore

pytest.importorskip("dask.distributed")

TARGET = os.path.join("tests", "models", "tiny.py") + "::check_then_use"
DASK = os.path.join(os.path.dirname(sys.executable), "dask")
FAST = {"SMPVM_DASK_CONNECT_S": "2", "SMPVM_DASK_NO_WORKERS_S": "2"}


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


def dask_cluster(workers: int, threads: int = 1, env: dict | None = None):
    """A scheduler and ``workers`` workers of ``threads`` threads (their environment
    ``env``), real processes: yields (address, scheduler, [worker, ...]) and kills what
    is left at the end."""
    if not os.path.exists(DASK):
        pytest.skip("no dask command")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = start(DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                      "--no-dashboard")
    procs = [scheduler]
    try:
        wait_for_port(port, scheduler)
        started = [start(DASK, "worker", address, "--nthreads", str(threads), "--no-nanny",
                         "--no-dashboard", env=env) for _ in range(workers)]
        procs += started
        yield address, scheduler, started
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()


@pytest.fixture
def cluster():
    """A scheduler and one worker; yields (address, scheduler, worker)."""
    for address, scheduler, (worker,) in dask_cluster(1):
        yield address, scheduler, worker


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
    # only the limit under test is short
    limits = ({"SMPVM_DASK_NO_WORKERS_S": "60"} if victim == "scheduler"
              else {"SMPVM_DASK_CONNECT_S": "60"})
    proc = explore_process(tmp_path / "cut", "--runs", runs, "--dask", address, env=limits)
    wait_for_rows(tmp_path / "cut", proc)
    (scheduler if victim == "scheduler" else worker).send_signal(signal.SIGKILL)
    killed = time.monotonic()
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 3, err
    assert time.monotonic() - killed < 60
    assert "Traceback" not in err
    said = "went away" if victim == "scheduler" else "no workers for 2 s"
    assert said in err and "--resume continues" in err
    partial = rows_on_disk(tmp_path / "cut")
    assert 0 < len(partial) < runs
    # resume (on local processes) a little past what finished, and compare with one go
    upto = len(partial) + 64
    os.chdir(ROOT)
    rest = explore(TARGET, variant="fixed", seed=1, runs=upto, workers=1, resume=True,
                   out=tmp_path / "cut")
    assert rest.failing_runs == 0 and not rest.interrupted
    explore(TARGET, variant="fixed", seed=1, runs=upto, workers=1, out=tmp_path / "whole")
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


def test_ctrl_c_with_a_local_dask_cluster_is_one_line(tmp_path):
    """Ctrl-C reaches the workers of a LocalCluster too; only smpvm may speak."""
    proc = explore_process(tmp_path, "--runs", 200000, "--dask", "local", "--workers", 2)
    wait_for_rows(tmp_path, proc, n=300)
    os.kill(proc.pid, signal.SIGINT)
    for child in _children(proc.pid):  # as a terminal would: the whole foreground group
        os.kill(child, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 3
    (line,) = err.strip().splitlines()
    assert line.startswith("interrupted:") and "--resume continues" in line


def _children(pid):
    """Every process below ``pid`` (from /proc)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/task/{p}/children") as fp:
                kids = [int(x) for x in fp.read().split()]
        except OSError:
            kids = []
        found += kids
        todo += kids
    return found


@pytest.fixture
def two_workers():
    """A scheduler and two workers; yields (address, [worker, worker])."""
    for address, _, workers in dask_cluster(2):
        yield address, workers


def test_a_worker_killed_mid_search_loses_and_duplicates_nothing(tmp_path, two_workers):
    # The other worker takes over the lost batches: the search completes, and runs.csv is
    # byte for byte the file of the same search made in this process.
    address, workers = two_workers
    runs = 6000
    proc = explore_process(tmp_path / "cluster", "--runs", runs, "--dask", address,
                           env={"SMPVM_DASK_CONNECT_S": "60", "SMPVM_DASK_NO_WORKERS_S": "60"})
    wait_for_rows(tmp_path / "cluster", proc)
    workers[0].send_signal(signal.SIGKILL)
    assert len(rows_on_disk(tmp_path / "cluster")) < runs  # killed mid-search
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    os.chdir(ROOT)
    explore(TARGET, variant="fixed", seed=1, runs=runs, workers=1, out=tmp_path / "here")
    with open(tmp_path / "cluster" / "runs.csv", "rb") as a, \
            open(tmp_path / "here" / "runs.csv", "rb") as b:
        assert a.read() == b.read()


def test_a_sweep_against_a_cluster_equals_the_sweep_in_process(tmp_path, two_workers):
    address, _ = two_workers
    study = os.path.join(ROOT, "experiments", "spin_collapse.toml")
    small = ["--set", "cpus=1,2", "--set", "acquisitions=50", "--seeds", "2"]
    for name, where in (("cluster", ["--dask", address]), ("here", ["--workers", "1"])):
        done = subprocess.run([sys.executable, "-m", "smpvm", "sweep", study, *small, *where,
                               "--out", str(tmp_path / name)], cwd=ROOT, capture_output=True,
                              text=True, timeout=180, env={**os.environ, **FAST})
        assert done.returncode == 0, done.stderr
    with open(tmp_path / "cluster" / "runs.csv", "rb") as a, \
            open(tmp_path / "here" / "runs.csv", "rb") as b:
        assert a.read() == b.read()


def test_a_worker_killed_mid_sweep_loses_and_duplicates_nothing(tmp_path, two_workers):
    # As for a search: the other worker makes the lost runs again, and runs.csv is byte
    # for byte the file of the same sweep made in this process.
    address, workers = two_workers
    study = os.path.join(ROOT, "experiments", "spin_collapse.toml")
    small = ["--set", "cpus=2,4,8", "--set", "acquisitions=1500", "--seeds", "8"]
    runs = 2 * 3 * 8
    out = tmp_path / "cluster"
    proc = subprocess.Popen([sys.executable, "-m", "smpvm", "sweep", study, *small,
                             "--dask", address, "--out", str(out)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "SMPVM_DASK_CONNECT_S": "60",
                                 "SMPVM_DASK_NO_WORKERS_S": "60"})
    wait_for_rows(out, proc)
    workers[0].send_signal(signal.SIGKILL)
    assert len(rows_on_disk(out)) < runs  # killed mid-sweep
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    done = subprocess.run([sys.executable, "-m", "smpvm", "sweep", study, *small,
                           "--workers", "1", "--out", str(tmp_path / "here")], cwd=ROOT,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    with open(out / "runs.csv", "rb") as a, open(tmp_path / "here" / "runs.csv", "rb") as b:
        assert a.read() == b.read()


def dfs_on_cluster(address, out, env):
    """``smpvm explore`` of ``DOOMED3_DFS`` on the cluster at ``address`` (with ``env``)."""
    return subprocess.Popen([sys.executable, "-m", "smpvm", "explore", *DOOMED3_DFS, "--dask",
                             address, "--out", str(out)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **env})


def dfs_here(out, *args):
    """The same search on this machine (``args``: its workers, ``--resume``), to its end."""
    return subprocess.run([sys.executable, "-m", "smpvm", "explore", *DOOMED3_DFS, *args,
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                          timeout=180)


def test_a_worker_killed_mid_exhaustive_search_leaves_the_proof_whole(tmp_path, two_workers):
    # The parts the dead worker had are searched again elsewhere: "all N schedules
    # explored" still covers every schedule, and runs.csv is the in-process search's.
    address, workers = two_workers
    # (the buggy variant: the fixed one's frees are independent of allocations, and its
    # 379 schedules too few to cut into)
    out = tmp_path / "cluster"
    proc = dfs_on_cluster(address, out, {"SMPVM_DASK_CONNECT_S": "60",
                                         "SMPVM_DASK_NO_WORKERS_S": "60"})
    wait_for_rows(out, proc)
    workers[0].send_signal(signal.SIGKILL)
    assert len(rows_on_disk(out)) < 1773  # killed mid-search
    said, err = proc.communicate(timeout=180)
    assert proc.returncode == 1, err  # (failures found, as in every search of the bug)
    assert "all 1773 schedules explored, 1697 failed" in said
    done = dfs_here(tmp_path / "here", "--workers", "1")
    assert done.returncode == 1, done.stderr
    with open(out / "runs.csv", "rb") as a, open(tmp_path / "here" / "runs.csv", "rb") as b:
        assert a.read() == b.read()


@pytest.mark.parametrize("address, said", [
    ("tcp://foo:bar", "not a scheduler's address"),
    ("127.0.0.1", "missing port"),
    ("http://127.0.0.1:1", "unknown address scheme 'http'"),
    ("inproc://x", "inside this process"),
    ("tcp://127.0.0.1:99999", "port 99999 is out of range"),
    ("tls://127.0.0.1:1", "TLS is not set up"),
    ("", "needs a Dask scheduler's address"),
])
def test_an_address_no_client_could_use_is_refused_at_once(capsys, tmp_path, address, said):
    # Refused before a Dask client is made: one that fails in its constructor would wait
    # out its timeout a second time as it is freed, and print a traceback.
    study = os.path.join(ROOT, "experiments", "spin_collapse.toml")
    for command in (["explore", os.path.join(ROOT, TARGET), "--runs", 10, "--out", tmp_path / "e"],
                    ["sweep", study, "--out", tmp_path / "s"]):
        code, _, err = cli(capsys, *command, "--dask", address)
        assert code == 2
        assert_one_error_line(err, said)


def test_a_local_cluster_says_nothing_when_the_dashboard_port_is_taken(tmp_path):
    # 8787, Dask's default HTTP port, is often held (another cluster, a notebook's
    # dashboard): Dask would warn on stderr and take another port
    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", 8787))
        holder.listen()
    except OSError:
        pass  # taken already, as the test wants
    try:
        proc = explore_process(tmp_path, "--runs", 500, "--dask", "local", "--workers", 2)
        out, err = proc.communicate(timeout=120)
    finally:
        holder.close()
    assert proc.returncode == 0 and err == "" and "500 runs" in out


def _profiling(client) -> list:
    """Each worker's running statistical-profiler callbacks."""
    return list(client.run(lambda dask_worker: sorted(
        name for name, callback in dask_worker.periodic_callbacks.items()
        if name.startswith("profile") and callback.is_running())).values())


def test_a_search_turns_off_the_profiler_of_workers_there_and_to_come(tmp_path, cluster):
    # The profiler holds the frames it samples, and with them the model's pointers,
    # which dfs counts: a worker that joins after the search started must not sample
    # either (it sets its plugins up before it starts its periodic callbacks).
    from distributed import Client
    address, _, _ = cluster
    explore(TARGET, variant="buggy", strategy="dfs", seed=1, dask=address,
            out=str(tmp_path / "x"), shrink=False)
    late = start(DASK, "worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard")
    try:
        with Client(address) as client:
            client.wait_for_workers(2, timeout=60)
            assert _profiling(client) == [[], []]
    finally:
        late.kill()
        late.wait()


def test_a_cluster_lost_under_a_dfs_search_is_resumed_to_the_same_rows(tmp_path, cluster):
    # The search's state is saved as the cluster is given up; --resume goes on from it on
    # local processes, to the runs.csv of a search never stopped.
    address, scheduler, _ = cluster
    out = tmp_path / "cluster"
    proc = dfs_on_cluster(address, out, FAST)
    wait_for_rows(out, proc, 200)
    scheduler.kill()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "--resume continues" in err  # (failures found before)
    assert len(rows_on_disk(out)) < 1773 and (out / "dfs-state.pickle").exists()
    resumed = dfs_here(out, "--workers", "2", "--resume")
    assert resumed.returncode == 1, resumed.stderr
    here = dfs_here(tmp_path / "here", "--workers", "1")
    assert here.returncode == 1, here.stderr
    assert (out / "runs.csv").read_bytes() == (tmp_path / "here" / "runs.csv").read_bytes()
