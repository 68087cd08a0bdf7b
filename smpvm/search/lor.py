"""The lock-order graph of many runs: run a scenario N times and merge what witness learned.

One run's witness sees only the orders that run took; a kernel's WITNESS that
stays up for days sees them all.  ``smpvm lor``, the lock-order survey study
and the demo all run a scenario over a range of seeds and merge every run's
class graph into ``LorGraph``s; this is the one loop that does it.
"""

from __future__ import annotations

from ..scenario import RunSpec, run_spec
from ..witness import observe
from .plan import LoopWatch


def merge_runs(graphs, spec: RunSpec, runs: int, strategy, *, scn=None,
               stop_at_first: bool = False, origin: dict | None = None) -> list:
    """Run ``spec`` with seeds ``spec.seed`` .. ``spec.seed + runs - 1`` into every graph.

    Each run's full witness graph is merged (not only what it reported), with
    an origin naming the target, run number and seed, plus ``origin``'s keys.
    Returns the violation kinds of each run, in run order.
    """
    scn = scn or spec.scenario()
    loops = LoopWatch(spec.max_steps or scn.max_steps)
    kinds = []
    for i in range(runs):
        seed = spec.seed + i
        where = {"target": spec.target, "run": i, "seed": seed, **(origin or {})}
        with observe() as seen:
            r = run_spec(spec.replace(seed=seed), strategy, scn=scn, stop_at_first=stop_at_first)
        loops.saw(r)  # truncated runs, every one: no graph worth the wait
        for lg in graphs:
            if seen:
                lg.add_witness(seen[-1], where, r.violations)
            else:
                lg.add_result(r, where)
        kinds.append(r.kinds())
    return kinds
