"""Linux's locking self-tests (``lib/locking-selftest.c``) restated as data for smpvm.

Each self-test of the kernel is a short sequence of lock operations run by
one task, some of them inside a simulated hard or soft interrupt
(``HARDIRQ_ENTER``/``SOFTIRQ_ENTER``), and an expected verdict: lockdep
reports (``FAILURE``) or stays silent (``SUCCESS``).  Here each case is

* ``name``: the kernel's test name (``irqsafe3_hard_spin_312``),
* ``family``: the heading lockdep prints it under,
* ``kind``: the lock-type column (``spin`` spinlock_t, ``wlock``/``rlock`` the
  write and read side of rwlock_t, ``mutex``, ``wsem``/``rsem`` the write and
  read side of rw_semaphore, ``rtmutex``),
* ``events``: ``(context, ops)`` pairs run one after the other on one CPU:
  ``thread``, or ``hardirq``/``softirq`` (a handler that interrupts the thread),
* ``verdict``: ``"report"`` or ``"silent"``, lockdep's.

The operations are the self-test's macros: ``lock``/``unlock`` are the
column's own lock type (LOCK/UNLOCK); ``rl``/``wl``/``ru``/``wu`` act on a
``rwlock_t`` (RL/WL), ``rsl``/``wsl``/``rsu``/``wsu`` on an ``rw_semaphore``,
``ml``/``mu`` on a ``mutex``, ``sl``/``su`` on a ``spinlock_t`` whatever the
column; ``init`` re-initialises a lock; ``irq_off``/``irq_on`` mask and unmask
the interrupt of the case's variant (``local_irq_disable`` for hard,
``local_bh_disable`` for soft), ``hardirq_off``/``softirq_off`` name one.
Locks ``X1``/``X2`` are two instances of class ``X`` (likewise Y, Z); the
rest are classes of their own.

In smpvm a hard interrupt is a handler at ``SPLBIO``, a soft one at
``SPLSOFT``; masking hard interrupts is ``splhigh()``, softirqs ``splsoft``.
"""

from __future__ import annotations

import itertools

#: Column kinds of the self-test: kind -> (lock type name, mode of LOCK).
KINDS = {"spin": ("spinlock_t", "x"), "wlock": ("rwlock_t", "x"), "rlock": ("rwlock_t", "s"),
         "mutex": ("mutex", "x"), "wsem": ("rw_semaphore", "x"),
         "rsem": ("rw_semaphore", "s"), "rtmutex": ("rt_mutex", "x")}
ALL6 = ("spin", "wlock", "rlock", "mutex", "wsem", "rsem", "rtmutex")
IRQ3 = ("spin", "wlock", "rlock")
RW2 = ("wlock", "rlock")

#: Families left out, and why (the README repeats this).
LEFT_OUT = {
    "ww_mutex tests": "smpvm has no wound/wait mutex",
    "queued read lock tests": "smpvm's rwlock_t is the reader-preferring rwlock, whose every "
                              "read is recursive; the queued rwlock (recursive reads only in "
                              "interrupt context) is not modelled",
    "fs_reclaim tests": "they test GFP-flag nesting of the fs_reclaim map, which smpvm's "
                        "LockMap does not model",
    "local_lock tests": "smpvm has no local_lock_t",
    "wait context: RCU, raw_spinlock, NOTTHREADED_HARDIRQ, RCU_SCHED rows":
        "they test PREEMPT_RT's sleeping spinlock_t and RCU, which smpvm does not model",
    "lock class and subclass name test": "it checks a name pointer, not a verdict",
}


def lu(*names):
    """LOCK_UNLOCK_n: take ``names`` nested, release in reverse."""
    return [("lock", n) for n in names] + [("unlock", n) for n in reversed(names)]


def _case(name, family, kind, events, report):
    return {"name": name, "family": family, "kind": kind, "events": tuple(events),
            "verdict": "report" if report else "silent"}


def _column_cases(family, stem, events, report_for):
    return [_case(f"{stem}_{k}", family, k, events, k in report_for) for k in ALL6]


def _orders(n):
    return ["".join(str(i + 1) for i in p) for p in itertools.permutations(range(n))]


