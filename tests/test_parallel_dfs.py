"""dfs shared out over workers (``smpvm.search.pardfs``): nothing lost, nothing nondeterministic.

Parts are cut after a number of runs (their budget); a budget of one or two
runs cuts the tree at almost every run, which is where requests for states
above a part's root, their deferral and continuations all happen.  Those
cases run in this process (``InlineExecutor``) so the hand-written and random
models need no file; the shipped models also run on two local processes and
on a Dask cluster.  Every search must reach exactly the outcomes, and the
failures, of the one-process search.
"""

from __future__ import annotations

import csv
import json
import os
import pickle

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import smpvm.search.pardfs as pardfs
from conftest import MODELS, ROOT, cli, outcome, spec_of
from smpvm import RunSpec, load_target
from smpvm.search.executors import InlineExecutor, make_executor
from smpvm.search.exhaust import exhaust
from smpvm.search.explore import explore
from smpvm.search.pardfs import exhaust_parallel
from test_dfs import ALL_CASES, PROGRAM, case, program_scenario, trimmed

DOOMED = os.path.join(ROOT, "models", "freebsd", "device_pager.py") + "::doomed_object"
LATE = os.path.join(MODELS, "late_window.py") + "::late"
DISK = os.path.join(MODELS, "engine_cases.py") + "::disk_interrupt"


@pytest.fixture
def small_first_part(monkeypatch):
    """The first part cut as early as the others (the tests pick tiny budgets)."""
    monkeypatch.setattr(pardfs, "FIRST_PART_RUNS", 1)


def searched(spec, scn=None, executor=None, **kw):
    """(report, every RunResult in order) of a shared search (in this process by default)."""
    results = []
    report = exhaust_parallel(spec, executor or InlineExecutor(), scn=scn,
                              on_run=lambda i, r: results.append(r),
                              on_restart=results.clear, **kw)
    return report, results


def sequential(spec, scn=None, **kw):
    results = []
    report = exhaust(spec, scn=scn, on_run=lambda i, r: results.append(r), **kw)
    return report, results


def with_steps(results) -> set:
    return {(outcome(r), r.steps) for r in results}


def assert_same_search(seq, par):
    """Same outcomes and failing outcomes, every schedule distinct, counts consistent."""
    (srep, sres), (prep, pres) = seq, par
    assert prep.exhausted == srep.exhausted
    assert with_steps(pres) == with_steps(sres)
    assert with_steps(r for r in pres if r.failed) == with_steps(r for r in sres if r.failed)
    assert len({tuple(r.choices) for r in pres}) == len(pres) == prep.runs
    assert prep.failing_runs == sum(r.failed for r in pres)
    assert prep.first_failure_run == next((i for i, r in enumerate(pres) if r.failed), None)
    assert prep.reduction == srep.reduction and prep.arrival_windows == srep.arrival_windows


# -- hand-written models, cut at every run ----------------------------------------------------


@pytest.mark.parametrize("budget", [1, 2, 5])
def test_every_hand_written_case_reaches_the_same_outcomes_and_failures(small_first_part,
                                                                         budget):
    for name, variant in ALL_CASES + [("locked_counter", None)]:
        scn = case(name)
        params = {"threads": 3} if name == "locked_counter" else {}
        spec = spec_of(scn, variant=variant, params=params, seed=0)
        assert_same_search(sequential(spec, scn), searched(spec, scn, budget=budget))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(PROGRAM, st.integers(1, 3))
def test_random_programs_reach_what_plain_enumeration_reaches(program, budget):
    scn = program_scenario(trimmed(program))
    spec = spec_of(scn, seed=0)
    plain = sequential(spec, scn, reduction=False)
    old = pardfs.FIRST_PART_RUNS
    pardfs.FIRST_PART_RUNS = budget
    try:
        shared = searched(spec, scn, budget=budget)
    finally:
        pardfs.FIRST_PART_RUNS = old
    assert shared[0].exhausted
    # Plain enumeration also runs the schedules where a thread waits for a lock, which
    # the reduction elides (a wait is no step): outcomes alike, steps not.
    assert {outcome(r) for r in shared[1]} == {outcome(r) for r in plain[1]}
    assert with_steps(shared[1]) == with_steps(sequential(spec, scn)[1])


