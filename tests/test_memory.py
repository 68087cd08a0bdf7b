"""Zones and items: use-after-free, double free, type-stable reuse, locksets, refcounts.

A pointer is an item; freeing it poisons the slot.  The tests check that
every way back into freed memory (attribute read or write, a load or store
step) is reported with the allocation, free and access sites, that a
NOFREE zone reuses slots (and that generation checks catch stale pointers
into them unless turned off), and that lockset guards demand the right
locks for reads and writes.
"""

from __future__ import annotations

import pytest

from conftest import RandomWalk, free_costs, simulate
from smpvm import (ModelError, RwLock, SleepMutex, SpinMutex, Zone, kassert, refcount_acquire,
                   refcount_release, work)

FIELDS = {"ref_count": 0, "flags": 0, "handle": None}


def _one_thread(body):
    """A set-up that makes a zone ``z`` (and passes the machine) to one thread ``body(m, z)``."""
    def setup(m):
        z = Zone(m, "VM OBJECT", FIELDS, type_name="vm_object")
        m.spawn(body(m, z), name="t")
    return setup


# -- allocation ---------------------------------------------------------------------------------


def test_alloc_and_free_track_live_items():
    seen = {}

    def body(m, z):
        a = yield z.alloc(ref_count=1)
        b = yield z.alloc(flags=4)
        seen["fields"] = (a.ref_count, a.flags, b.ref_count, b.flags, b.handle)
        seen["labels"] = (a.label(), b.label(), repr(a))
        seen["live"] = z.live_count
        yield z.free(a)
        seen["after free"] = (a.live, b.live, z.live_count, [x.label() for x in z.live_items()])

    r = simulate(_one_thread(body))
    assert r.violations == []
    assert seen == {"fields": (1, 0, 0, 4, None),
                    "labels": ("vm_object#0", "vm_object#1", "vm_object#0"),
                    "live": 2, "after free": (False, True, 1, ["vm_object#1"])}


def test_alloc_and_free_cost_their_fast_paths():
    def body(m, z):
        a = yield z.alloc()
        yield z.free(a)

    r = simulate(_one_thread(body), params=free_costs(zone_alloc_ns=100, zone_free_ns=50))
    assert r.time_ns == 150


def test_zone_new_allocates_during_set_up():
    seen = {}

    def setup(m):
        z = Zone(m, "VM OBJECT", FIELDS, type_name="vm_object")
        obj = z.new(ref_count=2)

        def t():
            seen["ref_count"] = obj.ref_count
            yield work(1)
        m.spawn(t())

    assert simulate(setup).violations == []
    assert seen == {"ref_count": 2}


def test_unknown_fields_are_model_errors():
    def body(m, z):
        yield z.alloc(colour="red")

    with pytest.raises(ModelError, match="no field"):
        simulate(_one_thread(body))


def test_an_item_answers_for_its_fields_and_for_itself_alike():
    # Fields are looked up before the item's own attributes; no name is both.
    seen = {}

    def body(m, z):
        a = yield z.alloc(ref_count=1)
        b = yield z.alloc()
        a.handle = b
        seen["fields"] = (a.ref_count, a.flags, a.handle.label())
        seen["own"] = (a.label(), a.live, a.zone is z, a.same_memory(a), a.same_memory(b))
        yield a.store("flags", 4)
        seen["steps"] = (yield a.load("flags"))
        seen["absent"] = (getattr(a, "colour", "none"), hasattr(a, "__dict__"),
                          hasattr(a, "_slot"))
        yield z.free(b)
        yield z.free(a)

    r = simulate(_one_thread(body))
    assert r.violations == []
    assert seen == {"fields": (1, 0, "vm_object#1"),
                    "own": ("vm_object#0", True, True, True, False), "steps": 4,
                    "absent": ("none", False, True)}


def test_reading_a_field_the_struct_lacks_raises():
    def body(m, z):
        a = yield z.alloc()
        a.colour

    with pytest.raises(ModelError, match="vm_object has no field 'colour'"):
        simulate(_one_thread(body))


# -- use after free and double free ---------------------------------------------------------------


def _access_after_free(how):
    def body(m, z):
        a = yield z.alloc(ref_count=1)
        yield work(10)
        yield z.free(a)
        yield work(10)
        if how == "read":
            kassert(a.ref_count >= 0, "unreachable")
        elif how == "write":
            a.ref_count = 5
        elif how == "load":
            yield a.load("ref_count")
        else:
            yield a.store("ref_count", 5)
        yield work(1)

    return simulate(_one_thread(body))


