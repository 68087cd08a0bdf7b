"""Schedules to the first bug, per strategy, on SCTBench's CS programs (``cs.py``).

    python tests/bench/sct/run.py [--limit N] [--only NAME] [--markdown]

For each program and each search strategy, explores with ``--fail-on`` the
program's known violation kind and ``--stop-on-first``, and prints how many
schedules ran up to and including the first failing one ("-" when none failed
within the limit).  ``ipb`` also gives the bug's depth: the bound at which
iterative preemption bounding first fails, which ``EXPECTED`` in ``cs.py``
records; a mismatch is printed and makes the exit status 1.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from cs import EXPECTED  # noqa: E402

from smpvm import load_target  # noqa: E402
from smpvm.search.explore import explore  # noqa: E402
from smpvm.search.iterative import iterate  # noqa: E402
from smpvm.scenario import RunSpec  # noqa: E402

#: (row name, scenario, parameters): the SCTBench / SV-COMP instances.
PROGRAMS = [
    ("account_bad", "account", {}),
    ("arithmetic_prog_bad", "arithmetic_prog", {}),
    ("bluetooth_driver_bad", "bluetooth_driver", {}),
    ("carter01_bad", "carter01", {}),
    ("circular_buffer_bad", "circular_buffer", {}),
    ("phase01_bad", "phase01", {}),
    ("reorder_5_bad", "reorder", {"sets": 4, "checks": 1}),
    ("reorder_10_bad", "reorder", {"sets": 9, "checks": 1}),
    ("reorder_20_bad", "reorder", {"sets": 19, "checks": 1}),
    ("reorder_100_bad", "reorder", {"sets": 99, "checks": 1}),
    ("stack_bad", "stack", {}),
    ("sync01_bad", "sync01", {}),
    ("token_ring_bad", "token_ring", {}),
    ("twostage_bad", "twostage", {"writers": 2, "readers": 1}),
    ("twostage_100_bad", "twostage", {"writers": 100, "readers": 1}),
    ("wronglock_3_bad", "wronglock", {"a": 1, "b": 3}),
    ("wronglock_bad", "wronglock", {"a": 1, "b": 7}),
]
STRATEGIES = ("random", "pct", "portfolio", "idb", "ipb", "dfs")


def schedules_to_bug(target, params, kind, strategy, limit, out) -> int | None:
    rep = explore(target, params={k: str(v) for k, v in params.items()}, strategy=strategy,
                  runs=limit, workers=1, stop_on_first=True, fail_on=kind, shrink=False,
                  out=out)
    return None if rep.first_failure_run is None else rep.first_failure_run + 1


def depth(target, params, kind, limit):
    """The fewest preemptions that show ``kind`` (None: bound 0 did not finish in ``limit``)."""
    scn = load_target(target)
    rep = iterate(RunSpec(target, params=params), scn=scn, kind=kind, stop_on_first=True,
                  max_runs=limit)
    return rep.first_failure_bound


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=10_000)
    ap.add_argument("--only", default=None)
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args(argv)
    target_file = os.path.join(HERE, "cs.py")
    bad = 0
    head = ["program", "kind", "depth"] + list(STRATEGIES)
    print(("| " + " | ".join(head) + " |") if args.markdown else "  ".join(head))
    if args.markdown:
        print("|" + "---|" * len(head))
    with tempfile.TemporaryDirectory() as tmp:
        for row, name, params in PROGRAMS:
            if args.only and args.only not in row:
                continue
            kind, known = EXPECTED[name]
            target = f"{target_file}::{name}"
            t0 = time.perf_counter()
            d = depth(target, params, kind, args.limit)
            cells = []
            for s in STRATEGIES:
                n = schedules_to_bug(target, params, kind, s, args.limit,
                                     os.path.join(tmp, f"{row}-{s}"))
                cells.append("-" if n is None else str(n))
            shown = "?" if d is None else str(d)
            if d is not None and d != known:
                bad += 1
                shown += f" (EXPECTED says {known})"
            line = [row, kind, shown] + cells
            print(("| " + " | ".join(line) + " |") if args.markdown else "  ".join(line),
                  flush=True)
            print(f"    {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
