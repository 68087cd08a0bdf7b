"""The engine's loops' hand-inlined copies do exactly what the plain code does.

``Machine._loop_timed`` and ``_step_timed`` carry inline copies of
``_pop_due``, ``duration`` and the lock operations' ``execute`` (they save a
fifth of a contended cycle); ``_loop_explore`` carries ``_step``, ``_resume``
and ``pick``.  Every shipped scenario and variant runs both ways here, timed
and under a search strategy, and the traces must be identical byte for byte.
Under ``dfs`` the loop also takes the steps a run shares with the run before
without asking the search (``Strategy.follow``); the plain code asks at every
step, and the searches must make the same runs.
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


#: dfs searches: plain, with identical threads, with plain Python state handed between
#: CPUs, with spin-waits, with callouts, with a device and interrupts (whose runs the
#: engine does not follow: the devices' times need the search's own book-keeping).
#: The last field: whether runs share paths the engine follows.
DFS_CASES = [
    ("models/freebsd/device_pager.py::doomed_object", "fixed", {"allocators": 2}, True),
    ("models/freebsd/device_pager.py::handle_race", "buggy", {}, True),
    ("models/linux/mpc52xx_spi_work.py::remove", "buggy", {}, True),
    ("models/freebsd/snd_dummy_callout.py::detach", "buggy", {}, True),
    ("tests/models/coverage_cases.py::busy_wait", "pause", {}, True),
    ("tests/models/coverage_cases.py::plain_list", "plain", {}, False),
    ("models/freebsd/pager_io.py::pageout_vs_terminate", "buggy", {}, False),
]


def dfs_runs(target, variant, params, plain, monkeypatch):
    from smpvm import RunSpec
    from smpvm.search.exhaust import exhaust
    monkeypatch.setattr(Machine, "plain_hot_path", plain)
    runs = []
    report = exhaust(RunSpec(os.path.join(ROOT, target), variant=variant, params=params, seed=1),
                     max_runs=300, on_run=lambda i, r: runs.append((tuple(r.choices), r.kinds())))
    return runs, report.summary()


@pytest.mark.parametrize("target,variant,params,follows", DFS_CASES,
                         ids=[c[0].split("/")[-1] for c in DFS_CASES])
def test_dfs_runs_are_the_same_when_the_engine_follows_the_replayed_path(
        target, variant, params, follows, monkeypatch):
    """The steps a dfs run shares with the run before are taken by the engine without
    asking the search (``Strategy.follow``); asking it at every step, as the plain code
    does, must give the same runs."""
    from smpvm.strategies.dfs import DFS
    followed = []
    real = DFS.followed
    monkeypatch.setattr(DFS, "followed", lambda self, n: (followed.append(n - self._k),
                                                          real(self, n)))
    fast = dfs_runs(target, variant, params, False, monkeypatch)
    steps_followed = sum(followed)
    slow = dfs_runs(target, variant, params, True, monkeypatch)
    assert fast == slow and len(fast[0]) > 1
    assert (steps_followed > 0) == follows
    assert sum(followed) == steps_followed  # the plain code asks at every step


def test_state_handed_on_along_the_followed_path_is_looked_for_again(monkeypatch):
    """A callout set on the followed path may hand plain state to another CPU
    (``Machine.escaped``): the search is told at that step, as ``stepped`` would be,
    and its runs are the plain code's (the test above)."""
    from smpvm import RunSpec
    from smpvm.search.exhaust import exhaust
    from smpvm.strategies.dfs import DFS
    told = []
    real = DFS.escaped_on_path
    monkeypatch.setattr(DFS, "escaped_on_path", lambda self: (told.append(self._k),
                                                              real(self)))
    exhaust(RunSpec(os.path.join(ROOT, "models/freebsd/snd_dummy_callout.py::detach"),
                    variant="buggy", seed=1), max_runs=50)
    assert told
