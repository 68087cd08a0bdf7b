"""Running one scenario: from a target and its inputs to a ``RunResult``.

This is the single place that turns (scenario, variant, parameters, CPUs,
strategy, seed) into a machine and runs it, so the CLI, exploration and
sweeps all run exactly the same thing for the same inputs.
"""

from __future__ import annotations

from . import machine as _machine
from . import watchdog
from .costs import Costs
from .scenario import BadInput, Scenario
from .violations import ModelError

DEFAULT_COSTS = Costs()


def run_scenario(scn: Scenario, *, variant: str | None = None, params: dict | None = None,
                 cpus: int | None = None, seed: int = 0, strategy=None, trace=None,
                 max_steps: int | None = None, stop_at_first: bool = False,
                 witness: bool = True, lockstat: bool = True, source_root: str | None = None):
    """Run ``scn`` once and return its ``RunResult``.

    Raises ``BadInput`` for a bad variant, parameter or CPU count and
    ``ModelError`` when the model itself misbehaves (raises, yields junk).
    """
    variant = scn.check_variant(variant)
    model_params, cost_overrides = scn.resolve_params(params)
    try:
        costs = DEFAULT_COSTS.override(**cost_overrides) if cost_overrides else DEFAULT_COSTS
    except ValueError as e:
        raise BadInput(str(e)) from None
    if cpus is not None and cpus < 1:
        raise BadInput(f"--cpus must be at least 1, got {cpus}")
    if strategy is None:
        from .strategies.timed import Timed
        strategy = Timed()
    strategy.begin(seed)
    m = _machine.Machine(cpus=cpus if cpus is not None else scn.cpus, seed=seed,
                         strategy=strategy, costs=costs, trace=trace,
                         max_steps=max_steps or scn.max_steps, stop_at_first=stop_at_first,
                         witness=witness, lockstat=lockstat,
                         footprints=getattr(strategy, "wants_footprints", False),
                         source_root=source_root, variant=variant, params=model_params)
    m.witness.declare(scn.order_for(variant))
    m.witness.bless(scn.blessed)
    watchdog.ensure_started()
    prev = _machine._current
    _machine._current = m
    try:
        scn.func(m, variant, **model_params)
    except KeyboardInterrupt:
        _machine._raise_if_stuck()
        raise
    except (ModelError, BadInput):
        raise
    except ValueError as e:
        raise BadInput(f"{scn.name}: {e}") from None
    except Exception as e:
        raise ModelError(f"{scn.name} set-up raised {type(e).__name__}: {e}"
                         f"{_machine._model_where(e)}") from None
    finally:
        _machine._current = prev
    return m.run()


def result_to_dict(r) -> dict:
    """A JSON-ready summary of a run."""
    return {
        "variant": r.variant,
        "params": r.params,
        "seed": r.seed,
        "strategy": r.strategy,
        "cpus": r.ncpus,
        "steps": r.steps,
        "time_ns": r.time_ns,
        "decisions": r.decisions,
        "choices": list(r.choices),
        "violations": [v.to_dict() for v in r.violations],
        "lockstat": [s.as_dict() for s in r.lockstat],
        "metrics": r.metrics,
        "interrupts": r.interrupts,
    }
