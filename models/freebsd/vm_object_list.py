"""Walking the global VM object list while objects come and go (FreeBSD, rS282660).

Every VM object is linked on one global list, ``vm_object_list``, protected
by the sleep mutex ``vm_object_list_mtx`` (class "vm object_list").  Some
code walks the whole list: the ``vmtotal()`` statistics of ``vm_meter.c``,
later the ``vm.objects`` sysctl, swapoff.  Three things make that hard:

* Before rS282660 ``vm_object_collapse()`` holds the *front* object's lock
  when it calls ``vm_object_destroy()`` on the backing object, and
  ``vm_object_destroy()`` takes the list mutex to unlink it.  That fixes the
  order **vm object -> vm object_list**.  A walker that holds the list mutex
  and *blocks* on an object lock closes a cycle.  ``vmtotal()`` therefore only
  try-locks each object and skips the ones it cannot get; its comment admits
  the totals become approximate to avoid the lock-order reversal.
* A walker cannot let go of the list mutex halfway (to copy a record out to
  user space, which may fault and sleep): the object it points at may be
  unlinked and freed meanwhile, and its ``next`` pointer is then garbage.
* rS282660 (jhb, 2015, review D2423) removes both problems at once.  An
  object is put on the list once, when the type-stable ``NOFREE`` zone first
  constructs its memory, and never leaves it; a free object stays linked,
  marked dead with no references.  Destroying an object no longer touches
  the list, so the only order left is **vm object_list -> vm object**: a
  walker may block on an object lock, must skip dead objects (and recheck
  under the object lock, since an object can die while the walker waits),
  and may drop the list mutex at any point because its object can neither
  leave the list nor the zone.

Variants (threads: a walker, a collapser of one shadow chain front->backing,
and allocators that create and terminate an object of their own):

``blocking-walk``
    Pre-fix list discipline, walker blocks on each object lock while holding
    the list mutex.  Witness reports the reversal in every run (the two
    orders are taken by different threads; no deadlock needs to happen), and
    exploration finds the actual deadlock: collapser holds the front object
    and waits for the list mutex, walker holds the list mutex and waits for
    the front object.
``trylock-walk``
    The old ``vmtotal()`` workaround: try-lock and skip.  Nothing goes wrong,
    but objects are missed; the run reports ``objects_skipped``.
``unsafe-drop``
    Pre-fix list, walker drops the list mutex after each object to copy it
    out and resumes from ``obj.next``.  When the object was unlinked (and
    freed) meanwhile, the resumed walk reads a stale iterator: a
    use-after-free, or invariant E-inv4 when it was unlinked but not yet
    freed.
``nofree``
    rS282660's discipline.  No violation of any kind; invariants E-inv2
    (list membership only grows), E-inv3 (free objects on the list are dead
    with no references) and E-inv5 (a walker counts only objects found alive
    under their own lock) are checked, E-inv4 (an object is still linked when
    the walk resumes from it) in every variant that drops the list mutex.
    E-inv1 (no cycle in the order of the two lock classes) is witness's job
    in every variant.

How UMA ``NOFREE`` is modelled: the engine's zone stands for the zone's
slabs, which are never given back.  An item is constructed once (the zone's
init hook links it on the list, dead) and then cycles between UMA's free
cache and use without leaving the engine's allocation, which is exactly why
a walker may keep a pointer to it across a free.  The pre-fix variants free
through the engine, so a stale access is reported as a use-after-free.

Sources, in words: the ``vmtotal()`` try-lock comment in ``vm_meter.c``;
``vm_object_collapse()`` calling ``vm_object_destroy()`` with the front
object locked, and ``vm_object_destroy()`` unlinking under the list mutex
(``vm_object.c``, 9.x); the rS282660 commit message and D2423 review (objects
stay on the list, dead, in a NOFREE zone; pagers mark dead objects);
``vm_object_list_handler()`` dropping the list mutex mid-walk in later
``vm_object.c``.  Costs are assumptions of the model specification (list
walk 10-30 ns per object, copyout about a microsecond).
"""

from smpvm import RwLock, SleepMutex, Zone, kassert, may_sleep, refcount_release, scenario, work

#: Lock class names, as the kernel's mtx_init/rw_init name them.
LIST_LOCK = "vm object_list"
OBJECT_LOCK = "vm object"

