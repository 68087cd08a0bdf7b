"""Page hold and wire counts: one global page-queue mutex vs hashed page locks.

Until 2010 FreeBSD protected every per-page field that changes at run time
(hold and wire counts, queue membership) with one global mutex,
``vm_page_queue_mtx``.  Commit e95ff34dacc3 (kmacy, 2010, based on a patch
by Jeff Roberson) introduced an array of page locks and moved ``hold_count``
out from under the queue mutex; the wire count and the queue field followed
in later commits.  The FreeBSD 9.3 ``sys/vm/vm_page.h`` header shows the
result: ``pa_lock[]``, ``PA_LOCKPTR(pa)`` picking
``pa_lock[(pa >> PDRSHIFT) % PA_LOCK_COUNT]`` (``PDRSHIFT`` 21, so all 512
small pages of a 2 MB frame share one lock), and per-field annotations:
hold and wire counts under the page lock (P), the queue field under the
page lock and the queue lock together (P,Q).  ``PA_LOCK_COUNT`` is 256 on
amd64 SMP (its ``vmparam.h``); the machine-independent default in
``vm_param.h`` is 32 (SMP) or 1 (UP).

A page's hold count pins it for code that found it through a page table
rather than through its VM object.  ``pmap_extract_and_hold()`` reads the
PTE under the pmap lock and bumps the hold count.  The documented order is
page lock before pmap lock, so it cannot simply block on the page lock: it
calls ``vm_page_pa_tryrelock()``, which tries the page lock and, when that
fails, drops the pmap lock, blocks on the page lock, retakes the pmap lock
and returns EAGAIN, meaning "the mapping may have changed while the pmap
was unlocked: read the PTE again" (the amd64/mips/booke form; the older
sun4v form held the page-queue mutex across the whole walk instead).

The workload: ``cpus`` workers each run ``ops_per_thread`` operations on a
hot set of ``hot_pages`` pages, mixed as
* hold (fraction ``hold_frac``): ``pmap_extract_and_hold`` of the page's
  mapping, use the page for ``use_ns`` outside every lock, ``vm_page_unhold``;
* wire (``wire_frac``): ``vm_page_wire`` through the page's VM object (the
  page leaves its queue), keep it wired for ``use_ns``, ``vm_page_unwire``;
* queue move (the rest): a fault's ``vm_page_activate``/``deactivate``;
and ``unmappers`` threads recycle pages: remove every mapping, free the page
(diverted to the hold queue while it is held), then give it a fresh frame
and map it again.  A page's contents are a ``frame`` item and a PTE names
the frame it maps, so reading a frame after its page was freed is a
use-after-free.  Hot page ``i`` sits at physical address 1 GB +
``i * hot_stride_bytes``, is mapped in pmap ``i % pmaps`` and belongs to
object ``i % objects``.

Variants:
* ``queue-lock``: everything under ``vm_page_queue_mtx`` (pre-2010). Correct;
  under the timed strategy, the global mutex saturates as CPUs are added.
* ``hashed``: the 9.x discipline with ``pa_lock`` stripes, trylock and
  EAGAIN retry (always re-reading the PTE; the 9.x shortcut that skips the
  re-read when the pmap's generation count did not move is not modelled).
  Correct; scales until hot pages collide on a stripe (a 2 MB-aligned hot
  set with ``hot_stride_bytes=4096`` lands on one stripe).
* ``partial-conversion``: halfway through the conversion: the hold path
  counts under the page lock but ``vm_page_unhold`` still decrements under
  the queue mutex, so the two read-modify-writes of ``hold_count`` can
  interleave and lose an update.  With ``lockset`` on, the lockset check of
  the (P) annotation names the unconverted write at once; with it off, the
  lost update shows up as a held page being freed (C2) or as a hold count
  that never returns to zero.
* ``ignore-eagain``: the caller of ``vm_page_pa_tryrelock`` goes on with the
  PTE it read before the pmap lock was dropped.  If an unmapper removed the
  mapping and freed the page in that window, the caller holds and reads a
  freed page: use-after-free (C3).

Invariants: the lockset of the page fields (C1), "a held or wired page is
never freed" (C2, checked against the model's own count of real holders),
queue counters agree with the pages' queue fields (C4), and at quiescence
every hold and wire count is back to zero with no page stranded on the hold
queue.  Under the timed strategy the run reports ``ops_per_ms`` and the
mean and p99 latency of an operation; lock statistics come with every run.

The defaults are a race-sized run (two workers and an unmapper on one hot
page, two operations each).  A throughput study raises ``cpus``,
``ops_per_thread``, ``hot_pages``, ``pmaps`` and ``objects``, sets
``unmappers=0``, and for long runs turns ``lockset`` off (the check costs
about a quarter of the run time; the race variants are where it matters).
Costs are assumed orders of magnitude (PTE walk ~100 ns, queue edit ~50 ns,
using a held page ~2 us, fault work ~0.5 us); the lock costs are the
engine's cost model.

Sources, in words: the FreeBSD 9.3 ``vm_page.h`` (``pa_lock``,
``PA_LOCKPTR``, the (O)/(P)/(Q) field annotations); amd64 ``vmparam.h`` and
the machine-independent ``vm_param.h`` (``PA_LOCK_COUNT``); the amd64, mips
and booke ``pmap_extract_and_hold`` with ``vm_page_pa_tryrelock``, and the
older sun4v form under the page-queue mutex; kmacy's commit e95ff34dacc3
message on moving ``hold_count`` to the page lock (in the project's seed of
FreeBSD VM commit messages).  No kernel code is reproduced.
"""

