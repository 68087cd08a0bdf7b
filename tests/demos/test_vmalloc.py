"""Demo: Linux 2.4 vmalloc's "page already exists" question, answered by search.

``models/linux/vmalloc.py::vmalloc_vfree`` races one ``vfree`` of an area
against one ``vmalloc`` that may be handed the same range.  These tests
check, through the public API and the CLI, that the stock locking admits no
schedule in which the PTE about to be filled is already set (an exhaustive,
partial-order reduced search), that dropping ``vmlist_lock`` early in
``vfree`` produces exactly that event and a use-after-free of a page, and
that ``__vmalloc``'s failure path is safe; and that ``vread`` readers keep a
writer waiting on 2.4's reader-preferring ``rwlock_t``.

Why the numbers of runs suffice: for ``stock`` and ``partial-failure`` the
proof is ``dfs`` (38 and 29 schedules cover every interleaving); the random
runs are a smoke test of the same thing.  For ``early-unlock``, ``dfs``
(957 schedules) finds both findings; under uniformly random scheduling
(measured over 3,000 seeds) 10.4% of runs end in "page already exists",
2.1% in the oops on the emptied PTE and 0.47% in the use-after-free, so 300
runs miss the first with probability below 0.9**300 (about 2e-14) and the
first use-after-free is expected within ~200 seeds (the test allows 3,000).
Seeds are fixed, so a failure here means the model or the engine changed.
"""

from __future__ import annotations

import json
import os

import pytest

from smpvm import load_target, make_strategy, run_scenario
from smpvm.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join("models", "linux", "vmalloc.py")
RACE = f"{MODEL}::vmalloc_vfree"
STARVE = f"{MODEL}::vread_starvation"


@pytest.fixture(autouse=True)
def _in_project_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def random_runs(target, variant, runs, **params):
    scn = load_target(target)
    strategy = make_strategy("random")
    for seed in range(runs):
        yield run_scenario(scn, variant=variant, params=params, seed=seed, strategy=strategy,
                           lockstat=False)


def cli(capsys, *args):
    """``smpvm ARGS`` in this process: (exit status, stdout)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    return exc.value.code or 0, capsys.readouterr().out


def dfs(capsys, tmp_path, variant):
    rc, out = cli(capsys, "explore", RACE, "--variant", variant, "--strategy", "dfs",
                  "--seed", 1, "--workers", 1, "--out", tmp_path, "--json")
    return rc, json.loads(out)


# -- stock: the QUERY cannot fire ------------------------------------------------------------


def test_stock_vfree_is_proved_by_exhaustive_search(capsys, tmp_path):
    rc, d = dfs(capsys, tmp_path, "stock")
    assert rc == 0
    assert d["exhausted"] is True and d["failing_runs"] == 0 and d["runs"] > 1


def test_stock_reuses_the_range_only_after_the_teardown():
    reused = 0
    for r in random_runs(RACE, "stock", 200):
        assert not r.violations, r.violations[0].message
        # The two locks are never nested in these paths: witness learns no edge.
        assert r.witness_edges == [] or all(
            {e["from"], e["to"]} != {"vmlist_lock", "init_mm.page_table_lock"}
            for e in r.witness_edges)
        reused += r.metrics["reused_freed_range"]
    # Both orders occur: the new area lands on the freed range (after its teardown) or
    # beyond it (when get_vm_area ran first).
    assert 0 < reused < 200


# -- early-unlock: the what-if that makes it fire ----------------------------------------------


def test_early_unlock_meets_the_old_page():
    found = [r.violations[0] for r in random_runs(RACE, "early-unlock", 300) if r.violations]
    gv3 = [v for v in found if "page already exists" in v.message]
    assert gv3, "no 'page already exists' in 300 random schedules"
    for v in gv3:
        assert v.kind == "assertion" and v.ctx == "vmalloc"
        assert "still maps page#0 set by area #1" in v.message  # the freed area's page
    for v in found:  # every finding is one of the three consequences of the reuse
        assert ("page already exists" in v.message or v.kind == "use-after-free"
                or "unable to handle kernel paging request" in v.message), v.message


def test_early_unlock_frees_the_new_owners_page():
    for r in random_runs(RACE, "early-unlock", 3000):
        uaf = [v for v in r.violations if v.kind == "use-after-free"]
        if uaf:
            break
    else:
        pytest.fail("no use-after-free in 3000 random schedules")
    v = uaf[0]
    assert v.ctx == "vmalloc"                     # the new owner writes its buffer...
    assert "by CPU1" in v.extra["alloc"]          # ...a page it allocated itself...
    assert "by CPU0" in v.extra["free"]           # ...that the old area's teardown freed


def test_early_unlock_exhaustive_search_finds_both(capsys, tmp_path):
    rc, d = dfs(capsys, tmp_path, "early-unlock")
    assert rc == 1 and d["exhausted"] is True
    assert set(d["violations"]) == {"assertion", "use-after-free"}


def test_timed_run_reports_page_already_exists():
    r = run_scenario(load_target(RACE), variant="early-unlock", seed=1)
    assert r.kinds() == ["assertion"]
    assert "Gv3: alloc_area_pte: page already exists" in r.violations[0].message


# -- partial-failure: __vmalloc's error path ---------------------------------------------------


def test_partial_failure_is_proved_by_exhaustive_search(capsys, tmp_path):
    rc, d = dfs(capsys, tmp_path, "partial-failure")
    assert rc == 0
    assert d["exhausted"] is True and d["failing_runs"] == 0


def test_partial_failure_frees_every_page_it_mapped():
    # The quiescence check asserts no page leaks and no PTE outlives its area.
    for r in random_runs(RACE, "partial-failure", 100, fail_at_page=1, new_pages=3):
        assert not r.violations, r.violations[0].message


# -- vread_starvation --------------------------------------------------------------------------


def test_vread_starvation_has_no_violation():
    for r in random_runs(STARVE, "stock", 10, readers=2, reads=200, writer_ops=3):
        assert not r.violations, r.violations[0].message


def test_readers_starve_the_writer():
    scn = load_target(STARVE)
    p99 = {}
    for readers in (1, 8):
        r = run_scenario(scn, params={"readers": readers, "reads": 2000}, seed=1)
        assert not r.violations
        assert r.metrics["writer_acquisitions"] == 20
        p99[readers] = r.metrics["writer_wait_p99_ns"]
    # One reader leaves gaps; eight keep the lock read-held until they run out of reads.
    assert p99[1] < 20_000
    assert p99[8] > 100 * p99[1]
