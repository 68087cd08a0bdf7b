"""The machine: steps, time, interrupts and spl, sleep queues, stalls and step limits.

Each test builds the smallest machine that shows one rule, with every cost
zero (see ``conftest.simulate``) so that simulated times can be predicted
to the nanosecond.  A note on reading the times: inside a step ``m.now`` is
the running CPU's own clock, so after ``yield work(100)`` it has moved on by
100 ns; trace records carry the time their step started.
"""

from __future__ import annotations

import re

import pytest

from conftest import RandomWalk, Scripted, free_costs, simulate, simulate_traced
from smpvm import (SPLBIO, SPLCLOCK, SPLNET, SPLVM, IrqSpinlock, ModelError, Replay,
                   SleepMutex, Spinlock, SpinMutex, kassert, may_sleep, msleep, note, pause,
                   spl0, splbio, splhigh, splnet, splvm, splx, tsleep, wakeup, wakeup_one,
                   work)

# -- time ---------------------------------------------------------------------------------------


def _work_records(records, cpu=None):
    return [(x.time_ns, x.cpu, x.dur_ns) for x in records
            if x.action == "work" and (cpu is None or x.cpu == cpu)]


def test_work_moves_the_cpu_clock():
    seen = []

    def setup(m):
        def t():
            for ns in (100, 250, 0, 40):
                yield work(ns)
                seen.append(m.now)      # this CPU's clock: the work is done
            yield pause()
            seen.append(m.now)
        m.spawn(t())

    r, recs = simulate_traced(setup)
    assert _work_records(recs) == [(0, 0, 100), (100, 0, 250), (350, 0, 0), (350, 0, 40)]
    assert seen == [100, 350, 350, 390, 390]
    assert r.time_ns == 390
    assert r.violations == []


def test_run_time_includes_the_last_operation():
    def setup(m):
        def t():
            yield work(1000)
        m.spawn(t())

    assert simulate(setup).time_ns == 1000


def test_cpus_run_in_parallel_under_timed():
    def setup(m):
        def t(ns):
            yield work(ns)
            yield work(ns)
            yield pause()
        for ns in (300, 500, 200):
            m.spawn(t(ns))

    r = simulate(setup)
    assert r.time_ns == 1000      # the longest CPU, not the sum
    assert r.ncpus == 3


def test_effects_after_work_are_visible_when_the_work_ends():
    seen = []

    def setup(m):
        flag = m.shared("flag", set=False)

        def writer():
            yield work(1000)
            flag.set = True             # after 1000 ns of work
            yield pause()

        def reader():
            yield work(500)
            yield pause()
            seen.append((m.now, flag.set))
        m.spawn(writer())
        m.spawn(reader())

    simulate(setup)
    assert seen == [(500, False)]


def test_exact_ties_go_to_the_lowest_cpu():
    def setup(m):
        def t():
            for i in range(3):
                yield note(f"round {i}")     # a step of its own, traced at its time
                yield work(10)
        for _ in range(3):
            m.spawn(t())

    _, recs = simulate_traced(setup)
    assert [(x.time_ns, x.cpu) for x in recs if x.action == "note"] == \
        [(t, c) for t in (0, 10, 20) for c in range(3)]


def test_jitter_is_seeded_and_bounded():
    def setup(m):
        def t():
            for _ in range(200):
                yield work(1000)
        m.spawn(t())

    jittered = free_costs(jitter=0.1)
    a = simulate(setup, params=jittered, seed=1)
    b = simulate(setup, params=jittered, seed=1)
    c = simulate(setup, params=jittered, seed=2)
    assert a.time_ns == b.time_ns
    assert a.time_ns != c.time_ns
    # Each step is within +-10%; the sum of 200 is much closer to its mean.
    assert 200 * 900 <= a.time_ns <= 200 * 1100
    assert abs(a.time_ns - 200_000) < 200_000 * 0.03


def test_operations_charge_their_costs():
    def setup(m):
        lk = SleepMutex(m, "l")

        def t():
            yield lk.lock()           # acquire 20, first touch: no cache-line transfer
            yield lk.unlock()         # release 10
            s = yield splvm()         # spl 5
            yield splx(s)             # spl 5
            yield may_sleep(70, "a disk read")
            yield note("done")
        m.spawn(t())

    params = free_costs(acquire_ns=20, release_ns=10, spl_ns=5, cacheline_ns=1000)
    assert simulate(setup, params=params).time_ns == 20 + 10 + 5 + 5 + 70