from array import array

import numpy as np

from smpvm import LockPool, SleepMutex, Zone, kassert, note, scenario, steady_state, work

# The documented orders (9.x ``vm_page.h`` and the pmap code): vm object
# before page lock before page-queue lock; page lock before pmap (pmap to
# page only by trylock, hence ``vm_page_pa_tryrelock``).  Before 2010 the old
# ``pmap_extract_and_hold`` took the page-queue mutex, then the pmap lock.
LOCK_ORDER = [
    ["vm object", "pa_lock", "vm page queue"],
    ["pa_lock", "pmap"],
    ["vm page queue", "pmap"],
]

# Page queues a page can be on (the ``queue`` field).
PQ_NONE, PQ_ACTIVE, PQ_INACTIVE, PQ_HOLD, PQ_FREE = 0, 1, 2, 3, 4
QUEUE_FIELDS = ("none", "active", "inactive", "hold", "free")

# Operation kinds a worker draws.
HOLD, WIRE, MOVE = 0, 1, 2

PAGE_SIZE = 4096
#: Physical address of the first hot page: 2 MB aligned, so the stripe a
#: page falls on is easy to reason about.
HOT_BASE = 1 << 30


class Pmap:
    """An address space: its lock and its page table (va index -> frame or None)."""

    def __init__(self, m, index, nva):
        self.lock = SleepMutex(m, "pmap", instance=index)
        #: PTE per virtual page: the frame (physical contents) it maps, or None.
        self.ptes = [None] * nva


