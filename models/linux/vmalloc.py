"""Linux 2.4 vmalloc: virtual areas, their page tables, and the "page already exists" question.

``vmalloc(size)`` hands out memory that is contiguous in kernel virtual
addresses only.  In 2.4 it works in three phases.  ``get_vm_area`` takes a
``struct vm_struct`` from the slab, then, under ``vmlist_lock`` held for
writing, walks the address-sorted ``vmlist`` for the first gap that fits the
request plus one unmapped guard page, and links the area there.
``vmalloc_area_pages`` then fills the area's page-table entries one page at
a time under ``init_mm.page_table_lock``, dropping that spinlock around each
``alloc_page`` because the allocation may sleep in reclaim.  No
``vmlist_lock`` is held while the PTEs are filled.  ``vfree`` takes
``vmlist_lock`` for writing, unlinks the area and, still holding it, clears
every PTE of the area (guard page included) and gives each page back to the
buddy allocator, flushes the TLBs of all CPUs, and only then unlocks and
frees the ``vm_struct``.  ``vread`` (``/dev/kmem``, ``/proc/kcore``) walks
the list under the read side of the same lock.

The 2002 comments patch for 2.4.19-pre7 asks, next to the check that the
PTE about to be filled is still empty, how that PTE could ever be set and
whether it would not take a second allocation overlapping the first.  This
file answers it by search.  The range a PTE belongs to is handed out by
``get_vm_area`` under the write lock, and it can only be handed out again
once ``vfree`` has unlinked it, which ``vfree`` does under the same write
lock that it keeps until every PTE of the range is clear.  The patch's own
comment in ``vfree``, on why the lock is kept while the PTEs are freed, makes
exactly that argument.

Scenarios and variants:

* ``vmalloc_vfree`` -- one ``vfree`` of a one-page area A (CPU0) against one
  two-page ``vmalloc`` (CPU1) that lands on A's range whenever A is unlinked
  first.  The new owner then uses its buffer the way a module loader does:
  copy the image in (first pass), apply relocations (second pass).

  - ``stock``: 2.4.19 as written.  No violation in any schedule; the
    exhaustive search (``--strategy dfs``) is the evidence that the check
    for an existing PTE cannot fire for correct callers.
  - ``early-unlock``: what-if: ``vfree`` drops ``vmlist_lock`` right after
    unlinking the area and tears the PTEs down afterwards.  The reused range
    meets A's still-mapped page: "page already exists" (invariant Gv3,
    raised as an assertion rather than the kernel's ``printk``).  In the
    schedules where A's page is gone just in time, A's teardown goes on to
    clear the slot that was A's guard page and is now the new owner's
    second page, and returns that page to the buddy allocator while the
    owner's TLB still maps it: a use-after-free of a page (or, after the TLB
    flush, an oops on the now-empty PTE).
  - ``partial-failure``: ``alloc_page`` fails for the new area's second page;
    ``__vmalloc`` calls ``vfree`` on the half-filled area.  The teardown
    skips empty slots; no violation.

* ``vread_starvation`` -- readers copying through ``vread`` in page-sized
  chunks (as ``read_kmem`` calls it) against writers doing vmalloc/vfree.
  2.4's ``rwlock_t`` lets a new reader in whenever no writer *holds* the
  lock, so writers spin until the readers happen to leave a gap.  No
  violation; the run reports the writers' wait (``writer_wait_p50_ns``,
  ``writer_wait_p99_ns``, ``writer_wait_max_ns``) and the reads done.

Invariants: Gv1 areas on the list are sorted, disjoint, inside the vmalloc
range and one guard page long; Gv2 at the end every present PTE lies in a
live area's pages (not its guard), maps a live page, and was set by that
area; Gv3 a PTE is empty just before ``vmalloc_area_pages`` fills it;
Gv4 the pages ``vfree`` returns belong to the area being freed -- recorded
(metric ``foreign_pages_freed``) rather than asserted, so the run goes on
to show what the foreign free does to the new owner; Gv5 nothing sleeps
under either spinning lock (the engine's sleep checks: ``alloc_page`` and
``kmalloc`` are waiting allocations).  Pages that outlive the run with no
PTE pointing at them are a leak.

Sources, paraphrased (nothing of the kernel or of the patch is reproduced):
Mel Gorman's comments patch against 2.4.19-pre7 ``mm/vmalloc.c`` (April
2002), which quotes the code it annotates, with its QUERY comments; the 2.4
``drivers/char/mem.c`` ``read_kmem``, which calls ``vread`` at most a page
at a time and stops at a short count (after Hugh Dickins' 2.4.8 fix of its
loop).  Durations are assumed orders of magnitude from the project's model
specifications: ``flush_tlb_all`` an IPI round of 1-10 us, the list walk
10-50 ns per area, ``vread`` about 1 GB/s; ``alloc_page`` on its fast path
costs the engine's zone allocation (~100 ns).
"""

