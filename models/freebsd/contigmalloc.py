"""FreeBSD 4.x ``contigmalloc``: a 1 GB physical buffer on a 4 GB i386 (PR kern/55081).

A driver for a PCI card that shares a large physically contiguous buffer
with user space (through ``d_mmap``) allocates it with ``contigmalloc`` at
autoconfig time.  In FreeBSD 4.7, ``contigmalloc1`` does two things in one
go: it finds and takes a run of free physical pages, and it maps them into
the kernel's address space.  On i386 the kernel has 1 GB of virtual address
space (``KVA_PAGES`` 256, 4 MB per page-directory entry), part of it already
used by the kernel's own maps, so a 1 GB request can never be mapped.  The
4.7 code only finds that out *after* taking the pages off the free queues,
and its failure path (with a comment betting that kernel address space
almost never runs out) returns NULL without giving them back: a quarter of
the machine's memory is gone for good, and the caller never needed a kernel
mapping in the first place.

PR kern/55081 (Chuck Cranor, AT&T Labs, July 2003) split the function:
``vm_contig_pg_alloc`` finds and takes the pages and returns the index of
the first one in ``vm_page_array`` (or -1), ``vm_contig_pg_kmapin`` maps
them into a kernel map (or returns 0), ``vm_contig_pg_free`` undoes the
first, and ``contigmalloc1`` becomes a wrapper that frees the pages when the
mapping fails.  A driver that only hands physical addresses to user space
calls ``vm_contig_pg_alloc`` alone and uses no kernel address space.

The algorithm, as in the 4.7 source and the 5.0-era ``vm_page.c``
(paraphrased): with ``splvm()`` raised, walk ``vm_page_array`` for the first
free or cached page that is in range and aligned; check that the following
pages are physically consecutive and free or cached, and on the first one
that is not, move the start on by one page and walk again.  If no run is
found, launder: walk the inactive then the active queue, move clean idle
pages to the cache queue, and for a dirty one flush its object
synchronously (sleeping, so interrupts get in) and restart the walk; then
try a second pass, which starts where the first pass's restarts left off
(the start index is not reset between passes).  A found run is "unfreed" page by page (cached pages
freed first, every page taken off its free queue, flags cleared, no object,
no wiring), and then comes the address-space step.

The machine: ``vm_page_array`` is a set of numpy arrays (queue, flags,
wire and hold counts, dirty, owning object), so 4 GB (1M pages) sets up and
scans in milliseconds of real time.  The walk's cost is what the real loop
would examine, worked out exactly (including the restart-by-one-page
behaviour, which is quadratic in the length of free stretches shorter than
the request) and charged as CPU time at ``scan_ns_per_page`` [assumed, ~10
ns per page], in chunks.  Physical memory starts with the kernel wired at
the bottom (``kernel_mb``), pages in use by vnode objects at the top
(``used_mb``, some dirty), optional scattered use in between
(``scatter_pct``), and the rest free: an autoconfig-time picture [assumed].
A disk-completion interrupt (bio class, Poisson at ``disk_irq_per_s``)
frees and allocates pages in the in-use region; ``splvm`` masks it on the
scanning CPU, so it waits until the scan lowers the level again.

Variants:
* ``contigmalloc-4.7``: the 4.7 function.  The scan succeeds, the
  address-space step fails, NULL comes back, and the page-conservation
  check at quiescence reports the pages that are off every queue and owned
  by nobody.
* ``split``: the driver calls ``vm_contig_pg_alloc`` alone: the pages are
  its own, no kernel address space is used.  No violation.
* ``split-wrapper``: the split code called through the ``contigmalloc``
  wrapper: the mapping fails cleanly and ``vm_contig_pg_free`` puts every
  page back on the free queues.  No violation.

Invariants (numbered as in the model specifications): F-inv1 page
conservation (every page is free, cached, on a paging queue, wired to an
object, or owned by the driver that asked for it; the free and cache
counters match the arrays), F-inv3 kernel address space used never exceeds
its size, and the 4.x rule that an allocated run is never dirty.  Metrics:
``allocated`` (requests that succeeded), ``scan_pages`` examined, ``scan_restarts``,
``max_irq_latency_ns`` (the longest stretch the driver kept bio/net/vm
interrupts masked: what an interrupt arriving as it starts waits; the
observed per-source latency is in the run's ``interrupts``), ``kva_free_mb``
and ``free_mb``.

Sources, in words: the PR kern/55081 text and its diff against 4.7
``vm_page.c`` (the project's seed document); the 5.0-era ``contigmalloc1``
(same scan; kernel address space from ``kmem_alloc_pageable``); i386
``KVA_PAGES`` default 256 (1 GB of kernel address space, ``pmap.h``; the
FreeBSD FAQ of the 4.x era says the same).  All durations are assumed
orders of magnitude.
"""

