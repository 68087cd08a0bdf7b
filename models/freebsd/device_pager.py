"""FreeBSD's device pager: two races over the VM objects that back mmap'ed devices.

When a process maps a character device, the kernel looks for the device's VM
object on a private list of device-pager objects (``dev_pager_object_list``),
keyed by a *handle* (the ``struct cdev``), and creates one if there is none.
Objects leave the list when their last reference goes away and
``vm_object_terminate`` tears them down.  Two historical bugs lived in the
gap between "found on the list" and "owned by a reference".

``doomed_object`` (FreeBSD 6.x/7.0-CURRENT, 2007).  A terminator Pt drops
the last reference to the device's object and starts tearing it down: under
the object lock it marks it ``OBJ_DEAD``, later lets the lock go, unlinks the
object from the pager list and returns it to ``obj_zone``.  An allocator Pa
mmaps the same device meanwhile.  In the sx era the lookup walks the list
under ``dev_pager_sx`` only, never tests ``OBJ_DEAD``, and then takes its
reference by waiting for the object lock, which Pt hands over once it is done
with it: Pa walks away with a reference to an object about to be freed, and
its next touch of it is a use-after-free.  ``obj_zone`` is NOFREE, so in the
kernel the memory stays a vm_object and the stale pointer silently aliases
whatever object is allocated next; the zone's generation check reports it.

``handle_race`` (FreeBSD 9.x, after the cdev pager KPI of 2011).  Two mappers
of one device both miss on the list, both allocate an object, and only one
can insert its object under the device's handle.  The loser renames its
object's handle to the object itself (so the list never holds two live
objects with one handle), inserts it, and drops it; ``dev_pager_dealloc``
then hands ``object->handle`` to the driver destructor, which releases a
device reference on what is really a vm_object.

Variants and what each shows:

* doomed_object ``buggy``: the sx-era allocator.  The engine's schedules
  find the interleaving of the 2007 commit message: Pa's lookup returns the
  doomed object, Pa's reference waits for the object lock, Pt lets the lock
  go, unlinks and frees the object, and Pa's reference or its later page
  fault is a use-after-free.  With ``pageout=true`` a pager I/O (thread Pd)
  holds paging-in-progress, Pt sleeps for it with the lock dropped, Pa
  references the object meanwhile, and Pt's own "object with references"
  assertion fires when it wakes.
* doomed_object ``fixed``: ``dev_pager_mtx`` covers lookup and insert and
  the sx is gone; the lookup locks each candidate, skips doomed ones and takes
  its reference under the object lock, so a doomed object is never handed
  out; allocation happens with the mutex dropped and is followed by a second
  lookup.  No violation of any kind (lock order included) in any schedule.
* doomed_object ``extra-reference``: the fixed lookup, whose caller adds a
  reference of its own as ``cdev_pager_lookup`` once did: the object keeps a
  reference nobody will drop, reported as a leak when the run ends.
* handle_race ``buggy``: the destructor gets the renamed handle and
  ``dev_rel`` decrements a word of the vm_object: its count goes negative and
  the INVARIANTS assertion fires.  With ``invariants=false`` the run goes on
  with the vm_object silently corrupted, and ends with the cdev reference the
  loser's object held never given back.
* handle_race ``fixed``: the object keeps its cdev in ``un_pager.devp.dev``
  and the destructor gets that.  No violation.

Invariants (numbered as in the project's model specifications):
A1 no thread but the terminator references an object after ``OBJ_DEAD`` is
set (judged at the end of the run, so that a doomed reference that goes on
to be used is reported as the use-after-free it becomes); A2 ``ref_count``
stays 0 through terminate (the kernel's own KASSERT); A3 nothing touches an
object after it is freed (zone generations: ``obj_zone`` is NOFREE, so in a
kernel the stale pointer would silently alias the next object allocated
there); A4 the pager list is read and written under ``dev_pager_mtx`` only
(a lockset check, on with ``lockset=true``: the sx-era walk fails it in every
run, race or not); A5 every reference left on an object belongs to a mapping
that holds it.  B1/B2 ``dev_rel``'s argument is a cdev and its count never
goes negative; B3 every destroyed device object gives its cdev reference
back; B4 no two live objects on the list share a handle.  B3 counts per
destroyed object, so the separate leak of a constructor run on every
allocate call (fixed in 2024) is not part of this model.

Sources, paraphrased (no kernel code or commit text is reproduced): the FreeBSD
VM commit messages collected in the project's seed document (alc's account
of the doomed object and kib's commit that put ``dev_pager_mtx`` over lookup
and insert, ahead of the object lock, and removed the sx, both 2007; avg's
removal of the redundant reference in ``cdev_pager_lookup``; ken's
explanation of the loser's handle reaching ``dev_rel`` and the cdev pointer
added to the object); FreeBSD ``sys/vm/device_pager.c`` in its 5.x form (with
``dev_pager_sx``), its 9.3 form (``cdev_pager_allocate``, the destructor
called on ``object->handle``) and its current form (``un_pager.devp.dev``);
``sys/vm/vm_pager.c`` (``vm_pager_object_lookup`` testing ``OBJ_DEAD`` and
referencing under the object lock); ``sys/vm/vm_object.c``
(``vm_object_deallocate``, ``vm_object_terminate``, ``obj_zone`` created
NOFREE); ``sys/kern/kern_conf.c`` (``dev_rel`` asserting its count stays
non-negative).  Durations are assumed orders of magnitude.
"""

