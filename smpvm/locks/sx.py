"""FreeBSD shared/exclusive lock (``sx``), which may be held across a sleep.

Waiters sleep.  New shared lockers queue behind a waiting exclusive locker,
so a reader that re-enters while a writer waits deadlocks, as it does in the
kernel; witness therefore lets sx readers take part in cycles.
"""

from ..ops import ISSUED
from .base import Lock


class Sx(Lock):
    kind = "sx"
    sleepable = True
    waiters_spin = False
    shared_allowed = True

    def xlock(self):
        ISSUED[0] += 1
        return self._lock_x

    def slock(self):
        return self._op("s")

    def try_xlock(self):
        return self._op("x", trylock=True)

    def try_slock(self):
        return self._op("s", trylock=True)

    def xunlock(self):
        ISSUED[0] += 1
        return self._unlock_x

    def sunlock(self):
        return self._rel("s")

    def unlock(self):
        """Release whichever mode is held (``sx_unlock``)."""
        return self._rel(None)
