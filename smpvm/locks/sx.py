"""FreeBSD shared/exclusive lock (``sx``), which may be held across a sleep.

Waiters sleep.  New shared lockers queue behind a waiting exclusive locker,
so a reader that re-enters while a writer waits deadlocks, as it does in the
kernel; witness therefore lets sx readers take part in cycles.
"""

from ..ops import ISSUED
from .base import Lock


class Sx(Lock):
    """FreeBSD ``sx`` lock: shared/exclusive, sleeping waiters, may be held across a sleep."""
    kind = "sx"
    sleepable = True
    waiters_spin = False
    shared_allowed = True

    def xlock(self):
        """``yield sx.xlock()``: take it exclusively (``sx_xlock``); may sleep."""
        ISSUED[0] += 1
        return self._lock_x

    def slock(self):
        """``yield sx.slock()``: take it shared (``sx_slock``); queues behind a waiting writer."""
        return self._op("s")

    def try_xlock(self):
        """``ok = yield sx.try_xlock()``: ``sx_try_xlock``, never waits."""
        return self._op("x", trylock=True)

    def try_slock(self):
        """``ok = yield sx.try_slock()``: ``sx_try_slock``, never waits."""
        return self._op("s", trylock=True)

    def xunlock(self):
        """``yield sx.xunlock()``: release an exclusive hold (``sx_xunlock``)."""
        ISSUED[0] += 1
        return self._unlock_x

    def sunlock(self):
        """``yield sx.sunlock()``: release a shared hold (``sx_sunlock``)."""
        return self._rel("s")

    def unlock(self):
        """Release whichever mode is held (``sx_unlock``)."""
        return self._rel(None)