from smpvm import RwlockT, Spinlock, Zone, kassert, may_sleep, note, pause, scenario, work

# Documented lock order, as data: none.  In these paths vmlist_lock and
# init_mm.page_table_lock are never held together (vmalloc_area_pages runs
# without vmlist_lock, vfree tears down without page_table_lock), so witness
# should learn no edge between them.
LOCK_ORDER = []

#: Default costs, ns [assumed]; each is a scenario parameter (``--set name=value``).
#: ``alloc_page``, ``__free_page`` and ``kmalloc`` cost the engine's zone fast paths
#: (``--set costs.zone_alloc_ns=...``, ``costs.zone_free_ns``).
COSTS = {
    "walk_ns_per_area": 30,          # one vmlist node visited under the lock
    "flush_cache_ns": 1_000,         # flush_cache_all before the teardown
    "flush_tlb_ns": 5_000,           # flush_tlb_all: an IPI to every CPU
    "touch_page_ns": 1_000,          # the owner writing one page of its buffer
    "failed_alloc_ns": 1_000_000,    # an alloc_page that tries reclaim and gives up
}


class VmallocSpace:
    """The vmalloc range of one run: vmlist, kernel PTEs, TLBs, and the two locks."""

    def __init__(self, m, arena_pages, costs):
        self.m = m
        self.costs = costs
        #: vmlist_lock: reader-preferring spinning rwlock (2.4 rwlock_t).
        self.vmlist_lock = RwlockT(m, "vmlist_lock")
        #: init_mm.page_table_lock: spinlock around PTE filling.
        self.ptl = Spinlock(m, "init_mm.page_table_lock")
        #: vm_structs come from kmalloc; addr and size in pages (size includes the guard).
        self.vm_structs = Zone(m, "size-32", {"addr": 0, "size": 0, "serial": 0},
                               type_name="vm_struct")
        #: Physical pages from the buddy allocator; owner is the area serial that mapped it.
        self.pages = Zone(m, "buddy", {"owner": 0, "data": 0}, type_name="page")
        #: One kernel PTE per page of the range: the page mapped (or None) and who set it.
        self.ptes = [m.shared("pte", page=None, owner=0) for _ in range(arena_pages)]
        #: The vmlist, as a tuple of vm_struct pointers sorted by address.
        self.vmlist = m.shared("vmlist", areas=())
        #: Per-CPU TLBs of threads that touch vmalloc'd memory: {page index: page}.
        self.tlbs = []
        self.arena_pages = arena_pages
        self.serials = 0
        #: Waits of every write_lock request (ns), when a scenario measures them.
        self.write_waits = None
        #: Addresses get_vm_area handed out during the run, in order (for reports).
        self.handed_out = []

    def new_tlb(self):
        tlb = self.m.shared("tlb", entries={})
        self.tlbs.append(tlb)
        return tlb

    def next_serial(self):
        self.serials += 1
        return self.serials

    def map_at_boot(self, npages):
        """An area that was vmalloc'ed before the run: linked, mapped, owned (set-up only)."""
        addr = _first_fit(self.vmlist.areas, npages + 1, self.arena_pages)
        area = self.vm_structs.new(addr=addr, size=npages + 1, serial=self.next_serial())
        self.vmlist.areas = _linked(self.vmlist.areas, area)
        for k in range(addr, addr + npages):
            self.ptes[k].page = self.pages.new(owner=area.serial)
            self.ptes[k].owner = area.serial
        return area


# -- get_vm_area / vmalloc_area_pages / __vmalloc ---------------------------------------------


def _first_fit(areas, size, limit):
    """The lowest address where ``size`` pages fit between the sorted ``areas``, or None."""
    addr = 0
    for a in areas:
        if addr + size <= a.addr:
            return addr
        addr = a.addr + a.size
    return addr if addr + size <= limit else None


def _linked(areas, area):
    return tuple(sorted(areas + (area,), key=lambda a: a.addr))


def write_lock(vs):
    """``write_lock(&vmlist_lock)``, timing the wait when the scenario measures it."""
    if vs.write_waits is None:
        yield vs.vmlist_lock.write_lock()
        return
    asked = vs.m.now                    # this CPU's clock: when the request is made
    yield vs.vmlist_lock.write_lock()
    vs.write_waits.append(vs.m.now - asked)


