"""The pytest plugin: a model file's EXPECT becomes tests (run here as a user would, in a
subprocess with ``pytest --smpvm``); failures are kept in .smpvm-examples and replayed first."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

MODEL = textwrap.dedent('''
    from smpvm import SleepMutex, scenario, work

    EXPECT = {"counter": {"racy": {"finds": "assertion", "runs": 200},
                          "locked": {"clean": 200}}}
    EXPECT_WRONG = "racy"   # the variant the second file wrongly declares clean

    @scenario(variants=["racy", "locked"])
    def counter(m, variant):
        """Two threads add one to a shared counter."""
        lk = SleepMutex(m, "counter")
        box = {"n": 0}

        def add():
            if variant == "locked":
                yield lk.lock()
            n = box["n"]
            yield work(10)
            box["n"] = n + 1
            if variant == "locked":
                yield lk.unlock()

        def check():
            from smpvm import kassert
            kassert(box["n"] == 2, f"lost update: counter is {box['n']}")

        m.spawn(add(), name="a")
        m.spawn(add(), name="b")
        m.on_quiescence(check)
''')


def pytest_smpvm(cwd, *args):
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--smpvm",
                           "-o", "addopts=", "--rootdir", str(cwd), *args], cwd=cwd,
                          capture_output=True, text=True)


def test_expectations_become_tests_and_failures_are_kept_and_replayed_first(tmp_path):
    (tmp_path / "good.py").write_text(MODEL)
    ok = pytest_smpvm(tmp_path, "good.py")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "2 passed" in ok.stdout

    wrong = MODEL.replace('"locked": {"clean": 200}', '"racy": {"clean": 200}').replace(
        '{"racy": {"finds": "assertion", "runs": 200},', '{')
    (tmp_path / "wrong.py").write_text(wrong)
    bad = pytest_smpvm(tmp_path, "wrong.py")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "expected no failure" in bad.stdout
    assert "replay: smpvm replay" in bad.stdout and "CPU0 a" in bad.stdout  # the narrative
    kept = os.listdir(tmp_path / ".smpvm-examples")
    assert "wrong-counter-racy.json" in kept

    again = pytest_smpvm(tmp_path, "wrong.py")
    assert again.returncode == 1
    assert "the failure kept in" in again.stdout and "still fails" in again.stdout


def test_without_opting_in_model_files_are_not_collected(tmp_path):
    (tmp_path / "good.py").write_text(MODEL)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o",
                           "addopts=", "--rootdir", str(tmp_path), "good.py"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert "no tests ran" in proc.stdout
