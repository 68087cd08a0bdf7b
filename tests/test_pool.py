"""The local worker pool: results and errors through futures, a dead worker breaks the pool,
a long task holds up at most one other, large tasks and results do not jam the pipes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from concurrent.futures.process import BrokenProcessPool

import pytest

from smpvm.search.executors import wait_first
from smpvm.search.pool import ProcessPool


def square(x):
    return x * x


def fail(message):
    raise ValueError(message)


def die():
    os._exit(7)


def unpicklable():
    return threading.Lock()


def wait_for(path, then):
    while not os.path.exists(path):
        time.sleep(0.005)
    return then


def echo_size(payload: bytes):
    return bytes(len(payload))


@pytest.fixture
def pool():
    p = ProcessPool(2)
    yield p
    p.shutdown(wait=True, cancel_futures=True)


def test_results_and_errors_come_back_through_their_futures(pool):
    futs = [pool.submit(square, i) for i in range(50)]
    assert [f.result() for f in futs] == [i * i for i in range(50)]
    with pytest.raises(ValueError, match="no such page"):
        pool.submit(fail, "no such page").result()
    with pytest.raises(RuntimeError, match="pickle"):
        pool.submit(unpicklable).result()
    assert pool.submit(square, 7).result() == 49  # the workers live on


def test_the_caller_reads_the_results_itself_with_no_thread_of_the_pool(pool):
    before = threading.active_count()
    futs = [pool.submit(square, i) for i in range(20)]
    assert threading.active_count() == before
    done = set()
    while len(done) < len(futs):
        done |= wait_first(pool, [f for f in futs if f not in done])
    assert sorted(f.result() for f in done) == sorted(i * i for i in range(20))


def test_a_worker_that_dies_breaks_the_pool_for_every_task_not_finished(pool, tmp_path):
    gate = str(tmp_path / "gate")
    first = pool.submit(square, 3)
    assert first.result() == 9
    held = pool.submit(wait_for, gate, "held")
    killer = pool.submit(die)
    with pytest.raises(BrokenProcessPool):
        killer.result()
    with pytest.raises(BrokenProcessPool):
        held.result()  # went down with the pool, as in the standard one
    assert first.result() == 9  # what finished stays finished
    with pytest.raises(BrokenProcessPool):
        pool.submit(square, 2)


def test_a_long_task_holds_up_at_most_one_other(pool, tmp_path):
    gate = str(tmp_path / "gate")
    long = pool.submit(wait_for, gate, "long")
    short = [pool.submit(square, i) for i in range(8)]
    done: set = set()
    deadline = time.monotonic() + 60  # a generous bound: the order is what is checked
    while len(done) < len(short) - 1 and time.monotonic() < deadline:
        done |= pool.wait_first([f for f in short if f not in done],
                                timeout=max(0.0, deadline - time.monotonic()))
    assert len(done) >= len(short) - 1, "tasks waited behind the long one"
    assert not long.done()
    open(gate, "w").close()
    assert long.result() == "long"
    assert [f.result() for f in short] == [i * i for i in range(8)]


def test_shutting_down_with_tasks_running_ends_their_workers(tmp_path):
    p = ProcessPool(2)
    gate = str(tmp_path / "never")
    futs = [p.submit(wait_for, gate, i) for i in range(5)]
    p.shutdown(wait=True, cancel_futures=True)
    for f in futs:
        assert f.cancelled() or isinstance(f.exception(), BrokenProcessPool)


LARGE = """
import sys
from smpvm.search.pool import ProcessPool
sys.path.insert(0, {tests!r})
from test_pool import echo_size
pool = ProcessPool(2)
futs = [pool.submit(echo_size, bytes(n)) for n in [300_000, 10, 2_000_000, 40_000] * 6]
print(sum(len(f.result()) for f in futs))
pool.shutdown()
"""


def test_large_tasks_and_results_do_not_jam_the_pipes():
    # Both ways of a pipe full at once would block each side writing: in a process of
    # its own, so that a jam fails the test instead of hanging the run.
    code = LARGE.format(tests=os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == 6 * (300_000 + 10 + 2_000_000 + 40_000)


ORPHANS = """
import os, sys, time
from smpvm.search.pool import ProcessPool
sys.path.insert(0, {tests!r})
from test_pool import wait_for
pool = ProcessPool(2)
pids = [pool.submit(os.getpid) for _ in range(2)]
print(*sorted({{f.result() for f in pids}}), flush=True)
held = [pool.submit(wait_for, {gate!r}, i) for i in range(4)]
time.sleep(600)
"""


def test_workers_end_when_the_process_that_feeds_them_is_killed(tmp_path):
    gate = str(tmp_path / "gate")
    code = ORPHANS.format(tests=os.path.dirname(os.path.abspath(__file__)), gate=gate)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(p) for p in proc.stdout.readline().split()]
        assert len(pids) == 2
    finally:
        proc.kill()
        proc.wait()
    open(gate, "w").close()  # their tasks end; then each reads the end of its pipe

    def alive(pid):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        try:  # a zombie has ended (not ours to reap)
            with open(f"/proc/{pid}/stat") as fp:
                return fp.read().split(")")[-1].split()[0] != "Z"
        except OSError:  # no /proc here
            return True
    deadline = time.monotonic() + 60  # against a hang only
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [p for p in pids if alive(p)]
    for p in left:
        os.kill(p, 9)
    assert not left, "workers outlived the process that fed them"


def test_an_error_in_a_worker_carries_the_workers_traceback(pool):
    with pytest.raises(ValueError) as info:
        pool.submit(fail, "no such page").result()
    cause = info.value.__cause__
    assert "in fail" in str(cause) and "raise ValueError(message)" in str(cause)


def test_a_result_asked_with_a_timeout_is_waited_for_that_long_only(pool, tmp_path):
    import concurrent.futures as cf
    gate = str(tmp_path / "gate")
    fut = pool.submit(wait_for, gate, "late")
    with pytest.raises(cf.TimeoutError):
        fut.result(timeout=0.05)
    assert wait_first(pool, []) == set()
    open(gate, "w").close()
    assert fut.result(timeout=120) == "late"