class VM:
    """The run's kernel state and the variant's locking rules (plain data)."""

    def __init__(self, m, variant, p):
        self.m = m
        self.variant = variant
        self.p = p
        self.queue_mtx = SleepMutex(m, "vm page queue")
        #: Wire count and queue field moved to the page lock (9.x), or still (Q) only.
        self.wire_queue_page_locked = variant in ("hashed", "ignore-eagain")
        self.pool = None
        if variant != "queue-lock":
            self.pool = LockPool(m, "pa_lock", p["pa_lock_count"], p["pdrshift"])
        self.objects = [SleepMutex(m, "vm object", instance=j)
                        for j in range(min(p["objects"], p["hot_pages"]))]
        self.pmaps = [Pmap(m, j, p["hot_pages"]) for j in range(min(p["pmaps"], p["hot_pages"]))]
        self.frames = Zone(m, "page frames", {"pa": 0, "data": 0}, type_name="frame")
        #: Pages on each queue (``vm_pagequeues[].lcnt``), under the queue mutex.
        self.queue_len = [0] * len(QUEUE_FIELDS)
        self.page_zone = Zone(m, "vm_page", {"pa": 0, "hold_count": 0, "wire_count": 0,
                                             "queue": PQ_NONE, "object": -1, "frame": None},
                              type_name="vm_page", nofree=True,
                              guards=self._page_guards() if p["lockset"] else None)
        self.pages = []
        for i in range(p["hot_pages"]):
            pa = HOT_BASE + i * p["hot_stride_bytes"]
            page = self.page_zone.new(pa=pa, object=i % len(self.objects))
            self.pages.append(page)
            self._map_new_frame_at_setup(i, page)
        #: PA_LOCKPTR of each hot page, worked out once (a page's address never changes).
        self.stripes = [self.pool.lock_for(pg.pa) if self.pool is not None else None
                        for pg in self.pages]
        #: Model bookkeeping, not kernel state: real holders per page (for C2).
        self.holders = [0] * p["hot_pages"]
        #: Completed operations and their latencies (ns), 8 bytes an operation as lock
        #: statistics keep theirs (a list of ints took about 36).
        self.done = 0
        self.latencies = array("q")
        #: Per worker: (start times, end times) of its operations, for the steady state.
        self.op_log = []

    # -- which lock guards what, per variant ---------------------------------------------

    def page_lock(self, i):
        """The lock that makes page ``i``'s (P) fields ours: its stripe, or the global mutex."""
        if self.pool is None:
            return self.queue_mtx
        return self.stripes[i]

    def unhold_lock(self, i):
        """``vm_page_unhold``'s lock: still the queue mutex halfway through the conversion."""
        if self.variant == "partial-conversion":
            return self.queue_mtx
        return self.page_lock(i)

    def _page_guards(self):
        q = self.queue_mtx
        if self.variant == "queue-lock":
            return {"hold_count": lambda f: q, "wire_count": lambda f: q, "queue": lambda f: q}
        pool = self.pool
        guards = {"hold_count": lambda f: pool.lock_for(f["pa"])}
        if self.wire_queue_page_locked:
            guards["wire_count"] = lambda f: pool.lock_for(f["pa"])
            guards["queue"] = lambda f: (pool.lock_for(f["pa"]), q)
        else:
            guards["wire_count"] = lambda f: q
            guards["queue"] = lambda f: q
        return guards

    # -- small helpers ------------------------------------------------------------------------

    def pmap_of(self, i) -> Pmap:
        return self.pmaps[i % len(self.pmaps)]

    def object_of(self, page):
        return self.objects[page.object]

    def set_queue(self, page, new):
        """Move ``page`` to queue ``new``, keeping the queue counters (C4) in step."""
        self.queue_len[page.queue] -= 1
        self.queue_len[new] += 1
        page.queue = new

    def _map_new_frame_at_setup(self, i, page):
        frame = self.frames.new(pa=page.pa)
        page.frame = frame
        page.queue = PQ_ACTIVE
        self.queue_len[PQ_ACTIVE] += 1
        self.pmap_of(i).ptes[i] = frame


# -- pmap_extract_and_hold and vm_page_unhold -------------------------------------------------


def extract_and_hold_queue_lock(vm, i):
    """Old form: page-queue mutex, then the pmap lock; hold under the queue mutex."""
    pmap = vm.pmap_of(i)
    yield vm.queue_mtx.lock()
    yield pmap.lock.lock()
    frame = pmap.ptes[i]
    page = None
    if frame is not None:
        page = vm.pages[i]
        yield from bump_hold(vm, i, page, vm.p["pte_ns"])
    else:
        yield work(vm.p["pte_ns"])  # walked to an empty PTE
    yield vm.queue_mtx.unlock()
    yield pmap.lock.unlock()
    return (page, frame) if page is not None else None


