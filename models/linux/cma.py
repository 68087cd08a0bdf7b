"""CMA: the contiguous memory allocator's bitmap, its mutexes, and five lock designs.

A CMA area is a range of pageblocks set aside at boot.  While no driver
needs it, the page allocator lends it to movable pages (page cache,
anonymous memory); when a driver asks for a physically contiguous buffer,
CMA picks a free stretch in the area's bitmap and calls
``alloc_contig_range`` to empty it: isolate the pageblocks (widened to
MAX_ORDER alignment) so the buddy allocator hands none of their pages out,
migrate the movable pages elsewhere, drain the per-CPU lists, check that
every page is free, take the pages, and un-isolate the blocks.  Migration is
the long part (milliseconds per megabyte); a page pinned by
``get_user_pages`` cannot be moved and fails the attempt.

The 2011 review of the CMA v16 patch asked two things of its one global
``cma_mutex``.  Does the bitmap leak when ``alloc_contig_range`` fails?  (No:
the failure path clears the bits.)  And could a spinlock around the bitmap
alone replace the mutex?  (The author: the mutex is there to let only one
``alloc_contig_range`` isolate pageblocks at a time.)  The kernel then
went through the designs modelled here, one variant each.

``alloc_release`` (variants are designs; every one must show no violation):

* ``v16-2011`` -- the patch under review: ``cma_mutex`` around the bitmap
  search, the bit set, ``alloc_contig_range`` and, on failure, the bit
  clear; release clears bits and frees pages under it.  No retry: a pinned
  page fails the allocation.
* ``mainline-3.5`` -- ``dma-contiguous.c`` of 3.5-3.15: ``cma_mutex``
  around the whole retry loop, bits set only on success, the next aligned
  candidate tried after -EBUSY.  Modelled with -EAGAIN retried like -EBUSY,
  as the later linux-mm thread agreed it should be (see ``eagain-abort``).
* ``3.16`` -- after Laura Abbott's fix (3.16 ``dma-contiguous.c``, then
  ``mm/cma.c``): a per-area mutex ``cma->lock`` around find/set and clear
  only, the global ``cma_mutex`` only around ``alloc_contig_range``, release
  without either (pages freed first, then bits cleared).
* ``per-area`` -- later kernels: ``cma->lock`` a spinlock taken with
  interrupts off, and a per-area ``cma->alloc_mutex`` instead of the global
  one (different areas isolate and migrate in parallel).
* ``no-mutex`` -- what-if: the 3.16 bitmap discipline with no mutex at all
  around ``alloc_contig_range``.  Concurrent isolations of overlapping
  widened ranges collide (-EBUSY) and retry further on.  Extra retries and
  tail latency, no corruption.
* ``no-clear-on-failure`` -- mutant of ``3.16``: the retry path forgets to
  clear the bits of the candidate it abandons.  The bitmap leaks (H-inv1).
* ``eagain-abort`` -- mutant (the literal 3.5 code): -EAGAIN from a pinned
  page ends the allocation instead of moving on, though untried candidates
  remain (H-inv7).

``shrinker_reentry`` (the self-deadlock Laura Abbott fixed): an ION heap
keeps a CMA chunk cached and registers a shrinker that releases it.  Its
allocation, under ``cma_mutex``, migrates pages; migration needs pages and,
with memory short (a page-cache reader ate the headroom), enters direct
reclaim, which runs the ION shrinker, which releases the chunk.  In
``mainline-3.5`` the release takes ``cma_mutex`` again: recursion on a
non-recursive mutex, a hang in the kernel.  Witness sees the cycle in every
run, whether or not reclaim fires: allocation under ``cma_mutex`` touches
the ``fs_reclaim`` map (lockdep's "may enter reclaim" annotation), and the
shrinker's registration tells witness what the shrinker takes under
``fs_reclaim`` (a priming acquisition, as kernel drivers do with
``fs_reclaim_acquire`` + ``might_lock`` at init), from the per-variant data
in ``SHRINKER_TAKES``.  In ``3.16`` release takes only ``cma->lock``: no
cycle, no finding.

Invariants: H-inv1 every set bit belongs to a live allocation or to an
attempt in flight (checked when the run ends: the bitmap equals the union
of live allocations); H-inv2 pageblocks are never handed to two
allocations; H-inv3 (3.16 order) a release frees the pages before the bits
clear; H-inv4 mutexes never recurse and the order graph stays acyclic
(witness); H-inv5 nothing sleeps under the ``cma->lock`` spinlock
(witness); H-inv6 a pageblock is isolated by one caller at a time, and
designs that serialise ``alloc_contig_range`` never even collide; H-inv7 a
retrying design gives up only when no untried candidate is left.  The
bitmap is declared guarded by each design's bitmap lock (lockset check).

Metrics (the what-if study of the five designs under the timed strategy):
``alloc_latency_p50_ns``/``_p99_ns`` over every allocation call,
``release_latency_p99_ns``, ``throughput_per_s`` (successful allocations per
simulated second), ``ebusy_retries``, ``eagain_retries``,
``failed_allocations``, ``allocations``.

Costs: migration 14.6 ms per MB of movable pages (``migrate_ns_per_mb``),
from the measurement quoted by "mm: cma: discard clean pages during
contiguous allocation instead of migration": 10 MB migrated in 146 ms under
QEMU before that change and 7 ms after it (``--set migrate_ns_per_mb=700000``
for the later kernel).  Everything else is assumed: bitmap search 0.5 us,
isolation 2 us per pageblock, draining per-CPU lists 50 us, taking and
freeing the pages 10 and 50 us per pageblock, 4 MB pageblocks.

Sources, paraphrased (no kernel code or review text is reproduced): the
CMA v16 patch 6/9 review thread (Mel Gorman and Marek Szyprowski, November
2011, the project's seed document); ``drivers/base/dma-contiguous.c`` in its
3.5-3.15 form; Laura Abbott's "cma: Remove potential deadlock situation"
(the shrinker chain, the split into ``cma->lock`` and ``cma_mutex``, release
freeing pages before clearing bits); ``mm/cma.c`` of 3.17 and later, and its
later spinlock ``cma->lock`` and per-area ``alloc_mutex``; the body of
``alloc_contig_range`` and ``set_migratetype_isolate`` returning -EBUSY for
a block someone else isolated; the linux-mm thread on -EAGAIN from pinned
pages not being retried by ``dma_alloc_from_contiguous``.
"""

