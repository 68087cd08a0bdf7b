"""Exploration speed of this tree against another checkout of smpvm, measured side by side.

    python experiments/engine_speed.py /path/to/other/checkout [--rounds 5] [--runs 3000]

Question: does this tree explore the doomed-object model (``device_pager.py::
doomed_object``, variant buggy, the default portfolio) as fast as the other
one?  Each round runs one batch in a fresh process per tree, alternating, so
that load on the machine hits both alike; the best round of each (runs per
CPU second) is compared.  Expected shape: a ratio near 1.0 (the target is
>= 0.9).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("other", help="another checkout of smpvm (the baseline)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=3000)
    a = ap.parse_args(argv)
    here, there = [], []
    for _ in range(a.rounds):
        there.append(probe(os.path.abspath(a.other), a.runs))
        here.append(probe(HERE, a.runs))
    ratio = max(here) / max(there)
    print(f"doomed object, explore in-process: this tree {max(here):,.0f} runs/s, "
          f"baseline {max(there):,.0f} runs/s, ratio {ratio:.2f}x (target >= 0.9x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
