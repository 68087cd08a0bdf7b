"""The shipped studies in experiments/: each validates, states its question, and runs.

Every ``experiments/*.toml`` must load with the validator of its kind
(parameter sweeps with ``smpvm.studies.sweep.load_config``, race-reproduction and
lock-order studies with ``smpvm.studies.load_study``), open with a comment
block and say in ``[study]`` what it asks and what shape it expects.  A
reduced version of each then runs end to end: sweeps keep the first two
values of every swept list, the first two cases, one seed and small run
sizes; the race and lock-order studies run a few dozen schedules per
variant.  The reduced runs check what the full studies promise in kind:
every plotted metric is produced, the fixed variants never fail, and the
old object-list walk shows its lock-order reversal while no fixed variant
shows any.
"""

from __future__ import annotations

import csv
import dataclasses
import glob
import json
import math
import os
import tomllib

import pytest

from conftest import ROOT, cli
from smpvm.scenario import BadInput, load_target
from smpvm.studies.races import STRATEGIES, load_study, run_lor_survey, run_races, study_kind
from smpvm.studies.sweep import load_config, run_sweep

EXPERIMENTS = sorted(glob.glob(os.path.join(ROOT, "experiments", "*.toml")))
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

#: Run-size parameters lowered in the reduced sweeps, where the scenario has them.
SMALL_RUNS = {"acquisitions": 40, "ops_per_thread": 10, "faults": 10, "ops": 2, "fills": 50}


def kind_of(path) -> str:
    return study_kind(path)


def by_kind(kind):
    return [pytest.param(p, id=os.path.basename(p)) for p in EXPERIMENTS if kind_of(p) == kind]


