"""Demo: a disk as a SimPy process, its completion interrupt racing vm_object_terminate.

``models/freebsd/pager_io.py::pageout_vs_terminate`` has a page daemon's
async write in flight on a VM object while the object's last reference goes.
The disk is a SimPy process; its completion interrupt, raised with
``m.interrupt`` at splbio, drops ``paging_in_progress`` and wakes the
terminator if it asked to be woken.  These tests check that the engine's
scheduling finds the lost wakeup of the unmasked wait, that the 4.x code
shows nothing, and that a failure found with a device replays exactly.

Why the numbers of runs suffice: under uniformly random scheduling (measured
over 1,000 seeds) 33% of ``buggy`` runs end in the deadlock, so 60 runs miss
it with probability below 0.67**60 (about 4e-11); the seeds are fixed
anyway.  For ``fixed`` the random runs are a smoke test and the exhaustive
search the stronger check (qualified: device timing is not enumerated).
"""

from __future__ import annotations

import os

import pytest

from smpvm import Replay, load_target, make_strategy, run_scenario
from smpvm.search.exhaust import exhaust
from smpvm.trace import MemorySink

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.path.join(ROOT, "models", "freebsd", "pager_io.py") + "::pageout_vs_terminate"


def random_runs(variant, runs):
    scn = load_target(TARGET)
    strategy = make_strategy("random")
    return [run_scenario(scn, variant=variant, seed=seed, strategy=strategy, lockstat=False)
            for seed in range(runs)]


def test_unmasked_pip_wait_loses_the_disk_interrupts_wakeup():
    found = [r.first() for r in random_runs("buggy", 60) if r.failed]
    assert found, "no lost wakeup in 60 random schedules"
    for v in found:
        assert v.kind == "deadlock"
        assert "CPU0 (exit) holds nothing and sleeps on vm_object#0 with no wakeup to come" \
            in v.message


def test_the_lost_wakeup_is_the_interrupt_between_the_test_and_the_sleep():
    scn = load_target(TARGET)
    r = next(r for r in random_runs("buggy", 60) if r.failed)
    sink = MemorySink()
    again = run_scenario(scn, variant="buggy", seed=r.seed, strategy=Replay(r.choices, timed=False),
                         trace=sink)
    assert again.kinds() == ["deadlock"] and again.choices == r.choices
    cpu0 = [(x.ctx, x.action, x.target, x.detail) for x in sink.records if x.cpu == 0]
    test = min(i for i, x in enumerate(cpu0) if x[1] == "load" and x[0] == "exit"
               and x[2] == "vm_object#0.paging_in_progress")
    irq = next(i for i, x in enumerate(cpu0) if x[1] == "irq-begin")
    sleep = next(i for i, x in enumerate(cpu0) if x[1] == "sleep")
    assert test < irq < sleep  # after the thread saw I/O in flight, before it sleeps
    flag = max(i for i, x in enumerate(cpu0) if x[1] == "store" and x[0] == "exit"
               and x[2] == "vm_object#0.flags")
    woke = [x for x in cpu0 if x[1] == "wakeup"]
    if irq < flag:  # before OBJ_PIPWNT is set, the handler sees no one to wake
        assert woke == []
    else:           # after, its wakeup finds nobody asleep yet
        assert woke and all(x[3] == "0" for x in woke)


def test_the_4x_pip_wait_never_fails():
    rs = random_runs("fixed", 200)
    assert [r.kinds() for r in rs if r.failed] == []
    assert all(r.interrupts["disk"]["delivered"] == 1 for r in rs)


def test_timed_runs_see_no_race_the_window_is_too_narrow():
    # With the cost model's durations the interrupt arrives while the terminator sleeps.
    r = run_scenario(load_target(TARGET), variant="buggy", seed=0)
    assert r.violations == [] and r.sim_events > 0


def test_dfs_covers_the_fixed_variant_but_says_less_than_a_proof():
    from smpvm import RunSpec
    rep = exhaust(RunSpec(TARGET, variant="fixed", seed=1))
    assert rep.exhausted and rep.failing_runs == 0 and rep.devices
    assert "device processes only at the times those schedules gave them" in rep.summary()


@pytest.mark.parametrize("variant", ["buggy", "fixed"])
def test_bad_parameters_are_bad_input(variant):
    from smpvm import BadInput, ModelError
    with pytest.raises((BadInput, ModelError), match="disk_ns"):
        run_scenario(load_target(TARGET), variant=variant, params={"disk_ns": -1})


@pytest.mark.parametrize("variant", ["buggy", "fixed"])
def test_runs_with_the_disk_are_byte_identical_across_hash_seeds(tmp_path, variant):
    import json
    import subprocess
    import sys
    smpvm = os.path.join(os.path.dirname(sys.executable), "smpvm")
    r = next(r for r in random_runs("buggy", 60) if r.failed)  # a schedule with the race in it
    choices = ",".join(str(c) for c in r.choices)
    outs = []
    for hash_seed in (1, 2):
        trace = tmp_path / f"t{hash_seed}.json"
        env = dict(os.environ, PYTHONHASHSEED=str(hash_seed))
        p = subprocess.run([smpvm, "run", TARGET, "--variant", variant, "--seed", str(r.seed),
                            "--strategy", "replay", "--choices", choices, "--trace", str(trace),
                            "--json"], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=120)
        assert p.returncode in (0, 1), p.stderr
        outs.append((trace.read_bytes(), json.loads(p.stdout)["trace_sha256"]))
    assert outs[0] == outs[1]


def test_explore_dfs_qualifies_its_verdict_on_the_command_line(capsys, tmp_path):
    import json

    from conftest import cli
    rc, out, err = cli(capsys, "explore", TARGET, "--variant", "fixed", "--strategy", "dfs",
                       "--seed", "1", "--out", tmp_path / "a")
    assert rc == 0
    assert "schedules explored (device processes only at the times those schedules gave them)" \
        in out and "all " not in out.split("explored")[0].splitlines()[-1]
    rc, out, err = cli(capsys, "explore", TARGET, "--variant", "fixed", "--strategy", "dfs",
                       "--seed", "1", "--json", "--out", tmp_path / "b")
    d = json.loads(out)
    assert d["exhausted"] and any("timing was not enumerated" in n for n in d["notes"])
