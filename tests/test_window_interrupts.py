"""Interrupts given a window: where they land is a scheduling choice.

An interrupt source with ``window=`` arrives once, at a yield point of its
CPU that the strategy picks (an ``"irq"`` decision).  The driver model
``models/freebsd/bufq_intr.py`` has a bug only one placement shows: every
strategy must find it, ``dfs`` must cover every placement of the fixed
driver, and the placement must survive saving, replay and shrinking.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import ROOT, cli, spec_of
from smpvm import (SPLBIO, Callout, ModelError, RunSpec, Timer, load_target, run_scenario,
                   scenario, splbio, splx, work)
from smpvm.search.exhaust import exhaust
from smpvm.search.explore import Exploration
from smpvm.search.failures import load_failure
from smpvm.search.iterative import iterate
from smpvm.search.shrink import shrink
from smpvm.strategies.base import DELIVER, NOT_YET
from smpvm.strategies.bounding import DELAY, PREEMPTION
from smpvm.strategies.random import Random
from smpvm.strategies.replay import Replay, ReplayMismatch

BUFQ = "models/freebsd/bufq_intr.py::strategy_vs_intr"
SMPVM = os.path.join(os.path.dirname(sys.executable), "smpvm")


@pytest.fixture(autouse=True)
def _in_project_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def window_scenario(window, steps=4, level=SPLBIO, masked_at=None, raised=False):
    """One thread of ``steps`` works of 100 ns on CPU0; an interrupt given ``window`` counts
    the thread's steps done when it lands.  ``masked_at``: the step that runs at ``level``."""

    def setup(m, variant):
        box = m.shared("box", done=0, seen=-1)

        def handler():
            yield box.store("seen", (yield box.load("done")))

        def thread():
            for i in range(steps):
                s = (yield splbio()) if i == masked_at else None
                yield work(100)
                yield box.store("done", i + 1)
                if s is not None:
                    yield splx(s)

        if raised:
            m.interrupt(0, level, handler, name="dev", window=window)
        else:
            m.interrupt_source("dev", level, handler, cpu=0, window=window)
        m.spawn(thread(), name="T", cpu=0)
        m.on_quiescence(lambda: m.metric("seen", box.seen))

    return scenario()(setup).__smpvm_scenario__


def explore(strategy, variant="buggy", runs=100, tmp=None, stop=True):
    return Exploration(BUFQ, variant=variant, strategy=strategy, runs=runs, seed=0, workers=1,
                       out=str(tmp), stop_on_first=stop).run()


# -- the driver race ------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["random", "pct", "dfs", "portfolio"])
def test_the_window_race_is_found_within_100_runs(strategy, tmp_path):
    report = explore(strategy, tmp=tmp_path)
    assert report.violations.get("deadlock"), report.violations
    assert report.first["deadlock"].run < 100


def test_placements_are_recorded_as_choices():
    """The driver has one CPU: every choice of its runs places the interrupt."""
    scn = load_target(BUFQ)
    r = run_scenario(scn, variant="buggy", seed=0, strategy=Random())
    assert r.choices  # the placement was a decision
    assert all(c in (NOT_YET, DELIVER) for c in r.choices)


def test_dfs_covers_every_placement_of_the_fixed_driver():
    scn = load_target(BUFQ)
    rep = exhaust(spec_of(scn, variant="fixed"), scn=scn)
    assert rep.exhausted and rep.failing_runs == 0
    assert rep.arrival_windows and not rep.reduction
    assert rep.runs >= 3  # the interrupt before, between and after the thread's unmasked code
    assert "all" in rep.summary() and "every placement" in rep.summary()
    buggy = exhaust(spec_of(scn, variant="buggy"), scn=scn)
    assert buggy.exhausted and buggy.failing_runs == 1  # exactly one placement deadlocks
    assert buggy.runs > rep.runs  # the buggy insert runs unmasked: more placements


