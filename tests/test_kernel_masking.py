"""Interrupt masking at the call site, Linux words in reports, and sleeping in atomic context."""

import pytest

from conftest import Scripted, simulate
from smpvm import (SPLBIO, SPLSOFT, Epoch, Mutex, Rcu, SleepMutex, Spinlock, Sx, Timer,
                   local_bh_disable, local_bh_enable, local_irq_restore, local_irq_save,
                   may_sleep, pause, work)


def _handler_vs_thread(take, release, level):
    """A handler at ``level`` takes the lock the thread took with ``take``; when did it run?"""
    order = []

    def setup(m):
        lock = Spinlock(m, "dev lock")

        def handler():
            order.append("irq")
            yield lock.spin_lock()
            yield lock.spin_unlock()

        def thread():
            yield take(lock)
            order.append("locked")
            yield work(100)
            yield work(100)
            order.append("unlocking")
            yield release(lock)
            yield work(10)
        m.interrupt_source("dev", level, handler, cpu=0, at_ns=[50])
        m.spawn(thread(), name="t", cpu=0)
    r = simulate(setup)
    return r, order


@pytest.mark.parametrize("take,release,level", [
    (lambda lk: lk.spin_lock_irqsave(), lambda lk: lk.spin_unlock_irqrestore(), SPLBIO),
    (lambda lk: lk.spin_lock_irq(), lambda lk: lk.spin_unlock_irq(), SPLBIO),
    (lambda lk: lk.spin_lock_bh(), lambda lk: lk.spin_unlock_bh(), SPLSOFT),
])
def test_a_masking_call_site_keeps_the_handler_out_until_the_unlock(take, release, level):
    r, order = _handler_vs_thread(take, release, level)
    assert r.violations == []
    assert order == ["locked", "unlocking", "irq"]


def test_spin_lock_bh_does_not_mask_hard_interrupts():
    r, order = _handler_vs_thread(lambda lk: lk.spin_lock_bh(), lambda lk: lk.spin_unlock_bh(),
                                  SPLBIO)
    assert order[:2] == ["locked", "irq"]   # the handler spins on the held lock
    assert r.violations  # today reported as recursion on the lock; a deadlock in any case


def test_a_plain_spin_lock_and_a_softirq_user_are_reported_in_lockdep_words():
    def setup(m):
        lock = Spinlock(m, "q lock")

        def softirq():
            yield lock.spin_lock()
            yield lock.spin_unlock()

        def thread():
            yield work(100)           # the softirq comes first, on another CPU
            yield lock.spin_lock()
            yield lock.spin_unlock()
        m.interrupt_source("timer", SPLSOFT, softirq, cpu=1, at_ns=[0])
        m.spawn(thread(), name="t", cpu=0)
    r = simulate(setup, strategy=Scripted([1, 0]), cpus=2)
    [v] = r.violations
    assert v.kind == "spl-violation"
    assert v.message.startswith("inconsistent {IN-SOFTIRQ-W} -> {SOFTIRQ-ON-W} usage: q lock")
    assert "softirqs enabled" in v.message


def test_local_irq_save_and_local_bh_disable_mask_without_a_lock():
    seen = []

    def setup(m):
        def handler():
            seen.append("irq")
            yield pause()

        def softirq():
            seen.append("softirq")
            yield pause()

        def thread():
            flags = yield local_irq_save()
            yield work(100)
            seen.append("restore")
            yield local_irq_restore(flags)
            yield local_bh_disable()
            yield local_bh_disable()          # nests
            yield work(100)
            yield local_bh_enable()
            yield work(10)
            seen.append("bh on")
            yield local_bh_enable()
            yield work(10)
        m.interrupt_source("dev", SPLBIO, handler, cpu=0, at_ns=[50])
        m.interrupt_source("timer", SPLSOFT, softirq, cpu=0, at_ns=[150])
        m.spawn(thread(), name="t", cpu=0)
    r = simulate(setup)
    assert r.violations == []
    assert seen == ["restore", "irq", "bh on", "softirq"]


@pytest.mark.parametrize("make", [lambda m: Mutex(m, "m"), lambda m: Sx(m, "sx")])
def test_a_sleepable_lock_in_a_handler_is_sleep_in_atomic(make):
    def setup(m):
        lock = make(m)

        def handler():
            yield lock.lock() if hasattr(lock, "mutex_lock") else lock.xlock()
            yield lock.unlock()
        m.interrupt_source("dev", SPLBIO, handler, cpu=0, at_ns=[0])
        m.spawn((x for x in [pause()]), name="t", cpu=0)
    r = simulate(setup)
    assert "sleep-in-atomic" in r.kinds()


def test_sleeping_with_a_spin_lock_held_is_sleep_in_atomic_and_with_a_mutex_is_not():
    def setup(m):
        spin, mtx = Spinlock(m, "s"), SleepMutex(m, "mtx")

        def t():
            yield spin.lock()
            yield may_sleep(10, "GFP_KERNEL")
            yield spin.unlock()
            yield mtx.lock()
            yield may_sleep(10, "M_WAITOK")
            yield mtx.unlock()
        m.spawn(t(), name="t")
    r = simulate(setup)
    assert [v.kind for v in r.violations] == ["sleep-in-atomic", "sleep-with-spinlock"]


@pytest.mark.parametrize("domain", ["rcu", "epoch"])
def test_sleeping_inside_a_read_section_is_sleep_in_atomic_naming_the_section(domain):
    def setup(m):
        d = Rcu(m) if domain == "rcu" else Epoch(m, "net_epoch_preempt")
        enter, leave = (d.read_lock, d.read_unlock) if domain == "rcu" else (d.enter, d.exit)
        mtx = Mutex(m, "big mutex")

        def t():
            yield enter()
            yield mtx.lock()
            yield mtx.unlock()
            yield may_sleep(10, "GFP_KERNEL")
            yield leave()
            yield may_sleep(10, "GFP_KERNEL")     # fine outside
        m.spawn(t(), name="reader")
    r = simulate(setup)
    assert [v.kind for v in r.violations] == ["sleep-in-atomic", "sleep-in-atomic"]
    assert all("sleeping function called from invalid context" in v.message
               for v in r.violations)
    assert "acquiring sleepable mutex big mutex" in r.violations[0].message
    word = "read-side critical section" if domain == "rcu" else "epoch section"
    assert word in r.violations[1].message and "entered by reader @ tests/" in \
        r.violations[1].message


def test_a_timer_callback_that_sleeps_is_sleep_in_atomic():
    def setup(m):
        def callback():
            yield may_sleep(10, "GFP_KERNEL")

        t = Timer(m, "poll", callback)

        def arm():
            yield t.mod_timer(10)
            yield work(100)
        m.spawn(arm(), name="t", cpu=0)
    r = simulate(setup)
    [v] = r.violations
    assert v.kind == "sleep-in-atomic" and "inside interrupt handler irq:timer:poll" in v.message
