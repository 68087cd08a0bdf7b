"""Exploration: many runs of one scenario under a search strategy.

Run i of an exploration is a pure function of the master seed and i: its
seed comes from numpy's ``SeedSequence(master, spawn_key=(i // 1024,))`` (``seeds``),
its strategy from i (the portfolio rotates random, pct d=2, pct d=3 and idb),
and the estimate k of decision points per run that PCT and idb need from
earlier runs in a way that does not depend on timing (below).  So the runs
can be cut into batches and farmed out to any ``concurrent.futures`` executor
-- this process, a process pool, a Dask cluster -- and every run comes out
the same.  ipb walks its tree of schedules in this process; dfs cuts its tree
into parts and hands them to the same executors (:mod:`smpvm.search.pardfs`),
in this process too with ``--workers 1``, so that its runs come out in the
same order whatever runs them.

A batch is a contiguous range of run indices; a worker runs it and sends
back one compact row per run (seed, strategy, violation kinds, first
location, steps, decisions, a fingerprint of the schedule).  The parent
appends the rows to ``runs.csv`` as batches arrive, counts failures and
distinct schedules, and for the first failing run of each violation kind
replays it here, shrinks it (:mod:`smpvm.search.shrink`) and saves it
(:mod:`smpvm.search.failures`).  A batch whose worker died is run again; one that
keeps killing its workers is reported as lost, never dropped silently.

**PCT's k.**  PCT draws its change points among the first k decision
points, so k must be known before a run starts.  Runs are grouped in epochs
of ``EPOCH_RUNS``; the runs of epoch e use the most decisions seen in a few
pilot runs and in every run of the epochs before e - 1.  The one-epoch lag
lets epoch e start while epoch e - 1 is still running, and k depends only on
which runs came earlier, never on when they finished.

Only two epochs at a time have a known k: too few batches for many workers,
and on a Dask cluster a task's round trip (a few to 15 ms through the
scheduler) would leave a worker idle after each batch while the next epoch
waits on the one before it.  So batches also go out ahead of their k, on a
guess: the k that the runs finished so far give, once it has held for four
epochs (the epochs before that come in smaller batches, so that two of them
keep every worker busy).  A run is a pure function of its index and k, so
such a batch is kept only when its guess proves to be the k its epoch gets;
otherwise it is run again with that k before it is recorded.  Either way
runs.csv reads the same.

**Resuming.**  ``runs.csv`` is the record of what finished.  ``--resume``
reads it (with the decisions column it rebuilds k), runs only the missing
indices and appends; ``explore.json`` holds the exploration's arguments so a
resume with different ones is refused.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import csv
import glob
import json
import os
import time
from dataclasses import asdict, dataclass, field

from ..scenario import check_cpus, load_target, model_sha256, split_target
from ..violations import BadInput, ModelError
from . import executors as _executors
from .executors import max_workers, wait_first as _wait_first  # noqa: F401
from .distinct import Distinct
from .manifest import smpvm_fingerprint, whole_file, write_manifest
from .plan import (BATCH_ATTEMPTS, CSV_COLUMNS, DEFAULT_RUNS, EPOCH_RUNS, PILOT_RUNS,  # noqa: F401
                   SEARCHES, SYSTEMATIC, SYSTEMATIC_MAX_STEPS, Batch, LoopWatch, Outcome, Plan,
                   check_resumable, check_same_exploration, cut_short, manifest_of,
                   end_of_rows, outcome_of, read_runs_csv, run_batch, run_one, schedule_fingerprint)


#: Seconds between checks that a cluster is still there (``smpvm.studies.sweep`` reads it here).
HEALTH_CHECK_S = _executors.HEALTH_CHECK_S
#: Epochs settled before a batch may go out on a guessed k (``Exploration._may_start``).
GUESS_AFTER_EPOCHS = 4
#: The runs made before any k may be guessed: the epochs up to the one after those.
WARM_UP_RUNS = (GUESS_AFTER_EPOCHS + 1) * EPOCH_RUNS
#: The shortest batch that the last runs are cut into (``Batches.share``).
TAIL_BATCH_RUNS = 16
#: Runs of a systematic search counted and written at once (as the progress shows them).
DFS_ROWS_AT_ONCE = 64
#: An interrupted dfs search's state in --out (``pardfs``'s checkpoint), for --resume.
DFS_STATE = "dfs-state.pickle"


def dfs_state_saved(out: str) -> bool:
    """Does ``out`` hold an interrupted dfs search's state (what --resume goes on from)?"""
    return os.path.exists(os.path.join(out, DFS_STATE))


# -- the exploration ----------------------------------------------------------------------------

@dataclass
class FirstFailure:
    """The first failing run of one violation kind, saved to a file."""

    kind: str
    run: int
    path: str = ""
    preemptions: int | None = None
    original_preemptions: int | None = None
    choices: list = field(default_factory=list)
    seed: int = 0
    strategy: dict = field(default_factory=dict)
    #: True: no schedule with fewer preemptions fails this way; False: an upper bound.
    minimal: bool | None = None


