"""smpvm against the Python schedule explorers, on the doomed-object race.

    python experiments/schedule_explorers.py [--frontrun PY] [--interleave-test PY]
        [--ploom PY] [--rounds 3] [--samples 200] [--allocators 1,2] [--budget 120]

Question: written for each tool, how soon does each find the race, how many
schedules a second does each sample, and how long does each take to cover
every schedule of the fixed version?  smpvm runs
``models/freebsd/device_pager.py::doomed_object`` through its command line;
each other tool runs the same race written in its own terms
(``explorers/doomed_threads.py`` for frontrun and interleave-test, which
trace plain threaded Python by bytecode; ``explorers/doomed_ploom.py`` for
ploom), under the interpreter given for it (``PY``: a Python with the tool
installed; frontrun's searches run under the ``frontrun`` launcher next to
it).  A tool not given is left out.

* **first failure**: the buggy race, one terminator and one allocator, the
  whole process timed from its start to its exit (imports included; smpvm's
  ``explore --stop-on-first`` also shrinks the schedule and writes the
  failure file and the report), best of ``--rounds``.  Each tool uses its
  way of finding bugs: smpvm its portfolio, frontrun random bytecode
  schedules, interleave-test PCT, ploom its depth-first search.
* **sampled schedules/s**: the fixed race, ``--samples`` random schedules,
  the search alone (smpvm: ``-s random``, its ``runs_per_second``).
* **exhaustive**: the fixed race with each of ``--allocators`` allocators:
  smpvm ``-s dfs`` (dynamic partial-order reduction, sleep sets, identical
  threads up to their names), frontrun's DPOR without a preemption bound,
  interleave-test's depth-first search without one, ploom's search; the
  search alone, or "not done" within ``--budget`` seconds.

The models are the same protocol, not the same state: smpvm's has simulated
time, type-stable memory (a freed object's slot is the next allocation's) and
sleep mutexes that hand the lock to a waiter, so its schedules are not the
others' schedules, and their counts are not comparable one for one.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOOMED = "models/freebsd/device_pager.py::doomed_object"
RUNNER = os.path.join(HERE, "experiments", "explorers", "run.py")
TOOLS = ("frontrun", "interleave-test", "ploom")


#: Every process keeps its compiled bytecode, as an installed package's is kept (the other
#: tools' was compiled when pip installed them); the best round then has it.
CACHED = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


class Parser(argparse.ArgumentParser):
    """Bad arguments are one line and exit 2 (no usage block above it)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def timed(cmd: list[str], budget: float, env: dict | None = CACHED):
    """(wall seconds, completed process), or (None, None) past ``budget``."""
    t0 = time.perf_counter()
    try:
        done = subprocess.run(cmd, cwd=HERE, capture_output=True, text=True, timeout=budget,
                              env=env)
    except subprocess.TimeoutExpired:
        return None, None
    return time.perf_counter() - t0, done


def report_of(done, what: str) -> dict:
    """The JSON report a search printed, its whole standard output."""
    try:
        return json.loads(done.stdout)
    except ValueError:
        pass
    tail = (done.stderr.strip().splitlines() or ["no report"])[-1]
    raise SystemExit(f"{what}: exit {done.returncode}: {tail}")


# -- smpvm, through its command line -----------------------------------------------------------


def smpvm(args: list[str], out: str) -> list[str]:
    return [sys.executable, "-m", "smpvm", "explore", DOOMED, "--json", "-w", "1",
            "-o", out, *args]


def smpvm_first(budget: float):
    with tempfile.TemporaryDirectory() as out:
        wall, done = timed(smpvm(["-v", "buggy", "--stop-on-first"], out), budget)
    if done is None:
        return None
    return wall, report_of(done, "smpvm").get("failing_runs", 0) > 0


def smpvm_sample(samples: int, budget: float):
    with tempfile.TemporaryDirectory() as out:
        _, done = timed(smpvm(["-v", "fixed", "-s", "random", "-n", str(samples)], out), budget)
    return None if done is None else report_of(done, "smpvm")["runs_per_second"]


