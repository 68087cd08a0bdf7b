"""An operation made and never yielded is a model error naming its line (``missing `yield`?``)."""

from __future__ import annotations

import os

import pytest

from conftest import ROOT, cli
from smpvm import Machine, ModelError, SleepMutex, load_target, run_scenario, work
from smpvm.strategies.random import Random

MODEL = os.path.join(ROOT, "tests", "models", "forgot.py")


def forgot_line(tag: str) -> int:
    with open(MODEL, encoding="utf-8") as fp:
        for n, line in enumerate(fp, 1):
            if f"# FORGOT {tag}" in line:
                return n
    raise AssertionError(tag)


@pytest.mark.parametrize("variant", ["lock", "helper", "at-end"])
@pytest.mark.parametrize("strategy", [None, "random"])
def test_a_forgotten_yield_names_the_line(variant, strategy):
    scn = load_target(f"{MODEL}::forgot")
    strat = Random() if strategy else None
    with pytest.raises(ModelError) as e:
        run_scenario(scn, variant=variant, strategy=strat, seed=3, source_root=ROOT)
    msg = str(e.value)
    assert "missing `yield`?" in msg
    assert f"tests/models/forgot.py:{forgot_line(variant)}" in msg


def test_operations_made_ahead_and_yielded_later_are_fine():
    r = run_scenario(load_target(f"{MODEL}::forgot"), variant="ahead")
    assert r.violations == [] and r.lockstat[0].acquisitions == 2


def test_a_machine_used_directly_says_which_step():
    m = Machine()
    lk = SleepMutex(m, "L")

    def t():
        yield work(1)
        lk.lock()
        yield work(2)
    m.spawn(t(), name="t0")
    with pytest.raises(ModelError, match=r"t0 made an operation it never yielded .*missing `yield`"):
        m.run()


def test_the_cli_exits_2_with_one_line(capsys):
    code, out, err = cli(capsys, "run", f"{MODEL}::forgot", "--variant", "lock")
    assert code == 2
    assert "missing `yield`?" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
