"""Linux ``struct rt_mutex``: the priority-inheriting sleeping mutex.

For ordering it is a mutex: sleeping, never recursive, waiters queued (the
real one orders them by priority; here, with no priorities, by arrival).
Priority inheritance itself changes who runs first, not which orders can
deadlock, so witness treats it exactly as lockdep does: like ``mutex``.
"""

from .base import Lock


class RtMutex(Lock):
    """Linux ``struct rt_mutex``: the priority-inheriting sleeping mutex, ordered like ``mutex``."""
    kind = "rt_mutex"
    sleepable = True
    waiters_spin = False
    fifo = True

    def rt_mutex_lock(self):
        """``yield rt.rt_mutex_lock()`` (or ``lock()``): take it, sleeping while another holds it."""
        return self._lock_x

    def rt_mutex_trylock(self):
        """``ok = yield rt.rt_mutex_trylock()`` (or ``trylock()``): never waits."""
        return self._op("x", trylock=True)

    def rt_mutex_unlock(self):
        """``yield rt.rt_mutex_unlock()`` (or ``unlock()``): release it."""
        return self._unlock_x

    lock = rt_mutex_lock
    trylock = rt_mutex_trylock
    unlock = rt_mutex_unlock