from smpvm import (IrqSpinlock, LockMap, Mutex, Spinlock, Zone, kassert, may_sleep, might_lock,
                   note, scenario, steady_state, work)

# Documented lock order, as data: the allocation path's nesting, the same in every
# design.  alloc_contig_range runs under the CMA allocation mutex (the global
# cma_mutex, or a per-area alloc_mutex later); migration allocates target pages and
# so may enter reclaim (the fs_reclaim map); isolating, taking and freeing
# pageblocks happens under zone->lock, innermost.  What the bitmap lock nests
# under is left for witness to learn.
LOCK_ORDER = [
    ["cma_mutex", "fs_reclaim", "zone->lock"],
    ["cma_mutex", "zone->lock"],
    ["cma->alloc_mutex", "fs_reclaim"],
    ["cma->alloc_mutex", "zone->lock"],
]

#: What the ION shrinker's release path takes under fs_reclaim, per variant (data for the
#: priming acquisition at shrinker registration).  3.5 releases under the global
#: cma_mutex; from 3.16 on release takes only the bitmap's cma->lock.
SHRINKER_TAKES = {
    "mainline-3.5": ["cma_mutex", "zone->lock"],
    "3.16": ["zone->lock", "cma->lock"],
}

EBUSY = "-EBUSY"
EAGAIN = "-EAGAIN"
#: Errors after which a retrying design tries the next candidate.
RETRYABLE = (EBUSY, EAGAIN)

#: Default costs [assumed unless noted]; each is a scenario parameter.
COSTS = {
    "migrate_ns_per_mb": 14_600_000,   # [S21] 146 ms / 10 MB (7 ms after discard-clean-pages)
    "pageblock_mb": 4,                 # pageblock_order 10 with 4 KB pages
    "bitmap_ns": 500,                  # bitmap_find_next_zero_area over a 16-256 MB area
    "isolate_ns_per_block": 2_000,     # set_migratetype_isolate: scan a block for unmovables
    "drain_ns": 50_000,                # lru_add_drain_all + drain_all_pages: IPIs
    "grab_ns_per_block": 10_000,       # test_pages_isolated + isolate_freepages_range
    "free_ns_per_block": 50_000,       # free_contig_range: every page back to buddy
}


