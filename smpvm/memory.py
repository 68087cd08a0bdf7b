"""Kernel memory: zones of typed items, use-after-free detection, refcounts.

A ``Zone`` is like a UMA zone (or a slab cache): it hands out *items*, which
are structs with named fields.  An item is a pointer to a memory *slot*;
freeing it poisons the slot, and any later access through a pointer from
before the free is a **use-after-free**, reported with the allocation, free
and access sites, as KASAN reports do.

A ``nofree`` zone (``UMA_ZONE_NOFREE``) keeps its memory type-stable: a freed
slot is reused by the next allocation, so a stale pointer silently reads the
*new* object, which is how the real doomed-object bug corrupts.  Generation
checks (on by default) report such a stale access as use-after-free; turn
them off per zone (``check_generation=False``) to watch the aliasing happen.

Fields are read and written as attributes (``obj.ref_count += 1``), which is
atomic with the rest of the current step, or as separate steps that other
CPUs may interleave with: ``v = yield obj.load("ref_count")`` and
``yield obj.store("ref_count", v + 1)``.

A zone may name, per field, the lock(s) guarding it (``guards``), as the
(O)/(P)/(Q) annotations of FreeBSD's ``vm_page.h`` do.  Writing a guarded
field needs every guarding lock held (exclusively), reading needs one of
them: an Eraser-style lockset check that catches a race the moment it can
happen, whether or not this schedule loses an update.

Plain Python collections shared by CPUs are memory too, and the engine
cannot see them: ``SharedList`` and ``SharedDict`` (at the end of this
module) are the tracked way to share them.
"""

from __future__ import annotations

import os
import sys

from .current import current_machine
from .ops import ISSUED, Op
from .violations import ModelError


class _Slot:
    """The memory behind items: fields plus allocation history."""

    __slots__ = ("zone", "index", "gen", "live", "fields", "alloc_site", "free_site",
                 "watchers", "pointers", "seq", "stale_reach", "plain_gen")

    def __init__(self, zone, index):
        self.zone = zone
        self.index = index
        #: Bumped at every allocation of this slot.
        self.gen = 0
        self.live = False
        self.fields: dict = {}
        #: (site token or location, cpu, time_ns) of the last allocation and free.
        self.alloc_site = None
        self.free_site = None
        #: Checks to run when this allocation is freed (see ``watch_free``), in order.
        self.watchers: list = []
        #: Item objects alive that point to this allocation (generation ``gen``).
        self.pointers = 0
        #: The zone's allocation count when this allocation was made (``live_items`` order).
        self.seq = 0
        #: Freed, and a pointer outlived the step of the free (``Zone._settle``).
        self.stale_reach = False
        #: ``gen`` while the allocation is live and its fields need no check on access
        #: (no guards, no footprints), else -1: the one test of a field's fast path.
        self.plain_gen = -1


