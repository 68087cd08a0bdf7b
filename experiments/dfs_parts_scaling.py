"""How many workers the shared exhaustive search can keep busy, whatever this machine has.

    python experiments/dfs_parts_scaling.py [--allocators 2] [--max-runs N]
                                            [--max-workers 16] [--budget 32]

Question: ``smpvm explore -s dfs --workers W`` cuts the doomed-object model's
tree of schedules into parts (``smpvm.search.pardfs``) and takes their results
strictly in the order the parts were made.  How much of W workers' time can
that keep busy, for W = 1, 2, 4, ... --max-workers, on a machine with that many
cores?  Answered here on one core: every part is searched once, in this
process, and its CPU time noted; then the search is driven again for each W
against W virtual workers.  The driver runs for real (its CPU time counts: it
is one process whatever W is); each part takes its result from the first pass
and occupies the first free virtual worker for the CPU time it took.  The
parts, their order and the runs are the same for every W (the driver's
determinism), so the figure is exact but for what real workers add on top:
process start, pipes, pickling, their own caches.  Those are what
``tests/bench/test_bench_parallel_dfs.py`` measures, on the cores at hand.
Expectation: the speed-up follows W while parts outnumber workers, and levels
off on a small tree, whose parts run out.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import os
import pickle
import sys
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOOMED = os.path.join(HERE, "models", "freebsd", "device_pager.py") + "::doomed_object"


class _Pickled(cf.Future):
    """A result as a worker sends it: unpickled by the driver when it takes it."""

    def result(self, timeout=None):
        return pickle.loads(super().result(timeout))


class VirtualWorkers:
    """An executor for ``exhaust_parallel``: parts' results from ``done`` (or searched
    here and noted there, pickled, as a worker sends them: the driver keeps and
    changes what it is sent), scheduled on ``width`` virtual workers by their CPU
    time; the caller's own CPU time between calls moves the virtual clock too."""

    def __init__(self, width: int, done: dict):
        self._width = width
        self.done = done  # part number -> (part key, pickled result, CPU seconds)
        self.now = 0.0
        self.free = [0.0] * width
        self.spans: list = []  # (start, end) of each part on its worker
        self.driver = 0.0  # the driver's own CPU seconds
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
        part = args[1]
        if part.number not in self.done:
            t = time.process_time()
            result = pickle.dumps(fn(*args, **kwargs), pickle.HIGHEST_PROTOCOL)
            self.done[part.number] = (part.key, result, time.process_time() - t)
            self._mark = time.process_time()
        key, result, cost = self.done[part.number]
        if key != part.key:
            raise RuntimeError(f"part {part.number} differs from the first pass's")
        worker = min(range(self._width), key=self.free.__getitem__)
        start = max(self.now, self.free[worker])
        self.free[worker] = start + cost
        self.spans.append((start, start + cost))
        fut = _Pickled()
        fut.set_result(result)
        self.finish[fut] = self.free[worker]
        return fut

    def wait_first(self, inflight) -> set:
        self._drive()
        self.now = max(self.now, min(self.finish[f] for f in inflight))
        first = {f for f in inflight if self.finish[f] <= self.now}
        for f in first:  # the driver takes each once: let it go with it
            del self.finish[f]
        self._mark = time.process_time()
        return first

    def makespan(self) -> float:
        self._drive()
        return self.now

    def busy(self) -> float:
        """Worker seconds spent on parts up to the end (parts cut off by --max-runs
        count up to there)."""
        end = self.now
        return sum(max(0.0, min(b, end) - a) for a, b in self.spans if a < end)


def worker_counts(most: int) -> list[int]:
    """1, 2, 4, ... below ``most``, then ``most`` itself."""
    counts, w = [], 1
    while w < most:
        counts.append(w)
        w *= 2
    return counts + [most]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--allocators", type=int, default=2)
    ap.add_argument("--max-runs", type=int, default=None,
                    help="stop the search after this many runs (3 allocators: millions)")
    ap.add_argument("--max-workers", type=int, default=16)
    ap.add_argument("--budget", type=int, default=None, help="runs a part makes before it is cut")
    a = ap.parse_args(argv)
    if a.allocators < 1 or a.max_workers < 1 or (a.max_runs is not None and a.max_runs < 1) \
            or (a.budget is not None and a.budget < 1):
        ap.error("--allocators, --max-workers, --max-runs and --budget must be at least 1")
    from smpvm import RunSpec
    from smpvm.search.pardfs import PART_RUNS, exhaust_parallel
    spec = RunSpec(DOOMED, variant="fixed", params={"allocators": a.allocators}, seed=1)
    budget = a.budget or PART_RUNS
    done: dict = {}
    rows = []
    for w in [1] + worker_counts(a.max_workers):  # the first pass searches the parts
        ex = VirtualWorkers(w, done)
        report = exhaust_parallel(spec, ex, max_runs=a.max_runs, budget=budget, chain=0)
        rows.append((w, ex.makespan(), ex.busy(), ex.driver))
    rows = rows[1:]
    one = rows[0][1]
    print(f"doomed object, fixed, {a.allocators} allocator(s): {report.runs:,} schedules"
          f"{'' if report.exhausted else ' (not exhausted)'} in {len(done)} parts of up to "
          f"{budget} runs")
    print(f"{'workers':>8} {'seconds':>9} {'speed-up':>9} {'busy':>6} {'driver':>7}")
    for w, span, busy, driver in rows:
        print(f"{w:>8} {span:>9.2f} {one / span:>8.2f}x {busy / (w * span):>6.0%} "
              f"{driver:>6.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
