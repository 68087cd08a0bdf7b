"""The kernel-idiom models: each buggy variant is found by the search, each fixed one is clean.

200 random schedules per variant: the buggy variants fail in 8% (ifa_epoch)
to 100% (enetc) of runs under the portfolio (models READMEs), so missing
them all in 200 has a probability below 1e-7; the fixed variants are clean
in 2,000 portfolio runs each.
"""

import os

import pytest

from conftest import ROOT
from smpvm import load_target, make_strategy, run_scenario

CASES = [
    ("models/freebsd/snd_dummy_callout.py::detach", "buggy", {"use-after-free"}),
    ("models/freebsd/snd_dummy_callout.py::detach", "drain-locked", {"deadlock"}),
    ("models/freebsd/snd_dummy_callout.py::detach", "fixed", set()),
    ("models/freebsd/ifa_epoch.py::lookup", "buggy", {"use-after-free"}),
    ("models/freebsd/ifa_epoch.py::lookup", "no-epoch-call", {"use-after-free"}),
    ("models/freebsd/ifa_epoch.py::lookup", "fixed", set()),
    ("models/linux/enetc_tstamp.py::onestep", "buggy", None),
    ("models/linux/enetc_tstamp.py::onestep", "fixed", set()),
    ("models/linux/mpc52xx_spi_work.py::remove", "buggy", {"use-after-free"}),
    ("models/linux/mpc52xx_spi_work.py::remove", "fixed", set()),
]


def _kinds(target, variant, runs=200):
    scn = load_target(os.path.join(ROOT, target))
    seen = set()
    messages = []
    for seed in range(runs):
        st = make_strategy("random")
        st.begin(seed)
        r = run_scenario(scn, variant=variant, seed=seed, strategy=st, source_root=ROOT)
        seen |= set(r.kinds())
        messages += [v.message for v in r.violations]
    return seen, messages


@pytest.mark.parametrize("target,variant,expected", CASES)
def test_model_variant(target, variant, expected):
    seen, messages = _kinds(target, variant)
    if expected is None:  # enetc: the softirq spinning on the lock its CPU holds
        assert seen == {"spl-violation", "deadlock"}, messages[:3]
        assert any("interrupted while holding _xmit_ETHER" in msg for msg in messages)
        assert any("{IN-SOFTIRQ-W}" in msg and "_xmit_ETHER" in msg for msg in messages)
    else:
        assert seen == expected, messages[:3]


def test_the_epoch_report_names_the_readers_section():
    _, messages = _kinds("models/freebsd/ifa_epoch.py::lookup", "no-epoch-call")
    assert any("inside its net_epoch_preempt epoch section entered @ "
               "models/freebsd/ifa_epoch.py:" in msg for msg in messages)
