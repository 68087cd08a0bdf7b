"""FreeBSD callouts and Linux timers: their semantics, checked against the kernel's."""

import pytest

from conftest import RandomWalk, simulate
from smpvm import Callout, SleepMutex, Spinlock, Timer, Zone, pause, work


def _runs(setup, seeds=60, cpus=2):
    return [simulate(setup, strategy=RandomWalk(), seed=s, cpus=cpus) for s in range(seeds)]


# -- callouts ------------------------------------------------------------------------------------


def test_a_callout_runs_its_handler_once_on_its_cpu_after_the_delay():
    ran = []

    def setup(m):
        co = Callout(m, "tick", cpu=1)

        def handler(x):
            ran.append((x, m.current.id, m.now))
            yield pause()

        def t():
            yield co.reset(500, handler, "arg")
            yield work(1000)
        m.spawn(t(), name="t", cpu=0)
    r = simulate(setup, cpus=2)
    assert r.violations == [] and len(ran) == 1
    assert ran[0][:2] == ("arg", 1) and ran[0][2] >= 500


def test_callout_stop_of_a_pending_callout_cancels_it():
    ran, answers = [], []

    def setup(m):
        co = Callout(m, "tick", cpu=1)

        def handler():
            ran.append(1)
            yield pause()

        def t():
            yield co.reset(500, handler)
            answers.append((yield co.stop()))
            answers.append((yield co.stop()))
            yield work(1000)
        m.spawn(t(), name="t", cpu=0)
    assert simulate(setup, cpus=2).violations == []
    assert ran == [] and answers == [1, 0]


def _detach(stop, lock_kind=None, rearm=True):
    """A softc with a self-re-arming callout, freed by a detach that stops it with ``stop``."""
    def setup(m):
        z = Zone(m, "softc", {"ticks": 0}, type_name="softc")
        sc = z.new()
        lock = SleepMutex(m, "sc_mtx") if lock_kind else None
        co = Callout(m, "sc_callout", lock=lock, owner=sc, cpu=1)

        def handler():
            if lock is not None:
                yield lock.unlock()        # like snd_dummy: drop the lock for a while
            yield work(100)
            sc.ticks += 1
            if lock is not None:
                yield lock.lock()
            if rearm and sc.ticks < 3:
                yield co.schedule(100)

        def detach():
            yield co.reset(100, handler)
            yield work(150)
            if lock is not None:
                yield lock.lock()
            yield from stop(co, lock)
            if lock is not None:
                yield lock.unlock()
            yield z.free(sc)
        m.spawn(detach(), name="detach", cpu=0)
    return setup


def _stop(co, lock):
    yield co.stop()


def _drain(co, lock):
    if lock is not None:
        yield lock.unlock()
    yield co.drain()
    if lock is not None:
        yield lock.lock()


@pytest.mark.parametrize("lock_kind", [None, "mtx"])
def test_callout_stop_does_not_wait_for_a_running_handler(lock_kind):
    kinds = [r.kinds() for r in _runs(_detach(_stop, lock_kind))]
    assert ["use-after-free"] in kinds
    uaf = [r for r in _runs(_detach(_stop, lock_kind)) if r.violations][0].violations[0]
    assert "callout sc_callout" in uaf.message or "softc#0" in uaf.message


@pytest.mark.parametrize("lock_kind", [None, "mtx"])
def test_callout_drain_waits_for_the_handler_and_ignores_its_re_arm(lock_kind):
    for r in _runs(_detach(_drain, lock_kind)):
        assert r.violations == [], [v.message for v in r.violations]


def test_freeing_the_owner_of_a_pending_callout_names_the_callout():
    def setup(m):
        z = Zone(m, "softc", {"x": 0}, type_name="softc")
        sc = z.new()
        co = Callout(m, "sc_callout", owner=sc, cpu=1)

        def handler():
            yield pause()

        def t():
            yield co.reset(1000, handler)
            yield z.free(sc)
        m.spawn(t(), name="t", cpu=0)
    [v] = simulate(setup, cpus=2).violations
    assert v.kind == "use-after-free"
    assert v.message.startswith("free of softc#0 with callout sc_callout still pending")


def test_callout_stop_with_the_callout_lock_held_cancels_a_run_waiting_for_it():
    """callout_init_mtx's guarantee: a handler that has not got the lock yet is skipped."""
    ran = []

    def setup(m):
        mtx = SleepMutex(m, "sc_mtx")
        co = Callout(m, "sc_callout", lock=mtx, cpu=1)

        def handler():
            ran.append(m.now)
            yield pause()

        def t():
            yield mtx.lock()
            yield co.reset(10, handler)
            yield work(500)                 # softclock starts and waits for sc_mtx
            stopped = yield co.stop()
            assert stopped == 1
            yield mtx.unlock()
            yield work(500)
        m.spawn(t(), name="t", cpu=0)
    r = simulate(setup, cpus=2)            # timed: the handler is due while t holds sc_mtx
    assert r.violations == [] and ran == []