# -- threads and their mistakes ---------------------------------------------------------------


def test_spawn_needs_a_generator():
    def setup(m):
        def t():
            yield work(1)
        m.spawn(t)

    with pytest.raises(ModelError, match="needs a generator"):
        simulate(setup)


def test_spawn_on_a_busy_cpu_is_a_model_error():
    def setup(m):
        def t():
            yield work(1)
        m.spawn(t(), cpu=1)
        m.spawn(t(), cpu=1)

    with pytest.raises(ModelError, match="CPU1 already runs"):
        simulate(setup)


def test_more_threads_than_cpus_is_a_model_error():
    def setup(m):
        def t():
            yield work(1)
        for _ in range(3):
            m.spawn(t())

    with pytest.raises(ModelError, match="raise --cpus"):
        simulate(setup, cpus=2)


def test_extra_cpus_stay_idle():
    seen = []

    def setup(m):
        def t():
            seen.append(m.ncpus)
            yield work(5)
        m.spawn(t())

    r = simulate(setup, cpus=4)
    assert seen == [4] and r.ncpus == 4


def test_a_model_exception_is_a_model_error_naming_the_line():
    def setup(m):
        def t():
            yield work(1)
            raise KeyError("missing")
        m.spawn(t())

    with pytest.raises(ModelError, match=r"raised KeyError: 'missing' at .*test_machine.py:\d+"):
        simulate(setup)


@pytest.mark.parametrize("ns,message", [(-1, "needs ns >= 0, got -1"),
                                        ([5], "needs a number of nanoseconds, got [5]"),
                                        ("100", "needs a number of nanoseconds, got '100'")])
def test_a_bad_work_duration_says_what_is_wrong(ns, message):
    def setup(m):
        def t():
            yield work(ns)
        m.spawn(t())

    with pytest.raises(ModelError, match=re.escape(message)):
        simulate(setup)


def test_yielding_something_else_is_a_model_error():
    def setup(m):
        def t():
            yield "work"
        m.spawn(t(), name="confused")

    with pytest.raises(ModelError, match="confused yielded 'work'"):
        simulate(setup)


def test_returning_with_a_lock_held_is_an_assertion():
    def setup(m):
        lk = SleepMutex(m, "forgotten", instance="obj7")

        def t():
            yield lk.lock()
        m.spawn(t(), name="leaky")

    r = simulate(setup)
    assert r.kinds() == ["assertion"]
    assert "leaky returned with locks held: forgotten[obj7]" in r.violations[0].message


def test_kassert_ends_the_run_at_the_model_line():
    after = []

    def setup(m):
        def t():
            yield work(10)
            yield pause()
            kassert(1 + 1 == 3, "arithmetic is broken")
            after.append(True)
            yield work(10)
        m.spawn(t())

    r = simulate(setup)
    v = r.first()
    assert (v.kind, v.message, v.time_ns, v.cpu) == ("assertion", "arithmetic is broken", 10, 0)
    assert v.location.startswith("tests/test_machine.py:")
    assert after == []                 # fatal: the thread did not go on


def test_kassert_outside_a_run_raises():
    with pytest.raises(AssertionError, match="plain python"):
        kassert(False, "plain python")


def test_quiescence_checks_run_once_after_every_thread():
    calls = []

    def setup(m):
        box = m.shared("box", total=0)

        def t(n):
            for _ in range(n):
                box.total += 1
                yield work(3)
        m.spawn(t(4))
        m.spawn(t(6))
        m.on_quiescence(lambda: calls.append(box.total))
        m.on_quiescence(lambda: kassert(box.total == 11, "leak: total is not 11"))

    r = simulate(setup)
    assert calls == [10]
    assert r.kinds() == ["assertion"] and r.violations[0].cpu == -1
    assert "leak: total is not 11" in r.violations[0].message


def test_quiescence_is_skipped_after_a_fatal_violation():
    calls = []

    def setup(m):
        def t():
            kassert(False, "boom")
            yield work(1)
        m.spawn(t())
        m.on_quiescence(lambda: calls.append(1))

    assert simulate(setup).kinds() == ["assertion"]
    assert calls == []