class Item:
    """A pointer to one allocation of a zone item; fields are its attributes."""

    __slots__ = ("_slot", "_gen")

    def __init__(self, slot, gen):
        _set_slot(self, slot)  # (past ``__setattr__``, which writes fields)
        _set_gen(self, gen)
        slot.pointers += 1  # (items are made only for the allocation a slot holds)

    def __del__(self):
        # Counts the pointers to an allocation, so that its free can tell whether any
        # survives it (``Zone._settle``).  A pointer in a reference cycle counts until the
        # cycle collector frees it: later than it could, never sooner.
        try:
            slot = _slot_of(self)
            if slot.gen == _gen_of(self):
                slot.pointers -= 1
        except AttributeError:  # never initialised (a copy made past ``__init__``)
            pass

    # -- field access ------------------------------------------------------------

    def __getattribute__(self, name):
        # Fields first: no field is named like one of the item's own attributes (fields
        # have no leading underscore and are not RESERVED_FIELDS), so the order changes
        # no answer.  A ``__getattr__`` would run only after the normal lookup failed,
        # which on Python 3.11 builds an AttributeError for every field read.
        slot = _slot_of(self)
        fields = slot.fields
        if name not in fields:
            try:
                return _own_attribute(self, name)
            except AttributeError:
                raise AttributeError(f"{slot.zone.type_name} has no field {name!r}") from None
        if slot.plain_gen == _gen_of(self):  # live, and nothing to check or note
            return fields[name]
        zone = slot.zone
        if slot.gen != _gen_of(self) or not slot.live:
            zone._stale(self, name, "read", sys._getframe(1))
        if zone.guards is not None and name in zone.guards:
            zone._check_lockset(self, name, False, sys._getframe(1))
        fp = zone.m.footprint
        if fp is not None:
            fp.setdefault(("field", zone.uid, slot.index, slot.gen, name), False)
        return fields[name]

    def __setattr__(self, name, value):
        slot = _slot_of(self)
        fields = slot.fields
        if name not in fields:
            raise AttributeError(f"{slot.zone.type_name} has no field {name!r}")
        if slot.plain_gen == _gen_of(self):  # live, and nothing to check or note
            fields[name] = value
            return
        if slot.gen != _gen_of(self) or not slot.live:
            slot.zone._stale(self, name, "write", sys._getframe(1))
        zone = slot.zone
        if zone.guards is not None and name in zone.guards:
            zone._check_lockset(self, name, True, sys._getframe(1))
        m = zone.m
        if m.footprint is not None:
            m.footprint[("field", zone.uid, slot.index, slot.gen, name)] = True
            if type(value) not in PLAIN_TYPES and crosses(value):
                m.escaped = True
        slot.fields[name] = value

    # -- separate-step access -------------------------------------------------------

    def load(self, name):
        """An operation: read ``name`` as a step of its own (other CPUs may interleave)."""
        ISSUED[0] += 1
        return _Load(self, name)

    def store(self, name, value):
        """An operation: write ``name`` as a step of its own."""
        ISSUED[0] += 1
        return _Store(self, name, value)

    # -- identity ---------------------------------------------------------------------

    def label(self) -> str:
        """The item's name in reports: ``<type>#<slot>`` (``vm_object#0``)."""
        s = _slot_of(self)
        return f"{s.zone.type_name}#{s.index}"

    @property
    def live(self) -> bool:
        """True while this pointer's allocation has not been freed."""
        s = _slot_of(self)
        s.zone.m.footprint_touch(("slot", s.zone.uid, s.index, _gen_of(self)), write=False)
        return s.live and s.gen == _gen_of(self)

    @property
    def zone(self):
        """The zone this item was allocated from."""
        return _slot_of(self).zone

    def same_memory(self, other) -> bool:
        """True when both pointers address the same slot (whatever the generation)."""
        return isinstance(other, Item) and _slot_of(other) is _slot_of(self)  # identity: no shared read

    def __repr__(self) -> str:
        return self.label()


class _Load(Op):
    __slots__ = ("item", "name")

    def __init__(self, item, name):
        self.item = item
        self.name = name

    def execute(self, m, c):
        value = getattr(self.item, self.name)
        c.clock += m.costs.field_ns
        if m.tracing:
            m.record(c, "load", f"{self.item.label()}.{self.name}", repr(value))
        return value


class _Store(Op):
    __slots__ = ("item", "name", "value")

    def __init__(self, item, name, value):
        self.item = item
        self.name = name
        self.value = value

    def execute(self, m, c):
        setattr(self.item, self.name, self.value)
        c.clock += m.costs.field_ns
        if m.tracing:
            m.record(c, "store", f"{self.item.label()}.{self.name}", repr(self.value))
        return None


class _Alloc(Op):
    __slots__ = ("zone", "wait", "fields")

    def __init__(self, zone, wait, fields):
        self.zone = zone
        self.wait = wait
        self.fields = fields

    def execute(self, m, c):
        if self.wait:
            m.witness.check_sleep(c, f"{self.zone.name} allocation (may sleep)", interlock=None)
        start = c.clock
        c.clock += m.duration(m.costs.zone_alloc_ns)
        item = self.zone._allocate(self.fields, m.site_token(c), c.id, start)
        if m.tracing:
            m.record(c, "alloc", item.label(), "")
        return item


