"""Exploration: reproducible runs on any executor, streamed results, resume, recovery.

The central promise is that run i is a pure function of (master seed, i):
the per-run rows of ``runs.csv`` must be identical whether the runs were
made in this process, by a process pool or by a Dask cluster, and whether
the exploration ran in one go or was interrupted and resumed.  The CLI
contract (exit status, the ``--json`` fields, one line for bad input) is
checked through ``smpvm.cli.main`` in this process.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import csv
import json
import os
import re
import shlex
import subprocess
import sys

import pytest

from conftest import ROOT, cli
from smpvm.search.explore import EPOCH_RUNS, Exploration, explore, read_runs_csv
from smpvm.seeds import SEED_BLOCK, run_seed
from smpvm.studies.theory import pct_probability, runs_for_confidence

TINY = os.path.join("tests", "models", "tiny.py")
CRASH = os.path.join("tests", "models", "crash.py")
DEPTH2 = f"{TINY}::check_then_use"
DOOMED = os.path.join("models", "freebsd", "device_pager.py") + "::doomed_object"


@pytest.fixture(autouse=True)
def _in_project_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def rows(out_dir):
    """runs.csv rows keyed by run index."""
    with open(os.path.join(out_dir, "runs.csv"), newline="") as fp:
        got = list(csv.DictReader(fp))
    by_run = {int(r["run"]): r for r in got}
    assert len(by_run) == len(got), "a run was recorded twice"
    return by_run


# -- seeds ----------------------------------------------------------------------------------

def test_run_seeds_depend_on_master_seed_and_index_only():
    seeds = [run_seed(1, i) for i in range(2 * SEED_BLOCK + 3)]
    assert len(set(seeds)) == len(seeds)
    assert all(0 <= s < 2**63 for s in seeds)
    assert run_seed(1, SEED_BLOCK + 5) == seeds[SEED_BLOCK + 5]   # any order of asking
    assert run_seed(2, 5) != seeds[5]


def test_a_short_exploration_does_not_import_numpy(tmp_path):
    # numpy's import is a tenth of a second of every start of smpvm: run seeds and the
    # count of distinct schedules do without it until an exploration is large
    code = ("import sys; from smpvm.search.explore import explore; "
            f"r = explore({DOOMED!r}, variant='buggy', runs=600, seed=1, workers=1, "
            f"out={str(tmp_path / 'out')!r}); "
            "print(r.failing_runs > 0, r.distinct_schedules > 1, 'numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["True", "True", "False"]


# -- the same runs on every executor ------------------------------------------------------------

def test_same_outcomes_in_process_and_with_a_process_pool(tmp_path):
    a = explore(DEPTH2, variant="buggy", runs=600, seed=3, workers=1, out=tmp_path / "one")
    b = explore(DEPTH2, variant="buggy", runs=600, seed=3, workers=2, out=tmp_path / "two")
    assert a.failing_runs == b.failing_runs > 0
    assert rows(tmp_path / "one") == rows(tmp_path / "two")
    # and runs.csv itself is the same file, rows in run order, whatever the workers
    assert (tmp_path / "one" / "runs.csv").read_bytes() == (tmp_path / "two" / "runs.csv").read_bytes()
    assert a.first_failure_run == b.first_failure_run
    assert a.violations == b.violations


@pytest.fixture(scope="module")
def dask_cluster():
    """A two-worker Dask LocalCluster shared by the Dask tests (it takes seconds to start)."""
    distributed = pytest.importorskip("dask.distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None,
                                       scheduler_kwargs={"dashboard": False,
                                                         "dashboard_address": ":0"})
    yield cluster.scheduler_address
    cluster.close()


def test_same_outcomes_on_a_dask_local_cluster(tmp_path, dask_cluster):
    a = explore(DEPTH2, variant="buggy", runs=300, seed=4, workers=1, out=tmp_path / "one")
    b = explore(DEPTH2, variant="buggy", runs=300, seed=4, workers=2, dask=dask_cluster,
                out=tmp_path / "dask")
    assert b.executor.startswith("dask")
    assert rows(tmp_path / "one") == rows(tmp_path / "dask")
    assert (tmp_path / "one" / "runs.csv").read_bytes() == (tmp_path / "dask" / "runs.csv").read_bytes()
    assert a.failing_runs == b.failing_runs > 0


def test_batches_sent_ahead_of_their_k_on_dask_are_run_again_when_it_was_wrong(
        tmp_path, dask_cluster, monkeypatch):
    """On Dask, batches go out on a guess of their epoch's k and a wrong guess is run
    again before it is recorded.  Guessing from the first epoch on, while the doomed
    object's k still grows (14, then 17, then 19), makes some guesses wrong."""
    target = DOOMED
    monkeypatch.setattr(Exploration, "_may_start", lambda self, start, guess=True: (
        self._k_ready(start) or start < self.done_prefix + self._ahead))
    x = Exploration(target, variant="fixed", runs=6000, seed=1, workers=2, dask=dask_cluster,
                    out=tmp_path / "dask")
    x.run()
    assert x.reruns > 0, "every guess was right: the test proves nothing"
    explore(target, variant="fixed", runs=6000, seed=1, workers=2, out=tmp_path / "pool")
    assert (tmp_path / "pool" / "runs.csv").read_bytes() == (tmp_path / "dask" / "runs.csv").read_bytes()