def test_metrics_and_counts():
    def setup(m):
        def t():
            m.count("loops")
            m.count("loops", 2)
            m.metric("ratio", 0.25)
            yield work(1)
        m.spawn(t())

    assert simulate(setup).metrics == {"loops": 3, "ratio": 0.25}


def test_shared_structs_are_static_items():
    def setup(m):
        a = m.shared("cdev", opens=0)
        b = m.shared("cdev", opens=5)

        def t():
            a.opens += 1
            kassert(a.live and b.live and not a.same_memory(b), "shared structs alias")
            kassert((a.opens, b.opens) == (1, 5), "fields mixed up")
            yield work(1)
        m.spawn(t())

    assert simulate(setup).violations == []


# -- atomicity and exploration ---------------------------------------------------------------


def _increments(separate_steps: bool):
    def setup(m):
        box = m.shared("counter", value=0)

        def t():
            for _ in range(3):
                if separate_steps:
                    v = yield box.load("value")
                    yield box.store("value", v + 1)
                else:
                    box.value += 1          # one step: atomic
                    yield pause()
        m.spawn(t())
        m.spawn(t())
        m.on_quiescence(lambda: kassert(box.value == 6, f"lost update: {box.value}"))
    return setup


def test_code_between_yields_is_atomic():
    for seed in range(40):
        r = simulate(_increments(False), strategy=RandomWalk(), seed=seed)
        assert r.violations == [], seed


def test_separate_load_and_store_can_lose_updates():
    lost = [s for s in range(40)
            if simulate(_increments(True), strategy=RandomWalk(), seed=s).failed]
    assert 0 < len(lost) < 40


def test_exploration_asks_the_strategy_only_when_two_cpus_could_step():
    def setup(m):
        def t():
            yield work(1)
            yield work(1)
        m.spawn(t())

    r = simulate(setup, strategy=RandomWalk())
    assert r.decisions == 0 and r.choices == []


def test_recorded_choices_replay_the_run():
    setup = _increments(True)
    for seed in (3, 4, 5):
        first, rec1 = simulate_traced(setup, strategy=RandomWalk(), seed=seed)
        again, rec2 = simulate_traced(setup, strategy=Replay(first.choices), seed=seed)
        assert rec1 == rec2
        assert first.decisions == len(first.choices) > 0
        assert again.choices == first.choices
        assert again.kinds() == first.kinds()


def test_scripted_preference_decides_the_interleaving():
    order = []

    def setup(m):
        def t(i):
            for k in range(2):
                order.append((i, k))
                yield pause()
        m.spawn(t(0))
        m.spawn(t(1))

    simulate(setup, strategy=Scripted([1, 0]))
    assert order == [(1, 0), (1, 1), (0, 0), (0, 1)]


# -- interrupts and spl ---------------------------------------------------------------------


def _irq_log(log, m, name, work_ns=5):
    def handler():
        log.append((name, m.now))
        yield work(work_ns)
    return handler


def test_an_unmasked_interrupt_is_taken_at_the_next_yield():
    log = []

    def setup(m):
        def t():
            yield work(1000)
            log.append(("thread", m.now))
            yield work(1000)
        m.spawn(t())
        m.interrupt_source("disk", SPLBIO, _irq_log(log, m, "disk"), at_ns=[100])

    r = simulate(setup)
    # at the yield point where the work ends, the pending interrupt comes first
    assert log == [("disk", 1000), ("thread", 1005)]
    assert r.interrupts["disk"] == {"delivered": 1, "latency_max_ns": 900,
                                    "latency_mean_ns": 900.0}


