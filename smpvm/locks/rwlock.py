"""FreeBSD reader/writer lock (``rwlock``), e.g. the VM object lock since 2013.

Not sleepable (same rule as a default mutex); waiters are adaptive.  Writers
are preferred, except that a thread already holding read locks may take
another read lock past waiting writers (the kernel allows this to avoid
self-deadlock).  ``try_upgrade`` succeeds only for the sole reader;
``downgrade`` turns a write hold into a read hold without releasing.
"""

from ..ops import ISSUED, Op
from .base import Lock


class _Upgrade(Op):
    __slots__ = ("lock",)

    def __init__(self, lock):
        self.lock = lock

    def execute(self, m, c):
        lk = self.lock
        h = c.holding(lk)
        if h is None or h.mode != "s":
            m.fail("unlock-not-held", f"try_upgrade of {lk.label()} not read-held by CPU{c.id}", c)
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


class _Downgrade(Op):
    __slots__ = ("lock",)

    def __init__(self, lock):
        self.lock = lock

    def execute(self, m, c):
        lk = self.lock
        h = c.holding(lk)
        if h is None or h.mode != "x":
            m.fail("unlock-not-held", f"downgrade of {lk.label()} not write-held by CPU{c.id}", c)
        lk.owner = None
        lk.readers[c.id] = 1
        h.mode = "s"
        if m.tracing:
            m.record(c, "release", lk.label(), "x (downgraded to s)")
        m.footprint_touch(lk._fp_key)
        if lk.waiters:
            m.handoff(lk, c.clock)
        return None


class RwLock(Lock):
    kind = "rw"
    waiters_spin = None
    read_recursive = True
    shared_allowed = True

    def rlock(self):
        return self._op("s")

    def wlock(self):
        ISSUED[0] += 1
        return self._lock_x

    def try_rlock(self):
        return self._op("s", trylock=True)

    def try_wlock(self):
        return self._op("x", trylock=True)

    def runlock(self):
        return self._rel("s")

    def wunlock(self):
        ISSUED[0] += 1
        return self._unlock_x

    def try_upgrade(self):
        ISSUED[0] += 1
        return _Upgrade(self)

    def downgrade(self):
        ISSUED[0] += 1
        return _Downgrade(self)
