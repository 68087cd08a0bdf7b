"""dfs's book-keeping shortcuts give what the long way gives.

A run shares its first steps with the run before it, so the race index is
cut back to them and extended (``_Run.truncate``, ``_Run.extend``) instead of
built anew; the watch of plain shared state skips the copy of an object
whose slots hold the same objects as last time (``unseen.Watch.changed``);
and the parts of a shared search in one process follow the recipe the first
part found for that state (``DFS.looks``).  Each must be exactly the long way.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from smpvm import RunSpec, load_target
from smpvm.search import pardfs
from smpvm.search.executors import make_executor
from smpvm.strategies import unseen
from smpvm.strategies.dfs import ANYTHING, _Run, _Step

from conftest import ROOT

DOOMED = f"{ROOT}/models/freebsd/device_pager.py"

KEYS = [("lock", 1), ("lock", 2), ("field", 7, "x"), ("zone", 3), ("sched", 0)]

footprints = st.one_of(
    st.just(ANYTHING),
    st.dictionaries(st.sampled_from(KEYS), st.booleans(), max_size=3))
steps = st.lists(st.tuples(st.integers(0, 2), footprints), max_size=14)


def _index(run: _Run) -> tuple:
    """What the race analysis reads of a run's index (keys in any order)."""
    return (run.vc, run.nth, run._before, run._latest, run.anything,
            sorted(run.touches.items()), sorted(run.writes.items()))


def _steps(pairs) -> list:
    return [_Step(cpu, fp if fp is ANYTHING else dict(fp), (0, 1, 2), {}, None)
            for cpu, fp in pairs]


@settings(max_examples=300, deadline=None)
@given(first=steps, second=steps, keep=st.integers(0, 14))
def test_a_truncated_and_extended_index_is_the_index_built_anew(first, second, keep):
    before, after = _steps(first), _steps(second)
    keep = min(keep, len(before))
    run = _Run(3)
    run.extend(before)
    run.truncate(keep)
    run.extend(before[:keep] + after)
    fresh = _Run(3)
    fresh.extend(before[:keep] + after)
    assert _index(run) == _index(fresh)
    for i in range(len(fresh.vc)):
        for fp in (ANYTHING, {("lock", 1): True}, {("field", 7, "x"): False}):
            assert run.dependent_before(fp, i) == fresh.dependent_before(fp, i)


class _Slotted:
    __slots__ = ("count", "name", "items")


def test_the_watch_sees_a_slot_rebound_and_a_list_changed_in_place_but_not_an_equal_copy():
    obj = _Slotted()
    obj.count, obj.name, obj.items = 1000, "a", 5
    watch = unseen.Watch([unseen.Shared("obj", "_Slotted", (0, 1), obj)])
    assert watch.changed() == [] and watch.changed() == []
    obj.count = int("1000")  # an equal value, another object: the same copy
    assert watch.changed() == []
    obj.count = 1001
    assert [s.name for s in watch.changed()] == ["obj"]
    assert watch.changed() == []
    obj.items = []  # a list: looked into every time
    assert [s.name for s in watch.changed()] == ["obj"]
    obj.items.append(1)
    assert [s.name for s in watch.changed()] == ["obj"]
    assert watch.changed() == []


def _counting_walks(monkeypatch):
    """(spec, scenario, the list ``unseen.find`` appends to per walk) of a small search."""
    target = f"{DOOMED}::doomed_object"
    walks = []
    find = unseen.find
    monkeypatch.setattr(unseen, "find", lambda m: walks.append(1) or find(m))
    pardfs._LOOKS.clear()
    return (RunSpec(target, variant="fixed", params={"allocators": 1}, seed=0),
            load_target(target), walks)


def test_parts_in_one_process_find_the_unseen_state_once(monkeypatch):
    """Every part's runs look at the same first state; only the first part walks it."""
    spec, scn, walks = _counting_walks(monkeypatch)
    with make_executor(1) as ex:
        report = pardfs.exhaust_parallel(spec, ex, scn=scn, budget=2, chain=0)
    assert report.exhausted and report.runs == 4
    assert len(walks) == 1


def test_the_warm_up_run_before_workers_fork_leaves_them_its_first_look(monkeypatch):
    """The driver's warm-up run (``pardfs.warm_up``) looks once; what forked workers
    inherit lets their parts follow its recipe without walking the threads' state."""
    spec, scn, walks = _counting_walks(monkeypatch)
    pardfs.warm_up(spec, scn)
    assert len(walks) == 1
    with make_executor(1) as ex:
        report = pardfs.exhaust_parallel(spec, ex, scn=scn, budget=2)
    assert report.exhausted and report.runs == 4
    assert len(walks) == 1