def _watch_sends(monkeypatch) -> tuple[list, list]:
    """(batches in flight at each wait, starts of the batches sent on a guessed k)."""
    import smpvm.search.explore as explore_module
    in_flight, guessed = [], []
    real_wait, real_may_start = explore_module._wait_first, Exploration._may_start

    def wait(ex, inflight):
        in_flight.append(len(inflight))
        return real_wait(ex, inflight)

    def may_start(self, start, guess=True):
        ok = real_may_start(self, start, guess)
        if ok and not self._k_ready(start):
            guessed.append(start)
        return ok

    monkeypatch.setattr(explore_module, "_wait_first", wait)
    monkeypatch.setattr(Exploration, "_may_start", may_start)
    return in_flight, guessed


def test_many_local_workers_are_kept_busy_past_the_epochs_whose_k_is_known(tmp_path):
    """Only two epochs at a time have a known k: the first epochs, before a k may be
    guessed, come in batches small enough that two epochs keep every worker busy
    (two batches each in flight), later batches go out on a guessed k, and
    runs.csv is still the file one process writes."""
    runs = 16 * EPOCH_RUNS
    with pytest.MonkeyPatch.context() as mp:
        in_flight, guessed = _watch_sends(mp)
        explore(DOOMED, variant="fixed", runs=runs, seed=1, workers=6, out=tmp_path / "six")
    assert in_flight[0] == 2 * 6  # the first wait: nothing settled, no k to guess from
    # past the first epochs, two epochs hold about eight of these batches, not twelve:
    # the rest of the window is filled on guesses
    assert len(set(guessed)) >= 10
    explore(DOOMED, variant="fixed", runs=runs, seed=1, workers=1, out=tmp_path / "one")
    assert (tmp_path / "one" / "runs.csv").read_bytes() == (tmp_path / "six" / "runs.csv").read_bytes()


class _InOrder(concurrent.futures.Executor):
    """Two workers that finish their batches in the order they were sent, one at each
    wait: a quiet machine's pool, without the timing of a real one (under load a
    worker can finish late, and then a guess is what keeps the other busy)."""

    start_s = 0.0

    def __init__(self):
        self.queue = []

    def width(self) -> int:
        return 2

    def submit(self, fn, /, *args, **kwargs):
        fut = concurrent.futures.Future()
        self.queue.append((fut, fn, args, kwargs))
        return fut

    def wait_first(self, inflight) -> set:
        fut, fn, args, kwargs = self.queue.pop(0)
        fut.set_result(fn(*args, **kwargs))
        return {fut}