def _permuted(family, stem, variants, kinds, make, report_for):
    """GENERATE_PERMUTATIONS_n_EVENTS over variants (hard/soft) and kinds."""
    out = []
    for variant in variants:
        evs = make(variant)
        for order in _orders(len(evs)):
            for k in kinds:
                seq = [evs[int(i) - 1] for i in order]
                name = f"{stem}_{variant}_{k}_{order}" if variant else f"{stem}_{k}_{order}"
                out.append(_case(name, family, k, seq, k in report_for))
    return out


def _thread(*ops):
    return ("thread", list(ops))


def _irq(variant, *ops):
    return ("hardirq" if variant == "hard" else "softirq", list(ops))


NOT_RLOCK = tuple(k for k in ALL6 if k != "rlock")

CASES: list[dict] = []

# -- circular dependencies (DO_TESTCASE_6R: every column but rlock reports) -----------
for fam, stem, pairs in (
        ("A-A deadlock", "AA", [("X1", "X2")]),
        ("A-B-B-A deadlock", "ABBA", [("A", "B"), ("B", "A")]),
        ("A-B-B-C-C-A deadlock", "ABBCCA", [("A", "B"), ("B", "C"), ("C", "A")]),
        ("A-B-C-A-B-C deadlock", "ABCABC", [("A", "B"), ("C", "A"), ("B", "C")]),
        ("A-B-B-C-C-D-D-A deadlock", "ABBCCDDA",
         [("A", "B"), ("B", "C"), ("C", "D"), ("D", "A")]),
        ("A-B-C-D-B-D-D-A deadlock", "ABCDBDDA",
         [("A", "B"), ("C", "D"), ("B", "D"), ("D", "A")]),
        ("A-B-C-D-B-C-D-A deadlock", "ABCDBCDA",
         [("A", "B"), ("C", "D"), ("B", "C"), ("D", "A")])):
    ops = [op for p in pairs for op in lu(*p)]
    if stem == "AA":
        ops = [("lock", "X1"), ("lock", "X2")]  # the second should fail
    CASES += _column_cases(fam, stem, [_thread(*ops)], NOT_RLOCK)

# -- double unlock and initialising a held lock (DO_TESTCASE_6: all report) -----------
CASES += _column_cases("double unlock", "double_unlock",
                       [_thread(("lock", "A"), ("unlock", "A"), ("unlock", "A"))], ALL6)
CASES += _column_cases("initialize held", "init_held",
                       [_thread(("lock", "A"), ("init", "A"), ("unlock", "A"))], ALL6)

# -- recursive read rules: rwlock_t reads recurse, rw_semaphore reads do not -----------
_READS = [
    ("recursive read-lock", "rlock_AA1", "rlock", [("rl", "X1"), ("rl", "X1")], False),
    ("recursive read-lock", "rsem_AA1", "rsem", [("rsl", "X1"), ("rsl", "X1")], True),
    ("recursive read-lock #2", "rlock_AA1B", "rlock", [("rl", "X1"), ("rl", "X2")], False),
    ("recursive read-lock #2", "rsem_AA1B", "rsem", [("rsl", "X1"), ("rsl", "X2")], True),
    ("mixed read-write-lock", "rlock_AA2", "rlock", [("rl", "X1"), ("wl", "X2")], True),
    ("mixed read-write-lock", "rsem_AA2", "rsem", [("rsl", "X1"), ("wsl", "X2")], True),
    ("mixed write-read-lock", "rlock_AA3", "rlock", [("wl", "X1"), ("rl", "X2")], True),
    ("mixed write-read-lock", "rsem_AA3", "rsem", [("wsl", "X1"), ("rsl", "X2")], True),
    ("mixed read-lock/lock-write ABBA", "rlock_ABBA1", "rlock",
     [("rl", "X1"), ("sl", "Y1"), ("su", "Y1"), ("ru", "X1"),
      ("sl", "Y1"), ("wl", "X1"), ("wu", "X1"), ("su", "Y1")], True),
    ("mixed read-lock/lock-write ABBA", "rwsem_ABBA1", "rsem",
     [("rsl", "X1"), ("ml", "Y1"), ("mu", "Y1"), ("rsu", "X1"),
      ("ml", "Y1"), ("wsl", "X1"), ("wsu", "X1"), ("mu", "Y1")], True),
    ("mixed read-lock/lock-read ABBA", "rlock_ABBA2", "rlock",
     [("rl", "X1"), ("sl", "Y1"), ("su", "Y1"), ("ru", "X1"),
      ("sl", "Y1"), ("rl", "X1"), ("ru", "X1"), ("su", "Y1")], False),
    ("mixed read-lock/lock-read ABBA", "rwsem_ABBA2", "rsem",
     [("rsl", "X1"), ("ml", "Y1"), ("mu", "Y1"), ("rsu", "X1"),
      ("ml", "Y1"), ("rsl", "X1"), ("rsu", "X1"), ("mu", "Y1")], True),
    ("mixed write-lock/lock-write ABBA", "rlock_ABBA3", "rlock",
     [("wl", "X1"), ("sl", "Y1"), ("su", "Y1"), ("wu", "X1"),
      ("sl", "Y1"), ("wl", "X1"), ("wu", "X1"), ("su", "Y1")], True),
    ("mixed write-lock/lock-write ABBA", "rwsem_ABBA3", "rsem",
     [("wsl", "X1"), ("ml", "Y1"), ("mu", "Y1"), ("wsu", "X1"),
      ("ml", "Y1"), ("wsl", "X1"), ("wsu", "X1"), ("mu", "Y1")], True),
    ("chain cached mixed R-L/L-W ABBA", "rlock_chaincache_ABBA1", "rlock",
     [("rl", "X1"), ("sl", "Y1"), ("su", "Y1"), ("ru", "X1"),
      ("sl", "Y1"), ("rl", "X1"), ("ru", "X1"), ("su", "Y1"),
      ("sl", "Y1"), ("wl", "X1"), ("wu", "X1"), ("su", "Y1")], True),
]
CASES += [_case(stem, fam, kind, [_thread(*ops)], rep) for fam, stem, kind, ops, rep in _READS]