def test_plain_enumeration_runs_exactly_the_same_schedules(small_first_part):
    # Without reduction there is nothing to request or to sleep: the parts
    # together are the tree, schedule for schedule, and so are the counts.
    for name, variant, kw in (("locked_counter", None, {"reduction": False}),
                              ("two_preemptions", "buggy", {"preemption_bound": 1}),
                              ("handshake", "lost-wakeup", {"preemption_bound": 2})):
        scn = case(name)
        spec = spec_of(scn, variant=variant, seed=0)
        srep, sres = sequential(spec, scn, **kw)
        prep, pres = searched(spec, scn, budget=2, **kw)
        assert sorted(r.choices for r in pres) == sorted(r.choices for r in sres)
        assert (prep.runs, prep.failing_runs, prep.beyond_bound, prep.exhausted) == \
            (srep.runs, srep.failing_runs, srep.beyond_bound, srep.exhausted)


@pytest.mark.parametrize("budget", [1, 2])
def test_a_part_takes_over_the_steps_of_its_path(small_first_part, monkeypatch, budget):
    # Each part's first run starts on a path that runs in other parts recorded;
    # it takes their steps over, so the parts record (and analyse) each step
    # once, as the one-walk search does.
    from smpvm.strategies.dfs import DFS
    recorded = [0]
    record = DFS._record

    def counting(self, *args):
        recorded[0] += 1
        return record(self, *args)

    monkeypatch.setattr(DFS, "_record", counting)
    for name, variant in ALL_CASES + [("locked_counter", None)]:
        scn = case(name)
        params = {"threads": 3} if name == "locked_counter" else {}
        spec = spec_of(scn, variant=variant, params=params, seed=0)
        recorded[0] = 0
        seq = sequential(spec, scn)
        one_walk = recorded[0]
        recorded[0] = 0
        par = searched(spec, scn, budget=budget)
        assert recorded[0] == one_walk, name
        assert_same_search(seq, par)


def test_a_window_interrupt_starts_the_shared_search_again_without_reduction(small_first_part):
    scn = load_target(LATE)
    spec = RunSpec(LATE, variant=scn.check_variant(None), seed=1)
    par = searched(spec, scn, budget=2)
    assert_same_search(sequential(spec, scn), par)
    assert par[0].arrival_windows and not par[0].reduction and par[0].pruned == 0
    results, restarts = [], []
    exhaust_parallel(spec, InlineExecutor(), scn=scn, budget=2,
                     on_run=lambda i, r: results.append(r),
                     on_restart=lambda: restarts.append(len(results)))
    assert restarts and restarts[0] > 0  # schedules were counted before a window showed


def test_max_runs_and_stop_on_first_count_in_part_order(small_first_part):
    scn = case("two_preemptions")
    spec = spec_of(scn, variant="buggy", seed=0)
    full, results = searched(spec, scn, budget=2)
    capped, first = searched(spec, scn, budget=2, max_runs=5)
    assert capped.runs == 5 and not capped.exhausted
    assert [r.choices for r in first] == [r.choices for r in results[:5]]
    stopped, upto = searched(spec, scn, budget=2, stop_on_first=True)
    assert stopped.failing_runs == 1 and not stopped.exhausted
    assert stopped.runs == full.first_failure_run + 1
    assert [r.choices for r in upto] == [r.choices for r in results[:stopped.runs]]


def test_state_outside_the_model_api_is_watched_in_every_worker():
    coverage = os.path.join(MODELS, "coverage_cases.py")
    with make_executor(2) as pool:
        for name, variant in (("plain_list", "plain"), ("global_dict", None),
                              ("step_counter", "watched")):
            spec = RunSpec(f"{coverage}::{name}", variant=variant, seed=0)
            seq, par = sequential(spec), searched(spec, executor=pool, budget=1)
            assert_same_search(seq, par)
            assert par[0].unseen_shared == seq[0].unseen_shared, name
    assert par[0].unseen_shared  # the last case has some