def extract_and_hold_tryrelock(vm, i):
    """9.x form: pmap lock, read the PTE, ``vm_page_pa_tryrelock`` with EAGAIN retry."""
    pmap = vm.pmap_of(i)
    locked = None  # the page lock we hold, if any (``*locked`` in the kernel)
    result = None
    yield pmap.lock.lock()
    while True:
        frame = pmap.ptes[i]
        if frame is None:
            yield work(vm.p["pte_ns"])  # walked to an empty PTE
            break
        page = vm.pages[i]
        lk = vm.stripes[i]  # PA_LOCKPTR(pa of the PTE)
        if lk is not locked:
            if locked is not None:
                yield locked.unlock()
            locked = lk
            got = yield lk.trylock()
            if not got:
                # Page lock comes before pmap: drop the pmap, block, retake it.
                yield pmap.lock.unlock()
                yield lk.lock()
                yield pmap.lock.lock()
                vm.m.count("tryrelock_eagain")
                if vm.variant != "ignore-eagain":
                    yield note("tryrelock EAGAIN: read the PTE again")
                    continue  # the mapping may have changed while the pmap was unlocked
                yield note("tryrelock EAGAIN ignored: keep the PTE read before")
        yield from bump_hold(vm, i, page, vm.p["pte_ns"])
        result = (page, frame)
        break
    if locked is not None:
        yield locked.unlock()
    yield pmap.lock.unlock()
    return result


def bump_hold(vm, i, page, walk_ns):
    """``hold_count++`` as a load, then a store one step later, so that an increment made
    under the wrong lock can lose an update.  The PTE walk's time is charged in between:
    both happen under the pmap lock, and one step instead of two keeps timed studies fast."""
    v = page.hold_count
    yield work(walk_ns)
    page.hold_count = v + 1
    vm.holders[i] += 1


def unhold(vm, i, page):
    """``vm_page_unhold``: drop the hold (load, then a separate store); the last one frees a
    page parked on the hold queue."""
    lk = vm.unhold_lock(i)
    yield lk.lock()
    v = page.hold_count
    kassert(v > 0, lambda: f"vm_page#{i}: hold_count underflow (it reads {v} with a holder "
                    f"releasing): an update was lost")
    yield page.store("hold_count", v - 1)
    vm.holders[i] -= 1
    if v == 1 and page.queue == PQ_HOLD:
        yield from vm_page_free(vm, i, page, lk is vm.queue_mtx)
    yield lk.unlock()


def hold_and_use(vm, i):
    """A pinner: hold the page a mapping names, use its contents outside every lock, unhold."""
    if vm.pool is None:
        got = yield from extract_and_hold_queue_lock(vm, i)
    else:
        got = yield from extract_and_hold_tryrelock(vm, i)
    if got is None:
        vm.m.count("hold_found_no_mapping")
        return
    page, frame = got
    _ = frame.data  # the copy: the contents must still be the ones the PTE named
    yield work(vm.p["use_ns"])
    yield from unhold(vm, i, page)


# -- wiring and queue moves (through the VM object) -------------------------------------------


def wire_and_unwire(vm, i):
    """``vm_page_wire`` via the object (the page leaves its queue), use, ``vm_page_unwire``."""
    page = vm.pages[i]
    obj = vm.object_of(page)
    yield obj.lock()
    lk = page_or_queue_lock(vm, i)
    yield lk.lock()
    wired = page.frame is not None and page.queue in (PQ_ACTIVE, PQ_INACTIVE, PQ_NONE)
    if wired:
        yield from change_wiring(vm, page, +1, lk)
    yield lk.unlock()
    yield obj.unlock()
    if not wired:
        return
    yield work(vm.p["use_ns"])
    yield lk.lock()
    yield from change_wiring(vm, page, -1, lk)
    yield lk.unlock()


def page_or_queue_lock(vm, i):
    """The lock the wire/queue paths take first: the stripe (9.x) or the queue mutex."""
    if vm.wire_queue_page_locked:
        return vm.page_lock(i)
    return vm.queue_mtx


def change_wiring(vm, page, delta, held):
    """Adjust the wire count; the first wiring dequeues, the last unwiring requeues."""
    w = page.wire_count + delta
    kassert(w >= 0, lambda: f"{page.label()}: wire_count underflow")
    leaves_or_joins = (delta > 0 and w == 1) or (delta < 0 and w == 0)
    if leaves_or_joins:
        if held is not vm.queue_mtx:
            yield vm.queue_mtx.lock()
        vm.set_queue(page, PQ_NONE if delta > 0 else PQ_ACTIVE)
        yield work(vm.p["queue_ns"])
        if held is not vm.queue_mtx:
            yield vm.queue_mtx.unlock()
    page.wire_count = w


