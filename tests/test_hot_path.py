"""The engine's loops' hand-inlined copies do exactly what the plain code does.

``Machine._loop_timed`` and ``_step_timed`` carry inline copies of
``_pop_due``, ``duration`` and the lock operations' ``execute`` (they save a
fifth of a contended cycle); ``_loop_explore`` carries ``_step``, ``_resume``
and ``pick``.  Every shipped scenario and variant runs both ways here, timed
and under a search strategy, and the traces must be identical byte for byte.
"""

import glob
import os

import pytest

from smpvm import Machine, run_scenario
from smpvm.scenario import scenarios_in
from smpvm.strategies import make_strategy
from smpvm.trace import HashSink

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = [(path, scn.name, v)
         for path in sorted(glob.glob(os.path.join(ROOT, "models", "*", "*.py")))
         for scn in scenarios_in(path) for v in scn.variants
         if "contigmalloc" not in path]  # a 4 GB machine: covered by its own tests


def trace_of(path, name, variant, plain, monkeypatch, strategy=None):
    monkeypatch.setattr(Machine, "plain_hot_path", plain)
    scn = next(s for s in scenarios_in(path) if s.name == name)
    sink = HashSink()
    r = run_scenario(scn, variant=variant, seed=7, trace=sink,
                     strategy=make_strategy(strategy) if strategy else None)
    return sink.hexdigest(), sink.count, r.kinds(), r.time_ns, r.choices


@pytest.mark.parametrize("path,name,variant", CASES,
                         ids=[f"{os.path.basename(p)}::{n}[{v}]" for p, n, v in CASES])
def test_inline_copies_match_the_plain_code(path, name, variant, monkeypatch):
    inline = trace_of(path, name, variant, False, monkeypatch)
    plain = trace_of(path, name, variant, True, monkeypatch)
    assert inline == plain and inline[1] > 0


@pytest.mark.parametrize("path,name,variant", CASES,
                         ids=[f"{os.path.basename(p)}::{n}[{v}]" for p, n, v in CASES])
def test_exploration_inline_copies_match_the_plain_code(path, name, variant, monkeypatch):
    inline = trace_of(path, name, variant, False, monkeypatch, "pct")
    plain = trace_of(path, name, variant, True, monkeypatch, "pct")
    assert inline == plain and inline[1] > 0