import numpy as np

from smpvm import SPLBIO, Sx, kassert, may_sleep, note, scenario, splvm, splx, work

# No mutex order to declare: 4.x protects page queues with splvm() (and the
# MP lock), and the kernel map with its own lockmgr lock, taken alone here.
LOCK_ORDER = []

PAGE_SIZE = 4096
MB_PAGES = (1 << 20) // PAGE_SIZE

# vm_page queue field (4.x also has per-colour free queues; colour is not modelled).
PQ_NONE, PQ_FREE, PQ_CACHE, PQ_INACTIVE, PQ_ACTIVE = 0, 1, 2, 3, 4
# vm_page flags.
PG_ZERO = 0x1
# vm_page object field: none, kernel_object, or vnode object 1..n.
NO_OBJECT, KERNEL_OBJECT = -1, 0
# Scans charge their time in at most this many chunks (yield points).
MAX_CHUNKS = 256


class PhysMem:
    """``vm_page_array`` as numpy arrays, with the free/cache counters of ``cnt``."""

    def __init__(self, m, p):
        n = p["ram_gb"] * 1024 * MB_PAGES
        rng = m.rng
        #: Page queue (PQ_*).
        self.queue = np.full(n, PQ_FREE, dtype=np.int8)
        #: Page flags (PG_ZERO: known to be zero-filled).
        self.flags = np.where(rng.random(n) < p["zero_pct"] / 100, PG_ZERO, 0).astype(np.uint8)
        self.wire_count = np.zeros(n, dtype=np.int32)
        self.hold_count = np.zeros(n, dtype=np.int16)
        self.dirty = np.zeros(n, dtype=bool)
        #: Owning object: NO_OBJECT, KERNEL_OBJECT or a vnode object number.
        self.obj = np.full(n, NO_OBJECT, dtype=np.int16)
        self.count = n
        self._boot_layout(rng, p)
        #: ``cnt.v_free_count``, ``cnt.v_cache_count``, ``vm_page_zero_count``.
        self.v_free_count = int(np.count_nonzero(self.queue == PQ_FREE))
        self.v_cache_count = int(np.count_nonzero(self.queue == PQ_CACHE))
        free_zeroed = (self.queue == PQ_FREE) & (self.flags & PG_ZERO != 0)
        self.zero_count = int(np.count_nonzero(free_zeroed))
        #: The in-use region at the top, where disk completions free and allocate pages.
        self.io_lo = n - min(n, p["used_mb"] * MB_PAGES)

    def _boot_layout(self, rng, p):
        """Kernel wired at the bottom, vnode pages at the top, optional scatter between."""
        n = self.count
        k = min(n, p["kernel_mb"] * MB_PAGES)
        self.queue[:k] = PQ_NONE
        self.wire_count[:k] = 1
        self.obj[:k] = KERNEL_OBJECT
        used = np.zeros(n, dtype=bool)
        used[n - min(n - k, p["used_mb"] * MB_PAGES):] = True
        if p["scatter_pct"] > 0:
            used[k:] |= rng.random(n - k) < p["scatter_pct"] / 100
        idx = np.flatnonzero(used)
        self.queue[idx] = np.where(rng.random(idx.size) < 0.5, PQ_ACTIVE, PQ_INACTIVE)
        self.obj[idx] = 1 + rng.integers(0, p["vnode_objects"], size=idx.size)
        self.dirty[idx] = rng.random(idx.size) < p["dirty_pct"] / 100
        self.flags[idx] = 0

    # -- the walk for a run ------------------------------------------------------------

    def find_run(self, start, npages, align_pages, limit):
        """First fit from ``start`` as the 4.x loop does it.  Returns (first page of the run or
        -1, pages examined, restarts, where the walk's start ended up); ``limit`` is the first
        page index past ``high``."""
        freeish = (self.queue == PQ_FREE) | (self.queue == PQ_CACHE)
        cand = np.flatnonzero(freeish[start:]) + start
        if align_pages > 1:
            cand = cand[cand % align_pages == 0]
        blockers = np.flatnonzero(~freeish)
        # Each candidate's check walks up to the next page that is not free or cached.
        pos = np.searchsorted(blockers, cand)
        run_end = np.where(pos < blockers.size, blockers[np.minimum(pos, blockers.size - 1)],
                           self.count)
        fits = (run_end - cand) >= npages
        too_high = cand + npages > limit   # the loop gives up at the first such candidate
        stop = np.flatnonzero(fits | too_high)
        k = int(stop[0]) if stop.size else int(cand.size)   # candidates that failed the check
        failed_checks = int(np.sum(run_end[:k] - cand[:k]))
        # A failed check moves the start one page past its candidate.
        moved_to = int(cand[k - 1]) + 1 if k else start
        if stop.size == 0:
            return -1, self.count - start + failed_checks, k, moved_to
        first = int(cand[k])
        if too_high[k]:
            return -1, first - start + 1 + failed_checks, k, moved_to
        return first, first - start + 1 + failed_checks + npages - 1, k, first

    # -- page state changes (the caller is at splvm) -----------------------------------------

    def unfree(self, s, e):
        """Take pages [s, e) off the free/cache queues: no queue, no object, no wiring."""
        q = self.queue[s:e]
        cached = int(np.count_nonzero(q == PQ_CACHE))
        self.v_cache_count -= cached
        self.v_free_count -= int(np.count_nonzero(q == PQ_FREE))
        self.zero_count -= int(np.count_nonzero((q == PQ_FREE) & (self.flags[s:e] & PG_ZERO != 0)))
        dirty = int(np.count_nonzero(self.dirty[s:e]))
        kassert(dirty == 0, f"contig alloc: {dirty} page(s) of the run at index {s} were dirty")
        self.queue[s:e] = PQ_NONE
        self.flags[s:e] = 0
        self.wire_count[s:e] = 0
        self.hold_count[s:e] = 0
        self.obj[s:e] = NO_OBJECT
        return cached

    def free_pages(self, s, e):
        """``vm_page_free`` of pages [s, e) that belong to nobody: back on the free queues."""
        self.queue[s:e] = PQ_FREE
        self.obj[s:e] = NO_OBJECT
        self.wire_count[s:e] = 0
        self.v_free_count += e - s

    def map_into_kernel_object(self, s, e):
        """``vm_page_insert`` into ``kernel_object`` and wire (``vm_map_pageable``)."""
        self.obj[s:e] = KERNEL_OBJECT
        self.wire_count[s:e] = 1

    def cache_clean(self, idx):
        """``vm_page_cache``: clean idle pages move to the cache queue (still candidates)."""
        self.queue[idx] = PQ_CACHE
        self.v_cache_count += int(idx.size)