class _Free(Op):
    __slots__ = ("zone", "item")

    def __init__(self, zone, item):
        self.zone = zone
        self.item = item

    def execute(self, m, c):
        item = self.item
        if item is None:
            raise ModelError(f"a {self.zone.name} free was yielded twice: make a new one "
                             f"(yield zone.free(obj)) for each free")
        self.item = None  # the operation is no pointer that outlives the free
        start = c.clock
        slot = _slot_of(item)
        if slot.live and slot.gen == _gen_of(item):
            if not self.zone.nofree:
                m.witness.check_free(c, item.label(), slot.fields)
            watchers, slot.watchers = slot.watchers, []
            for check in watchers:
                check(m, c, item)
        c.clock += m.duration(m.costs.zone_free_ns)
        self.zone._release(item, m.site_token(c), c.id, start)
        if m.tracing:
            m.record(c, "free", item.label(), "")
        return None


#: An item's own slots, read and set past ``Item.__getattribute__`` and ``__setattr__``
#: (which are for its fields).
_slot_of = Item._slot.__get__
_gen_of = Item._gen.__get__
_set_slot = Item._slot.__set__
_set_gen = Item._gen.__set__
_own_attribute = object.__getattribute__

#: Attribute names an item answers itself, so no field may use them.
RESERVED_FIELDS = frozenset({"load", "store", "label", "live", "zone", "same_memory"})


#: Field-name tuples already found good (zones are made again in every run).
_GOOD_FIELDS: set = set()


def _check_field_names(zone_name, fields) -> None:
    """Every field must be an identifier other than an item's own attribute names."""
    names = tuple(fields)
    if names in _GOOD_FIELDS:
        return
    import keyword
    from .violations import ModelError
    bad = sorted(f for f in fields if not isinstance(f, str) or not f.isidentifier()
                 or keyword.iskeyword(f) or f.startswith("_"))
    if bad:
        raise ModelError(f"zone {zone_name!r}: field name(s) {', '.join(map(repr, bad))} are "
                         f"not plain identifiers (no keywords, no leading underscore)")
    clash = sorted(set(fields) & RESERVED_FIELDS)
    if clash:
        raise ModelError(f"zone {zone_name!r}: field name(s) {', '.join(clash)} clash with "
                         f"what every item answers itself ({', '.join(sorted(RESERVED_FIELDS))}); "
                         f"rename them, e.g. {clash[0]}_")
    _GOOD_FIELDS.add(names)


