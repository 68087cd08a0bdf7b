"""``dfs``: exact schedule counts, the preemption bound, and the soundness of the reduction.

The models are in ``tests/models/dfs_cases.py``.  Counting schedules needs what
the engine calls a step: a thread's pending operation plus its code up to
the next yield, the first step being the code up to the first yield.  The
engine asks the strategy only where two or more CPUs could step, so a
schedule is the list of those answers; once one thread has finished, the
rest of the run is forced and asks nothing.
"""

from __future__ import annotations

import contextlib
import os
import sys
import types

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import MODELS, outcome, spec_of
from programs import program_thread, trimmed_to, twin
from smpvm import (Mutex, Replay, RwLock, SleepMutex, Strategy, Sx, load_target, make_strategy,
                   run_scenario, scenario)
from smpvm.search.exhaust import DfsReport, exhaust
from smpvm.strategies.dfs import DFS

CASES = os.path.join(MODELS, "dfs_cases.py")


def case(name):
    return load_target(f"{CASES}::{name}")


def search(name, variant=None, params=None, **kw):
    """Exhaust a case; returns (report, list of every RunResult in order).

    Without the symmetry of identical threads unless asked: the exact counts
    below are of the reduction alone."""
    kw.setdefault("symmetry", False)
    results = []
    scn = case(name)
    report = exhaust(spec_of(scn, variant=variant, params=params or {}, seed=0), scn=scn,
                     on_run=lambda i, r: results.append(r), **kw)
    return report, results


@contextlib.contextmanager
def waits_elided(on):
    """Searches made meanwhile elide lock waits (``DFS.ELIDE_WAITS``) or not."""
    was = DFS.ELIDE_WAITS
    DFS.ELIDE_WAITS = on
    try:
        yield
    finally:
        DFS.ELIDE_WAITS = was


# -- exact counts ------------------------------------------------------------------------------


def test_two_cpus_two_steps_have_six_schedules_without_reduction():
    # A = a1 a2, B = b1 b2: C(4, 2) = 6 interleavings.  The engine asks only
    # while both threads can step: "a1 a2 b1 b2" is two questions (both at
    # the start, both after a1; after a2 only B is left), "a1 b1 a2 b2" three.
    report, results = search("independent", reduction=False)
    assert report.runs == 6 and report.exhausted and report.failing_runs == 0
    assert {tuple(r.choices) for r in results} == {
        (0, 0), (0, 1, 0), (0, 1, 1), (1, 0, 0), (1, 0, 1), (1, 1)}
    assert report.pruned == 0


def test_independent_steps_need_one_schedule():
    # Nothing is shared, so every interleaving ends in the same state.  The
    # first run is a1 a2 b1 b2; the two states where B could have gone first
    # are the branches the reduction skipped.
    report, results = search("independent")
    assert report.runs == 1 and report.exhausted
    assert report.pruned == 2
    assert report.sleep_blocked == 0
    assert results[0].metrics["outcome"] == (2, 2)


def test_fully_dependent_steps_need_all_six():
    # Every step writes the one field, so each of the 6 interleavings is its
    # own equivalence class (and ends in its own value): nothing to prune.
    plain, plain_results = search("shared_field", reduction=False)
    reduced, reduced_results = search("shared_field")
    assert plain.runs == reduced.runs == 6
    assert reduced.pruned == 0 and reduced.sleep_blocked == 0
    values = {r.metrics["outcome"] for r in reduced_results}
    assert values == {r.metrics["outcome"] for r in plain_results}
    assert len(values) == 6 and (1234,) in values and (3412,) in values


def test_locked_counter_has_two_classes_for_two_threads():
    # Who takes the mutex first: 2 classes out of 36 schedules.  A thread
    # takes 5 steps (start, lock, load, store, unlock).  An attempt that
    # would wait is no step of the search (the thread cannot step until the
    # mutex is free), so no run waits.  (Both first steps only start the
    # threads, so the order of those is no class.)
    plain, _ = search("locked_counter", reduction=False)
    reduced, results = search("locked_counter")
    assert plain.runs == 36 and plain.failing_runs == 0
    assert reduced.runs == 2 and reduced.exhausted and reduced.failing_runs == 0
    assert sorted(r.steps for r in results) == [10, 10]