def smpvm_exhaust(allocators: int, budget: float):
    with tempfile.TemporaryDirectory() as out:
        _, done = timed(smpvm(["-v", "fixed", "-s", "dfs", "--set", f"allocators={allocators}"],
                              out), budget)
    if done is None:
        return None
    r = report_of(done, "smpvm")
    return r["runs"], r["elapsed_s"], r["exhausted"]


# -- the other tools, through explorers/run.py -------------------------------------------------


def launcher(tool: str, python: str) -> list[str]:
    """How to start ``python`` for ``tool``: frontrun's searches refuse to run outside
    its own launcher, installed beside the interpreter."""
    if tool == "frontrun":
        return [os.path.join(os.path.dirname(python), "frontrun"), python]
    return [python]


def other(tool: str, python: str, mode: str, variant: str, allocators: int, n: int,
          budget: float):
    """(whole-process seconds, the runner's report) or None past ``budget``."""
    cmd = [*launcher(tool, python), RUNNER, tool, mode, variant, str(allocators), str(n),
           str(budget)]
    wall, done = timed(cmd, budget + 30)
    if done is None:
        return None
    return wall, report_of(done, tool)


# -- the table ----------------------------------------------------------------------------------


def best_first(run, rounds: int) -> str:
    times = []
    for _ in range(rounds):
        got = run()
        if got is None:
            return "not found in time"
        wall, found = got
        if not found:
            return "not found"
        times.append(wall)
    return f"{min(times):.2f} s"


def measure(tools: dict, rounds: int, samples: int, allocators: list[int], budget: float):
    rows = []
    first = {"smpvm": best_first(lambda: smpvm_first(budget), rounds)}
    rate = {"smpvm": smpvm_sample(samples, budget)}
    exhaustive = {("smpvm", a): smpvm_exhaust(a, budget) for a in allocators}
    for tool, py in tools.items():
        def first_run(tool=tool, py=py):
            got = other(tool, py, "first", "buggy", 1, 100_000, budget)
            return None if got is None else (got[0], got[1]["found"])
        first[tool] = best_first(first_run, rounds)
        if tool == "ploom":
            rate[tool] = None  # depth-first only
        else:
            got = other(tool, py, "sample", "fixed", 1, samples, budget)
            rate[tool] = None if got is None else got[1]["schedules"] / got[1]["seconds"]
        for a in allocators:
            got = other(tool, py, "exhaust", "fixed", a, 10**7, budget)
            exhaustive[(tool, a)] = None if got is None else (
                got[1]["schedules"], got[1]["seconds"], got[1]["exhausted"])
    for tool in ("smpvm", *tools):
        cells = [tool, first[tool], "-" if rate[tool] is None else f"{rate[tool]:,.0f}"]
        for a in allocators:
            e = exhaustive[(tool, a)]
            if e is None or not e[2]:
                cells.append(f"not done in {budget:.0f} s")
            else:
                cells.append(f"{e[0]:,} in {e[1]:.2f} s")
        rows.append(cells)
    return rows


def main(argv=None) -> int:
    ap = Parser(description=__doc__.splitlines()[0])
    for tool in TOOLS:
        ap.add_argument(f"--{tool}", metavar="PY", help=f"a Python with {tool} installed")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--allocators", default="1,2", help="comma-separated, for the exhaustive searches")
    ap.add_argument("--budget", type=float, default=120.0, help="seconds a search may take")
    a = ap.parse_args(argv)
    try:
        allocators = [int(x) for x in a.allocators.split(",")]
    except ValueError:
        ap.error(f"--allocators takes whole numbers, got {a.allocators!r}")
    if a.rounds < 1 or a.samples < 1 or a.budget <= 0 or min(allocators) < 1:
        ap.error("--rounds, --samples, --allocators and --budget must be positive")
    tools = {}
    for tool in TOOLS:
        py = getattr(a, tool.replace("-", "_"))
        if py:
            for program in launcher(tool, py):
                if not os.access(program, os.X_OK):
                    ap.error(f"--{tool}: {program} is not an executable program")
            tools[tool] = py
    rows = measure(tools, a.rounds, a.samples, allocators, a.budget)
    head = ["tool", "first failure", "sampled schedules/s"] + \
        [f"exhaustive, {n} allocator{'s' if n > 1 else ''}" for n in allocators]
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