def test_callout_drain_with_the_callout_lock_held_deadlocks_when_the_handler_runs():
    def setup(m):
        mtx = SleepMutex(m, "sc_mtx")
        co = Callout(m, "sc_callout", lock=mtx, cpu=1)

        def handler():
            yield pause()

        def t():
            yield co.reset(10, handler)
            yield work(100)
            yield mtx.lock()
            yield co.drain()
            yield mtx.unlock()
        m.spawn(t(), name="t", cpu=0)
    # in the runs where the handler starts (and waits for sc_mtx) before t drains
    found = [r for r in _runs(setup) if "deadlock" in r.kinds()]
    assert found and "sc_mtx" in found[0].violations[-1].message


def test_callout_async_drain_calls_its_function_after_the_running_handler():
    calls = []

    def setup(m):
        co = Callout(m, "sc_callout", cpu=1)

        def handler():
            calls.append("handler start")
            yield work(200)
            calls.append("handler end")

        def drained(tag):
            calls.append(tag)
            yield pause()

        def t():
            yield co.reset(10, handler)
            yield work(100)
            calls.append(("async_drain", (yield co.async_drain(drained, "drained"))))
            yield work(500)
        m.spawn(t(), name="t", cpu=0)
    assert simulate(setup, cpus=2).violations == []
    assert calls == ["handler start", ("async_drain", 0), "handler end", "drained"]


def test_a_callout_handler_that_sleeps_is_sleep_in_atomic():
    from smpvm import may_sleep

    def setup(m):
        co = Callout(m, "sc_callout", cpu=1)

        def handler():
            yield may_sleep(10, "malloc M_WAITOK")

        def t():
            yield co.reset(10, handler)
            yield work(100)
        m.spawn(t(), name="t", cpu=0)
    assert simulate(setup, cpus=2).kinds() == ["sleep-in-atomic"]


# -- Linux timers --------------------------------------------------------------------------------


def _timer_teardown(delete, rearm=True):
    def setup(m):
        z = Zone(m, "wdt", {"ticks": 0}, type_name="cpu5wdt")
        dev = z.new()

        def trigger():
            yield work(100)
            dev.ticks += 1                  # outb to the port region
            if rearm and dev.ticks < 3:
                yield t.mod_timer(100)

        t = Timer(m, "wdt_timer", trigger, owner=dev, cpu=1)

        def exit_():
            yield t.mod_timer(100)
            yield work(150)
            yield delete(t)
            yield z.free(dev)               # release_region
        m.spawn(exit_(), name="cpu5wdt_exit", cpu=0)
    return setup


def test_del_timer_does_not_wait_for_a_running_callback():
    runs = _runs(_timer_teardown(lambda t: t.del_timer()))
    assert any(r.kinds() == ["use-after-free"] for r in runs)


def test_del_timer_sync_waits_for_the_running_callback():
    for r in _runs(_timer_teardown(lambda t: t.del_timer_sync(), rearm=False)):
        assert r.violations == [], [v.message for v in r.violations]


def test_timer_shutdown_sync_waits_and_ignores_every_later_arming():
    for r in _runs(_timer_teardown(lambda t: t.timer_shutdown_sync())):
        assert r.violations == [], [v.message for v in r.violations]


def test_mod_timer_reports_whether_it_was_pending_and_moves_it():
    seen = []

    def setup(m):
        def cb():
            seen.append(m.now)
            yield pause()
        t = Timer(m, "t", cb)

        def arm():
            seen.append((yield t.mod_timer(100)))
            seen.append((yield t.mod_timer(300)))
            seen.append(t.timer_pending())
            yield work(1000)
        m.spawn(arm(), name="arm", cpu=0)
    assert simulate(setup).violations == []
    assert seen[:3] == [0, 1, True] and len(seen) == 4 and seen[3] >= 300


def test_del_timer_sync_with_a_lock_the_callback_takes_is_a_circular_dependency():
    """lockdep's annotation: reported even when the callback is not running."""
    def setup(m):
        lock = Spinlock(m, "sc_lock")

        def cb():
            yield lock.spin_lock()
            yield lock.spin_unlock()
        t = Timer(m, "sc_timer", cb, cpu=1)

        def teardown():
            yield t.mod_timer(10)
            yield work(500)                 # the callback has run and finished
            yield lock.spin_lock_bh()
            yield t.del_timer_sync()
            yield lock.spin_unlock_bh()
        m.spawn(teardown(), name="teardown", cpu=0)
    r = simulate(setup, cpus=2)
    assert "lock-order-reversal" in r.kinds()
    lor = [v for v in r.violations if v.kind == "lock-order-reversal"][0]
    assert set(lor.extra["cycle"]) == {"sc_lock", "(sc_timer)"}


def test_a_timer_fires_in_softirq_context_on_the_arming_cpu():
    where = []

    def setup(m):
        def cb():
            c = m.current
            where.append((c.id, c.spl, c.in_interrupt))
            yield pause()
        t = Timer(m, "t", cb)

        def arm():
            yield t.mod_timer(10)
            yield work(100)
        m.spawn(arm(), name="arm", cpu=0)
    simulate(setup)
    from smpvm import SPLSOFT
    assert where == [(0, SPLSOFT, True)]
