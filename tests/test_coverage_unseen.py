"""No proof without footprints: dfs watches shared state the engine cannot see.

State kept in plain Python objects that two CPUs reach (a list captured by
both threads' closures, a module-level dict) leaves no footprint, so before
this check the reduction ran one order of two racing steps and called the
model proven.  The models are in ``tests/models/coverage_cases.py``.
"""

from __future__ import annotations

import json
import os

from conftest import MODELS, cli, spec_of
from smpvm import load_target
from smpvm.search.exhaust import exhaust

CASES = os.path.join(MODELS, "coverage_cases.py")


def search(name, variant=None, **kw):
    scn = load_target(f"{CASES}::{name}")
    results = []
    report = exhaust(spec_of(scn, variant=variant, seed=0), scn=scn,
                     on_run=lambda i, r: results.append(r), **kw)
    return report, results


def outcomes(results):
    return {tuple(r.kinds()) for r in results}


def test_a_race_on_a_plain_list_is_found_and_the_list_named():
    report, _ = search("plain_list", "plain")
    assert report.exhausted and report.failing_runs >= 1
    assert report.unseen_shared == ["log (list, reached by CPU0, CPU1)"]
    assert "log (list, reached by CPU0, CPU1)" in report.summary()
    assert report.to_dict()["unseen_shared"] == report.unseen_shared


def test_the_same_race_on_a_shared_list_is_found_with_nothing_unseen():
    report, _ = search("plain_list", "tracked")
    assert report.exhausted and report.failing_runs >= 1
    assert report.unseen_shared == []


def test_a_module_global_dict_is_watched_and_its_lost_update_found():
    report, _ = search("global_dict")
    assert report.exhausted and report.failing_runs >= 1
    assert report.unseen_shared == ["global SEEN (dict, reached by CPU0, CPU1)"]


def test_reduction_with_the_watch_gives_every_outcome_plain_enumeration_gives():
    for name, variant in (("plain_list", "plain"), ("global_dict", None),
                          ("step_counter", "watched")):
        reduced, r1 = search(name, variant)
        plain, r2 = search(name, variant, reduction=False)
        assert reduced.exhausted and plain.exhausted
        assert outcomes(r1) == outcomes(r2), name
        assert reduced.runs <= plain.runs


def test_state_both_threads_only_read_costs_nothing():
    # Two independent threads: one schedule, whatever plain list they both hold.
    report, _ = search("read_only_list")
    assert report.exhausted and report.runs == 1 and report.unseen_shared == []


def test_declared_bookkeeping_is_left_out_and_watched_state_is_not():
    watched, _ = search("step_counter", "watched")
    declared, _ = search("step_counter", "declared")
    assert watched.unseen_shared == ["world (_World, reached by CPU0, CPU1)"]
    assert declared.unseen_shared == [] and declared.runs == 1
    assert watched.runs > declared.runs


def test_explore_json_names_the_unseen_state(capsys, tmp_path):
    rc, out, _ = cli(capsys, "explore", f"{CASES}::plain_list", "--variant", "plain",
                     "--strategy", "dfs", "--json", "--out", str(tmp_path / "x"))
    d = json.loads(out)
    assert rc == 1 and d["exhausted"] and d["failing_runs"] >= 1
    assert d["unseen_shared"] == ["log (list, reached by CPU0, CPU1)"]


def test_a_race_on_a_slot_of_a_plain_object_is_found_set_or_not():
    # Slotted objects are copied by reading their watched slots at once; a slot first
    # set by a thread, and a declared book-keeping slot, must read right too.
    for variant in ("set", "unset"):
        report, results = search("slotted", variant)
        assert report.exhausted and report.failing_runs >= 1, variant
        assert report.unseen_shared == ["obj (_Slotted, reached by CPU0, CPU1)"], variant
        assert ("assertion",) in outcomes(results) and () in outcomes(results)