class KernelMap:
    """``kernel_map``: its size, what the kernel's own maps use, and contigmalloc's entries."""

    def __init__(self, m, p):
        self.size = p["kva_gb"] << 30
        #: Bytes taken by kernel text/data, vm_page_array, kmem_map, buffer_map... [assumed]
        self.used = min(self.size, p["kva_used_mb"] << 20)
        #: (address, size) of entries made by contigmalloc.
        self.entries = []
        self.lock = Sx(m, "kernel_map")
        self.failed_findspace = 0

    def findspace(self, size):
        """The free address range is one stretch after what is used: first fit or None."""
        if self.size - self.used < size:
            self.failed_findspace += 1
            return None
        return self.used

    def insert(self, addr, size):
        self.entries.append((addr, size))
        self.used += size
        kassert(self.used <= self.size, f"F-inv3: kernel_map uses {self.used >> 20} MB of "
                f"{self.size >> 20} MB")


class VM:
    """The run's state: physical memory, the kernel map, the driver's pages, timings."""

    def __init__(self, m, variant, p):
        self.m = m
        self.variant = variant
        self.p = p
        self.mem = PhysMem(m, p)
        self.kmap = KernelMap(m, p)
        #: Runs [s, e) the driver owns without a kernel mapping (split API).
        self.driver_runs = []
        #: (va, s, e) runs the driver got mapped.
        self.driver_mapped = []
        self.masked_since = None
        self.max_masked_ns = 0
        #: Requests that succeeded so far.
        self.allocated = 0
        self.scan_pages = 0
        self.scan_restarts = 0

    # -- bookkeeping of how long interrupts stay masked ----------------------------------------

    def raised(self):
        self.masked_since = self.m.now

    def lowered(self):
        if self.masked_since is not None:
            self.max_masked_ns = max(self.max_masked_ns, self.m.now - self.masked_since)
            self.m.metric("max_irq_latency_ns", self.max_masked_ns)
        self.masked_since = None