def check_vmlist(vs):
    """Gv1: sorted, disjoint, inside the range, one guard page per area."""
    end = 0
    for a in vs.vmlist.areas:
        kassert(a.addr >= end and a.size >= 2 and a.addr + a.size <= vs.arena_pages,
                f"Gv1: vmlist area #{a.serial} [{a.addr}, {a.addr + a.size}) overlaps its "
                f"predecessor (ends {end}), lacks its guard page or leaves the vmalloc range")
        end = a.addr + a.size


def get_vm_area(vs, npages):
    """Reserve ``npages`` plus a guard page on vmlist (first fit); the area, or None."""
    area = yield vs.vm_structs.alloc(serial=vs.next_serial())   # kmalloc, may sleep
    yield from write_lock(vs)
    areas = vs.vmlist.areas
    addr = _first_fit(areas, npages + 1, vs.arena_pages)
    if addr is not None:
        area.addr, area.size = addr, npages + 1
        vs.vmlist.areas = _linked(areas, area)
        vs.handed_out.append(addr)
        check_vmlist(vs)
    yield work(vs.costs["walk_ns_per_area"] * (len(areas) + 1))
    yield vs.vmlist_lock.write_unlock()
    if addr is None:
        yield vs.vm_structs.free(area)
        return None
    return area


def vmalloc_area_pages(vs, area, fail_at):
    """Fill the area's PTEs; False when ``alloc_page`` fails (index ``fail_at``)."""
    ok = True
    yield vs.ptl.spin_lock()
    for i in range(area.size - 1):
        k = area.addr + i
        # alloc_page may sleep in reclaim: not under the spinlock.
        yield vs.ptl.spin_unlock()
        if i == fail_at:
            yield may_sleep(vs.costs["failed_alloc_ns"], "alloc_page: reclaim gives up")
            page = None
        else:
            page = yield vs.pages.alloc(owner=area.serial)
        yield vs.ptl.spin_lock()
        pte = vs.ptes[k]
        # Gv3, the QUERY: the slot must still be empty.
        if pte.page is not None:
            kassert(False, f"Gv3: alloc_area_pte: page already exists: vmalloc page {k} of "
                    f"area #{area.serial} still maps {pte.page.label()} set by area #{pte.owner}")
        if page is None:
            ok = False                                     # -ENOMEM, lock still held
            break
        pte.page, pte.owner = page, area.serial
    yield vs.ptl.spin_unlock()
    return ok


def vmalloc(vs, npages, fail_at=-1, early_unlock=False):
    """``__vmalloc``: the area's address, or None (the partial area is vfree'd)."""
    area = yield from get_vm_area(vs, npages)
    if area is None:
        return None
    addr = area.addr                      # read now: vfree below frees the vm_struct
    ok = yield from vmalloc_area_pages(vs, area, fail_at)
    if not ok:
        yield from vfree(vs, addr, early_unlock)
        return None
    return addr


# -- vfree -------------------------------------------------------------------------------------


def vfree(vs, addr, early_unlock=False):
    """Unlink the area at ``addr``, clear its PTEs (guard page too), flush TLBs, kfree it."""
    yield from write_lock(vs)
    areas = vs.vmlist.areas
    area = next((a for a in areas if a.addr == addr), None)
    kassert(area is not None, f"Trying to vfree() nonexistent vm area (page {addr})")
    vs.vmlist.areas = tuple(a for a in areas if a is not area)
    if early_unlock:
        # The what-if: the range is reusable from here on, PTEs and all.
        yield vs.vmlist_lock.write_unlock()
    yield from vmfree_area_pages(vs, area)
    if not early_unlock:
        yield vs.vmlist_lock.write_unlock()
    yield vs.vm_structs.free(area)


def vmfree_area_pages(vs, area):
    """Clear every PTE of ``area`` (size includes the guard) and free the pages found."""
    yield work(vs.costs["flush_cache_ns"])
    # free_area_pmd and free_area_pte: the walk reads the PGD entry, then the PMD entry
    # (the small range lies under one of each), then visits the PTEs one by one.
    yield pause()
    yield pause()
    for k in range(area.addr, area.addr + area.size):
        yield note(f"clear PTE of vmalloc page {k}")  # next PTE of free_area_pte's loop
        pte = vs.ptes[k]
        page, owner = pte.page, pte.owner             # ptep_get_and_clear: one atomic step
        pte.page, pte.owner = None, 0
        if page is None:
            continue                                  # pte_none: a guard or never-filled slot
        if owner != area.serial:
            vs.m.count("foreign_pages_freed")         # Gv4 broken: not this area's page
        yield vs.pages.free(page)
    yield work(vs.costs["flush_tlb_ns"])
    for tlb in vs.tlbs:                               # the IPI reached every CPU
        tlb.entries = {}


