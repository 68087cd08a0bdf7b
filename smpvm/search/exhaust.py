"""Exhaustive search: run a scenario under ``dfs`` until its tree of schedules is used up.

The ``dfs`` strategy (``smpvm.strategies.dfs``) only chooses: at each decision
it picks the next branch of its tree.  This driver runs the model again and
again under it, replays every failing schedule from its choices (which also
checks that the model is deterministic for a given schedule) and says at the
end whether the whole tree was covered: "all K schedules explored" is then a
proof for that model, its parameters and its seed.
"""

from __future__ import annotations

import contextlib
import gc
from dataclasses import dataclass, field

from ..scenario import RunSpec, run_spec
from ..strategies.dfs import DFS
from ..strategies.replay import Replay
from ..violations import ModelError
from .failon import cut_at_bound


@dataclass
class DfsReport:
    """What an exhaustive search found."""

    #: Schedules run (each a distinct list of choices).
    runs: int = 0
    #: True when every schedule (within the bound, if any) is covered.
    exhausted: bool = False
    #: Schedules with at least one violation.
    failing_runs: int = 0
    #: Index (from 0) of the first failing schedule, or None.
    first_failure_run: int | None = None
    #: RunResult of each failing schedule, in order.
    failures: list = field(default_factory=list)
    #: Branches the reduction skipped: a lower bound on the schedules it saved.
    pruned: int = 0
    #: Runs that met a state where every CPU that could step was asleep (redundant).
    sleep_blocked: int = 0
    #: Partial-order reduction was in use.
    reduction: bool = True
    #: The preemption bound (None: none).
    preemption_bound: int | None = None
    #: Branches left out because they would exceed the preemption bound.
    beyond_bound: int = 0
    #: Some run had SimPy processes of the model's (devices): their timing was not enumerated.
    devices: bool = False
    #: State outside the model API that two or more CPUs reach (plain lists, dicts,
    #: objects, globals), named; the reduction watched it by comparison after every step.
    unseen_shared: list = field(default_factory=list)
    #: The model has interrupts given a window: every placement was a branch (no reduction).
    arrival_windows: bool = False
    #: Groups of identical threads (names) searched up to their names (``dfs``'s
    #: symmetry): each schedule run stands also for its renamings within a group.
    symmetric: list = field(default_factory=list)
    #: Index of the schedule that ran into the step bound, where the search stopped
    #: (``cut_at_bound``), or None.
    cut_at: int | None = None

    def summary(self) -> str:
        """One line: what was explored, and whether that is a proof."""
        within = ""
        if self.preemption_bound is not None:
            s = "" if self.preemption_bound == 1 else "s"
            within = f" with at most {self.preemption_bound} preemption{s}"
        if self.exhausted and self.devices:
            # the tree covers the CPUs' orders; a device acted at the times each order gave it
            what = (f"{self.runs} schedules{within} explored (device processes only at "
                    f"the times those schedules gave them)")
        elif self.exhausted:
            what = f"all {self.runs} schedules{within} explored"
        else:
            what = f"{self.runs} schedules{within} explored (not exhausted)"
        found = ("none failed" if not self.failing_runs
                 else f"{self.failing_runs} failed (first: schedule {self.first_failure_run})")
        if self.cut_at is not None:
            found += f"; stopped at schedule {self.cut_at}, which ran into the step bound"
        saved = f"; the reduction saved at least {self.pruned}" if self.reduction else ""
        unseen = ""
        if self.symmetric:
            groups = "; ".join(", ".join(g) for g in self.symmetric)
            unseen = (f"; identical threads ({groups}) searched up to their names, "
                      f"each schedule standing for its renamings")
        if self.arrival_windows:
            unseen = "; window interrupts: every placement enumerated"
        if self.unseen_shared:
            unseen += (f"; shared state outside the model API, watched after every step: "
                      f"{'; '.join(self.unseen_shared)}")
        return f"{what}, {found}{saved}{unseen}"

    def to_dict(self) -> dict:
        return {"runs": self.runs, "exhausted": self.exhausted,
                "failing_runs": self.failing_runs, "first_failure_run": self.first_failure_run,
                "pruned": self.pruned, "sleep_blocked": self.sleep_blocked,
                "reduction": self.reduction, "preemption_bound": self.preemption_bound,
                "beyond_bound": self.beyond_bound, "devices": self.devices,
                "unseen_shared": list(self.unseen_shared),
                "arrival_windows": self.arrival_windows,
                "symmetric": [list(g) for g in self.symmetric], "cut_at": self.cut_at}