def read_csv(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fp:
        return list(csv.DictReader(fp))


def assert_png(path) -> None:
    with open(path, "rb") as fp:
        assert fp.read(8) == PNG_SIGNATURE, path


@pytest.fixture
def elsewhere(monkeypatch, tmp_path):
    """Work from a directory outside the project: targets resolve beside the study file."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


# -- what ships ------------------------------------------------------------------------------

def test_at_least_six_studies_ship_including_the_queueing_validation():
    assert len(EXPERIMENTS) >= 6
    kinds = {os.path.basename(p): kind_of(p) for p in EXPERIMENTS}
    assert {"sweep", "races", "lor"} <= set(kinds.values())
    queue = [p for p in EXPERIMENTS if "queue" in os.path.basename(p)]
    assert queue, "no queueing validation study"
    cfg = load_config(queue[0])
    assert cfg.plot["theory"] == "machine_repairman"
    assert cfg.target.endswith("single_lock")


@pytest.mark.parametrize("path", [pytest.param(p, id=os.path.basename(p)) for p in EXPERIMENTS])
def test_each_study_opens_with_a_comment_and_states_question_and_expectation(path):
    with open(path, encoding="utf-8") as fp:
        lines = fp.read().splitlines()
    head = []
    for line in lines:
        if not line.startswith("#"):
            break
        head.append(line)
    assert len(head) >= 2, f"{path} should open with a comment block"
    assert any("expected" in line.lower() for line in head), "the comment states the expected shape"
    with open(path, "rb") as fp:
        study = tomllib.load(fp)["study"]
    for key in ("question", "expected"):
        assert isinstance(study.get(key), str) and study[key].strip(), f"[study].{key}"
    assert study.get("name") == os.path.splitext(os.path.basename(path))[0]


@pytest.mark.parametrize("path", by_kind("sweep"))
def test_each_sweep_validates_from_another_directory(elsewhere, path):
    cfg = load_config(path)
    scn = load_target(cfg.target)                       # resolved beside the study file
    assert os.path.isfile(cfg.target.split("::")[0])
    assert cfg.seeds >= 1 and cfg.swept
    size = math.prod(len(v) for v in cfg.swept.values()) * max(1, len(cfg.cases))
    assert len(cfg.points()) == size
    plot = cfg.plot
    assert plot["x"] in list(cfg.swept) + (["case"] if cfg.cases else [])
    assert plot["y"] and all(isinstance(y, str) for y in plot["y"])
    for point in cfg.points():
        if "variant" in point:
            assert point["variant"] in scn.variants


@pytest.mark.parametrize("path", by_kind("races") + by_kind("lor"))
def test_each_race_and_lock_order_study_validates_from_another_directory(elsewhere, path):
    kind = kind_of(path)
    cfg = load_study(path, kind)
    assert cfg["kind"] == kind and cfg["runs"] >= 1 and cfg["entries"]
    groups = ("buggy", "fixed") if kind == "races" else ("old", "fixed")
    for e in cfg["entries"]:
        scn = load_target(e["target"])
        assert e[groups[0]] or e[groups[1]]
        for g in groups:
            assert set(e[g]) <= set(scn.variants)
    if kind == "races":
        assert set(cfg["strategies"]) <= set(STRATEGIES)


# -- reduced sweeps ----------------------------------------------------------------------

def reduced(path):
    """The study with two values per swept list, two cases, one seed and small runs."""
    cfg = load_config(path)
    params = load_target(cfg.target).params
    smaller = {k: v for k, v in SMALL_RUNS.items()
               if k in params and k in cfg.fixed and cfg.fixed[k] > v}
    cfg = load_config(path, overrides=smaller)          # the smaller sizes are validated too
    # one seed per point, not chasing a precision (that is tested in test_steady)
    return dataclasses.replace(cfg, swept={k: v[:2] for k, v in cfg.swept.items()}, seeds=1,
                               cases=dict(list(cfg.cases.items())[:2]), precision=None,
                               max_seeds=0)


@pytest.mark.parametrize("path", by_kind("sweep"))
def test_each_sweep_runs_reduced_and_produces_every_plotted_metric(elsewhere, path):
    cfg = reduced(path)
    out = str(elsewhere / "out")
    result = run_sweep(cfg, out, workers=1)
    npoints = len(cfg.points())
    assert (result["points"], result["runs"], result["ran"]) == (npoints, npoints, npoints)
    assert result["violations"] == 0  # performance studies: nothing may break
    runs = read_csv(os.path.join(out, "runs.csv"))
    assert sorted(int(r["run"]) for r in runs) == list(range(npoints))
    for r in runs:
        assert float(r["time_ns"]) > 0
    summary = read_csv(os.path.join(out, "summary.csv"))
    assert len(summary) == npoints
    for metric in cfg.plot["y"]:
        means = [s[f"{metric}.mean"] for s in summary if s.get(f"{metric}.mean") not in (None, "")]
        assert means, f"no run produced the plotted metric {metric!r}"
        safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in metric)
        assert_png(os.path.join(out, f"{safe}.png"))
    if cfg.plot.get("theory"):
        assert any(s.get("acquisitions_per_us.theory") for s in summary)
        for s in summary:
            assert float(s["acquisitions_per_us.theory"]) > 0


# -- races and the lock-order survey -----------------------------------------------------

def _one(path, kind):
    [p] = [p for p in EXPERIMENTS if kind_of(p) == kind and path in os.path.basename(p)]
    return p


def test_the_race_study_runs_reduced_and_no_fixed_variant_fails(elsewhere):
    path = _one("race", "races")
    cfg = load_study(path, "races", runs_override=20)
    assert cfg["runs"] == 20
    cfg["dfs_runs"] = 120
    out = str(elsewhere / "races")
    result = run_races(cfg, out, workers=1)
    nbuggy = sum(len(e["buggy"]) for e in cfg["entries"])
    nfixed = sum(len(e["fixed"]) for e in cfg["entries"])
    assert result["rows"] == nbuggy * len(cfg["strategies"]) + nfixed * 2
    assert result["fixed_failures"] == 0
    rows = read_csv(os.path.join(out, "races.csv"))
    assert len(rows) == result["rows"]
    for r in rows:
        assert float(r["ci_low"]) <= float(r["rate"]) <= float(r["ci_high"])
        assert float(r["rate"]) == pytest.approx(int(r["failing_runs"]) / int(r["runs"]), abs=1e-9)
        if r["role"] == "fixed":
            assert r["failing_runs"] == "0", r
            assert r["strategy"] in ("portfolio", "dfs")
        elif r["strategy"] != "dfs":
            assert r["runs"] == "20"
    # the blocking walk deadlocks and the shrinker re-enters on every schedule
    for name, variant in (("walk_vs_collapse", "blocking-walk"),
                          ("shrinker_reentry", "mainline-3.5")):
        mine = [r for r in rows if r["target"].endswith(name) and r["variant"] == variant]
        assert len(mine) == len(cfg["strategies"])
        assert all(r["verdict"].startswith("found") for r in mine), mine
    # every buggy variant is found by at least one strategy, even at this budget
    for e in cfg["entries"]:
        for variant in e["buggy"]:
            mine = [r for r in rows if r["target"] == e["target"] and r["variant"] == variant]
            assert any(int(r["failing_runs"]) for r in mine), (e["target"], variant)
    # the fixed doomed-object code is small: its whole schedule space is explored
    [dfs] = [r for r in rows if r["target"].endswith("doomed_object") and r["role"] == "fixed"
             and r["strategy"] == "dfs"]
    assert dfs["exhausted"] == "True" and dfs["verdict"].startswith("all ")
    assert_png(os.path.join(out, "races.png"))
    assert os.path.isfile(os.path.join(out, "manifest.json"))


def test_the_lock_order_survey_shows_the_walk_reversal_only_in_old_code(elsewhere):
    path = _one("lor", "lor")
    cfg = load_study(path, "lor", runs_override=5)
    out = str(elsewhere / "lor")
    result = run_lor_survey(cfg, out)
    assert result["fixed_reversals"] == 0
    rows = read_csv(os.path.join(out, "reversals.csv"))
    assert len(rows) == result["reversals"] >= 1
    assert [r for r in rows if r["group"] == "fixed"] == []
    walk = [r for r in rows if r["target"].endswith("vm_object_list.py::walk_vs_collapse")
            and r["variant"] == "blocking-walk"]
    assert len(walk) == 1 and walk[0]["group"] == "old"
    assert set(walk[0]["cycle"].split(" -> ")) == {"vm object_list", "vm object"}
    assert int(walk[0]["runs_reporting"]) >= 1
    assert "lock order reversal" in walk[0]["message"]
    for group in ("old", "fixed"):
        assert_png(os.path.join(out, f"lock-order-{group}.png"))
        with open(os.path.join(out, f"lock-order-{group}.dot"), encoding="utf-8") as fp:
            assert fp.read().startswith(("digraph", "strict digraph"))


# -- the race and lock-order kinds through `smpvm sweep` ---------------------------------

DOOMED = os.path.join(ROOT, "models", "freebsd", "device_pager.py") + "::doomed_object"


def _study(tmp_path, text):
    path = tmp_path / "study.toml"
    path.write_text(text)
    return str(path)


def test_sweep_runs_a_race_study_and_exits_0_when_the_fix_holds(capsys, tmp_path):
    path = _study(tmp_path, f'runs = 20\ndfs_runs = 50\nstrategies = ["random", "dfs"]\n'
                            f'[study]\nkind = "races"\n[[race]]\ntarget = "{DOOMED}"\n'
                            f'buggy = ["buggy"]\nfixed = ["fixed"]\n')
    out = tmp_path / "out"
    rc, stdout, err = cli(capsys, "sweep", path, "--out", str(out), "--workers", "1")
    assert rc == 0, err
    assert "[buggy]    random:" in stdout and "found" in stdout
    assert "[fixed] portfolio: 0/20 failing" in stdout
    assert "all 4 schedules explored, 0 failed" in stdout or "0 failures in" in stdout
    rows = read_csv(out / "races.csv")
    assert [(r["variant"], r["strategy"]) for r in rows] == [
        ("buggy", "random"), ("buggy", "dfs"), ("fixed", "portfolio"), ("fixed", "dfs")]


# races.png has no buggy bars to draw here; matplotlib warns about the empty legend
@pytest.mark.filterwarnings("ignore:No artists with labels found")
def test_sweep_exits_1_when_a_fixed_variant_of_a_race_study_fails(capsys, tmp_path):
    path = _study(tmp_path, f'runs = 20\ndfs_runs = 30\nstrategies = ["random"]\n'
                            f'[study]\nkind = "races"\n[[race]]\ntarget = "{DOOMED}"\n'
                            f'buggy = []\nfixed = ["buggy"]\n')
    rc, stdout, _ = cli(capsys, "sweep", path, "--out", str(tmp_path / "out"), "--workers", "1")
    assert rc == 1
    rows = read_csv(tmp_path / "out" / "races.csv")
    assert all(r["role"] == "fixed" for r in rows) and any(int(r["failing_runs"]) for r in rows)


def test_sweep_runs_a_lock_order_study(capsys, tmp_path):
    walk = os.path.join(ROOT, "models", "freebsd", "vm_object_list.py") + "::walk_vs_collapse"
    path = _study(tmp_path, f'runs = 3\n[study]\nkind = "lor"\n[[model]]\ntarget = "{walk}"\n'
                            f'old = ["blocking-walk"]\nfixed = ["nofree"]\n')
    rc, stdout, err = cli(capsys, "sweep", path, "--out", str(tmp_path / "out"), "--json")
    assert rc == 0, err
    doc = json.loads(stdout)
    assert doc["reversals"] == 1 and doc["fixed_reversals"] == 0
    assert doc["table"][0]["variant"] == "blocking-walk" and doc["table"][0]["group"] == "old"


BAD_STUDIES = [
    pytest.param('runs = 10\nseeds = 3\n[study]\nkind = "lor"\n[[model]]\ntarget = "{t}"\n'
                 'old = ["buggy"]\n', ["unknown key(s) seeds", "lor study"], id="unknown-key"),
    pytest.param('runs = 10\nstrategies = ["random", "pct-d9"]\n[study]\nkind = "races"\n'
                 '[[race]]\ntarget = "{t}"\nbuggy = ["buggy"]\n', ["unknown strategies pct-d9"],
                 id="unknown-strategy"),
    pytest.param('runs = 10\n[study]\nkind = "races"\n[[race]]\ntarget = "{t}"\n'
                 'buggy = ["bugy"]\n', ["no variant 'bugy'", "buggy, fixed"], id="unknown-variant"),
    pytest.param('runs = 0\n[study]\nkind = "races"\n[[race]]\ntarget = "{t}"\n'
                 'buggy = ["buggy"]\n', ["runs must be a whole number >= 1"], id="zero-runs"),
    pytest.param('[study]\nkind = "races"\n', ["[[race]]", "target"], id="no-races"),
    pytest.param('runs = 10\n[study]\nkind = "races"\n[[race]]\ntarget = "{t}"\n'
                 'buggy = "buggy"\n', ["buggy must be a list of variant names"], id="not-a-list"),
]


@pytest.mark.parametrize("text,fragments", BAD_STUDIES)
def test_a_bad_race_or_lock_order_study_is_one_line_and_exit_2(capsys, tmp_path, text, fragments):
    path = _study(tmp_path, text.format(t=DOOMED))
    rc, _, err = cli(capsys, "sweep", path, "--out", str(tmp_path / "out"))
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("smpvm: error: ") and "Traceback" not in err
    for frag in fragments:
        assert frag in lines[0]


def test_a_misspelt_key_in_a_race_table_is_refused(tmp_path):
    path = _study(tmp_path, f'[study]\nkind = "races"\n[[race]]\ntarget = "{DOOMED}"\n'
                            f'buggy = ["buggy"]\nfixd = ["fixed"]\n')
    with pytest.raises(BadInput, match="fixd"):
        load_study(path, "races")


def test_a_race_study_counts_only_the_kinds_it_names(elsewhere):
    from smpvm.violations import BadInput
    tiny = os.path.join(ROOT, "tests", "models", "tiny.py")
    text = (f'runs = 40\nstrategies = ["random"]\n[study]\nkind = "races"\nname = "k"\n'
            f'[[race]]\ntarget = "{tiny}::abba"\nbuggy = ["buggy"]\nfixed = []\n')
    plain, only = elsewhere / "plain.toml", elsewhere / "only.toml"
    plain.write_text(text)
    only.write_text(text.replace('fixed = []\n', 'fixed = []\nfail_on = ["deadlock"]\n'))
    rows = {}
    for name, path in (("plain", plain), ("only", only)):
        cfg = load_study(str(path), "races")
        run_races(cfg, str(elsewhere / name), workers=1)
        [rows[name]] = read_csv(os.path.join(elsewhere / name, "races.csv"))
    deadlocks = read_csv(os.path.join(elsewhere, "only", "runs", "abba-buggy-random", "runs.csv"))
    assert int(rows["only"]["failing_runs"]) == sum(r["kinds"] == "deadlock" for r in deadlocks)
    assert 0 < int(rows["only"]["failing_runs"]) < int(rows["plain"]["failing_runs"])
    only.write_text(text.replace('fixed = []\n', 'fixed = []\nignore = ["no-such-kind"]\n'))
    with pytest.raises(BadInput, match="unknown violation kind no-such-kind"):
        load_study(str(only), "races")


def test_the_worker_scaling_script_measures_each_worker_count(capsys):
    import importlib.util
    path = os.path.join(ROOT, "experiments", "worker_scaling.py")
    spec = importlib.util.spec_from_file_location("worker_scaling", path)
    scaling = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(scaling)
    assert scaling.worker_counts(16) == [1, 2, 4, 8, 16]
    assert scaling.worker_counts(6) == [1, 2, 4, 6]
    assert scaling.worker_counts(1) == [1]
    assert scaling.main(["--runs", "300", "--max-workers", "2", "--rounds", "1"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[2:]]
    assert [row[0] for row in rows] == ["1", "2"]
    assert all(float(row[1].replace(",", "")) > 0 for row in rows)
    assert rows[0][2] == "1.00x"


def _virtual_workers():
    import importlib.util
    path = os.path.join(ROOT, "experiments", "virtual_workers.py")
    spec = importlib.util.spec_from_file_location("virtual_workers", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _table(capsys) -> tuple[str, list]:
    out = capsys.readouterr().out.splitlines()
    return out[0], [line.split() for line in out[2:]]


def test_the_virtual_workers_script_replays_the_same_dfs_parts_for_each_worker_count(capsys):
    virtual = _virtual_workers()
    assert virtual.main(["dfs", "--allocators", "1", "--max-workers", "4", "--budget", "2"]) == 0
    title, rows = _table(capsys)
    assert title.startswith("doomed object, fixed, 1 allocator(s): 4 schedules in ")
    assert [row[0] for row in rows] == ["1", "2", "4"]
    assert rows[0][2] == "1.00x"  # (each pass checks it drives the first pass's parts)
    assert all(float(row[2].rstrip("x")) > 0 and int(row[3].rstrip("%")) <= 100 for row in rows)
    with pytest.raises(SystemExit):
        virtual.main(["dfs", "--max-workers", "0"])


def test_the_virtual_workers_script_drives_a_sampled_exploration_for_each_worker_count(capsys):
    virtual = _virtual_workers()
    assert virtual.main(["explore", "--runs", "600", "--max-workers", "2"]) == 0
    title, rows = _table(capsys)
    assert title == "doomed object, fixed, 600 runs, default portfolio"
    assert [row[0] for row in rows] == ["1", "2"]  # (and the same runs.csv, checked)
    assert rows[0][2] == "1.00x"
    assert all(int(row[3].rstrip("%")) <= 100 for row in rows)


def test_the_schedule_explorers_script_measures_smpvm_and_refuses_bad_tools(capsys):
    import importlib.util
    import sys
    path = os.path.join(ROOT, "experiments", "schedule_explorers.py")
    spec = importlib.util.spec_from_file_location("schedule_explorers", path)
    explorers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(explorers)
    assert explorers.main(["--rounds", "1", "--samples", "50", "--allocators", "1"]) == 0
    head, row = capsys.readouterr().out.splitlines()
    assert head.split()[:3] == ["tool", "first", "failure"]
    cells = row.split()
    assert cells[0] == "smpvm" and cells[2] == "s"  # found: a time, not "not found"
    assert float(cells[3].replace(",", "")) > 0  # schedules/s
    assert cells[4:7] == ["4", "in", cells[6]] and cells[7] == "s"  # the 1-allocator proof
    # a Python without the tool: one line naming it, no traceback
    with pytest.raises(SystemExit, match=r"^interleave-test: exit 1: .*interleave_test"):
        explorers.main(["--interleave-test", sys.executable, "--rounds", "1",
                        "--allocators", "1", "--samples", "5", "--budget", "30"])
    with pytest.raises(SystemExit):  # frontrun needs its launcher beside the Python
        explorers.main(["--frontrun", sys.executable])
