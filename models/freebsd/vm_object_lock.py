"""The VM object lock on the page-fault path: one mutex, or a reader/writer lock.

Many threads take soft page faults on resident pages of one shared object
(a shared library's text, a file mapped by every compiler of a parallel
build).  Each fault looks the page up in the object and maps it.  Until 2013
FreeBSD protected every object with a default mutex, so those faults ran
one at a time.  attilio's conversion (89f6b863, March 2013) turned the lock
into an rwlock, but with every old lock call mapped to the write side, so by
itself it changed nothing.  kib's fault fast path (afe55ca373) is what used
the read side: when the page is resident, fully valid and the fault needs no
change to the object, the fault holds the lock shared and maps the page
without sleeping; anything else drops the read lock and starts over
write-locked.  mjg later read-locked the backing objects as well
(fdb1dbb1cc06, review D38964): lock profiling of a ``-j104 buildkernel`` on
tmpfs fell from 71.4M to 19.9M for ``rw:vmobject``, and the commit still
names the cache-line traffic of read locking as unsolved.

Threads: ``cpus`` faulting threads, each doing ``faults`` faults on random
pages of one object (a read fault with probability ``read_fraction``, else
a write fault), with ``think_ns`` of user work between faults; and a
pageout daemon that frees ``pageouts`` resident pages, one after each
``pageout_interval_ns`` pause (``pageouts=0``: no daemon).  A fault on a
page that is not resident pages it in on the slow path.  The defaults
(three faulters, four faults each) keep schedule exploration fast; a
throughput study raises ``cpus`` and ``faults`` (64 x 50 faults run in well
under a second) and usually sets ``pageouts=0`` so that ``read_fraction``
alone decides the write share.

Variants:

``mutex``
    Before 2013: every fault holds the per-object default mutex.
``rwlock``
    The read-locked fast path for read faults on valid resident pages; the
    write lock for write faults (they must update (O)-fields: the page's
    dirty bits, the object's might-be-dirty flag), page-ins and the daemon.
    A fault that finds on the fast path that it cannot finish there drops
    the read lock, takes the write lock and looks the page up again.
``reader-writes``
    Bug class D1: the fast path also takes write faults and sets the (O)
    fields under the read lock.  The lockset check (a write of an
    object-lock-guarded field needs the lock held exclusively) reports it
    the first time it happens, whether or not an update is lost.
``no-revalidate``
    Bug class D2: after dropping the read lock and taking the write lock
    the fault keeps using the page it found under the read lock.  When the
    pageout daemon freed that page in between, the fault touches freed
    memory: a use-after-free.

Both good variants report ``faults_per_ms`` (faults completed per
millisecond of simulated time, up to the last faulter's end),
``fault_latency_mean_ns``, ``fast_path_faults`` / ``slow_path_faults``,
``page_ins`` and ``pages_freed``, and the run's lock statistics show waits
and holds of the "vm object" class.  Meaningful times need the default ``timed`` strategy.

Reader cache-line cost.  Every lock acquisition already pays the engine's
flat costs (``costs.acquire_ns``, plus ``costs.cacheline_ns`` when another
CPU touched the lock last), for every lock kind alike.  What a mutex does
not have and a read-mostly rwlock does is that *every* reader writes the
lock word twice (the atomic add in rlock and the subtract in runlock), so
with many readers the line moves on nearly every operation, and a cache line
moves to one CPU at a time.  The model charges that as a serialized
resource: each reader rlock/runlock that finds the line last written by
another CPU waits for the line to be free and then ``reader_cacheline_ns``
to move it, as ``work()`` right after rlock and right before runlock (so it
counts in the read hold, which is what a waiting writer sees).  With one
CPU it costs nothing; ``reader_cacheline_ns=0`` gives an idealised rwlock.
``--set costs.cacheline_ns=...`` changes the engine's flat transfer for all
locks instead.

Invariants: D-inv1 (a page mapped is, at that moment, resident in the
object, valid and accessed under the object lock) as an assertion; D-inv2
(no sleep with the rwlock held: page allocation under the lock is
non-sleeping, the daemon pauses with nothing held) by witness; D-inv3 by
the zones' lockset guards on the (O)-fields.

Sources, in words: attilio's 89f6b863 conversion of the object mutex to an
rwlock; kib's afe55ca373 read-locked fault fast path and its conditions
(valid resident page, no object update, no sleep in pmap_enter); mjg's
fdb1dbb1cc06 / D38964 lock-profiling numbers and its remark on read-lock
cache-line traffic; the (O) field annotations of ``vm_page.h``.  Costs
are assumptions of the specification (soft fault 0.5-2 us, a contended
cache-line transfer ~100 ns).
"""