def test_bounded_searches_count_a_landing_as_one_deviation():
    scn = load_target(BUFQ)
    for measure in (PREEMPTION, DELAY):
        rep = iterate(spec_of(scn, variant="buggy"), scn=scn, measure=measure,
                      stop_on_first=True)
        assert rep.first_failure_bound == 1, measure  # bound 0 lets it wait to the end


# -- saved, replayed, shrunk -------------------------------------------------------------------------


def test_a_saved_failure_replays_byte_for_byte(capsys, tmp_path):
    report = explore("random", tmp=tmp_path)
    path = report.first["deadlock"].path
    failure = load_failure(path)
    assert DELIVER in failure.choices
    code, first, _ = cli(capsys, "replay", path)
    assert code == 1 and "reproduced deadlock" in first
    code, again, _ = cli(capsys, "replay", path)
    assert again == first
    fresh = subprocess.run([SMPVM, "replay", path], cwd=ROOT, capture_output=True, text=True)
    assert fresh.returncode == 1
    assert fresh.stdout == first  # a new process (another hash seed) tells the same story
    traces = []
    for name in ("a.json", "b.json"):
        code, told, _ = cli(capsys, "replay", path, "--narrate", "--trace", tmp_path / name)
        assert code == 1 and "irq xxintr begin" in told
        traces.append((told.replace(name, "T"), (tmp_path / name).read_bytes()))
    assert traces[0] == traces[1]
    # the placement is part of the schedule: moving it loses the bug
    moved = list(failure.choices)
    at = moved.index(DELIVER)
    moved[at] = NOT_YET
    r = run_scenario(load_target(BUFQ), variant="buggy", seed=failure.seed,
                     strategy=Replay(moved, then=Random()))
    assert "deadlock" not in r.kinds() or r.choices.index(DELIVER) != at


def test_the_shrinker_keeps_the_placement():
    scn = load_target(BUFQ)
    spec = spec_of(scn, variant="buggy")
    found = None
    for seed in range(200):
        r = run_scenario(scn, variant="buggy", seed=seed, strategy=Random())
        if "deadlock" in r.kinds():
            found = r
            break
    assert found is not None
    s = shrink(spec.replace(seed=found.seed), scn=scn, choices=found.choices, kind="deadlock")
    assert s is not None and s.violation.kind == "deadlock"
    assert s.preemptions == 1  # the interrupt landing is the one deviation
    assert s.choices.count(DELIVER) == 1
    again = run_scenario(scn, variant="buggy", seed=found.seed, strategy=Replay(s.choices))
    assert "deadlock" in again.kinds()


def test_a_replay_that_no_longer_fits_a_placement_says_so():
    scn = load_target(BUFQ)
    with pytest.raises(ReplayMismatch, match="irq decision"):
        run_scenario(scn, variant="buggy", seed=0, strategy=Replay([7]))


# -- counts ------------------------------------------------------------------------------------------


def dfs_outcomes(scn):
    seen = []
    rep = exhaust(spec_of(scn), scn=scn, on_run=lambda i, r: seen.append(r.metrics["seen"]))
    assert rep.exhausted and rep.failing_runs == 0
    return rep.runs, sorted(seen)


def test_dfs_schedules_grow_with_the_placements_of_the_window():
    # 4 works of 100 ns: a wider window opens at more of the thread's yield points
    runs = [dfs_outcomes(window_scenario((0, end)))[0] for end in (0, 150, 350)]
    assert runs[0] == 1  # a window that is a point: one placement
    assert runs[0] < runs[1] < runs[2]
    n, seen = dfs_outcomes(window_scenario("any"))
    assert n > runs[2]
    assert set(seen) == {0, 1, 2, 3, 4}  # it landed before, between and after every step


def test_a_masked_stretch_has_no_placements():
    plain, seen_plain = dfs_outcomes(window_scenario("any"))
    masked, seen = dfs_outcomes(window_scenario("any", masked_at=1))
    # step 1 at splbio: the interrupt cannot land between its work and its store
    assert masked == plain - 1
    assert seen.count(1) == seen_plain.count(1) - 1


