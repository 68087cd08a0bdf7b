"""CPUs as SimPy processes: the machine's environment, and devices beside the CPUs.

Each test builds the smallest machine that shows one rule, with every cost
zero (``conftest.simulate``) so that times can be predicted to the
nanosecond.  The devices here are plain SimPy processes added with
``m.env.process``: they reach the CPUs only through ``m.interrupt``,
``m.wakeup`` and events that threads wait for with ``wait_event``.
"""

from __future__ import annotations

import os
import pytest
import simpy

from conftest import MODELS, RandomWalk, Scripted, simulate, simulate_traced
from smpvm import (SPLBIO, KernelThread, ModelError, Replay, SpinMutex, Spinlock, note, pause,
                   splbio, splx, tsleep, wait_event, work)

# -- the environment ---------------------------------------------------------------------------


def test_the_machine_owns_a_simpy_environment_whose_clock_is_its_own():
    seen = []

    def setup(m):
        assert isinstance(m.env, simpy.Environment)

        def t():
            yield work(100)
            seen.append((m.now, m.env.now, m.env.active_process))
        c = m.spawn(t())
        seen.append(c)

    r = simulate(setup)
    c, (now, env_now, active) = seen
    assert now == env_now == 100
    assert isinstance(c.process, KernelThread) and isinstance(c.process, simpy.Process)
    assert active is c.process
    assert r.sim_events == 0  # no device: SimPy's queue was never used


def test_the_environment_is_run_by_the_machine_not_by_hand():
    def setup(m):
        with pytest.raises(ModelError, match="m.run"):
            m.env.run()
        m.spawn(iter_work(10))

    assert simulate(setup).violations == []


def iter_work(ns):
    yield work(ns)


def test_a_device_can_wait_for_a_kernel_thread_to_end():
    ends = []

    def setup(m):
        first = m.spawn(iter_work(300), name="short")
        m.spawn(iter_work(1000), name="long")

        def watcher():
            yield first.process
            ends.append(m.env.now)
        m.env.process(watcher())

    simulate(setup)
    assert ends == [300]


# -- interrupts from a device ------------------------------------------------------------------


def _disk(m, cpu, delay_ns, handler, level=SPLBIO):
    yield m.env.timeout(delay_ns)
    m.interrupt(cpu, level, handler, name="disk")


@pytest.mark.parametrize("strategy", [None, RandomWalk()], ids=["timed", "explore"])
def test_a_device_raises_an_interrupt_taken_at_the_cpus_next_yield_point(strategy):
    def setup(m):
        def handler():
            yield note("biodone")

        def t():
            for _ in range(10):
                yield work(100)
        m.spawn(t())
        m.env.process(_disk(m, 0, 250, handler))

    r, recs = simulate_traced(setup, strategy=strategy)
    begin = [x for x in recs if x.action == "irq-begin"]
    assert [(x.time_ns, x.target) for x in begin] == [(300, "disk")]
    assert r.interrupts["disk"]["delivered"] == 1
    assert r.interrupts["disk"]["latency_max_ns"] == 50
    assert r.sim_events > 0


def test_a_masked_interrupt_from_a_device_waits_for_splx():
    def setup(m):
        def handler():
            yield note("biodone")

        def t():
            s = yield splbio()
            yield work(1000)
            yield splx(s)
            yield work(10)
        m.spawn(t())
        m.env.process(_disk(m, 0, 200, handler))

    r, recs = simulate_traced(setup)
    assert [x.time_ns for x in recs if x.action == "irq-begin"] == [1000]


def test_an_idle_cpu_takes_a_device_interrupt_when_it_arrives():
    def setup(m):
        def handler():
            yield work(5)
        m.spawn(iter_work(2000), cpu=0)
        m.env.process(_disk(m, 1, 700, handler))

    r, recs = simulate_traced(setup, cpus=2)
    assert [(x.time_ns, x.cpu) for x in recs if x.action == "irq-begin"] == [(700, 1)]


def test_interrupt_names_a_cpu_that_exists():
    def setup(m):
        m.spawn(iter_work(10))

        def bad():
            yield m.env.timeout(1)
            m.interrupt(7, SPLBIO, iter_work)
        m.env.process(bad())

    with pytest.raises(ModelError, match="CPU7 does not exist"):
        simulate(setup, cpus=1)


# -- waking threads from a device --------------------------------------------------------------