def test_with_waits_as_steps_locked_counter_has_four_classes():
    # Without the elision, whether the other thread tries while the mutex is
    # held and waits doubles the classes: its failed attempt is a step.
    with waits_elided(False):
        reduced, results = search("locked_counter")
    assert reduced.runs == 4 and reduced.exhausted and reduced.failing_runs == 0
    assert sorted(r.steps for r in results) == [10, 10, 11, 11]


def test_a_deadlock_is_found_with_waits_elided_and_names_its_waits():
    # Both threads end waiting, off the search tree, so the report is the engine's.
    plain, plain_results = search("abba", reduction=False)
    reduced, results = search("abba")
    assert reduced.runs < plain.runs
    deadlocks = [r for r in results if "deadlock" in r.kinds()]
    assert deadlocks and all(len(r.violations[-1].extra["waits"]) == 2 for r in deadlocks)
    assert {outcome(r) for r in results} == {outcome(r) for r in plain_results}


def test_pruned_is_a_lower_bound_on_the_schedules_saved():
    for name, variant in (("independent", None), ("locked_counter", None),
                          ("handshake", "fixed"), ("abba", None)):
        plain, _ = search(name, variant, reduction=False)
        reduced, _ = search(name, variant)
        assert 0 < reduced.pruned <= plain.runs - reduced.runs, name


class Enumerate(Strategy):
    """Reference enumeration: follow a prefix, then the lowest CPU; remember every choice point."""

    name = "enumerate"

    def __init__(self, prefix):
        self.prefix = list(prefix)

    def begin(self, seed):
        self.points = []

    def pick(self, kind, options, last):
        k = len(self.points)
        self.points.append(list(options))
        return self.prefix[k] if k < len(self.prefix) else options[0]


def all_schedules(scn, variant=None):
    """Every schedule, by the textbook recursion (independent of ``dfs``'s tree)."""
    out, todo = [], [[]]
    while todo:
        prefix = todo.pop()
        s = Enumerate(prefix)
        r = run_scenario(scn, variant=variant, seed=0, strategy=s)
        out.append(tuple(r.choices))
        for k in range(len(prefix), len(s.points)):
            todo.extend(list(r.choices[:k]) + [o] for o in s.points[k][1:])
    return out


def test_plain_enumeration_matches_the_textbook_recursion():
    for name, variant in (("locked_counter", None), ("handshake", "lost-wakeup"),
                          ("abba", None), ("two_preemptions", "buggy")):
        _, results = search(name, variant, reduction=False)
        reference = all_schedules(case(name), variant)
        assert sorted(tuple(r.choices) for r in results) == sorted(reference), name


def test_every_schedule_explored_is_distinct():
    for name, variant, params in (("locked_counter", None, {"threads": 3}),
                                  ("handshake", "lost-wakeup", {}), ("abba", None, {}),
                                  ("shared_field", None, {})):
        for reduction in (False, True):
            report, results = search(name, variant, params, reduction=reduction)
            choices = [tuple(r.choices) for r in results]
            assert len(set(choices)) == len(choices) == report.runs, (name, reduction)


# -- the preemption bound --------------------------------------------------------------------------


class CountPreemptions(Replay):
    """Replays a schedule and counts its preemptions (a switch away from a CPU that could go on)."""

    def begin(self, seed):
        super().begin(seed)
        self.preemptions = 0

    def pick(self, kind, options, last):
        cid = super().pick(kind, options, last)
        self.preemptions += last in options and cid != last
        return cid


def preemptions_of(name, variant, choices):
    s = CountPreemptions(choices)
    run_scenario(case(name), variant=variant, seed=0, strategy=s)
    return s.preemptions