from smpvm import (SleepMutex, Sx, Zone, bookkeeping, kassert, msleep, note, refcount_release,
                   scenario, wakeup, work)

# Documented lock order, as data.  The sx-era allocator takes dev_pager_sx,
# then the object lock (to reference) or dev_pager_mtx (to insert); kib's fix
# removed the sx and put dev_pager_mtx before the object lock.  Teardown in
# both eras lets the object lock go before it takes dev_pager_mtx, so these
# orders hold for every variant.
LOCK_ORDER = [
    ["dev_pager_sx", "dev_pager_mtx", "vm object"],
    ["dev_pager_sx", "vm object"],  # the sx era's reference under the sx
]

# What each variant must show, checked by ``pytest --smpvm models/`` (smpvm.testing):
# the races reproduce in the buggy variants and the fixes show none.
EXPECT = {
    "doomed_object": {"buggy": {"finds": "use-after-free", "runs": 300},
                      "fixed": {"clean": 300},
                      "extra-reference": {"finds": "assertion", "runs": 300}},
    "handle_race": {"buggy": {"finds": "assertion", "runs": 300},
                    "fixed": {"clean": 300}},
}

#: ``vm_object.flags`` bit: the object is being terminated.
OBJ_DEAD = 0x0008

#: d_mmap validation of a four-page mapping, one driver call per page [assumed].
VALIDATE_NS = 400
#: vm_object_terminate cleaning the object's pages with its lock held [assumed].
TERMINATE_NS = 1_000
#: The pager I/O that holds paging_in_progress on the object [assumed].
PAGEOUT_NS = 3_000
#: References make_dev leaves on a cdev (the devfs node's own).
CDEV_BASE_REFS = 1


