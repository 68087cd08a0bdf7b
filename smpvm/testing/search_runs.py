"""Hypothesis strategies of smpvm runs: search a model's parameters and schedules together.

``runs(target, params={"allocators": st.integers(1, 4)})`` is a Hypothesis
strategy whose examples are finished runs of ``target``.  Each example draws
the parameters given as strategies, the CPU count and seed when those are
strategies, and then every scheduling decision of the run from Hypothesis's
data.  A decision is drawn as "stay on the CPU that stepped last" (0) or
"switch to the i-th other CPU" (i), so when a ``@given`` test fails,
Hypothesis's shrinker makes the configuration smaller (fewer threads, CPUs,
objects) *and* the schedule simpler (fewer preemptions) in one search::

    from hypothesis import given, strategies as st
    from smpvm.testing import runs

    @given(runs("models/freebsd/device_pager.py::doomed_object", variant="buggy",
                params={"allocators": st.integers(1, 3)}))
    def test_no_use_after_free(run):
        assert not run.failed, run

A ``Run`` prints the command that replays it exactly, so the falsifying
example Hypothesis shows is one ``smpvm run`` away from a trace.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from ..scenario import RunSpec, load_target, run_spec
from ..strategies.base import Strategy


class Drawn(Strategy):
    """A strategy whose every decision is drawn from Hypothesis's data (0 = no preemption)."""

    name = "replay"  # the recorded choices replay with ``--strategy replay``
    timed = False

    def __init__(self, draw):
        self._draw = draw

    def begin(self, seed):
        super().begin(seed)

    def pick(self, kind, options, last):
        n = len(options)
        i = self._draw(st.integers(0, n - 1))
        if last in options:
            # 0 keeps the last CPU; 1..n-1 name the others in order.
            if i == 0:
                return last
            others = [o for o in options if o != last]
            return others[i - 1]
        return options[i]


@dataclass(frozen=True, repr=False)
class Run:
    """One finished run drawn by ``runs()``: what ran, what it found, how to replay it."""

    spec: RunSpec
    result: object

    @property
    def violations(self) -> list:
        return self.result.violations

    @property
    def failed(self) -> bool:
        return bool(self.result.violations)

    @property
    def choices(self) -> list[int]:
        return list(self.result.choices)

    def replay_command(self) -> str:
        """The ``smpvm run`` command that makes this run again, step for step."""
        s = self.spec
        parts = ["smpvm", "run", s.target]
        if s.variant:
            parts += ["--variant", s.variant]
        for k, v in sorted(s.params.items()):
            parts += ["--set", f"{k}={v}"]
        if s.cpus is not None:
            parts += ["--cpus", str(s.cpus)]
        parts += ["--seed", str(s.seed), "--strategy", "replay"]
        if self.result.choices:
            parts += ["--choices", ",".join(map(str, self.result.choices))]
        return " ".join(parts)

    def __repr__(self) -> str:
        found = "; ".join(f"{v.kind} at {v.location}" for v in self.violations) or "no violations"
        return f"Run({found}; replay: {self.replay_command()})"


def runs(target: str, *, variant: str | None = None, params: dict | None = None,
         cpus=None, seed=0, max_steps: int | None = None) -> SearchStrategy:
    """A Hypothesis strategy of finished runs of ``target`` (see the module docstring).

    ``params`` maps model parameters to values or Hypothesis strategies;
    ``cpus`` and ``seed`` may be values or strategies too.  The scenario is
    loaded once, here, so a bad target fails at collection, not per example.
    """
    scn = load_target(target)
    params = dict(params or {})
    for name in params:
        if name not in scn.params and not name.startswith("costs."):
            from ..violations import BadInput
            raise BadInput(f"{target} has no parameter {name!r} "
                           f"(it has: {', '.join(sorted(scn.params)) or 'none'})")

    def value(draw, v):
        return draw(v) if isinstance(v, SearchStrategy) else v

    @st.composite
    def one_run(draw):
        drawn = {k: value(draw, params[k]) for k in sorted(params)}
        spec = RunSpec(target, variant=variant, params=drawn, cpus=value(draw, cpus),
                       seed=int(value(draw, seed)), max_steps=max_steps)
        return Run(spec, run_spec(spec, Drawn(draw), scn=scn, lockstat=False))

    return one_run()