def _wr(x, y, first, second):
    """Take x with ``first`` (wl/rl), then y with ``second``, release both."""
    unl = {"wl": "wu", "rl": "ru"}
    return _thread((first, x), (second, y), (unl[second], y), (unl[first], x))


for stem, evs, rep in (
        ("W1R2_W2R3_W3R1", [_wr("X1", "Y1", "wl", "rl"), _wr("Y1", "Z1", "wl", "rl"),
                            _wr("Z1", "X1", "wl", "rl")], True),
        ("W1W2_R2R3_W3R1", [_wr("X1", "Y1", "wl", "wl"), _wr("Y1", "Z1", "rl", "rl"),
                            _wr("Z1", "X1", "wl", "rl")], True),
        ("W1W2_R2R3_R3W1", [_wr("X1", "Y1", "wl", "wl"), _wr("Y1", "Z1", "rl", "rl"),
                            _wr("Z1", "X1", "rl", "wl")], False),
        ("W1R2_R2R3_W3W1", [_wr("X1", "Y1", "wl", "rl"), _wr("Y1", "Z1", "rl", "rl"),
                            _wr("Z1", "X1", "wl", "wl")], False)):
    fam = f"rlock {stem[:4]}/{stem[5:9]}/{stem[10:]}"
    CASES += _permuted(fam, stem, [""], ("rlock",), lambda v, evs=evs: evs,
                       ("rlock",) if rep else ())

# -- interrupt contexts (hard and soft variants, every event order) --------------------
HARD_SOFT = ("hard", "soft")
CASES += _permuted("irqs-on + irq-safe-A", "irqsafe1", HARD_SOFT, IRQ3, lambda v: [
    _irq(v, ("lock", "A"), ("unlock", "A")),
    _thread(("lock", "A"), ("unlock", "A"))], ("spin", "wlock"))
CASES += _permuted("sirq-safe-A => hirqs-on", "irqsafe2A", [""], IRQ3, lambda v: [
    _irq("soft", ("lock", "A"), ("unlock", "A")),
    _thread(("hardirq_off",), ("lock", "A"), ("hardirq_on",), ("unlock", "A"))],
    ("spin", "wlock"))
CASES += _permuted("safe-A + irqs-on", "irqsafe2B", HARD_SOFT, IRQ3, lambda v: [
    _irq(v, ("lock", "A"), ("unlock", "A")),
    _thread(("irq_off",), ("lock", "A"), ("irq_on",), ("unlock", "A"))], ("spin", "wlock"))
CASES += _permuted("safe-A + unsafe-B #1", "irqsafe3", HARD_SOFT, IRQ3, lambda v: [
    _thread(*lu("A", "B")),
    _thread(("lock", "B"), ("unlock", "B")),
    _irq(v, ("lock", "A"), ("unlock", "A"))], ("spin", "wlock"))