def queue_move(vm, i):
    """A fault activates or deactivates the page: object lock, page lock, queue lock."""
    page = vm.pages[i]
    obj = vm.object_of(page)
    yield work(vm.p["fault_ns"])
    yield obj.lock()
    lk = page_or_queue_lock(vm, i)
    yield lk.lock()
    if lk is not vm.queue_mtx:
        yield vm.queue_mtx.lock()
    q = page.queue
    if q in (PQ_ACTIVE, PQ_INACTIVE):
        vm.set_queue(page, PQ_INACTIVE if q == PQ_ACTIVE else PQ_ACTIVE)
        yield work(vm.p["queue_ns"])
    if lk is not vm.queue_mtx:
        yield vm.queue_mtx.unlock()
    yield lk.unlock()
    yield obj.unlock()


# -- the unmapper: pmap_remove_all + vm_page_free, then a new frame ---------------------------


def recycle(vm, i):
    """Unmap and free the page (unless wired), then give it a fresh frame and map it again."""
    page = vm.pages[i]
    obj = vm.object_of(page)
    pmap = vm.pmap_of(i)
    yield obj.lock()
    lk = vm.page_lock(i)
    yield lk.lock()
    # Halfway through the conversion the queue field is still (Q) only: hold both.
    whole = lk is not vm.queue_mtx and not vm.wire_queue_page_locked
    if whole:
        yield vm.queue_mtx.lock()
    qheld = lk is vm.queue_mtx or whole
    if page.frame is not None and page.queue != PQ_HOLD and page.wire_count == 0:
        yield note(f"pmap_remove_all + vm_page_free of vm_page#{i}")
        yield pmap.lock.lock()  # page lock -> pmap
        yield work(vm.p["pte_ns"])
        pmap.ptes[i] = None
        yield pmap.lock.unlock()
        yield from vm_page_free(vm, i, page, qheld)
    if page.queue == PQ_FREE:
        yield from map_fresh_frame(vm, i, page, pmap, qheld)
    if whole:
        yield vm.queue_mtx.unlock()
    yield lk.unlock()
    yield obj.unlock()


def vm_page_free(vm, i, page, qheld):
    """Free a page; a held one is parked on the hold queue for its last unhold to free."""
    if not qheld:
        yield vm.queue_mtx.lock()
    if page.hold_count > 0:
        vm.set_queue(page, PQ_HOLD)
    else:
        yield from release_frame(vm, i, page)
    if not qheld:
        yield vm.queue_mtx.unlock()


def release_frame(vm, i, page):
    """Page onto the free queue, contents gone; C2: nobody may still hold or wire it."""
    if vm.holders[i] or page.wire_count:
        kassert(False, f"C2: vm_page#{i} freed while {vm.holders[i]} holder(s) still use it "
                f"and hold_count reads {page.hold_count}: an update was lost")
    frame = page.frame
    page.frame = None
    vm.set_queue(page, PQ_FREE)
    yield vm.frames.free(frame)


def map_fresh_frame(vm, i, page, pmap, qheld):
    """``vm_page_alloc`` + ``pmap_enter``: the page gets new contents and its mapping back."""
    frame = yield vm.frames.alloc(pa=page.pa, wait=False)
    if not qheld:
        yield vm.queue_mtx.lock()
    page.frame = frame
    vm.set_queue(page, PQ_ACTIVE)
    if not qheld:
        yield vm.queue_mtx.unlock()
    yield pmap.lock.lock()
    pmap.ptes[i] = frame
    yield work(vm.p["pte_ns"])
    yield pmap.lock.unlock()


# -- threads ----------------------------------------------------------------------------------


