"""How explorations scale to many workers, measured on one core against virtual workers.

    python experiments/virtual_workers.py explore [--runs 160000] [--max-workers 16]
    python experiments/virtual_workers.py dfs [--allocators 4] [--max-runs N]
                                              [--max-workers 16] [--budget 32]

Question: how much of W workers' time can the exploration driver keep busy,
for W = 1, 2, 4, ... --max-workers, on a machine with that many cores?  Each
exploration of the doomed-object model (fixed variant, seed 1) is driven
against W *virtual* workers: every task the driver submits runs here, in this
process, and its CPU time is noted (its result pickled and unpickled, as a
worker's is); it then occupies the first free virtual worker for that long.
The driver runs for real and its own CPU time moves the virtual clock too: it
is one process whatever W is, and at many workers it is the ceiling.  Left
out: what processes add (their start, pipes, caches they share), which
``tests/bench`` measures on the cores at hand.

``explore`` is ``smpvm explore --workers W`` with the default portfolio (its
batches, windows and guessed k as for W workers; every W's runs.csv is
checked to be the same file).  ``dfs`` is ``smpvm explore -s dfs --workers W``:
the tree's parts are searched once and replayed for each W (their order and
runs are the same for any W, so each part keeps its CPU time).

Expectation: the speed-up follows W while the driver and the work on hand
keep up; a small dfs tree levels off when its parts run out.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import filecmp
import os
import pickle
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOOMED = os.path.join(HERE, "models", "freebsd", "device_pager.py") + "::doomed_object"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from worker_scaling import Parser, worker_counts  # noqa: E402  (as there)


class _Pickled(cf.Future):
    """A result as a worker sends it: unpickled by the driver when it takes it."""

    def result(self, timeout=None):
        return pickle.loads(super().result(timeout))


def run_here(fn, args, kwargs) -> tuple[bytes, float]:
    """Run a task in this process: (its pickled result, its CPU seconds)."""
    t = time.process_time()
    result = pickle.dumps(fn(*args, **kwargs), pickle.HIGHEST_PROTOCOL)
    return result, time.process_time() - t


class VirtualWorkers:
    """An executor whose tasks run here (``run``: fn, args, kwargs -> pickled result,
    CPU seconds), each scheduled on the first free of ``width`` virtual workers for
    its CPU time; the caller's own CPU time between calls moves the clock too."""

    #: Nothing to start: its workers are virtual.
    start_s = 0.0

    def __init__(self, width: int, run=run_here):
        self._width = width
        self._run = run
        self.now = 0.0
        self.free = [0.0] * width
        self.spans: list = []  # (start, end) of each task on its worker
        self.driver = 0.0  # the caller's own CPU seconds
        self.finish: dict = {}
        self._mark = time.process_time()

    def width(self) -> int:
        return self._width

    def _drive(self) -> None:
        t = time.process_time()
        self.now += t - self._mark
        self.driver += t - self._mark
        self._mark = t

    def submit(self, fn, /, *args, **kwargs):
        self._drive()
        result, cost = self._run(fn, args, kwargs)
        self._mark = time.process_time()
        worker = min(range(self._width), key=self.free.__getitem__)
        start = max(self.now, self.free[worker])
        self.free[worker] = start + cost
        self.spans.append((start, start + cost))
        fut = _Pickled()
        fut.set_result(result)
        self.finish[fut] = self.free[worker]
        return fut

    def wait_first(self, inflight, timeout=None) -> set:
        self._drive()
        inflight = list(inflight)
        self.now = max(self.now, min(self.finish[f] for f in inflight))
        first = {f for f in inflight if self.finish[f] <= self.now}
        for f in first:  # the caller takes each once: let it go with it
            del self.finish[f]
        self._mark = time.process_time()
        return first

    def shutdown(self, wait=True, *, cancel_futures=False) -> None:
        pass

    def makespan(self) -> float:
        self._drive()
        return self.now

    def busy(self) -> float:
        """Worker seconds spent on tasks up to the end (those cut off by a stop count
        up to there)."""
        end = self.now
        return sum(max(0.0, min(b, end) - a) for a, b in self.spans if a < end)


