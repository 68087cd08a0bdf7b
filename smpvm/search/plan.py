"""The worker side of an exploration: what a run is, and its record on disk.

A ``Plan`` is everything a worker needs besides run indices; ``run_batch``
runs a contiguous range of them and returns a ``Batch``: the rows
``runs.csv`` gets, already encoded, the counts the driver adds up, and an
``Outcome`` in full only for each failing run.  The driver's work per batch
does not grow with its runs, so it is not the ceiling of a many-worker search.  ``manifest_of`` and the checks beside it are
what ``explore.json`` records so a resumed exploration is the same one.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import os
from dataclasses import asdict, dataclass
from typing import NamedTuple

from ..scenario import RunSpec, Setup, load_target, split_target
from ..seeds import run_seed
from ..strategies.base import Strategy
from ..violations import BadInput
from .failon import FailOn
from .shrink import Bounded

#: Runs per epoch of PCT's k estimate.
EPOCH_RUNS = 512
#: Random runs made before the first epoch to estimate k.
PILOT_RUNS = 16
#: Times a batch is tried before its runs are reported as lost.
BATCH_ATTEMPTS = 3
#: Default number of runs for the sampling strategies.
DEFAULT_RUNS = 2000
#: Columns of runs.csv.
CSV_COLUMNS = ("run", "seed", "strategy", "k", "failed", "kinds", "location", "steps",
               "decisions", "schedule")
#: Strategies ``explore`` accepts.
SEARCHES = ("portfolio", "random", "pct", "dfs", "idb", "ipb")
#: Systematic searches: one tree of schedules, walked in this process.
SYSTEMATIC = ("dfs", "ipb")
#: Steps a run of a systematic search may take when neither ``--max-steps`` nor the
#: scenario gives a bound.  Its runs are short (dozens to thousands of steps; the race
#: analysis of a run grows with its square), and one that runs into the bound ends the
#: search, after recording every step of it: a model that loops forever is reported in
#: seconds and a couple of hundred megabytes, not half a minute and two gigabytes.
#: (SPIN's own default depth bound is 10,000 steps.)
SYSTEMATIC_MAX_STEPS = 100_000


# -- one run ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Plan:
    """What an exploration runs: everything a worker needs besides the run indices."""

    #: ``/absolute/path/model.py::scenario`` (workers may run elsewhere).
    target: str
    variant: str
    #: ``--set`` overrides, as given.
    params: dict
    cpus: int | None
    seed: int
    #: One of ``SEARCHES``.
    strategy: str
    #: pct depth; for the portfolio, the deepest pct member (members d = 2..depth).
    depth: int
    preemption_bound: int | None
    max_steps: int | None
    #: Directory model locations are shown relative to.
    source_root: str
    #: ``--fail-on`` and ``--ignore``: violation kinds, sorted and comma-joined (None: not given).
    fail_on: str | None = None
    ignore: str | None = None

    def failon(self) -> FailOn:
        """Which kinds make a run fail (see ``smpvm.search.failon``)."""
        return FailOn(tuple(self.fail_on.split(",")) if self.fail_on else None,
                      tuple(self.ignore.split(",")) if self.ignore else ())

    def strategies(self) -> "Rotation":
        return Rotation(self)

    def spec(self, seed: int) -> RunSpec:
        """The run of this plan with seed ``seed``."""
        return RunSpec(self.target, variant=self.variant, params=self.params, cpus=self.cpus,
                       seed=seed, max_steps=self.max_steps, source_root=self.source_root)


class Rotation:
    """The strategy of each run of a plan, made once per batch and reused."""

    def __init__(self, plan: Plan):
        from ..strategies import make_strategy
        self.plan = plan
        if plan.strategy == "portfolio":
            depths = tuple(range(2, max(plan.depth, 2) + 1))
            self.members = make_strategy("portfolio", depths=depths).members
        elif plan.strategy == "pct":
            self.members = [make_strategy("pct", depth=plan.depth)]
        elif plan.strategy == "idb":
            self.members = [make_strategy("idb", max_delays=plan.depth)]
        else:
            self.members = [make_strategy(plan.strategy)]
        self.labels = [label_of(s) for s in self.members]
        # The scenario resolved once for the runs of this rotation (see ``setup``).
        self._setup = None
        self._setup_plan = None
        if plan.preemption_bound is not None:
            self.members = [Bounded(s, plan.preemption_bound) for s in self.members]

    def setup(self, scn, plan: Plan | None = None) -> Setup:
        """The run set-up of ``plan`` (default: this rotation's) for scenario ``scn``,
        resolved once and reused while both stay the same."""
        plan = plan or self.plan
        st = self._setup
        if st is None or st.scn is not scn or self._setup_plan is not plan:
            spec = plan.spec(0)
            self._setup_plan = plan
            st = self._setup = Setup(scn, variant=spec.variant, params=spec.params,
                                     cpus=spec.cpus, max_steps=spec.max_steps,
                                     lockstat=False, source_root=spec.source_root)
        return st

    def for_run(self, index: int, k: int) -> tuple[str, Strategy]:
        j = index % len(self.members)
        s = self.members[j]
        inner = s.inner if isinstance(s, Bounded) else s
        if hasattr(inner, "k"):
            inner.k = max(1, int(k))
        if hasattr(inner, "ordinal"):  # a stateless enumeration: its own run number
            inner.ordinal = index // len(self.members)
        return self.labels[j], s


def label_of(strategy: Strategy) -> str:
    """How runs.csv names a strategy: ``random``, ``pct-d2``, ..."""
    depth = getattr(strategy, "depth", None)
    return f"{strategy.name}-d{depth}" if depth is not None else strategy.name


class Outcome(NamedTuple):
    """One run, as a row of runs.csv."""

    run: int
    seed: int
    strategy: str
    #: PCT's k for this run ("" for strategies without one).
    k: int | str
    #: Violation kinds found, sorted, joined by ";" ("" when the run passed).
    kinds: str
    #: Location of the run's first violation.
    location: str
    steps: int
    decisions: int
    #: Fingerprint of the schedule (hash of the choice list), for counting distinct ones.
    schedule: int
    #: Kinds found that do not count (``--fail-on``/``--ignore``), ";"-joined; not in runs.csv.
    others: str = ""

    @property
    def failed(self) -> bool:
        return bool(self.kinds)

    def row(self) -> list:
        return [self.run, self.seed, self.strategy, self.k, int(self.failed), self.kinds,
                self.location, self.steps, self.decisions, f"{self.schedule:016x}"]


def run_one(plan: Plan, scn, rotation: Rotation, index: int, k: int):
    """Run ``index`` of ``plan``: (label, seed, RunResult)."""
    label, strategy = rotation.for_run(index, k)
    seed = run_seed(plan.seed, index)
    return label, seed, rotation.setup(scn, plan).run(seed, strategy, dismantle=True)


def outcome_of(index, label, seed, k, r, failon: FailOn | None = None) -> Outcome:
    kinds = location = others = ""
    if r.violations:  # most runs have none: nothing to sort out
        failon = failon or FailOn()
        v = failon.failing(r.violations)
        counted = failon.kinds(r)
        kinds, location = ";".join(counted), v[0].location if v else ""
        others = ";".join(k for k in r.kinds() if k not in counted)
    return Outcome(index, seed, label, k if label.startswith(("pct", "idb")) else "", kinds,
                   location, r.steps, r.decisions, schedule_fingerprint(r.choices), others)


#: The decimal text of the numbers schedules are made of (CPU numbers): looked up,
#: not made by ``str`` for every choice of every run.
_DECIMAL = {i: str(i) for i in range(1024)}


def schedule_fingerprint(choices) -> int:
    """64 bits that tell schedules apart, the same in every process and Python version."""
    try:
        text = ",".join([_DECIMAL[c] for c in choices])
    except KeyError:  # a number past the table
        text = ",".join(map(str, choices))
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


#: Leading runs that, all running into the step bound, make a model one that loops forever.
ENDLESS_RUNS = 4


class LoopWatch:
    """Says when the first ``ENDLESS_RUNS`` runs of a model all ran into the step bound:
    so would every later one, each costing the whole bound (a million steps by default),
    which makes hours of a search's minutes.  That is bad input, said at once."""

    def __init__(self, bound: int):
        self.bound = bound
        self.runs = 0  # the runs so far, while every one of them ran into the bound

    def saw(self, r) -> None:
        """Note the next run; ``BadInput`` at the last of ``ENDLESS_RUNS`` endless ones."""
        if self.runs < 0:
            return  # a run ended: the model does not loop forever
        hit = [v for v in r.violations if v.kind == "max-steps"]
        if not hit:
            self.runs = -1
            return
        self.runs += 1
        if self.runs == ENDLESS_RUNS:
            raise BadInput(f"each of the first {ENDLESS_RUNS} runs ran into the step bound "
                           f"({self.bound:,} steps; the last at {hit[0].location or '?'}): the "
                           f"model seems to loop forever; if its runs are only that long, raise "
                           f"--max-steps (max_steps in a study file)")


def cut_short(kinds) -> bool:
    """Did a run end by a step limit or a livelock?  Its decisions then say nothing of
    a run's length, and would make PCT's k (and its guarantee) as long as the limit."""
    return "max-steps" in kinds or "livelock" in kinds


@functools.cache
def _plain_csv(field: str) -> bool:
    """Does the csv writer write ``field`` as it is (nothing in it to quote)?"""
    return not any(ch in field for ch in ',"\r\n')


class Batch(NamedTuple):
    """A finished batch of runs ``start``..``stop - 1``, in the form the driver appends."""

    start: int
    #: One past the last run made (short of the range asked for after --stop-on-first).
    stop: int
    #: The runs' runs.csv lines, in run order.
    rows: str
    #: Each run's schedule fingerprint, in run order.
    schedules: tuple
    #: Epoch -> most decisions of a run in it that was not cut short.
    decisions: dict
    #: Kind -> runs that found it without it counting (``--fail-on``/``--ignore``).
    not_counted: dict
    #: An ``Outcome`` for each run that failed.
    failures: list

    @classmethod
    def of(cls, outcomes: list) -> "Batch":
        """The batch of consecutive finished runs ``outcomes``."""
        text = io.StringIO()
        writer = csv.writer(text)  # the driver's own dialect: the file reads the same
        schedules, decisions, not_counted, failures = [], {}, {}, []
        for o in outcomes:
            if o.kinds or o.location or not _plain_csv(o.strategy):
                writer.writerow(o.row())
            else:  # what the writer makes of a passing run's row, written out
                text.write(f"{o.run},{o.seed},{o.strategy},{o.k},0,,,{o.steps},{o.decisions},"
                           f"{o.schedule:016x}\r\n")
            schedules.append(o.schedule)
            e = o.run // EPOCH_RUNS
            if o.decisions > decisions.get(e, 0) and not cut_short(o.kinds.split(";")):
                decisions[e] = o.decisions
            for kind in o.others.split(";") if o.others else ():
                not_counted[kind] = not_counted.get(kind, 0) + 1
            if o.failed:
                failures.append(o)
        start = outcomes[0].run if outcomes else 0
        return cls(start, start + len(outcomes), text.getvalue(), tuple(schedules), decisions,
                   not_counted, failures)

    def outcomes(self) -> list:
        """The batch as one ``Outcome`` per run (for the rare caller that needs them)."""
        out = []
        failed = {o.run: o for o in self.failures}
        for i, row in enumerate(csv.reader(self.rows.splitlines())):
            run = self.start + i
            if run in failed:
                out.append(failed[run])
                continue
            _, seed, strategy, k, _f, kinds, location, steps, decisions, sched = row
            out.append(Outcome(run, int(seed), strategy, int(k) if k else "", kinds, location,
                               int(steps), int(decisions), int(sched, 16)))
        return out


def run_batch(plan: Plan, start: int, stop: int, k: int, stop_on_first: bool = False) -> Batch:
    """Runs ``start``..``stop - 1`` of ``plan`` (the unit of work sent to an executor)."""
    scn = load_target(plan.target)
    rotation = plan.strategies()
    failon = plan.failon()
    out = []
    for i in range(start, stop):
        label, seed, r = run_one(plan, scn, rotation, i, k)
        out.append(outcome_of(i, label, seed, k, r, failon))
        if stop_on_first and out[-1].failed:
            break
    return Batch.of(out)


# -- the record on disk ----------------------------------------------------------------------

#: Layout version of explore.json (docs/schema/explore-file.schema.json).
SCHEMA_VERSION = 1


def manifest_of(plan: Plan, target: str, model_sha256: str) -> dict:
    """What must match for ``--resume`` to continue an exploration."""
    from .. import __version__
    d = asdict(plan)
    d.pop("source_root")
    d["target"] = target
    d["model_path"] = split_target(plan.target)[0]
    d["model_sha256"] = model_sha256
    d["epoch_runs"] = EPOCH_RUNS
    d["pilot_runs"] = PILOT_RUNS
    d["smpvm_version"] = __version__
    d["schema_version"] = SCHEMA_VERSION
    return d


_RESUME_KEYS = ("model_path", "variant", "params", "cpus", "seed", "strategy", "depth",
                "preemption_bound", "max_steps", "epoch_runs", "pilot_runs", "fail_on", "ignore")


def check_resumable(out: str, saved: dict, now: dict) -> None:
    for key in _RESUME_KEYS:
        if saved.get(key) != now.get(key):
            raise BadInput(f"--resume: {out} holds an exploration with {key}={saved.get(key)!r}, "
                           f"not {now.get(key)!r}; repeat its arguments or use another --out")
    if saved.get("model_sha256") != now.get("model_sha256"):
        raise BadInput(f"--resume: the model file changed since {out} was explored; "
                       f"start a new exploration with another --out")


def check_same_exploration(out: str, manifest_path: str, now: dict) -> None:
    """Refuse to start over in a directory that holds another exploration's results."""
    try:
        with open(manifest_path, encoding="utf-8") as fp:
            saved = json.load(fp)
    except (OSError, ValueError):
        return  # not a record we can read: nothing of value to protect
    if not isinstance(saved, dict):
        return
    for key in ("target", "variant", "strategy", "seed"):
        a, b = saved.get(key), now.get(key)
        if key == "target":
            a, b = (_scenario_id(saved), _scenario_id(now))
        if a != b:
            raise BadInput(f"{out} holds another exploration ({key} {a!r}, not {b!r}); "
                           f"give another --out, or --resume to continue that one")


def _scenario_id(manifest: dict):
    name = str(manifest.get("target", "")).rsplit("::", 1)[-1]
    return f"{manifest.get('model_path')}::{name}"


def finished_part(data: bytes) -> int:
    """Bytes of a CSV file that hold whole lines: a last line without its newline was
    cut short by a crash (at any byte) and is not a finished row."""
    return data.rfind(b"\n") + 1


def end_of_rows(path: str, drop: int, chunk: int = 1 << 16) -> int:
    """The size of a CSV file of whole lines without its last ``drop`` lines, read
    from the end (a resumed search keeps all but the few rows past its saved state)."""
    with open(path, "rb") as fp:
        pos = fp.seek(0, os.SEEK_END)
        wanted = drop + 1  # the newline before the first line dropped
        while pos > 0:
            start = max(0, pos - chunk)
            fp.seek(start)
            block = fp.read(pos - start)
            i = len(block)
            while wanted and i > 0:
                i = block.rfind(b"\n", 0, i)
                if i < 0:
                    break
                wanted -= 1
                if not wanted:
                    return start + i + 1
            pos = start
    if wanted == 1:
        return 0  # every line dropped
    raise ValueError(f"{path} has fewer than {drop} lines")


def read_runs_csv(path: str) -> list[Outcome]:
    """Finished runs from a runs.csv; a half-written last line (a crash) is cut off."""
    with open(path, "rb") as fp:
        data = fp.read()
    keep = finished_part(data)
    if keep < len(data):
        os.truncate(path, keep)  # one call: the finished rows are never at risk
        data = data[:keep]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"{path} is not an smpvm runs.csv (not UTF-8 text)") from None
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        return []
    if tuple(rows[0]) != CSV_COLUMNS:
        raise BadInput(f"{path} is not an smpvm runs.csv (header {','.join(rows[0])!r})")
    out = []
    for n, row in enumerate(rows[1:], start=2):
        try:
            run, seed, strategy, k, _failed, kinds, location, steps, decisions, sched = row
            out.append(Outcome(int(run), int(seed), strategy, int(k) if k else "", kinds,
                               location, int(steps), int(decisions), int(sched, 16)))
        except ValueError:
            raise BadInput(f"{path} line {n} is malformed; fix or delete it, "
                           f"then --resume") from None
    return out