def worker(vm, plan):
    """Run a precomputed list of (operation kind, page index)."""
    m = vm.m
    ops = (hold_and_use, wire_and_unwire, queue_move)  # indexed by HOLD, WIRE, MOVE
    lat = vm.latencies
    starts, ends = array("q"), array("q")
    vm.op_log.append((starts, ends))
    for kind, i in plan:
        start = m.now
        yield from ops[kind](vm, i)
        vm.done += 1
        lat.append(m.now - start)
        starts.append(start)
        ends.append(m.now)


def unmapper(vm, pages):
    for i in pages:
        yield work(vm.p["fault_ns"])
        yield from recycle(vm, i)


def draw_plans(m, p, n_workers):
    """Each worker's operations, drawn up front from the run's seeded generator: an
    iterator of (operation kind, page index) over two compact arrays (9 bytes an
    operation, where a list of pairs took about a hundred)."""
    n = p["ops_per_thread"]
    plans = []
    for _ in range(n_workers):
        u = m.rng.random(n)
        # HOLD below hold_frac, WIRE up to hold_frac + wire_frac, MOVE above.
        kinds = (u >= p["hold_frac"]).astype(np.int8) + (u >= p["hold_frac"] + p["wire_frac"])
        pages = m.rng.integers(0, p["hot_pages"], size=n, dtype=np.int64)
        plans.append(zip(array("b", kinds.tobytes()), array("q", pages.tobytes())))
    return plans


# -- checks ---------------------------------------------------------------------------------


def check_quiescent(vm):
    """Everything released: counts back to zero, nothing stranded, counters consistent."""
    counts = [0] * len(QUEUE_FIELDS)
    for i, page in enumerate(vm.pages):
        counts[page.queue] += 1
        kassert(page.hold_count == 0, f"vm_page#{i}: hold_count is {page.hold_count} with no "
                f"holder left (an update was lost; the page can never be freed)")
        kassert(page.wire_count == 0, f"vm_page#{i}: wire_count is {page.wire_count} at the end")
        kassert(page.queue != PQ_HOLD, f"vm_page#{i}: stranded on the hold queue, never freed")
    for q, name in enumerate(QUEUE_FIELDS):
        kassert(vm.queue_len[q] == counts[q], f"C4: the {name} queue counts {vm.queue_len[q]} "
                f"page(s) but {counts[q]} say they are on it")


def report_metrics(vm):
    """Rates and latencies in the steady state: after the warm-up, before the first worker ends.

    Over the whole run, the drain (workers finishing one by one, the last ones
    alone) would count as lost throughput; ``run_*`` keep those figures too.
    """
    m = vm.m
    m.metric("ops", vm.done)
    if m.now > 0:
        m.metric("run_ops_per_ms", vm.done * 1e6 / m.now)
    if vm.latencies:
        lat = np.asarray(vm.latencies)
        m.metric("run_op_latency_mean_ns", float(lat.mean()))
    # An operation is "asked for" when it starts and "done" when it ends: the window's
    # waits are then operation latencies, and its releases completed operations.
    starts = [s for s, _ in vm.op_log]
    ends = [e for _, e in vm.op_log]
    w = steady_state(starts, ends, ends)
    if w is not None:
        m.metric("ops_per_ms", w.throughput_per_ns * 1e6)
        m.metric("op_latency_mean_ns", w.wait_mean_ns)
        m.metric("op_latency_p99_ns", w.wait_p99_ns)
        m.metric("window.start_ns", w.start_ns)
        m.metric("window.end_ns", w.end_ns)


# -- the scenario -----------------------------------------------------------------------------


PARAMS = {
    "cpus": 2, "unmappers": 1, "ops_per_thread": 2,
    "hot_pages": 1, "hot_stride_bytes": 2 << 20,
    "pa_lock_count": 256, "pdrshift": 21, "objects": 16, "pmaps": 1,
    "hold_frac": 0.6, "wire_frac": 0.2,
    "pte_ns": 100, "queue_ns": 50, "use_ns": 2000, "fault_ns": 500,
    "lockset": True,
}

