"""``dfs`` over type-stable memory: a free that no pointer outlives is not ordered with
another CPU's allocation, and nothing a model can see is lost by that.

Random programs allocate and free items of a ``nofree`` zone, publish pointers
through a shared struct, keep stale ones, read through them, compare them and
list the live items; plain enumeration and the reduced search must reach the
same outcomes (violation kinds and every value seen, none of which names a
slot).  The fixed doomed-object model, whose frees leave no pointer behind,
shows what it saves.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import outcome, spec_of
from programs import heap_thread, trimmed_to, twin
from smpvm import Zone, load_target, scenario
from smpvm.search.exhaust import exhaust

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOOMED = os.path.join(ROOT, "models", "freebsd", "device_pager.py") + "::doomed_object"

#: Operations of a thread; the number picks one of the two published pointers.
OPS = ["alloc", "alloc", "free", "free", "free-keep", "publish", "take", "take", "clear",
       "drop", "read", "same", "live", "alive", "link", "follow", "renew"]
THREAD = st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, 1)), min_size=1, max_size=5)
PROGRAM = st.lists(THREAD, min_size=2, max_size=3)


def trimmed(program, budget=1500):
    """The program with its longest threads cut until plain enumeration stays small
    (each operation about one step)."""
    return trimmed_to(program, lambda t: 1 + len(t), budget)


def heap_scenario(threads, check_generation, twins=0):
    """``threads`` over a ``nofree`` zone and a struct of two published pointers; the
    first ``twins`` of them run with equal arguments (named twin0, twin1, ...)."""
    def setup(m, variant):
        zone = Zone(m, "OBJ", {"tag": 0, "link": None}, type_name="obj", nofree=True,
                    check_generation=check_generation)
        ptrs = m.shared("ptrs", p0=None, p1=None, n=0)
        ptrs.p0 = zone.new(tag=-1)
        tickets = m.shared("tickets", n=0)
        twins_args = (m, zone, ptrs, 100, threads[0])
        for tid, body in enumerate(threads):
            if tid < twins:
                m.spawn(twin(heap_thread, tickets, "twin", twins_args), name=f"twin{tid}")
            else:
                m.spawn(heap_thread(m, zone, ptrs, 10 * tid, body, f"T{tid}.{{}}{{}}".format),
                        name=f"T{tid}")
        m.on_quiescence(lambda: m.metric("live", tuple(o.tag for o in zone.live_items())))

    return scenario()(setup).__smpvm_scenario__


def outcomes(program, check_generation, reduction, symmetry=False):
    scn = heap_scenario(program, check_generation)
    seen = set()
    report = exhaust(spec_of(scn, seed=0), scn=scn, reduction=reduction, symmetry=symmetry,
                     max_runs=50_000, on_run=lambda i, r: seen.add(outcome(r)))
    assert report.exhausted
    return seen, report.runs


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(PROGRAM, st.booleans())
def test_random_heap_programs_reach_the_same_outcomes_with_and_without_reduction(program,
                                                                                 check_gen):
    program = trimmed(program)
    plain, _ = outcomes(program, check_gen, reduction=False)
    reduced, _ = outcomes(program, check_gen, reduction=True)
    assert reduced == plain


def twin_outcome(r):
    """``outcome`` with the twins' names left open: the symmetry stands for each
    schedule's renamings, so what the twins saw counts as a multiset."""
    kinds, metrics = outcome(r)
    own = sorted(tuple((k.split(".")[1], v) for k, v in metrics if k.startswith(f"twin{t}."))
                 for t in (0, 1))
    rest = tuple((k, v) for k, v in metrics if not k.startswith("twin"))
    return kinds, tuple(own), rest


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(THREAD, THREAD, st.booleans())
def test_random_heap_twins_reach_every_outcome_plain_enumeration_does(body, other, check_gen):
    """Two identical threads (the search takes them up to their names) beside a third."""
    program = trimmed([body, body, other])
    if program[0] != program[1]:
        program[1] = list(program[0])  # trimming cut one twin only: cut both alike
    scn = heap_scenario(program, check_gen, twins=2)
    seen = {}
    for reduction in (False, True):
        found = set()
        report = exhaust(spec_of(scn, seed=0), scn=scn, reduction=reduction, symmetry=reduction,
                         max_runs=50_000, on_run=lambda i, r: found.add(twin_outcome(r)))
        assert report.exhausted
        assert report.symmetric == ([("twin0", "twin1")] if reduction else [])
        seen[reduction] = found
    assert seen[True] == seen[False]


def test_a_stale_pointer_orders_the_free_with_the_next_allocation():
    """T0 keeps a pointer past its free and reads through it later; T1 allocates.  The
    allocation aliases the stale pointer only when it comes after the free, so both
    orders are searched: the read finds the new item's tag, or the freed item (reported)."""
    program = [[("alloc", 0), ("free-keep", 0), ("read", 0)], [("alloc", 0)]]
    seen, _ = outcomes(program, check_generation=False, reduction=True)
    assert {(o[0], dict(o[1]).get("T0.at2")) for o in seen} == {((), "10"),
                                                               (("use-after-free",), None)}


def test_a_free_no_pointer_outlives_is_not_ordered_with_another_allocation():
    """T0 frees and forgets its item; T1 allocates.  Which slot T1 gets is all that the
    order changes: one schedule class where there were two."""
    def runs(free):
        return outcomes([[("alloc", 0), (free, 0), ("take", 1)], [("alloc", 0)]],
                        check_generation=True, reduction=True)[1]
    # T1's allocation before T0's, or after it and before or after T0's free
    assert (runs("free"), runs("free-keep")) == (2, 3)


def test_the_fixed_doomed_object_model_with_three_allocators_needs_far_fewer_schedules():
    scn = load_target(DOOMED)
    report = exhaust(spec_of(scn, variant="fixed", params={"allocators": 3}, seed=1), scn=scn)
    assert report.exhausted and report.failing_runs == 0
    assert report.runs < 1000  # 3,189 with every free ordered with every allocation
