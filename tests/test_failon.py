"""Failures of the kind asked for: --fail-on / --ignore, stalls with ended holders, gate locks."""

from __future__ import annotations

import json
import os

from conftest import MODELS, assert_one_error_line, cli, simulate
from smpvm import SleepMutex, load_target, run_scenario
from smpvm.search.explore import explore

TINY = os.path.join(MODELS, "tiny.py")
SCT = os.path.join(os.path.dirname(__file__), "bench", "sct", "cs.py")


def test_a_reversal_no_longer_ends_the_search_for_the_deadlock(tmp_path):
    # abba reverses its two locks in almost every run; the deadlock needs both threads
    # to hold their first lock.  --stop-on-first stops at the reversal...
    plain = explore(f"{TINY}::abba", variant="buggy", workers=1, stop_on_first=True,
                    out=tmp_path / "plain")
    assert "lock-order-reversal" in plain.violations
    # ...unless only deadlocks count: then it goes on to one, and still reports the rest
    rep = explore(f"{TINY}::abba", variant="buggy", workers=1, stop_on_first=True,
                  fail_on="deadlock", out=tmp_path / "deadlock")
    assert list(rep.violations) == ["deadlock"] and rep.failing_runs == 1
    assert rep.not_counted.get("lock-order-reversal", 0) >= 1
    assert list(rep.first) == ["deadlock"]
    assert os.path.exists(tmp_path / "deadlock" / "failure-deadlock.json")
    assert not os.path.exists(tmp_path / "deadlock" / "failure-lock-order-reversal.json")
    same = explore(f"{TINY}::abba", variant="buggy", workers=1, stop_on_first=True,
                   ignore="lock-order-reversal", out=tmp_path / "ignore")
    assert same.first_failure_run == rep.first_failure_run


def test_ignored_kinds_set_no_exit_status(capsys, tmp_path):
    code, out, _ = cli(capsys, "explore", f"{TINY}::abba", "--variant", "fixed", "--runs", "20",
                       "--workers", "1", "--ignore", "lock-order-reversal", "--out", tmp_path / "f")
    assert code == 0
    code, out, _ = cli(capsys, "explore", f"{TINY}::abba", "--variant", "buggy", "--workers", "1",
                       "--stop-on-first", "--fail-on", "deadlock", "--out", tmp_path / "b",
                       "--json")
    doc = json.loads(out)
    assert code == 1 and doc["violations"] == {"deadlock": 1} and doc["not_counted"]
    failure = doc["failure_files"]["deadlock"]
    assert cli(capsys, "replay", failure)[0] == 1
    assert cli(capsys, "replay", failure, "--ignore", "deadlock,lock-order-reversal")[0] == 0
    assert cli(capsys, "replay", failure, "--fail-on", "deadlock")[0] == 1


def test_an_unknown_kind_is_bad_input(capsys, tmp_path):
    code, _, err = cli(capsys, "explore", f"{TINY}::abba", "--fail-on", "deadlok",
                       "--out", tmp_path)
    assert code == 2
    assert_one_error_line(err, "--fail-on", "deadlok", "deadlock")


def test_threads_that_ended_holding_a_lock_are_named_in_the_stall():
    # phase01_bad.c: each thread takes x twice and never releases it the second time
    r = run_scenario(load_target(f"{SCT}::phase01"))
    assert r.kinds() == ["deadlock"]
    v = r.violations[0]
    assert "waits for x held by CPU1 (t1) whose thread has ended" in v.message
    assert "thread t1 on CPU1 ended holding x (taken at " in v.message
    assert "cs.py:" in v.location and v.ctx == "t2"  # the waiter, where it waits


def test_ending_with_a_lock_nobody_wanted_is_still_an_assertion_at_its_site():
    def setup(m):
        lk = SleepMutex(m, "kept")

        def t():
            yield lk.lock()
        m.spawn(t(), name="leaky")

    v = simulate(setup).violations[0]
    assert v.kind == "assertion" and "leaky returned with locks held: kept" in v.message
    assert "test_failon.py:" in v.location


def _abba_under(gate_declared, bypass=False):
    def setup(m):
        g, a, b = SleepMutex(m, "gate"), SleepMutex(m, "A"), SleepMutex(m, "B")
        if gate_declared:
            m.witness.gate(g)

        def pair(first, second, gated=True):
            if gated:
                yield g.lock()
            yield first.lock()
            yield second.lock()
            yield second.unlock()
            yield first.unlock()
            if gated:
                yield g.unlock()

        def both():
            yield from pair(a, b)
            yield from pair(b, a)
            if bypass:
                yield from pair(a, b, gated=False)

        m.spawn(both(), name="t")
    return simulate(setup)


def test_orders_serialised_by_a_gate_lock_are_not_reversals():
    assert _abba_under(gate_declared=False).kinds() == ["lock-order-reversal"]
    assert _abba_under(gate_declared=True).kinds() == []
    # one acquisition outside the gate makes the cycle real again
    again = _abba_under(gate_declared=True, bypass=True)
    assert again.kinds() == ["lock-order-reversal"]


PLUGIN_MODEL = '''
from smpvm import SleepMutex, scenario

EXPECT = {"both_orders": {"default": {"clean": 30, "ignore": "lock-order-reversal"}}}

@scenario()
def both_orders(m, variant):
    """One thread takes A then B, later B then A: a reversal witness reports, no deadlock."""
    a, b = SleepMutex(m, "A"), SleepMutex(m, "B")

    def t():
        for first, second in ((a, b), (b, a)):
            yield first.lock()
            yield second.lock()
            yield second.unlock()
            yield first.unlock()
    m.spawn(t(), name="t")
'''


def test_the_pytest_plugin_takes_the_kinds_that_count(tmp_path):
    import subprocess
    import sys

    def pytest_smpvm(name, text):
        (tmp_path / name).write_text(text)
        return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                               "--smpvm", "-o", "addopts=", "--rootdir", str(tmp_path), name],
                              cwd=tmp_path, capture_output=True, text=True)

    ok = pytest_smpvm("ignoring.py", PLUGIN_MODEL)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    strict = pytest_smpvm("strict.py", PLUGIN_MODEL.replace(', "ignore": "lock-order-reversal"',
                                                             ""))
    assert strict.returncode == 1 and "lock-order-reversal" in strict.stdout