#: Before rS282660: vm_object_collapse() holds the front object and
#: vm_object_destroy() takes the list mutex for the backing object.
PRE_FIX_ORDER = [[OBJECT_LOCK, LIST_LOCK]]
#: After rS282660: list walkers lock objects; nothing takes the list mutex
#: under an object lock any more.
NOFREE_ORDER = [[LIST_LOCK, OBJECT_LOCK]]
#: What witness enrolls for the scenario: only orders true in every variant.
#: The fix reversed the documented order, so no order is common; each run's
#: witness learns its variant's order from what the threads do, and the
#: blocking walk's reversal is found from that history.
LOCK_ORDER = []

#: Object types (only the distinction dead / alive matters here).
OBJT_DEFAULT = "default"
OBJT_DEAD = "dead"

#: Costs in ns [assumed, model specification (e)].
WALK_PER_OBJECT_NS = 20
COPYOUT_NS = 1000
COLLAPSE_NS = 500
OBJECT_USE_NS = 300
UMA_CACHE_NS = 50



class ObjectList:
    """The global list, its mutex, the object zone and (``nofree``) UMA's free cache.

    The list is singly linked through each object's ``next`` field, with
    ``on_list`` saying whether the object is linked; both are guarded by the
    list mutex (a lockset check flags any access without it).
    """

    def __init__(self, m, nofree: bool):
        self.m = m
        #: rS282660 discipline: objects stay on the list, frees go to ``free_cache``.
        self.nofree = nofree
        self.mtx = SleepMutex(m, LIST_LOCK)
        self.zone = Zone(m, "VM OBJECT",
                         {"type": OBJT_DEAD, "ref_count": 0, "resident": 0, "backing": None,
                          "next": None, "on_list": False, "lock": None, "name": ""},
                         type_name="vm_object", nofree=True,
                         guards={"next": self._list_guard, "on_list": self._list_guard})
        #: First and last linked objects.
        self.first = None
        self.last = None
        #: Every object ever linked, in link order (E-inv2 in ``nofree``).
        self.ever_linked: list = []
        #: UMA's cache of free, constructed objects (``nofree`` only), LIFO.
        self.free_cache: list = []
        self._names = 0

    def _list_guard(self, fields):
        return self.mtx

    def new_name(self, prefix: str) -> str:
        self._names += 1
        return f"{prefix}{self._names}"

    # -- list operations: the caller holds the list mutex ------------------------------

    def link_tail(self, obj) -> None:
        kassert(not obj.on_list, f"{obj.name} linked twice on vm_object_list")
        obj.on_list = True
        obj.next = None
        if self.last is None:
            self.first = obj
        else:
            self.last.next = obj
        self.last = obj
        self.ever_linked.append(obj)

    def unlink(self, obj) -> None:
        """Remove ``obj`` (pre-fix only); like TAILQ_REMOVE it leaves ``obj.next`` as it was."""
        prev, cur = None, self.first
        while cur is not None and not cur.same_memory(obj):
            prev, cur = cur, cur.next
        kassert(cur is not None, f"{obj.name} unlinked but not on vm_object_list")
        if prev is None:
            self.first = obj.next
        else:
            prev.next = obj.next
        if self.last is not None and self.last.same_memory(obj):
            self.last = prev
        obj.on_list = False

    # -- allocation and destruction ------------------------------------------------------

    def allocate(self, name: str):
        """``vm_object_allocate()``: an object with one reference, linked on the list."""
        if self.nofree:
            obj = yield from self._uma_alloc_constructed()
            # Publish the object in one step; a walker tells it from a free
            # one by its type, rechecked under the object lock.
            obj.ref_count = 1
            obj.resident = 1
            obj.name = name
            obj.type = OBJT_DEFAULT
            return obj
        obj = yield self.zone.alloc(type=OBJT_DEFAULT, ref_count=1, resident=1, name=name,
                                    lock=RwLock(self.m, OBJECT_LOCK, instance=name, dupok=True))
        yield self.mtx.lock()
        self.link_tail(obj)
        yield self.mtx.unlock()
        return obj

    def _uma_alloc_constructed(self):
        """UMA allocation from a NOFREE zone: a cached free item, or a new one built by zinit."""
        if self.free_cache:
            obj = self.free_cache.pop()
            yield work(UMA_CACHE_NS)
            return obj
        name = self.new_name("slot")
        obj = yield self.zone.alloc(type=OBJT_DEAD, ref_count=0, name=name,
                                    lock=RwLock(self.m, OBJECT_LOCK, instance=name, dupok=True))
        # zinit: linked once, dead and unreferenced (a stillborn object, E-inv3).
        yield self.mtx.lock()
        self.link_tail(obj)
        yield self.mtx.unlock()
        return obj

    def destroy(self, obj):
        """``vm_object_destroy()``: the caller may hold another object's lock (collapse)."""
        if self.nofree:
            kassert(obj.type == OBJT_DEAD and obj.ref_count == 0,
                    f"E-inv3: {obj.name} freed while type={obj.type}, ref_count={obj.ref_count}; "
                    f"objects left on the list must be dead and unreferenced")
            self.free_cache.append(obj)
            yield work(UMA_CACHE_NS)
            return
        yield self.mtx.lock()
        self.unlink(obj)
        yield self.mtx.unlock()
        yield self.zone.free(obj)

    # -- checks at the end of a run ---------------------------------------------------------

    def check_nofree_invariants(self) -> None:
        linked = []
        obj = self.first
        while obj is not None:
            linked.append(obj)
            obj = obj.next
        same = (len(linked) == len(self.ever_linked)
                and all(a.same_memory(b) for a, b in zip(linked, self.ever_linked)))
        kassert(same, "E-inv2: an object left vm_object_list (membership must only grow)")
        for obj in self.free_cache:
            kassert(obj.type == OBJT_DEAD and obj.ref_count == 0,
                    f"E-inv3: free object {obj.name} on the list is type={obj.type}, "
                    f"ref_count={obj.ref_count}")