def test_the_bug_needing_two_preemptions_is_found_only_with_a_bound_of_two():
    # Schedules with 0 preemptions: AABB, BBAA; with 1: ABBA, BAAB; the bug
    # needs A1 B1 A2 B2, which preempts A and then B.
    counts = {}
    for bound in (0, 1, 2):
        report, results = search("two_preemptions", "buggy", preemption_bound=bound)
        assert report.exhausted and not report.reduction
        assert all(preemptions_of("two_preemptions", "buggy", r.choices) <= bound
                   for r in results)
        counts[bound] = (report.runs, report.failing_runs)
    assert counts == {0: (2, 0), 1: (4, 0), 2: (6, 1)}
    bounded, _ = search("two_preemptions", "buggy", preemption_bound=1)
    assert bounded.summary() == "all 4 schedules with at most 1 preemption explored, none failed"
    assert bounded.to_dict()["exhausted"] is True
    assert bounded.beyond_bound > 0
    unbounded, _ = search("two_preemptions", "buggy")
    assert unbounded.failing_runs == 1 and unbounded.exhausted


def test_a_bounded_search_counts_only_schedules_within_the_bound():
    plain, results = search("locked_counter", reduction=False)
    by_count = {}
    for r in results:
        n = preemptions_of("locked_counter", None, r.choices)
        by_count[n] = by_count.get(n, 0) + 1
    for bound in (0, 1, 2):
        report, _ = search("locked_counter", preemption_bound=bound)
        assert report.runs == sum(v for k, v in by_count.items() if k <= bound)


# -- failures -------------------------------------------------------------------------------------


def test_failures_replay_exactly():
    for name, variant in (("two_preemptions", "buggy"), ("handshake", "lost-wakeup"),
                          ("abba", None)):
        report, _ = search(name, variant)
        assert report.failures and report.first_failure_run is not None
        for r in report.failures:
            again = run_scenario(case(name), variant=variant, seed=0,
                                 strategy=Replay(r.choices, timed=False))
            assert again.choices == r.choices
            assert [(v.kind, v.message, v.cpu) for v in again.violations] == \
                [(v.kind, v.message, v.cpu) for v in r.violations]
            assert again.metrics == r.metrics


def test_a_failing_schedule_keeps_its_lock_statistics():
    report, _ = search("abba")
    assert report.failures and all(r.lockstat for r in report.failures)


def test_stop_on_first_and_max_runs_end_the_search_early():
    first, _ = search("abba", reduction=False, stop_on_first=True)
    assert first.runs == 1 and first.failing_runs == 1 and not first.exhausted
    capped, _ = search("locked_counter", reduction=False, max_runs=5)
    assert capped.runs == 5 and not capped.exhausted
    assert "not exhausted" in capped.summary()


# -- soundness of the reduction -------------------------------------------------------------------

ALL_CASES = [("independent", None), ("shared_field", None), ("locked_counter", None),
             ("two_preemptions", "buggy"), ("two_preemptions", "fixed"), ("handshake", "fixed"),
             ("handshake", "lost-wakeup"), ("abba", None), ("interrupted", None), ("dice", None),
             ("late_interrupt", None)]


def test_reduction_reaches_every_outcome_and_every_failure_plain_enumeration_does():
    for name, variant in ALL_CASES:
        plain, plain_results = search(name, variant, reduction=False)
        reduced, reduced_results = search(name, variant)
        assert plain.exhausted and reduced.exhausted
        assert reduced.runs <= plain.runs
        assert {outcome(r) for r in reduced_results} == {outcome(r) for r in plain_results}, name
        failing = {outcome(r) for r in plain_results if r.failed}
        assert {outcome(r) for r in reduced_results if r.failed} == failing, name
        assert bool(reduced.failing_runs) == bool(plain.failing_runs)


def test_three_threads_on_one_mutex():
    plain, plain_results = search("locked_counter", params={"threads": 3}, reduction=False)
    reduced, reduced_results = search("locked_counter", params={"threads": 3})
    assert plain.runs == 6660
    assert reduced.runs < 60 and reduced.pruned > 0
    assert {outcome(r) for r in reduced_results} == {outcome(r) for r in plain_results}


DEVICE_PAGER = os.path.join(os.path.dirname(MODELS), os.pardir, "models", "freebsd",
                            "device_pager.py")