class Pager:
    """What the threads of one run share: the device, the pager list, its locks, the zone."""

    __slots__ = ("m", "list_mtx", "create_sx", "obj_zone", "pagers", "dev", "has_dtor",
                 "keeps_dev", "terminate_ns", "narrate_teardown", "invariants", "objects_made",
                 "objects_destroyed", "cdev_releases", "doomed_references", "mappings")

    def __init__(self, m, *, sx_era=False, lockset=False, has_dtor=False, keeps_dev=False,
                 terminate_ns=TERMINATE_NS, narrate_teardown=True, invariants=True):
        self.m = m
        #: "dev_pager list": the mutex over dev_pager_object_list.
        self.list_mtx = SleepMutex(m, "dev_pager_mtx")
        #: "dev_pager create": the sx that serialised lookup + create (sx era only).
        self.create_sx = Sx(m, "dev_pager_sx") if sx_era else None
        #: obj_zone: NOFREE, so freed objects stay vm_objects and are reused.
        self.obj_zone = Zone(m, "VM OBJECT", {
            "ref_count": 0, "flags": 0, "pip": 0, "handle": None, "lock": None,
            # un_pager.devp.dev: the cdev, kept apart from the handle (the fix).
            "devp_dev": None,
            # The vm_object word that sits where a struct cdev keeps
            # si_refcount; 0 in the reported panic.
            "word_at_si_refcount": 0,
        }, type_name="vm_object", nofree=True)
        #: dev_pager_object_list, as a tuple of objects in list order.
        if lockset:  # A4: every touch of the list must hold dev_pager_mtx
            self.pagers = Zone(m, "dev_pager_object_list", {"objects": ()}, type_name="pagerlst",
                               guards={"objects": lambda f: self.list_mtx}).new()
        else:
            self.pagers = m.shared("pagerlst", objects=())
        #: The mapped device.
        self.dev = m.shared("cdev", si_refcount=CDEV_BASE_REFS)
        #: Teardown calls the driver destructor (the 2011 cdev pager KPI; not in 2007).
        self.has_dtor = has_dtor
        #: The object records its cdev (un_pager.devp.dev) and the destructor uses it.
        self.keeps_dev = keeps_dev
        self.terminate_ns = terminate_ns
        #: Say "OBJ_DEAD" in the narrative when teardown starts.
        self.narrate_teardown = narrate_teardown
        #: The kernel was built with INVARIANTS (dev_rel asserts).
        self.invariants = invariants
        # Bookkeeping for the end-of-run checks only (never read by the threads).
        self.objects_made = 0
        self.objects_destroyed = 0
        self.cdev_releases = 0
        #: Objects someone referenced after OBJ_DEAD was set (A1).
        self.doomed_references = []
        #: The object each allocator mapped (A5).
        self.mappings = []
        # Written by the threads, judged only when the run ends: no schedule choice depends on it.
        bookkeeping(self, "objects_made", "objects_destroyed", "cdev_releases",
                    "doomed_references", "mappings")

    def new_object(self, **fields):
        """Set-up: an object already mapped once (``ref_count`` 1), on the pager list."""
        obj = self.obj_zone.new(ref_count=1, handle=self.dev, **fields)
        obj.lock = SleepMutex(self.m, "vm object", instance=f"obj{self.objects_made}")
        if self.keeps_dev:
            obj.devp_dev = self.dev
        self.objects_made += 1
        self.pagers.objects = self.pagers.objects + (obj,)
        return obj


# -- the object layer (vm_object.c) --------------------------------------------------------


def vm_object_allocate(p):
    """A fresh object with one reference and its own lock; ``uma_zalloc`` may sleep."""
    obj = yield p.obj_zone.alloc(ref_count=1, handle=p.dev)
    obj.lock = SleepMutex(p.m, "vm object", instance=f"obj{p.objects_made}")
    if p.keeps_dev:
        obj.devp_dev = p.dev
    p.objects_made += 1
    return obj


def vm_object_reference(p, obj):
    """Add a reference under the object lock (waits while someone else holds it)."""
    yield obj.lock.lock()
    obj.ref_count += 1
    if obj.flags & OBJ_DEAD:
        p.doomed_references.append(obj.lock.instance)  # A1, judged when the run ends
    yield obj.lock.unlock()


def vm_object_deallocate(p, obj):
    """Drop a reference; the last one (of an object not already dying) terminates it."""
    yield obj.lock.lock()
    refcount_release(obj)
    if obj.ref_count > 0 or obj.flags & OBJ_DEAD:
        yield obj.lock.unlock()
        return
    yield from vm_object_terminate(p, obj)


