"""Reference counts with the kernel's rules, the drained reference, and zone field names."""

import pytest

from conftest import RandomWalk, simulate
from smpvm import (DrainRef, ModelError, Zone, kref_get_unless_zero, kref_put, pause,
                   refcount_acquire, refcount_acquire_if_not_zero, refcount_dec_and_test,
                   refcount_inc, refcount_inc_not_zero, refcount_release, work)


def _one(body, fields=None):
    def setup(m):
        z = Zone(m, "objs", fields or {"ref_count": 1, "refcount": 1}, type_name="obj")
        obj = z.new()

        def t():
            yield from body(obj)
            yield pause()
        m.spawn(t(), name="t")
    return simulate(setup)


def test_acquire_on_zero_is_a_use_after_free_naming_the_object():
    def body(obj):
        assert refcount_release(obj)
        refcount_acquire(obj)
        yield pause()
    r = _one(body)
    [v] = r.violations
    assert v.kind == "use-after-free"
    assert v.message.startswith("obj#0.ref_count acquired at 0: addition on 0; use-after-free")
    assert v.extra["object"] == "obj#0"


@pytest.mark.parametrize("inc", [refcount_inc, lambda o: refcount_inc(o, "refcount")])
def test_linux_refcount_inc_on_zero_warns_as_linux_does(inc):
    def body(obj):
        assert refcount_dec_and_test(obj)
        inc(obj)
        yield pause()
    [v] = _one(body).violations
    assert v.kind == "use-after-free" and "refcount_t: addition on 0; use-after-free" in v.message


def test_decrement_below_zero_names_the_object():
    def body(obj):
        assert refcount_dec_and_test(obj)
        refcount_dec_and_test(obj)
        yield pause()
    [v] = _one(body).violations
    assert v.kind == "use-after-free" and v.message.startswith("obj#0.refcount decremented at 0")


def test_conditional_acquisitions_refuse_zero_and_count_otherwise():
    seen = []

    def body(obj):
        seen.append(refcount_acquire_if_not_zero(obj))      # 1 -> 2
        seen.append(refcount_inc_not_zero(obj))             # refcount 1 -> 2
        seen.append(kref_put(obj))                          # 2 -> 1
        seen.append(kref_put(obj))                          # 1 -> 0: release now
        seen.append(kref_get_unless_zero(obj))              # refused
        seen.append(refcount_release(obj))                  # ref_count 2 -> 1
        seen.append(refcount_release(obj))                  # -> 0
        seen.append(refcount_acquire_if_not_zero(obj))      # refused
        yield pause()
    r = _one(body)
    assert r.violations == []
    assert seen == [True, True, False, True, False, False, True, False]


def test_a_drained_reference_lets_the_destroyer_wait_for_the_last_user():
    """destroy_dev waits for si_threadcount; a user arriving later is refused."""
    for seed in range(40):
        def setup(m):
            z = Zone(m, "cdev", {"open": 1}, type_name="cdev")
            dev = z.new()
            ref = DrainRef(m, "si_threadcount")

            def user():
                if ref.acquire():
                    yield work(50)
                    dev.open += 1          # a use-after-free if the destroyer did not wait
                    ref.release()
                yield pause()

            def destroyer():
                yield work(20)
                yield ref.drain()
                yield z.free(dev)
            m.spawn(user(), name="user")
            m.spawn(destroyer(), name="destroy_dev")
        r = simulate(setup, strategy=RandomWalk(), seed=seed)
        assert r.violations == [], (seed, [v.message for v in r.violations])


def test_without_the_drain_the_same_user_is_a_use_after_free():
    found = 0
    for seed in range(40):
        def setup(m):
            z = Zone(m, "cdev", {"open": 1}, type_name="cdev")
            dev = z.new()
            ref = DrainRef(m, "si_threadcount")

            def user():
                if ref.acquire():
                    yield work(50)
                    dev.open += 1
                    ref.release()
                yield pause()

            def destroyer():
                yield work(20)
                yield z.free(dev)
            m.spawn(user(), name="user")
            m.spawn(destroyer(), name="destroy_dev")
        found += simulate(setup, strategy=RandomWalk(), seed=seed).kinds() == ["use-after-free"]
    assert found > 0


@pytest.mark.parametrize("field", ["zone", "live", "label", "load", "store", "same_memory"])
def test_a_field_named_like_an_item_attribute_is_a_clear_error(field):
    def setup(m):
        Zone(m, "vnet", {field: 0, "if_refcount": 1})
    with pytest.raises(ModelError, match=rf"zone 'vnet': field name\(s\) {field} clash with .* rename them, e.g. {field}_"):
        simulate(setup)


def test_a_field_that_is_not_an_identifier_is_a_clear_error():
    def setup(m):
        Zone(m, "vnet", {"if-refcount": 1})
    with pytest.raises(ModelError, match="not plain identifiers"):
        simulate(setup)