class Zone:
    """A typed allocator (a UMA zone, a slab cache) of items with named fields.

    ``Zone(m, "VM OBJECT", {"ref_count": 0, "flags": 0}, type_name="vm_object")``
    makes items whose fields start at those values; ``obj = yield zone.alloc()``
    and ``yield zone.free(obj)`` allocate and free in a thread, ``zone.new()``
    at set-up.  Any access through a pointer to a freed item is a
    use-after-free (``nofree`` zones reuse slots, like ``UMA_ZONE_NOFREE``).
    ``guards`` maps a field to a callable returning the lock(s) that must be
    held to touch it.  Field names are identifiers other than
    ``RESERVED_FIELDS``.
    """

    def __init__(self, m, name: str, fields: dict, *, type_name: str | None = None,
                 nofree: bool = False, check_generation: bool = True,
                 guards: dict | None = None):
        #: The machine the zone belongs to.
        self.m = m
        #: Zone name as the kernel calls it ("VM OBJECT").
        self.name = name
        #: The struct's name in reports ("vm_object").
        self.type_name = type_name or name
        #: Field names and their values in a fresh item.
        self.defaults = dict(fields)
        _check_field_names(self.name, self.defaults)
        #: Freed slots are reused (type-stable memory) instead of staying poisoned.
        self.nofree = nofree
        #: Report access through a pointer to an earlier allocation of a slot.
        self.check_generation = check_generation
        self._slots: list[_Slot] = []
        self.guards = guards
        self.uid = m.register_zone(self)
        #: Freed slots (``nofree``), the latest last: the next allocation takes it.
        self._free: list[_Slot] = []
        #: Slots in ``_free`` that a pointer outlived the free of (``stale_reach``).
        self._stale_free = 0
        self._live_count = 0
        #: Allocations made so far (each slot notes its own: ``live_items`` order).
        self._seq = 0

    @property
    def guards(self) -> dict | None:
        """Field -> callable(fields dict) returning the guarding lock or a tuple of them."""
        return self._guards

    @guards.setter
    def guards(self, guards) -> None:
        self._guards = dict(guards) if guards else None
        # fields read and written without a check only where none is due
        self._plain = self._guards is None and not self.m.wants_footprints
        if not self._plain:
            for slot in self._slots:
                slot.plain_gen = -1

    # -- operations -------------------------------------------------------------------

    def alloc(self, wait: bool = True, **fields):
        """``obj = yield zone.alloc(ref_count=1)``; ``wait`` = may sleep (M_WAITOK)."""
        ISSUED[0] += 1
        return _Alloc(self, wait, fields)

    def free(self, item):
        """``yield zone.free(obj)``: poisons the item; freeing twice is a double free."""
        ISSUED[0] += 1
        return _Free(self, item)

    def new(self, **fields) -> Item:
        """Allocate outside any thread (scenario set-up); takes no simulated time."""
        return self._allocate(fields, _caller_token(self.m, sys._getframe(1)), -1, self.m.now)

    def field_values(self):
        """(slot, field, value) for every field of every item, read without a
        footprint: the exhaustive search's own look at the state, not the model's.
        Freed items are included: a stale pointer may still read a type-stable one
        (the others' fields were dropped when they were freed)."""
        for slot in self._slots:
            for name, value in slot.fields.items():
                yield slot.index, name, value

    def field_value(self, index: int, name: str):
        """The value of field ``name`` of the item in slot ``index`` (as ``field_values``)."""
        return self._slots[index].fields[name]

    def live_items(self) -> list[Item]:
        """Pointers to every live item, in the order they were allocated."""
        self._touch_live_set()
        live = [s for s in self._slots if s.live]
        live.sort(key=_seq_of)
        return [Item(s, s.gen) for s in live]

    @property
    def live_count(self) -> int:
        """Items currently allocated."""
        self._touch_live_set()
        return self._live_count

    def _touch_live_set(self) -> None:
        """Footprint: the live set is what the allocations (``("zone", uid)``) and the
        frees (``("live set", uid)``) made it.  Frees only read their key: two frees
        commute, and a look at the live set, written here, is ordered with each."""
        fp = self.m.footprint
        if fp is not None:
            fp.setdefault(("zone", self.uid), False)
            fp[("live set", self.uid)] = True

    def retire(self) -> None:
        """The run is over: forget the slots, which refer back to the zone, so that
        reference counting frees them (``Machine.dismantle``); items keep theirs."""
        self._slots = []
        self._free = []

    # -- mechanics --------------------------------------------------------------------------

    def _allocate(self, fields, site, cpu, now) -> Item:
        defaults = self.defaults
        if fields:
            if not fields.keys() <= defaults.keys():
                unknown = set(fields) - set(defaults)
                raise ModelError(f"zone {self.name!r} has no field(s) "
                                 f"{', '.join(sorted(unknown))}")
            f = {**defaults, **fields}
        else:
            f = defaults.copy()
        fp = self.m.footprint
        if self._free:
            slot = self._free.pop()
            if slot.stale_reach:
                slot.stale_reach = False
                self._stale_free -= 1
                if fp is not None:
                    fp[("free list", self.uid)] = True
                    # what the stale pointers to the freed allocation read from now on
                    self._touch_fields(slot, slot.gen)
        else:
            slot = _Slot(self, len(self._slots))
            self._slots.append(slot)
        if fp is not None:
            fp.setdefault(("free list", self.uid), False)
        slot.gen = gen = slot.gen + 1
        slot.pointers = 0
        slot.seq = self._seq
        self._seq += 1
        slot.live = True
        slot.plain_gen = gen if self._plain else -1
        slot.fields = f
        slot.alloc_site = (site, cpu, now)
        slot.watchers = []
        self._live_count += 1
        if fp is not None:
            fp[("zone", self.uid)] = True
            self._touch_fields(slot)
            if fields and any(crosses(v) for v in fields.values()):
                self.m.escaped = True
        return Item(slot, gen)

    def _touch_fields(self, slot, gen=None) -> None:
        """Footprint: allocating or freeing writes every field and the liveness of the
        slot's allocation ``gen`` (the current one by default).

        Footprints name an allocation, not only its slot: an access touches the
        allocation the slot holds when it is made (a stale pointer's included),
        so the free of one allocation and the next allocation of the slot touch
        nothing in common, and are ordered only by the free list (``_settle``).
        """
        fp = self.m.footprint
        if fp is not None:
            if gen is None:
                gen = slot.gen
            fp[("slot", self.uid, slot.index, gen)] = True
            for name in slot.fields:
                fp[("field", self.uid, slot.index, gen, name)] = True

    def _release(self, item, site, cpu, now) -> None:
        slot = _slot_of(item)
        fp = self.m.footprint
        if fp is not None:
            fp.setdefault(("live set", self.uid), False)
            self._touch_fields(slot, _gen_of(item))
        if not slot.live or slot.gen != _gen_of(item):
            self.m.fail("double-free", f"free of {item.label()} {self._history(slot, item)}",
                        loc=self.m.site_name(site))
            return
        slot.live = False
        slot.plain_gen = -1
        slot.free_site = (site, cpu, now)
        self._live_count -= 1
        if not self.nofree:
            # Poisoned for good: drop the contents so nothing reads them by accident.
            slot.fields = {k: None for k in slot.fields}
            return
        self._free.append(slot)
        if self.m.footprint is None:
            self._stale_slot(slot)  # no search is watching: nothing to tell apart
        else:
            self.m.settle_later(slot)

    def _settle(self, slot) -> None:
        """The footprint of a ``nofree`` free, at the end of its step, once the freeing
        thread has run on and dropped what pointers it will.

        A free and an allocation of the same zone are ordered by the exhaustive
        search when the order can tell: when the allocation could take a slot
        that a stale pointer reaches, and so alias it.  Where no pointer outlived
        this free and none outlived the frees of the other slots waiting for
        reuse, every free slot is as good as a fresh one but for its number, a
        name and no state: the free then reads the free list, and an allocation
        on another CPU may go before or after it without the search trying both.
        (No pointer to a freed allocation is ever made again, so a slot stays
        unreached; the slots allocations take are the same whatever was found.)
        """
        if slot.live:  # taken again in the same step (``new`` called from a thread)
            self.m.footprint_touch(("free list", self.uid))
        elif slot.pointers or self._stale_free:
            if slot.pointers:
                self._stale_slot(slot)
            self.m.footprint_touch(("free list", self.uid))
        else:
            self.m.footprint_touch(("free list", self.uid), write=False)

    def _stale_slot(self, slot) -> None:
        slot.stale_reach = True
        self._stale_free += 1

    def _stale(self, item, name, how, frame) -> None:
        slot = _slot_of(item)
        if slot.live and self.nofree and not self.check_generation:
            return  # type-stable memory: the stale pointer reads the new object
        site = _caller_site(self.m, frame)
        self.m.fail("use-after-free",
                    f"{how} of {item.label()}.{name} {self._history(slot, item)}",
                    loc=site, extra={"object": item.label(), "field": name,
                                     "alloc": _fmt(self.m, slot.alloc_site),
                                     "free": _fmt(self.m, slot.free_site)})

    def _history(self, slot, item) -> str:
        parts = [f"allocated at {_fmt(self.m, slot.alloc_site)}"]
        if slot.free_site is not None:
            parts.append(f"freed at {_fmt(self.m, slot.free_site)}")
        gen = _gen_of(item)
        if slot.gen != gen:
            parts.append(f"since reallocated (generation {gen} -> {slot.gen})")
        return "(" + ", ".join(parts) + ")"

    def _check_lockset(self, item, name, write, frame) -> None:
        c = self.m.current
        if c is None:
            return  # set-up and quiescence code run alone
        locks = self.guards[name](_slot_of(item).fields)
        if not isinstance(locks, (tuple, list)):
            locks = (locks,)
        if write:
            ok = all(c.holds(lk, exclusive=True) for lk in locks)
            need = "all of" if len(locks) > 1 else ""
        else:
            ok = any(c.holds(lk) for lk in locks)
            need = "one of" if len(locks) > 1 else ""
        if not ok:
            names = ", ".join(lk.label() for lk in locks)
            how = "write" if write else "read"
            held = ", ".join(h.lock.label() + ("" if h.mode == "x" else " (shared)")
                             for h in c.held) or "nothing"
            excl = " exclusively" if write else ""
            self.m.fail("assertion", f"lockset: {how} of {item.label()}.{name} needs "
                        f"{need + ' ' if need else ''}{names} held{excl}; CPU{c.id} holds {held}",
                        loc=_caller_site(self.m, frame))