PARAM_HELP = {
    "cpus": "worker threads (one CPU each) running the hold/wire/queue-move mix",
    "unmappers": "extra threads that unmap, free and re-map hot pages",
    "ops_per_thread": "operations per worker (and recycles per unmapper)",
    "hot_pages": "pages the workers pick from, uniformly",
    "hot_stride_bytes": "physical distance between hot pages (4096: a 2 MB-aligned run "
                        "that shares one stripe; 2 MB: one stripe per page)",
    "pa_lock_count": "page-lock stripes (PA_LOCK_COUNT: 256 amd64 SMP, 32 MI SMP, 1 UP)",
    "pdrshift": "address bits below the stripe index (PDRSHIFT: 21 = 2 MB)",
    "objects": "VM objects the hot pages belong to (round-robin)",
    "pmaps": "address spaces the hot pages are mapped in (round-robin)",
    "hold_frac": "share of worker operations that hold a page through its mapping",
    "wire_frac": "share that wire and unwire a page (the rest move it between queues)",
    "pte_ns": "PTE walk under the pmap lock",
    "queue_ns": "a page-queue edit under the queue lock",
    "use_ns": "using a held or wired page, outside every lock",
    "fault_ns": "fault work before a queue move (and between recycles)",
    "lockset": "check the vm_page.h field annotations (lockset) on every access",
}


def check_params(p):
    for k in ("cpus", "ops_per_thread", "hot_pages", "pa_lock_count", "objects", "pmaps"):
        if p[k] < 1:
            raise ValueError(f"{k} must be at least 1, got {p[k]}")
    if p["unmappers"] < 0:
        raise ValueError(f"unmappers must be 0 or more, got {p['unmappers']}")
    if p["hot_stride_bytes"] < PAGE_SIZE or p["hot_stride_bytes"] % PAGE_SIZE:
        raise ValueError(f"hot_stride_bytes must be a positive multiple of {PAGE_SIZE}, "
                         f"got {p['hot_stride_bytes']}")
    if not 0 <= p["pdrshift"] <= 40:
        raise ValueError(f"pdrshift must be in 0..40, got {p['pdrshift']}")
    if p["hold_frac"] < 0 or p["wire_frac"] < 0 or p["hold_frac"] + p["wire_frac"] > 1:
        raise ValueError("hold_frac and wire_frac must be >= 0 and sum to at most 1 "
                         f"(got {p['hold_frac']} and {p['wire_frac']})")
    for k in ("pte_ns", "queue_ns", "use_ns", "fault_ns"):
        if p[k] < 0:
            raise ValueError(f"{k} must be >= 0, got {p[k]}")


@scenario(
    variants={
        "queue-lock": "pre-2010: one global page-queue mutex guards hold/wire counts and queues",
        "hashed": "9.x pa_lock stripes; pmap_extract_and_hold retries on tryrelock EAGAIN",
        "partial-conversion": "hold counts under the page lock, unhold still under the queue "
                              "mutex: lost update",
        "ignore-eagain": "caller keeps the PTE read before tryrelock dropped the pmap lock: "
                         "holds a freed page",
    },
    params=PARAMS, param_help=PARAM_HELP, max_steps=50_000_000,
    description="page hold/wire/queue moves under the page-queue mutex vs hashed pa_lock[] "
                "(model c)")
def hold_wire(m, variant, **p):
    """Page hold/wire counts: global page-queue mutex vs hashed page locks (model c)."""
    check_params(p)
    vm = VM(m, variant, p)
    for plan in draw_plans(m, p, p["cpus"]):
        m.spawn(worker(vm, plan), name="worker")
    for _ in range(p["unmappers"]):
        pages = m.rng.integers(0, p["hot_pages"], size=p["ops_per_thread"]).tolist()
        m.spawn(unmapper(vm, pages), name="unmapper")
    m.on_quiescence(lambda: check_quiescent(vm))
    m.on_quiescence(lambda: report_metrics(vm))


# What each variant must show, checked by ``pytest --smpvm`` (smpvm.testing): the bugs
# reproduce in their variants and the fixes show none.
EXPECT = {
    "hold_wire": {"queue-lock": {"clean": 20},
                  "hashed": {"clean": 20},
                  "partial-conversion": {"finds": "assertion", "runs": 300},
                  "ignore-eagain": {"finds": "use-after-free", "runs": 300}},
}