# -- the machine's memory: pageblocks, CMA areas, reclaim --------------------------------------


class CmaArea:
    """One CMA area: its pageblocks, bitmap (one bit per pageblock) and per-area locks."""

    def __init__(self, m, index, base, count, design):
        self.index = index
        self.base = base
        self.count = count
        kind = design["bitmap_lock"]
        #: The lock guarding the bitmap (a shared lock object, or this area's own).
        if kind == "cma_mutex":
            self.bitmap_lock = design["cma_mutex"]
        elif kind == "spinlock":
            self.bitmap_lock = IrqSpinlock(m, "cma->lock", instance=f"cma{index}")
        else:
            self.bitmap_lock = Mutex(m, "cma->lock", instance=f"cma{index}")
        #: The lock around alloc_contig_range: global, per-area, or none.
        contig = design["contig_lock"]
        if contig == "per-area":
            self.contig_lock = Mutex(m, "cma->alloc_mutex", instance=f"cma{index}")
        else:
            self.contig_lock = design["cma_mutex"] if contig == "cma_mutex" else None
        lock = self.bitmap_lock
        zone = Zone(m, f"cma{index}", {"bitmap": (None,) * count}, type_name="struct cma",
                    guards={"bitmap": lambda f: lock})
        #: bitmap[i]: the tag of the allocation (or attempt) owning pageblock base+i, or None.
        self.cma = zone.new()


class Memory:
    """Pageblocks, the CMA areas over them, zone->lock, the reclaim map, and statistics."""

    def __init__(self, m, design, areas, area_blocks, movable_blocks, costs):
        self.m = m
        self.design = design
        self.costs = costs
        self.zone_lock = Spinlock(m, "zone->lock")
        self.reclaim = LockMap(m, "fs_reclaim")
        blocks = Zone(m, "pageblocks", {"content": "free", "owner": None, "isolated_by": None},
                      type_name="pageblock",
                      guards={"isolated_by": lambda f: self.zone_lock})
        #: content: "free" (in buddy), "movable" (lent out), "pinned" (movable, held by GUP),
        #: "cma" (taken by an allocation: owner is its tag).
        self.blocks = []
        for a in range(areas):
            for i in range(area_blocks):
                self.blocks.append(blocks.new(content="movable" if i < movable_blocks else "free"))
        self.areas = [CmaArea(m, a, a * area_blocks, area_blocks, design) for a in range(areas)]
        #: Direct reclaim hook: a function returning a generator, or None (no pressure).
        self.direct_reclaim = None
        #: Driver threads still running (the background threads stop when none is).
        self.running = m.shared("workload", drivers=0)
        self.stats = {"latency": [], "release": [], "ok": 0, "failed": 0, EBUSY: 0, EAGAIN: 0,
                      "end_ns": 0}
        #: Per allocator: start and end times of its cma_alloc calls, and which succeeded.
        self.call_log = []

    def migrate_ns(self):
        return self.costs["migrate_ns_per_mb"] * self.costs["pageblock_mb"]


# -- bitmap ------------------------------------------------------------------------------------


def find_zero_area(bitmap, start, n, mask):
    """First aligned index >= start with ``n`` clear bits (bitmap_find_next_zero_area), or None."""
    p = (start + mask) & ~mask
    while p + n <= len(bitmap):
        if all(b is None for b in bitmap[p:p + n]):
            return p
        p += mask + 1
    return None


def set_bits(area, p, n, tag):
    bm = area.cma.bitmap
    kassert(all(b is None for b in bm[p:p + n]),
            f"H-inv2: bits {p}..{p + n - 1} of cma{area.index} set for {tag} are already taken")
    area.cma.bitmap = bm[:p] + (tag,) * n + bm[p + n:]


def clear_bits(area, p, n):
    bm = area.cma.bitmap
    area.cma.bitmap = bm[:p] + (None,) * n + bm[p + n:]


# -- alloc_contig_range ------------------------------------------------------------------------


