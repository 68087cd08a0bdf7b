"""smpvm.testing.runs: Hypothesis searches parameters and schedules, and shrinks both."""

import pytest
from hypothesis import find, given, settings, strategies as st

from smpvm.scenario import RunSpec, run_spec
from smpvm.strategies.replay import Replay
from smpvm.testing import runs
from smpvm.violations import BadInput

DOOMED = "models/freebsd/device_pager.py::doomed_object"


#: ``find``'s search, the same in every run of the suite: derandomised (a randomly seeded
#: one was seen to stop shrinking at 3 allocators, once in a whole suite), and without
#: Hypothesis's default deadline, a wall-clock limit that a pause on a loaded machine
#: turns into a flaky failure.
FIND = dict(database=None, deadline=None, derandomize=True)


def test_a_failing_run_is_shrunk_to_the_smallest_configuration_and_replays():
    found = find(runs(DOOMED, variant="buggy", params={"allocators": st.integers(1, 4)}),
                 lambda r: r.failed, settings=settings(max_examples=500, **FIND))
    assert found.spec.params == {"allocators": 1}
    assert found.violations[0].kind == "use-after-free"
    # The falsifying example is the same run again under replay.
    again = run_spec(found.spec, Replay(found.choices))
    assert [v.kind for v in again.violations] == [v.kind for v in found.violations]
    assert again.choices == found.choices
    assert "--strategy replay --choices" in repr(found)


@settings(max_examples=60, deadline=None, database=None)
@given(runs(DOOMED, variant="fixed", params={"allocators": st.integers(1, 3)}))
def test_the_fix_holds_over_drawn_configurations_and_schedules(run):
    assert not run.failed, run


def test_an_unknown_parameter_is_bad_input_at_once():
    with pytest.raises(BadInput, match="no parameter 'threads'"):
        runs(DOOMED, params={"threads": st.integers(1, 2)})


def test_a_drawn_schedule_is_a_pure_function_of_the_draws():
    spec = RunSpec(DOOMED, variant="buggy", params={"allocators": 2})
    a = find(runs(DOOMED, variant="buggy", params={"allocators": 2}), lambda r: r.failed,
             settings=settings(max_examples=300, **FIND))
    b = run_spec(spec, Replay(a.choices))
    assert b.choices == a.choices and b.time_ns == a.result.time_ns
