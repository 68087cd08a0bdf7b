"""A 4.x-style disk driver: its buffer queue changed by the strategy routine without splbio.

A disk driver of the spl era keeps its requests in a queue in the softc:
the strategy routine (``xxstrategy``, thread context) appends a buffer with
``bufq_insert_tail`` and starts the device if it is idle (``xxstart``); the
completion interrupt (``xxintr``, at ``splbio``) marks the buffer at the
head done (``biodone``), removes it, and starts the next one.  Both sides
change the same queue, so the strategy routine does its part inside
``s = splbio(); ... splx(s)``: on a uniprocessor 4.x kernel the raised spl
is the lock that keeps the handler out.  This file is an illustrative
driver pattern, not a transcript of one driver: the shape every 4.x disk
driver's strategy routine has [recalled: ``bufq_insert_tail`` and
``xxstart`` under ``splbio`` in the era's ``ad``, ``da`` and ``wd``
drivers].

The queue is the 4.x ``TAILQ``: inserting at the tail reads the queue's
last element, links the new buffer after it (or makes it the first when
the queue is empty), then moves ``last``.  Without ``splbio`` the interrupt
can land between the read of ``last`` and the link: it completes and
removes the buffer that was last, leaving the queue empty, and the strategy
routine then links the new buffer behind a buffer no longer in the queue.
The device is idle with an empty queue, the new request is never started,
and ``biowait`` sleeps for ever on it: a deadlock, from one placement of the
interrupt among a few dozen.  Nothing about locks is wrong (there are
none), so witness has nothing to say: only the interrupt's placement finds
it.

The disk finishes the request in flight at a time nobody knows: the
completion interrupt is given the window ``"any"`` (any yield point of CPU0
while its thread runs), and the search places it (``smpvm explore
--strategy dfs`` tries every placement).

Variants:

* ``buggy``: ``bufq_insert_tail`` and ``xxstart`` at spl0.  Found: a
  ``deadlock`` (``biowait`` sleeps on the buffer with no wakeup to come).
* ``fixed``: the same under ``splbio``.  Clean; ``dfs`` covers every
  placement.
"""

from __future__ import annotations

from smpvm import SPLBIO, Zone, note, scenario, splbio, splx, tsleep, wakeup, work

#: No locks: the queue is protected by the spl level alone.
LOCK_ORDER: list = []

#: What ``pytest`` checks of this file (smpvm's plugin).
EXPECT = {
    "strategy_vs_intr": {"buggy": {"finds": "deadlock", "runs": 100},
                         "fixed": {"clean": "dfs"}},
}

#: ``getblk`` and filling in the buffer before the strategy routine [assumed].
GETBLK_NS = 1_000
#: The device's service time for one request [assumed].
DISK_NS = 20_000
#: ``biodone``'s bookkeeping at interrupt time [assumed].
BIODONE_NS = 300


def xxstart(m, sc):
    """Start the request at the head of the queue if the device is idle (at splbio)."""
    bp = yield sc.load("first")
    if bp is None or (yield sc.load("active")) is not None:
        return
    yield sc.store("active", bp)
    m.interrupt(0, SPLBIO, lambda: xxintr(m, sc), name="xxintr", at_ns=m.now + DISK_NS)


def xxintr(m, sc):
    """The completion interrupt: ``biodone`` the head, remove it, start the next."""
    bp = yield sc.load("active")
    yield work(BIODONE_NS)
    yield bp.store("done", 1)
    yield wakeup(bp)
    nxt = yield bp.load("next")                  # bufq_remove(&sc->bufq, bp)
    yield sc.store("first", nxt)
    if nxt is None:
        yield sc.store("last", None)
    yield sc.store("active", None)
    yield from xxstart(m, sc)


def xxstrategy(m, sc, bp, masked):
    """Queue ``bp`` and start the device if idle; under splbio when ``masked``."""
    s = (yield splbio()) if masked else None
    tail = yield sc.load("last")                 # bufq_insert_tail(&sc->bufq, bp)
    if tail is None:
        yield sc.store("first", bp)
    else:
        yield tail.store("next", bp)
    yield sc.store("last", bp)
    yield from xxstart(m, sc)
    if masked:
        yield splx(s)


def biowait(bp):
    """Sleep until the buffer is done (the test and the sleep under splbio)."""
    s = yield splbio()
    while not (yield bp.load("done")):
        yield tsleep(bp)
    yield splx(s)


def bread(m, sc, bufs, masked):
    """A read: get a buffer, hand it to the driver, wait for it."""
    yield work(GETBLK_NS)
    bp = bufs.new()
    yield from xxstrategy(m, sc, bp, masked)
    yield from biowait(bp)
    yield note("read done")


@scenario(
    variants={"buggy": "bufq_insert_tail and xxstart at spl0: the completion can land "
                       "inside the insert",
              "fixed": "the strategy routine under splbio"},
    cpus=1,
    description="disk strategy routine vs its completion interrupt, placed by the search")
def strategy_vs_intr(m, variant):
    """One read queued behind a request in flight whose completion may land anywhere."""
    bufs = Zone(m, "buf", {"next": None, "done": 0}, type_name="buf", nofree=True)
    sc = m.shared("xx_softc", first=None, last=None, active=None)
    inflight = bufs.new()                        # issued earlier: head of the queue, active
    sc.first = sc.last = sc.active = inflight
    m.interrupt_source("xxintr", SPLBIO, lambda: xxintr(m, sc), cpu=0, window="any")
    m.spawn(bread(m, sc, bufs, masked=variant == "fixed"), name="bread", cpu=0)