# -- using vmalloc'ed memory -------------------------------------------------------------------


def translate(vs, tlb, k):
    """The page the MMU uses for vmalloc page ``k``: the TLB entry, else a PTE walk."""
    page = tlb.entries.get(k)
    if page is None:
        page = vs.ptes[k].page
        kassert(page is not None,
                f"oops: unable to handle kernel paging request at vmalloc page {k}: "
                f"the PTE of a live buffer is empty")
        tlb.entries = {**tlb.entries, k: page}
    return page


def use_buffer(vs, tlb, addr, npages, passes):
    """Write every page of the buffer, ``passes`` times (copy in, then relocate)."""
    for p in range(passes):
        for k in range(addr, addr + npages):
            page = translate(vs, tlb, k)
            # A page-sized copy through that translation.  The PTE may be cleared
            # meanwhile; until the flush IPI arrives the stores still reach the page.
            yield work(vs.costs["touch_page_ns"])
            page.data = p + 1


# -- invariants at the end ---------------------------------------------------------------------


def check_mappings(vs):
    """Gv2 and the page-leak check, once every thread is done."""
    mapped = 0
    for k, pte in enumerate(vs.ptes):
        if pte.page is None:
            continue
        mapped += 1
        owners = [a for a in vs.vmlist.areas if a.addr <= k < a.addr + a.size - 1]
        kassert(len(owners) == 1 and owners[0].serial == pte.owner and pte.page.live,
                f"Gv2: vmalloc page {k} maps {pte.page.label()} set by area #{pte.owner}, "
                f"but the live areas covering it are {[a.serial for a in owners]}")
    kassert(vs.pages.live_count == mapped,
            f"page leak: {vs.pages.live_count} pages allocated, {mapped} mapped by live areas")


# -- scenarios ---------------------------------------------------------------------------------


def _costs(params):
    return {name: params[name] for name in COSTS}


@scenario(
    variants={
        "stock": "2.4.19: vfree holds vmlist_lock (write) until every PTE is cleared",
        "early-unlock": "what-if: vfree drops vmlist_lock before tearing the PTEs down",
        "partial-failure": "alloc_page fails for the new area's second page; __vmalloc vfrees it",
    },
    params={"freed_pages": 1, "new_pages": 2, "arena_pages": 8, "passes": 2,
            "fail_at_page": 1, **COSTS},
    param_help={
        "freed_pages": "pages of the area CPU0 vfrees (mapped at boot)",
        "new_pages": "pages CPU1 vmallocs",
        "arena_pages": "size of the vmalloc range, in pages",
        "passes": "times the new owner writes its whole buffer",
        "fail_at_page": "partial-failure: index of the alloc_page that returns NULL",
    },
    description="one vfree of an area vs one vmalloc that may reuse its range")
def vmalloc_vfree(m, variant, freed_pages, new_pages, arena_pages, passes, fail_at_page,
                  **costs):
    if min(freed_pages, new_pages) < 1 or freed_pages + new_pages + 2 > arena_pages:
        raise ValueError("need freed_pages, new_pages >= 1 and room for both areas with "
                         "their guard pages: freed_pages + new_pages + 2 <= arena_pages")
    vs = VmallocSpace(m, arena_pages, _costs(costs))
    old = vs.map_at_boot(freed_pages)
    freed_addr = old.addr                 # old's vm_struct is kfree'd during the run
    early = variant == "early-unlock"
    fail_at = fail_at_page if variant == "partial-failure" else -1
    m.spawn(vfree_thread(vs, freed_addr, early), name="vfree")
    m.spawn(vmalloc_thread(vs, new_pages, fail_at, early, passes, vs.new_tlb()), name="vmalloc")

    def at_end():
        check_mappings(vs)
        m.metric("reused_freed_range", int(freed_addr in vs.handed_out))
    m.on_quiescence(at_end)


def vfree_thread(vs, addr, early_unlock):
    yield from vfree(vs, addr, early_unlock)


def vmalloc_thread(vs, npages, fail_at, early_unlock, passes, tlb):
    addr = yield from vmalloc(vs, npages, fail_at, early_unlock)
    if addr is not None:
        yield from use_buffer(vs, tlb, addr, npages, passes)


# -- writer starvation under vread -------------------------------------------------------------


