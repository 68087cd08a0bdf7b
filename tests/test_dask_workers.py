"""What a search runs is the same in every process: its model as the search found it,
on the driver's smpvm, one run at a time.

A Dask worker outlives searches and may sit on another machine, without the
model file or with another version of it, or with another smpvm, or with
several threads (Dask's default); a long-lived process (a notebook, a test
session) explores the same file before and after an edit.  Each must run the
version the search started with: the driver hands its workers the source, a
search's start loads the file anew when it was edited, a worker on another
smpvm is refused, and a worker's threads take its tasks one at a time.
"""

from __future__ import annotations

import contextlib
import csv
import os
import shutil

import pytest

from conftest import ROOT, assert_one_error_line, cli
from smpvm.scenario import (give_model_sources, load_target, model_versions,
                            use_model_versions)
from smpvm.search.explore import explore

MODEL = '''
from smpvm import kassert, scenario, work

LIMIT = {limit}


def check(box):
    yield work(1)
    v = yield box.load("value")
    kassert(v < LIMIT, f"value {{v}} is not below {{LIMIT}}")


@scenario(description="two threads check one value against a limit")
def limited(m, variant):
    box = m.shared("box", value=50)
    m.spawn(check(box), name="A")
    m.spawn(check(box), name="B")
'''


def write_model(path, limit):
    path.write_text(MODEL.format(limit=limit))
    return f"{path}::limited"


def failing_runs(out):
    with open(os.path.join(out, "runs.csv"), newline="") as fp:
        return sum(1 for r in csv.DictReader(fp) if r["kinds"])


def test_a_search_started_after_an_edit_runs_the_edited_model(tmp_path):
    target = write_model(tmp_path / "limit.py", 100)
    assert explore(target, runs=20, workers=1, out=tmp_path / "a").failing_runs == 0
    write_model(tmp_path / "limit.py", 10)
    assert explore(target, runs=20, workers=1, out=tmp_path / "b").failing_runs == 20
    # within a search the model stays as it was loaded: a plain load is the same module
    assert load_target(target).func.__globals__["LIMIT"] == 10


def test_a_process_without_the_file_runs_the_source_it_was_given(tmp_path):
    target = write_model(tmp_path / "given.py", 10)
    versions = model_versions([str(tmp_path / "given.py")])
    (path, (sha, source)), = versions.items()
    assert source == (tmp_path / "given.py").read_bytes()
    # as on a worker that ran another version and has lost the file since
    write_model(tmp_path / "given.py", 100)
    assert load_target(target, fresh=True).func.__globals__["LIMIT"] == 100
    os.remove(path)
    give_model_sources(versions)
    use_model_versions({path: sha})
    from smpvm import RunSpec
    from smpvm.scenario import run_spec
    from smpvm.strategies import make_strategy
    scn = load_target(target)
    assert scn.func.__globals__["LIMIT"] == 10
    r = run_spec(RunSpec(target, seed=1), make_strategy("random"), scn=scn)
    assert r.kinds() == ["assertion"]
    assert "given.py:" in r.first().location  # sites name the file the driver ran


def test_a_worker_without_the_version_says_so(tmp_path):
    path = str(tmp_path / "absent.py")
    from smpvm.violations import BadInput
    with pytest.raises(BadInput, match="no copy of the model file .*absent.py"):
        use_model_versions({path: "0" * 64})


# -- on a real cluster --------------------------------------------------------------------

pytest.importorskip("dask.distributed")


@pytest.fixture
def one_worker():
    from test_faults_dask import dask_cluster
    for address, _, _ in dask_cluster(1):
        yield address


def test_a_long_lived_worker_runs_the_model_as_edited_since_its_last_search(
        tmp_path, capsys, one_worker):
    target = write_model(tmp_path / "edited.py", 100)
    code, _, err = cli(capsys, "explore", target, "--runs", 40, "--dask", one_worker,
                       "--out", tmp_path / "before")
    assert code == 0, err
    write_model(tmp_path / "edited.py", 10)
    # the worker loaded the file once; it must not go on running what it loaded
    code, _, err = cli(capsys, "explore", target, "--runs", 40, "--dask", one_worker,
                       "--out", tmp_path / "after")
    assert code == 1
    assert failing_runs(tmp_path / "before") == 0 and failing_runs(tmp_path / "after") == 40


def test_a_worker_that_cannot_see_the_model_file_runs_the_drivers_source(
        tmp_path, one_worker):
    from smpvm.search.executors import make_executor
    from smpvm.search.plan import Plan, run_batch
    target = write_model(tmp_path / "private.py", 10)
    plan = Plan(target=target, variant="default", params={}, cpus=None, seed=1,
                strategy="random", depth=3, preemption_bound=None, max_steps=None,
                source_root=str(tmp_path))
    here = run_batch(plan, 0, 30, 4)
    os.remove(tmp_path / "private.py")  # the worker never saw it; now nobody can
    with make_executor(dask=one_worker, models=[target.split("::")[0]]) as ex:
        there = ex.submit(run_batch, plan, 0, 30, 4).result(timeout=60)
    assert there.outcomes() == here.outcomes()
    assert sum(1 for o in there.outcomes() if o.kinds) == 30


