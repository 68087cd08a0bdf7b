"""``smpvm lor`` and the merged graph: counts across runs, cycles across runs, DOT, PNG.

The command's contract: exit 1 when any reversal (or spl, sleep or lock
misuse violation) was found, 0 when none, 2 for bad input with one line on
stderr; ``--json`` has at least ``reversals``, ``classes`` and ``edges``; the
DOT file parses back with networkx into the same graph.
"""

from __future__ import annotations

import json
import os

import pytest

from conftest import ROOT
from smpvm.cli import main
from smpvm.report.lorgraph import LorGraph, read_dot

TINY = "tests/models/tiny.py::abba"
CASES = "tests/models/witness_cases.py"


@pytest.fixture(autouse=True)
def _in_project_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def lor(capsys, *args):
    """Run ``smpvm lor ARGS`` in this process; (exit status, stdout, stderr)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["lor", *args])
    out, err = capsys.readouterr()
    return (exc.value.code or 0), out, err


def lor_json(capsys, *args):
    rc, out, err = lor(capsys, *args, "--json")
    return rc, json.loads(out)


def test_reversal_reported_once_per_run_counted_over_runs(capsys):
    rc, d = lor_json(capsys, TINY, "--variant", "buggy", "--runs", "6", "--seed", "3")
    assert rc == 1
    [rev] = d["reversals"]
    assert set(rev["cycle"]) == {"lock a", "lock b"} and rev["cycle"][0] == rev["cycle"][-1]
    assert rev["count"] == 6 and not rev["merged_only"]
    attempted, established = rev["sites"]
    assert attempted["edge"] == ["lock b", "lock a"]
    assert attempted["first"].startswith("tests/models/tiny.py:")
    assert established["declared"]  # tiny.py documents "lock a" before "lock b"
    assert rev["first"]["seed"] == 3 and isinstance(rev["first"]["choices"], list)
    assert {c["name"] for c in d["classes"]} == {"lock a", "lock b"}
    edges = {(e["from"], e["to"]): e for e in d["edges"]}
    assert set(edges) == {("lock a", "lock b"), ("lock b", "lock a")}
    assert edges[("lock a", "lock b")]["runs"] == 6 and edges[("lock b", "lock a")]["reversal"]
    assert d["strategy"] == "random" and d["runs"] == 6


def test_clean_variant_exits_0(capsys):
    rc, d = lor_json(capsys, TINY, "--variant", "fixed", "--runs", "5")
    assert rc == 0 and d["reversals"] == [] and d["violations"] == []
    assert [(e["from"], e["to"]) for e in d["edges"]] == [("lock a", "lock b")]


def test_orders_from_different_runs_meet_in_the_merged_graph(capsys):
    target = f"{CASES}::split_orders"
    rc, d = lor_json(capsys, target, "--variant", "split", "--runs", "10", "--seed", "1")
    assert rc == 1
    [rev] = d["reversals"]
    assert rev["merged_only"] and rev["count"] == 0
    assert set(rev["cycle"]) == {"split A", "split B"}
    runs = {s["run"]["run"] for s in rev["sites"]}
    assert len(runs) == 2  # one order from each of two runs
    rc, d = lor_json(capsys, target, "--variant", "consistent", "--runs", "10", "--seed", "1")
    assert rc == 0 and d["reversals"] == []


def test_spl_and_sleep_violations_exit_1_without_a_reversal(capsys):
    rc, d = lor_json(capsys, f"{CASES}::selftest", "--set", "case=sleep-with-lock",
                     "--set", "kind=spin", "--runs", "2")
    assert rc == 1 and d["reversals"] == []
    [v] = d["violations"]
    assert v["kind"] == "sleep-in-atomic" and v["count"] == 2
    rc, d = lor_json(capsys, f"{CASES}::selftest", "--set", "case=irq-safe-A-unsafe-B",
                     "--set", "kind=mtx", "--runs", "3", "--strategy", "timed")
    assert rc == 1 and [v["kind"] for v in d["violations"]] == ["spl-violation"]


def test_text_output_lists_reversals_sites_and_edges(capsys):
    rc, out, err = lor(capsys, TINY, "--variant", "buggy", "--runs", "4")
    assert rc == 1 and err == ""
    assert "reversals: 1" in out
    assert "lock order reversal: 1st" in out and "(reported in 4 of 4 runs)" in out
    assert "lock a -> lock b: tests/models/tiny.py:" in out


def test_dot_parses_back_into_the_same_graph(capsys, tmp_path):
    dot = tmp_path / "g.dot"
    rc, d = lor_json(capsys, TINY, "--variant", "buggy", "--runs", "3", "--dot", str(dot))
    assert rc == 1
    import warnings

    import networkx as nx
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # pydot's parser, not ours
        plain = nx.nx_pydot.read_dot(str(dot))
    assert sorted(plain.nodes()) == ["lock a", "lock b"]
    assert sorted(plain.edges()) == [("lock a", "lock b"), ("lock b", "lock a")]
    back = read_dot(str(dot))
    for e in d["edges"]:
        data = back.edges[e["from"], e["to"]]
        assert data["count"] == e["count"] and data["first_site"] == e["first_site"]
        assert data["reversal"] == e["reversal"] and data["color"] == "red"
    assert back.nodes["lock a"]["kind"] == "sleep mutex"


def test_dot_round_trip_keeps_awkward_class_names(tmp_path):
    lg = LorGraph()
    edges = [{"from": "vm object", "to": "X/1", "first_site": "m.py:1", "second_site": "m.py:2",
              "count": 3, "types": ["EN"]},
             {"from": "X/1", "to": "irq:disk lock", "first_site": "m.py:3",
              "second_site": "n.py:4", "count": 1, "types": ["SR"]},
             {"from": "irq:disk lock", "to": "vm object", "first_site": "declared",
              "second_site": "declared", "count": 0, "declared": True},
             {"from": 'quote"d', "to": "pa_lock", "first_site": "x", "second_site": "y",
              "count": 2}]
    lg.add_run(edges, {"vm object": "rw", "X/1": "sx", "irq:disk lock": "spin mutex"}, [])
    lg.search()
    lg.write_dot(str(tmp_path / "g.dot"))
    g, back = lg.to_networkx(), read_dot(str(tmp_path / "g.dot"))
    assert sorted(back.nodes()) == sorted(g.nodes())
    assert sorted(back.edges()) == sorted(g.edges())
    for u, v, data in g.edges(data=True):
        assert {k: str(x) for k, x in back.edges[u, v].items()} == \
            {k: str(x) for k, x in data.items()}
    for n, data in g.nodes(data=True):
        assert back.nodes[n] == data


def test_png_is_drawn_with_matplotlib_when_graphviz_is_missing(capsys, tmp_path, monkeypatch):
    import smpvm.report.lorgraph as lorgraph
    monkeypatch.setattr(lorgraph.shutil, "which", lambda name: None)
    png = tmp_path / "g.png"
    rc, out, _ = lor(capsys, TINY, "--variant", "buggy", "--runs", "2", "--png", str(png))
    assert rc == 1 and f"PNG written to {png}" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_merging_sums_counts_and_keeps_first_sites():
    lg = LorGraph()
    e1 = {"from": "A", "to": "B", "first_site": "m.py:1", "second_site": "m.py:2", "count": 2,
          "types": ["EN"], "cpu": 0}
    e2 = dict(e1, first_site="m.py:7", second_site="m.py:8", count=5, cpu=1)
    lg.add_run([e1], {"A": "sleep mutex", "B": "sleep mutex"}, [], origin={"run": 0, "seed": 4})
    lg.add_run([e2], {"A": "sleep mutex", "B": "sleep mutex"}, [], origin={"run": 1, "seed": 5})
    lg.search()
    [e] = lg.edge_objects()
    assert (e.count, e.runs, e.first_site, e.cpu, e.origin["seed"]) == (7, 2, "m.py:1", 0, 4)
    assert lg.reversals() == []


def test_merged_graph_respects_readers_and_blessings():
    def run(types_ab, types_ba, blessed=False):
        lg = LorGraph()
        lg.add_run([{"from": "A", "to": "B", "types": types_ab, "count": 1, "blessed": blessed},
                    {"from": "B", "to": "A", "types": types_ba, "count": 1, "blessed": blessed}],
                   {}, [])
        lg.search()
        return len(lg.reversals())

    assert run(["EN"], ["EN"]) == 1
    assert run(["SR"], ["SR"]) == 0          # rwlock_t readers both ways: no deadlock
    assert run(["SR"], ["EN"]) == 1          # a writer waits for the reader
    assert run(["EN"], ["EN"], blessed=True) == 0


def test_merged_graph_finds_interrupt_conflicts_across_runs():
    lg = LorGraph()
    usage_safe = {"A": {"safe": [{"level": 3, "site": "m.py:1", "ctx": "irq:disk",
                                  "read": False}], "unsafe": []}}
    usage_unsafe = {"B": {"safe": [], "unsafe": [{"spl": 0, "site": "m.py:9", "ctx": "t",
                                                  "read": False}]}}
    edge = {"from": "A", "to": "B", "types": ["EN"], "count": 1}
    lg.add_run([edge], {}, [], usage_safe)
    lg.add_run([], {}, [], usage_unsafe)
    lg.search()
    [f] = lg.lock_findings()
    assert f.kind == "spl-violation" and f.merged_only
    assert f.extra["safe"]["site"] == "m.py:1" and f.extra["unsafe"]["site"] == "m.py:9"


@pytest.mark.parametrize("args,fragment", [
    ([TINY, "--runs", "0"], "--runs must be at least 1"),
    ([TINY, "--variant", "nope"], "has no variant 'nope'"),
    ([TINY, "--strategy", "nope"], "unknown strategy 'nope'"),
    (["tests/models/no_such.py::x"], "no model file"),
    ([TINY, "--set", "rounds=3"], "has no parameter 'rounds'"),
    ([TINY, "--dot", "/nonexistent-dir/g.dot"], "cannot write"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, args, fragment):
    rc, out, err = lor(capsys, *args)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("smpvm: error: ") and fragment in lines[0]
    assert "Traceback" not in err


def test_missing_target_is_a_usage_error(capsys):
    rc, out, err = lor(capsys)
    assert rc == 2 and "TARGETS" in err


def test_lor_does_not_import_networkx_until_it_reports():
    import subprocess
    import sys
    code = ("import sys, smpvm.cli.lor, smpvm.witness, smpvm.scenario;"
            "print('networkx' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout
    assert out.strip() == "False"


def test_dot_file_written_for_a_clean_run_too(capsys, tmp_path):
    dot = tmp_path / "clean.dot"
    rc, _ = lor_json(capsys, TINY, "--variant", "fixed", "--runs", "2", "--dot", str(dot))
    assert rc == 0 and os.path.getsize(dot) > 0
    assert list(read_dot(str(dot)).edges()) == [("lock a", "lock b")]


@pytest.mark.skipif(__import__("shutil").which("dot") is None, reason="graphviz not installed")
def test_png_is_drawn_with_graphviz_when_installed(capsys, tmp_path):
    png = tmp_path / "g.png"
    rc, _, _ = lor(capsys, TINY, "--variant", "buggy", "--runs", "2", "--png", str(png))
    assert rc == 1 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