@scenario(
    variants={"stock": "2.4 reader-preferring rwlock_t: readers pass waiting writers"},
    params={"readers": 4, "reads": 10_000, "read_bytes": 4096, "vread_ns_per_kb": 1_000,
            "copy_out_ns": 1_000, "writers": 1, "writer_ops": 10, "writer_pages": 2,
            "writer_think_ns": 20_000, "boot_areas": 4, "arena_pages": 64, **COSTS},
    param_help={
        "readers": "threads reading /dev/kmem through vread",
        "reads": "most vread calls per reader (readers stop when the writers are done)",
        "read_bytes": "bytes per vread call (read_kmem asks for at most a page)",
        "vread_ns_per_kb": "copy cost under the read lock (about 1 GB/s)",
        "copy_out_ns": "copy_to_user of the chunk, outside the lock",
        "writers": "threads doing vmalloc + vfree",
        "writer_ops": "vmalloc/vfree pairs per writer",
        "writer_pages": "pages per vmalloc",
        "boot_areas": "areas on vmlist from boot (what the readers read; lengthens walks)",
    },
    description="vread readers vs vmalloc/vfree writers on 2.4's reader-preferring vmlist_lock")
def vread_starvation(m, variant, readers, reads, read_bytes, vread_ns_per_kb, copy_out_ns,
                     writers, writer_ops, writer_pages, writer_think_ns, boot_areas,
                     arena_pages, **costs):
    if readers < 1 or writers < 1 or boot_areas < 1:
        raise ValueError("need readers, writers and boot_areas >= 1")
    if 2 * boot_areas + writers * (writer_pages + 1) > arena_pages:
        raise ValueError("arena_pages too small for the boot areas and the writers' areas")
    vs = VmallocSpace(m, arena_pages, _costs(costs))
    boot = [vs.map_at_boot(1) for _ in range(boot_areas)]
    waits = vs.write_waits = []
    stats = {"reads": 0}
    running = m.shared("workload", writers=writers)
    for r in range(readers):
        m.spawn(kmem_reader(vs, boot, reads, read_bytes, vread_ns_per_kb, copy_out_ns, running,
                            stats), name=f"kmem{r}")
    for w in range(writers):
        m.spawn(vmalloc_writer(vs, writer_ops, writer_pages, writer_think_ns, running),
                name=f"vmalloc{w}")

    def report():
        check_mappings(vs)
        m.metric("reads", stats["reads"])
        m.metric("writer_acquisitions", len(waits))
        m.metric("writer_wait_p50_ns", percentile(waits, 50))
        m.metric("writer_wait_p99_ns", percentile(waits, 99))
        m.metric("writer_wait_max_ns", max(waits, default=0))
    m.on_quiescence(report)


def percentile(values, q):
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0
    s = sorted(values)
    return s[max(0, min(len(s) - 1, -(-q * len(s) // 100) - 1))]


def vread(vs, addr, nbytes, ns_per_kb):
    """Copy ``nbytes`` of vmalloc space from page ``addr`` under the read lock."""
    yield vs.vmlist_lock.read_lock()
    areas = vs.vmlist.areas
    for a in areas:
        if a.addr <= addr < a.addr + a.size - 1:
            _ = vs.ptes[addr].page.data  # the copy reads through the area's mapping
            break
    yield work(vs.costs["walk_ns_per_area"] * len(areas) + nbytes * ns_per_kb // 1024)
    yield vs.vmlist_lock.read_unlock()


def kmem_reader(vs, boot, reads, read_bytes, ns_per_kb, copy_out_ns, running, stats):
    """``read_kmem``: page-sized ``vread`` calls, up to ``reads``, while a writer runs."""
    rng = vs.m.rng
    for _ in range(reads):
        if not running.writers:
            return
        area = boot[int(rng.integers(len(boot)))]
        yield from vread(vs, area.addr, read_bytes, ns_per_kb)
        stats["reads"] += 1
        yield work(copy_out_ns)                          # copy_to_user, lock dropped


def vmalloc_writer(vs, ops, npages, think_ns, running):
    for _ in range(ops):
        addr = yield from vmalloc(vs, npages)
        if addr is not None:
            yield from vfree(vs, addr)
        yield work(think_ns)
    running.writers -= 1


# What each variant must show, checked by ``pytest --smpvm`` (smpvm.testing): the bugs
# reproduce in their variants and the fixes show none.
EXPECT = {
    "vmalloc_vfree": {"stock": {"clean": "dfs"},
                      "early-unlock": {"finds": "assertion", "runs": 300},
                      "partial-failure": {"clean": 300}},
    "vread_starvation": {"stock": {"clean": 20}},
}
