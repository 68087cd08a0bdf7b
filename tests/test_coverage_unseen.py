"""No proof without footprints: dfs watches shared state the engine cannot see.

State kept in plain Python objects that two CPUs reach (a list captured by
both threads' closures, a module-level dict) leaves no footprint, so before
this check the reduction ran one order of two racing steps and called the
model proven.  The models are in ``tests/models/coverage_cases.py``.
"""

from __future__ import annotations

import json
import os

import pytest

from conftest import MODELS, cli, spec_of
from smpvm import load_target, pause, scenario
from smpvm.scenario import scenarios_in
from smpvm.search.exhaust import exhaust
from smpvm.strategies import unseen

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


def found_as_plain_enumeration_finds(name, variant):
    """A check-then-act race on state outside the model API: the reduced search must
    see what plain enumeration sees (it fails without the watch, after one or two
    schedules).  The reduced report."""
    reduced, r1 = search(name, variant)
    plain, r2 = search(name, variant, reduction=False)
    assert reduced.exhausted and plain.exhausted and plain.failing_runs
    assert outcomes(r1) == outcomes(r2)
    assert reduced.runs <= plain.runs and reduced.unseen_shared
    return reduced


@pytest.mark.parametrize("variant", ["tuple", "callback", "via-object"])
def test_a_plain_list_held_through_a_zone_items_field_is_watched(variant):
    # The field itself is the engine's (its writes are footprints), but what a tuple
    # or a function there holds is not: appending to the list inside leaves none.
    report = found_as_plain_enumeration_finds("list_in_an_item", variant)
    assert "list" in report.unseen_shared[0]


@pytest.mark.parametrize("variant", ["deque", "array", "ndarray", "counter", "random",
                                     "bound", "weakref"])
def test_state_python_cannot_read_field_by_field_is_watched(variant):
    found_as_plain_enumeration_finds("opaque_state", variant)


@pytest.mark.parametrize("variant", ["spawn", "field", "found", "list-entry", "dict-entry",
                                     "appended"])
def test_a_plain_list_handed_over_through_the_model_api_is_watched(variant):
    # Shared from the start inside a SharedList or SharedDict, or handed over during
    # the run: the search looks for shared state again after such a step.
    found_as_plain_enumeration_finds("handed_over", variant)


@pytest.mark.parametrize("variant", ["task", "work", "rcu", "callout"])
def test_a_plain_list_that_deferred_work_reaches_is_watched(variant):
    found_as_plain_enumeration_finds("deferred_work", variant)


@pytest.mark.parametrize("variant", ["thread", "helper"])
def test_a_closure_variable_that_nonlocal_code_rebinds_is_watched(variant):
    found_as_plain_enumeration_finds("nonlocal_state", variant)


@pytest.mark.parametrize("name", ["class_state", "machine_state"])
@pytest.mark.parametrize("variant", ["counter", "list"])
def test_attributes_of_a_model_class_or_of_the_machine_are_watched(name, variant):
    found_as_plain_enumeration_finds(name, variant)


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


# -- later runs follow the first look's recipe ---------------------------------------------------

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: Models whose threads share plain objects in several ways, with short runs.
RECIPE_CASES = [(path, scn.name, v)
                for path in (CASES, os.path.join(MODELS, "dfs_cases.py"),
                             os.path.join(MODELS, "threads_cases.py"),
                             os.path.join(ROOT, "models", "freebsd", "device_pager.py"))
                for scn in scenarios_in(path) for v in scn.variants]


def _as_found(shared):
    def identity(s):  # globals, cells, classes, the machine: wrappers made anew each time
        if s.kind == "global":
            return id(s.node.ns), s.node.name
        if s.kind == "cell":
            return id(s.node.cell)
        return id(s.node.target) if s.kind in ("class", "machine") else id(s.node)
    return [(s.name, s.kind, s.cpus, identity(s)) for s in shared]


def followed_recipes(scn, variant, monkeypatch) -> list:
    """Exhaust a few runs, each run after the first walking as well as following the
    first look's recipe; both must find the same objects.  The objects found each time."""
    followed = []
    refind = unseen.refind

    def checked(m, recipe):
        shared = refind(m, recipe)
        assert shared is not None, "the recipe led nowhere in a run that reached the same state"
        assert _as_found(shared) == _as_found(unseen.find(m)[0])
        followed.append(len(shared))
        return shared

    monkeypatch.setattr(unseen, "refind", checked)
    exhaust(spec_of(scn, variant=variant, seed=1), scn=scn, max_runs=3)
    return followed


def scenario_named(path, name):
    return next(s for s in scenarios_in(path) if s.name == name)


@pytest.mark.parametrize("path,name,variant", RECIPE_CASES,
                         ids=[f"{os.path.basename(p)}::{n}[{v}]" for p, n, v in RECIPE_CASES])
def test_a_later_run_finds_by_the_recipe_what_the_walk_finds(path, name, variant, monkeypatch):
    followed_recipes(scenario_named(path, name), variant, monkeypatch)


def test_the_doomed_object_models_runs_follow_the_recipe(monkeypatch):
    # its threads share the pager object: every run after the first finds it by the recipe
    path = os.path.join(ROOT, "models", "freebsd", "device_pager.py")
    assert followed_recipes(scenario_named(path, "doomed_object"), "fixed", monkeypatch) == [1, 1]


class _Cell:
    def __init__(self):
        self.value = 0


def test_state_reached_only_through_a_set_is_walked_again_in_every_run(monkeypatch):
    # a set's order is no recipe: each run finds the object by walking, and still finds it
    def setup(m, variant):
        cells = {_Cell()}

        def thread():
            for cell in cells:
                cell.value += 1
                yield pause()

        m.spawn(thread(), name="A")
        m.spawn(thread(), name="B")

    scn = scenario()(setup).__smpvm_scenario__
    assert followed_recipes(scn, None, monkeypatch) == []
    report = exhaust(spec_of(scn, seed=1), scn=scn)
    assert report.unseen_shared == ["cells[0] (_Cell, reached by CPU0, CPU1)"]
