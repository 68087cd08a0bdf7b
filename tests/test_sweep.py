"""Sweeps from TOML: validation through the command line, outputs, resume, executors, cases.

A sweep runs one scenario over a grid of parameters and writes ``runs.csv``
(one row per run), ``summary.csv`` (means, 95% intervals and, when the
study names a theory, the analytic values), ``manifest.json`` and one PNG
per plotted metric.  These tests use the single-lock queue
(``models/synthetic/locks.py::single_lock``) at a few CPUs and a few dozen
acquisitions per CPU, small enough to run many times, and check real
values: the lock's acquisition count is CPUs times acquisitions, and the
theory columns equal the exact M/M/1//N values computed here from first
principles.  Study files are written into the test's temporary directory
with an absolute target, so the working directory does not matter.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil

import pytest

from conftest import ROOT, assert_one_error_line, cli
from smpvm import __version__
from smpvm.studies.sweep import load_config, run_sweep
from smpvm.violations import BadInput

LOCKS = os.path.join(ROOT, "models", "synthetic", "locks.py")
TARGET = f"{LOCKS}::single_lock"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

#: A small study with the queue's assumptions: free lock operations, no jitter.
QUEUE_STUDY = f"""\
# A reduced queueing validation, for tests.
seeds = 3
seed = 10

[study]
name = "queue-test"
question = "Does the single lock match M/M/1//N?"
expected = "Close to the exact values."

[model]
target = "{TARGET}"
variant = "mutex"

[run]
think_ns = 2000.0
hold_ns = 200.0
acquisitions = {{acquisitions}}

[costs]
acquire_ns = 0
release_ns = 0
cacheline_ns = 0
handoff_ns = 0
block_wakeup_ns = 0
jitter = 0.0

[sweep]
cpus = [1, 2, 3]