def vm_object_terminate(p, obj):
    """Tear down an unreferenced object; entered with its lock held."""
    if p.narrate_teardown:
        yield note(f"last reference gone: vm_object_terminate sets OBJ_DEAD on {obj.lock.instance}")
    obj.flags |= OBJ_DEAD
    if p.terminate_ns:
        yield work(p.terminate_ns)
    # Paging-in-progress wait: msleep drops the object lock while it sleeps.
    while obj.pip > 0:
        yield msleep(obj, obj.lock)
    kassert(obj.ref_count == 0, lambda: "vm_object_terminate: object with references "
            f"({obj.lock.instance} has ref_count {obj.ref_count})")
    yield from dev_pager_dealloc(p, obj)
    p.objects_destroyed += 1
    yield p.obj_zone.free(obj)


def pageout_daemon(obj):
    """Pd: the pager I/O in flight on ``obj`` finishes and drops paging_in_progress."""
    yield work(PAGEOUT_NS)
    yield obj.lock.lock()
    obj.pip -= 1
    if obj.pip == 0:
        yield wakeup(obj)
    yield obj.lock.unlock()


# -- the pager layer (vm_pager.c, device_pager.c) ------------------------------------------


def lookup_unlocked(p, handle):
    """The sx-era lookup: a bare walk comparing handles; no lock, no OBJ_DEAD test."""
    for obj in p.pagers.objects:
        if obj.handle is handle:
            return obj
    return None


def lookup_referenced(p, handle):
    """The fixed lookup (dev_pager_mtx held): skip doomed objects, reference under their lock."""
    for obj in [o for o in p.pagers.objects if o.handle is handle]:
        yield obj.lock.lock()
        if obj.flags & OBJ_DEAD:
            yield obj.lock.unlock()  # its terminator owns it now
            continue
        obj.ref_count += 1
        yield obj.lock.unlock()
        return obj
    return None


def insert(p, obj):
    """TAILQ_INSERT_TAIL on the pager list (dev_pager_mtx held), checking B4."""
    for other in p.pagers.objects:
        kassert(other.handle is not obj.handle or other.flags & OBJ_DEAD,
                lambda: f"B4: {other.lock.instance} and {obj.lock.instance} share a handle "
                        "on the list")
    p.pagers.objects = p.pagers.objects + (obj,)


def remove(p, obj):
    """TAILQ_REMOVE from the pager list (dev_pager_mtx held)."""
    p.pagers.objects = tuple(o for o in p.pagers.objects if o is not obj)


def dev_pager_dealloc(p, obj):
    """Unlink a dying object: the object lock goes before dev_pager_mtx is taken.

    The 9.3 code takes the object lock again afterwards to free the fake
    pages; that second hold plays no part in either race and is left out.
    """
    yield obj.lock.unlock()
    if p.has_dtor:
        field, arg = ("un_pager.devp.dev", obj.devp_dev) if p.keeps_dev else ("handle", obj.handle)
        yield note(f"dev_pager_dealloc: the destructor gets {obj.lock.instance}'s {field}, "
                   f"{arg.label()}")
        cdev_pg_dtor(p, arg)
    yield p.list_mtx.lock()
    remove(p, obj)
    yield p.list_mtx.unlock()


def cdev_pg_dtor(p, arg):
    """old_dev_pager_dtor: ``dev_rel(arg)``, trusting ``arg`` to be a struct cdev.

    devmtx is held across the decrement in the kernel; here the whole
    release is one atomic step.
    """
    if arg.zone.type_name == "cdev":
        arg.si_refcount -= 1
        count = arg.si_refcount
        p.cdev_releases += 1
        what = ""
    else:
        # Type confusion: the decrement lands in whatever the object holds there.
        arg.word_at_si_refcount -= 1
        count = arg.word_at_si_refcount
        what = (f" (B1: the destructor was handed {arg.label()}, a vm_object whose handle "
                f"the loser of the race rewrote, not a struct cdev)")
    if p.invariants:
        kassert(count >= 0, lambda: f"dev_rel({arg.label()}) gave negative count{what}")