def test_a_device_wakes_a_sleeping_thread():
    woke = []

    def setup(m):
        def t():
            yield tsleep("buf")
            woke.append(m.now)

        def device():
            yield m.env.timeout(400)
            assert m.wakeup("buf") == 1
        m.spawn(t())
        m.env.process(device())

    r, recs = simulate_traced(setup)
    assert woke == [400] and r.violations == []
    assert [(x.time_ns, x.action, x.target) for x in recs if x.action in ("sleep", "wakeup")] \
        == [(0, "sleep", "buf"), (400, "wakeup", "buf")]


@pytest.mark.parametrize("strategy", [None, RandomWalk()], ids=["timed", "explore"])
def test_a_thread_waits_for_a_device_event_through_a_store(strategy):
    got = []

    def setup(m):
        requests = simpy.Store(m.env)

        def disk():
            while True:             # a device loops for ever: the run ends without it
                bio = yield requests.get()
                yield m.env.timeout(500)
                bio["done"].succeed(bio["block"] * 2)

        def t():
            bio = {"block": 21, "done": m.env.event()}
            requests.put(bio)
            value = yield wait_event(bio["done"], "bio done")
            got.append((m.now, value))
        m.spawn(t())
        m.env.process(disk())

    r, recs = simulate_traced(setup, strategy=strategy)
    assert got == [(500, 42)] and r.violations == []
    assert ("sleep", "event bio done") in [(x.action, x.target) for x in recs]


def test_an_event_nothing_triggers_is_a_deadlock_naming_it():
    def setup(m):
        never = m.env.event()

        def t():
            yield wait_event(never, "bio done")
        m.spawn(t(), name="reader")

    r = simulate(setup)
    assert r.kinds() == ["deadlock"]
    assert "waits for event bio done, which nothing will trigger" in r.first().message


def test_an_event_already_processed_does_not_block():
    got = []

    def setup(m):
        ev = m.env.timeout(50, value="ready")

        def t():
            yield work(100)
            got.append((yield wait_event(ev)))
        m.spawn(t())

    simulate(setup)
    assert got == ["ready"]


def test_a_failing_device_is_a_one_line_model_error():
    def setup(m):
        def broken():
            yield m.env.timeout(10)
            raise RuntimeError("disk on fire")
        m.spawn(iter_work(100))
        m.env.process(broken())

    with pytest.raises(ModelError, match="SimPy process .* raised RuntimeError: disk on fire"):
        simulate(setup)


# -- exact replay with devices -----------------------------------------------------------------


def _racy(m):
    lock = Spinlock(m, "buf lock")
    state = {"n": 0}

    def handler():
        yield lock.lock()
        state["n"] += 1
        yield lock.unlock()

    def t(i):
        for _ in range(3):
            yield lock.lock()
            yield work(50 * (i + 1))
            yield lock.unlock()
            yield pause()

    def device():
        for k in range(4):
            yield m.env.timeout(120)
            m.interrupt(k % 2, SPLBIO, handler, name="disk")
    for i in range(2):
        m.spawn(t(i))
    m.env.process(device())


def test_runs_with_devices_replay_exactly_from_their_choices():
    for seed in range(5):
        r1, recs1 = simulate_traced(_racy, strategy=RandomWalk(), seed=seed)
        r2, recs2 = simulate_traced(_racy, strategy=Replay(r1.choices, timed=False), seed=seed)
        assert recs1 == recs2 and r1.choices == r2.choices


# -- interrupts reach spinning waiters ---------------------------------------------------------


def test_a_spinning_waiter_takes_an_interrupt_and_then_waits_again():
    def setup(m):
        lock = Spinlock(m, "Y")

        def holder():
            yield lock.lock()
            yield work(1000)
            yield lock.unlock()

        def waiter():
            yield work(10)
            yield lock.lock()          # spins from 10 ns to 1000 ns
            yield lock.unlock()

        def handler():
            yield work(30)
        m.spawn(holder(), cpu=0)
        m.spawn(waiter(), cpu=1)
        m.env.process(_disk(m, 1, 400, handler))

    r, recs = simulate_traced(setup)
    assert r.violations == []
    steps = [(x.time_ns, x.cpu, x.action) for x in recs
             if x.cpu == 1 and x.action in ("wait", "irq-begin", "irq-end", "acquire")]
    assert steps == [(10, 1, "wait"), (400, 1, "irq-begin"), (430, 1, "irq-end"),
                     (430, 1, "wait"), (1000, 1, "acquire")]