_seq_of = _Slot.seq.__get__


def _fmt(m, site) -> str:
    if site is None:
        return "?"
    token, cpu, t = site
    loc = m.site_name(token)
    who = f" by CPU{cpu}" if cpu >= 0 else ""
    return f"{loc or '?'}{who} at {t} ns"


def _caller_site(m, frame) -> str:
    return m.frame_site(frame)


#: The package's directory: a caller inside it is engine code (see ``Machine.frame_site``).
_ENGINE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _caller_token(m, frame):
    """``_caller_site`` as a site token, named only if a report asks (``Machine.site_name``)."""
    code = frame.f_code
    if code.co_filename.startswith(_ENGINE_DIR):
        return m.frame_site(frame)
    return (code, frame.f_lasti)


# -- reference counts and assertions ---------------------------------------------------------


def watch_free(item: Item, check) -> None:
    """Run ``check(m, cpu, item)`` when this allocation of ``item`` is freed.

    Kernel objects that live inside an item (a callout in a softc, a pointer a
    reader took inside an RCU section) use it to report, at the free, what is
    still going to touch the memory.  Checks are dropped at the free.
    """
    _slot_of(item).watchers.append(check)


def free_history(item: Item) -> str:
    """``(allocated at ..., freed at ...)`` of ``item``, as use-after-free reports give it."""
    s = _slot_of(item)
    return s.zone._history(s, item)