def alloc_contig_range(mem, area, p, n, tag):
    """Empty and take pageblocks p..p+n-1 of ``area``: 0, -EBUSY or -EAGAIN."""
    costs = mem.costs
    mo = mem.design["max_order_blocks"]
    lo = area.base + (p // mo) * mo
    hi = area.base + min(area.count, -(-(p + n) // mo) * mo)
    first, last = area.base + p, area.base + p + n
    blocks = mem.blocks
    # 1. isolate the widened range under zone->lock; a block someone else isolated: -EBUSY.
    yield mem.zone_lock.spin_lock()
    taken = [b.isolated_by for b in blocks[lo:hi] if b.isolated_by is not None]
    if taken:
        kassert(mem.design["contig_lock"] is None,
                f"H-inv6: {tag} found pageblocks {lo}..{hi - 1} isolated by {taken[0]} although "
                f"alloc_contig_range is serialised in this design")
        yield mem.zone_lock.spin_unlock()
        return EBUSY
    for b in blocks[lo:hi]:
        b.isolated_by = tag
    yield work(costs["isolate_ns_per_block"] * (hi - lo))
    yield mem.zone_lock.spin_unlock()
    # 2. migrate the movable pages away; a pinned page cannot move: -EAGAIN.
    err = 0
    for b in blocks[first:last]:
        if b.content == "pinned":
            err = EAGAIN
            break
        if b.content == "movable":
            yield mem.reclaim.might_enter()         # migration allocates target pages
            if mem.direct_reclaim is not None:
                yield from mem.direct_reclaim()
            yield may_sleep(mem.migrate_ns(), "migrate_pages")
            if b.content == "pinned":               # pinned while it was being copied
                err = EAGAIN
                break
            b.content = "free"
    if not err:
        yield work(costs["drain_ns"])               # 3. drain LRU and per-CPU lists
    # 4-6. check every page is free and take them; un-isolate the widened range.
    yield mem.zone_lock.spin_lock()
    if not err and any(b.content != "free" for b in blocks[first:last]):
        err = EBUSY
    if not err:
        for b in blocks[first:last]:
            b.content, b.owner = "cma", tag
    for b in blocks[lo:hi]:
        if b.isolated_by == tag:
            b.isolated_by = None
    if not err:
        yield work(costs["grab_ns_per_block"] * n)
    yield mem.zone_lock.spin_unlock()
    return err


def free_contig_range(mem, area, p, n, tag):
    """Give pageblocks p..p+n-1 back to the buddy allocator."""
    yield mem.zone_lock.spin_lock()
    for b in mem.blocks[area.base + p:area.base + p + n]:
        kassert(b.content == "cma" and b.owner == tag,
                f"H-inv2: {tag} releases a pageblock it does not own ({b.content}, {b.owner})")
        b.content, b.owner = "free", None
    yield work(mem.costs["free_ns_per_block"] * n)
    yield mem.zone_lock.spin_unlock()


# -- the designs -------------------------------------------------------------------------------


def alloc_v16(mem, area, n, mask, tag):
    """v16 (2011): one cma_mutex around everything, one candidate, bits cleared on failure."""
    lock = area.bitmap_lock
    yield lock.mutex_lock()
    yield work(mem.costs["bitmap_ns"])
    p = find_zero_area(area.cma.bitmap, 0, n, mask)
    if p is None:
        yield lock.mutex_unlock()
        return None
    set_bits(area, p, n, tag)
    err = yield from alloc_contig_range(mem, area, p, n, tag)
    if err:
        clear_bits(area, p, n)                      # the "free:" label the reviewer missed
    yield lock.mutex_unlock()
    return None if err else p


def alloc_35(mem, area, n, mask, tag, eagain_retries=True):
    """3.5-3.15: cma_mutex around the retry loop; bits set only on success."""
    lock = area.bitmap_lock
    yield lock.mutex_lock()
    start, found = 0, None
    while True:
        yield work(mem.costs["bitmap_ns"])
        p = find_zero_area(area.cma.bitmap, start, n, mask)
        if p is None:
            break
        err = yield from alloc_contig_range(mem, area, p, n, tag)
        if not err:
            set_bits(area, p, n, tag)
            found = p
            break
        if err == EAGAIN and not eagain_retries:
            untried = find_zero_area(area.cma.bitmap, p + mask + 1, n, mask)
            kassert(untried is None,
                    f"H-inv7: {tag} gave up on -EAGAIN from a pinned page at block {p} of "
                    f"cma{area.index} although block {untried} was still to try")
            break
        mem.stats[err] += 1
        start = p + mask + 1
    yield lock.mutex_unlock()
    return found


def alloc_316(mem, area, n, mask, tag, clear_on_retry=True):
    """3.16 on: bitmap under cma->lock, alloc_contig_range under the allocation mutex (if any)."""
    bitmap_lock, contig_lock = area.bitmap_lock, area.contig_lock
    start = 0
    while True:
        yield bitmap_lock.lock()
        p = find_zero_area(area.cma.bitmap, start, n, mask)
        if p is not None:
            set_bits(area, p, n, tag)               # reserve before the long part
        yield work(mem.costs["bitmap_ns"])
        yield bitmap_lock.unlock()
        if p is None:
            return None
        if contig_lock is not None:
            yield contig_lock.mutex_lock()
        err = yield from alloc_contig_range(mem, area, p, n, tag)
        if contig_lock is not None:
            yield contig_lock.mutex_unlock()
        if not err:
            return p
        if clear_on_retry:
            yield from clear_bitmap(mem, area, p, n)
        mem.stats[err] += 1
        start = p + mask + 1


def clear_bitmap(mem, area, p, n):
    yield area.bitmap_lock.lock()
    clear_bits(area, p, n)
    yield area.bitmap_lock.unlock()


def release_under_mutex(mem, area, p, n, tag):
    """v16 and 3.5: clear the bits and free the pages, both under cma_mutex."""
    lock = area.bitmap_lock
    yield lock.mutex_lock()
    clear_bits(area, p, n)
    yield from free_contig_range(mem, area, p, n, tag)
    yield lock.mutex_unlock()


def release_316(mem, area, p, n, tag):
    """3.16 on: free the pages with no CMA lock, then clear the bits under cma->lock."""
    yield from free_contig_range(mem, area, p, n, tag)
    yield area.bitmap_lock.lock()
    blocks = mem.blocks[area.base + p:area.base + p + n]
    kassert(all(b.content != "cma" for b in blocks),
            f"H-inv3: bits {p}..{p + n - 1} of cma{area.index} cleared before the pages were free")
    clear_bits(area, p, n)
    yield area.bitmap_lock.unlock()


#: variant -> bitmap lock, lock around alloc_contig_range, alloc and release functions.
DESIGNS = {
    "v16-2011": dict(bitmap_lock="cma_mutex", contig_lock="cma_mutex", alloc=alloc_v16,
                     release=release_under_mutex),
    "mainline-3.5": dict(bitmap_lock="cma_mutex", contig_lock="cma_mutex", alloc=alloc_35,
                         release=release_under_mutex),
    "3.16": dict(bitmap_lock="mutex", contig_lock="cma_mutex", alloc=alloc_316,
                 release=release_316),
    "per-area": dict(bitmap_lock="spinlock", contig_lock="per-area", alloc=alloc_316,
                     release=release_316),
    "no-mutex": dict(bitmap_lock="mutex", contig_lock=None, alloc=alloc_316,
                     release=release_316),
    "no-clear-on-failure": dict(bitmap_lock="mutex", contig_lock="cma_mutex",
                                alloc=lambda *a: alloc_316(*a, clear_on_retry=False),
                                release=release_316),
    "eagain-abort": dict(bitmap_lock="cma_mutex", contig_lock="cma_mutex",
                         alloc=lambda *a: alloc_35(*a, eagain_retries=False),
                         release=release_under_mutex),
}


def make_design(m, variant, max_order_blocks):
    """The variant's design with its global lock made (only designs that have one)."""
    design = dict(DESIGNS[variant])
    uses_global = "cma_mutex" in (design["bitmap_lock"], design["contig_lock"])
    design["cma_mutex"] = Mutex(m, "cma_mutex") if uses_global else None
    design["max_order_blocks"] = max_order_blocks
    return design


# -- workload threads --------------------------------------------------------------------------


def cma_alloc(mem, area, n, mask, tag):
    """One allocation call, timed; the first block index or None."""
    m = mem.m
    t0 = m.now
    p = yield from mem.design["alloc"](mem, area, n, mask, tag)
    mem.stats["latency"].append(m.now - t0)
    mem.stats["ok" if p is not None else "failed"] += 1
    return p


def cma_release(mem, area, p, n, tag):
    m = mem.m
    t0 = m.now
    yield from mem.design["release"](mem, area, p, n, tag)
    mem.stats["release"].append(m.now - t0)


def allocator(mem, area, ident, ops, max_request, mask, hold_ns, think_ns):
    """A driver: allocate a buffer, use it for ``hold_ns``, release it, think; ``ops`` times."""
    m = mem.m
    starts, ends, succeeded = [], [], []
    mem.call_log.append((starts, ends, succeeded))
    for op in range(ops):
        n = 1 + int(m.rng.integers(max_request)) if max_request > 1 else 1
        tag = f"a{ident}.{op}"
        starts.append(m.now)
        p = yield from cma_alloc(mem, area, n, mask, tag)
        ends.append(m.now)
        succeeded.append(p is not None)
        if p is not None:
            yield work(hold_ns)
            yield from cma_release(mem, area, p, n, tag)
        yield work(think_ns)
    mem.stats["end_ns"] = max(mem.stats["end_ns"], m.now)
    mem.running.drivers -= 1


def page_cache(mem, fills, every_ns):
    """Movable allocations landing in free, non-isolated CMA pageblocks (page cache growth).

    Up to ``fills`` of them, one every ``every_ns``, while any driver is still running.
    """
    for _ in range(fills):
        yield work(every_ns)
        if not mem.running.drivers:
            return
        yield mem.zone_lock.spin_lock()
        for b in mem.blocks:
            if b.content == "free" and b.isolated_by is None:
                b.content = "movable"
                break
        yield mem.zone_lock.spin_unlock()


def pinner(mem, pins, pin_ns, gap_ns, chunks=4):
    """get_user_pages for DMA: pin a movable pageblock's pages, transfer, unpin, pause.

    The transfer is ``chunks`` scatter-gather segments of ``pin_ns / chunks`` each: the
    pages stay pinned across all of them.
    """
    m = mem.m
    for _ in range(pins):
        if not mem.running.drivers:
            return
        movable = [i for i, b in enumerate(mem.blocks) if b.content == "movable"]
        if movable:
            i = movable[int(m.rng.integers(len(movable)))]
            b = mem.blocks[i]
            yield note(f"get_user_pages pins pageblock {i}")
            if b.content == "movable":
                b.content = "pinned"
            for _ in range(chunks):
                yield work(pin_ns // chunks)
            if b.content == "pinned":
                yield note(f"put_page unpins pageblock {i}")
                b.content = "movable"
        yield work(gap_ns)


def check_bitmaps(mem, live):
    """H-inv1 at the end: every set bit belongs to a live allocation, and vice versa."""
    for area in mem.areas:
        for i, tag in enumerate(area.cma.bitmap):
            blk = mem.blocks[area.base + i]
            owner = blk.owner if blk.content == "cma" else None
            kassert(tag == owner and (tag is None or tag in live),
                    f"H-inv1: bitmap leak: bit {i} of cma{area.index} is "
                    f"{'set for ' + tag if tag else 'clear'} but its pageblock is "
                    f"{'held by ' + owner if owner else 'not allocated'}")


def percentile(values, q):
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0
    s = sorted(values)
    return s[max(0, min(len(s) - 1, -(-q * len(s) // 100) - 1))]


def report(m, mem):
    st = mem.stats
    m.metric("allocations", st["ok"])
    m.metric("failed_allocations", st["failed"])
    m.metric("ebusy_retries", st[EBUSY])
    m.metric("eagain_retries", st[EAGAIN])
    m.metric("release_latency_p99_ns", percentile(st["release"], 99))
    m.metric("run_alloc_latency_p99_ns", percentile(st["latency"], 99))
    m.metric("run_throughput_per_s", st["ok"] * 1e9 / st["end_ns"] if st["end_ns"] else 0.0)
    # The steady state: after the warm-up, before the first allocator runs out of work
    # (a call is "asked for" when it starts and "done" when it returns; see steady_state).
    log = mem.call_log
    w = steady_state([a for a, _, _ in log], [b for _, b, _ in log], [b for _, b, _ in log])
    if w is None or w.releases == 0:  # too little work for a window: the whole run
        m.metric("alloc_latency_p50_ns", percentile(st["latency"], 50))
        m.metric("alloc_latency_p99_ns", percentile(st["latency"], 99))
        m.metric("throughput_per_s", m.metrics["run_throughput_per_s"])
        return
    done = sum(1 for _, ends, ok in log for e, good in zip(ends, ok)
               if good and w.start_ns <= e < w.end_ns)
    m.metric("alloc_latency_p50_ns", w.wait_p50_ns)
    m.metric("alloc_latency_p99_ns", w.wait_p99_ns)
    m.metric("throughput_per_s", done * 1e9 / (w.end_ns - w.start_ns))
    m.metric("window.start_ns", w.start_ns)
    m.metric("window.end_ns", w.end_ns)


def _costs(params):
    return {name: params[name] for name in COSTS}


# -- scenarios ---------------------------------------------------------------------------------


@scenario(
    variants={
        "v16-2011": "patch under review: cma_mutex around bitmap + alloc_contig_range, no retry",
        "mainline-3.5": "cma_mutex around the whole retry loop (-EAGAIN retried like -EBUSY)",
        "3.16": "per-area cma->lock for the bitmap, cma_mutex only around alloc_contig_range",
        "per-area": "spinlock cma->lock for the bitmap, per-area alloc_mutex",
        "no-mutex": "what-if: concurrent alloc_contig_range; isolation collisions retry",
        "no-clear-on-failure": "mutant of 3.16: the retry path leaves its bits set",
        "eagain-abort": "mutant (literal 3.5): -EAGAIN from a pinned page aborts the allocation",
    },
    params={"allocators": 2, "ops": 1, "areas": 1, "area_blocks": 4, "movable_blocks": 2,
            "max_request_blocks": 1, "align_blocks": 1, "max_order_blocks": 2,
            "hold_ns": 100_000_000, "think_ns": 50_000_000,
            "pins": 1, "pin_ns": 20_000_000, "pin_gap_ns": 10_000_000,
            "fills": 1, "fill_every_ns": 30_000_000, **COSTS},
    param_help={
        "allocators": "driver threads allocating and releasing CMA buffers",
        "ops": "allocate/use/release cycles per allocator",
        "areas": "CMA areas (allocator i uses area i mod areas)",
        "area_blocks": "pageblocks per area (one bitmap bit each)",
        "movable_blocks": "pageblocks of each area lent to movable pages at the start",
        "max_request_blocks": "requests are 1..this many pageblocks",
        "align_blocks": "alignment of a request, in pageblocks (a power of two)",
        "max_order_blocks": "isolation is widened to this many pageblocks (MAX_ORDER)",
        "hold_ns": "how long a driver keeps its buffer",
        "think_ns": "gap between a release and the next allocation",
        "pins": "get_user_pages pins of movable blocks (0: none)",
        "pin_ns": "how long a pin lasts",
        "pin_gap_ns": "gap before each pin",
        "fills": "page-cache allocations into free CMA blocks",
        "fill_every_ns": "gap between page-cache fills",
    },
    description="CMA allocate/release under five lock designs and two mutants")
def alloc_release(m, variant, allocators, ops, areas, area_blocks, movable_blocks,
                  max_request_blocks, align_blocks, max_order_blocks, hold_ns, think_ns,
                  pins, pin_ns, pin_gap_ns, fills, fill_every_ns, **costs):
    if allocators < 1 or areas < 1 or area_blocks < 1 or ops < 0:
        raise ValueError("need allocators, areas, area_blocks >= 1 and ops >= 0")
    if align_blocks < 1 or align_blocks & (align_blocks - 1):
        raise ValueError(f"align_blocks must be a power of two, got {align_blocks}")
    if max_order_blocks < 1 or area_blocks % max_order_blocks:
        raise ValueError("area_blocks must be a multiple of max_order_blocks (areas are "
                         "MAX_ORDER aligned)")
    if not 1 <= max_request_blocks <= area_blocks:
        raise ValueError("max_request_blocks must lie in 1..area_blocks")
    design = make_design(m, variant, max_order_blocks)
    mem = Memory(m, design, areas, area_blocks, min(movable_blocks, area_blocks), _costs(costs))
    mem.running.drivers = allocators
    for i in range(allocators):
        m.spawn(allocator(mem, mem.areas[i % areas], i, ops, max_request_blocks,
                          align_blocks - 1, hold_ns, think_ns), name=f"driver{i}")
    if pins:
        m.spawn(pinner(mem, pins, pin_ns, pin_gap_ns), name="gup")
    if fills:
        m.spawn(page_cache(mem, fills, fill_every_ns), name="pagecache")

    def at_end():
        check_bitmaps(mem, live=())
        report(m, mem)
    m.on_quiescence(at_end)


@scenario(
    variants={
        "mainline-3.5": "release from the ION shrinker takes cma_mutex, held by the allocator",
        "3.16": "release takes only cma->lock: the shrinker may run under cma_mutex",
    },
    params={"headroom_pages": 64, "watermark_pages": 32, "eat_steps": 4, "camera": 1,
            **COSTS},
    param_help={
        "headroom_pages": "free pages outside CMA at the start",
        "watermark_pages": "below this many free pages, allocations enter direct reclaim",
        "eat_steps": "steps in which the page-cache reader eats the headroom",
        "camera": "1: a second driver allocates and releases concurrently",
    },
    description="ION shrinker releasing CMA from direct reclaim under cma_mutex")
def shrinker_reentry(m, variant, headroom_pages, watermark_pages, eat_steps, camera, **costs):
    if eat_steps < 1:
        raise ValueError("eat_steps must be at least 1")
    design = make_design(m, variant, 2)
    # Block 0 holds the ION heap's cached chunk; block 1 is lent to movable pages.
    mem = Memory(m, design, 1, 4, 0, _costs(costs))
    area = mem.areas[0]
    mem.blocks[0].content, mem.blocks[0].owner = "cma", "ion-cache"
    area.cma.bitmap = ("ion-cache", None, None, None)
    mem.blocks[1].content = "movable"
    free = m.shared("zone_free", pages=headroom_pages)
    ion = m.shared("ion_secure_heap", cached=True)

    def direct_reclaim():
        if free.pages >= watermark_pages:
            return
        yield mem.reclaim.acquire()                 # __perform_reclaim: in reclaim now
        if ion.cached:                              # shrink_slab -> ION secure CMA shrinker
            ion.cached = False
            yield from cma_release(mem, area, 0, 1, "ion-cache")
            free.pages += 1024
        yield mem.reclaim.release()
    mem.direct_reclaim = direct_reclaim

    m.spawn(ion_heap(mem, area, variant), name="ion")
    m.spawn(page_cache_reader(free, headroom_pages, eat_steps), name="reader")
    if camera:
        m.spawn(camera_driver(mem, area), name="camera")

    def at_end():
        check_bitmaps(mem, live=("ion-cache",) if ion.cached else ())
        report(m, mem)
    m.on_quiescence(at_end)


def ion_heap(mem, area, variant):
    """Register the shrinker (priming witness with what it takes), then allocate a buffer."""
    yield mem.reclaim.acquire()
    for name in SHRINKER_TAKES[variant]:
        yield might_lock(_lock_named(mem, area, name))
    yield mem.reclaim.release()
    p = yield from cma_alloc(mem, area, 1, 0, "ion")
    if p is not None:
        yield from cma_release(mem, area, p, 1, "ion")


def camera_driver(mem, area):
    p = yield from cma_alloc(mem, area, 1, 0, "camera")
    if p is not None:
        yield from cma_release(mem, area, p, 1, "camera")


def page_cache_reader(free, pages, steps):
    """A reader filling the page cache: eats the free headroom in ``steps`` steps."""
    for _ in range(steps):
        yield work(1_000_000)
        free.pages -= pages // steps


def _lock_named(mem, area, name):
    if name == "zone->lock":
        return mem.zone_lock
    if name == "cma_mutex":
        return mem.design["cma_mutex"]
    return area.bitmap_lock


# What each variant must show, checked by ``pytest --smpvm`` (smpvm.testing): the bugs
# reproduce in their variants and the fixes show none.
EXPECT = {
    "alloc_release": {"v16-2011": {"clean": 200},
                      "mainline-3.5": {"clean": 200},
                      "3.16": {"clean": 200},
                      "per-area": {"clean": 200},
                      "no-mutex": {"clean": 200},
                      "no-clear-on-failure": {"finds": "assertion", "runs": 300},
                      "eagain-abort": {"finds": "assertion", "runs": 300}},
    "shrinker_reentry": {"mainline-3.5": {"finds": "recursion", "runs": 300},
                         "3.16": {"clean": 300}},
}