@pytest.mark.parametrize("how", ["read", "write", "load", "store"])
def test_any_access_after_free_is_reported_with_its_sites(how):
    r = _access_after_free(how)
    assert r.kinds() == ["use-after-free"]
    v = r.violations[0]
    verb = {"load": "read", "store": "write"}.get(how, how)
    assert v.message.startswith(f"{verb} of vm_object#0.ref_count (allocated at ")
    assert "freed at tests/test_memory.py:" in v.message
    assert v.extra["object"] == "vm_object#0" and v.extra["field"] == "ref_count"
    assert v.extra["alloc"].startswith("tests/test_memory.py:") and "by CPU0 at 0 ns" in \
        v.extra["alloc"]
    assert "by CPU0 at 10 ns" in v.extra["free"]


@pytest.mark.parametrize("how", [
    "read", "write",
    "load",
    "store",
])
def test_an_access_after_free_is_located_at_the_model_line(how):
    v = _access_after_free(how).violations[0]
    assert v.location.startswith("tests/test_memory.py:"), v.location


def test_double_free_is_reported():
    def body(m, z):
        a = yield z.alloc()
        yield z.free(a)
        yield z.free(a)

    r = simulate(_one_thread(body))
    assert r.kinds() == ["double-free"]
    assert "free of vm_object#0" in r.violations[0].message
    assert "freed at" in r.violations[0].message


def test_an_ordinary_zone_never_reuses_a_slot():
    seen = {}

    def body(m, z):
        a = yield z.alloc()
        yield z.free(a)
        b = yield z.alloc()
        seen["same memory"] = a.same_memory(b)
        seen["label"] = b.label()

    assert simulate(_one_thread(body)).violations == []
    assert seen == {"same memory": False, "label": "vm_object#1"}


def _nofree(check_generation):
    seen = {}

    def setup(m):
        z = Zone(m, "VM OBJECT", FIELDS, type_name="vm_object", nofree=True,
                 check_generation=check_generation)

        def t():
            old = yield z.alloc(handle="old device")
            yield z.free(old)
            new = yield z.alloc(handle="new device")
            seen["same memory"] = old.same_memory(new)
            seen["old live"], seen["new live"] = old.live, new.live
            seen["stale read"] = old.handle        # through the pointer from before the free
            yield work(1)
        m.spawn(t())
    return setup, seen


def test_a_nofree_zone_reuses_slots_and_generation_checks_catch_stale_pointers():
    setup, seen = _nofree(check_generation=True)
    r = simulate(setup)
    assert r.kinds() == ["use-after-free"]
    assert "since reallocated (generation 1 -> 2)" in r.violations[0].message
    assert seen == {"same memory": True, "old live": False, "new live": True}


def test_without_generation_checks_a_stale_pointer_reads_the_new_object():
    setup, seen = _nofree(check_generation=False)
    r = simulate(setup)
    assert r.violations == []
    assert seen == {"same memory": True, "old live": False, "new live": True,
                    "stale read": "new device"}


def test_a_freed_nofree_slot_is_still_poisoned_until_reused():
    def setup(m):
        z = Zone(m, "VM OBJECT", FIELDS, nofree=True, check_generation=False)

        def t():
            a = yield z.alloc()
            yield z.free(a)
            a.flags = 1
            yield work(1)
        m.spawn(t())

    assert simulate(setup).kinds() == ["use-after-free"]


def test_a_race_to_free_is_found_under_exploration():
    """Two CPUs drop a reference with a separate load and store: sometimes both free."""
    def setup(m):
        z = Zone(m, "VM OBJECT", FIELDS, type_name="vm_object")
        obj = z.new(ref_count=2)

        def release():
            v = yield obj.load("ref_count")
            yield obj.store("ref_count", v - 1)
            if v - 1 == 0:
                yield z.free(obj)
        m.spawn(release())
        m.spawn(release())
        m.on_quiescence(lambda: kassert(z.live_count == 0, "leaked the object"))

    kinds = [tuple(simulate(setup, strategy=RandomWalk(), seed=s).kinds()) for s in range(30)]
    assert () in kinds                             # the orders that work
    assert ("assertion",) in kinds                 # both saw 2: nobody freed it


# -- locksets ----------------------------------------------------------------------------------


def _guarded(body, guard="one"):
    def setup(m):
        a = SleepMutex(m, "object lock")
        b = SleepMutex(m, "page queue lock")
        rw = RwLock(m, "rw lock")
        guards = {"one": {"flags": lambda f: a},
                  "two": {"flags": lambda f: (a, b)},
                  "rw": {"flags": lambda f: rw}}[guard]
        z = Zone(m, "VM PAGE", {"flags": 0, "pa": 0}, type_name="vm_page", guards=guards)
        page = z.new()
        m.spawn(body(page, a, b, rw))
    return setup


def test_a_guarded_write_without_its_lock_is_reported():
    def body(page, a, b, rw):
        page.pa = 1                     # unguarded: fine
        page.flags = 1
        yield work(1)

    r = simulate(_guarded(body))
    assert r.kinds() == ["assertion"]
    msg = r.violations[0].message
    assert msg.startswith("lockset: write of vm_page#0.flags needs object lock held exclusively")
    assert "CPU0 holds nothing" in msg