def dev_pager_alloc_sx(p, handle):
    """The 2007 allocator: dev_pager_sx around an unlocked lookup and the create."""
    yield work(VALIDATE_NS)  # d_mmap accepts every page of the range
    yield p.create_sx.xlock()
    obj = lookup_unlocked(p, handle)
    if obj is None:
        obj = yield from vm_object_allocate(p)
        yield p.list_mtx.lock()
        insert(p, obj)
        yield p.list_mtx.unlock()
    else:
        if obj.flags & OBJ_DEAD or obj.ref_count == 0:  # a peek for the narrative only
            yield note(f"lookup returns {obj.lock.instance}, already doomed: OBJ_DEAD not tested")
        yield from vm_object_reference(p, obj)
    yield p.create_sx.xunlock()
    return obj


def allocate_and_insert(p, handle):
    """Allocate outside dev_pager_mtx, then look again under it: insert ours if still
    nobody's there (winner), else keep theirs.  Returns ``(object, ours if we lost)``."""
    fresh = yield from vm_object_allocate(p)  # may sleep: the race window
    yield p.list_mtx.lock()
    obj = yield from lookup_referenced(p, handle)
    if obj is None:
        obj, fresh = fresh, None
        insert(p, obj)
    yield p.list_mtx.unlock()
    return obj, fresh


def dev_pager_alloc_mtx(p, handle, extra_reference):
    """The fixed allocator: dev_pager_mtx over lookup and insert, allocation outside it."""
    yield work(VALIDATE_NS)
    yield p.list_mtx.lock()
    obj = yield from lookup_referenced(p, handle)
    if obj is not None and extra_reference:
        # cdev_pager_lookup's own reference, on top of the lookup's.
        yield from vm_object_reference(p, obj)
    yield p.list_mtx.unlock()
    if obj is not None:
        return obj
    obj, fresh = yield from allocate_and_insert(p, handle)
    if fresh is not None:
        # Another allocator inserted first; ours was never published.
        p.objects_destroyed += 1
        yield p.obj_zone.free(fresh)
    return obj


# -- doomed_object --------------------------------------------------------------------------


def terminator(p, obj):
    """Pt: munmap/exit drops the device object's last reference."""
    yield from vm_object_deallocate(p, obj)


def allocator(p, variant):
    """Pa: mmap of the device, then a page fault on the new mapping."""
    if variant == "buggy":
        obj = yield from dev_pager_alloc_sx(p, p.dev)
    else:
        obj = yield from dev_pager_alloc_mtx(p, p.dev, variant == "extra-reference")
    p.mappings.append(obj)
    yield from vm_fault(obj)


def vm_fault(obj):
    """A fault on the mapping reads the object (its locking plays no part in either race)."""
    yield obj.load("flags")


def check_references(p):
    """A1 and A5, at quiescence: no dying object was referenced; no reference was leaked.

    A1 is judged only here so that, in a run where the doomed reference goes
    on to be used after the free, the use-after-free is what gets reported.
    A5: every reference an object still has belongs to a mapping that holds it.
    """
    for name in p.doomed_references:
        kassert(False, f"A1: a lookup handed out {name} after OBJ_DEAD was set and a reference "
                "was taken on it (no crash in this run only because the fault came first)")
    for obj in p.obj_zone.live_items():
        holders = sum(1 for o in p.mappings if o.same_memory(obj))
        kassert(obj.ref_count == holders,
                lambda: f"reference leak: {obj.lock.instance} has ref_count {obj.ref_count} "
                        f"but {holders} mapping(s) hold it, so it can never be terminated")


