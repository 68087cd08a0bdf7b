"""Exploration speed of this tree against another checkout of smpvm, measured side by side.

    python experiments/engine_speed.py /path/to/other/checkout [--rounds 5] [--runs 3000]

Question: how much faster per core does this tree explore the doomed-object
model (``device_pager.py::doomed_object``, variant buggy, the default
portfolio) than the other one?  Each round runs one batch in a fresh process
per tree, alternating, so that load on the machine hits both alike; the best
round of each (runs per CPU second) is compared.  Against the build before
the per-run set-up and the exploration loop were cut down (``START_OF_WORK``)
the goal is 2x; against an equal build, a ratio near 1.0.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: The commit before the per-core work: the baseline of the 2x goal.
START_OF_WORK = "014c25a"

#: Runs in a fresh interpreter with one tree first on sys.path; prints runs per CPU second.
PROBE = r"""
import os, sys, time
from smpvm.search.plan import Plan, run_batch
target = os.path.abspath("models/freebsd/device_pager.py") + "::doomed_object"
plan = Plan(target=target, variant="buggy", params={}, cpus=None, seed=1, strategy="portfolio",
            depth=3, preemption_bound=None, max_steps=None, source_root=os.getcwd())
runs = int(sys.argv[1])
run_batch(plan, 0, 200, 16)
c0 = time.process_time()
run_batch(plan, 0, runs, 16)
print(runs / (time.process_time() - c0))
"""


def probe(tree: str, runs: int) -> float:
    env = dict(os.environ, PYTHONPATH=tree, PYTHONHASHSEED="0")
    out = subprocess.run([sys.executable, "-c", PROBE, str(runs)], cwd=tree, env=env,
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def compare(other: str, rounds: int = 5, runs: int = 3000) -> tuple[float, float]:
    """Best runs per CPU second of (this tree, ``other``), rounds alternating."""
    here, there = [], []
    for _ in range(rounds):
        there.append(probe(os.path.abspath(other), runs))
        here.append(probe(HERE, runs))
    return max(here), max(there)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("other", help="another checkout of smpvm (the baseline)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=3000)
    a = ap.parse_args(argv)
    here, there = compare(a.other, a.rounds, a.runs)
    print(f"doomed object, explore in-process: this tree {here:,.0f} runs/s, "
          f"baseline {there:,.0f} runs/s, ratio {here / there:.2f}x "
          f"(against {START_OF_WORK}, the goal is >= 2x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