@contextlib.contextmanager
def worker_on(pythonpath=None, threads=1):
    """A scheduler and one worker with ``threads`` threads, whose PYTHONPATH starts with
    ``pythonpath``; yields the address."""
    from test_faults_dask import dask_cluster
    env = {**os.environ, "PYTHONPATH": str(pythonpath)} if pythonpath else None
    for address, _, _ in dask_cluster(1, threads, env):
        yield address


def test_a_worker_on_another_smpvm_is_refused_in_one_line(tmp_path, capsys):
    # a worker whose smpvm differs by one comment: its runs could differ, so no run is
    # taken from it
    other = tmp_path / "other"
    shutil.copytree(os.path.join(ROOT, "smpvm"), other / "smpvm",
                    ignore=shutil.ignore_patterns("__pycache__"))
    with open(other / "smpvm" / "costs.py", "a") as fp:
        fp.write("# another build\n")
    target = write_model(tmp_path / "m.py", 100)
    with worker_on(other) as address:
        code, _, err = cli(capsys, "explore", target, "--runs", 40, "--dask", address,
                           "--out", tmp_path / "o")
    assert code == 2
    assert_one_error_line(err, "a Dask worker's smpvm", str(other / "smpvm"),
                          "install the same smpvm on every worker")
    assert failing_runs(tmp_path / "o") == 0  # nothing recorded from that worker


def test_a_worker_without_smpvm_is_refused_in_one_line(tmp_path, capsys):
    # a worker that cannot import smpvm at all (here: a package that fails to import)
    (tmp_path / "none" / "smpvm").mkdir(parents=True)
    (tmp_path / "none" / "smpvm" / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'smpvm'\")\n")
    target = write_model(tmp_path / "m.py", 100)
    with worker_on(tmp_path / "none") as address:
        code, _, err = cli(capsys, "explore", target, "--runs", 40, "--dask", address,
                           "--out", tmp_path / "o")
    assert code == 2, err
    assert_one_error_line(err, "a Dask worker could not load smpvm's code",
                          "No module named 'smpvm'", "install the same smpvm on every worker")


def test_a_worker_with_several_threads_runs_as_one_process_does(tmp_path, capsys):
    # a run keeps process-wide state: two at once in one process would mix them up
    # (a scenario's set-up refused, or worse, runs that differ silently)
    target = "models/freebsd/device_pager.py::doomed_object"
    with worker_on(threads=3) as address:
        code, _, err = cli(capsys, "explore", target, "--runs", 6000, "--dask", address,
                           "--out", tmp_path / "threads")
    assert code == 1, err
    code, _, _ = cli(capsys, "explore", target, "--runs", 6000, "--workers", 1,
                     "--out", tmp_path / "here")
    assert code == 1
    with open(tmp_path / "threads" / "runs.csv", "rb") as a, \
            open(tmp_path / "here" / "runs.csv", "rb") as b:
        assert a.read() == b.read()


def test_a_search_on_a_cluster_is_sized_for_its_workers(tmp_path, monkeypatch):
    # --workers defaults to this machine's cores; on a cluster the search is sized for
    # the cluster's worker processes instead (a laptop's two cores would keep only a
    # few of a cluster's workers busy)
    import smpvm.search.explore as explore_module
    from smpvm.search.executors import dask_workers
    from test_faults_dask import dask_cluster
    sized = []
    real = explore_module.Exploration._batch_size

    def batch_size(self, workers):
        sized.append(workers)
        return real(self, workers)
    monkeypatch.setattr(explore_module.Exploration, "_batch_size", batch_size)
    from dask.distributed import Client
    for address, _, _ in dask_cluster(3):
        with Client(address) as client:
            client.wait_for_workers(3, timeout=60)  # all three joined
        assert dask_workers(address) == 3
        explore("tests/models/tiny.py::publish", runs=200, dask=address, out=tmp_path / "a")
        explore("tests/models/tiny.py::publish", runs=200, dask=address, workers=5,
                out=tmp_path / "b")
    assert sized == [3, 5]


def test_a_worker_on_another_python_numpy_or_simpy_refuses_the_task():
    # numpy draws the models' random numbers and SimPy orders the devices' events: a
    # worker on other versions could make other runs of the same seeds
    from smpvm.search.dask_code import run_as_driver, runtime, smpvm_fingerprint
    from smpvm.violations import BadInput
    assert run_as_driver(smpvm_fingerprint(), runtime(), {}, len, "four") == 4
    for name in ("Python", "numpy", "SimPy"):
        with pytest.raises(BadInput, match=f"a Dask worker has {name} .* where the driver "
                                           f"has 0.0"):
            run_as_driver(smpvm_fingerprint(), {**runtime(), name: "0.0"}, {}, len, "four")