@pytest.mark.skipif(not os.path.isfile(DEVICE_PAGER), reason="no device pager model in this tree")
def test_a_shipped_model_keeps_its_outcomes_under_reduction():
    # Two threads mmapping one device (sx, mutexes, a zone, refcounts): 618
    # schedules, of which the reduction needs about a fifth.
    scn = load_target(f"{DEVICE_PAGER}::handle_race")
    for variant in scn.variants:
        seen = {}
        for reduction in (False, True):
            found = seen[reduction] = set()
            report = exhaust(spec_of(scn, variant=variant, seed=1), scn=scn, symmetry=False,
                             reduction=reduction, on_run=lambda i, r: found.add(outcome(r)))
            assert report.exhausted
        assert seen[True] == seen[False], variant


def test_interrupts_make_every_step_dependent():
    # An interrupt arrives by simulated time, which every step advances, so
    # no two steps commute and the reduction must not prune anything.
    plain, _ = search("interrupted", reduction=False)
    reduced, _ = search("interrupted")
    assert reduced.runs == plain.runs and reduced.pruned == 0


def test_an_interrupt_raised_mid_run_reaches_a_cpu_waiting_for_the_lock():
    # Lock waits are elided while nothing is timed.  Once the holder has raised the
    # interrupt, time matters: the handler may land on the other CPU, which may be
    # spinning for the lock, while the holder has it (seen 2) or after (seen 4, or 33
    # after the waiter's write); the search reaches each, with or without the elision.
    plain, plain_results = search("late_interrupt", reduction=False)
    expected = {r.metrics["outcome"] for r in plain_results}
    assert {(3, 2), (32, 33)} <= expected
    for elide in (True, False):
        with waits_elided(elide):
            reduced, results = search("late_interrupt")
        assert reduced.runs < plain.runs
        assert {r.metrics["outcome"] for r in results} == expected, elide


def test_draws_from_the_model_random_stream_are_ordered():
    # The two draws commute for footprints, but not for the values drawn.
    reduced, results = search("dice")
    assert reduced.runs == 2
    assert len({r.metrics["outcome"] for r in results}) == 2


# -- random programs (hypothesis) -----------------------------------------------------------------

#: Operations of a random thread; the number picks a field, a lock or a channel.
OPS = ["load", "load", "store", "store", "write", "lock", "lock", "lock", "unlock", "unlock",
       "try", "sleep", "msleep", "wake", "wake1"]
THREAD = st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, 5)), min_size=1, max_size=4)
PROGRAM = st.lists(THREAD, min_size=2, max_size=3)


def trimmed(program, budget=600):
    """The program with its longest threads cut until plain enumeration stays small.

    Each operation is about one step (a ``write`` joins the step before it)
    and a lock may need a release at the end; the bound is the number of
    interleavings of those steps.
    """
    return trimmed_to(program, lambda t: 1 + sum(op != "write" for op, _ in t)
                      + sum(op in ("lock", "try") for op, _ in t), budget)


def program_scenario(threads):
    """A scenario running ``threads`` over two fields, four locks of different kinds and two
    wait channels; every value read or written, and every wakeup count, lands in the metrics.
    Lock use is kept well formed as the thread runs: a lock already held (in any mode) is not
    taken again, an ``unlock`` releases the last lock taken, and all are released at the end."""

    def setup(m, variant):
        box = m.shared("shared", f0=0, f1=0)
        locks = [SleepMutex(m, "m0"), Sx(m, "sx"), Mutex(m, "fifo"), RwLock(m, "rw")]

        def thread(tid, body):
            def metric_name(what, i):
                return f"t{tid}" if what == "seen" else f"{what}{tid}.{i}"
            return program_thread(m, box, locks, body, 100 * tid, metric_name, True)
        for tid, body in enumerate(threads):
            m.spawn(thread(tid, body), name=f"T{tid}")
        m.on_quiescence(lambda: m.metric("final", (box.f0, box.f1)))

    return scenario()(setup).__smpvm_scenario__