from smpvm import RwLock, SleepMutex, Zone, kassert, may_sleep, scenario, steady_state, work

#: The lock class of every VM object's lock (a mutex before 2013, an rwlock after).
OBJECT_LOCK = "vm object"
#: Only one lock class is taken at a time on these paths.
LOCK_ORDER = []

#: Object flag set by the first write fault (an (O)-field update).
OBJ_MIGHTBEDIRTY = 0x1

VARIANTS = {
    "mutex": "pre-2013: every fault holds the per-object default mutex",
    "rwlock": "read-locked fast path for valid resident pages, write lock for the rest",
    "reader-writes": "D1: the fast path writes (O)-fields under the read lock (lockset)",
    "no-revalidate": "D2: the relock after the read lock uses the page found earlier "
                     "(use-after-free)",
}

PARAMS = {
    "cpus": 3,
    "faults": 4,
    "read_fraction": 0.9,
    "npages": 3,
    "fast_path_ns": 300,
    "writer_hold_ns": 1000,
    "reader_cacheline_ns": 100,
    "think_ns": 1000,
    "pageouts": 4,
    "pageout_interval_ns": 20_000,
}

PARAM_HELP = {
    "cpus": "faulting threads, one per CPU (the pageout daemon runs on one more)",
    "faults": "faults per faulting thread",
    "read_fraction": "share of faults that are read faults (fast-path candidates)",
    "npages": "pages of the shared object",
    "fast_path_ns": "lookup + pmap_enter of a resident page",
    "writer_hold_ns": "write-lock hold of a slow-path fault (zero-fill, dirtying)",
    "reader_cacheline_ns": "serialized lock-word transfer per reader rlock/runlock when "
                           "another CPU wrote it last",
    "think_ns": "user work between two faults of a thread",
    "pageouts": "pages the pageout daemon frees (0: no daemon)",
    "pageout_interval_ns": "pause of the pageout daemon before each page it frees",
}


class LockLine:
    """The cache line of the object lock word, as readers contend for it.

    ``owner`` is the thread whose cache holds the line; ``free_at_ns`` is
    when the transfer in progress (if any) completes.
    """

    def __init__(self, m, transfer_ns: int):
        self.m = m
        self.transfer_ns = transfer_ns
        self.owner = -1
        self.free_at_ns = 0

    def reader_touch(self, me: int):
        """A reader's atomic on the lock word: wait for the line if it is elsewhere."""
        if self.owner == me or not self.transfer_ns:
            self.owner = me
            return
        now = self.m.now
        done = max(now, self.free_at_ns) + self.transfer_ns
        self.free_at_ns = done
        self.owner = me
        yield work(done - now)

    def claim(self, me: int) -> None:
        """A writer took the line (the engine charged its transfer)."""
        self.owner = me


class SharedObject:
    """One VM object, its pages, its lock, and the run's tallies."""

    def __init__(self, m, variant: str, npages: int):
        self.m = m
        self.variant = variant
        self.npages = npages
        if variant == "mutex":
            self.lock = SleepMutex(m, OBJECT_LOCK, instance="shared")
        else:
            self.lock = RwLock(m, OBJECT_LOCK, instance="shared")
        guard = self._guard
        self.obj_zone = Zone(m, "VM OBJECT", {"pages": (), "resident_page_count": 0, "flags": 0},
                             type_name="vm_object",
                             guards={"pages": guard, "resident_page_count": guard,
                                     "flags": guard})
        # Page structures are type-stable (vm_page_array): freed pages are reused.
        self.page_zone = Zone(m, "vm_page", {"pindex": -1, "valid": False, "dirty": False},
                              type_name="vm_page", nofree=True,
                              guards={"valid": guard, "dirty": guard})
        self.obj = self.obj_zone.new(pages=(None,) * npages)
        for p in range(npages):
            self.insert(self.page_zone.new(pindex=p, valid=True))
        #: Faulting threads still running (the daemon stops when none is).
        self.active = 0
        #: Simulated time when the last faulter finished.
        self.end_ns = 0
        self.latency_total_ns = 0
        self.faults_done = 0
        #: Per faulter: (start times, end times) of its faults, for the steady state.
        self.fault_log = []

    def _guard(self, fields):
        return self.lock

    # -- object page list: (O)-fields, the caller holds the lock as needed -------------

    def lookup(self, pindex: int):
        return self.obj.pages[pindex]

    def insert(self, page) -> None:
        pages = list(self.obj.pages)
        kassert(pages[page.pindex] is None, f"page {page.pindex} inserted twice")
        pages[page.pindex] = page
        self.obj.pages = tuple(pages)
        self.obj.resident_page_count += 1

    def remove(self, page) -> None:
        pages = list(self.obj.pages)
        pages[page.pindex] = None
        self.obj.pages = tuple(pages)
        self.obj.resident_page_count -= 1

    def check_mappable(self, page, pindex: int) -> None:
        """D-inv1: the page about to be mapped is this object's, resident and valid."""
        resident = self.lookup(pindex)
        if not (page.valid and resident is not None and resident.same_memory(page)):
            kassert(False, f"D-inv1: mapping page {pindex} that is not resident and valid "
                           f"in the object")