def test_splvm_masks_interrupts_until_splx():
    log = []

    def setup(m):
        def t():
            s = yield splvm()
            log.append(("raised", m.now, s))
            yield work(1000)
            yield work(500)
            yield splx(s)
            log.append(("lowered", m.now))
            yield work(10)
            old = yield splvm()        # the handler gave back the level it found
            log.append(("level after the handler", old))
            yield splx(old)
        m.spawn(t())
        m.interrupt_source("vm", SPLVM, _irq_log(log, m, "vm"), at_ns=[100])
        m.interrupt_source("disk", SPLBIO, _irq_log(log, m, "disk"), at_ns=[200])
        m.interrupt_source("net", SPLNET, _irq_log(log, m, "net"), at_ns=[300])

    r = simulate(setup)
    # like splx(9), lowering the level runs the pending handlers before it returns
    assert log == [("raised", 0, 0), ("vm", 1500), ("disk", 1505), ("net", 1510),
                   ("lowered", 1515), ("level after the handler", 0)]
    assert r.interrupts["vm"]["latency_max_ns"] == 1400
    assert r.interrupts["disk"]["latency_max_ns"] == 1305
    assert r.interrupts["net"]["latency_max_ns"] == 1210


@pytest.mark.parametrize("raise_op,masked", [
    (splnet, {"net"}), (splbio, {"net", "disk"}), (splvm, {"net", "disk", "vm"}),
    (splhigh, {"net", "disk", "vm", "clock"}),
])
def test_each_spl_level_masks_its_class_and_below(raise_op, masked):
    inside = []

    def setup(m):
        state = {"raised": False}

        def handler(name):
            def h():
                inside.append((name, state["raised"]))
                yield work(1)
            return h

        def t():
            s = yield raise_op()
            state["raised"] = True      # set after the raise, cleared before the lowering:
            yield work(1000)            # an interrupt taken while it is True came in
            yield work(1)               # at the raised level
            state["raised"] = False
            yield splx(s)
            yield work(1)
        m.spawn(t())
        for name, level in (("net", SPLNET), ("disk", SPLBIO), ("vm", SPLVM),
                            ("clock", SPLCLOCK)):
            m.interrupt_source(name, level, handler(name), at_ns=[10])

    simulate(setup)
    taken_inside = {name for name, raised in inside if raised}
    assert len(inside) == 4
    assert taken_inside == {"net", "disk", "vm", "clock"} - masked


def test_spl0_lets_everything_in():
    log = []

    def setup(m):
        def t():
            yield splhigh()
            yield work(100)
            yield spl0()
            log.append(("spl0", m.now))
            yield work(1)
        m.spawn(t())
        m.interrupt_source("clock", SPLCLOCK, _irq_log(log, m, "clock"), at_ns=[10])

    simulate(setup)
    # spl0 runs the pending interrupt before it returns to the thread
    assert log == [("clock", 100), ("spl0", 105)]


@pytest.mark.parametrize("kind,disables", [(SpinMutex, True), (IrqSpinlock, True),
                                           (Spinlock, False), (SleepMutex, False)])
def test_interrupts_wait_while_a_spin_mutex_is_held(kind, disables):
    log = []

    def setup(m):
        lk = kind(m, "l")

        def t():
            yield lk.lock()
            log.append(("locked", m.now))
            yield work(500)
            yield work(500)
            yield lk.unlock()
            log.append(("unlocked", m.now))
            yield work(1)
        m.spawn(t())
        m.interrupt_source("net", SPLNET, _irq_log(log, m, "net"), at_ns=[100])

    simulate(setup)
    if disables:
        # the unlock turns interrupts back on: the pending one runs before the next line
        assert log == [("locked", 0), ("net", 1000), ("unlocked", 1005)]
    else:
        assert log == [("locked", 0), ("net", 500), ("unlocked", 1005)]


def test_a_higher_level_interrupt_nests_in_a_handler_and_an_equal_one_waits():
    log = []

    def setup(m):
        def t():
            for _ in range(10):
                yield work(100)

        def slow_disk():
            log.append(("disk in", m.now))
            yield work(1000)
            yield work(1000)
            log.append(("disk out", m.now))
        m.spawn(t())
        m.interrupt_source("disk", SPLBIO, slow_disk, at_ns=[100])
        m.interrupt_source("vm", SPLVM, _irq_log(log, m, "vm", 10), at_ns=[150])
        m.interrupt_source("disk2", SPLBIO, _irq_log(log, m, "disk2", 10), at_ns=[160])

    r = simulate(setup)
    assert log == [("disk in", 100), ("vm", 1100), ("disk out", 2110), ("disk2", 2110)]
    assert r.interrupts["disk2"]["latency_max_ns"] == 1950