# -- CPU time in chunks ---------------------------------------------------------------------


def busy(vm, pages, ns_per_page):
    """Charge ``pages`` x ``ns_per_page`` of CPU time as a few ``work`` steps."""
    pages = int(pages)
    chunk = max(vm.p["chunk_pages"], -(-pages // MAX_CHUNKS))
    left = pages
    while left > 0:
        n = min(chunk, left)
        yield work(n * ns_per_page)
        left -= n


def busy_interruptible(vm, pages, ns_per_page):
    """Like ``busy``, but each chunk raises and drops splvm itself (a per-page
    ``vm_page_free`` does), so interrupts get in between chunks."""
    chunk = max(vm.p["chunk_pages"], -(-pages // MAX_CHUNKS))
    left = pages
    while left > 0:
        n = min(chunk, left)
        s = yield splvm()
        vm.raised()
        yield work(n * ns_per_page)
        yield splx(s)
        vm.lowered()
        left -= n


# -- vm_contig_pg_alloc: the scan, laundering and the unfree loop -----------------------------


def scan_passes(vm, npages):
    """Both passes of the 4.x scan.  Returns (first page or -1, saved spl); on success the
    caller is still at splvm and must lower it."""
    p, mem = vm.p, vm.mem
    align = max(1, (p["align_kb"] * 1024) // PAGE_SIZE)
    limit = mem.count  # high = the top of memory
    start = 0
    for _pass in range(2):
        s = yield splvm()
        vm.raised()
        # The second pass resumes where the first one's restarts left the start.
        found, examined, restarts, start = mem.find_run(start, npages, align, limit)
        vm.scan_pages += examined
        vm.scan_restarts += restarts
        yield from busy(vm, examined, p["scan_ns_per_page"])
        if found >= 0:
            yield note(f"scan found {npages} free pages at index {found} "
                       f"after examining {examined}")
            mem.unfree(found, found + npages)
            yield from busy(vm, npages, p["unfree_ns_per_page"])
            return found, s
        yield note(f"pass {_pass}: no run of {npages} pages from index {start}; laundering")
        s = yield from launder(vm, s)
        yield splx(s)
        vm.lowered()
    return -1, None


def launder(vm, s):
    """Inactive then active queue: cache clean pages; flush a dirty page's object
    synchronously (a sleep: interrupts run meanwhile) and walk again.  Returns the spl."""
    mem, p = vm.mem, vm.p
    for q in (PQ_INACTIVE, PQ_ACTIVE):
        while True:
            idx = np.flatnonzero(mem.queue == q)
            dirty = idx[mem.dirty[idx]]
            clean_upto = idx.size if dirty.size == 0 else int(np.searchsorted(idx, dirty[0]))
            mem.cache_clean(idx[:clean_upto])
            yield from busy(vm, clean_upto + (dirty.size > 0), p["launder_ns_per_page"])
            if dirty.size == 0:
                break
            # vm_object_page_clean(SYNC) of the page's object: the sleep lets interrupts in.
            obj = mem.obj[dirty[0]]
            yield splx(s)
            vm.lowered()
            yield may_sleep(p["flush_ns"], "vm_object_page_clean (synchronous write)")
            mem.dirty[(mem.obj == obj) & mem.dirty] = False
            vm.m.count("launder_flushes")
            s = yield splvm()
            vm.raised()
    return s


def vm_contig_pg_alloc(vm, npages):
    """Split API: the pages, or -1; no kernel address space touched."""
    start, s = yield from scan_passes(vm, npages)
    if start >= 0:
        yield splx(s)
        vm.lowered()
    return start


def vm_contig_pg_free(vm, start, npages):
    """Undo ``vm_contig_pg_alloc``: every page back to the free queues."""
    yield from busy_interruptible(vm, npages, vm.p["free_ns_per_page"])
    vm.mem.free_pages(start, start + npages)


# -- the kernel address-space step ------------------------------------------------------------


def map_run(vm, start, npages):
    """Find kernel address space, enter the run, wire it; the caller is at splvm.
    Returns the address or None (with nothing changed)."""
    km = vm.kmap
    size = npages * PAGE_SIZE
    yield km.lock.xlock()
    yield work(vm.p["findspace_ns"])
    addr = km.findspace(size)
    if addr is None:
        yield km.lock.xunlock()
        yield note(f"vm_map_findspace: no {size >> 20} MB of kernel address space "
                   f"({(km.size - km.used) >> 20} MB free)")
        return None
    km.insert(addr, size)
    yield km.lock.xunlock()
    vm.mem.map_into_kernel_object(start, start + npages)
    yield from busy(vm, npages, vm.p["map_ns_per_page"])
    return addr


def vm_contig_pg_kmapin(vm, start, npages):
    """Split API: map a run taken by ``vm_contig_pg_alloc``; the address or None."""
    s = yield splvm()  # the PR asks whether this is needed; page insertion says yes [assumed]
    vm.raised()
    addr = yield from map_run(vm, start, npages)
    yield splx(s)
    vm.lowered()
    return addr


def contigmalloc1_47(vm, npages):
    """4.7: scan, unfree, then the address-space step in the same splvm; its failure
    path returns NULL and keeps the pages."""
    start, s = yield from scan_passes(vm, npages)
    if start < 0:
        return None
    addr = yield from map_run(vm, start, npages)
    yield splx(s)
    vm.lowered()
    return addr  # None: the unfreed pages stay off every queue, owned by nobody


def contigmalloc_split(vm, npages):
    """After the split: the wrapper frees the pages when the mapping fails."""
    start = yield from vm_contig_pg_alloc(vm, npages)
    if start < 0:
        return None
    addr = yield from vm_contig_pg_kmapin(vm, start, npages)
    if addr is None:
        yield from vm_contig_pg_free(vm, start, npages)
        return None
    return (addr, start)


# -- threads --------------------------------------------------------------------------------


def driver(vm):
    """Autoconfig of the card: ask for the buffer ``requests`` times."""
    p = vm.p
    npages = (p["request_mb"] << 20) // PAGE_SIZE
    yield work(p["attach_ns"])
    for _ in range(p["requests"]):
        if vm.variant == "split":
            start = yield from vm_contig_pg_alloc(vm, npages)
            if start >= 0:
                vm.driver_runs.append((start, start + npages))
        elif vm.variant == "split-wrapper":
            got = yield from contigmalloc_split(vm, npages)
            if got is not None:
                addr, start = got
                vm.driver_mapped.append((addr, start, start + npages))
        else:
            addr = yield from contigmalloc1_47(vm, npages)
            if addr is not None:
                vm.driver_mapped.append((addr, None, None))
        got = len(vm.driver_runs) + len(vm.driver_mapped)
        got_it = got > vm.allocated
        vm.allocated = got
        vm.m.metric("allocated", got)
        yield note("the driver got its buffer" if got_it else "the allocation failed")
        yield work(p["attach_ns"])


def disk_interrupt(vm):
    """A disk completion (bio class): frees a clean page it was done with, or takes a
    free page for the next read, in the in-use region at the top of memory."""
    mem, m = vm.mem, vm.m
    s = yield splvm()
    i = int(m.rng.integers(mem.io_lo, mem.count)) if mem.io_lo < mem.count else -1
    if i >= 0 and mem.queue[i] in (PQ_ACTIVE, PQ_INACTIVE) and not mem.dirty[i]:
        mem.queue[i] = PQ_FREE
        mem.obj[i] = NO_OBJECT
        mem.v_free_count += 1
    elif i >= 0 and mem.queue[i] == PQ_FREE:
        mem.queue[i] = PQ_ACTIVE
        mem.obj[i] = 1
        mem.v_free_count -= 1
        if mem.flags[i] & PG_ZERO:
            mem.flags[i] = 0
            mem.zero_count -= 1
    yield work(vm.p["irq_handler_ns"])
    yield splx(s)


# -- checks ---------------------------------------------------------------------------------


def report_metrics(vm):
    m, mem = vm.m, vm.mem
    m.metric("allocated", vm.allocated)
    m.metric("scan_pages", vm.scan_pages)
    m.metric("scan_restarts", vm.scan_restarts)
    m.metric("max_irq_latency_ns", vm.max_masked_ns)
    m.metric("kva_free_mb", (vm.kmap.size - vm.kmap.used) >> 20)
    m.metric("free_mb", mem.v_free_count // MB_PAGES)


def check_conservation(vm):
    """F-inv1: every page is somewhere; the counters match the arrays."""
    mem = vm.mem
    owned = np.zeros(mem.count, dtype=bool)
    for s, e in vm.driver_runs:
        owned[s:e] = True
    nobody = (mem.queue == PQ_NONE) & (mem.obj == NO_OBJECT) & ~owned
    lost = int(np.count_nonzero(nobody))
    vm.m.metric("lost_pages", lost)
    if lost:
        first = int(np.flatnonzero(nobody)[0])
        kassert(False, f"page conservation: {lost} pages off every queue and owned by nobody "
                f"({lost // MB_PAGES} MB, from index {first}): lost until reboot")
    free = int(np.count_nonzero(mem.queue == PQ_FREE))
    kassert(free == mem.v_free_count, f"F-inv1: v_free_count is {mem.v_free_count} but "
            f"{free} pages are on the free queues")
    cached = int(np.count_nonzero(mem.queue == PQ_CACHE))
    kassert(cached == mem.v_cache_count, f"F-inv1: v_cache_count is {mem.v_cache_count} but "
            f"{cached} pages are on the cache queue")


# -- the scenario -----------------------------------------------------------------------------


PARAMS = {
    "ram_gb": 4, "kva_gb": 1, "kva_used_mb": 400, "request_mb": 1024, "requests": 1,
    "align_kb": 4, "kernel_mb": 32, "used_mb": 512, "scatter_pct": 0.0, "dirty_pct": 10.0,
    "zero_pct": 5.0, "vnode_objects": 8,
    "scan_ns_per_page": 10, "unfree_ns_per_page": 20, "free_ns_per_page": 20,
    "map_ns_per_page": 100, "launder_ns_per_page": 50, "findspace_ns": 2000,
    "flush_ns": 8_000_000, "attach_ns": 50_000, "chunk_pages": 8192,
    "disk_irq_per_s": 2000.0, "irq_handler_ns": 5000,
}

PARAM_HELP = {
    "ram_gb": "physical memory (i386 without PAE: at most 4)",
    "kva_gb": "kernel address space (KVA_PAGES 256 = 1 GB)",
    "kva_used_mb": "kernel address space already used by the kernel's own maps [assumed]",
    "request_mb": "size of the driver's contiguous buffer",
    "requests": "how many times the driver asks (each 4.7 failure can leak another run)",
    "align_kb": "alignment of the run",
    "kernel_mb": "memory wired by the kernel at the bottom at boot",
    "used_mb": "memory in use by vnode objects at the top at boot",
    "scatter_pct": "percent of the pages in between also in use (fragmentation)",
    "dirty_pct": "percent of in-use pages that are dirty",
    "zero_pct": "percent of free pages known to be zero-filled (PG_ZERO)",
    "vnode_objects": "vnode objects the in-use pages belong to (one flush cleans one)",
    "scan_ns_per_page": "CPU time per page the scan examines [assumed]",
    "unfree_ns_per_page": "CPU time to take one page off its free queue",
    "free_ns_per_page": "CPU time of vm_page_free for one page",
    "map_ns_per_page": "page insertion plus PTE set-up per page when mapping",
    "launder_ns_per_page": "CPU time per page walked while laundering",
    "findspace_ns": "vm_map_findspace under the map lock",
    "flush_ns": "one synchronous object flush (disk writes)",
    "attach_ns": "driver attach work before and after the request",
    "chunk_pages": "pages charged per work step (finer: more yield points)",
    "disk_irq_per_s": "Poisson rate of disk-completion interrupts (bio class) on the CPU",
    "irq_handler_ns": "CPU time of one disk-completion handler",
}


def check_params(p):
    if not 1 <= p["ram_gb"] <= 64:
        raise ValueError(f"ram_gb must be in 1..64, got {p['ram_gb']}")
    for k in ("kva_gb", "request_mb", "requests", "align_kb", "vnode_objects", "chunk_pages"):
        if p[k] < 1:
            raise ValueError(f"{k} must be at least 1, got {p[k]}")
    if p["align_kb"] % 4 or p["align_kb"] & (p["align_kb"] - 1):
        raise ValueError(f"align_kb must be a power of 2 and a multiple of 4, got {p['align_kb']}")
    for k in ("scatter_pct", "dirty_pct", "zero_pct"):
        if not 0 <= p[k] <= 100:
            raise ValueError(f"{k} is a percentage (0..100), got {p[k]}")
    if p["kernel_mb"] + p["used_mb"] > p["ram_gb"] * 1024:
        raise ValueError("kernel_mb + used_mb must fit in ram_gb")
    if p["disk_irq_per_s"] < 0:
        raise ValueError(f"disk_irq_per_s must be >= 0, got {p['disk_irq_per_s']}")


@scenario(
    variants={
        "contigmalloc-4.7": "4.7 contigmalloc1: KVA step fails after the unfree loop; pages leak",
        "split": "kern/55081 vm_contig_pg_alloc alone: physical pages, no kernel address space",
        "split-wrapper": "split code through the contigmalloc wrapper: KVA fails, pages go back",
    },
    params=PARAMS, param_help=PARAM_HELP,
    description="a 1 GB contigmalloc on a 4 GB i386 with 1 GB of KVA (PR kern/55081, model f)")
def large_buffer(m, variant, **p):
    """A 1 GB physically contiguous buffer on 4.x i386: the leak and the split (model f)."""
    check_params(p)
    vm = VM(m, variant, p)
    m.spawn(driver(vm), name="driver")
    if p["disk_irq_per_s"] > 0:
        m.interrupt_source("disk", SPLBIO, lambda: disk_interrupt(vm), cpu=0,
                           rate_per_s=p["disk_irq_per_s"])
    m.on_quiescence(lambda: report_metrics(vm))
    m.on_quiescence(lambda: check_conservation(vm))


# What each variant must show, checked by ``pytest --smpvm`` (smpvm.testing): the bugs
# reproduce in their variants and the fixes show none.
EXPECT = {
    "large_buffer": {"contigmalloc-4.7": {"finds": "assertion", "runs": 5},
                     "split": {"clean": 5}},
}
