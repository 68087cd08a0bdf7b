"""Witness rules beyond lock order: lifecycle, interrupt re-enabling, wait context; the
two Linux lock kinds; reports that read like lockdep and WITNESS; ``lor`` per target."""

from __future__ import annotations

import json
import os

import pytest

from conftest import MODELS, ROOT, simulate
from smpvm import (SPLBIO, Mutex, RtMutex, RwSemaphore, SleepMutex, Spinlock, Sx, Zone,
                   pause, splhigh, splraise, splx, work, SPLSOFT)
from smpvm.cli import main


def kinds(r):
    return [v.kind for v in r.violations]


@pytest.mark.parametrize("make", [SleepMutex, Sx, Mutex, RwSemaphore, RtMutex, Spinlock])
@pytest.mark.parametrize("what", ["destroy", "init"])
def test_destroying_or_reinitialising_a_held_lock_is_reported(make, what):
    def setup(m):
        lk = make(m, "L")

        def t():
            yield lk._lock_x
            yield getattr(lk, what)()
            yield lk._unlock_x
            yield getattr(lk, what)()   # free now: fine

        m.spawn(t(), name="t")

    r = simulate(setup)
    assert kinds(r) == ["held-lock-freed"]
    assert f"{what} of" in r.violations[0].message and "CPU0" in r.violations[0].message


def test_freeing_an_item_whose_lock_is_held_is_reported():
    def setup(m):
        zone = Zone(m, "OBJ", {"lock": None, "n": 0})
        obj = zone.new(lock=SleepMutex(m, "obj lock"))

        def t():
            yield obj.lock.lock()
            yield zone.free(obj)

        m.spawn(t(), name="t")

    r = simulate(setup)
    assert "held-lock-freed" in kinds(r)
    v = r.violations[kinds(r).index("held-lock-freed")]
    assert "held lock freed" in v.message and "obj lock" in v.message


def _irq_case(order):
    """A taken by a bio handler, and held by a thread while it lowers the spl."""
    def setup(m):
        a = Spinlock(m, "A")

        def handler():
            yield a.lock()
            yield a.unlock()

        def thread():
            if order == "handler-first":
                yield work(10)
                yield pause()
            s = yield splhigh()
            yield a.lock()
            yield splx(s)          # unmasks bio with A held
            yield a.unlock()
            if order == "handler-last":
                yield work(10)
                yield pause()

        m.interrupt_source("bio", SPLBIO, handler, cpu=0, at_ns=[10])
        m.spawn(thread(), name="t", cpu=0)
    return setup


@pytest.mark.parametrize("order", ["handler-first", "handler-last"])
def test_unmasking_with_a_handler_lock_held_is_reported_in_either_order(order):
    r = simulate(_irq_case(order), cpus=1)
    assert kinds(r) == ["spl-violation"]
    assert r.interrupts["bio"]["delivered"] == 1
    rep = r.violations[0].extra["report"]
    assert "WARNING: inconsistent lock state" in rep and "<Interrupt>" in rep


@pytest.mark.parametrize("mask", ["splhigh", "splsoft"])
def test_a_sleepable_lock_with_interrupts_masked_is_an_invalid_wait_context(mask):
    def setup(m):
        mx = Mutex(m, "M")
        rw = RwSemaphore(m, "S")

        def t():
            s = yield (splhigh() if mask == "splhigh" else splraise(SPLSOFT))
            yield mx.lock()
            yield mx.unlock()
            yield splx(s)
            yield rw.down_read()      # spl0 again: fine
            yield rw.up_read()

        m.spawn(t(), name="t")

    r = simulate(setup)
    assert kinds(r) == ["sleep-with-spinlock"]
    assert "invalid wait context" in r.violations[0].message


def test_rw_semaphore_readers_queue_behind_a_waiting_writer():
    """A second down_read with a writer queued waits: the deadlock lockdep predicts."""
    def setup(m):
        sem = RwSemaphore(m, "sem")

        def reader():
            yield sem.down_read()
            yield work(100)
            yield sem.down_read()
            yield sem.up_read()
            yield sem.up_read()

        def writer():
            yield work(50)
            yield sem.down_write()
            yield sem.up_write()

        m.spawn(reader(), name="reader")
        m.spawn(writer(), name="writer")

    r = simulate(setup, witness=False)
    assert "deadlock" in kinds(r)