def test_interrupt_entry_costs_time_and_handlers_see_their_context():
    ctxs = []

    def setup(m):
        def t():
            yield work(100)
            yield work(100)

        def h():
            ctxs.append(m.now)
            yield note("in handler")
        m.spawn(t(), name="worker")
        m.interrupt_source("tick", SPLNET, h, at_ns=[50])

    r, recs = simulate_traced(setup, params=free_costs(irq_entry_ns=30))
    assert _work_records(recs) == [(0, 0, 100), (130, 0, 100)]
    notes = [x for x in recs if x.action == "note"]
    assert [(x.ctx, x.time_ns) for x in notes] == [("irq:tick", 130)]
    assert [x.action for x in recs if x.action.startswith("irq")] == ["irq-begin", "irq-end"]


def test_a_poisson_source_delivers_about_rate_times_duration():
    def setup(m):
        def t():
            for _ in range(1000):
                yield work(1000)           # 1 ms in all
        m.spawn(t())
        m.interrupt_source("tick", SPLNET, _one_step, rate_per_s=1e6)

    r = simulate(setup, seed=4)
    delivered = r.interrupts["tick"]["delivered"]
    # Poisson with mean 1000: 4 standard deviations either side.
    assert 1000 - 130 < delivered < 1000 + 130
    assert r.interrupts["tick"]["latency_max_ns"] <= 1000


def _one_step():
    yield work(1)


def test_interrupt_source_needs_exactly_one_of_rate_and_times():
    def setup(m):
        def t():
            yield work(1)
        m.spawn(t())
        m.interrupt_source("x", SPLNET, _one_step)

    with pytest.raises(ModelError, match="exactly one of rate_per_s, at_ns"):
        simulate(setup)


def test_interrupt_source_on_a_missing_cpu_is_a_model_error():
    def setup(m):
        def t():
            yield work(1)
        m.spawn(t())
        m.interrupt_source("x", SPLNET, _one_step, cpu=3, at_ns=[5])

    with pytest.raises(ModelError, match="targets CPU3"):
        simulate(setup)


def test_an_idle_cpu_takes_its_interrupt_when_it_arrives():
    log = []

    def setup(m):
        def short():
            yield work(10)

        def long():
            for _ in range(50):
                yield work(100)
        m.spawn(short())
        m.spawn(long())
        m.interrupt_source("late", SPLNET, _irq_log(log, m, "late"), cpu=0, at_ns=[1000])

    r = simulate(setup)
    assert log == [("late", 1000)]
    assert r.interrupts["late"]["latency_max_ns"] == 0


def test_an_idle_cpu_waiting_for_an_interrupt_does_not_move_other_cpus():
    def setup(m):
        def short():
            yield work(10)

        def long():
            for _ in range(5):
                yield work(100)
                yield note("tick")
        m.spawn(short())
        m.spawn(long())
        m.interrupt_source("late", SPLNET, _one_step, cpu=0, at_ns=[1000])

    r, recs = simulate_traced(setup)
    assert [x.time_ns for x in recs if x.action == "note"] == [100, 200, 300, 400, 500]
    assert r.time_ns == 1001


def test_a_sleeping_cpu_takes_the_interrupt_that_wakes_it():
    """The biowait pattern: sleep at splbio until the disk interrupt marks the buffer done."""
    log = []

    def setup(m):
        buf = m.shared("buf", done=False)

        def waiter():
            s = yield splbio()
            while not buf.done:
                yield tsleep(buf)       # the CPU is free while its thread sleeps
            log.append("woke")
            yield splx(s)

        def disk_done():
            buf.done = True
            log.append(("handler woke", (yield wakeup(buf))))
        m.spawn(waiter())
        m.interrupt_source("disk", SPLBIO, disk_done, at_ns=[100])

    r = simulate(setup)
    assert r.violations == []
    assert log == [("handler woke", 1), "woke"]


# -- sleep queues ------------------------------------------------------------------------------


