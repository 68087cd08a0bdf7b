"""Shrinking: a failing schedule comes back with the fewest preemptions that still fail.

The results must be real: every shrunk schedule is replayed here with the
plain ``Replay`` strategy and must end in the same violation kind, with no
more preemptions than the schedule it came from.  On the tiny models the bug
depth is known, so the shrinker must reach it.
"""

from __future__ import annotations

import os

from conftest import MODELS, spec_of
from smpvm import load_target, run_scenario
from smpvm.search.shrink import (FREE, STAY, SWITCH, Bounded, Guided, Recorder, Stay,
                          count_preemptions, shrink)
from smpvm.strategies.random import Random
from smpvm.strategies.replay import Replay

TINY = os.path.join(MODELS, "tiny.py")


def failing_runs(name, count, strategy=Random, variant="buggy"):
    """(seed, RunResult) of the first ``count`` failing random runs of a tiny scenario."""
    scn = load_target(f"{TINY}::{name}")
    out = []
    seed = 0
    while len(out) < count:
        r = run_scenario(scn, variant=variant, seed=seed, strategy=strategy())
        if r.violations:
            out.append((seed, r))
        seed += 1
    return scn, out


def preemptions_of(scn, seed, choices):
    return count_preemptions(spec_of(scn, variant="buggy", seed=seed), choices, scn=scn)


def test_recorder_classifies_each_decision():
    rec = Recorder(Stay())
    rec.begin(0)
    assert rec.pick("cpu", [0, 1], -1) == 0       # nobody ran yet: a free choice
    assert rec.pick("cpu", [0, 1], 0) == 0        # the last CPU goes on
    rec2 = Recorder(Guided([(1, SWITCH)]))
    rec2.begin(0)
    rec2.pick("cpu", [0, 1], 0)
    assert rec.decisions == [(0, FREE), (0, STAY)]
    assert rec2.decisions == [(1, SWITCH)]
    assert rec2.preemptions() == [0]


def test_guided_turns_removed_switches_into_stays_and_never_adds_one():
    schedule = [(1, SWITCH), (0, SWITCH), (2, FREE)]
    g = Guided(schedule, removed=frozenset({1}))
    g.begin(0)
    assert g.pick("cpu", [0, 1], 0) == 1          # kept preemption
    assert g.pick("cpu", [0, 1], 1) == 1          # removed: stays on the last CPU
    assert g.pick("cpu", [0, 1], 1) == 1          # CPU2 is gone: stay rather than switch
    assert g.pick("cpu", [0, 1], 1) == 1          # past the schedule: stay


def test_bounded_stops_preempting_after_the_budget():
    class Alternate(Random):
        def pick(self, kind, options, last):
            return next(c for c in options if c != last)
    b = Bounded(Alternate(), 2)
    b.begin(0)
    last, picks = -1, []
    for _ in range(8):
        last = b.pick("cpu", [0, 1], last)
        picks.append(last)
    switches = sum(1 for a, c in zip(picks, picks[1:]) if a != c)
    assert switches == 2, picks


def test_shrunk_schedules_still_fail_with_no_more_preemptions():
    scn, runs = failing_runs("check_then_use", 6)
    for seed, r in runs:
        kind = r.violations[0].kind
        s = shrink(spec_of(scn, variant="buggy", seed=seed), scn=scn, choices=r.choices, kind=kind)
        assert s is not None
        again = run_scenario(scn, variant="buggy", seed=seed, strategy=Replay(s.choices))
        assert kind in again.kinds()
        assert s.preemptions == preemptions_of(scn, seed, s.choices)
        assert s.preemptions <= s.original_preemptions == preemptions_of(scn, seed, r.choices)


def test_depth_2_atomicity_bug_shrinks_to_one_preemption():
    # the reader must be preempted between its check and its use: exactly one
    scn, runs = failing_runs("check_then_use", 5)
    depths = {shrink(spec_of(scn, variant="buggy", seed=seed), scn=scn, choices=r.choices,
                     kind="use-after-free").preemptions for seed, r in runs}
    assert depths == {1}


def test_depth_1_ordering_bug_needs_no_preemption():
    # running the consumer first is enough: no CPU has to be interrupted
    scn, runs = failing_runs("publish", 5)
    for seed, r in runs:
        s = shrink(spec_of(scn, variant="buggy", seed=seed), scn=scn, choices=r.choices,
                   kind="assertion")
        assert s.preemptions == 0
        again = run_scenario(scn, variant="buggy", seed=seed, strategy=Replay(s.choices))
        assert "assertion" in again.kinds()


def test_deadlock_keeps_its_kind_when_shrunk():
    scn, runs = failing_runs("abba", 12)
    deadlocks = [(seed, r) for seed, r in runs if "deadlock" in r.kinds()]
    assert deadlocks
    seed, r = deadlocks[0]
    s = shrink(spec_of(scn, variant="buggy", seed=seed), scn=scn, choices=r.choices,
               kind="deadlock")
    assert s.violation.kind == "deadlock"
    # both threads must hold their first lock: one preemption of the first thread
    assert s.preemptions == 1


def test_shrink_returns_none_when_the_schedule_does_not_fail():
    scn = load_target(f"{TINY}::check_then_use")
    r = run_scenario(scn, variant="fixed", seed=1, strategy=Random())
    assert shrink(spec_of(scn, variant="fixed", seed=1), scn=scn, choices=r.choices,
                  kind="use-after-free") is None


def test_shrinking_stops_when_its_replays_have_taken_their_steps():
    # a failure at the end of a million-step run would get a thousand replays, each the
    # whole run: the replays' steps are budgeted too, and a depth not shown minimal says so
    scn, runs = failing_runs("check_then_use", 6)
    seed, r = max(runs, key=lambda sr: sr[1].steps)
    spec = spec_of(scn, variant="buggy", seed=seed)
    free = shrink(spec, scn=scn, choices=r.choices, kind="use-after-free")
    tight = shrink(spec, scn=scn, choices=r.choices, kind="use-after-free", steps=r.steps)
    # the original run takes the budget: nothing more is tried
    assert tight.trials == 1 < free.trials
    assert free.minimal and not tight.minimal
    assert tight.preemptions <= tight.original_preemptions
    again = run_scenario(scn, variant="buggy", seed=seed, strategy=Replay(tight.choices))
    assert "use-after-free" in again.kinds()