# -- the fault paths -------------------------------------------------------------------------


def fault_mutex(so: SharedObject, pindex: int, write: bool, p):
    """Pre-2013: lookup, page-in if needed and map, all under the object mutex."""
    yield so.lock.lock()
    page = so.lookup(pindex)
    if page is None or write:
        page = yield from _slow_under_lock(so, pindex, write, page, p)
    else:
        so.m.count("fast_path_faults")
        yield work(p["fast_path_ns"])
    so.check_mappable(page, pindex)
    yield so.lock.unlock()


def fault_rw(so: SharedObject, line: LockLine, me: int, pindex: int, write: bool, p):
    """The read-locked attempt, then (if it cannot finish) the write-locked restart."""
    yield so.lock.rlock()
    yield from line.reader_touch(me)
    page = so.lookup(pindex)
    fast_ok = page is not None and page.valid and (not write or so.variant == "reader-writes")
    if fast_ok:
        if write:
            _dirty(so, page)  # D1 when reached here: (O)-fields under a shared hold
        yield work(p["fast_path_ns"])  # pmap_enter without sleeping
        so.check_mappable(page, pindex)
        so.m.count("fast_path_faults")
    yield from line.reader_touch(me)
    yield so.lock.runlock()
    if fast_ok:
        return
    yield so.lock.wlock()
    line.claim(me)
    if so.variant != "no-revalidate" or page is None:
        page = so.lookup(pindex)  # the object may have changed while it was unlocked
    page = yield from _slow_under_lock(so, pindex, write, page, p)
    so.check_mappable(page, pindex)
    yield so.lock.wunlock()


def _slow_under_lock(so: SharedObject, pindex: int, write: bool, page, p):
    """The slow path with the object locked exclusively: page in, dirty, map."""
    so.m.count("slow_path_faults")
    changed = write
    if page is None or not page.valid:
        # Non-sleeping allocation: sleeping with the object lock held is illegal.
        page = yield so.page_zone.alloc(wait=False, pindex=pindex)
        so.insert(page)
        page.valid = True
        so.m.count("page_ins")
        changed = True
    if write:
        _dirty(so, page)
    # A fault that lost the race to page it in only has to map the page.
    yield work(p["writer_hold_ns"] if changed else p["fast_path_ns"])
    return page


def _dirty(so: SharedObject, page) -> None:
    page.dirty = True
    so.obj.flags |= OBJ_MIGHTBEDIRTY


# -- threads --------------------------------------------------------------------------------


def faulter(so: SharedObject, line: LockLine, me: int, work_list, p):
    """One CPU's stream of faults with user work in between."""
    starts, ends = [], []
    so.fault_log.append((starts, ends))
    for pindex, write in work_list:
        start = so.m.now
        if so.variant == "mutex":
            yield from fault_mutex(so, pindex, write, p)
        else:
            yield from fault_rw(so, line, me, pindex, write, p)
        so.faults_done += 1
        so.latency_total_ns += so.m.now - start
        starts.append(start)
        ends.append(so.m.now)
        yield work(p["think_ns"])
    so.active -= 1
    if so.active == 0:
        so.end_ns = so.m.now


