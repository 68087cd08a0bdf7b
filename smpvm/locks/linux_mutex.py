"""Linux ``struct mutex``: sleeping, FIFO wait list, never recursive.

Taking it again while holding it is a self-deadlock in the kernel; here it is
reported as ``recursion`` (the CMA shrinker re-entry is exactly this).
"""

from ..ops import ISSUED
from .base import Lock


class Mutex(Lock):
    """Linux ``struct mutex``: sleeping, FIFO waiters, never recursive; not in atomic context."""
    kind = "mutex"
    sleepable = True
    waiters_spin = False
    fifo = True

    def mutex_lock(self):
        """``yield mtx.mutex_lock()`` (or ``lock()``): take it, sleeping while another holds it."""
        ISSUED[0] += 1
        return self._lock_x

    def mutex_trylock(self):
        """``ok = yield mtx.mutex_trylock()`` (or ``trylock()``): never waits."""
        return self._op("x", trylock=True)

    def mutex_unlock(self):
        """``yield mtx.mutex_unlock()`` (or ``unlock()``): release it to the first waiter."""
        ISSUED[0] += 1
        return self._unlock_x

    lock = mutex_lock
    trylock = mutex_trylock
    unlock = mutex_unlock
