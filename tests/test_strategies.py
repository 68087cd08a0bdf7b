"""The search strategies: random, pct and the portfolio, on the strategy interface.

Each strategy is checked for what it promises on its own (a fair draw; d - 1
change points among the first k decisions; the rotation), for being a pure
function of the run's seed, and, for PCT, for keeping its probabilistic
guarantee on a bug of known depth.
"""

from __future__ import annotations

import os
from collections import Counter

import pytest

from conftest import MODELS
from smpvm import load_target, make_strategy, run_scenario
from smpvm.strategies.pct import PCT
from smpvm.strategies.portfolio import Portfolio
from smpvm.strategies.random import Random
from smpvm.studies.theory import pct_probability, runs_for_confidence

TINY = os.path.join(MODELS, "tiny.py")


def scenario_of(name):
    return load_target(f"{TINY}::{name}")


def drive(strategy, seed, options_per_decision):
    """Feed a strategy a fixed sequence of decision points; its answers."""
    strategy.begin(seed)
    last, out = -1, []
    for options in options_per_decision:
        c = strategy.pick("cpu", options, last)
        assert c in options
        out.append(c)
        last = c
    return out


def test_make_strategy_knows_the_search_strategies():
    assert isinstance(make_strategy("random"), Random)
    assert isinstance(make_strategy("pct", depth=2), PCT)
    assert isinstance(make_strategy("portfolio"), Portfolio)


def test_random_is_a_pure_function_of_the_seed():
    opts = [[0, 1, 2]] * 50
    assert drive(Random(), 7, opts) == drive(Random(), 7, opts)
    assert drive(Random(), 7, opts) != drive(Random(), 8, opts)


def test_random_draws_every_option_about_equally():
    counts = Counter()
    s = Random()
    for seed in range(300):
        counts.update(drive(s, seed, [[0, 1, 2]] * 10))
    # 3000 fair draws among 3: each count is 1000 +- 4.5 standard deviations (26)
    assert all(880 < counts[c] < 1120 for c in (0, 1, 2)), counts


def test_pct_draws_d_minus_1_change_points_among_the_first_k_decisions():
    for depth in (1, 2, 3, 5):
        for seed in range(50):
            s = PCT(depth=depth, k=20)
            s.begin(seed)
            assert len(s.change_at) == depth - 1
            assert all(1 <= at <= 20 for at in s.change_at)
            # each change point gives a priority below every initial one, all distinct
            assert sorted(s.change_at.values()) == list(range(1, depth))


def test_pct_without_change_points_runs_the_highest_priority_cpu_to_the_end():
    s = PCT(depth=1, k=10)
    picks = drive(s, 3, [[0, 1]] * 10)
    assert len(set(picks)) == 1


def test_pct_change_point_preempts_exactly_there():
    s = PCT(depth=2, k=10)
    for seed in range(20):
        picks = drive(s, seed, [[0, 1]] * 10)
        (at,) = s.change_at
        switch = [j + 1 for j in range(1, 10) if picks[j] != picks[j - 1]]
        # with two CPUs always runnable, the only switch is at the change point
        assert switch == ([at] if at > 1 else []), (seed, at, picks)


def test_pct_gives_new_cpus_a_priority_when_they_first_appear():
    s = PCT(depth=2, k=5)
    s.begin(1)
    s.pick("cpu", [0, 1], -1)
    assert set(s.priority) == {0, 1}
    s.pick("cpu", [0, 1, 2], 0)
    assert set(s.priority) == {0, 1, 2}


def test_portfolio_rotates_random_then_pct_depths_then_delay_bounding():
    p = Portfolio(depths=(2, 3), k=9)
    names = [(m.name, getattr(m, "depth", None)) for m in (p.member_for(i) for i in range(8))]
    assert names == [("random", None), ("pct", 2), ("pct", 3), ("idb", None)] * 2
    p.set_k(17)
    assert [m.k for m in p.members[1:]] == [17, 17, 17]


def test_portfolio_used_as_a_strategy_delegates_to_its_runs_member():
    scn = scenario_of("check_then_use")
    direct = run_scenario(scn, variant="buggy", seed=5, strategy=PCT(depth=2, k=11))
    via = run_scenario(scn, variant="buggy", seed=5, strategy=Portfolio(k=11, run=1))
    assert via.choices == direct.choices


def test_pct_meets_its_guarantee_on_a_depth_2_bug():
    """The empirical hit rate of pct d=2 is at least 1/(n k) on a depth-2 bug.

    ``check_then_use`` fails only if the reader checks the pointer before the
    reclaimer clears it and uses it after the reclaimer frees it: two
    ordering constraints.  Over 600 runs with p >= 1/(n k), the expected hits
    are >= 600 p; the assertion allows 3.5 standard deviations below that.
    """
    scn = scenario_of("check_then_use")
    probe = run_scenario(scn, variant="buggy", seed=0, strategy=Random())
    n = probe.ncpus
    k = max(run_scenario(scn, variant="buggy", seed=s, strategy=Random()).decisions
            for s in range(20))
    p = pct_probability(n, k, 2)
    runs = 600
    hits = sum(run_scenario(scn, variant="buggy", seed=s, strategy=PCT(depth=2, k=k)).failed
               for s in range(runs))
    mean, sd = runs * p, (runs * p * (1 - p)) ** 0.5
    assert hits >= mean - 3.5 * sd, (hits, mean)
    assert runs_for_confidence(p) < runs


@pytest.mark.parametrize("strategy", [Random(), PCT(depth=2, k=8), PCT(depth=3, k=8)])
def test_fixed_variants_never_fail(strategy):
    for name in ("publish", "check_then_use", "abba"):
        scn = scenario_of(name)
        for seed in range(150):
            r = run_scenario(scn, variant="fixed", seed=seed, strategy=strategy)
            assert not r.violations, (name, seed, r.violations[0].one_line())