@dataclass
class Report:
    """What an exploration found; ``to_json`` is what ``smpvm explore --json`` prints."""

    target: str
    variant: str
    strategy: str
    seed: int
    runs: int = 0
    runs_this_session: int = 0
    failing_runs: int = 0
    first_failure_run: int | None = None
    violations: dict = field(default_factory=dict)
    distinct_schedules: int = 0
    exhausted: bool = False
    #: dfs: runs had device processes, whose timing the search did not enumerate.
    devices: bool = False
    pruned: int | None = None
    #: dfs: names of the state outside the model API that steps changed (watched by the search).
    unseen_shared: list = field(default_factory=list)
    elapsed_s: float = 0.0
    #: Of ``elapsed_s``: bringing the executor up (Dask's import and a local cluster's
    #: processes; a remote scheduler's connection), paid once whatever the runs.
    executor_start_s: float = 0.0
    lost_runs: list = field(default_factory=list)
    first: dict = field(default_factory=dict)
    pct: list = field(default_factory=list)
    interrupted: bool = False
    out: str = ""
    resumed_runs: int = 0
    executor: str = ""
    mismatches: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    #: Runs of this session per kind found that does not count (--fail-on, --ignore).
    not_counted: dict = field(default_factory=dict)

    @property
    def runs_per_second(self) -> float:
        """Runs of this session per second of running them: ``elapsed_s`` less the
        executor's start, which a longer search does not pay again."""
        running = self.elapsed_s - self.executor_start_s
        return self.runs_this_session / running if running > 0 else 0.0

    @property
    def bug_depth(self):
        if self.first_failure_run is None or not self.first:
            return None
        f = min(self.first.values(), key=lambda f: (f.run, f.kind))
        return f.preemptions

    def to_json(self) -> dict:
        files = {k: self.first[k].path for k in sorted(self.first)}
        return {
            "target": self.target, "variant": self.variant, "strategy": self.strategy,
            "seed": self.seed, "runs": self.runs, "failing_runs": self.failing_runs,
            "first_failure_run": self.first_failure_run,
            "violations": dict(sorted(self.violations.items())),
            "failure_files": files, "exhausted": self.exhausted, "bug_depth": self.bug_depth,
            "bug_depths": {k: self.first[k].preemptions for k in sorted(self.first)},
            "bug_depths_minimal": {k: self.first[k].minimal for k in sorted(self.first)},
            "runs_per_second": round(self.runs_per_second, 1),
            "distinct_schedules": self.distinct_schedules, "pruned": self.pruned,
            "unseen_shared": list(self.unseen_shared),
            "lost_runs": self.lost_runs, "interrupted": self.interrupted,
            "elapsed_s": round(self.elapsed_s, 3),
            "executor_start_s": round(self.executor_start_s, 3), "executor": self.executor,
            "resumed_runs": self.resumed_runs, "pct_guarantee": self.pct,
            "replay_mismatches": self.mismatches, "notes": self.notes, "out": self.out,
            "not_counted": dict(sorted(self.not_counted.items())),
        }