def test_rt_mutex_is_exclusive_and_ordered_like_a_mutex():
    def setup(m):
        a, b = RtMutex(m, "A"), RtMutex(m, "B")

        def t(x, y):
            yield x.rt_mutex_lock()
            yield y.rt_mutex_lock()
            yield y.rt_mutex_unlock()
            yield x.rt_mutex_unlock()

        m.spawn(t(a, b), name="ab")
        m.spawn(t(b, a), name="ba")

    from conftest import Scripted
    r = simulate(setup, strategy=Scripted([0, 1]))
    assert "lock-order-reversal" in kinds(r)


def _abba(make):
    def helper(x, y):
        yield x._lock_x
        yield y._lock_x
        yield y._unlock_x
        yield x._unlock_x

    def setup(m):
        a, b = make(m, "A"), make(m, "B")

        def first():
            yield from helper(a, b)

        def second():
            yield from helper(b, a)

        m.spawn(first(), name="first")
        m.spawn(second(), name="second")
    return setup


def test_linux_reversal_prints_lockdeps_report_with_the_call_chain():
    from conftest import Scripted
    r = simulate(_abba(Mutex), strategy=Scripted([0, 1]))
    v = r.violations[0]
    assert v.message.startswith("lock order reversal: 1st")   # the one line is unchanged
    rep = v.extra["report"]
    assert "WARNING: possible circular locking dependency detected" in rep
    assert "Possible unsafe locking scenario" in rep and "*** DEADLOCK ***" in rep
    assert "CPU0" in rep and "CPU1" in rep
    chain = [ln.strip() for ln in rep.splitlines() if "test_witness_rules.py" in ln
             and (" second" in ln or " helper" in ln)]
    assert [c.split()[-1] for c in chain] == ["second", "helper"]  # innermost last


def test_freebsd_reversal_keeps_witness_lines():
    from conftest import Scripted
    r = simulate(_abba(SleepMutex), strategy=Scripted([0, 1]))
    rep = r.violations[0].extra["report"]
    lines = rep.splitlines()
    assert lines[0] == "lock order reversal:"
    assert lines[1].startswith(" 1st B (sleep mutex) @ ")
    assert lines[2].startswith(" 2nd A (sleep mutex) @ ")
    assert "WARNING" not in rep


def test_run_prints_the_report_and_json_carries_it(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    cases = os.path.relpath(os.path.join(MODELS, "witness_cases.py"), ROOT)
    args = ["run", f"{cases}::selftest", "--set", "case=ABBA", "--set", "kind=mtx"]
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(args + ["--json"])
    d = json.loads(capsys.readouterr().out)
    [rev] = [v for v in d["violations"] if v["kind"] == "lock-order-reversal"]
    assert rev["extra"]["report"].startswith("lock order reversal:")
    with pytest.raises(SystemExit):
        main(args)
    out = capsys.readouterr().out
    assert "    lock order reversal:" in out and "     1st " in out


def test_lor_counts_runs_per_target(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    cases = os.path.relpath(os.path.join(MODELS, "witness_cases.py"), ROOT)
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["lor", f"{cases}::selftest", f"{cases}::blessed", "--set", "case=ABBA",
              "--set", "kind=mutex", "--runs", "3", "--json"])
    d = json.loads(capsys.readouterr().out)
    [rev] = [r for r in d["reversals"] if not r["merged_only"]]
    assert rev["count"] == 3 and rev["by_target"] == {f"{cases}::selftest": 3}
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["lor", f"{cases}::selftest", f"{cases}::blessed", "--set", "case=ABBA",
              "--set", "kind=mutex", "--runs", "3"])
    out = capsys.readouterr().out
    assert f"reported in 3 of 3 runs of {cases}::selftest" in out
    assert "of 6 runs" not in out


def test_a_freebsd_sx_at_a_raised_spl_is_no_wait_context_bug():
    """FreeBSD saves the spl across a sleep: sx at splvm is legal (contigmalloc does it)."""
    def setup(m):
        map_lock = Sx(m, "kernel_map")

        def t():
            s = yield splraise(SPLBIO)
            yield map_lock.xlock()
            yield map_lock.xunlock()
            yield splx(s)

        m.spawn(t(), name="t")

    assert kinds(simulate(setup)) == []
