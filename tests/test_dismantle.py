"""An exploration's runs are freed by reference counting, not left to the cycle collector.

``Machine.dismantle`` undoes the references that tie a finished run into
cycles; the result must not change, and the run must leave (almost) nothing
for the collector.
"""

import gc
import os

from smpvm.scenario import Setup, load_target
from smpvm.search.plan import Plan, run_batch
from smpvm.strategies import make_strategy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOOMED = os.path.join(ROOT, "models/freebsd/device_pager.py") + "::doomed_object"


def plan(variant):
    return Plan(target=DOOMED, variant=variant, params={}, cpus=None, seed=1,
                strategy="portfolio", depth=3, preemption_bound=None, max_steps=None,
                source_root=ROOT)


def cyclic_garbage(fn) -> int:
    """Objects that only the cycle collector would free, left by ``fn()``."""
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        fn()
        gc.collect()
        return len(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def test_explored_runs_leave_no_cycles():
    run_batch(plan("buggy"), 0, 20, 8)  # load the model, fill the caches
    left = cyclic_garbage(lambda: run_batch(plan("buggy"), 0, 100, 8))
    assert left < 300  # under 3 per run (the batch's own); about 100 per run left whole


def test_a_dismantled_run_reads_the_same():
    scn = load_target(DOOMED)
    for variant in ("buggy", "fixed", "extra-reference"):
        setup = Setup(scn, variant=variant, lockstat=False, source_root=ROOT)
        for seed in range(12):
            for name in ("random", "pct"):
                whole = setup.run(seed, make_strategy(name))
                taken_apart = setup.run(seed, make_strategy(name), dismantle=True)
                assert [v.to_dict() for v in taken_apart.violations] == \
                    [v.to_dict() for v in whole.violations]
                assert (taken_apart.choices, taken_apart.steps, taken_apart.time_ns) == \
                    (whole.choices, whole.steps, whole.time_ns)
                assert taken_apart.witness_edges == whole.witness_edges
                assert taken_apart.witness_usage == whole.witness_usage