class Exploration:
    """Drives one exploration; see the module docstring."""

    def __init__(self, target: str, *, variant=None, params=None, cpus=None,
                 strategy="portfolio", runs=None, depth=None, preemption_bound=None,
                 seed=0, workers=None, dask=None, out=None, stop_on_first=False,
                 resume=False, progress=None, shrink=True, fail_on=None, ignore=None,
                 max_steps=None):
        from .failon import fail_on as parse_fail_on
        if strategy not in SEARCHES:
            raise BadInput(f"unknown strategy {strategy!r}; choose one of: {', '.join(SEARCHES)}")
        _check_at_least("--runs", runs, 1)
        _check_at_least("--depth", depth, 1)
        _check_at_most("--depth", depth, MAX_DEPTH, "PCT's bound 1/(n k^(d-1)) is nil long "
                       "before that")
        _check_at_most("--workers", workers, max_workers(), "eight per core")
        _check_at_least("--preemption-bound", preemption_bound, 0)
        _check_at_least("--seed", seed, 0)
        _check_at_least("--workers", workers, 1)
        _check_at_least("--max-steps", max_steps, 1)
        check_cpus(cpus)
        kinds = parse_fail_on(fail_on, ignore)
        self.scn = load_target(target, fresh=True)
        if strategy in SYSTEMATIC and max_steps is None and not self.scn.max_steps_declared:
            max_steps = SYSTEMATIC_MAX_STEPS
        variant = self.scn.check_variant(variant)
        self.scn.resolve_params(params)  # bad parameters are bad input before any run
        path, name = split_target(target)
        self.model_file = os.path.abspath(path)
        self.target = target
        self.params = dict(params or {})
        self.plan = Plan(target=f"{self.model_file}::{name}", variant=variant,
                         params=self.params, cpus=cpus, seed=int(seed), strategy=strategy,
                         depth=int(depth) if depth is not None else 3,
                         preemption_bound=preemption_bound, max_steps=max_steps,
                         source_root=os.getcwd(),
                         fail_on=",".join(kinds.only) if kinds.only else None,
                         ignore=",".join(kinds.ignore) if kinds.ignore else None)
        self.runs = runs if runs is not None else (None if strategy == "dfs" else DEFAULT_RUNS)
        self.workers = workers
        self.dask = dask
        self.stop_on_first = stop_on_first
        self.resume = resume
        self.progress = progress
        self.shrink = shrink
        self.out = os.fspath(out) if out else os.path.join(
            "smpvm-out", f"{name}-{variant}-{strategy}-s{seed}")
        self.model_sha256 = model_sha256(self.model_file)  # of the version that runs
        self.report = Report(target=target, variant=variant, strategy=strategy, seed=int(seed),
                             out=self.out)
        # progress of the search
        self.done = bytearray()
        self.done_prefix = 0
        self.schedules = Distinct()
        #: A systematic search's runs (outcome, RunResult when it failed) not added yet.
        self._dfs_pending: list = []
        self.epoch_decisions: dict[int, int] = {}
        self._pilot_k = 1
        #: ``_k_below[i]``: the k of epoch ``i + 1`` (the pilot's and epochs ``< i``), as
        #: far as asked for; cut back where a recorded epoch raises it.
        self._k_below: list[int] = []
        #: The latest epoch with a recorded run (past it, the k stays the same).
        self._last_epoch = -1
        self.ncpus = 0
        self.first_runs: dict[str, int] = {}
        #: Finished batches waiting for earlier ones, by start: (batch, k it ran with, Batch).
        self._held: dict[int, tuple] = {}
        #: The k each batch out was sent with.
        self._sent_k: dict[tuple, int] = {}
        #: How far past the first run not settled a batch may start on a guessed k.
        self._ahead = 0
        #: Batches run again because their guessed k was not their epoch's.
        self.reruns = 0
        self._pending = None
        self._csv = None
        self._writer = None
        self._inline = False

    # -- set-up ------------------------------------------------------------------------------

    def _open_out(self) -> list[Outcome]:
        """Prepare --out: check or write the manifest, read finished runs when resuming."""
        try:
            os.makedirs(self.out, exist_ok=True)
        except OSError as e:
            raise BadInput(f"cannot create --out directory {self.out}: {e.strerror}") from None
        manifest_path = os.path.join(self.out, "explore.json")
        csv_path = os.path.join(self.out, "runs.csv")
        manifest = manifest_of(self.plan, self.target, self.model_sha256)
        previous: list[Outcome] = []
        if self.resume and self.plan.strategy == "ipb":
            raise BadInput("--resume: ipb searches do not resume (their state is the path "
                           "being explored); run again without --resume to start over")
        if os.path.exists(csv_path) and not os.path.exists(manifest_path):
            # nothing says which exploration these rows belong to: never guess, never drop them
            raise BadInput(f"{out_label(self.out)} holds a runs.csv but no explore.json, so "
                           f"its runs cannot be matched to these arguments; give another "
                           f"--out, or move runs.csv away")
        if self.resume and os.path.exists(manifest_path):
            try:
                with open(manifest_path, encoding="utf-8") as fp:
                    saved = json.load(fp)
            except (OSError, ValueError):
                raise BadInput(f"--resume: {manifest_path} is unreadable; "
                               f"use another --out") from None
            if not isinstance(saved, dict):
                raise BadInput(f"--resume: {manifest_path} is not an explore.json; "
                               f"use another --out")
            check_resumable(self.out, saved, manifest)
            if self.plan.strategy == "dfs" and not dfs_state_saved(self.out):
                raise BadInput(f"--resume: {out_label(self.out)} holds no interrupted dfs "
                               f"search to go on with (it ended, or stopped at --runs or "
                               f"--stop-on-first); run it again without --resume")
            if os.path.exists(csv_path):
                previous = read_runs_csv(csv_path)
        else:
            if os.path.exists(manifest_path):
                check_same_exploration(self.out, manifest_path, manifest)
            self._remove_failure_files()
            self._forget_dfs_state()
            if os.path.exists(csv_path):
                os.remove(csv_path)
        write_manifest(manifest_path, manifest, indent=1)
        new_file = not os.path.exists(csv_path) or os.path.getsize(csv_path) == 0
        self._csv = open(csv_path, "a", newline="", encoding="utf-8")
        self._writer = csv.writer(self._csv)
        if new_file:
            self._writer.writerow(CSV_COLUMNS)
            self._csv.flush()
        return previous

    def _restore(self, previous: list[Outcome]) -> None:
        """Count the runs a resumed exploration already has, and pick up its failure files."""
        by_run = {}
        for o in previous:
            if (self.runs is None or o.run < self.runs) and o.run not in by_run:
                by_run[o.run] = o
                self._add(Batch.of([o]), restored=True)
        self.report.resumed_runs = len(by_run)
        for kind, run in sorted(self.first_runs.items()):
            if not self._saved_before(kind, run):  # the earlier session stopped first
                self._save_first(kind, by_run[run])

    def _saved_before(self, kind: str, run: int) -> bool:
        """Take up the failure file an earlier session saved for ``kind``'s first failing
        run ``run``; False when there is none for that run."""
        from .failures import failure_file_name, load_failure
        path = os.path.join(self.out, failure_file_name(kind))
        try:
            f = load_failure(path) if os.path.exists(path) else None
        except BadInput:
            f = None
        if f is None or f.run != run:
            return False
        self.report.first[kind] = FirstFailure(kind, run, path, f.preemptions,
                                               f.original_preemptions, f.choices, f.seed,
                                               f.strategy)
        return True

    # -- bookkeeping -------------------------------------------------------------------------

    def _mark_done(self, start: int, stop: int) -> None:
        """Runs ``start``..``stop - 1`` are settled."""
        done = self.done
        if stop > len(done):
            done.extend(bytes(stop - len(done)))
        done[start:stop] = b"\x01" * (stop - start)
        j = done.find(0, self.done_prefix)
        self.done_prefix = len(done) if j < 0 else j

    def _add(self, b: Batch, restored: bool = False) -> list:
        """Count a finished batch and append its rows to runs.csv (a run restored from
        runs.csv is there already); the (kind, run) pairs whose first failure it holds."""
        if not restored:
            self._csv.write(b.rows)
        self._mark_done(b.start, b.stop)
        rep = self.report
        rep.runs += b.stop - b.start
        if not restored:
            rep.runs_this_session += b.stop - b.start
        self.schedules.add(b.schedules)
        rep.distinct_schedules = len(self.schedules)
        for e, d in b.decisions.items():
            if d > self.epoch_decisions.get(e, 0):
                self.epoch_decisions[e] = d
                del self._k_below[e + 1:]
                self._last_epoch = max(self._last_epoch, e)
        for kind, count in b.not_counted.items():
            rep.not_counted[kind] = rep.not_counted.get(kind, 0) + count
        return [(kind, o) for o in b.failures for kind in self._count_failure(o)]

    def _count_failure(self, o: Outcome) -> list[str]:
        """Count a failing run's kinds; the kinds whose first failing run it now is."""
        rep = self.report
        rep.failing_runs += 1
        if rep.first_failure_run is None or o.run < rep.first_failure_run:
            rep.first_failure_run = o.run
        new = []
        for kind in o.kinds.split(";"):
            rep.violations[kind] = rep.violations.get(kind, 0) + 1
            if kind not in self.first_runs or o.run < self.first_runs[kind]:
                self.first_runs[kind] = o.run
                new.append(kind)
        return new

    @property
    def pilot_k(self) -> int:
        return self._pilot_k

    @pilot_k.setter
    def pilot_k(self, k: int) -> None:
        self._pilot_k = k
        self._k_below.clear()

    def _k_for_epoch(self, e: int) -> int:
        """PCT's k for the runs of epoch ``e``: the most decisions of a run in the pilot
        or in an epoch before ``e - 1``.  Kept as running maxima, so that asking costs
        the same however many epochs a long exploration has had."""
        below = self._k_below
        upto = min(max(e - 1, 0), self._last_epoch + 1)
        while len(below) <= upto:
            i = len(below)
            below.append(self._pilot_k if i == 0
                         else max(below[-1], self.epoch_decisions.get(i - 1, 0)))
        return below[upto]

    def _k_ready(self, start: int) -> bool:
        """Is every run that the k of ``start``'s epoch depends on finished?"""
        e = start // EPOCH_RUNS
        return e < 2 or self.done_prefix >= (e - 1) * EPOCH_RUNS

    def _may_start(self, start: int, guess: bool = True) -> bool:
        """May the batch at ``start`` go out now?  When its k is known; or, where
        ``guess`` allows and within ``_ahead`` runs of the first run not settled,
        on the k known so far (which ``_flush_in_order`` checks), once the last
        four epochs settled have not raised it: the most decisions per run have
        stopped growing, so the guess is good."""
        if self._k_ready(start):
            return True
        if not guess or start >= self.done_prefix + self._ahead:
            return False
        oldest = self.done_prefix // EPOCH_RUNS  # the oldest epoch still out
        return (oldest >= GUESS_AFTER_EPOCHS and self._k_for_epoch(start // EPOCH_RUNS)
                == self._k_for_epoch(oldest - 2))

    def _k_right(self, start: int, k: int) -> bool:
        """Did the batch at ``start`` run with its epoch's k (known only once ``_k_ready``)?"""
        return self._k_ready(start) and k == self._k_for_epoch(start // EPOCH_RUNS)

    def _record(self, b: Batch) -> None:
        """Append a finished batch to runs.csv and count it."""
        if self.done.find(1, b.start, b.stop) >= 0:
            # a retried batch that had finished after all: only the runs still missing
            done = self.done
            parts = [Batch.of([o]) for o in b.outcomes()
                     if not (o.run < len(done) and done[o.run])]
        else:
            parts = [b]
        for part in parts:
            for kind, o in self._add(part):
                self._save_first(kind, o)
        self._csv.flush()
        if self.progress is not None:
            self.progress(self.report)

    # -- the search ----------------------------------------------------------------------------

    def run(self) -> Report:
        from .executors import describe
        previous = self._open_out()
        try:
            if self.plan.strategy in SYSTEMATIC:
                self.report.executor = (describe(self.workers, self.dask) if self._shares_dfs()
                                        else "in-process")
                resume = self.resume and dfs_state_saved(self.out)
                self._run_dfs(self._resume_dfs(previous) if resume else None)
            else:
                self._restore(previous)
                self.report.executor = describe(self.workers, self.dask)
                self._pilot()  # (random search needs no k, but a model may loop forever)
                self._run_sampled()
        finally:
            self._csv.close()
        self._guarantee()
        return self.report

    def _pilot(self) -> None:
        """A few random runs to estimate k before the first epoch (PCT needs it up front).

        They also catch a model that loops forever (``LoopWatch``) before any
        batch goes out.
        """
        pilot = Plan(**{**asdict(self.plan), "strategy": "random", "preemption_bound": None})
        rotation = pilot.strategies()
        k = 1
        loops = LoopWatch(self._step_bound())
        for i in range(PILOT_RUNS):
            _, _, r = run_one(pilot, self.scn, rotation, i, 1)
            loops.saw(r)
            if not cut_short(r.kinds()):
                k = max(k, r.decisions)
            self.ncpus = max(self.ncpus, r.ncpus)
        self.pilot_k = k

    def _step_bound(self) -> int:
        """Steps a run may take (``--max-steps``, else the scenario's)."""
        return self.plan.max_steps or self.scn.max_steps

    def _batch_size(self, workers: int) -> int:
        """Runs per batch: large enough that the driver's work per run stays small.

        The driver spends a third of a millisecond of CPU or more on a batch
        whatever its size (a millisecond through ``ProcessPoolExecutor``), so a
        batch should be long.  Only two epochs (whose k is known) can be out
        at once, though, and a batch beyond them goes out on a guessed k
        (``_may_start``), run again when the guess was wrong, which happens
        whenever a later epoch raises k (often, on a model whose runs' lengths
        have a long tail).  So the pool's batches are as long as keeps two
        batches a worker within two epochs (256 runs with 2 workers, 128 with
        4), where nothing waits on a guess, and no shorter than 128 runs, with
        which more workers run on guesses (on ``cma`` with 6 workers, batches of
        half an epoch ran 2,300 of 20,000 runs twice, batches of 128 runs 640).
        A Dask task pays a scheduler round trip and a worker's hand-over from one
        task to the next, so Dask gets fewer, larger batches (up to an epoch), and
        guesses more.
        """
        if workers == 1:
            return 64
        if self.dask is not None:
            return max(64, min(EPOCH_RUNS, self.runs // (workers * 4)))
        fits = max(EPOCH_RUNS // 4, EPOCH_RUNS // workers)
        return max(16, min(self.runs // (workers * 8), fits))

    def _warm_up_batch_size(self, workers: int, size: int) -> int:
        """Runs per batch in the first epochs, before any k may be guessed: then only two
        epochs can be out at once, which should hold two batches a worker."""
        if workers == 1:
            return size
        return min(size, max(64 if self.dask is not None else 16, EPOCH_RUNS // workers))

    def _batches_per_task(self, workers: int, size: int) -> int:
        """Batches sent as one task.  A Dask task costs the scheduler, this process and
        the worker about 9 ms of CPU between them, on the cores the runs need, so
        Dask gets up to four batches (four epochs) a task, while that leaves at least
        eight tasks a worker: a worker waits for the last task to end on another
        for no more than a short one."""
        if self.dask is None or self._inline:
            return 1
        return max(1, min(4, self.runs // (size * 8 * workers)))

    def _window(self, workers: int) -> int:
        """Batches out at once.  A Dask scheduler hands a worker its next task as the
        last one ends only if it holds one: three per worker keep one running, one
        waiting on the worker and one in the scheduler, so a task's round trip to
        this process is never a worker's wait."""
        if self._inline:
            return 1
        return 3 * workers if self.dask is not None else 2 * workers

    def _guess_below(self, workers: int, window: int) -> int:
        """Batches out below which one more may go out on a guessed k.  Dask fills its
        window so (a round trip through the scheduler is long); up to four local
        workers, whose batches two epochs fill the window with, a guess is made only
        when a worker would otherwise have nothing to run; more workers need the
        guesses to be busy at all."""
        if self.dask is not None or workers > 4:
            return window
        return workers

    def _run_sampled(self) -> None:
        from .executors import ClusterLost, default_workers
        inline = self._inline = self.dask is None and self.workers == 1
        try:
            workers = 1 if inline else (self.workers or self._cluster_size()
                                        or default_workers())
        except ClusterLost as e:  # no workers came: nothing ran
            self.report.interrupted = True
            self.report.notes.append(str(e))
            return
        size = self._batch_size(workers)
        pending = self._pending = Batches(self.runs, size, self.done,
                                          self._warm_up_batch_size(workers, size), workers)
        window = self._window(workers)
        guess_below = self._guess_below(workers, window)
        per_task = self._batches_per_task(workers, size)
        if not inline:
            # two epochs hold only 1,024 runs, too few batches to keep many workers busy:
            # later batches go out on a guessed k; this bounds the finished ones held
            self._ahead = 2 * window * per_task * size
        attempts: dict[tuple, int] = {}
        t0 = time.perf_counter()
        try:
            # a broken executor (a worker process died) is replaced and the search goes on
            while (pending and not self._stopping()
                   and self._drive(pending, window, guess_below, per_task, attempts)):
                pass
        except KeyboardInterrupt:
            self.report.interrupted = True
        except ClusterLost as e:  # as good as an interrupt: what finished is kept
            self.report.interrupted = True
            self.report.notes.append(str(e))
        finally:
            self._record_held()
            self.report.elapsed_s = time.perf_counter() - t0

    def _cluster_size(self) -> int | None:
        """The worker processes of the Dask cluster this search runs on, when ``--workers``
        does not say (batches and tasks out are sized for them); None for no cluster."""
        if not _executors.remote_cluster(self.dask):
            return None  # (an empty address is refused as the executor starts)
        t0 = time.perf_counter()
        n = _executors.dask_workers(self.dask)
        self.report.executor_start_s += time.perf_counter() - t0
        return n

    @contextlib.contextmanager
    def _executor(self):
        """The executor of this exploration, its start added to ``executor_start_s``
        (once per executor: a broken one is replaced)."""
        with _executors.make_executor(self.workers, self.dask, [self.model_file]) as ex:
            self.report.executor_start_s += ex.start_s
            yield ex

    def _stopping(self) -> bool:
        return self.stop_on_first and self.report.failing_runs > 0

    def _may_submit(self, batch) -> bool:
        """With --stop-on-first, nothing after a failing run already seen is worth running."""
        held = self._held_failure()
        return held is None or batch[0] <= held

    def _drive(self, pending: "Batches", window: int, guess_below: int, per_task: int,
               attempts: dict) -> bool:
        """Feed batches to one executor, up to ``window`` out and ``per_task`` in a task (on a
        guessed k only while fewer than ``guess_below`` are out), until done; True when it
        broke and must be replaced."""
        from .executors import ClusterLost
        with self._executor() as ex:
            inflight: dict = {}
            try:
                while pending or inflight:
                    while pending and len(inflight) < window and not self._stopping():
                        guess = len(inflight) < guess_below
                        if not (self._may_start(pending.peek()[0], guess)
                                and self._may_submit(pending.peek())):
                            break
                        suspect = pending.peek() in attempts
                        if suspect and inflight:
                            break  # a batch that was out when a worker died runs alone
                        # a batch whose k is known goes alone: only at the start, or run
                        # again on the right k, and the runs after it wait for it
                        alone = suspect or self._k_ready(pending.peek()[0])
                        task = self._take(pending, attempts, 1 if alone else per_task, guess)
                        ks = [self._k_for_epoch(b[0] // EPOCH_RUNS) for b in task]
                        try:
                            if len(task) == 1:
                                (b,), (k,) = task, ks
                                fut = ex.submit(run_batch, self.plan, b[0], b[1], k,
                                                self.stop_on_first)
                            else:
                                fut = ex.submit(run_batches, self.plan,
                                                [(b[0], b[1], k) for b, k in zip(task, ks)],
                                                self.stop_on_first)
                        except cf.BrokenExecutor:
                            # a worker died since the last look: settle what finished (the
                            # batch that killed it counts a try), queue the rest again
                            for b in task:
                                pending.requeue(b)
                            for f in sorted(inflight, key=lambda f: inflight[f]):
                                if f.done():
                                    self._collect(f, inflight[f], pending, attempts)
                                else:
                                    for b in inflight[f]:
                                        pending.requeue(b)
                            return True
                        inflight[fut] = task
                        self._sent_k.update(zip(task, ks))
                        if suspect:
                            break
                    if not inflight:
                        return False
                    finished = _wait_first(ex, inflight)
                    broken = False
                    for fut in sorted(finished, key=lambda f: inflight[f]):
                        broken |= self._collect(fut, inflight.pop(fut), pending, attempts)
                    if broken:
                        # every batch still out went down with the executor: queue them again
                        for fut in inflight:
                            fut.cancel()
                        for task in inflight.values():
                            for b in task:
                                pending.requeue(b)
                        return True
                    if self._stopping():
                        for fut in inflight:
                            fut.cancel()  # later runs than the first failure: not wanted
                        return False
            except ClusterLost:
                raise  # nothing left to cancel them with
            except BaseException:  # an interrupt
                for fut in inflight:
                    fut.cancel()
                raise
        return False

    def _take(self, pending, attempts, n: int, guess: bool) -> tuple:
        """The next batch, and after it up to ``n - 1`` more that may go out now, for
        one task (a batch that was out when a worker died goes alone)."""
        task = [pending.pop()]
        room = pending.share(task[0][0]) - (task[0][1] - task[0][0])
        while (len(task) < n and pending and pending.peek() not in attempts
               and pending.peek()[1] - pending.peek()[0] <= room
               and self._may_start(pending.peek()[0], guess)
               and self._may_submit(pending.peek())):
            b = pending.pop()
            room -= b[1] - b[0]
            task.append(b)
        return tuple(task)

    def _collect(self, fut, task, pending, attempts) -> bool:
        """Record the finished batches of a task, or queue them again; True when the
        executor is broken."""
        try:
            result = fut.result()
        except (ModelError, BadInput):
            raise
        except cf.CancelledError:
            for batch in task:
                pending.requeue(batch)
            return False
        except Exception as e:
            if self._inline:
                raise  # in this process nothing died: an error is an error, with its traceback
            broken = False
            for batch in task:
                broken |= self._retry(batch, e, pending, attempts)
            return broken
        results = [result] if len(task) == 1 else result
        for batch, one in zip(task, results):
            self._finished(batch, one)
        for batch in task[len(results):]:  # not run: --stop-on-first stopped the task
            pending.requeue(batch)
        return False

    def _finished(self, batch, result: Batch) -> None:
        """Record a batch in run order (see ``_flush_in_order``): runs.csv reads the same
        whatever the workers or executor, and --stop-on-first counts exactly."""
        k = self._sent_k.pop(batch)
        if self._inline:
            self._record(result)
            return
        self._held[batch[0]] = (batch, k, result)
        self._flush_in_order()

    def _record_held(self) -> None:
        """An interrupted search keeps every finished run, in order as far as it goes
        (a batch sent ahead of its k, only when that k proves right)."""
        if not self._stopping():
            for start in sorted(self._held):
                _, k, result = self._held.pop(start)
                if self._k_right(start, k):
                    self._record(result)
        self._held.clear()

    def _held_failure(self):
        """The earliest failing run among batches waiting for earlier ones (or None)."""
        runs = [o.run for _, _, b in self._held.values() for o in b.failures]
        return min(runs) if runs else None

    def _flush_in_order(self) -> None:
        """Record held batches while they are next in run order; stop at the first failure.

        So ``runs`` counts exactly the runs up to and including the first failing
        one, as if they had been made one after another, whatever the workers.
        """
        while self._held and not self._stopping():
            start = min(self._held)
            if start > self.done_prefix:
                return  # an earlier batch is still out
            batch, k, result = self._held.pop(start)
            if not self._k_right(start, k):
                # sent ahead on a k its epoch did not get: run it again with that k
                self.reruns += 1
                self._pending.requeue(batch)
                return
            self._record(result)
        if self._stopping():
            self._held.clear()

    def _retry(self, batch, error, pending, attempts) -> bool:
        """A batch's worker died (or its result was lost): queue it again, or report it lost."""
        n = attempts.get(batch, 0) + 1
        attempts[batch] = n
        if n >= BATCH_ATTEMPTS:
            self._lose(batch, error)
        else:
            pending.requeue(batch)
        return isinstance(error, cf.BrokenExecutor)

    def _lose(self, batch, error) -> None:
        """Give up on a batch that keeps killing its workers: report its runs as lost."""
        self.report.lost_runs.append({"first": batch[0], "last": batch[1] - 1,
                                      "error": f"{type(error).__name__}: {error}"})
        self._mark_done(*batch)  # settled, so later epochs may start; not counted as runs
        self._flush_in_order()

    # -- dfs -----------------------------------------------------------------------------------

    def _run_dfs(self, resume=None) -> None:
        """The systematic search (``resume``: an interrupted dfs search's state)."""
        from .exhaust import exhaust
        from .executors import ClusterLost
        plan = self.plan

        name = plan.strategy

        failon = plan.failon()

        def on_run(index, r):
            o = outcome_of(index, name, r.seed, "", r, failon)
            self._dfs_pending.append((o, r if o.failed else None))
            self.ncpus = max(self.ncpus, r.ncpus)
            if len(self._dfs_pending) >= DFS_ROWS_AT_ONCE:
                self._add_dfs_pending(name)

        t0 = time.perf_counter()
        try:
            if name == "ipb":  # iterative preemption bounding, up to --preemption-bound
                from .iterative import iterate
                rep = iterate(plan.spec(plan.seed), scn=self.scn, max_bound=plan.preemption_bound,
                              max_runs=self.runs, stop_on_first=self.stop_on_first, on_run=on_run,
                              counts=failon.counts)
            elif self._shares_dfs():
                rep = self._exhaust_shared(on_run, failon, resume)
            else:
                rep = exhaust(plan.spec(plan.seed), scn=self.scn,
                              preemption_bound=plan.preemption_bound, max_runs=self.runs,
                              stop_on_first=self.stop_on_first, on_run=on_run,
                              counts=failon.counts, on_restart=self._start_record_over)
        except KeyboardInterrupt:
            self.report.interrupted = True
            rep = None
        except ClusterLost as e:  # as good as an interrupt: what finished is kept
            self.report.interrupted = True
            self.report.notes.append(str(e))
            rep = None
        except cf.BrokenExecutor as e:  # a worker process died under a shared dfs search
            self.report.interrupted = True
            self.report.notes.append(f"dfs: a worker process died and the search stopped "
                                     f"there ({e}); run it again")
            rep = None
        finally:
            self._add_dfs_pending(name)
            self.report.elapsed_s = time.perf_counter() - t0
            self._csv.flush()
        if rep is not None:
            self._forget_dfs_state()  # it ended: nothing to go on with
            self.report.exhausted = bool(rep.exhausted)
            self.report.devices = bool(rep.devices)
            if rep.exhausted and rep.devices:
                self.report.notes.append("dfs: device processes (the model's SimPy processes) "
                                         "ran only at the times these schedules gave them; "
                                         "their timing was not enumerated")
            self.report.pruned = getattr(rep, "pruned", None)
            if rep.cut_at is not None:
                self.report.notes.append(
                    f"{name}: schedule {rep.cut_at} ran into the step bound "
                    f"({self._step_bound():,} steps), so the search stopped there: its branches "
                    f"may never end either (a model that loops forever?); if its runs are "
                    f"only that long, raise --max-steps (max_steps in a study file)")
            if getattr(rep, "arrival_windows", False):
                self.report.pruned = None  # no reduction: every decision enumerated
                self.report.notes.append("dfs: interrupts given a window were tried at every "
                                         "placement (plain enumeration, no partial-order "
                                         "reduction)")
            self.report.unseen_shared = list(rep.unseen_shared)
            for group in getattr(rep, "symmetric", ()):
                self.report.notes.append(f"dfs: identical threads ({', '.join(group)}) searched "
                                         f"up to their names: each schedule stands for its "
                                         f"renamings")
            if self.report.runs == 0 and rep.runs:
                self._adopt_dfs_report(rep)

    def _add_dfs_pending(self, name: str) -> None:
        """Count and write the searched runs not added yet (one batch: the schedules'
        count and runs.csv take them the way they take a sampled batch)."""
        pending = self._dfs_pending
        if not pending:
            return
        failed = {o.run: r for o, r in pending if r is not None}
        for kind, o in self._add(Batch.of([o for o, _ in pending])):
            r = failed[o.run]
            v = next(v for v in r.violations if v.kind == kind)
            self._save(kind, o.run, r.seed, list(r.choices), v, {"name": name})
        pending.clear()
        self._csv.flush()
        if self.progress is not None:
            self.progress(self.report)

    def _shares_dfs(self) -> bool:
        """dfs, cut into parts for the executor (in this process with ``--workers 1``):
        the parts' order is the runs' order, whatever executes them."""
        return self.plan.strategy == "dfs"

    def _exhaust_shared(self, on_run, failon, resume=None):
        """The dfs tree shared out over the executor (``smpvm.search.pardfs``), its state
        saved in --out as it goes (``resume``: go on from such a state)."""
        from .pardfs import exhaust_parallel, warm_up
        plan = self.plan
        inline = self.dask is None and self.workers == 1
        if not inline and self.dask in (None, "local"):  # workers forked from here
            warm_up(plan.spec(plan.seed), self.scn)
        with contextlib.ExitStack() as stack:
            ex = stack.enter_context(self._executor())

            def renew():
                stack.close()  # the broken pool (its workers dead or ended)
                return stack.enter_context(self._executor())

            # a local worker that dies leaves a broken pool to replace; a Dask cluster
            # sends a dead worker's tasks elsewhere itself
            return exhaust_parallel(plan.spec(plan.seed), ex,
                                    preemption_bound=plan.preemption_bound, max_runs=self.runs,
                                    stop_on_first=self.stop_on_first, on_run=on_run,
                                    counts=failon.counts, on_restart=self._start_record_over,
                                    scn=self.scn if inline else None,
                                    renew=renew if self.dask is None and not inline else None,
                                    on_checkpoint=self._save_dfs_state, resume=resume,
                                    failures="first")

    # -- an interrupted dfs search, resumed ---------------------------------------------------

    def _dfs_state_path(self) -> str:
        return os.path.join(self.out, DFS_STATE)

    def _forget_dfs_state(self) -> None:
        for path in (self._dfs_state_path(), self._dfs_state_path() + ".tmp"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)

    def _save_dfs_state(self, state: bytes) -> None:
        """Write the search's state (``pardfs``'s checkpoint) whole or not at all, once the
        runs it counts are in runs.csv: a resume cuts runs.csv back to them."""
        import pickle
        self._add_dfs_pending(self.plan.strategy)
        with whole_file(self._dfs_state_path(), "wb") as fp:
            pickle.dump({"smpvm": smpvm_fingerprint(), "search": state}, fp,
                        pickle.HIGHEST_PROTOCOL)

    def _resume_dfs(self, previous: list) -> dict:
        """The saved state of the interrupted search, with runs.csv cut back to the runs
        it counts and those runs counted again here (and their failure files checked)."""
        import pickle
        path = self._dfs_state_path()
        try:
            with open(path, "rb") as fp:
                saved = pickle.load(fp)
            code = saved["smpvm"]
        except Exception:  # (a pickle of another smpvm's classes may not load at all)
            saved = code = None
        if saved is not None and code != smpvm_fingerprint():
            raise BadInput(f"--resume: {out_label(path)} was saved by another version of "
                           f"smpvm; run the search again without --resume")
        try:
            state = pickle.loads(saved["search"])
            n = state["report"].runs
        except Exception:
            raise BadInput(f"--resume: {out_label(path)} is unreadable; run the search "
                           f"again without --resume") from None
        kept = previous[:n]
        if [o.run for o in kept] != list(range(n)):
            raise BadInput(f"--resume: {out_label(self.out)}/runs.csv holds fewer runs than "
                           f"the saved search counted; run it again without --resume")
        self._csv.flush()
        # the header and the runs the state counts, one line each (runs.csv was read
        # whole already: only the few rows past the state are looked for, from the end)
        self._csv.truncate(end_of_rows(os.path.join(self.out, "runs.csv"),
                                       len(previous) - n))  # (appended to from there)
        for o in kept:
            self._add(Batch.of([o]), restored=True)
        self.report.resumed_runs = n
        self._restore_failure_files(kept, state["report"].failures)
        return state

    def _restore_failure_files(self, kept, results) -> None:
        """The failure file of each kind's first failing run, saved again where the
        interrupted search did not get to it (from the failing runs its state keeps)."""
        by_run = {o.run: o for o in kept}
        by_schedule = {schedule_fingerprint(r.choices): r for r in results}
        for kind, run in sorted(self.first_runs.items()):
            if self._saved_before(kind, run):
                continue
            r = by_schedule.get(by_run[run].schedule)
            v = next((v for v in r.violations if v.kind == kind), None) if r else None
            if v is not None:
                self._save(kind, run, r.seed, list(r.choices), v, {"name": "dfs"})

    def _remove_failure_files(self) -> None:
        for old in glob.glob(os.path.join(self.out, "failure-*.json")):
            os.remove(old)

    def _start_record_over(self) -> None:
        """The dfs search starts over (see ``exhaust``): forget the runs recorded so far."""
        self._forget_dfs_state()
        self._csv.seek(0)
        self._csv.truncate()
        self._writer.writerow(CSV_COLUMNS)
        self._remove_failure_files()
        self._dfs_pending = []  # runs of the search given up, not added
        rep = self.report
        rep.runs = rep.runs_this_session = rep.failing_runs = rep.distinct_schedules = 0
        rep.first_failure_run = None
        rep.violations, rep.not_counted, rep.first = {}, {}, {}
        self.schedules, self.first_runs = Distinct(), {}
        self.done, self.done_prefix = bytearray(), 0

    def _adopt_dfs_report(self, rep) -> None:
        """Counts from the report itself when ``on_run`` was never called."""
        self.report.runs = self.report.runs_this_session = rep.runs
        self.report.failing_runs = rep.failing_runs
        self.report.first_failure_run = rep.first_failure_run
        for r in rep.failures:
            for kind in r.kinds():
                self.report.violations[kind] = self.report.violations.get(kind, 0) + 1

    # -- failures --------------------------------------------------------------------------------

    def _save_first(self, kind: str, o: Outcome) -> None:
        """Run ``o`` again here to get its choices, then shrink and save it."""
        rotation = self.plan.strategies()
        k = o.k if isinstance(o.k, int) else 1
        label, seed, r = run_one(self.plan, self.scn, rotation, o.run, k)
        again = outcome_of(o.run, label, seed, k, r, self.plan.failon())
        if (again.kinds, again.location, again.schedule) != (o.kinds, o.location, o.schedule):
            # the model does not run the same way twice (it depends on something
            # outside the run's inputs): say so rather than save another run
            self.report.mismatches.append({"run": o.run, "kind": kind})
        v = next((v for v in r.violations if v.kind == kind), None)
        if v is None:
            return
        desc = rotation.for_run(o.run, k)[1].describe()
        desc["label"] = label
        self._save(kind, o.run, seed, list(r.choices), v, desc)

    def _save(self, kind, run, seed, choices, violation, strategy_desc) -> None:
        from .. import __version__
        from .failures import Failure, failure_file_name, save_failure
        preemptions = original = minimal = None
        if self.shrink:
            from .shrink import shrink
            s = shrink(self.plan.spec(seed), scn=self.scn, choices=choices, kind=kind)
            if s is not None:
                choices, violation = s.choices, s.violation
                preemptions, original, minimal = s.preemptions, s.original_preemptions, s.minimal
        path = os.path.join(self.out, failure_file_name(kind))
        failure = Failure(
            target=self.target, model_path=self.model_file, model_sha256=self.model_sha256,
            variant=self.plan.variant, params=self.params, cpus=self.plan.cpus, seed=seed,
            choices=choices, violation=violation, source_root=self.plan.source_root,
            strategy=strategy_desc, master_seed=self.plan.seed, run=run,
            preemptions=preemptions, original_preemptions=original,
            max_steps=self.plan.max_steps, smpvm_version=__version__)
        save_failure(path, failure)
        self.report.first[kind] = FirstFailure(kind, run, path, preemptions, original, choices,
                                               seed, strategy_desc, minimal)

    # -- the PCT guarantee ------------------------------------------------------------------------

    def _guarantee(self) -> None:
        """PCT's promise for the k used last: 1/(n k^(d-1)) per run, and runs for 99%."""
        from ..strategies.pct import pct_probability, runs_for_confidence
        if self.plan.strategy not in ("pct", "portfolio") or self.ncpus < 1:
            return
        depths = [self.plan.depth] if self.plan.strategy == "pct" else list(
            range(2, max(self.plan.depth, 2) + 1))
        k = self._k_for_epoch(max(0, (self.runs or 1) - 1) // EPOCH_RUNS)
        share = 1 if self.plan.strategy == "pct" else len(depths) + 2  # + random, idb
        for d in depths:
            p = pct_probability(self.ncpus, k, d)
            n = runs_for_confidence(p, 0.99)
            self.report.pct.append({"depth": d, "n": self.ncpus, "k": k, "probability": p,
                                    "runs_for_99": n, "exploration_runs_for_99": n * share})


def run_batches(plan: Plan, batches: list, stop_on_first: bool = False) -> list:
    """``run_batch`` for each (start, stop, k) of ``batches`` (one Dask task); after a
    failing run under ``stop_on_first``, the batches after its own are not run."""
    out = []
    for start, stop, k in batches:
        out.append(run_batch(plan, start, stop, k, stop_on_first))
        if stop_on_first and out[-1].failures:
            break
    return out


class Batches:
    """The batches still to run, made one at a time as they are asked for.

    A batch is a range of missing run indices inside one epoch, at most ``size``
    long, and near the end at most half a worker's share of the runs left
    (``share``).  Only the next fresh batch and the ones to run again are held, so
    memory does not grow with ``--runs``.
    """

    def __init__(self, runs: int, size: int, done: bytearray, warm_up_size: int | None = None,
                 workers: int = 1):
        self.runs = runs
        self.size = size
        #: Near the end, batches shrink to a share of the runs left (``share``).
        self.workers = workers
        #: The size in the epochs before a k may be guessed (``WARM_UP_RUNS``).
        self.warm_up_size = warm_up_size or size
        #: Finished runs by index (shared with the exploration, which marks them).
        self.done = done
        #: Where the next fresh batch starts looking.
        self.next = 0
        #: Batches to run again (their worker died), sorted; all start before ``next``.
        self.again: list[tuple[int, int]] = []
        self._fresh = self._make()

    def _make(self):
        i, done = self.next, self.done
        while i < self.runs and i < len(done) and done[i]:
            i += 1
        if i >= self.runs:
            return None
        size = self.warm_up_size if i < WARM_UP_RUNS else self.size
        size = max(min(size, TAIL_BATCH_RUNS), min(size, self.share(i)))
        end = min(self.runs, (i // EPOCH_RUNS + 1) * EPOCH_RUNS, i + size)
        j = i
        while j < end and not (j < len(done) and done[j]):
            j += 1
        return (i, j)

    def share(self, start: int) -> int:
        """The most runs one task starting at run ``start`` should hold: half a worker's
        share of the runs from there on, so that the last tasks are short and the
        workers finish together (guided self-scheduling) rather than all but one
        waiting on the last long task."""
        return -(-(self.runs - start) // (2 * self.workers))

    def __bool__(self) -> bool:
        return bool(self.again) or self._fresh is not None

    def peek(self) -> tuple[int, int]:
        return self.again[0] if self.again else self._fresh

    def pop(self) -> tuple[int, int]:
        if self.again:
            return self.again.pop(0)
        b = self._fresh
        self.next = b[1]
        self._fresh = self._make()
        return b

    def requeue(self, batch: tuple[int, int]) -> None:
        if batch not in self.again:
            self.again.append(batch)
            self.again.sort()


def out_label(path: str) -> str:
    return path.rstrip(os.sep) or path


#: The deepest PCT search (``--depth``); the portfolio holds one member per depth.
MAX_DEPTH = 32


def _check_at_most(name, value, maximum, why) -> None:
    if value is not None and value > maximum:
        raise BadInput(f"{name} must be at most {maximum} ({why}), got {value}")


def _check_at_least(name, value, minimum) -> None:
    if value is not None and value < minimum:
        raise BadInput(f"{name} must be at least {minimum}, got {value}")


def explore(target: str, **options) -> Report:
    """Explore ``target``'s schedules; see ``Exploration`` for the options."""
    return Exploration(target, **options).run()
