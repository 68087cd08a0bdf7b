"""Exploration speed of this tree against another checkout of smpvm, measured side by side.

    python experiments/engine_speed.py /path/to/other/checkout [--rounds 5] [--runs 3000]
    python experiments/engine_speed.py /path/to/other/checkout --whole [--runs 100000]
    python experiments/engine_speed.py /path/to/other/checkout --instructions [--runs 1000]

Question: how much faster per core does this tree explore the doomed-object
model (``device_pager.py::doomed_object``, the default portfolio) than the
other one?  Each round runs once in a fresh process per tree, alternating, so
that load on the machine hits both alike; the best round of each (runs per
CPU second) is compared.  Against the build before the per-run set-up and the
exploration loop were cut down (``START_OF_WORK``) the goal is 2x; against
an equal build, a ratio near 1.0.

Three measures:

* by default, the runs alone: one batch of the buggy variant through
  ``run_batch``, what a worker does with a batch, timed inside the process;
* ``--whole``: what a user sees, a whole ``smpvm explore -w 1 --json``
  process (fixed variant, runs in this process), as the goal's figures were
  taken: its ``runs_per_second``, and its runs per CPU second of the
  process (start-up included), the driver's work on the rows (runs.csv,
  the distinct-schedules count) on top of the runs;
* ``--instructions``: machine instructions a run (buggy variant, through
  ``run_batch``), counted by valgrind's callgrind as the difference of two
  batch sizes, so start-up drops out.  Not time (a run that allocates less
  is faster than its count says), but the same figure on a busy machine as
  on a quiet one: what tells a change of a few per cent from noise.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: The commit before the per-core work: the baseline of the 2x goal.
START_OF_WORK = "014c25a"

#: The doomed-object exploration (buggy variant) as ``PROBE`` and ``COUNTED`` set it up,
#: in a fresh interpreter with one tree first on sys.path.
BATCH_PLAN = r"""
import os, sys, time
from smpvm.search.plan import Plan, run_batch
target = os.path.abspath("models/freebsd/device_pager.py") + "::doomed_object"
plan = Plan(target=target, variant="buggy", params={}, cpus=None, seed=1, strategy="portfolio",
            depth=3, preemption_bound=None, max_steps=None, source_root=os.getcwd())
"""

#: Prints runs per CPU second of a batch of N runs, after a warm-up batch.
PROBE = BATCH_PLAN + r"""
runs = int(sys.argv[1])
run_batch(plan, 0, 200, 16)
c0 = time.process_time()
run_batch(plan, 0, runs, 16)
print(runs / (time.process_time() - c0))
"""

#: ``run_batch`` of the first N runs, and nothing else (what callgrind counts).
COUNTED = BATCH_PLAN + r"""
run_batch(plan, 0, int(sys.argv[1]), 16)
"""


def _env(tree: str) -> dict:
    """The environment a measured process of ``tree`` runs in."""
    return dict(os.environ, PYTHONPATH=tree, PYTHONHASHSEED="0")


def probe(tree: str, runs: int) -> float:
    out = subprocess.run([sys.executable, "-c", PROBE, str(runs)], cwd=tree, env=_env(tree),
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def instructions(tree: str, runs: int) -> float:
    """Instructions a run of ``tree``: callgrind's count at 200 + ``runs`` runs less at 200."""
    counts = []
    for n in (200, 200 + runs):
        done = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                               sys.executable, "-c", COUNTED, str(n)],
                              cwd=tree, env=_env(tree), capture_output=True, text=True, check=True)
        m = re.search(r"Collected : (\d+)", done.stderr)
        counts.append(int(m.group(1)))
    return (counts[1] - counts[0]) / runs


def whole(tree: str, runs: int, out: str) -> tuple[float, float]:
    """(runs_per_second, runs per CPU second) of one ``smpvm explore -w 1 --json``
    process of ``tree``."""
    cmd = [sys.executable, "-m", "smpvm", "explore", "models/freebsd/device_pager.py::doomed_object",
           "-v", "fixed", "-n", str(runs), "--seed", "1", "-w", "1", "-o", out, "--json"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(cmd, cwd=tree, env=_env(tree), capture_output=True, text=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return json.loads(done.stdout)["runs_per_second"], runs / cpu


def compare(other: str, rounds: int = 5, runs: int = 3000) -> tuple[float, float]:
    """Best runs per CPU second of (this tree, ``other``), rounds alternating."""
    here, there = [], []
    for _ in range(rounds):
        there.append(probe(os.path.abspath(other), runs))
        here.append(probe(HERE, runs))
    return max(here), max(there)


def compare_whole(other: str, rounds: int = 3, runs: int = 100_000) -> dict:
    """Best (runs_per_second, runs per CPU second) of whole explore processes of
    {"here": this tree, "there": ``other``}, rounds alternating."""
    best = {"here": (0.0, 0.0), "there": (0.0, 0.0)}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(rounds):
            for name, tree in (("there", os.path.abspath(other)), ("here", HERE)):
                got = whole(tree, runs, os.path.join(tmp, f"{name}{i}"))
                best[name] = tuple(max(a, b) for a, b in zip(best[name], got))
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("other", help="another checkout of smpvm (the baseline)")
    ap.add_argument("--rounds", type=int, default=None, help="default 5; --whole: 3")
    ap.add_argument("--runs", type=int, default=None,
                    help="runs a round (default 3000; --whole: 100000)")
    ap.add_argument("--whole", action="store_true",
                    help="time whole `smpvm explore -w 1 --json` processes (fixed variant), "
                         "start-up and the driver included, instead of batches of runs")
    ap.add_argument("--instructions", action="store_true",
                    help="count machine instructions a run under valgrind (buggy variant, "
                         "run_batch) instead of timing: a figure noise does not move")
    a = ap.parse_args(argv)
    if a.instructions:
        if shutil.which("valgrind") is None:
            print("--instructions needs valgrind (apt-get install valgrind)", file=sys.stderr)
            return 2
        runs = a.runs or 1000
        here, there = instructions(HERE, runs), instructions(os.path.abspath(a.other), runs)
        print(f"doomed object, instructions a run (callgrind, {runs:,} runs): this tree "
              f"{here:,.0f}, baseline {there:,.0f}; ratio {there / here:.2f}x fewer")
        return 0
    if a.whole:
        best = compare_whole(a.other, a.rounds or 3, a.runs or 100_000)
        (rate, cpu), (rate0, cpu0) = best["here"], best["there"]
        print(f"doomed object, smpvm explore -w 1: this tree {rate:,.0f} runs/s "
              f"({cpu:,.0f} per CPU second), baseline {rate0:,.0f} runs/s ({cpu0:,.0f}); "
              f"ratio {rate / rate0:.2f}x runs/s, {cpu / cpu0:.2f}x per CPU second "
              f"(against {START_OF_WORK}, the goal is >= 2x)")
        return 0
    here, there = compare(a.other, a.rounds or 5, a.runs or 3000)
    print(f"doomed object, explore in-process: this tree {here:,.0f} runs/s, "
          f"baseline {there:,.0f} runs/s, ratio {here / there:.2f}x "
          f"(against {START_OF_WORK}, the goal is >= 2x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