def pageout_daemon(so: SharedObject, line: LockLine, me: int, passes: int, interval_ns: int):
    """Free one resident page per pass, ``passes`` times, one pass per interval.

    The number of passes is fixed rather than "while the faulters run": a
    daemon that never blocks would otherwise spin forever under a strategy
    that keeps preferring it.
    """
    rng = so.m.rng
    for _ in range(passes):
        yield may_sleep(interval_ns, "pageout daemon pause")
        if so.active == 0:
            return
        if so.variant == "mutex":
            yield so.lock.lock()
        else:
            yield so.lock.wlock()
            line.claim(me)
        resident = [pg for pg in so.obj.pages if pg is not None]
        if resident:
            victim = resident[int(rng.integers(len(resident)))]
            so.remove(victim)
            victim.valid = False
            yield so.page_zone.free(victim)
            so.m.count("pages_freed")
        if so.variant == "mutex":
            yield so.lock.unlock()
        else:
            yield so.lock.wunlock()


# -- the scenario --------------------------------------------------------------------------------


@scenario(variants=VARIANTS, params=PARAMS, param_help=PARAM_HELP,
          description="page faults on one shared VM object: per-object mutex vs rwlock with a "
                      "read-locked fast path (89f6b863, afe55ca373)")
def faults(m, variant, cpus, faults, read_fraction, npages, fast_path_ns, writer_hold_ns,
           reader_cacheline_ns, think_ns, pageouts, pageout_interval_ns):
    _validate(cpus, faults, read_fraction, npages, pageouts, pageout_interval_ns,
              fast_path_ns, writer_hold_ns, reader_cacheline_ns, think_ns)
    threads = cpus + (1 if pageouts > 0 else 0)
    if m.ncpus is not None and m.ncpus < threads:
        raise ValueError(f"--cpus {m.ncpus} is fewer than the {threads} threads to run "
                         f"(cpus={cpus} faulters plus the pageout daemon); lower --set cpus "
                         f"or raise --cpus")
    p = {"fast_path_ns": fast_path_ns, "writer_hold_ns": writer_hold_ns, "think_ns": think_ns}
    so = SharedObject(m, variant, npages)
    line = LockLine(m, reader_cacheline_ns)
    so.active = cpus
    # Workloads are drawn up front so that a schedule changes only the interleaving.
    for me in range(cpus):
        pindexes = m.rng.integers(npages, size=faults).tolist()
        writes = (m.rng.random(faults) >= read_fraction).tolist()
        m.spawn(faulter(so, line, me, list(zip(pindexes, writes)), p), name=f"fault{me}")
    if pageouts > 0:
        m.spawn(pageout_daemon(so, line, cpus, pageouts, pageout_interval_ns), name="pagedaemon")
    m.on_quiescence(lambda: _report(m, so))


def _validate(cpus, faults, read_fraction, npages, pageouts, *durations):
    if cpus < 1 or faults < 1 or npages < 1:
        raise ValueError("cpus, faults and npages must be at least 1")
    if not 0.0 <= read_fraction <= 1.0:
        raise ValueError(f"read_fraction must be between 0 and 1, got {read_fraction}")
    if pageouts < 0 or any(d < 0 for d in durations):
        raise ValueError("pageouts and durations must be >= 0")


def _report(m, so: SharedObject) -> None:
    """Rates in the steady state (after the warm-up, before the first faulter ends), and
    over the whole run as ``run_*`` (where the drain counts as lost throughput)."""
    m.metric("faults", so.faults_done)
    if so.end_ns > 0:
        m.metric("run_faults_per_ms", round(so.faults_done * 1e6 / so.end_ns, 3))
    if so.faults_done:
        m.metric("run_fault_latency_mean_ns", round(so.latency_total_ns / so.faults_done, 1))
    # A fault is "asked for" when it starts and "done" when it ends (see steady_state).
    w = steady_state([s for s, _ in so.fault_log], [e for _, e in so.fault_log],
                     [e for _, e in so.fault_log])
    if w is not None:
        m.metric("faults_per_ms", round(w.throughput_per_ns * 1e6, 3))
        m.metric("fault_latency_mean_ns", round(w.wait_mean_ns, 1))
        m.metric("window.start_ns", w.start_ns)
        m.metric("window.end_ns", w.end_ns)


# What each variant must show, checked by ``pytest --smpvm`` (smpvm.testing): the bugs
# reproduce in their variants and the fixes show none.
EXPECT = {
    "faults": {"mutex": {"clean": 20},
               "rwlock": {"clean": 20},
               "reader-writes": {"finds": "assertion", "runs": 300},
               "no-revalidate": {"finds": "use-after-free", "runs": 300}},
}