[plot]
x = "cpus"
y = ["lock.the lock.wait_mean_ns", "lock.the lock.utilization", "acquisitions_per_us"]
theory = "machine_repairman"
"""

THEORY_METRICS = ["lock.the lock.wait_mean_ns", "lock.the lock.utilization",
                  "acquisitions_per_us"]


def write_study(directory, text, name="study.toml") -> str:
    path = os.path.join(str(directory), name)
    with open(path, "w", encoding="utf-8") as fp:
        fp.write(text)
    return path


def queue_study(directory, acquisitions=30, name="study.toml") -> str:
    return write_study(directory, QUEUE_STUDY.format(acquisitions=acquisitions), name)


def read_csv(path) -> tuple[list[str], list[dict]]:
    with open(path, newline="", encoding="utf-8") as fp:
        reader = csv.DictReader(fp)
        return list(reader.fieldnames), list(reader)


def row_set(path) -> set[tuple]:
    """runs.csv as a set of (column, value) tuples, one per row: order-free comparison."""
    _, rows = read_csv(path)
    return {tuple(sorted(r.items())) for r in rows}


def machine_repairman(n, think, hold):
    """Exact closed M/M/1//N values: (mean wait ns, utilisation, throughput per µs)."""
    r = hold / think
    terms = [math.factorial(n) / math.factorial(n - k) * r ** k for k in range(n + 1)]
    p0 = 1 / sum(terms)
    utilization = 1 - p0
    throughput_per_ns = utilization / hold
    wait = n / throughput_per_ns - think - hold
    return {"lock.the lock.wait_mean_ns": wait, "lock.the lock.utilization": utilization,
            "acquisitions_per_us": throughput_per_ns * 1e3}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted in-process run of the small queue study: (study path, out dir, result)."""
    base = tmp_path_factory.mktemp("reference")
    path = queue_study(base)
    out = str(base / "out")
    result = run_sweep(load_config(path), out, workers=1)
    return path, out, result


# -- validation through the command line ------------------------------------------------

MODEL = f'[model]\ntarget = "{TARGET}"\nvariant = "mutex"\n'
ANY_VARIANT = f'[model]\ntarget = "{TARGET}"\n'

BAD_STUDIES = [
    pytest.param(MODEL + "[run]\nacquisitions = 10\n[sweep]\ncpus = 2\n",
                 ["[sweep].cpus", "must be a non-empty list", "to hold it fixed", "`cpus = [2]`"],
                 id="scalar-in-sweep"),
    pytest.param(MODEL + "[sweep]\ncpus = [1, 2]\nseeds = 2\n",
                 ["seeds", "move `seeds = 2` above the first [table]"], id="seeds-after-sweep"),
    pytest.param("sedes = 2\n" + MODEL + "[sweep]\ncpus = [1, 2]\n",
                 ["unknown key(s) sedes", "known:", "seeds"], id="unknown-top-level-key"),
    pytest.param(MODEL + "[run]\nacqs = 10\n[sweep]\ncpus = [1, 2]\n",
                 ["[run].acqs", "no parameter 'acqs'", "acquisitions", "think_ns"],
                 id="unknown-scenario-parameter"),
    pytest.param(MODEL + "[run]\nacquisitions = \"many\"\n[sweep]\ncpus = [1, 2]\n",
                 ["[run].acquisitions", "int", "'many'"], id="wrong-type-in-run"),
    pytest.param(MODEL + "[sweep]\ncpus = [1, 2]\nthink_ns = [1.0, \"x\"]\n",
                 ["[sweep].think_ns", "list of floats", "'x'"], id="wrong-type-in-sweep"),
    pytest.param(MODEL + "[sweep]\ncpus = [0, 2]\n", ["[sweep].cpus", "whole numbers >= 1"],
                 id="cpus-below-one"),
    pytest.param(ANY_VARIANT + "[sweep]\ncpus = [1, 2]\nvariant = [\"mutex\", \"rwlock\"]\n",
                 ["no variant 'rwlock'", "mutex, spin, ticket, queued"], id="unknown-variant"),
    pytest.param(MODEL + "[sweep]\ncpus = [1, 2]\n[plot]\nx = \"think_ns\"\ny = \"time_ns\"\n",
                 ["[plot].x", "must name a swept parameter (cpus)", "'think_ns'"], id="bad-plot-x"),
    pytest.param(MODEL + "[sweep]\ncpus = [1, 2]\n[plot]\nx = \"cpus\"\ny = \"time_ns\"\n"
                 "lines = \"variant\"\n", ["[plot].lines", "'variant'"], id="bad-plot-lines"),
    pytest.param(MODEL + "[sweep]\ncpus = [1, 2]\n[plot]\nx = \"cpus\"\n",
                 ["[plot].y", "metric name"], id="plot-without-y"),
    pytest.param(MODEL + "[sweep]\ncpus = [1, 2]\n[plot]\nx = \"cpus\"\ny = \"time_ns\"\n"
                 "theory = \"mm1\"\n", ["[plot].theory", "machine_repairman", "'mm1'"],
                 id="unknown-theory"),
    pytest.param(MODEL + "[sweep]\ncpus = [1, 2\n", ["malformed TOML"], id="malformed-toml"),
    pytest.param(MODEL + "[sweep]\ncpus = [1, 2]\n[[case]]\nlabel = \"four\"\ncpus = 4\n",
                 ["[[case]] 'four'", "sets swept cpus", "may only hold values the sweep does not vary"],
                 id="case-sets-swept-key"),
    pytest.param(MODEL + "[sweep]\ncpus = [1, 2]\n[[case]]\nlabel = \"a\"\n[[case]]\nlabel = \"a\"\n",
                 ["[[case]] number 2", "unique"], id="duplicate-case-label"),
    pytest.param(MODEL + "[run]\nthink_ns = [1.0, 2.0]\n[sweep]\ncpus = [1, 2]\n",
                 ["[run].think_ns must be a single value", "move it to [sweep]"], id="list-in-run"),
    pytest.param(MODEL + "[run]\ncpus = 2\n[sweep]\ncpus = [1, 2]\n",
                 ["cpus set in both [run] and [sweep]"], id="run-and-sweep"),
    pytest.param(MODEL + "[costs]\nnope_ns = 1\n[sweep]\ncpus = [1, 2]\n",
                 ["[costs]", "nope_ns", "acquire_ns"], id="unknown-cost"),
    pytest.param("seeds = 0\n" + MODEL + "[sweep]\ncpus = [1, 2]\n",
                 ["seeds must be a whole number >= 1", "got 0"], id="zero-seeds"),
    pytest.param("[model]\ntarget = 3\n[sweep]\ncpus = [1, 2]\n",
                 ["[model].target must be a string"], id="target-not-a-string"),
    pytest.param("[sweep]\ncpus = [1, 2]\n", ["missing [model] table"], id="no-model"),
    pytest.param("[study]\nkind = \"race\"\n" + MODEL + "[sweep]\ncpus = [1, 2]\n",
                 ["[study].kind", "\"races\"", "'race'"], id="unknown-study-kind"),
    pytest.param(MODEL + "varaint = \"ticket\"\n[sweep]\ncpus = [1, 2]\n",
                 ["[model] has unknown key(s) varaint", "[run]", "[sweep]"], id="unknown-model-key"),
    pytest.param(MODEL.replace("single_lock", "nope") + "[sweep]\ncpus = [1, 2]\n",
                 ["no scenario 'nope'", "single_lock"], id="unknown-scenario"),
]


@pytest.mark.parametrize("text,fragments", BAD_STUDIES)
def test_a_bad_study_is_one_line_naming_the_key_and_exit_2(capsys, tmp_path, text, fragments):
    path = write_study(tmp_path, text)
    out = tmp_path / "out"
    rc, stdout, err = cli(capsys, "sweep", path, "--out", str(out), "--workers", "1")
    assert rc == 2, (stdout, err)
    line = assert_one_error_line(err, *fragments)
    if "malformed" not in line and "no scenario" not in line:
        assert "study.toml" in line  # the file is named too
    assert not (out / "runs.csv").exists()  # nothing ran


def test_a_missing_study_file_is_one_line_and_exit_2(capsys, tmp_path):
    missing = str(tmp_path / "nowhere.toml")
    rc, _, err = cli(capsys, "sweep", missing, "--out", str(tmp_path / "out"))
    assert rc == 2
    assert_one_error_line(err, "nowhere.toml")


def test_a_study_file_that_is_not_text_is_one_line_and_exit_2(capsys, tmp_path):
    binary = tmp_path / "study.toml"
    binary.write_bytes(b"\xff\xfe[model]\n")
    rc, _, err = cli(capsys, "sweep", binary, "--out", str(tmp_path / "out"))
    assert rc == 2
    assert_one_error_line(err, "study.toml", "not UTF-8")


def test_bad_executor_options_are_one_line(capsys, tmp_path):
    path = queue_study(tmp_path)
    rc, _, err = cli(capsys, "sweep", path, "--workers", "0", "--out", str(tmp_path / "o"))
    assert rc == 2
    assert_one_error_line(err, "--workers", "at least 1")
    rc, _, err = cli(capsys, "sweep", path, "--workers", "2", "--dask", "local",
                     "--out", str(tmp_path / "o"))
    assert rc == 2
    assert_one_error_line(err, "--workers or --dask")


def test_a_bad_model_variant_names_the_model_table(capsys, tmp_path):
    path = write_study(tmp_path, MODEL.replace('"mutex"', '"rwlock"') + "[sweep]\ncpus = [1, 2]\n")
    rc, _, err = cli(capsys, "sweep", path, "--out", str(tmp_path / "out"))
    assert rc == 2
    assert_one_error_line(err, "[model].variant", "no variant 'rwlock'")


def test_a_model_variant_also_swept_names_the_model_table(capsys, tmp_path):
    path = write_study(tmp_path, MODEL + "[sweep]\ncpus = [1, 2]\nvariant = [\"mutex\", \"ticket\"]\n")
    rc, _, err = cli(capsys, "sweep", path, "--out", str(tmp_path / "out"))
    assert rc == 2
    assert_one_error_line(err, "[model]", "[sweep]", "variant")


def test_seeds_at_the_end_of_the_file_says_to_move_it_above_the_first_table(capsys, tmp_path):
    path = write_study(tmp_path, MODEL + "[sweep]\ncpus = [1, 2]\n[plot]\nx = \"cpus\"\n"
                                          "y = \"time_ns\"\nseeds = 5\n")
    rc, _, err = cli(capsys, "sweep", path, "--out", str(tmp_path / "out"))
    assert rc == 2
    assert_one_error_line(err, "seeds", "above the first [table]")


def test_an_empty_sweep_list_suggests_a_sensible_fix(capsys, tmp_path):
    path = write_study(tmp_path, MODEL + "[sweep]\ncpus = []\n")
    rc, _, err = cli(capsys, "sweep", path, "--out", str(tmp_path / "out"))
    assert rc == 2
    line = assert_one_error_line(err, "[sweep].cpus", "non-empty list")
    assert "[[]]" not in line


def test_seeds_under_run_says_to_move_it_above_the_first_table(capsys, tmp_path):
    path = write_study(tmp_path, MODEL + "[run]\nseeds = 2\n[sweep]\ncpus = [1, 2]\n")
    rc, _, err = cli(capsys, "sweep", path, "--out", str(tmp_path / "out"))
    assert rc == 2
    assert_one_error_line(err, "seeds", "above the first [table]")


def test_a_theory_the_scenario_cannot_feed_is_bad_input_before_any_run(capsys, tmp_path):
    text = (f'seeds = 1\n[model]\ntarget = "{ROOT}/models/freebsd/vm_object_lock.py::faults"\n'
            'variant = "mutex"\n[run]\nfaults = 3\npageouts = 0\n[sweep]\ncpus = [1, 2]\n'
            '[plot]\nx = "cpus"\ny = "faults_per_ms"\ntheory = "machine_repairman"\n')
    path = write_study(tmp_path, text)
    rc, _, err = cli(capsys, "sweep", path, "--out", str(tmp_path / "out"), "--workers", "1")
    assert rc == 2, err
    assert_one_error_line(err, "theory", "machine_repairman")
    assert not (tmp_path / "out" / "runs.csv").exists()


# -- what a sweep writes ----------------------------------------------------------------

def test_runs_csv_has_one_row_per_run_with_params_and_metrics(reference):
    path, out, result = reference
    assert (result["points"], result["runs"], result["ran"], result["violations"]) == (3, 9, 9, 0)
    header, rows = read_csv(os.path.join(out, "runs.csv"))
    # run/point/seed, then the swept parameter, then the fixed ones, then metrics
    assert header[:8] == ["run", "point", "seed", "cpus", "think_ns", "hold_ns", "acquisitions",
                          "variant"]
    for metric in ("time_ns", "steps", "violations", "acquisitions_per_us",
                   "lock.the lock.acquisitions", "lock.the lock.wait_mean_ns",
                   "lock.the lock.utilization"):
        assert metric in header
    assert sorted(int(r["run"]) for r in rows) == list(range(9))
    for r in rows:
        run = int(r["run"])
        assert int(r["point"]) == run // 3
        assert int(r["seed"]) == 10 + run % 3          # seed = 10 in the file
        cpus = int(r["cpus"])
        assert cpus == [1, 2, 3][run // 3]
        assert r["variant"] == "mutex" and r["acquisitions"] == "30"
        # every CPU takes the lock `acquisitions` times
        assert int(r["lock.the lock.acquisitions"]) == cpus * 30
        assert int(r["violations"]) == 0
        assert 0 < float(r["lock.the lock.utilization"]) < 1
        if cpus == 1:
            assert float(r["lock.the lock.wait_mean_ns"]) == 0  # nobody to wait for
    # different seeds give different runs
    assert len({r["time_ns"] for r in rows if r["point"] == "0"}) == 3


def test_summary_has_means_intervals_and_theory(reference):
    path, out, _ = reference
    _, runs = read_csv(os.path.join(out, "runs.csv"))
    header, summary = read_csv(os.path.join(out, "summary.csv"))
    assert [int(s["point"]) for s in summary] == [0, 1, 2]
    metrics = [h[:-len(".mean")] for h in header if h.endswith(".mean")]
    assert set(THEORY_METRICS) <= set(metrics)
    for s in summary:
        assert s["runs"] == "3"
        mine = [r for r in runs if r["point"] == s["point"]]
        for m in metrics:
            mean, lo, hi = (float(s[f"{m}.{k}"]) for k in ("mean", "ci_low", "ci_high"))
            assert lo <= mean <= hi, (m, lo, mean, hi)
            expected_mean = sum(float(r[m]) for r in mine) / len(mine)
            assert mean == pytest.approx(expected_mean, rel=1e-5, abs=1e-9)
        n = int(s["cpus"])
        exact = machine_repairman(n, 2000.0, 200.0)
        for m in THEORY_METRICS:
            assert float(s[f"{m}.theory"]) == pytest.approx(exact[m], rel=1e-5, abs=1e-9)
            th, mean = exact[m], float(s[f"{m}.mean"])
            if abs(th) > 1e-6:
                assert float(s[f"{m}.rel_error"]) == pytest.approx((mean - th) / th,
                                                                  rel=1e-3, abs=1e-5)
            else:  # one CPU never waits: the exact wait is 0, no relative error
                assert float(s[f"{m}.mean"]) == 0
        # metrics without a theory get no theory column
        assert "steps.theory" not in s and "time_ns.theory" not in s
    # a wider interval for a noisier metric: the contended points have a spread
    two = summary[1]
    assert float(two["time_ns.ci_low"]) < float(two["time_ns.mean"]) < float(two["time_ns.ci_high"])


def test_manifest_records_configuration_version_seeds_and_times(reference):
    path, out, _ = reference
    with open(os.path.join(out, "manifest.json"), encoding="utf-8") as fp:
        manifest = json.load(fp)
    assert manifest["smpvm_version"] == __version__
    assert manifest["seeds"] == [10, 11, 12]
    assert manifest["runs"] == 9
    assert manifest["executor"] == "in-process"
    cfg = manifest["config"]
    assert cfg["target"] == TARGET
    assert cfg["swept"] == {"cpus": [1, 2, 3]}
    assert cfg["fixed"] == {"think_ns": 2000.0, "hold_ns": 200.0, "acquisitions": 30,
                            "variant": "mutex"}
    assert cfg["costs"]["jitter"] == 0.0 and cfg["seeds"] == 3 and cfg["base_seed"] == 10
    assert cfg["study"]["question"] == "Does the single lock match M/M/1//N?"
    assert cfg["plot"]["theory"] == "machine_repairman"
    assert cfg == json.loads(json.dumps(load_config(path).resolved()))
    assert manifest["started"] and manifest["ended"]
    assert manifest["started"] <= manifest["ended"]  # ISO 8601, same zone: string order


def test_one_png_per_plotted_metric(reference):
    _, out, result = reference
    pngs = sorted(f for f in os.listdir(out) if f.endswith(".png"))
    assert pngs == sorted(["lock.the_lock.wait_mean_ns.png", "lock.the_lock.utilization.png",
                           "acquisitions_per_us.png"])
    for f in pngs:
        with open(os.path.join(out, f), "rb") as fp:
            assert fp.read(8) == PNG_SIGNATURE
        assert os.path.join(out, f) in result["files"]


def test_the_cli_prints_the_files_and_json(capsys, tmp_path, reference):
    path = queue_study(tmp_path, acquisitions=10)
    out = str(tmp_path / "out")
    rc, stdout, err = cli(capsys, "sweep", path, "--out", out, "--workers", "1")
    assert rc == 0, err
    assert "9 runs over 3 points (9 run now)" in stdout
    assert os.path.join(out, "summary.csv") in stdout
    rc, stdout, err = cli(capsys, "sweep", path, "--out", out, "--workers", "1", "--json")
    assert rc == 0, err
    doc = json.loads(stdout)
    assert (doc["runs"], doc["points"], doc["ran"], doc["violations"]) == (9, 3, 9, 0)
    # a run without --resume starts afresh: no row is doubled
    assert len(read_csv(os.path.join(out, "runs.csv"))[1]) == 9


def test_the_executors_start_is_timed_apart_from_the_runs(capsys, tmp_path, reference,
                                                          slow_executor_start):
    """As for ``smpvm explore``: a Dask cluster's start is paid once, so the sweep's
    ``runs_per_second`` counts the time after it and ``executor_start_s`` says how much."""
    path = queue_study(tmp_path, acquisitions=10)
    rc, stdout, err = cli(capsys, "sweep", path, "--out", tmp_path / "out", "--workers", "2",
                          "--json")
    assert rc == 0, err
    doc = json.loads(stdout)
    assert slow_executor_start <= doc["executor_start_s"] < doc["elapsed_s"]
    running = doc["elapsed_s"] - doc["executor_start_s"]  # each rounded to 1 ms
    assert doc["ran"] / (running + 0.002) <= doc["runs_per_second"] <= doc["ran"] / (running - 0.002)


# -- resume -----------------------------------------------------------------------------

def _drop_runs(runs_csv, drop):
    with open(runs_csv, encoding="utf-8") as fp:
        lines = fp.readlines()
    kept = [lines[0]] + [ln for ln in lines[1:] if int(ln.split(",", 1)[0]) not in drop]
    with open(runs_csv, "w", encoding="utf-8") as fp:
        fp.writelines(kept)


def test_resume_fills_in_missing_rows_without_repeating_any(capsys, tmp_path, reference):
    path, ref_out, _ = reference
    out = str(tmp_path / "out")
    shutil.copytree(ref_out, out)
    os.remove(os.path.join(out, "summary.csv"))
    _drop_runs(os.path.join(out, "runs.csv"), {1, 4, 5, 8})
    rc, stdout, err = cli(capsys, "sweep", path, "--out", out, "--workers", "1", "--resume",
                          "--json")
    assert rc == 0, err
    doc = json.loads(stdout)
    assert (doc["runs"], doc["ran"]) == (9, 4)
    _, rows = read_csv(os.path.join(out, "runs.csv"))
    assert sorted(int(r["run"]) for r in rows) == list(range(9))  # none repeated, none lost
    assert row_set(os.path.join(out, "runs.csv")) == row_set(os.path.join(ref_out, "runs.csv"))
    with open(os.path.join(out, "summary.csv")) as a, open(os.path.join(ref_out, "summary.csv")) as b:
        assert a.read() == b.read()


def test_resume_after_an_interrupt_equals_an_uninterrupted_sweep(monkeypatch, tmp_path, reference):
    import smpvm.studies.sweep as sweep_module

    path, ref_out, _ = reference
    out = str(tmp_path / "out")
    real_run_one = sweep_module.run_one

    def interrupted_at_run_5(spec):
        if spec["run"] == 5:
            raise KeyboardInterrupt
        return real_run_one(spec)

    monkeypatch.setattr(sweep_module, "run_one", interrupted_at_run_5)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(load_config(path), out, workers=1)
    _, rows = read_csv(os.path.join(out, "runs.csv"))
    assert sorted(int(r["run"]) for r in rows) == [0, 1, 2, 3, 4]
    with open(os.path.join(out, "manifest.json")) as fp:
        assert json.load(fp)["ended"] is None  # an unfinished sweep says so

    monkeypatch.setattr(sweep_module, "run_one", real_run_one)
    result = run_sweep(load_config(path), out, workers=1, resume=True)
    assert (result["runs"], result["ran"]) == (9, 4)
    _, rows = read_csv(os.path.join(out, "runs.csv"))
    assert sorted(int(r["run"]) for r in rows) == list(range(9))
    assert row_set(os.path.join(out, "runs.csv")) == row_set(os.path.join(ref_out, "runs.csv"))
    with open(os.path.join(out, "manifest.json")) as fp:
        assert json.load(fp)["ended"] is not None


def test_resume_of_a_finished_sweep_runs_nothing(reference, tmp_path):
    path, ref_out, _ = reference
    out = str(tmp_path / "out")
    shutil.copytree(ref_out, out)
    result = run_sweep(load_config(path), out, workers=1, resume=True)
    assert (result["runs"], result["ran"]) == (9, 0)
    assert row_set(os.path.join(out, "runs.csv")) == row_set(os.path.join(ref_out, "runs.csv"))


def test_resume_with_a_changed_configuration_is_exit_2(capsys, tmp_path, reference):
    path, ref_out, _ = reference
    out = str(tmp_path / "out")
    shutil.copytree(ref_out, out)
    before = open(os.path.join(out, "runs.csv")).read()
    changed = queue_study(tmp_path, acquisitions=31, name=os.path.basename(path))
    rc, stdout, err = cli(capsys, "sweep", changed, "--out", out, "--workers", "1", "--resume")
    assert rc == 2, (stdout, err)
    assert_one_error_line(err, "different configuration", "another --out", "--resume")
    assert open(os.path.join(out, "runs.csv")).read() == before  # nothing touched


def test_resume_accepts_the_same_file_named_another_way(monkeypatch, capsys, tmp_path, reference):
    path, ref_out, _ = reference
    out = str(tmp_path / "out")
    shutil.copytree(ref_out, out)
    _drop_runs(os.path.join(out, "runs.csv"), {8})
    monkeypatch.chdir(os.path.dirname(path))
    rc, _, err = cli(capsys, "sweep", os.path.join(".", os.path.basename(path)), "--out", out,
                     "--workers", "1", "--resume")
    assert rc == 0, err
    assert row_set(os.path.join(out, "runs.csv")) == row_set(os.path.join(ref_out, "runs.csv"))


def test_resume_into_a_directory_of_another_sweeps_runs_is_exit_2(capsys, tmp_path, reference):
    """Without a manifest, the columns of runs.csv still tell the sweeps apart."""
    path, ref_out, _ = reference
    out = tmp_path / "out"
    out.mkdir()
    (out / "runs.csv").write_text("run,point,seed,variant,cpus\n0,0,0,mutex,1\n")
    rc, _, err = cli(capsys, "sweep", path, "--out", str(out), "--workers", "1", "--resume")
    assert rc == 2
    assert_one_error_line(err, "different sweep", "--resume")


def test_rows_are_on_disk_as_runs_finish_in_process(monkeypatch, tmp_path):
    """What makes --resume useful after a kill: finished runs are already saved."""
    import smpvm.studies.sweep as sweep_module

    path = queue_study(tmp_path, acquisitions=5)
    out = str(tmp_path / "out")
    runs_csv = os.path.join(out, "runs.csv")
    rows_on_disk = []
    real_run_one = sweep_module.run_one

    def watching(spec):
        rows_on_disk.append(len(read_csv(runs_csv)[1]) if os.path.exists(runs_csv) else 0)
        return real_run_one(spec)

    monkeypatch.setattr(sweep_module, "run_one", watching)
    run_sweep(load_config(path), out, workers=1)
    assert rows_on_disk == list(range(9))


def test_an_interrupt_stops_an_in_process_sweep_at_once(monkeypatch, tmp_path):
    import smpvm.studies.sweep as sweep_module

    path = queue_study(tmp_path, acquisitions=5)
    started = []
    real_run_one = sweep_module.run_one

    def interrupted_at_run_5(spec):
        started.append(spec["run"])
        if spec["run"] == 5:
            raise KeyboardInterrupt
        return real_run_one(spec)

    monkeypatch.setattr(sweep_module, "run_one", interrupted_at_run_5)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(load_config(path), str(tmp_path / "out"), workers=1)
    assert started == [0, 1, 2, 3, 4, 5]


def test_resume_after_a_torn_last_line(tmp_path, reference):
    path, ref_out, _ = reference
    out = str(tmp_path / "out")
    shutil.copytree(ref_out, out)
    runs_csv = os.path.join(out, "runs.csv")
    with open(runs_csv, encoding="utf-8") as fp:
        lines = fp.readlines()
    torn = lines[5][: len(lines[5]) // 2]            # the write of run 4 cut in half
    with open(runs_csv, "w", encoding="utf-8") as fp:
        fp.writelines(lines[:5])
        fp.write(torn)
    run_sweep(load_config(path), out, workers=1, resume=True)
    _, rows = read_csv(runs_csv)
    assert sorted(int(r["run"]) for r in rows) == list(range(9))
    assert row_set(runs_csv) == row_set(os.path.join(ref_out, "runs.csv"))


# -- executors ---------------------------------------------------------------------------

def test_two_worker_processes_give_the_same_rows_as_one(capsys, tmp_path, reference):
    path, ref_out, _ = reference
    out = str(tmp_path / "out")
    rc, _, err = cli(capsys, "sweep", path, "--out", out, "--workers", "2")
    assert rc == 0, err

    def by_run(p):
        header, rows = read_csv(p)
        return header, sorted((tuple(r.values()) for r in rows), key=lambda t: int(t[0]))

    assert by_run(os.path.join(out, "runs.csv")) == by_run(os.path.join(ref_out, "runs.csv"))
    with open(os.path.join(out, "manifest.json")) as fp:
        assert json.load(fp)["executor"] == "2 local processes"


# -- cases ---------------------------------------------------------------------------------

CASE_STUDY = f"""\
seeds = 2