def _refcount_fail(item, field, what, kind="use-after-free") -> None:
    from .current import current_machine
    m = current_machine()
    msg = f"{item.label()}.{field} {what}"
    if m is None:
        raise AssertionError(msg)
    m.fail(kind, msg, loc=m.frame_site(sys._getframe(2)),
           extra={"object": item.label(), "field": field})


def refcount_acquire(item: Item, field: str = "ref_count") -> int:
    """FreeBSD ``refcount_acquire(9)``: add a reference atomically; returns the new count.

    Acquiring from 0 revives an object whose last reference is gone (it is
    being, or has been, destroyed): a ``use-after-free`` naming the object, as
    Linux's ``refcount_inc`` warns "addition on 0; use-after-free".  Use
    ``refcount_acquire_if_not_zero`` where 0 is a legitimate answer.
    """
    v = getattr(item, field)
    if v <= 0:
        _refcount_fail(item, field, f"acquired at {v}: addition on 0; use-after-free "
                       f"(the object is being destroyed)")
    setattr(item, field, v + 1)
    return v + 1


def refcount_release(item: Item, field: str = "ref_count") -> bool:
    """FreeBSD ``refcount_release(9)``: drop a reference; True when it was the last.

    Releasing at 0 is an underflow, an ``assertion`` naming the object.
    """
    v = getattr(item, field)
    if v <= 0:
        _refcount_fail(item, field, f"released at {v}: reference count underflow",
                       kind="assertion")
    setattr(item, field, v - 1)
    return v - 1 == 0


def refcount_acquire_if_not_zero(item: Item, field: str = "ref_count") -> bool:
    """FreeBSD ``refcount_acquire_if_not_zero``: take a reference unless the count is 0.

    True when a reference was taken; False means the object is dying and
    must not be used.  Linux spells it ``refcount_inc_not_zero`` and
    ``kref_get_unless_zero``.
    """
    v = getattr(item, field)
    if v <= 0:
        return False
    setattr(item, field, v + 1)
    return True


def refcount_inc(item: Item, field: str = "refcount") -> None:
    """Linux ``refcount_inc``: add a reference; on 0 it is a ``use-after-free`` naming the object."""
    v = getattr(item, field)
    if v <= 0:
        _refcount_fail(item, field, f"incremented at {v}: refcount_t: addition on 0; use-after-free")
    setattr(item, field, v + 1)


def refcount_inc_not_zero(item: Item, field: str = "refcount") -> bool:
    """Linux ``refcount_inc_not_zero``: True when a reference was taken, False at 0 (dying)."""
    return refcount_acquire_if_not_zero(item, field)


def refcount_dec_and_test(item: Item, field: str = "refcount") -> bool:
    """Linux ``refcount_dec_and_test``: drop a reference; True when it was the last.

    Going below 0 is a ``use-after-free`` naming the object ("refcount_t:
    underflow; use-after-free").
    """
    v = getattr(item, field)
    if v <= 0:
        _refcount_fail(item, field, f"decremented at {v}: refcount_t: underflow; use-after-free")
    setattr(item, field, v - 1)
    return v - 1 == 0