def test_a_spin_mutex_waiter_spins_with_interrupts_off():
    def setup(m):
        lock = SpinMutex(m, "Y")

        def holder():
            yield lock.lock()
            yield work(1000)
            yield lock.unlock()

        def waiter():
            yield work(10)
            yield lock.lock()
            yield lock.unlock()

        def handler():
            yield work(30)
        m.spawn(holder(), cpu=0)
        m.spawn(waiter(), cpu=1)
        m.env.process(_disk(m, 1, 400, handler))

    r, recs = simulate_traced(setup)
    assert [x.time_ns for x in recs if x.action == "irq-begin"] == [1000]


class ZeroTwiceThenOne(Scripted):
    """Exploration: CPU0 takes its first two steps (it holds Y), then CPU1 goes first."""

    def __init__(self):
        super().__init__([1, 0])
        self.picks = 0

    def pick(self, kind, options, last):
        self.picks += 1
        if self.picks <= 2 and 0 in options:
            return 0
        return super().pick(kind, options, last)


@pytest.mark.parametrize("strategy", [None, ZeroTwiceThenOne()], ids=["timed", "explore"])
def test_a_handler_wanting_a_lock_its_interrupted_waiter_holds_is_a_deadlock(strategy):
    def setup(m):
        x = Spinlock(m, "X")
        y = Spinlock(m, "Y")

        def other():
            yield y.lock()
            yield work(5000)
            yield y.unlock()

        def thread():
            yield work(10)
            yield x.lock()
            yield y.lock()             # spins with X held and interrupts enabled
            yield y.unlock()
            yield x.unlock()

        def handler():
            yield x.lock()
            yield x.unlock()
        m.spawn(other(), cpu=0, name="other")
        m.spawn(thread(), cpu=1, name="thread")
        m.env.process(_disk(m, 1, 400, handler))

    r = simulate(setup, strategy=strategy)
    assert r.kinds() == ["deadlock"]
    v = r.first()
    assert "CPU1 interrupted while holding X" in v.message
    assert "irq:disk waits for X" in v.message
    assert v.extra["cycle"] == ["CPU1"]


def test_a_trylock_of_a_lock_held_below_fails_instead():
    got = []

    def setup(m):
        x = Spinlock(m, "X")

        def thread():
            yield x.lock()
            yield work(1000)
            yield x.unlock()

        def handler():
            got.append((yield x.trylock()))
        m.spawn(thread())
        m.env.process(_disk(m, 0, 400, handler))

    r = simulate(setup)
    assert got == [False]
    assert "deadlock" not in r.kinds()


# -- the exhaustive search says less with devices ----------------------------------------------


def test_dfs_does_not_claim_a_proof_over_device_timing():
    from smpvm import RunSpec
    from smpvm.search.exhaust import exhaust

    rep = exhaust(RunSpec(os.path.join(MODELS, "engine_cases.py") + "::disk_interrupt"))
    assert rep.exhausted and rep.devices
    assert "device" in rep.summary() and "all " not in rep.summary()
    # the disk interrupts CPU0, one of two identical threads: shown only once the
    # (single) schedule has finished, that still makes the search drop the symmetry
    assert rep.symmetric == [] and "identical" not in rep.summary()


def test_interrupts_raised_during_set_up_arrive_when_asked():
    def setup(m):
        def handler():
            yield work(5)
        m.interrupt(1, SPLBIO, handler, name="early", at_ns=500)   # CPU1 has no thread yet
        m.interrupt(0, SPLBIO, handler, name="early", at_ns=250)
        m.spawn(iter_work(100), cpu=0)
        m.spawn(iter_work(300), cpu=0 + 2)

    r, recs = simulate_traced(setup, cpus=3)
    assert [(x.time_ns, x.cpu) for x in recs if x.action == "thread-begin"] == [(0, 0), (0, 2)]
    assert sorted((x.time_ns, x.cpu) for x in recs if x.action == "irq-begin") == [(250, 0), (500, 1)]
    assert r.interrupts["early"]["delivered"] == 2


@pytest.mark.parametrize("strategy", [None, RandomWalk()], ids=["timed", "explore"])
def test_a_kernel_thread_can_wait_for_another_to_end(strategy):
    got = []

    def setup(m):
        worker = m.spawn(iter_work(700), name="worker")

        def joiner():
            yield wait_event(worker.process, "worker done")
            got.append(m.now)
        m.spawn(joiner(), name="joiner")

    r = simulate(setup, strategy=strategy)
    assert r.violations == [] and got and got[0] >= 700
