"""FreeBSD 4.x pager I/O: a disk's completion interrupt racing ``vm_object_terminate``.

The page daemon writes a dirty page of a VM object to swap asynchronously:
it counts the write in the object's ``paging_in_progress`` (``pip``), hands
the buffer to the disk and goes on scanning (on CPU1, while the run starts).  When the disk is done it
interrupts a CPU, and ``biodone`` at ``splbio`` calls the pager's completion
routine (``swp_pager_async_iodone``), which drops ``pip`` and, if the object
has ``OBJ_PIPWNT`` set and ``pip`` reached 0, clears the flag and wakes the
object's sleepers.

Meanwhile the process that maps the object exits and drops the last
reference.  ``vm_object_terminate`` marks the object ``OBJ_DEAD`` and must
wait until no pager I/O is in flight before it frees the object
(``vm_object_pip_wait``): while ``pip`` is non-zero it sets ``OBJ_PIPWNT``
and sleeps on the object.  In 4.x the test and the sleep sit inside
``splvm()`` (which masks bio interrupts too), and the test is made again
under it: otherwise the completion interrupt can run between the test and
the ``tsleep``, drop ``pip`` to 0 and find no ``OBJ_PIPWNT`` (or wake nobody),
and the terminator sleeps for ever.  Sources: the 4.x ``vm_object.h``
inlines ``vm_object_pip_wakeup``, ``vm_object_pip_sleep`` and
``vm_object_pip_wait`` [src]; the async swap pager's completion dropping
``pip`` at interrupt time [recalled: ``swap_pager.c``,
``swp_pager_async_iodone``].

The disk is a SimPy process beside the CPUs (``m.env.process``): it takes
buffers from a ``simpy.Store``, waits its latency with ``env.timeout`` and
raises the completion interrupt on CPU0 with ``m.interrupt``.  Which CPU
steps, and so how far simulated time has moved when the interrupt arrives,
is the strategy's choice: the race is found by the engine's scheduling.

Variants:

* ``buggy``: ``vm_object_pip_wait`` without ``splvm``: the interrupt lands
  between the test of ``pip`` and the sleep, the wakeup is lost, and the
  terminator sleeps on the object with no wakeup to come (a deadlock).
* ``fixed``: the 4.x code: the test again under ``splvm``; the interrupt
  waits until the terminator is asleep (a sleeping CPU idles at spl0), and
  its wakeup finds the sleeper.  The object is freed once, with no I/O in
  flight.
"""

from __future__ import annotations

import simpy

from smpvm import SPLBIO, Zone, kassert, note, scenario, splvm, splx, tsleep, wakeup, work

#: No locks: a 4.x kernel protected these paths with spl levels alone.
LOCK_ORDER: list = []

#: What ``pytest`` checks of this file (smpvm's plugin): the lost wakeup is found, the fix is
#: clean (random and PCT runs: an exhaustive search would not enumerate the disk's timing).
EXPECT = {
    "pageout_vs_terminate": {"buggy": {"finds": "deadlock", "runs": 300},
                             "fixed": {"clean": 300}},
}

#: vm_object flags (4.x vm_object.h).
OBJ_DEAD = 0x0008
OBJ_PIPWNT = 0x0040

#: The page daemon's scan of one page [assumed].
SCAN_NS = 2_000
#: The exit path before the last reference goes (vmspace teardown) [assumed].
EXIT_NS = 3_000
#: Disk write latency: a fast disk of the era, scaled down [assumed].
DISK_NS = 5_000
#: ``biodone`` and the pager's page bookkeeping before ``pip`` drops [assumed].
IODONE_NS = 300
#: Freeing the object's pages once nothing is in flight [assumed].
TERMINATE_NS = 1_000


class Bio:
    """An asynchronous swap write of one page of ``obj``."""

    __slots__ = ("obj",)

    def __init__(self, obj):
        self.obj = obj


def disk(m, queue, latency_ns):
    """The disk: a SimPy process serving writes in order, interrupting CPU0 at splbio."""
    while True:
        bio = yield queue.get()
        yield m.env.timeout(latency_ns)
        m.interrupt(0, SPLBIO, lambda: swp_pager_async_iodone(bio), name="disk")


def swp_pager_async_iodone(bio):
    """Completion at interrupt time: the page is clean, and ``pip`` drops (``vm_object_pip_wakeup``)."""
    obj = bio.obj
    yield work(IODONE_NS)
    pip = (yield obj.load("paging_in_progress")) - 1
    yield obj.store("paging_in_progress", pip)
    flags = yield obj.load("flags")
    if flags & OBJ_PIPWNT and pip == 0:
        yield obj.store("flags", flags & ~OBJ_PIPWNT)
        yield wakeup(obj)


def start_pageout(queue, obj):
    """The page daemon's async write of a page of ``obj`` (made before the run starts)."""
    obj.paging_in_progress += 1      # vm_object_pip_add
    queue.put(Bio(obj))              # swap_pager_putpages: the disk has it now


def pagedaemon(pages):
    """The page daemon goes on scanning other objects' pages while the write is in flight."""
    yield note("async pageout of a page of the object in flight")
    for _ in range(pages):
        yield work(SCAN_NS)


def vm_object_pip_sleep(obj, masked):
    """Sleep until ``pip`` drops; the test again under ``splvm`` when ``masked``."""
    if (yield obj.load("paging_in_progress")):
        s = (yield splvm()) if masked else None
        if not masked or (yield obj.load("paging_in_progress")):
            flags = yield obj.load("flags")
            yield obj.store("flags", flags | OBJ_PIPWNT)
            yield tsleep(obj)
        if masked:
            yield splx(s)


def exiting(zone, obj, masked):
    """The exiting process drops the last reference: ``vm_object_terminate``."""
    yield work(EXIT_NS)
    obj.ref_count -= 1
    obj.flags |= OBJ_DEAD
    yield note("last reference gone: vm_object_terminate")
    while (yield obj.load("paging_in_progress")):  # vm_object_pip_wait
        yield from vm_object_pip_sleep(obj, masked)
    kassert(obj.paging_in_progress == 0, "vm_object_terminate: pageout in progress")
    yield work(TERMINATE_NS)
    yield zone.free(obj)


@scenario(
    variants={
        "buggy": "vm_object_pip_wait without splvm: the completion interrupt's wakeup is lost",
        "fixed": "4.x vm_object_pip_sleep: test again under splvm, then sleep",
    },
    params={"disk_ns": DISK_NS, "pages": 4},
    param_help={"disk_ns": "disk write latency (ns)",
                "pages": "pages the page daemon scans on CPU1 while the write is in flight"},
    cpus=2,
    description="async pageout completion at splbio (a SimPy disk) vs vm_object_terminate")
def pageout_vs_terminate(m, variant, disk_ns, pages):
    if disk_ns < 0 or pages < 0:
        raise ValueError("disk_ns and pages must be >= 0")
    zone = Zone(m, "VM OBJECT", {"ref_count": 0, "flags": 0, "paging_in_progress": 0},
                type_name="vm_object", nofree=True)
    obj = zone.new(ref_count=1)
    queue = simpy.Store(m.env)
    m.env.process(disk(m, queue, disk_ns))
    start_pageout(queue, obj)
    m.spawn(exiting(zone, obj, masked=variant == "fixed"), name="exit", cpu=0)
    m.spawn(pagedaemon(pages), name="pagedaemon", cpu=1)