# -- the walker -------------------------------------------------------------------------------


def walker(m, ol: ObjectList, variant: str):
    """A statistics walk over every object (vmtotal(), or the vm.objects sysctl)."""
    yield ol.mtx.lock()
    obj = ol.first
    while obj is not None:
        if variant == "nofree":
            yield from _visit_nofree(m, ol, obj)
        elif variant == "unsafe-drop":
            yield from _visit_dropping(m, ol, obj)
        else:
            yield from _visit_holding(m, obj, blocking=variant == "blocking-walk")
        if not obj.on_list:
            kassert(False, f"E-inv4: the walk resumes from {obj.name} ({obj.label()}), which "
                    f"was unlinked while the list mutex was dropped: a stale iterator")
        obj = obj.next
    yield ol.mtx.unlock()


def _visit_holding(m, obj, blocking: bool):
    """Pre-fix: the list mutex stays held; lock the object (blocking) or try and skip."""
    if blocking:
        yield obj.lock.wlock()  # list mutex -> object: the reverse of collapse's order
    else:
        ok = yield obj.lock.try_wlock()
        if not ok:
            m.count("objects_skipped")
            return
    _tally(m, obj)
    yield work(WALK_PER_OBJECT_NS)
    yield obj.lock.wunlock()


def _visit_dropping(m, ol, obj):
    """Pre-fix list, but the walker lets the list mutex go to copy the record out."""
    ok = yield obj.lock.try_wlock()
    if not ok:
        m.count("objects_skipped")
        return
    _tally(m, obj)
    yield work(WALK_PER_OBJECT_NS)
    yield obj.lock.wunlock()
    yield ol.mtx.unlock()
    yield may_sleep(COPYOUT_NS, "copyout of the object record")
    yield ol.mtx.lock()


def _visit_nofree(m, ol, obj):
    """rS282660: skip dead objects, block on the object lock, drop the list mutex safely."""
    if obj.type == OBJT_DEAD:
        m.count("dead_skipped")
        return
    yield obj.lock.rlock()  # blocking is legal: list mutex -> object is the only order
    if obj.type == OBJT_DEAD:  # it died while we waited for its lock
        m.count("died_while_waiting")
        yield obj.lock.runlock()
        return
    yield ol.mtx.unlock()
    if obj.ref_count <= 0:
        kassert(False, f"E-inv5: {obj.name} counted with no references")
    _tally(m, obj)
    yield work(WALK_PER_OBJECT_NS)
    yield obj.lock.runlock()
    yield may_sleep(COPYOUT_NS, "copyout of the object record")
    yield ol.mtx.lock()


