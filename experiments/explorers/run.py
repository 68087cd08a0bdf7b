"""One search of the doomed-object race by another schedule explorer; prints a JSON line.

    python run.py TOOL MODE VARIANT ALLOCATORS SCHEDULES BUDGET_S

TOOL: frontrun, interleave-test or ploom (run under an interpreter that has
it; frontrun under its own ``frontrun`` launcher).  MODE: ``first`` (stop at
the first failure, the tool's bug-finding default), ``sample`` (SCHEDULES
random schedules) or ``exhaust`` (every schedule, at most SCHEDULES).
``seconds`` is the search alone, from the call to its return.
"""

import functools
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def frontrun_search(mode, variant, allocators, n, budget):
    import frontrun
    from doomed_threads import Pager, holds, workers
    kw = dict(reproduce_on_failure=0)
    if mode in ("sample", "first"):
        kw.update(strategy="random", max_attempts=n, seed=1)
    else:  # DPOR, unbounded preemptions: the whole space
        kw.update(strategy="dpor", preemption_bound=None, max_executions=n,
                  stop_on_first=True, detect_io=False, total_timeout=budget)
    r = frontrun.explore(Pager, workers(variant, allocators), holds, **kw)
    found = not r.property_holds
    done = mode == "exhaust" and not found and r.num_explored < n and \
        not getattr(r, "inconclusive_reason", None)
    return found, r.num_explored, done


def interleave_test_search(mode, variant, allocators, n, budget):
    import interleave_test as it
    from doomed_threads import Pager, holds, workers

    def model():
        p = Pager()
        threads = [it.spawn(w, p) for w in workers(variant, allocators)]
        for t in threads:
            t.join()
        assert holds(p), "use after free or a reference to a dead object"
    kw = dict(iterations=n, seed=1, raise_on_failure=False)
    if mode == "first":
        kw["strategy"] = "pct"
    elif mode == "sample":
        kw["strategy"] = "random"
    else:
        kw.update(strategy="dfs", max_preemptions=10**6)
    r = it.explore(model, **kw)
    return r.failure is not None, r.schedules_run, bool(r.exhausted)


def ploom_search(mode, variant, allocators, n, budget):
    import ploom
    from pathlib import Path
    from doomed_ploom import scenario
    if mode == "sample":
        raise SystemExit("ploom has no sampling strategy")
    config = ploom.Config(max_executions=n, timeout=float(budget))
    try:
        stats = ploom.check(functools.partial(scenario, variant, allocators), config=config,
                            trace_dir=Path(tempfile.gettempdir()) / "ploom-traces",
                            on_failure=lambda *a: None)
    except ploom.ModelCheckError:
        return True, None, False
    except ploom.IncompleteExplorationError as e:
        return False, getattr(getattr(e, "statistics", None), "executions", None), False
    return False, stats.executions, True


SEARCHES = {"frontrun": frontrun_search, "interleave-test": interleave_test_search,
            "ploom": ploom_search}


def main(argv):
    tool, mode, variant, allocators, n, budget = argv
    t0 = time.perf_counter()
    found, schedules, exhausted = SEARCHES[tool](mode, variant, int(allocators), int(n),
                                                 float(budget))
    seconds = time.perf_counter() - t0
    print(json.dumps({"found": found, "schedules": schedules, "exhausted": exhausted,
                      "seconds": round(seconds, 4)}))


if __name__ == "__main__":
    main(sys.argv[1:])