def test_device_processes_are_reported(small_first_part):
    spec = RunSpec(DISK)
    seq, par = sequential(spec), searched(spec, budget=1)
    assert_same_search(seq, par)
    assert par[0].devices and par[0].summary() == seq[0].summary()
    # the disk interrupts one of two identical threads: the part that saw it made the
    # search start again without the symmetry, as the one-process search does
    assert par[0].symmetric == seq[0].symmetric == []


def test_identical_threads_are_searched_up_to_their_names_in_parts(small_first_part):
    scn = case("locked_counter")
    spec = spec_of(scn, params={"threads": 3}, seed=0)
    seq = sequential(spec, scn)
    for budget in (1, 3):
        par = searched(spec, scn, budget=budget)
        assert_same_search(seq, par)
        assert par[0].symmetric == seq[0].symmetric == [("T0", "T1", "T2")]
        assert par[0].runs == seq[0].runs
    plain = sequential(spec, scn, symmetry=False)
    assert seq[0].runs < plain[0].runs


def test_parts_searched_ahead_in_a_task_change_nothing(monkeypatch):
    """A worker that searches ahead the parts the driver will make from its cut runs
    exactly those parts: the same runs, in the same order, the same report."""
    taken = []
    real_same_path = pardfs._same_path

    def same_path(path, data):
        taken.append(real_same_path(path, data))
        return taken[-1]
    monkeypatch.setattr(pardfs, "_same_path", same_path)
    scn = load_target(DOOMED)
    for variant, allocators in (("buggy", 2), ("fixed", 3)):  # trees cut many times
        spec = RunSpec(DOOMED, variant=variant, params={"allocators": allocators}, seed=1)
        searches = {}
        for chain in (0, 1, 3, 9):
            taken.clear()
            report, results = searched(spec, scn, budget=8, chain=chain)
            searches[chain] = ([r.choices for r in results], report.to_dict())
            assert any(taken) == bool(chain), (variant, chain)
        assert searches[1] == searches[3] == searches[9] == searches[0], variant
    with make_executor(2) as pool:
        report, results = searched(spec, executor=pool, budget=8, chain=3)
    assert ([r.choices for r in results], report.to_dict()) == searches[0]


def test_only_executors_behind_a_scheduler_search_ahead_by_default(monkeypatch):
    """Searching ahead saves round trips through a scheduler; on the local pool (a
    pipe's write) it would only hold back the parts made after the part it holds."""
    compared = []
    real_same_path = pardfs._same_path
    monkeypatch.setattr(pardfs, "_same_path",
                        lambda path, data: compared.append(1) or real_same_path(path, data))
    scn = load_target(DOOMED)
    spec = RunSpec(DOOMED, variant="fixed", params={"allocators": 3}, seed=1)
    local = InlineExecutor()
    local.width = lambda: 2  # as many parts out as two workers would have
    plain = searched(spec, scn, executor=local, budget=8)
    assert not compared
    remote = InlineExecutor()
    remote.width, remote.through_scheduler = local.width, True
    ahead = searched(spec, scn, executor=remote, budget=8)
    assert compared
    assert [r.choices for r in ahead[1]] == [r.choices for r in plain[1]]


def test_a_part_searched_ahead_is_taken_only_when_it_is_the_part_the_driver_makes(
        monkeypatch):
    real_ahead, real_same_path = pardfs.ahead, pardfs._same_path
    compared = []

    def unlike(part, res):  # each with a node that differs from the driver's by one value
        out = []
        for p in real_ahead(part, res):
            path = pardfs.pickle.loads(p.path)
            path[len(p.key)].preemptions += 1
            out.append(p._replace(path=pardfs.pickle.dumps(path)))
        return out

    def same_path(path, data):
        compared.append(real_same_path(path, data))
        return compared[-1]
    monkeypatch.setattr(pardfs, "ahead", unlike)
    monkeypatch.setattr(pardfs, "_same_path", same_path)
    scn = load_target(DOOMED)
    spec = RunSpec(DOOMED, variant="buggy", params={"allocators": 2}, seed=1)
    plain = searched(spec, scn, budget=8, chain=0)
    ahead = searched(spec, scn, budget=8, chain=3)
    assert compared and not any(compared)
    assert [r.choices for r in ahead[1]] == [r.choices for r in plain[1]]
    assert ahead[0].to_dict() == plain[0].to_dict()