def test_a_guarded_access_with_its_lock_held_is_fine():
    def body(page, a, b, rw):
        yield a.lock()
        page.flags |= 2
        v = yield page.load("flags")
        yield page.store("flags", v | 4)
        yield a.unlock()

    assert simulate(_guarded(body)).violations == []


def test_two_guards_a_write_needs_both_and_a_read_needs_one():
    def reads_with_one(page, a, b, rw):
        yield b.lock()
        kassert(page.flags == 0, "fresh page")
        yield b.unlock()

    def writes_with_one(page, a, b, rw):
        yield b.lock()
        page.flags = 1
        yield b.unlock()

    def writes_with_both(page, a, b, rw):
        yield a.lock()
        yield b.lock()
        page.flags = 1
        yield b.unlock()
        yield a.unlock()

    assert simulate(_guarded(reads_with_one, "two")).violations == []
    assert simulate(_guarded(writes_with_both, "two")).violations == []
    r = simulate(_guarded(writes_with_one, "two"))
    assert r.kinds() == ["assertion"]
    assert "needs all of object lock, page queue lock held exclusively; CPU0 holds " \
        "page queue lock" in r.violations[0].message


def test_a_shared_hold_guards_reads_but_not_writes():
    def reads(page, a, b, rw):
        yield rw.rlock()
        kassert(page.flags == 0, "fresh page")
        yield rw.runlock()

    def writes(page, a, b, rw):
        yield rw.rlock()
        page.flags = 1
        yield rw.runlock()

    assert simulate(_guarded(reads, "rw")).violations == []
    r = simulate(_guarded(writes, "rw"))
    assert r.kinds() == ["assertion"]
    assert "CPU0 holds rw lock (shared)" in r.violations[0].message


def test_guards_do_not_apply_during_set_up():
    def setup(m):
        a = SleepMutex(m, "object lock")
        z = Zone(m, "VM PAGE", {"flags": 0}, guards={"flags": lambda f: a})
        page = z.new()
        page.flags = 3                   # set-up runs alone

        def t():
            yield a.lock()
            kassert(page.flags == 3, "set-up write lost")
            yield a.unlock()
        m.spawn(t())

    assert simulate(setup).violations == []


def test_guards_given_after_the_items_were_made_apply_to_them():
    # fields without guards are read past every check; guards set later end that
    def setup(m):
        a = SleepMutex(m, "object lock")
        z = Zone(m, "VM PAGE", {"flags": 0}, type_name="vm_page")
        page = z.new()
        z.guards = {"flags": lambda f: a}

        def t():
            page.flags = 1
            yield work(1)
        m.spawn(t())

    r = simulate(setup)
    assert r.kinds() == ["assertion"]
    assert r.violations[0].message.startswith("lockset: write of vm_page#0.flags")


# -- allocation that may sleep ---------------------------------------------------------------------


@pytest.mark.parametrize("wait,expect", [(True, ["sleep-in-atomic"]), (False, [])])
def test_a_waiting_allocation_under_a_spin_mutex_is_a_warning(wait, expect):
    def setup(m):
        spin = SpinMutex(m, "sched lock")
        z = Zone(m, "VM OBJECT", FIELDS)

        def t():
            yield spin.lock()
            obj = yield z.alloc(wait=wait)
            yield spin.unlock()
            yield z.free(obj)
        m.spawn(t())

    r = simulate(setup)
    assert r.kinds() == expect
    if expect:
        msg = r.violations[0].message
        assert "VM OBJECT allocation" in msg and "sched lock" in msg


# -- reference counts ------------------------------------------------------------------------------


def test_refcounts_count_and_report_the_last_release():
    seen = []

    def body(m, z):
        obj = yield z.alloc(ref_count=1)
        seen.append(refcount_acquire(obj))
        seen.append(refcount_release(obj))
        seen.append(refcount_release(obj))
        yield z.free(obj)

    assert simulate(_one_thread(body)).violations == []
    assert seen == [2, False, True]


def test_refcount_underflow_is_an_assertion():
    def body(m, z):
        obj = yield z.alloc(ref_count=0)
        refcount_release(obj)
        yield work(1)

    r = simulate(_one_thread(body))
    assert r.kinds() == ["assertion"]
    assert "vm_object#0.ref_count released at 0: reference count underflow" in \
        r.violations[0].message
    assert r.violations[0].location.startswith("tests/test_memory.py:")


def test_refcounts_on_another_field():
    seen = []

    def body(m, z):
        obj = yield z.alloc(flags=1)
        seen.append(refcount_release(obj, "flags"))
        yield z.free(obj)

    assert simulate(_one_thread(body)).violations == []
    assert seen == [True]