def test_two_local_workers_never_run_a_batch_on_a_guess(tmp_path, monkeypatch):
    """A wrong guess is a batch run twice; with few workers two epochs hold enough
    batches to keep them busy, so none is sent on a guess."""
    import smpvm.search.explore as explore_module
    in_flight, guessed = _watch_sends(monkeypatch)
    monkeypatch.setattr(explore_module._executors, "make_executor",
                        lambda *a, **k: contextlib.nullcontext(_InOrder()))
    explore(DOOMED, variant="fixed", runs=16 * EPOCH_RUNS, seed=1, workers=2,
            out=tmp_path / "two")
    assert max(in_flight) == 2 * 2 and guessed == []


@pytest.mark.parametrize("runs, size, workers", [(16_000, 256, 2), (160_000, 128, 16),
                                                 (40_000, 512, 2), (3_000, 64, 4)])
def test_the_last_batches_shrink_so_that_the_workers_finish_together(runs, size, workers):
    """No batch holds more than half a worker's share of the runs from its start on (down
    to a floor), so no worker is left with a long batch while the others have none."""
    from smpvm.search.explore import TAIL_BATCH_RUNS, Batches
    pending = Batches(runs, size, bytearray(), None, workers)
    batches = []
    while pending:
        batches.append(pending.pop())
    assert [b[0] for b in batches] == [0] + [b[1] for b in batches[:-1]]
    assert batches[-1][1] == runs
    for start, stop in batches:
        share = -(-(runs - start) // (2 * workers))
        assert stop - start <= max(share, TAIL_BATCH_RUNS)
    assert max(b - a for a, b in batches) == size  # full size until the end is near


def test_a_task_of_several_batches_holds_no_more_than_a_share_of_the_runs_left(tmp_path):
    """On Dask several batches go as one task; near the end, fewer."""
    x = Exploration(DOOMED, variant="fixed", runs=40_000, seed=1, workers=2, dask="local",
                    out=tmp_path / "x")
    x.done_prefix = 40_000  # as if every k were known: only the share limits a task
    from smpvm.search.explore import Batches
    pending = Batches(40_000, 512, bytearray(), None, 2)
    tasks = []
    while pending:
        tasks.append(x._take(pending, {}, 4, guess=False))
    sizes = [t[-1][1] - t[0][0] for t in tasks]
    assert sizes[0] == 4 * 512 and sizes[-1] < 512
    for t, n in zip(tasks, sizes):
        assert n <= max(pending.share(t[0][0]), t[0][1] - t[0][0])


def test_the_k_of_an_epoch_is_the_most_decisions_before_the_epoch_before_it(tmp_path):
    """PCT's k for epoch e: the pilot's and every recorded epoch's before e - 1, asked
    and raised in any order (a long exploration asks it for thousands of epochs)."""
    import random
    from smpvm.search.plan import Batch
    x = Exploration(DEPTH2, variant="buggy", runs=10, seed=1, workers=1, out=tmp_path / "x")
    x.pilot_k = 5
    rng = random.Random(7)
    recorded: dict[int, int] = {}
    for _ in range(400):
        e = rng.randrange(40)
        if rng.random() < 0.4:
            d = rng.randrange(30)
            x._add(Batch(e * EPOCH_RUNS, e * EPOCH_RUNS + 1, "", (), {e: d}, {}, []),
                   restored=True)
            recorded[e] = max(recorded.get(e, 0), d)
        want = max([5] + [d for ep, d in recorded.items() if ep < e - 1])
        assert x._k_for_epoch(e) == want
    assert x._k_for_epoch(10**12) == max([5, *recorded.values()])  # a trillion runs' last
    assert len(x._k_below) <= 42
    x.pilot_k = 40
    assert x._k_for_epoch(rng.randrange(40)) == 40


def test_a_lost_dask_worker_loses_no_runs(tmp_path, dask_cluster):
    marker = tmp_path / "killed-once"
    params = {"every": 37, "marker": str(marker)}
    explore(f"{CRASH}::killer", params=params, runs=300, seed=1, workers=2, dask=dask_cluster,
            out=tmp_path / "dask")
    assert marker.exists(), "no worker was killed: the test proves nothing"
    explore(f"{CRASH}::killer", params=params, runs=300, seed=1, workers=1,
            out=tmp_path / "inline")
    assert rows(tmp_path / "dask") == rows(tmp_path / "inline")
    assert sorted(rows(tmp_path / "dask")) == list(range(300))


def test_same_runs_and_failure_file_in_processes_with_different_hash_seeds(tmp_path):
    smpvm = os.path.join(os.path.dirname(sys.executable), "smpvm")
    for h in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=h)
        r = subprocess.run([smpvm, "explore", f"{TINY}::abba", "--variant", "buggy", "--runs",
                            "200", "--seed", "5", "--workers", "1", "--out", str(tmp_path / h),
                            "--json"], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 1, r.stderr
    for name in ("runs.csv", "failure-deadlock.json", "failure-lock-order-reversal.json"):
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes()


# -- the CLI contract ---------------------------------------------------------------------------

def test_json_report_and_exit_status_1_when_a_run_fails(capsys, tmp_path):
    code, out, err = cli(capsys, "explore", DEPTH2, "--variant", "buggy", "--runs", 300,
                         "--seed", 1, "--workers", 1, "--out", tmp_path, "--json")
    assert code == 1
    d = json.loads(out)  # stdout is one clean JSON object
    for key in ("runs", "failing_runs", "first_failure_run", "violations", "failure_files",
                "exhausted", "bug_depth", "runs_per_second"):
        assert key in d
    assert d["runs"] == 300 and d["failing_runs"] >= 1
    assert d["violations"] == {"use-after-free": d["failing_runs"]}
    assert d["exhausted"] is False and d["bug_depth"] == 1 and d["runs_per_second"] > 0
    path = d["failure_files"]["use-after-free"]
    assert os.path.isfile(path)
    assert f"smpvm replay {path}" in err
    assert len(rows(tmp_path)) == 300


@pytest.mark.parametrize("strategy", ["portfolio", "dfs"])
def test_the_executors_start_is_timed_apart_from_the_runs(capsys, tmp_path, strategy,
                                                          slow_executor_start):
    """A Dask cluster's start (the import, its processes) is paid once: ``elapsed_s``
    holds it, ``executor_start_s`` says how much of it, and ``runs_per_second`` counts
    the time after it, which a longer search would see."""
    code, out, _ = cli(capsys, "explore", DEPTH2, "--variant", "fixed", "--runs", 300,
                       "--strategy", strategy, "--workers", 2, "--out", tmp_path, "--json")
    d = json.loads(out)
    assert code == 0
    assert slow_executor_start <= d["executor_start_s"] < d["elapsed_s"]
    running = d["elapsed_s"] - d["executor_start_s"]  # each rounded to 1 ms
    assert d["runs"] / (running + 0.002) <= d["runs_per_second"] <= d["runs"] / (running - 0.002)
    code, out, _ = cli(capsys, "explore", DEPTH2, "--variant", "fixed", "--runs", 300,
                       "--strategy", strategy, "--workers", 2, "--out", tmp_path / "text")
    assert "s starting the executor" in out


def test_exit_status_0_and_no_failure_files_when_nothing_fails(capsys, tmp_path):
    code, out, _ = cli(capsys, "explore", DEPTH2, "--variant", "fixed", "--runs", 300,
                       "--workers", 1, "--out", tmp_path, "--json")
    d = json.loads(out)
    assert code == 0
    assert d["failing_runs"] == 0 and d["failure_files"] == {} and d["bug_depth"] is None
    assert d["first_failure_run"] is None


def test_text_report_prints_replay_line_guarantee_and_narrative(capsys, tmp_path):
    code, out, _ = cli(capsys, "explore", DEPTH2, "--variant", "buggy", "--runs", 200,
                       "--workers", 1, "--out", tmp_path)
    assert code == 1
    assert "1/(n*k^1)" in out and "99% confidence" in out
    assert "bug depth 1" in out
    assert "CPU0 reader" in out and "CPU1 reclaimer" in out   # the two-column narrative
    assert [ln for ln in out.splitlines() if ln.startswith("smpvm replay ")]


def test_first_failure_of_each_kind_is_saved(tmp_path):
    rep = explore(f"{TINY}::abba", variant="buggy", runs=200, workers=1, out=tmp_path)
    assert set(rep.violations) == {"deadlock", "lock-order-reversal"}
    for kind, f in rep.first.items():
        assert f.path.endswith(f"failure-{kind}.json") and os.path.isfile(f.path)
        saved = json.load(open(f.path))
        assert saved["violation"]["kind"] == kind and saved["run"] == f.run
        assert saved["model_sha256"] and saved["choices"] and saved["strategy"]["name"]
    first_deadlock = min(int(r["run"]) for r in rows(tmp_path).values()
                         if "deadlock" in r["kinds"])
    assert rep.first["deadlock"].run == first_deadlock


def test_stop_on_first_stops_at_the_first_failing_run(tmp_path):
    rep = explore(DEPTH2, variant="buggy", runs=2000, seed=2, workers=1, stop_on_first=True,
                  out=tmp_path)
    assert rep.failing_runs == 1
    assert rep.runs == rep.first_failure_run + 1
    assert sorted(rows(tmp_path)) == list(range(rep.runs))


@pytest.mark.parametrize("args, fragment", [
    (["tests/models/nope.py::x"], "no model file"),
    ([f"{TINY}::nope"], "has no scenario"),
    ([DEPTH2, "--variant", "nope"], "has no variant"),
    ([DEPTH2, "--set", "zz=1"], "no parameter 'zz'"),
    ([DEPTH2, "--runs", "0"], "--runs must be at least 1"),
    ([DEPTH2, "--seed", "-1"], "--seed must be at least 0"),
    ([DEPTH2, "--workers", "0"], "--workers must be at least 1"),
    ([DEPTH2, "--depth", "0"], "--depth must be at least 1"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, args, fragment):
    code, out, err = cli(capsys, "explore", *args, "--out", tmp_path)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("smpvm: error:") and fragment in lines[0]


# -- streaming and resuming ---------------------------------------------------------------------

def test_interrupted_exploration_keeps_finished_runs_and_resume_completes_it(tmp_path):
    full = explore(DEPTH2, variant="buggy", runs=700, seed=9, workers=1, out=tmp_path / "full")
    batches = []

    def interrupt_after_three_batches(report):
        batches.append(report.runs)
        if len(batches) == 3:
            raise KeyboardInterrupt

    part = Exploration(DEPTH2, variant="buggy", runs=700, seed=9, workers=1,
                       out=tmp_path / "cut", progress=interrupt_after_three_batches).run()
    assert part.interrupted and 0 < part.runs < 700
    assert len(rows(tmp_path / "cut")) == part.runs
    # a crash mid-write leaves half a line: resume must cut it off, not trip on it
    with open(tmp_path / "cut" / "runs.csv", "a") as fp:
        fp.write("999,12")
    rest = explore(DEPTH2, variant="buggy", runs=700, seed=9, workers=2, out=tmp_path / "cut",
                   resume=True)
    assert rest.resumed_runs == part.runs
    assert rest.runs == 700 and rest.runs_this_session == 700 - part.runs
    assert rows(tmp_path / "cut") == rows(tmp_path / "full")
    assert (rest.failing_runs, rest.first_failure_run, rest.distinct_schedules) == (
        full.failing_runs, full.first_failure_run, full.distinct_schedules)


def test_resume_with_more_runs_extends_the_exploration(tmp_path):
    explore(DEPTH2, variant="buggy", runs=300, seed=2, workers=1, out=tmp_path / "a")
    rep = explore(DEPTH2, variant="buggy", runs=500, seed=2, workers=1, out=tmp_path / "a",
                  resume=True)
    explore(DEPTH2, variant="buggy", runs=500, seed=2, workers=1, out=tmp_path / "b")
    assert rep.runs_this_session == 200
    assert rows(tmp_path / "a") == rows(tmp_path / "b")


def test_resume_with_different_arguments_is_refused(capsys, tmp_path):
    explore(DEPTH2, variant="buggy", runs=50, seed=2, workers=1, out=tmp_path)
    code, _, err = cli(capsys, "explore", DEPTH2, "--variant", "buggy", "--runs", 50,
                       "--seed", 3, "--workers", 1, "--out", tmp_path, "--resume")
    assert code == 2
    assert "--resume" in err and "seed=2" in err and len(err.strip().splitlines()) == 1


def test_runs_csv_reader_refuses_a_foreign_file(tmp_path):
    p = tmp_path / "runs.csv"
    p.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(ValueError, match="not an smpvm runs.csv"):
        read_runs_csv(str(p))


# -- PCT's k ----------------------------------------------------------------------------------

def test_pct_k_comes_from_runs_two_epochs_back(tmp_path):
    # run lengths vary with the model's own random stream, so later epochs see longer runs
    runs = 4 * EPOCH_RUNS + 10
    explore(f"{TINY}::uneven", runs=runs, seed=1, workers=2, strategy="portfolio",
            out=tmp_path)
    by_run = rows(tmp_path)
    k = {i: int(r["k"]) for i, r in by_run.items() if r["k"]}
    decisions = {i: int(r["decisions"]) for i, r in by_run.items()}
    pilot = k[1]
    per_epoch = []
    for e in range(5):
        in_epoch = {k[i] for i in k if i // EPOCH_RUNS == e}
        assert len(in_epoch) == 1, f"k changed within epoch {e}"
        earlier = [decisions[i] for i in by_run if i // EPOCH_RUNS < e - 1]
        assert in_epoch == {max([pilot] + earlier)}
        per_epoch.extend(in_epoch)
    assert per_epoch[-1] > per_epoch[0], "k was never raised: the test proves nothing"


def test_pct_finds_a_depth_2_bug_within_the_runs_its_bound_promises(capsys, tmp_path):
    """PCT d=2 finds the depth-2 bug in ``check_then_use`` within the promised runs.

    The theorem: one run hits a given depth-d bug with probability at least
    p = 1/(n k^(d-1)); independent runs miss it r times in a row with
    probability at most (1 - p)^r, so r = runs_for_confidence(p) runs find it
    with 99% confidence.  The exploration prints that r for the k it
    estimated; here it is run for exactly r runs.  With a fixed master seed
    the outcome is deterministic, so the test is not flaky: it checks that
    this seed's r runs include a failure, which the bound says happens for
    99% of seeds.
    """
    code, out, _ = cli(capsys, "explore", DEPTH2, "--variant", "buggy", "--strategy", "pct",
                       "--depth", 2, "--runs", 1, "--seed", 11, "--workers", 1,
                       "--out", tmp_path / "probe", "--json")
    g = json.loads(out)["pct_guarantee"][0]
    assert g["depth"] == 2
    assert g["probability"] == pct_probability(g["n"], g["k"], 2)
    r = runs_for_confidence(g["probability"], 0.99)
    assert g["runs_for_99"] == r < EPOCH_RUNS  # all r runs use the k the bound was made for
    code, out, _ = cli(capsys, "explore", DEPTH2, "--variant", "buggy", "--strategy", "pct",
                       "--depth", 2, "--runs", r, "--seed", 11, "--workers", 1,
                       "--out", tmp_path / "run", "--json")
    d = json.loads(out)
    assert code == 1 and d["failing_runs"] >= 1 and d["runs"] == r


# -- workers that die ---------------------------------------------------------------------------

def test_a_worker_killed_mid_batch_loses_no_runs(tmp_path):
    marker = tmp_path / "killed-once"
    params = {"every": 37, "marker": str(marker)}
    a = explore(f"{CRASH}::killer", params=params, runs=400, seed=1, workers=2,
                out=tmp_path / "pool")
    assert marker.exists(), "no worker was killed: the test proves nothing"
    assert a.lost_runs == []
    b = explore(f"{CRASH}::killer", params=params, runs=400, seed=1, workers=1,
                out=tmp_path / "inline")
    assert sorted(rows(tmp_path / "pool")) == list(range(400))
    assert rows(tmp_path / "pool") == rows(tmp_path / "inline")
    assert a.failing_runs == b.failing_runs == 0


def test_runs_that_always_kill_their_worker_are_reported_not_dropped(capsys, tmp_path):
    every = 50
    victims = [i for i in range(120) if run_seed(1, i) % every == 0]
    assert victims, "no run of this master seed kills its worker: the test proves nothing"
    code, out, err = cli(capsys, "explore", f"{CRASH}::killer", "--set", f"every={every}",
                         "--set", "once=false", "--runs", 120, "--seed", 1, "--workers", 2,
                         "--out", tmp_path, "--json")
    d = json.loads(out)
    lost = [i for span in d["lost_runs"] for i in range(span["first"], span["last"] + 1)]
    assert set(victims) <= set(lost)
    done = rows(tmp_path)
    assert set(done) | set(lost) == set(range(120)) and not set(done) & set(lost)
    assert d["runs"] == len(done)


# -- dfs ------------------------------------------------------------------------------------------

def test_dfs_reports_exhaustion(capsys, tmp_path):
    code, out, _ = cli(capsys, "explore", f"{TINY}::abba", "--variant", "fixed", "--strategy",
                       "dfs", "--out", tmp_path)
    assert code == 0
    assert "schedules explored, none failed" in out and "pruned" in out
    code, out, _ = cli(capsys, "explore", f"{TINY}::abba", "--variant", "fixed", "--strategy",
                       "dfs", "--out", tmp_path, "--json")
    d = json.loads(out)
    assert d["exhausted"] is True and d["failing_runs"] == 0 and d["runs"] >= 1
    assert len(rows(tmp_path)) == d["runs"]


def test_dfs_failures_are_saved_and_shrunk(tmp_path):
    rep = explore(f"{TINY}::abba", variant="buggy", strategy="dfs", out=tmp_path)
    assert rep.failing_runs >= 1 and "deadlock" in rep.first
    assert rep.first["deadlock"].preemptions == 1


# -- the replay command it prints -----------------------------------------------------------------

def test_printed_replay_command_runs(capsys, tmp_path):
    code, out, _ = cli(capsys, "explore", f"{TINY}::publish", "--variant", "buggy",
                       "--runs", 50, "--workers", 1, "--out", tmp_path)
    line = next(ln for ln in out.splitlines() if ln.startswith("smpvm replay "))
    argv = shlex.split(line)[1:]
    code, out, _ = cli(capsys, *argv, "--json")
    assert code == 1 and json.loads(out)["reproduced"] is True


def test_each_failure_kind_saved_prints_its_preemptions_and_replay_command(capsys, tmp_path):
    target = os.path.join(ROOT, "models", "freebsd", "device_pager.py") + "::doomed_object"
    code, out, err = cli(capsys, "explore", target, "--variant", "buggy", "--runs", 300,
                         "--workers", 1, "--seed", 1, "--out", tmp_path)
    assert code == 1, err
    saved = sorted(p.name[len("failure-"):-len(".json")] for p in tmp_path.glob("failure-*.json"))
    assert len(saved) >= 2  # the race shows as more than one kind
    lines = out.splitlines()
    for kind in saved:
        i = next(i for i, ln in enumerate(lines) if ln.startswith(f"{kind}: "))
        assert re.match(rf"{kind}: \d+ preemption\(s\) \(run \d+, \d+ before shrinking\)",
                        lines[i])
        assert lines[i + 1] == f"smpvm replay {tmp_path / f'failure-{kind}.json'}"
    assert f"report: {tmp_path / 'report.html'}" in out


def test_a_long_narrative_keeps_the_steps_before_the_violation():
    from smpvm.cli.explore import NARRATIVE_ROWS, ROWS_AFTER, _around_violation
    from smpvm.report.narrative import narrate
    from smpvm.trace import TraceRecord as R, window_of
    n = NARRATIVE_ROWS * 3
    recs = [R(0, 0, "Pa", "thread-begin", "Pa", "")]
    recs += [R(i, i % 2, "t", "note", "", "m.py:1", f"step {i}") for i in range(1, n)]
    recs.append(R(n, 1, "t", "violation", "assertion", "m.py:2", "boom"))
    recs += [R(n + i, 0, "t", "note", "", "m.py:3", f"after {i}") for i in range(1, 100)]
    text = _around_violation(window_of(recs, NARRATIVE_ROWS, ROWS_AFTER), narrate)
    assert "boom" in text and f"step {n - 1}" in text
    assert "step 1 " not in text and "after 99" not in text
    assert "earlier records not shown" in text and "more records not shown" in text
    assert "CPU0 Pa" in text  # the CPU keeps its name though its first record is cut


def test_the_narrative_is_cut_from_what_the_report_kept_of_the_same_replay():
    # explore replays a failure once, for its report, and cuts the narrative from that:
    # the same window a narrative's own replay would keep, for runs of every length
    from smpvm.cli.explore import NARRATIVE_ROWS, ROWS_AFTER
    from smpvm.report.html import MAX_ROWS, ROWS_AFTER as PAGE_AFTER
    from smpvm.trace import TraceRecord as R, window_of
    for n in (0, 1, NARRATIVE_ROWS, NARRATIVE_ROWS + 1, MAX_ROWS + 1, 4 * MAX_ROWS):
        for at in (None, 0, n // 2, n - 1):
            recs = [R(i, i % 3, "t", "violation" if i == at else "work", "", f"m.py:{i}")
                    for i in range(n)]
            page = window_of(recs, MAX_ROWS, PAGE_AFTER)
            assert page.narrowed(NARRATIVE_ROWS, ROWS_AFTER) == \
                window_of(recs, NARRATIVE_ROWS, ROWS_AFTER)


def test_a_batch_comes_back_compact_and_reads_back_as_its_runs():
    # Workers hand the driver encoded rows and counts; only failing runs come whole.
    from smpvm.search.plan import Plan, outcome_of, run_batch, run_one
    from smpvm.scenario import load_target
    plan = Plan(target=f"{os.path.abspath(TINY)}::abba", variant="buggy", params={}, cpus=None,
                seed=3, strategy="portfolio", depth=3, preemption_bound=None, max_steps=None,
                source_root=ROOT)
    b = run_batch(plan, 40, 100, 16)
    assert (b.start, b.stop) == (40, 100) and len(b.schedules) == 60
    scn, rotation, failon = load_target(plan.target), plan.strategies(), plan.failon()
    expected = []
    for i in range(40, 100):
        label, seed, r = run_one(plan, scn, rotation, i, 16)
        expected.append(outcome_of(i, label, seed, 16, r, failon))
    assert b.failures == [o for o in expected if o.failed] and b.failures
    assert [o.row() for o in b.outcomes()] == [o.row() for o in expected]
    assert list(csv.reader(b.rows.splitlines())) == [[str(x) for x in o.row()] for o in expected]
    stopped = run_batch(plan, 40, 100, 16, stop_on_first=True)
    assert stopped.stop == b.failures[0].run + 1 and stopped.failures == b.failures[:1]


def test_a_batch_writes_its_rows_byte_for_byte_as_the_csv_module_does():
    # Passing runs' rows are written out directly; they must read as the writer's would.
    import io
    from smpvm.search.plan import Batch, Outcome
    outcomes = [Outcome(7, 123, "pct-d2", 16, "", "", 12, 5, 0xABC),
                Outcome(8, 456, "random", "", "use-after-free", 'a "b", c.py:9', 30, 9, 1),
                Outcome(9, 789, "odd,label", "", "", "", 3, 0, 2**64 - 1),
                Outcome(10, 1, "idb", "", "", "", 0, 0, 0)]
    text = io.StringIO()
    writer = csv.writer(text)
    for o in outcomes:
        writer.writerow(o.row())
    assert Batch.of(outcomes).rows == text.getvalue()


def test_a_schedule_fingerprint_is_the_hash_of_its_choices_in_decimal():
    import hashlib
    from smpvm.search.plan import schedule_fingerprint
    for choices in ([], [0], [1, 0, 2, 1], [3, 1023, 1024, 70000], [-1, 2]):
        text = ",".join(str(c) for c in choices).encode()
        digest = hashlib.blake2b(text, digest_size=8).digest()
        assert schedule_fingerprint(choices) == int.from_bytes(digest, "big")