def test_a_parts_passing_runs_do_not_keep_their_machines_alive():
    """A part holds its runs until the driver takes them; a run's witness would hold
    its whole machine (locks, threads, their frames) that long."""
    import gc
    import weakref
    from smpvm.locks.sleep_mutex import SleepMutex
    made = []
    real_init = SleepMutex.__init__

    def tracked(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        made.append(weakref.ref(self))
    scn = load_target(DOOMED)
    spec = RunSpec(DOOMED, variant="fixed", params={"allocators": 1}, seed=1)
    part = pardfs.Part(0, (), pardfs.pickle.dumps([]), 4, fresh=True)
    SleepMutex.__init__ = tracked
    try:
        res = pardfs.search_part(spec, part, None, True, scn=scn)
    finally:
        SleepMutex.__init__ = real_init
    gc.collect()
    assert len(res.runs) == 4 and made
    assert not any(r.failed for r, _ in res.runs)
    assert [ref for ref in made if ref() is not None] == []
    assert all(r.witness_edges == [] and r.witness_classes == {} for r, _ in res.runs)


# -- shipped models on worker processes ----------------------------------------------------------


@pytest.mark.parametrize("variant, allocators", [("buggy", 2), ("fixed", 1)])
def test_the_doomed_object_model_on_two_processes(variant, allocators):
    scn = load_target(DOOMED)
    spec = RunSpec(DOOMED, variant=variant, params={"allocators": allocators}, seed=1)
    seq = sequential(spec, scn)
    with make_executor(2) as pool:
        par = searched(spec, executor=pool, budget=16)
    assert_same_search(seq, par)
    # the same runs in the same order whatever runs the parts: the search is deterministic
    inline = searched(spec, scn, budget=16)
    assert [r.choices for r in par[1]] == [r.choices for r in inline[1]]
    assert par[0].to_dict() == inline[0].to_dict()
    if variant == "buggy":
        assert par[0].failing_runs and all(r.lockstat for r in par[0].failures)


def _search_with_pools(spec, on_run=None):
    """``searched`` on a local pool that is replaced when it breaks: (report, results, the
    pools made)."""
    import contextlib
    results, pools = [], []
    with contextlib.ExitStack() as stack:
        def renew():
            stack.close()
            pools.append(stack.enter_context(make_executor(2)))
            return pools[-1]

        def noted(i, r):
            results.append(r)
            if on_run is not None:
                on_run(i, pools[-1])

        report = exhaust_parallel(spec, renew(), on_run=noted, on_restart=results.clear,
                                  renew=renew)
    return report, results, pools


def test_a_worker_killed_mid_search_is_replaced_and_the_runs_come_out_the_same():
    import signal
    spec = RunSpec(DOOMED, variant="buggy", params={"allocators": 2}, seed=1)
    whole = searched(spec, load_target(DOOMED), budget=pardfs.PART_RUNS)

    def kill(i, pool):
        if i in (20, 60):  # mid-search: the two-allocator tree makes 92 runs
            os.kill(pool._workers[i % 2].process.pid, signal.SIGKILL)

    rep, results, pools = _search_with_pools(spec, kill)
    assert len(pools) == 3  # two deaths, two new pools
    assert rep.exhausted and rep.runs == whole[0].runs == len(results)
    assert [r.choices for r in results] == [r.choices for r in whole[1]]
    assert rep.failing_runs == whole[0].failing_runs


def _dies_at_part_2(spec, part, *args):
    if part.number == 2:
        os._exit(9)  # the worker process ends, as a model that kills it would
    return _search_part(spec, part, *args)


_search_part = pardfs.search_part


def test_a_part_that_kills_every_worker_it_runs_on_ends_the_search(monkeypatch):
    import concurrent.futures as cf
    monkeypatch.setattr(pardfs, "search_part", _dies_at_part_2)  # (the workers fork later)
    spec = RunSpec(DOOMED, variant="fixed", params={"allocators": 2}, seed=1)
    with pytest.raises(cf.BrokenExecutor, match="worker processes died 3 times"):
        _search_with_pools(spec)


def test_only_the_first_failing_run_of_each_kind_is_made_again_and_kept_if_asked():
    # An exploration saves the first failure of each kind: making every failing run again
    # in full (lock statistics) was half the time of a search failing in most runs.
    scn = load_target(DOOMED)
    spec = RunSpec(DOOMED, variant="buggy", params={"allocators": 2}, seed=1)
    full, every = searched(spec, scn, budget=16)
    some, first = searched(spec, scn, budget=16, failures="first")
    assert [(r.choices, r.kinds(), r.steps) for r in first] == \
        [(r.choices, r.kinds(), r.steps) for r in every]
    assert some.to_dict() == full.to_dict()
    # the report keeps the failing runs that bring a kind not seen before, in full
    expected, seen = [], set()
    for r in full.failures:
        if not set(r.kinds()) <= seen:
            seen.update(r.kinds())
            expected.append(r.choices)
    assert len(full.failures) == full.failing_runs > len(expected) >= 2
    assert [r.choices for r in some.failures] == expected
    assert all(r.lockstat for r in some.failures)
    failing = [r for r in first if r.failed]
    assert all(r.lockstat for r in every if r.failed)
    made_again = [r for r in failing if r.lockstat]
    assert 1 <= len(made_again) < len(failing)
    for kind in {k for r in failing for k in r.kinds()}:  # the first of each kind is full
        assert next(r for r in failing if kind in r.kinds()).lockstat


def _checkpoints(spec, scn, monkeypatch, **kw):
    """(the uninterrupted search's report, its runs, restarts seen, the state handed over
    after every result taken)."""
    monkeypatch.setattr(pardfs, "CHECKPOINT_S", 0)
    monkeypatch.setattr(pardfs, "CHECKPOINT_SHARE", float("inf"))
    results, restarts, states = [], [], []
    report = exhaust_parallel(spec, InlineExecutor(), scn=scn, **kw,
                              on_run=lambda i, r: results.append(r),
                              on_restart=lambda: (results.clear(), restarts.append(1)),
                              on_checkpoint=states.append)
    return report, results, restarts, states


def _resumed(spec, state, executor, scn=None, **kw):
    """(report, the runs a search makes from ``state`` on, whether it started over)."""
    got, restarted = [], []
    report = exhaust_parallel(spec, executor, scn=scn, resume=pickle.loads(state), **kw,
                              on_run=lambda i, r: got.append((i, r)),
                              on_restart=lambda: (got.clear(), restarted.append(1)))
    return report, got, bool(restarted)


@pytest.mark.parametrize("name", ["doomed", "late window"])
def test_a_search_resumed_from_any_state_makes_the_runs_of_one_never_stopped(small_first_part,
                                                                            monkeypatch, name):
    import pickle
    if name == "doomed":
        scn, spec = load_target(DOOMED), RunSpec(DOOMED, variant="buggy",
                                                 params={"allocators": 2}, seed=1)
    else:  # its search starts over without reduction once a window shows: states of both
        scn = load_target(LATE)
        spec = RunSpec(LATE, variant=scn.check_variant(None), seed=1)
    whole, results, restarts, states = _checkpoints(spec, scn, monkeypatch, budget=2)
    assert len(states) >= 10 and (bool(restarts) == (name == "late window"))
    for state in states:
        n = pickle.loads(state)["report"].runs
        report, got, restarted = _resumed(spec, state, InlineExecutor(), scn, budget=2)
        ran = [r for _, r in got] if restarted else results[:n] + [r for _, r in got]
        assert [i for i, _ in got] == list(range(0 if restarted else n, report.runs))
        assert [r.choices for r in ran] == [r.choices for r in results]
        assert (report.runs, report.failing_runs, report.pruned, report.exhausted,
                report.reduction) == (whole.runs, whole.failing_runs, whole.pruned,
                                      whole.exhausted, whole.reduction)
    # on worker processes too, from a state in the middle
    with make_executor(2) as pool:
        report, got, _ = _resumed(spec, states[len(states) // 2], pool, budget=2)
    assert [r.choices for _, r in got] == [r.choices for r in results[-len(got):]]
    assert report.runs == whole.runs and report.exhausted


def run_explore(tmp_path, label, **kw):
    out = tmp_path / label
    rep = explore(DOOMED, variant="buggy", params={"allocators": 1}, strategy="dfs", seed=1,
                  out=str(out), shrink=False, **kw)
    with open(out / "runs.csv", newline="", encoding="utf-8") as fp:
        rows = list(csv.DictReader(fp))
    return rep, rows, sorted(p.name for p in out.glob("failure-*.json"))


def same_exploration(one, other):
    (a, arows, afiles), (b, brows, bfiles) = one, other
    keys = ("runs", "failing_runs", "violations", "exhausted", "distinct_schedules", "pruned")
    assert {k: a.to_json()[k] for k in keys} == {k: b.to_json()[k] for k in keys}
    assert len(brows) == b.runs and afiles == bfiles and bfiles
    failing = lambda rows: sorted((r["kinds"], r["location"]) for r in rows if r["failed"] == "1")
    assert failing(brows) == failing(arows)


def test_explore_dfs_with_workers_shares_the_tree(tmp_path):
    one = run_explore(tmp_path, "one", workers=1)
    two = run_explore(tmp_path, "two", workers=2)
    assert one[0].executor == "in-process" and two[0].executor == "2 local processes"
    same_exploration(one, two)
    assert [r["schedule"] for r in run_explore(tmp_path, "three", workers=3)[1]] == \
        [r["schedule"] for r in two[1]]  # run i is the same run whatever the workers


def test_explore_dfs_writes_the_same_runs_csv_whatever_the_workers(tmp_path):
    # One process walks the parts in the order the driver makes them, as the
    # pool does; the two-allocator tree is large enough to be cut many times.
    files = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        rep = explore(DOOMED, variant="fixed", params={"allocators": 2}, strategy="dfs",
                      seed=1, workers=workers, out=str(out), shrink=False)
        assert rep.exhausted and not rep.failing_runs
        files.append((out / "runs.csv").read_bytes())
    assert files[0] == files[1] and files[0].count(b"\n") == rep.runs + 1


def test_the_command_line_shares_dfs_with_workers(capsys, tmp_path):
    code, out, _ = cli(capsys, "explore", DOOMED, "--variant", "buggy", "--strategy", "dfs",
                       "--set", "allocators=1", "--workers", "2", "--out", tmp_path, "--json")
    found = json.loads(out)
    assert code == 1 and found["exhausted"] and found["executor"] == "2 local processes"
    assert found["runs"] == 13 and found["failing_runs"] == 11


def test_explore_dfs_on_a_dask_cluster(tmp_path):
    pytest.importorskip("dask.distributed")
    from test_faults_dask import _profiling, dask_cluster
    one = run_explore(tmp_path, "one", workers=1)
    for address, _, _ in dask_cluster(2):
        on_dask = run_explore(tmp_path, "dask", dask=address)
        assert on_dask[0].executor == f"dask {address}"
        same_exploration(one, on_dask)
        # the workers' statistical profiler, which holds the frames it samples, is off
        from distributed import Client
        with Client(address) as client:
            # (a worker the scheduler lost touch with on a loaded machine comes back,
            # or is replaced by its nanny: either way it must not sample)
            client.wait_for_workers(2, timeout=60)
            assert _profiling(client) == [[], []]


def _freeze_count(_=None) -> int:
    import gc
    return gc.get_freeze_count()


def test_workers_are_forked_from_a_frozen_heap_and_the_heap_is_handed_back():
    """A forked worker's cycle collector leaves what it inherited alone (no copied
    pages); this process gets its objects back to the collector afterwards, and a
    caller's own freeze is kept."""
    import gc
    assert _freeze_count() == 0
    with make_executor(2) as pool:
        assert _freeze_count() > 0
        assert all(n > 0 for n in pool.map(_freeze_count, range(4)))
    assert _freeze_count() == 0
    gc.freeze()
    try:
        with make_executor(2) as pool:
            pool.submit(_freeze_count).result()
        assert _freeze_count() > 0  # (less any frozen object freed meanwhile)
    finally:
        gc.unfreeze()