def exhaust(spec: RunSpec, *, scn=None, preemption_bound=None, max_runs=None,
            stop_on_first=False, on_run=None, reduction=True, counts=None,
            on_restart=None, symmetry=True) -> DfsReport:
    """Run every schedule of ``scn`` (up to reduction, within the bound); see the module docstring.

    ``on_run(index, result)`` is called after every schedule; ``on_restart()``
    when the search starts over from schedule 0 without reduction, because a
    schedule raised an interrupt with a window after some were counted (what
    ``on_run`` was told so far no longer stands); ``max_runs``
    and ``stop_on_first`` end the search early (``exhausted`` is then False
    unless nothing was left), and so does a schedule that runs into the step
    bound (``cut_at_bound``; it is counted).  ``counts(kind)``: which violation
    kinds make a schedule fail (default: all).  ``symmetry``: identical threads are
    taken in the order they first step (see ``smpvm.strategies.dfs``); a
    model that turns out not to treat them alike is searched again without.
    Schedules run without lock statistics, which
    no search decision needs; a failing one is replayed from its choices
    with them, which also checks that it replays.
    """
    scn = scn or spec.scenario()
    dfs = DFS(preemption_bound=preemption_bound, reduction=reduction, symmetry=symmetry)
    report = DfsReport(reduction=dfs.reduction, preemption_bound=preemption_bound)
    while True:
        with young_collections_only():
            result = run_spec(spec, dfs, scn=scn, lockstat=False)
        if dfs.needs_plain():
            # where a window interrupt lands is a decision the reduction's tree has no
            # node for: start again, enumerating every decision (the runs so far were
            # the first, unless a window first appeared in a later schedule)
            if report.runs and on_restart is not None:
                on_restart()
            dfs = DFS(preemption_bound=preemption_bound, reduction=False)
            report = DfsReport(reduction=False, preemption_bound=preemption_bound)
            continue
        if cut_at_bound(result):  # no search below it: count it and stop
            dfs.let_go()
            report.cut_at = report.runs
            _count(report, _replayed(spec, scn, result) if result.failed else result, on_run,
                   counts)
            break
        with young_collections_only():
            redundant = not dfs.finish_run(result)
        if dfs.symmetry_broken:
            # the threads taken as identical were not treated alike (seen during the
            # run or, for devices and interrupts, after it): start again without
            if report.runs and on_restart is not None:
                on_restart()
            dfs = DFS(preemption_bound=preemption_bound, reduction=reduction)
            report = DfsReport(reduction=dfs.reduction, preemption_bound=preemption_bound)
            continue
        dfs.let_go()
        report.arrival_windows = report.arrival_windows or dfs.saw_windows
        if redundant:
            report.sleep_blocked += 1
        if result.failed:
            result = _replayed(spec, scn, result)
        _count(report, result, on_run, counts)
        if not dfs.advance():
            report.exhausted = True
            break
        if (stop_on_first and report.failing_runs) or \
                (max_runs is not None and report.runs >= max_runs):
            break
    report.pruned = dfs.pruned
    report.beyond_bound = dfs.beyond_bound
    report.unseen_shared = [dfs.unseen[k] for k in sorted(dfs.unseen)]
    report.symmetric = list(dfs.symmetric)
    return report


@contextlib.contextmanager
def young_collections_only():
    """No full pass of Python's cycle collector meanwhile: a run and its analysis.

    A run's steps and tree nodes live as long as the search needs them, so the
    collector's full passes, each over every object, find nothing in them; on
    a long run (a model cut at a million steps) they took two thirds of the
    time.  Young objects are still collected as ever, so cycles a model makes
    and drops step by step do not pile up; the full passes resume between runs.
    """
    young, middle, old = gc.get_threshold()
    gc.set_threshold(young, middle, 1 << 30)  # (passes over the oldest: never, meanwhile)
    try:
        yield
    finally:
        gc.set_threshold(young, middle, old)


def _replayed(spec, scn, result):
    """The failing run again from its recorded choices, with lock statistics."""
    again = run_spec(spec, Replay(result.choices, timed=False), scn=scn)
    if again.kinds() != result.kinds() or again.choices != result.choices:
        raise ModelError(f"dfs: a failing schedule did not replay ({result.kinds()} became "
                         f"{again.kinds()}); the model is not deterministic for a given schedule")
    return again


def _count(report, result, on_run, counts=None) -> None:
    index = report.runs
    report.runs += 1
    if getattr(result, "sim_events", 0):
        report.devices = True
    if result.failed if counts is None else any(counts(v.kind) for v in result.violations):
        report.failing_runs += 1
        report.failures.append(result)
        if report.first_failure_run is None:
            report.first_failure_run = index
    if on_run is not None:
        on_run(index, result)
