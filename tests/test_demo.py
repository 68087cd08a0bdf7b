"""``smpvm demo`` end to end, as a user runs it: a fresh directory, the installed command.

The demo explores the 2007 doomed-object race, prints the shrunk failing
interleaving as a two-column narrative with the command that replays it,
writes a Perfetto trace and the lock-order graph, and shows the fixed code
surviving as many schedules plus an exhaustive search.  The test runs it
once (with fewer schedules than the default) in a temporary working
directory, checks what it printed and wrote, then runs the printed
``smpvm replay`` command and checks that the same violation comes back.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

VIOLATION_KINDS = ("use-after-free", "double-free", "assertion", "deadlock",
                   "lock-order-reversal", "spl-violation", "sleep-with-spinlock", "recursion",
                   "unlock-not-held", "max-steps")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def smpvm_command() -> list[str]:
    """The console script installed beside this Python, else the module."""
    script = os.path.join(os.path.dirname(sys.executable), "smpvm")
    if os.access(script, os.X_OK):
        return [script]
    return [sys.executable, "-m", "smpvm"]


def run_smpvm(cwd, *args):
    # the timeout only keeps a broken engine from hanging the suite
    return subprocess.run(smpvm_command() + list(args), cwd=cwd, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """(working directory, completed process) of one `smpvm demo --runs 300 --out demo-out`."""
    cwd = tmp_path_factory.mktemp("demo-cwd")
    proc = run_smpvm(cwd, "demo", "--runs", "300", "--out", "demo-out")
    return cwd, proc


def printed_violation_kind(stdout: str) -> str:
    """The kind on the line the demo prints under the narrative: ``<kind>: <message>``."""
    for line in stdout.splitlines():
        for kind in VIOLATION_KINDS:
            if line.startswith(f"{kind}: "):
                return kind
    raise AssertionError(f"no violation line in the demo's output:\n{stdout}")


def replay_path(stdout: str) -> str:
    m = re.search(r"Replay it exactly:\s+\S*smpvm replay (\S+)", stdout)
    assert m, f"no replay command in:\n{stdout}"
    return m.group(1)


def test_the_demo_finishes_and_tells_its_story(demo):
    cwd, proc = demo
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "Traceback" not in out + proc.stderr
    assert "smpvm replay" in out
    # the narrative: a time column and one column per CPU, named by its thread
    header = next(line for line in out.splitlines() if line.startswith("time µs"))
    assert re.match(r"time µs\s*\|\s*CPU0 Pt\s*\|\s*CPU1 Pa", header), header
    assert "The race reproduces and the fix holds." in out
    m = re.search(r"(\d+) of 300 schedules fail", out)
    assert m and 0 < int(m.group(1)) <= 300
    assert "0 failures in 300 schedules." in out
    m = re.search(r"Exhaustive search: all (\d+) schedules explored, 0 failed", out)
    assert m and int(m.group(1)) > 0
    assert printed_violation_kind(out) in ("use-after-free", "assertion")


def test_the_demo_writes_trace_graph_and_failure(demo):
    cwd, proc = demo
    base = cwd / "demo-out"
    with open(base / "doomed-object.trace.json", encoding="utf-8") as fp:
        trace = json.load(fp)
    events = trace["traceEvents"]
    assert events
    # the trace ends in the violation the demo printed
    flagged = [e["name"] for e in events if e.get("cat") == "violation"]
    assert flagged == [printed_violation_kind(proc.stdout)]
    threads = {e["args"]["name"] for e in events if e.get("name") == "thread_name"}
    assert {"CPU0 Pt", "CPU1 Pa"} <= threads
    with open(base / "lock-order.png", "rb") as fp:
        assert fp.read(8) == PNG_SIGNATURE
    assert (base / "lock-order.dot").read_text().lstrip().startswith(("digraph", "strict digraph"))
    failure_file = cwd / replay_path(proc.stdout)
    assert failure_file.is_file()
    with open(failure_file, encoding="utf-8") as fp:
        saved = json.load(fp)
    assert saved["variant"] == "buggy" and saved["target"].endswith("::doomed_object")
    assert saved["violation"]["kind"] == printed_violation_kind(proc.stdout)
    assert (base / "buggy" / "runs.csv").is_file()


def test_the_printed_replay_command_reproduces_the_violation(demo):
    cwd, proc = demo
    path = replay_path(proc.stdout)
    kind = printed_violation_kind(proc.stdout)
    text = run_smpvm(cwd, "replay", path)
    assert text.returncode == 1, text.stdout + text.stderr
    assert f"reproduced {kind}" in text.stdout
    as_json = run_smpvm(cwd, "replay", path, "--json")
    assert as_json.returncode == 1
    doc = json.loads(as_json.stdout)
    assert doc["reproduced"] is True and doc["model_changed"] is False
    assert doc["recorded"]["kind"] == kind
    assert [v["kind"] for v in doc["violations"]][0] == kind


def test_the_demo_refuses_a_bad_run_count(tmp_path):
    proc = run_smpvm(tmp_path, "demo", "--runs", "0", "--out", "d")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("smpvm: error: ") and "--runs" in lines[0]