[model]
target = "{TARGET}"

[run]
acquisitions = 20

[sweep]
cpus = [1, 2]

[[case]]
label = "sleep mutex"
variant = "mutex"

[[case]]
label = "ticket lock"
variant = "ticket"
hold_ns = 400.0

[plot]
x = "cpus"
y = ["acquisitions_per_us"]
lines = "case"
"""


def test_cases_are_crossed_with_the_sweep_and_plotted_one_line_each(monkeypatch, tmp_path):
    import matplotlib.figure

    cfg = load_config(write_study(tmp_path, CASE_STUDY))
    assert cfg.points() == [
        {"acquisitions": 20, "variant": "mutex", "cpus": 1, "case": "sleep mutex"},
        {"acquisitions": 20, "variant": "mutex", "cpus": 2, "case": "sleep mutex"},
        {"acquisitions": 20, "variant": "ticket", "hold_ns": 400.0, "cpus": 1, "case": "ticket lock"},
        {"acquisitions": 20, "variant": "ticket", "hold_ns": 400.0, "cpus": 2, "case": "ticket lock"},
    ]
    drawn = []
    real_savefig = matplotlib.figure.Figure.savefig

    def recording_savefig(fig, path, *a, **kw):
        ax = fig.axes[0]
        drawn.append((os.path.basename(str(path)), len(ax.containers),
                      [t.get_text() for t in ax.get_legend().get_texts()]))
        return real_savefig(fig, path, *a, **kw)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", recording_savefig)
    out = str(tmp_path / "out")
    result = run_sweep(cfg, out, workers=1)
    assert (result["points"], result["runs"]) == (4, 8)

    header, rows = read_csv(os.path.join(out, "runs.csv"))
    assert header[:5] == ["run", "point", "seed", "case", "cpus"]
    assert "variant" in header and "hold_ns" in header
    by_case = {}
    for r in rows:
        by_case.setdefault(r["case"], []).append(r)
    assert sorted(by_case) == ["sleep mutex", "ticket lock"]
    assert {r["variant"] for r in by_case["sleep mutex"]} == {"mutex"}
    assert {r["variant"] for r in by_case["ticket lock"]} == {"ticket"}
    assert {r["hold_ns"] for r in by_case["ticket lock"]} == {"400.0"}
    assert {r["hold_ns"] for r in by_case["sleep mutex"]} == {""}  # the scenario's default
    for r in rows:
        assert int(r["lock.the lock.acquisitions"]) == int(r["cpus"]) * 20

    _, summary = read_csv(os.path.join(out, "summary.csv"))
    assert [(s["case"], s["cpus"]) for s in summary] == [
        ("sleep mutex", "1"), ("sleep mutex", "2"), ("ticket lock", "1"), ("ticket lock", "2")]
    # one line per case, labelled by it
    assert drawn == [("acquisitions_per_us.png", 2, ["case=sleep mutex", "case=ticket lock"])]
    with open(os.path.join(out, "acquisitions_per_us.png"), "rb") as fp:
        assert fp.read(8) == PNG_SIGNATURE


def test_a_categorical_plot_x_is_plotted_one_position_per_case(monkeypatch, capsys, tmp_path):
    import matplotlib.figure

    text = CASE_STUDY.replace('x = "cpus"', 'x = "case"').replace('lines = "case"', 'lines = "cpus"')
    text = text.replace("seeds = 2", "seeds = 1").replace("acquisitions = 20", "acquisitions = 5")
    ticks = []
    real_savefig = matplotlib.figure.Figure.savefig

    def recording_savefig(fig, path, *a, **kw):
        ax = fig.axes[0]
        ticks.append(([t.get_text() for t in ax.get_xticklabels()],
                      [t.get_text() for t in ax.get_legend().get_texts()]))
        return real_savefig(fig, path, *a, **kw)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", recording_savefig)
    out = tmp_path / "out"
    rc, _, err = cli(capsys, "sweep", write_study(tmp_path, text), "--out", str(out),
                     "--workers", "1")
    assert rc == 0, err
    # the cases along x in file order, one line per CPU count
    assert ticks == [(["sleep mutex", "ticket lock"], ["cpus=1", "cpus=2"])]
    with open(out / "acquisitions_per_us.png", "rb") as fp:
        assert fp.read(8) == PNG_SIGNATURE


def test_a_sweep_made_smaller_from_the_command_line(tmp_path):
    """--set keeps only some values of a swept parameter or fixes another; --seeds sets runs per point."""
    path = os.path.join(ROOT, "experiments", "spin_collapse.toml")
    full = load_config(path)
    small = load_config(path, sets=["cpus=1,4", "acquisitions=100"], seeds=1)
    assert small.swept["cpus"] == [1, 4] and full.swept["cpus"] != [1, 4]
    assert small.fixed["acquisitions"] == 100 and small.seeds == 1
    assert len(small.points()) == 2 * len(small.swept["variant"])
    with pytest.raises(BadInput, match="no parameter 'nope'"):
        load_config(path, sets=["nope=1"])
    with pytest.raises(BadInput, match="key=value"):
        load_config(path, sets=["cpus"])



def test_json_output_is_strict_json_when_an_interval_has_no_estimate(tmp_path, capsys):
    """One seed per point gives intervals without a width; --json says null, never NaN."""
    rc, out, _ = cli(capsys, "sweep", os.path.join(ROOT, "experiments", "spin_collapse.toml"),
                     "--set", "cpus=1,2", "--set", "acquisitions=50", "--seeds", "1",
                     "--workers", "1", "--out", tmp_path / "s", "--json")
    assert rc == 0

    def refuse(constant):
        raise AssertionError(f"{constant} in --json output")
    json.loads(out, parse_constant=refuse)
