"""FreeBSD reader/writer lock (``rwlock``), e.g. the VM object lock since 2013.

Not sleepable (same rule as a default mutex); waiters are adaptive.  Writers
are preferred, except that a thread already holding read locks may take
another read lock past waiting writers (the kernel allows this to avoid
self-deadlock).  ``try_upgrade`` succeeds only for the sole reader;
``downgrade`` turns a write hold into a read hold without releasing.
"""

from ..ops import ISSUED, Op
from .base import Lock


class _ModeChange(Op):
    """An operation on a hold of ``lock`` in one mode (``try_upgrade``, ``downgrade``)."""

    __slots__ = ("lock",)
    #: The mode the hold must have, and the operation's name for reports.
    needs, what = "s", ""

    def __init__(self, lock):
        self.lock = lock

    def hold(self, m, c):
        """The caller's hold of the lock, reported if it is missing or in the wrong mode."""
        h = c.holding(self.lock)
        if h is None or h.mode != self.needs:
            held = "read" if self.needs == "s" else "write"
            m.fail("unlock-not-held",
                   f"{self.what} of {self.lock.label()} not {held}-held by CPU{c.id}", c)
        return h


class _Upgrade(_ModeChange):
    __slots__ = ()
    needs, what = "s", "try_upgrade"

    def execute(self, m, c):
        lk = self.lock
        h = self.hold(m, c)
        m.footprint_touch(lk._fp_key)
        if lk.readers != {c.id: 1}:
            if m.tracing:
                m.record(c, "trylock-fail", lk.label(), "upgrade")
            return False
        del lk.readers[c.id]
        lk.owner = c
        h.mode = "x"
        if m.tracing:
            m.record(c, "acquire", lk.label(), "x (upgraded)")
        return True


class _Downgrade(_ModeChange):
    __slots__ = ()
    needs, what = "x", "downgrade"

    def execute(self, m, c):
        lk = self.lock
        h = self.hold(m, c)
        lk.owner = None
        lk.readers[c.id] = 1
        h.mode = "s"
        if m.tracing:
            m.record(c, "release", lk.label(), "x (downgraded to s)")
        m.footprint_touch(lk._fp_key)
        if lk.waiters:
            lk.handoff(m, c.clock)
        return None


class RwLock(Lock):
    """FreeBSD ``rwlock``: readers share, writers exclusive, the holder must not sleep."""
    kind = "rw"
    waiters_spin = None
    read_recursive = True
    shared_allowed = True

    def rlock(self):
        """``yield rw.rlock()``: take it for reading (``rw_rlock``)."""
        return self._op("s")

    def wlock(self):
        """``yield rw.wlock()``: take it for writing (``rw_wlock``)."""
        ISSUED[0] += 1
        return self._lock_x

    def try_rlock(self):
        """``ok = yield rw.try_rlock()``: ``rw_try_rlock``, never waits."""
        return self._op("s", trylock=True)

    def try_wlock(self):
        """``ok = yield rw.try_wlock()``: ``rw_try_wlock``, never waits."""
        return self._op("x", trylock=True)

    def runlock(self):
        """``yield rw.runlock()``: release a read hold (``rw_runlock``)."""
        return self._rel("s")

    def wunlock(self):
        """``yield rw.wunlock()``: release the write hold (``rw_wunlock``)."""
        ISSUED[0] += 1
        return self._unlock_x

    def try_upgrade(self):
        """``ok = yield rw.try_upgrade()``: ``rw_try_upgrade``, read hold to write hold if no other reader."""
        ISSUED[0] += 1
        return _Upgrade(self)

    def downgrade(self):
        """``yield rw.downgrade()``: ``rw_downgrade``, the write hold becomes a read hold."""
        ISSUED[0] += 1
        return _Downgrade(self)