def test_msleep_drops_the_interlock_and_retakes_it_before_returning():
    log = []

    def setup(m):
        mtx = SleepMutex(m, "interlock")
        box = m.shared("box", ready=False)

        def sleeper():
            yield mtx.lock()
            while not box.ready:
                yield msleep(box, mtx)
                log.append(("woke holding", mtx.owner is not None and mtx.holders()[0].id, m.now))
            yield mtx.unlock()

        def waker():
            yield work(100)
            yield mtx.lock()                # free: the sleeper dropped it
            log.append(("waker in", m.now))
            box.ready = True
            n = yield wakeup(box)
            log.append(("woken", n))
            yield work(400)                 # the sleeper must wait for this unlock
            yield mtx.unlock()
        m.spawn(sleeper())
        m.spawn(waker())

    r = simulate(setup)
    assert r.violations == []
    assert log == [("waker in", 100), ("woken", 1), ("woke holding", 0, 500)]


def test_wakeup_one_wakes_the_longest_sleeper_first():
    woke = []

    def setup(m):
        def sleeper(i):
            yield work(10 * i)
            yield tsleep("queue")
            woke.append(i)

        def waker():
            yield work(100)
            for _ in range(3):
                n = yield wakeup_one("queue")
                kassert(n == 1, "wakeup_one woke more or less than one")
                yield work(50)
            n = yield wakeup("queue")
            kassert(n == 0, "nobody should be left sleeping")
        for i in (3, 1, 2):
            m.spawn(sleeper(i))
        m.spawn(waker())

    r = simulate(setup)
    assert r.violations == []
    assert woke == [1, 2, 3]


def test_wakeup_wakes_every_sleeper():
    def setup(m):
        def sleeper():
            yield tsleep("all")

        def waker():
            yield work(100)
            n = yield wakeup("all")
            kassert(n == 3, f"woke {n}")
        for _ in range(3):
            m.spawn(sleeper())
        m.spawn(waker())

    assert simulate(setup).violations == []


def test_a_lost_wakeup_is_a_deadlock_naming_the_channel():
    def setup(m):
        obj = m.shared("vm_object", flags=0)

        def sleeper():
            yield work(100)
            yield tsleep(obj)               # too late: the wakeup already happened

        def waker():
            n = yield wakeup(obj)
            kassert(n == 0, "somebody was asleep")
        m.spawn(sleeper(), name="sleeper")
        m.spawn(waker(), name="waker")

    r = simulate(setup)
    assert r.kinds() == ["deadlock"]
    v = r.violations[0]
    assert "sleeps on vm_object#0 with no wakeup to come" in v.message
    assert v.extra["waits"] == [{"cpu": 0, "thread": "sleeper", "lock": None,
                                 "channel": "vm_object#0", "site": v.extra["waits"][0]["site"],
                                 "call_chain": [f'{v.extra["waits"][0]["site"]} sleeper']}]
    assert v.extra["cycle"] == []


def test_msleep_without_the_interlock_held_is_reported():
    def setup(m):
        mtx = SleepMutex(m, "interlock")

        def t():
            yield msleep("chan", mtx)
        m.spawn(t())

    r = simulate(setup)
    assert r.kinds() == ["unlock-not-held"]
    assert "msleep on sleep mutex interlock not held" in r.violations[0].message


def test_msleep_with_a_spin_mutex_held_is_a_warning():
    def setup(m):
        mtx = SleepMutex(m, "interlock")
        spin = SpinMutex(m, "sched lock")

        def sleeper():
            yield mtx.lock()
            yield spin.lock()
            yield msleep("chan", mtx)
            yield spin.unlock()
            yield mtx.unlock()

        def waker():
            yield work(100)
            yield wakeup("chan")
        m.spawn(sleeper())
        m.spawn(waker())

    r = simulate(setup)
    assert "sleep-in-atomic" in r.kinds()
    assert "sched lock" in r.violations[0].message


# -- stalls and step limits -------------------------------------------------------------------


def _take_both(first, second):
    yield first.lock()
    yield work(100)
    yield second.lock()
    yield second.unlock()
    yield first.unlock()


def test_abba_deadlock_names_the_cycle():
    def setup(m):
        a = SleepMutex(m, "a", instance="left")
        b = SleepMutex(m, "b", instance="right")
        m.spawn(_take_both(a, b), name="t-ab")
        m.spawn(_take_both(b, a), name="t-ba")

    r = simulate(setup)
    assert "deadlock" in r.kinds()
    dead = next(v for v in r.violations if v.kind == "deadlock")
    assert dead.extra["cycle"] == ["CPU0", "CPU1"]
    assert "wait-for cycle CPU0 -> CPU1 -> CPU0" in dead.message
    assert "CPU0 (t-ab) holds a[left] and waits for b[right] held by CPU1 (t-ba)" in dead.message
    assert "CPU1 (t-ba) holds b[right] and waits for a[left] held by CPU0 (t-ab)" in dead.message
    assert [w["lock"] for w in dead.extra["waits"]] == ["b[right]", "a[left]"]