def same_outcomes(program, elide=True):
    """Exhaust ``program`` with and without reduction; the sets of outcomes reached."""
    scn = program_scenario(program)
    outcomes = {}
    for reduction in (False, True):
        seen = set()
        # With waits as steps, the number of steps tells a wait (an extra step)
        # from none; equivalent schedules take the same steps, so it is part of
        # the outcome there.  Elided, a wait is no step, and no run waits but
        # the deadlocked ones.
        with waits_elided(elide):
            report = exhaust(spec_of(scn, seed=0), scn=scn, reduction=reduction,
                             symmetry=False, max_runs=50_000,
                             on_run=lambda i, r: seen.add(
                                 outcome(r) if elide else (outcome(r), r.steps)))
        assert report.exhausted
        outcomes[reduction] = seen
    return outcomes[False], outcomes[True]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(PROGRAM)
def test_random_programs_reach_the_same_outcomes_with_and_without_reduction(program):
    plain, reduced = same_outcomes(trimmed(program), elide=True)
    assert reduced == plain


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(PROGRAM)
def test_random_programs_with_waits_as_steps_reach_the_same_outcomes_and_steps(program):
    plain, reduced = same_outcomes(trimmed(program), elide=False)
    assert reduced == plain


def test_a_program_where_a_sleeping_cpu_is_not_the_one_to_run():
    # Found by the random programs: T2's read of f1 must come between T0's
    # first load and its store of f1, and T0's store of f0 before T1's second
    # load.  When T0 is asleep (its store of f1 was tried from an earlier
    # state), the reversal must start with T2, not with the sleeping T0.
    program = [[("load", 0), ("store", 1), ("store", 0)], [("load", 0), ("load", 0)],
               [("load", 1)]]
    for elide in (True, False):
        plain, reduced = same_outcomes(program, elide)
        assert reduced == plain and len(plain) == 6  # T1 sees 0,0 or 0,20 or 20,20; T2 0 or 10


def test_a_model_that_changes_from_run_to_run_is_reported_not_replayed_blindly():
    # Later runs take over the steps they share with the run before; a model
    # whose threads do something else on the same schedule must still be caught.
    from smpvm.violations import ModelError
    made = []

    def setup(m, variant):
        made.append(1)
        box = m.shared("box", x=0)

        def thread(extra):
            yield box.store("x", 1)
            for _ in range(extra):
                yield box.load("x")

        m.spawn(thread(len(made) % 3), name="A")
        m.spawn(thread(1), name="B")

    scn = scenario()(setup).__smpvm_scenario__
    for symmetry in (True, False):
        with pytest.raises(ModelError, match="not deterministic"):
            exhaust(spec_of(scn, seed=0), scn=scn, symmetry=symmetry)


# -- symmetry of identical threads ----------------------------------------------------------------


def test_identical_threads_are_searched_up_to_their_names():
    # locked_counter's threads run one function with equal arguments: the
    # schedules where T1 takes the mutex first mirror those where T0 does.
    plain, plain_results = search("locked_counter", reduction=False)
    for threads in (2, 3):
        alone, _ = search("locked_counter", params={"threads": threads})
        both, results = search("locked_counter", params={"threads": threads}, symmetry=True)
        assert both.exhausted and both.runs - both.sleep_blocked < alone.runs - alone.sleep_blocked
        assert both.symmetric == [tuple(f"T{i}" for i in range(threads))]
        assert "identical threads (T0, T1" in both.summary()
        if threads == 2:
            assert {outcome(r) for r in results} == {outcome(r) for r in plain_results}


def test_threads_that_differ_in_an_argument_are_not_symmetric():
    report, _ = search("shared_field", symmetry=True)
    assert report.symmetric == [] and report.runs == 6


