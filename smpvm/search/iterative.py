"""Iterative bounding: every schedule within bound 0, then within bound 1, and so on.

The driver of ``smpvm.strategies.bounding.BoundedTree``: for each bound in
turn it runs the tree of schedules that stay within it until the tree is
used up, so when the first failure turns up at bound b, every schedule
within b - 1 has run and passed: b is the fewest preemptions (or delays) the
failure needs.  A schedule that a lower bound already ran (its cost is below
the current bound) runs again only to reach the new branches below it; it
is counted as a repeat, not as a new schedule.  When no choice was ever cut
by the bound, the whole space has run and the search stops early.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..scenario import RunSpec, run_spec
from ..strategies.bounding import PREEMPTION, BoundedTree
from .failon import cut_at_bound


@dataclass
class BoundReport:
    """What an iterative bounded search found."""

    measure: str = PREEMPTION
    #: Schedules run, repeats included.
    runs: int = 0
    #: Runs of a schedule that a lower bound had already run.
    repeats: int = 0
    #: Highest bound whose schedules all ran (-1: not even bound 0).
    bound_done: int = -1
    #: True when no schedule of the model was left out (the bound never cut one).
    exhausted: bool = False
    failing_runs: int = 0
    #: New schedules run before the first failing one (so 0: the first one failed).
    first_failure_run: int | None = None
    #: The bound of the first failure: the fewest preemptions or delays it needs.
    first_failure_bound: int | None = None
    #: RunResult of each failing schedule, in order.
    failures: list = field(default_factory=list)
    #: Some run had SimPy processes of the model's (devices): their timing was not enumerated.
    devices: bool = False
    #: Always empty: without a reduction, state the engine cannot see takes nothing away.
    unseen_shared: list = field(default_factory=list)
    #: Index of the schedule that ran into the step bound, where the search stopped
    #: (``failon.cut_at_bound``), or None.
    cut_at: int | None = None

    @property
    def schedules(self) -> int:
        return self.runs - self.repeats

    def summary(self) -> str:
        unit = "preemption" if self.measure == PREEMPTION else "delay"
        if self.exhausted:
            what = f"all {self.schedules} schedules explored"
        elif self.bound_done >= 0:
            what = f"{self.schedules} schedules explored, all with at most {self.bound_done} {unit}s"
        else:
            what = f"{self.schedules} schedules explored (bound 0 not finished)"
        if self.cut_at is not None:
            what += f", stopped at schedule {self.cut_at}, which ran into the step bound"
        if not self.failing_runs:
            return f"{what}, none failed"
        return (f"{what}, {self.failing_runs} failed (first: schedule {self.first_failure_run}, "
                f"{self.first_failure_bound} {unit}(s))")


def iterate(spec: RunSpec, *, scn=None, measure: str = PREEMPTION, max_bound: int | None = None,
            max_runs: int | None = None, stop_on_first: bool = False, kind: str | None = None,
            on_run=None, counts=None) -> BoundReport:
    """Bounds 0, 1, ... up to ``max_bound`` (None: until the space is used up or a budget ends).

    ``kind``: only violations of that kind count as failures (``counts(kind)``:
    those it says yes to).  ``on_run(index,
    result)`` is called for every new schedule; ``max_runs`` caps the runs made,
    repeats included.
    """
    scn = scn or spec.scenario()
    report = BoundReport(measure=measure)
    bound = 0
    while max_bound is None or bound <= max_bound:
        tree = BoundedTree(measure, bound)
        while True:
            if max_runs is not None and report.runs >= max_runs:
                return report
            r = run_spec(spec, tree, scn=scn, lockstat=False)
            report.runs += 1
            if bound and tree.cost() < bound:
                report.repeats += 1
            else:
                _count(report, r, bound, counts or _only(kind), on_run)
                if stop_on_first and report.failing_runs:
                    return report
            if cut_at_bound(r):
                report.cut_at = report.schedules - 1
                return report
            if not tree.advance():
                break
        report.bound_done = bound
        if tree.beyond_bound == 0:
            report.exhausted = True
            break
        bound += 1
    return report


def _only(kind):
    return (lambda k: k == kind) if kind else (lambda k: True)


def _count(report, r, bound, counts, on_run) -> None:
    index = report.schedules - 1
    if getattr(r, "sim_events", 0):
        report.devices = True
    failed = any(counts(v.kind) for v in r.violations)
    if failed:
        report.failing_runs += 1
        report.failures.append(r)
        if report.first_failure_run is None:
            report.first_failure_run = index
            report.first_failure_bound = bound
    if on_run is not None:
        on_run(index, r)