def test_three_way_deadlock_names_all_three():
    def setup(m):
        locks = [SleepMutex(m, f"l{i}") for i in range(3)]
        for i in range(3):
            m.spawn(_take_both(locks[i], locks[(i + 1) % 3]))

    r = simulate(setup, witness=False)
    assert r.kinds() == ["deadlock"]
    assert r.violations[0].extra["cycle"] == ["CPU0", "CPU1", "CPU2"]


def test_deadlock_is_found_under_exploration_too():
    def setup(m):
        a, b = SleepMutex(m, "a"), SleepMutex(m, "b")
        m.spawn(_take_both(a, b))
        m.spawn(_take_both(b, a))

    found = [s for s in range(30)
             if "deadlock" in simulate(setup, strategy=RandomWalk(), seed=s).kinds()]
    assert 0 < len(found) < 30


def test_max_steps_stops_a_livelock():
    def setup(m):
        def spinner():
            while True:
                yield pause()
        m.spawn(spinner())

    r = simulate(setup, max_steps=500)
    assert r.kinds() == ["max-steps"]
    assert r.steps == 501
    assert "exceeded 500 steps" in r.violations[0].message


def test_a_run_that_fits_under_max_steps_is_not_stopped():
    def setup(m):
        def t():
            for _ in range(99):
                yield pause()
        m.spawn(t())

    r = simulate(setup, max_steps=100)
    assert r.violations == [] and r.steps == 100     # 99 yields + the final resume


def _abba_deadlock(lock_class):
    from smpvm import Machine
    m = Machine(seed=1)
    a, b = lock_class(m, "A"), lock_class(m, "B")
    m.spawn(_take_both(a, b), name="t1")
    m.spawn(_take_both(b, a), name="t2")
    (v,) = [v for v in m.run().violations if v.kind == "deadlock"]
    assert [w["call_chain"][-1].split()[-1] for w in v.extra["waits"]] == ["_take_both"] * 2
    return v.extra["report"].splitlines()


def test_a_deadlock_cycle_is_reported_like_lockdep_for_linux_locks():
    from smpvm import Mutex
    lines = _abba_deadlock(Mutex)
    assert lines[0] == "WARNING: deadlock: circular wait among CPUs"
    assert "CPU0 (t1) holds:" in lines and "CPU1 (t2) holds:" in lines
    assert any(ln.startswith(" and waits for B held by CPU1 @ ") for ln in lines)
    assert any(ln.startswith(" and waits for A held by CPU0 @ ") for ln in lines)
    assert " *** DEADLOCK ***" in lines and " Possible unsafe locking scenario:" in lines
    assert lines.count("  call chain (innermost last):") == 2


def test_a_deadlock_cycle_of_freebsd_locks_reads_as_a_wait_for_cycle():
    from smpvm import SleepMutex
    lines = _abba_deadlock(SleepMutex)
    assert lines[0] == "deadlock: wait-for cycle:"
    assert [ln for ln in lines if ln.startswith("  A @ ") or ln.startswith("  B @ ")]


@pytest.mark.parametrize("with_thread", [True, False])
def test_a_handler_that_sleeps_is_reported_and_resumes_when_woken(with_thread):
    from smpvm import Machine
    m = Machine(seed=1)
    chan = m.shared("chan", x=0)
    ran = []

    def handler():
        yield tsleep(chan)
        ran.append("handler")

    def waker():
        yield work(5000)
        yield wakeup(chan)

    if with_thread:
        def busy():
            yield work(100)
            ran.append("thread")
        m.spawn(busy(), name="t0", cpu=0)
    m.spawn(waker(), name="w", cpu=1)
    m.interrupt(0, SPLBIO, handler, at_ns=10)
    result = m.run()
    assert [v.kind for v in result.violations] == ["sleep-in-atomic"]
    assert ran == (["handler", "thread"] if with_thread else ["handler"])