def test_threads_whose_code_reads_which_cpu_runs_them_are_not_taken_as_identical():
    # Same code, same arguments, but T1 stores where T0 loads: holding T1 back
    # at the start would lose the schedule where T0 sees T1's store.
    def setup(m, variant):
        box = m.shared("box", x=0)

        def thread():
            if m.current.name == "T1":
                yield box.store("x", 1)
            else:
                m.metric("saw", (yield box.load("x")))

        m.spawn(thread(), name="T0")
        m.spawn(thread(), name="T1")

    scn = scenario()(setup).__smpvm_scenario__
    seen = {}
    for reduction in (False, True):
        found = seen[reduction] = set()
        report = exhaust(spec_of(scn, seed=0), scn=scn, reduction=reduction,
                         on_run=lambda i, r: found.add(r.metrics["saw"]))
        assert report.exhausted and report.symmetric == []
    assert seen[True] == seen[False] == {0, 1}


def test_threads_that_look_up_their_cpu_by_name_are_not_taken_as_identical(monkeypatch):
    # The same as above through getattr, where the attribute's name is only a string.
    # The model gets a module of its own: nothing else there reads ``m.current``.
    source = (
        "def setup(m, variant):\n"
        "    box = m.shared('box', x=0)\n"
        "    def thread():\n"
        "        if getattr(m, 'current').name == 'T1':\n"
        "            yield box.store('x', 1)\n"
        "        else:\n"
        "            m.metric('saw', (yield box.load('x')))\n"
        "    m.spawn(thread(), name='T0')\n"
        "    m.spawn(thread(), name='T1')\n")
    module = types.ModuleType("by_name_model")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(source, "<model>", "exec"), module.__dict__)
    scn = scenario()(module.setup).__smpvm_scenario__
    seen = set()
    report = exhaust(spec_of(scn, seed=0), scn=scn,
                     on_run=lambda i, r: seen.add(r.metrics["saw"]))
    assert report.exhausted and report.symmetric == [] and seen == {0, 1}


def twins_scenario(body, twins, other):
    """``twins`` threads running ``body`` with equal arguments, and one more running ``other``.

    Each twin's metrics are named after the ticket it takes first
    (``programs.twin``), so an outcome is compared as the multiset of the
    twins' metrics (which is which is what symmetry leaves open) together
    with everything else."""

    def setup(m, variant):
        box = m.shared("shared", f0=0, f1=0)
        locks = [SleepMutex(m, "m0"), Sx(m, "sx"), Mutex(m, "fifo"), RwLock(m, "rw")]

        tickets = m.shared("tickets", n=0)

        def metric_name(what, i):
            return "other.seen" if what == "seen" else f"other.{what}{i}"
        twins_args = (m, box, locks, body, 100)
        for t in range(twins):
            m.spawn(twin(program_thread, tickets, "twin", twins_args), name=f"twin{t}")
        m.spawn(program_thread(m, box, locks, other, 500, metric_name, False), name="other")
        m.on_quiescence(lambda: m.metric("final", (box.f0, box.f1)))

    return scenario()(setup).__smpvm_scenario__


def up_to_names(r, twins, steps=False):
    """A run's outcome with the twins' names left open (and its steps, if asked)."""
    per = {f"twin{t}": [] for t in range(twins)}
    rest = []
    for k, v in sorted(r.metrics.items()):
        name, _, what = k.partition(".")
        (per[name] if name in per else rest).append((what or k, repr(v)))
    return (tuple(r.kinds()), tuple(rest), tuple(sorted(tuple(v) for v in per.values())),
            r.steps if steps else None)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(THREAD, THREAD)
def test_random_twins_reach_every_outcome_plain_enumeration_does(body, other):
    body, other = list(body), list(other)
    while trimmed([body, body, other]) != [body, body, other]:
        (body if len(body) >= len(other) else other).pop()
    scn = twins_scenario(body, 2, other)
    for elide in (True, False):  # elided, no run waits but a deadlocked one: no steps compared
        seen = {}
        for reduction, symmetry in ((False, False), (True, True)):
            found = seen[symmetry] = set()
            with waits_elided(elide):
                report = exhaust(spec_of(scn, seed=0), scn=scn, reduction=reduction,
                                 symmetry=symmetry, max_runs=50_000,
                                 on_run=lambda i, r: found.add(up_to_names(r, 2, not elide)))
            assert report.exhausted
            assert report.symmetric == ([("twin0", "twin1")] if symmetry else [])
        assert seen[True] == seen[False], elide