def kref_get(item: Item, field: str = "refcount") -> None:
    """Linux ``kref_get``: ``refcount_inc`` on the kref's count."""
    v = getattr(item, field)
    if v <= 0:
        _refcount_fail(item, field, f"kref_get at {v}: refcount_t: addition on 0; use-after-free")
    setattr(item, field, v + 1)


def kref_get_unless_zero(item: Item, field: str = "refcount") -> bool:
    """Linux ``kref_get_unless_zero``: True when a reference was taken, False at 0 (dying)."""
    return refcount_inc_not_zero(item, field)


def kref_put(item: Item, field: str = "refcount") -> bool:
    """Linux ``kref_put``: drop a reference; True when the caller must now release the object.

    The release function of the kernel is the model's own code run when this
    returns True (``if kref_put(obj): yield zone.free(obj)``).
    """
    v = getattr(item, field)
    if v <= 0:
        _refcount_fail(item, field, f"kref_put at {v}: refcount_t: underflow; use-after-free")
    setattr(item, field, v - 1)
    return v - 1 == 0


def kassert(condition, message) -> None:
    """``KASSERT``: record an assertion violation (ending the run) when ``condition`` is false.

    ``message`` may be a callable returning the text, evaluated only on failure
    (so it may dereference what the condition guards).
    """
    if condition:
        return
    if callable(message):
        message = message()
    from .current import current_machine
    m = current_machine()
    if m is None:
        raise AssertionError(message)
    m.fail("assertion", str(message), loc=m.frame_site(sys._getframe(1)))


# -- plain collections the engine can see ------------------------------------------------
#
# A model often keeps some book-keeping in plain Python: a log of events, a
# table from address to object, a queue of work.  When two CPUs use the same
# plain list, the engine does not know it (it records accesses to locks, zone
# items, wait channels and the model's random stream), and the exhaustive
# search would treat their steps as independent.  The search notices such
# state and says so; these two classes are the way to share it *tracked*:
# every read of one records a read of the collection in the step's footprint,
# every change records a write, exactly as a field of a zone item does.
#
#     log = SharedList(m, "log")        # instead of log = []
#     table = SharedDict(m, "table")    # instead of table = {}
#
# Both behave like ``list`` and ``dict`` for the usual operations; the whole
# collection is one unit of sharing (two CPUs touching different entries still
# conflict, which costs the search a few schedules and never misses one).
# For single values, fields of ``m.shared("name", field=...)`` do the same.
#
# State that threads write but whose value never changes what any thread does
# -- counters and lists kept for the end-of-run checks, labels -- may instead
# be declared ``bookkeeping``: the search then leaves it out, as it leaves
# out ``m.metric``.  Declaring state that a thread's decisions do depend on
# makes the exhaustive search unsound for that model.


#: Types whose values hold no state to share (what ``crosses`` asks first).
PLAIN_TYPES = frozenset({type(None), bool, int, float, complex, str, bytes})


def crosses(value) -> bool:
    """Could ``value``, stored in a field or shared collection during a run, hand
    plain Python state (a list, an object, a closure) to another CPU?  (Then
    ``dfs`` looks again for state outside the model API: ``Machine.escaped``.)"""
    t = type(value)
    if t in PLAIN_TYPES:
        return False
    if t is tuple or t is frozenset:
        return any(crosses(v) for v in value)
    module = t.__module__ or ""
    return not (module == "smpvm" or module.startswith("smpvm."))