def explore_rows(runs: int, counts: list[int]) -> tuple[str, list]:
    """``smpvm explore --workers W`` against W virtual workers, for each W."""
    from smpvm.search import executors
    from smpvm.search.explore import explore
    rows, files = [], []
    with tempfile.TemporaryDirectory() as tmp:
        # imports and first-run caches, paid once, before any W is measured
        explore(DOOMED, variant="fixed", runs=min(runs, 2000), seed=1, workers=1,
                out=os.path.join(tmp, "warm-up"), shrink=False)
        for w in counts:
            ex = VirtualWorkers(w)

            @contextlib.contextmanager
            def virtual(workers=None, dask=None, models=()):
                yield ex
            real, executors.make_executor = executors.make_executor, virtual
            try:
                out = os.path.join(tmp, f"w{w}")
                explore(DOOMED, variant="fixed", runs=runs, seed=1, workers=w, out=out,
                        shrink=False)
            finally:
                executors.make_executor = real
            rows.append((w, ex.makespan(), ex.busy(), ex.driver))
            files.append(os.path.join(out, "runs.csv"))
        if not all(filecmp.cmp(files[0], f, shallow=False) for f in files[1:]):
            raise SystemExit("runs.csv differs between worker counts")
    return f"doomed object, fixed, {runs:,} runs, default portfolio", rows


def dfs_rows(allocators: int, max_runs, budget, counts: list[int]) -> tuple[str, list]:
    """``smpvm explore -s dfs --workers W``'s shared search, parts replayed for each W."""
    from smpvm import RunSpec
    from smpvm.search.pardfs import PART_RUNS, exhaust_parallel
    spec = RunSpec(DOOMED, variant="fixed", params={"allocators": allocators}, seed=1)
    budget = budget or PART_RUNS
    done: dict = {}  # part number -> (its key, pickled result, CPU seconds)

    def searched_once(fn, args, kwargs):
        part = args[1]
        if part.number not in done:
            done[part.number] = (part.key, *run_here(fn, args, kwargs))
        key, result, cost = done[part.number]
        if key != part.key:
            raise RuntimeError(f"part {part.number} differs from the first pass's")
        return result, cost

    rows = []
    for w in [1] + counts:  # the first pass searches the parts
        ex = VirtualWorkers(w, searched_once)
        report = exhaust_parallel(spec, ex, max_runs=max_runs, budget=budget, chain=0)
        rows.append((w, ex.makespan(), ex.busy(), ex.driver))
    return (f"doomed object, fixed, {allocators} allocator(s): {report.runs:,} schedules"
            f"{'' if report.exhausted else ' (not exhausted)'} in {len(done)} parts of up "
            f"to {budget} runs"), rows[1:]


def main(argv=None) -> int:
    ap = Parser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    ex = sub.add_parser("explore", help="sampled exploration (the default portfolio)")
    ex.add_argument("--runs", type=int, default=160_000)
    ex.add_argument("--max-workers", type=int, default=16)
    dfs = sub.add_parser("dfs", help="the shared exhaustive search")
    dfs.add_argument("--allocators", type=int, default=4)
    dfs.add_argument("--max-runs", type=int, default=None,
                     help="stop the search after this many runs")
    dfs.add_argument("--max-workers", type=int, default=16)
    dfs.add_argument("--budget", type=int, default=None,
                     help="runs a part makes before it is cut")
    a = ap.parse_args(argv)
    numbers = [v for v in vars(a).values() if isinstance(v, int)]
    if any(v < 1 for v in numbers):
        ap.error("every number given must be at least 1")
    from smpvm.search.executors import max_workers
    from smpvm.violations import BadInput
    if a.what == "explore" and a.max_workers > max_workers():
        ap.error(f"--max-workers: explore takes at most {max_workers()} workers here "
                 f"(eight per core), got {a.max_workers}")
    counts = worker_counts(a.max_workers)
    try:
        if a.what == "explore":
            title, rows = explore_rows(a.runs, counts)
        else:
            title, rows = dfs_rows(a.allocators, a.max_runs, a.budget, counts)
    except BadInput as e:
        ap.error(str(e))
    one = rows[0][1]
    print(title)
    print(f"{'workers':>8} {'seconds':>9} {'speed-up':>9} {'busy':>6} {'driver':>7}")
    for w, span, busy, driver in rows:
        print(f"{w:>8} {span:>9.2f} {one / span:>8.2f}x {busy / (w * span):>6.0%} "
              f"{driver:>6.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