def two_allocators(variant, seen_as, **kw):
    """Exhaust the doomed-object model with two allocators; (report, ``seen_as`` of each run)."""
    scn = load_target(f"{DEVICE_PAGER}::doomed_object")
    found = set()
    report = exhaust(spec_of(scn, variant=variant, params={"allocators": 2}, seed=1), scn=scn,
                     on_run=lambda i, r: found.add(seen_as(r)), **kw)
    return report, found


@pytest.mark.skipif(not os.path.isfile(DEVICE_PAGER), reason="no device pager model in this tree")
def test_the_doomed_object_model_keeps_its_outcomes_with_lock_waits_elided():
    # Two allocators and the terminator contend for dev_pager_mtx and the object's
    # lock: with waits as steps the search runs every order of failed attempts too.
    for variant in ("buggy", "extra-reference"):
        seen, runs = {}, {}
        for elide in (False, True):
            with waits_elided(elide):
                report, seen[elide] = two_allocators(variant, outcome)
            assert report.exhausted and report.failing_runs
            runs[elide] = report.runs
        assert seen[True] == seen[False] and runs[True] * 2 < runs[False], variant


@pytest.mark.skipif(not os.path.isfile(DEVICE_PAGER), reason="no device pager model in this tree")
def test_the_doomed_object_model_keeps_its_outcomes_under_symmetry():
    # Two identical allocators: the fixed variant stays clean, the buggy one
    # fails in the same ways, with about half the schedules.
    for variant in ("buggy", "extra-reference"):
        seen, runs = {}, {}
        for symmetry in (False, True):
            report, seen[symmetry] = two_allocators(variant, lambda r: tuple(r.kinds()),
                                                    symmetry=symmetry)
            assert report.exhausted and bool(report.symmetric) == symmetry
            runs[symmetry] = report.runs
        assert seen[True] == seen[False] and runs[True] < runs[False], variant


# -- the strategy on its own ----------------------------------------------------------------------


@pytest.mark.skipif(not os.path.isfile(DEVICE_PAGER), reason="no device pager model in this tree")
def test_a_searchs_machines_are_freed_without_the_cycle_collector():
    """Each schedule's machine is a web of cycles (CPUs, locks, threads, the witness);
    once the run is analysed the search takes it apart, so that reference counting
    frees it then.  The run's result stays whole."""
    import gc
    import weakref
    from smpvm.machine import Machine
    made, edges = [], []
    real_init = Machine.__init__

    def tracked(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        made.append(weakref.ref(self))
    scn = load_target(f"{DEVICE_PAGER}::doomed_object")
    gc.disable()
    Machine.__init__ = tracked
    try:
        report = exhaust(spec_of(scn, variant="fixed", params={"allocators": 1}, seed=1),
                         scn=scn, on_run=lambda i, r: edges.append(len(r.witness_edges)))
        alive = [ref for ref in made if ref() is not None]
    finally:
        Machine.__init__ = real_init
        gc.enable()
    assert report.exhausted and not report.failing_runs
    assert len(made) == report.runs == len(edges) and all(edges)
    assert alive == []


def test_make_strategy_dfs_runs_the_lowest_cpu_first():
    s = make_strategy("dfs")
    assert isinstance(s, DFS) and s.name == "dfs" and not s.timed
    r = run_scenario(case("shared_field"), seed=0, strategy=s)
    assert r.choices == [0, 0] and r.metrics["outcome"] == (1234,)  # a1 a2 b1 b2
    assert make_strategy("dfs", preemption_bound=2).describe() == \
        {"name": "dfs", "preemption_bound": 2, "reduction": False, "symmetry": False}


def test_report_summary_and_json_shape():
    report, _ = search("independent")
    assert isinstance(report, DfsReport)
    assert report.summary() == \
        "all 1 schedules explored, none failed; the reduction saved at least 2"
    d = report.to_dict()
    assert d["exhausted"] is True and d["runs"] == 1 and d["pruned"] == 2
