"""RCU and epoch(9): grace periods wait for pre-existing readers only; early frees are caught."""

import pytest

from conftest import RandomWalk, Scripted, simulate
from smpvm import Epoch, Rcu, Zone, pause, work


def _domain(m, kind):
    if kind == "rcu":
        d = Rcu(m)
        return d, d.read_lock, d.read_unlock, d.dereference, d.synchronize, d.call_rcu
    d = Epoch(m, "net_epoch_preempt")
    return d, d.enter, d.exit, d.load, d.wait, d.call


def _reader_updater(kind, free_how):
    """A reader walks head -> obj; the updater unpublishes obj and frees it ``free_how``."""
    def setup(m):
        z = Zone(m, "objs", {"val": 1}, type_name="obj")
        obj = z.new()
        head = m.shared("head", first=obj)
        d, enter, leave, deref, sync, call = _domain(m, kind)

        def reader():
            yield enter()
            p = deref(head, "first")
            yield work(100)
            if p is not None:
                assert p.val == 1
            yield leave()

        def free_cb(o):
            yield z.free(o)

        def updater():
            yield work(20)
            head.first = None                  # unpublish
            if free_how == "sync":
                yield sync()
                yield z.free(obj)
            elif free_how == "call":
                yield call(free_cb, obj)
                yield work(10)
            else:
                yield z.free(obj)
        m.spawn(reader(), name="reader", cpu=0)
        m.spawn(updater(), name="updater", cpu=1)
    return setup


@pytest.mark.parametrize("kind", ["rcu", "epoch"])
@pytest.mark.parametrize("free_how", ["sync", "call"])
def test_freeing_after_a_grace_period_is_clean(kind, free_how):
    for seed in range(60):
        r = simulate(_reader_updater(kind, free_how), strategy=RandomWalk(), seed=seed)
        assert r.violations == [], (seed, [v.message for v in r.violations])


@pytest.mark.parametrize("kind", ["rcu", "epoch"])
def test_freeing_under_a_reader_is_reported_with_the_readers_section(kind):
    found = []
    for seed in range(60):
        r = simulate(_reader_updater(kind, "now"), strategy=RandomWalk(), seed=seed)
        found += r.violations
    assert found and {v.kind for v in found} == {"use-after-free"}
    sections = [v for v in found if "may still use it" in v.message]
    assert sections, [v.message for v in found]
    v = sections[0]
    assert v.extra["reader"] == "reader" and v.extra["section_site"].startswith("tests/")
    assert "took the pointer @ tests/test_kernel_grace.py:" in v.message


def test_synchronize_waits_for_pre_existing_readers_only():
    order = []

    def setup(m):
        rcu = Rcu(m)

        def old_reader():
            yield rcu.read_lock()
            order.append("old in")
            yield work(300)
            order.append("old out")
            yield rcu.read_unlock()

        def new_reader():
            yield work(100)
            yield rcu.read_lock()
            order.append("new in")
            yield work(1000)
            order.append("new out")
            yield rcu.read_unlock()

        def updater():
            yield work(50)
            order.append("sync")
            yield rcu.synchronize()
            order.append("synced")
        m.spawn(old_reader(), name="old", cpu=0)
        m.spawn(updater(), name="upd", cpu=1)
        m.spawn(new_reader(), name="new", cpu=2)
    r = simulate(setup)
    assert r.violations == []
    assert order.index("synced") > order.index("old out")
    assert order.index("synced") < order.index("new out")


def test_call_rcu_runs_its_callback_in_softirq_after_the_readers_leave():
    seen = []

    def setup(m):
        rcu = Rcu(m)

        def cb(tag):
            seen.append((tag, m.current.in_interrupt))
            yield pause()

        def reader():
            yield rcu.read_lock()
            yield work(200)
            seen.append("reader out")
            yield rcu.read_unlock()
            yield work(100)

        def updater():
            yield work(50)
            yield rcu.call_rcu(cb, "cb")
            yield work(500)
        m.spawn(reader(), name="reader", cpu=0)
        m.spawn(updater(), name="upd", cpu=1)
    assert simulate(setup).violations == []
    assert seen == ["reader out", ("cb", True)]


def test_leaving_a_section_never_entered_is_an_assertion():
    def setup(m):
        rcu = Rcu(m)

        def t():
            yield rcu.read_unlock()
        m.spawn(t(), name="t")
    r = simulate(setup, strategy=Scripted([0]))
    assert r.kinds() == ["assertion"] and "never entered" in r.violations[0].message