def _tally(m, obj) -> None:
    m.count("objects_counted")
    m.count("resident_pages_counted", obj.resident)


# -- the collapser and the allocators -------------------------------------------------------------


def collapser(m, ol: ObjectList, front):
    """``vm_object_collapse(front)``: absorb the backing object, then destroy it."""
    yield front.lock.wlock()
    backing = front.backing
    yield backing.lock.wlock()  # front before backing (same class, DUPOK)
    yield work(COLLAPSE_NS)     # move the backing object's pages into the front
    front.resident += backing.resident
    backing.resident = 0
    front.backing = None
    refcount_release(backing)
    if ol.nofree:
        backing.type = OBJT_DEAD  # dead before it is freed (D2423)
    yield backing.lock.wunlock()
    yield from ol.destroy(backing)  # pre-fix: takes the list mutex with the front locked
    yield front.lock.wunlock()


def allocator(m, ol: ObjectList, name: str):
    """Create an object, use it briefly, then drop the last reference (terminate)."""
    obj = yield from ol.allocate(name)
    yield work(OBJECT_USE_NS)
    yield obj.lock.wlock()
    if refcount_release(obj):
        obj.resident = 0
        if ol.nofree:
            obj.type = OBJT_DEAD
        yield obj.lock.wunlock()
        yield from ol.destroy(obj)
    else:
        yield obj.lock.wunlock()


# -- the scenario ---------------------------------------------------------------------------------


def _setup_object(ol: ObjectList, name: str, **fields):
    """An object present before the run: constructed, linked and in use."""
    obj = ol.zone.new(type=OBJT_DEFAULT, ref_count=1, resident=1, name=name,
                      lock=RwLock(ol.m, OBJECT_LOCK, instance=name, dupok=True), **fields)
    ol.link_tail(obj)
    return obj


@scenario(
    variants={
        "blocking-walk": "pre-fix list; walker blocks on object locks under the list mutex "
                         "(reversal, deadlock)",
        "trylock-walk": "pre-fix list; walker try-locks and skips (vmtotal): safe but inexact",
        "unsafe-drop": "pre-fix list; walker drops the list mutex mid-walk (stale iterator, "
                       "use-after-free)",
        "nofree": "rS282660: objects never leave the list, dead while free; walker blocks "
                  "legally and drops the mutex safely",
    },
    params={"extra_objects": 1, "allocators": 1},
    param_help={"extra_objects": "objects on the list besides the collapsing front/backing pair",
                "allocators": "threads that create and terminate an object of their own"},
    description="vm_object_list walk vs vm_object_collapse/destroy: the LOR and the NOFREE fix "
                "(rS282660)",
)
def walk_vs_collapse(m, variant, extra_objects, allocators):
    if extra_objects < 0 or allocators < 0:
        raise ValueError("extra_objects and allocators must be >= 0")
    ol = ObjectList(m, nofree=variant == "nofree")
    backing = _setup_object(ol, "backing")
    front = _setup_object(ol, "front", backing=backing)
    for i in range(extra_objects):
        _setup_object(ol, f"other{i}")
    m.spawn(walker(m, ol, variant), name="walker")
    m.spawn(collapser(m, ol, front), name="collapser")
    for i in range(allocators):
        m.spawn(allocator(m, ol, f"new{i}"), name=f"alloc{i}")
    if ol.nofree:
        m.on_quiescence(ol.check_nofree_invariants)
    m.on_quiescence(lambda: m.metric("objects_on_list", _count_linked(ol)))


def _count_linked(ol: ObjectList) -> int:
    n, obj = 0, ol.first
    while obj is not None:
        n, obj = n + 1, obj.next
    return n


# What each variant must show, checked by ``pytest --smpvm`` (smpvm.testing): the bugs
# reproduce in their variants and the fixes show none.
EXPECT = {
    "walk_vs_collapse": {"blocking-walk": {"finds": "deadlock", "runs": 300},
                         "trylock-walk": {"clean": 300},
                         "unsafe-drop": {"finds": "use-after-free", "runs": 300},
                         "nofree": {"clean": 300}},
}
