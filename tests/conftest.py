"""Shared helpers for the engine's tests: run a set-up function as a scenario.

Most engine tests build a tiny machine inline: a few locks, two or three
threads, and assertions on what happened.  ``simulate(setup)`` turns such a
set-up function into a scenario and runs it through ``run_scenario``, the
same path the CLI takes, so tests exercise the engine as users do.
``RandomWalk`` is the smallest exploration strategy (every runnable CPU is
an option, picked uniformly from the strategy's seeded stream); the engine's
own tests use it so they do not depend on the search strategies' modules.
"""

from __future__ import annotations

import os

import pytest

from smpvm import Costs, Strategy, run_scenario, scenario
from smpvm.trace import MemorySink

#: Project root, where ``smpvm`` commands in tests run from.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: The test model files.
MODELS = os.path.join(ROOT, "tests", "models")


class RandomWalk(Strategy):
    """Exploration: any CPU that is not blocked may step; pick one at random."""

    name = "random-walk"

    def pick(self, kind, options, last):
        return self.choose(options)


class Scripted(Strategy):
    """Exploration driven by a fixed preference: the first listed CPU that may step."""

    name = "scripted"

    def __init__(self, order):
        self.order = list(order)

    def pick(self, kind, options, last):
        for cid in self.order:
            if cid in options:
                return cid
        return options[0]


def free_costs(**overrides) -> dict:
    """``--set``-style parameters making every cost zero (then ``overrides``), no jitter."""
    params = {f"costs.{name}": 0 for name in Costs.field_names()}
    params.update({f"costs.{k}": v for k, v in overrides.items()})
    return params


def simulate(setup, *, strategy=None, seed=0, cpus=None, params=None, trace=None,
             max_steps=None, witness=True, lockstat=True):
    """Run ``setup(m)`` (which makes locks and spawns threads) once; return the RunResult.

    ``params`` holds cost overrides only (``costs.<field>``); the default is
    free operations without jitter so that tests can predict times exactly.
    """
    def inline_scenario(m, variant):
        setup(m)

    scn = scenario()(inline_scenario).__smpvm_scenario__
    return run_scenario(scn, params=free_costs() if params is None else params,
                        cpus=cpus, seed=seed, strategy=strategy, trace=trace,
                        max_steps=max_steps, witness=witness, lockstat=lockstat)


def simulate_traced(setup, **kw):
    """``simulate`` keeping the trace; returns (result, records)."""
    sink = MemorySink()
    r = simulate(setup, trace=sink, **kw)
    return r, sink.records


def stat_of(result, name):
    """The lock statistics summary of class ``name``."""
    for s in result.lockstat:
        if s.name == name:
            return s
    raise KeyError(f"no lock class {name!r} in {[s.name for s in result.lockstat]}")


def cli(capsys, *args):
    """Run ``smpvm ARGS`` in this process: (exit status, stdout, stderr)."""
    from smpvm.cli import main
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return (exc.value.code or 0), out, err


def assert_one_error_line(err: str, *fragments: str) -> str:
    """stderr is one ``smpvm: error:`` line holding every fragment; returns that line."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got: {err!r}"
    assert lines[0].startswith("smpvm: error: "), lines[0]
    assert "Traceback" not in err
    for frag in fragments:
        assert frag in lines[0], f"{frag!r} not in {lines[0]!r}"
    return lines[0]


def spec_of(scn, **kw):
    """A RunSpec for an already-loaded scenario (the scenario itself goes as ``scn=``)."""
    from smpvm import RunSpec
    return RunSpec(f"{scn.file}::{scn.name}", **kw)


#: ``smpvm explore`` arguments of the buggy doomed-object tree at three allocators (1,773
#: schedules, 1,697 failing): a dfs search long enough for a fault to cut into.
DOOMED3_DFS = [os.path.join(ROOT, "models", "freebsd", "device_pager.py") + "::doomed_object",
               "--variant", "buggy", "--set", "allocators=3", "--strategy", "dfs", "--seed", "1"]


def outcome(r):
    """What a run ended with: its violation kinds and the model's own final-state metrics
    (what searches compared against plain enumeration must both reach)."""
    return (tuple(r.kinds()), tuple(sorted((k, repr(v)) for k, v in r.metrics.items())))


#: How long ``slow_executor_start`` makes the local pool take to start.
SLOW_START_S = 0.5


@pytest.fixture
def slow_executor_start(monkeypatch):
    """The local pool takes ``SLOW_START_S`` longer to start, as a Dask cluster's import
    and processes take: what a search says of its start can be checked without Dask."""
    import time

    from smpvm.search import pool

    class SlowToStart(pool.ProcessPool):
        def __init__(self, *args, **kwargs):
            time.sleep(SLOW_START_S)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(pool, "ProcessPool", SlowToStart)
    return SLOW_START_S
