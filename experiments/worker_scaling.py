"""How exploration scales with worker processes, and Dask against the local pool.

    python experiments/worker_scaling.py [--runs 160000] [--max-workers N] [--rounds 2]
                                         [--dask] [--dfs]

Question: what does ``smpvm explore --workers W`` gain over one worker on
this machine, for W = 1, 2, 4, ... up to the number of cores, and how does a
``--dask local`` cluster of as many workers compare with the pool?  Each
point is a whole ``smpvm explore ... --json`` process on the doomed-object
model (fixed variant, default portfolio), the figure it reports
(``runs_per_second``: the runs and the writing of runs.csv, the pool's
workers forked at its first batch included; a Dask cluster's start, Dask's
import and its processes, is ``executor_start_s``, printed apart); the best
of ``--rounds``, the worker counts alternating within a round so that load
on the machine hits them alike.
``--dfs`` adds the exhaustive search with four allocators (``-s dfs``), timed
by its ``elapsed_s``.  On a machine with fewer cores than workers the
figures say only how the extra processes share the cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOOMED = "models/freebsd/device_pager.py::doomed_object"


class Parser(argparse.ArgumentParser):
    """Bad arguments are one line and exit 2 (no usage block above it)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def worker_counts(most: int) -> list[int]:
    """1, 2, 4, ... below ``most``, then ``most`` itself."""
    counts, w = [], 1
    while w < most:
        counts.append(w)
        w *= 2
    return counts + [most]


def explore(workers: int, runs: int, dask: bool, dfs: bool) -> dict:
    """One ``smpvm explore --json`` process; its report."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "smpvm", "explore", DOOMED, "-v", "fixed", "--json",
               "-o", out, "--seed", "1"]
        cmd += ["-s", "dfs", "--set", "allocators=4"] if dfs else ["-n", str(runs)]
        cmd += ["--dask", "local", "-w", str(workers)] if dask else ["-w", str(workers)]
        done = subprocess.run(cmd, cwd=HERE, capture_output=True, text=True)
        if done.returncode not in (0, 1):
            raise SystemExit(f"{' '.join(cmd[2:])}: exit {done.returncode}: "
                             f"{done.stderr.strip().splitlines()[-1:]}")
        report = json.loads(done.stdout)
        return report[0] if isinstance(report, list) else report


def measure(counts, rounds, figure, **kw) -> dict[int, float]:
    """Best ``figure(report)`` of each worker count over ``rounds`` alternating rounds."""
    best: dict[int, float] = {}
    for _ in range(rounds):
        for w in counts:
            value = figure(explore(w, **kw))
            best[w] = max(best.get(w, value), value)
    return best


def main(argv=None) -> int:
    ap = Parser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=160_000)
    ap.add_argument("--max-workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--dask", action="store_true", help="also a --dask local cluster")
    ap.add_argument("--dfs", action="store_true", help="also the exhaustive search")
    a = ap.parse_args(argv)
    if a.runs < 1 or a.max_workers < 1 or a.rounds < 1:
        ap.error("--runs, --max-workers and --rounds must be at least 1")
    counts = worker_counts(a.max_workers)
    rate = measure(counts, a.rounds, lambda r: r["runs_per_second"], runs=a.runs,
                   dask=False, dfs=False)
    print(f"doomed object, fixed, {a.runs:,} runs, best of {a.rounds} "
          f"({os.cpu_count()} cores here)")
    print(f"{'workers':>8} {'runs/s':>10} {'speed-up':>9}")
    for w in counts:
        print(f"{w:>8} {rate[w]:>10,.0f} {rate[w] / rate[1]:>8.2f}x")
    if a.dask:
        most = a.max_workers
        on_dask, start = measure([most], a.rounds,
                                 lambda r: (r["runs_per_second"], r["executor_start_s"]),
                                 runs=a.runs, dask=True, dfs=False)[most]
        print(f"--dask local, {most} workers: {on_dask:,.0f} runs/s after {start:.2f} s "
              f"starting the cluster, {on_dask / rate[most]:.2f}x the pool's {rate[most]:,.0f}")
    if a.dfs:
        speed = measure(counts, a.rounds, lambda r: 1.0 / r["elapsed_s"], runs=a.runs,
                        dask=False, dfs=True)
        print("dfs, 4 allocators (7,658 schedules):")
        for w in counts:
            print(f"{w:>8} {1.0 / speed[w]:>9.2f} s {speed[w] / speed[1]:>8.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
