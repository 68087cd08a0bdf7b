"""Every case of ``tests/lockdep_cases.py`` gives lockdep's verdict.

Each case runs on a fresh one-CPU machine with every cost zero, built only
through smpvm's public API: the thread does the events in the case's order,
and a handler event arrives as a real interrupt (hard: a handler at
``SPLBIO``; soft: at ``SPLSOFT``) exactly when the thread reaches it.  The
verdict is whether witness (or the locks' own misuse checks) reported
anything; it must be lockdep's for every case.  The events are taken one
after another, so nothing can deadlock for real: whatever is reported comes
from what witness learned.
"""

from __future__ import annotations

import os
import re

import pytest

from lockdep_cases import CASES, FAMILIES, KINDS, LEFT_OUT
from smpvm import (FREE, SPLBIO, SPLHIGH, SPLSOFT, Machine, Mutex, RtMutex, RwlockT,
                   RwSemaphore, Spinlock, pause, splraise, splx, work)

#: Violation kinds that count as "lockdep reported".
CHECKED = {"lock-order-reversal", "spl-violation", "sleep-with-spinlock", "sleep-in-atomic", "recursion",
           "unlock-not-held", "held-lock-freed"}
TYPES = {"spinlock_t": Spinlock, "rwlock_t": RwlockT, "mutex": Mutex,
         "rw_semaphore": RwSemaphore, "rt_mutex": RtMutex}
#: Explicit operations: verb -> (lock type, mode, acquire?).
VERBS = {"rl": ("rwlock_t", "s", True), "wl": ("rwlock_t", "x", True),
         "ru": ("rwlock_t", "s", False), "wu": ("rwlock_t", "x", False),
         "rsl": ("rw_semaphore", "s", True), "wsl": ("rw_semaphore", "x", True),
         "rsu": ("rw_semaphore", "s", False), "wsu": ("rw_semaphore", "x", False),
         "ml": ("mutex", "x", True), "mu": ("mutex", "x", False),
         "sl": ("spinlock_t", "x", True), "su": ("spinlock_t", "x", False)}
LEVEL = {"hardirq": SPLBIO, "softirq": SPLSOFT}
IRQ_AT_NS = 1000


def _variant(case) -> int:
    """The mask level of ``irq_off``: the level of the case's handler (hard by default)."""
    levels = [LEVEL[ctx] for ctx, _ in case["events"] if ctx in LEVEL]
    return SPLSOFT if levels and max(levels) == SPLSOFT else SPLHIGH


def make_locks(m, case) -> dict:
    """One lock per name, of the type its operations say (``lock`` = the column's type)."""
    column = KINDS[case["kind"]][0]
    types = {}
    for _, ops in case["events"]:
        for op in ops:
            if len(op) > 1:
                t = VERBS[op[0]][0] if op[0] in VERBS else column
                if op[0] in VERBS or op[1] not in types:
                    types[op[1]] = t
    locks = {}
    for name in sorted(types):
        m_ = re.fullmatch(r"([XYZ])(\d)", name)
        cls, inst = (m_.group(1), m_.group(2)) if m_ else (name, None)
        locks[name] = TYPES[types[name]](m, cls, instance=inst)
    return locks


def _acquire(lock, mode):
    if isinstance(lock, RwlockT):
        return lock.read_lock() if mode == "s" else lock.write_lock()
    if isinstance(lock, RwSemaphore):
        return lock.down_read() if mode == "s" else lock.down_write()
    return lock.lock()


def _release(lock, mode):
    if isinstance(lock, RwlockT):
        return lock.read_unlock() if mode == "s" else lock.write_unlock()
    if isinstance(lock, RwSemaphore):
        return lock.up_read() if mode == "s" else lock.up_write()
    return lock.unlock()


def run_ops(ops, locks, case, mask):
    column_mode = KINDS[case["kind"]][1]
    saved = []
    for op in ops:
        verb = op[0]
        if verb in ("lock", "unlock"):
            lk = locks[op[1]]
            mode = column_mode if lk.shared_allowed else "x"
            yield _acquire(lk, mode) if verb == "lock" else _release(lk, mode)
        elif verb in VERBS:
            _, mode, acquire = VERBS[verb]
            lk = locks[op[1]]
            yield _acquire(lk, mode) if acquire else _release(lk, mode)
        elif verb == "init":
            yield locks[op[1]].init()
        elif verb.endswith("_off"):
            level = {"irq_off": mask, "hardirq_off": SPLHIGH, "softirq_off": SPLSOFT}[verb]
            saved.append((yield splraise(level)))
        elif verb.endswith("_on"):
            yield splx(saved.pop())
        else:
            raise ValueError(f"unknown op {op!r}")


def run_case(case):
    """A fresh machine running the case; returns its RunResult."""
    m = Machine(cpus=1, seed=0, costs=FREE)
    locks = make_locks(m, case)
    mask = _variant(case)
    slot = 0
    plan = []
    for ctx, ops in case["events"]:
        if ctx == "thread":
            plan.append(("thread", ops))
        else:
            slot += 1
            m.interrupt_source(f"{ctx}{slot}", LEVEL[ctx],
                               lambda ops=ops: run_ops(ops, locks, case, mask),
                               cpu=0, at_ns=[slot * IRQ_AT_NS])
            plan.append(("irq", ops))

    def events():
        for what, ops in plan:
            if what == "irq":
                yield work(IRQ_AT_NS)  # its interrupt is due now: taken at the next yield
                yield pause()
            else:
                yield from run_ops(ops, locks, case, mask)

    m.spawn(events(), name="selftest", cpu=0)
    return m.run()


def verdict(result) -> str:
    return "report" if {v.kind for v in result.violations} & CHECKED else "silent"


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_lockdep_verdict(case):
    r = run_case(case)
    got = verdict(r)
    assert got == case["verdict"], (
        f"{case['name']} ({case['family']}): lockdep says {case['verdict']}, smpvm "
        f"{got}: " + "; ".join(f"{v.kind}: {v.message}" for v in r.violations))
    assert "deadlock" not in r.kinds()
    # every handler event really ran as an interrupt
    handlers = sum(1 for ctx, _ in case["events"] if ctx != "thread")
    assert sum(i["delivered"] for i in r.interrupts.values()) == handlers


def test_table_covers_the_families_and_both_verdicts():
    for family in ("A-A deadlock", "A-B-B-A deadlock", "A-B-B-C-C-A deadlock",
                   "A-B-C-D-B-D-D-A deadlock", "initialize held", "recursive read-lock",
                   "irqs-on + irq-safe-A", "sirq-safe-A => hirqs-on", "safe-A + irqs-on",
                   "safe-A + unsafe-B #1", "safe-A + unsafe-B #2", "irq lock-inversion",
                   "irq read-recursion", "wait context"):
        assert family in FAMILIES
    names = [c["name"] for c in CASES]
    assert len(names) == len(set(names))
    verdicts = {c["verdict"] for c in CASES}
    assert verdicts == {"report", "silent"}
    # hard and soft variants, every order of three events
    orders = {c["name"].rsplit("_", 1)[1] for c in CASES if c["name"].startswith("irqsafe3_")}
    assert orders == {"123", "132", "213", "231", "312", "321"}
    assert any("_soft_" in n for n in names) and any("_hard_" in n for n in names)


def test_readme_states_the_count():
    readme = open(os.path.join(os.path.dirname(__file__), "..", "README.md")).read()
    n = len(CASES)
    assert f"{n} of {n} lockdep self-test cases give lockdep's verdict" in readme
    for family in LEFT_OUT:
        assert family.split(":")[0] in readme