class _Tracked:
    """The part both share: the footprint key and the two kinds of access."""

    __slots__ = ("m", "name", "_data", "_key")

    def __init__(self, m, name, data):
        self.m = m
        #: Name in footprints and reports.
        self.name = str(name)
        self._data = data
        self._key = ("tracked", self.name)

    def _read(self):
        self.m.footprint_touch(self._key, write=False)
        return self._data

    def _write(self):
        self.m.footprint_touch(self._key, write=True)
        return self._data

    def _hand(self, values):
        """Note values written in: state they hold may now reach other CPUs."""
        m = self.m
        if m.footprint is not None and any(crosses(v) for v in values):
            m.escaped = True

    def __len__(self):
        return len(self._read())

    def __iter__(self):
        return iter(list(self._read()))

    def __contains__(self, x):
        return x in self._read()

    def __getitem__(self, k):
        return self._read()[k]

    def __setitem__(self, k, v):
        self._hand((v,))
        self._write()[k] = v

    def __delitem__(self, k):
        del self._write()[k]

    def __eq__(self, other):
        if isinstance(other, _Tracked):
            other = other._read()
        return self._read() == other

    __hash__ = None

    def __bool__(self):
        return bool(self._read())

    def copy(self):
        """A plain copy (reads the collection)."""
        return self._read().copy()

    def clear(self):
        """Empty the collection (a write)."""
        self._write().clear()

    def pop(self, *args):
        """Remove and return an entry, as ``list.pop`` / ``dict.pop`` (a write)."""
        return self._write().pop(*args)

    def __repr__(self):
        return f"{type(self).__name__}({self.name!r}, {self._data!r})"


class SharedList(_Tracked):
    """A list shared by CPUs, every access recorded: ``SharedList(m, "log", [1, 2])``."""

    __slots__ = ()

    def __init__(self, m, name, items=()):
        super().__init__(m, name, list(items))

    def append(self, x):
        """Add ``x`` at the end (a write)."""
        self._hand((x,))
        self._write().append(x)

    def extend(self, xs):
        """Add every item of ``xs`` at the end (a write)."""
        xs = list(xs)
        self._hand(xs)
        self._write().extend(xs)

    def insert(self, i, x):
        """Insert ``x`` before index ``i`` (a write)."""
        self._hand((x,))
        self._write().insert(i, x)

    def remove(self, x):
        """Remove the first ``x`` (a write)."""
        self._write().remove(x)

    def index(self, x, *args):
        """Index of the first ``x`` (a read)."""
        return self._read().index(x, *args)

    def count(self, x):
        """How many entries equal ``x`` (a read)."""
        return self._read().count(x)

    def sort(self, **kw):
        """Sort in place, as ``list.sort`` (a write)."""
        self._write().sort(**kw)

    def reverse(self):
        """Reverse in place (a write)."""
        self._write().reverse()

    def __iadd__(self, xs):
        self._write().extend(xs)
        return self


class SharedDict(_Tracked):
    """A dict shared by CPUs, every access recorded: ``SharedDict(m, "table")``."""

    __slots__ = ()

    def __init__(self, m, name, items=None):
        super().__init__(m, name, dict(items or {}))

    def get(self, k, default=None):
        """The value for ``k``, or ``default`` (a read)."""
        return self._read().get(k, default)

    def keys(self):
        """A list of the keys (a read)."""
        return list(self._read().keys())

    def values(self):
        """A list of the values (a read)."""
        return list(self._read().values())

    def items(self):
        """A list of the (key, value) pairs (a read)."""
        return list(self._read().items())

    def setdefault(self, k, default=None):
        """The value for ``k``, storing ``default`` first if absent (a read, and a write if stored)."""
        data = self._read()
        if k in data:
            return data[k]
        self._hand((default,))
        self._write()[k] = default
        return default

    def update(self, *args, **kw):
        """Merge entries in, as ``dict.update`` (a write)."""
        entries = dict(*args, **kw)
        self._hand(entries.values())
        self._write().update(entries)


def bookkeeping(obj, *attrs):
    """Declare ``obj`` (or only its attributes ``attrs``) book-keeping; returns ``obj``.

    For scenario set-up: ``self.mappings = bookkeeping([])``, or
    ``bookkeeping(self, "objects_made", "objects_destroyed")``.  It promises that
    no thread's decisions depend on that state (kept only for end-of-run checks),
    so the exhaustive search leaves it out; a false promise makes it unsound.
    """
    m = current_machine()
    if m is None:
        raise ModelError("bookkeeping() declares a scenario's state: call it while the "
                         "scenario sets up its machine")
    books = m.books
    entry = books.get(id(obj))
    names = None if not attrs else frozenset(attrs) | (entry[1] if entry and entry[1] else frozenset())
    books[id(obj)] = (obj, names)
    return obj


def bookkept(m) -> dict:
    """id -> attribute names (None: the whole object) declared book-keeping in ``m``'s run."""
    return {k: names for k, (_, names) in m.books.items()}
