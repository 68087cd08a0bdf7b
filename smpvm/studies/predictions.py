"""Analytic values a sweep can draw beside its measurements.

A study names a theory in ``[plot].theory``; for each point the sweep
computes the theory's predictions from the point's parameters and costs, and
``summary.csv`` carries them next to the measured means with the relative
error.  Only these named functions can be used: nothing from a study file is
ever executed.
"""

from __future__ import annotations

from . import theory


def _lock_metric(name: str) -> str:
    return f"lock.the lock.{name}"


def machine_repairman(params: dict, costs: dict) -> dict:
    """Exact closed M/M/1//N values for the single-lock scenario."""
    r = theory.machine_repairman(int(params["cpus"]), float(params["think_ns"]),
                                 float(params["hold_ns"]))
    # the whole-run lock statistics and the model's steady-state window alike
    return {_lock_metric("wait_mean_ns"): r.mean_wait_ns,
            _lock_metric("utilization"): r.utilization,
            "wait_mean_ns": r.mean_wait_ns, "utilization": r.utilization,
            "acquisitions_per_us": r.throughput_per_ns * 1e3}


def _spin(model, params: dict, costs: dict) -> dict:
    # The engine charges a ticket hand-off handoff_ns + per_spinner * spinners, and with
    # k CPUs in the queue (holder included) k - 1 spin; the chain's service time is
    # hold + c*k/2, so c = 2 * per_spinner and handoff_ns - per_spinner joins the hold.
    # A holder nobody waits for releases without a hand-off: its service is the hold.
    per = float(costs.get("ticket_per_spinner_ns", 100))
    handoff = float(costs.get("handoff_ns", 100))
    hold = float(params["hold_ns"])
    r = model(int(params["cpus"]), float(params["think_ns"]), hold + handoff - per, 2 * per,
              lone_hold_ns=hold)
    return {"acquisitions_per_us": r.throughput_per_ns * 1e3}


def ticket_lock(params: dict, costs: dict) -> dict:
    """Boyd-Wickizer et al.'s Markov model of a ticket lock (throughput)."""
    if params.get("variant") == "queued":
        return queued_lock(params, costs)
    return _spin(theory.ticket_lock_markov, params, costs)


def queued_lock(params: dict, costs: dict) -> dict:
    """The same chain with a constant hand-off (a queued lock)."""
    hold = float(params["hold_ns"])
    r = theory.queued_lock_markov(int(params["cpus"]), float(params["think_ns"]), hold,
                                  float(costs.get("handoff_ns", 100)), lone_hold_ns=hold)
    return {"acquisitions_per_us": r.throughput_per_ns * 1e3}


THEORIES = {"machine_repairman": machine_repairman, "ticket_lock": ticket_lock,
            "queued_lock": queued_lock}