def test_raised_interrupts_take_a_window_too():
    """``m.interrupt(..., window=(a, b))``: what a timer's slack or a device's latency needs."""
    n, seen = dfs_outcomes(window_scenario((100, 300), raised=True))
    assert n > 1 and len(set(seen)) > 1


def test_the_interrupt_always_arrives():
    scn = window_scenario("any")
    for seed in range(30):
        r = run_scenario(scn, seed=seed, strategy=Random())
        assert r.interrupts["dev"]["delivered"] == 1
        assert r.metrics["seen"] >= 0
    timed = {run_scenario(scn, seed=seed).metrics["seen"] for seed in range(30)}
    assert len(timed) > 1  # the default timed view draws the placement from the seed too


def test_window_arguments_are_checked():
    def make(**kw):
        def setup(m, variant):
            m.interrupt_source("dev", SPLBIO, lambda: iter(()), cpu=0, **kw)
            m.spawn(iter_work(), cpu=0)
        return scenario()(setup).__smpvm_scenario__

    def iter_work():
        yield work(1)

    for kw, msg in [({"window": (5, 1)}, "0 <= start_ns <= end_ns"),
                    ({"window": "sometime"}, "window must be"),
                    ({"window": (0, 10), "at_ns": [1]}, "exactly one of")]:
        with pytest.raises(ModelError, match=msg):
            run_scenario(make(**kw), seed=0)


def test_the_cli_explores_the_model(capsys, tmp_path):
    code, out, err = cli(capsys, "explore", BUFQ, "--variant", "fixed", "--strategy", "dfs",
                         "--workers", 1, "--out", tmp_path)
    assert code == 0
    assert "schedules explored, none failed" in out and "all" in out
    assert "every placement" in out + err


def timer_scenario(kind, slack):
    """CPU0 arms a timer (or a callout) on itself, then works four steps; the callback
    notes how many were done when it ran."""

    def setup(m, variant):
        box = m.shared("box", done=0, seen=-1)

        def callback():
            yield box.store("seen", (yield box.load("done")))

        def thread():
            if kind == "timer":
                yield Timer(m, "t", callback).mod_timer(100, slack_ns=slack)
            else:
                yield Callout(m, "co", cpu=0).reset(100, callback, precision_ns=slack)
            for i in range(4):
                yield work(100)
                yield box.store("done", i + 1)

        m.spawn(thread(), name="T", cpu=0)
        m.on_quiescence(lambda: m.metric("seen", box.seen))

    return scenario()(setup).__smpvm_scenario__


@pytest.mark.parametrize("kind", ["timer", "callout"])
def test_a_timer_with_slack_fires_wherever_the_search_puts_it(kind):
    fixed, seen_fixed = dfs_outcomes(timer_scenario(kind, 0))
    assert fixed == 1 and len(set(seen_fixed)) == 1  # no slack: one firing point
    n, seen = dfs_outcomes(timer_scenario(kind, 250))
    assert n > 1 and len(set(seen)) > 1


def test_dfs_starts_its_record_over_when_a_later_schedule_raises_a_window(tmp_path):
    # The first schedule raises no window; the second does, after one run was counted:
    # the search starts over without reduction, and runs.csv and the counts with it.
    target = "tests/models/late_window.py::late"
    restarts = []
    plain = exhaust(RunSpec(target), on_restart=lambda: restarts.append(1))
    assert restarts == [1] and plain.exhausted and plain.arrival_windows
    rep = Exploration(target, strategy="dfs", workers=1, out=tmp_path).run()
    with open(tmp_path / "runs.csv", encoding="utf-8") as fp:
        runs = [line.split(",")[0] for line in fp.read().splitlines()[1:]]
    assert runs == [str(i) for i in range(plain.runs)]
    assert (rep.runs, rep.failing_runs) == (plain.runs, plain.failing_runs)
    assert rep.first_failure_run == plain.first_failure_run