CASES += _permuted("safe-A + unsafe-B #2", "irqsafe4", HARD_SOFT, IRQ3, lambda v: [
    _thread(("irq_off",), *lu("A", "B"), ("irq_on",)),
    _thread(("lock", "B"), ("unlock", "B")),
    _irq(v, ("lock", "A"), ("unlock", "A"))], ("spin", "wlock"))
CASES += _permuted("irq lock-inversion", "irq_inversion", HARD_SOFT, IRQ3, lambda v: [
    _thread(("irq_off",), ("wl", "A"), ("lock", "B"), ("unlock", "B"), ("wu", "A"),
            ("irq_on",)),
    _thread(("lock", "B"), ("unlock", "B")),
    _irq(v, ("rl", "A"), ("ru", "A"))], ("spin", "wlock"))
CASES += _permuted("irq read-recursion", "irq_read_recursion", HARD_SOFT, RW2, lambda v: [
    _thread(("irq_off",), ("wl", "A"), ("wu", "A"), ("irq_on",)),
    _thread(("rl", "A"), ("ru", "A")),
    _irq(v, ("lock", "A"), ("sl", "B"), ("su", "B"), ("unlock", "A"))], ("wlock",))
CASES += _permuted("irq read-recursion #2", "irq_read_recursion2", HARD_SOFT, RW2, lambda v: [
    _thread(("irq_off",), ("sl", "B"), ("lock", "A"), ("unlock", "A"), ("su", "B"),
            ("irq_on",)),
    _thread(("rl", "A"), ("ru", "A")),
    _irq(v, ("sl", "B"), ("su", "B"))], ("wlock",))
CASES += _permuted("irq read-recursion #3", "irq_read_recursion3", HARD_SOFT, RW2, lambda v: [
    _thread(("irq_off",), ("wl", "B"), ("lock", "A"), ("unlock", "A"), ("wu", "B"),
            ("irq_on",)),
    _thread(("rl", "A"), ("ru", "A")),
    _irq(v, ("rl", "B"), ("ru", "B"))], ("wlock",))

# -- wait context: a sleeping lock where it may not sleep -------------------------------
for outer, inner, rep in (("HARDIRQ", "spinlock", False), ("HARDIRQ", "mutex", True),
                          ("SOFTIRQ", "spinlock", False), ("SOFTIRQ", "mutex", True),
                          ("spinlock", "spinlock", False), ("spinlock", "mutex", True),
                          ("mutex", "spinlock", False), ("mutex", "mutex", False)):
    take = [("sl", "B"), ("su", "B")] if inner == "spinlock" else [("ml", "B"), ("mu", "B")]
    if outer in ("HARDIRQ", "SOFTIRQ"):
        events = [(outer.lower(), take)]
    elif outer == "spinlock":
        events = [_thread(("sl", "A"), *take, ("su", "A"))]
    else:
        events = [_thread(("ml", "A"), *take, ("mu", "A"))]
    CASES.append(_case(f"{inner}_in_{outer}", "wait context", inner.replace("lock", "")
                       if inner == "spinlock" else "mutex", events, rep))

# -- a hardirq-safe -> hardirq-unsafe chain through locks that are softirq-correct -----
CASES.append(_case("hardirq_deadlock_softirq_not_deadlock", "hardirq_unsafe_softirq_safe",
                   "spin", [
                       _thread(("ml", "MA"), ("hardirq_off",), ("sl", "C"), ("su", "C"),
                               ("hardirq_on",), ("mu", "MA")),
                       ("hardirq", [("sl", "A"), ("su", "A")]),
                       _thread(("hardirq_off",), ("sl", "A"), ("sl", "B"), ("su", "B"),
                               ("su", "A"), ("hardirq_on",)),
                       _thread(("hardirq_off",), ("sl", "B"), ("sl", "C"), ("su", "C"),
                               ("su", "B"), ("hardirq_on",)),
                       ("softirq", [("sl", "D"), ("su", "D")]),
                       _thread(("softirq_off",), ("sl", "D"), ("su", "D"), ("softirq_on",)),
                       _thread(("hardirq_off",), ("sl", "C"), ("sl", "D"), ("su", "D"),
                               ("su", "C"), ("hardirq_on",))], True))

FAMILIES = list(dict.fromkeys(c["family"] for c in CASES))