@scenario(
    variants={
        "buggy": "sx-era dev_pager_alloc: unlocked lookup hands out a doomed object",
        "fixed": "dev_pager_mtx over lookup+insert; lookup skips OBJ_DEAD under the object lock",
        "extra-reference": "fixed lookup, but the caller adds its own reference: a leak",
    },
    params={"allocators": 1, "pageout": False, "lockset": False},
    param_help={
        "allocators": "concurrent dev_pager_alloc callers (threads Pa1..PaN)",
        "pageout": "a pager I/O (thread Pd) holds paging_in_progress, so terminate sleeps "
                   "with the object lock dropped",
        "lockset": "check that the pager list is only touched under dev_pager_mtx (A4)",
    },
    description="dev_pager_alloc vs vm_object_terminate: a lookup returns a doomed object (2007)")
def doomed_object(m, variant, allocators, pageout, lockset):
    if allocators < 1:
        raise ValueError(f"allocators must be at least 1, got {allocators}")
    p = Pager(m, sx_era=variant == "buggy", lockset=lockset)
    obj = p.new_object(pip=1 if pageout else 0)
    m.spawn(terminator(p, obj), name="Pt")
    for i in range(allocators):
        m.spawn(allocator(p, variant), name="Pa" if allocators == 1 else f"Pa{i + 1}")
    if pageout:
        m.spawn(pageout_daemon(obj), name="Pd")
    m.on_quiescence(lambda: check_references(p))


# -- handle_race ----------------------------------------------------------------------------


def cdev_pager_allocate(p, handle):
    """9.x allocator: ctor, lookup, allocate unlocked, look again; the loser drops its object."""
    # old_dev_pager_ctor: d_mmap checks, then dev_ref (one atomic step here).
    handle.si_refcount += 1
    yield p.list_mtx.lock()
    obj = yield from lookup_referenced(p, handle)
    yield p.list_mtx.unlock()
    fresh = None
    if obj is None:
        obj, fresh = yield from allocate_and_insert(p, handle)
    if fresh is not None:
        yield note(f"lost the race: {fresh.lock.instance}'s handle becomes the object itself")
        fresh.handle = fresh
        yield p.list_mtx.lock()
        insert(p, fresh)
        yield p.list_mtx.unlock()
        yield from vm_object_deallocate(p, fresh)
    return obj


def mapper(p):
    """T1/T2: mmap of the shared device."""
    yield from cdev_pager_allocate(p, p.dev)


def check_cdev_references(p):
    """B3, at quiescence: each destroyed device object gave its cdev reference back."""
    kassert(p.cdev_releases == p.objects_destroyed,
            f"B3: cdev reference leak: {p.objects_destroyed} device object(s) destroyed but "
            f"only {p.cdev_releases} gave back their cdev reference; si_refcount stays at "
            f"{p.dev.si_refcount}, so the device can never be freed")


@scenario(
    variants={
        "buggy": "9.x dev_pager_dealloc passes object->handle (the loser's renamed handle) "
                 "to dev_rel",
        "fixed": "the object keeps its cdev in un_pager.devp.dev and the destructor uses it",
    },
    params={"mappers": 2, "invariants": True},
    param_help={
        "mappers": "threads mmapping the same device at once",
        "invariants": "kernel built with INVARIANTS: dev_rel asserts its count stays >= 0",
    },
    description="cdev_pager_allocate loser of the race: its vm_object reaches dev_rel (9.x)")
def handle_race(m, variant, mappers, invariants):
    if mappers < 1:
        raise ValueError(f"mappers must be at least 1, got {mappers}")
    p = Pager(m, has_dtor=True, keeps_dev=variant == "fixed", terminate_ns=0,
              narrate_teardown=False, invariants=invariants)
    for i in range(mappers):
        m.spawn(mapper(p), name=f"T{i + 1}")
    m.on_quiescence(lambda: check_cdev_references(p))
