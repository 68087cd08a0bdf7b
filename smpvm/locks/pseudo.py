"""Pseudo-locks: lockdep maps that exist only for ordering.

Linux annotates "this code may enter memory reclaim" by taking a pseudo-lock
(``fs_reclaim``) for a moment, and runs shrinkers with it held.  A real lock
taken in both places then closes a cycle in the lock-order graph even in a
run where reclaim never calls a shrinker: the deadlock is found from the
*possibility*.  A ``LockMap`` never contends; ``might_lock(lock)`` checks the
order of taking ``lock`` without taking it.
"""

from ..ops import ISSUED, Op
from .base import Lock


class LockMap(Lock):
    """A lockdep map: a pseudo-lock for ordering only, never contended, never a sleep hazard."""
    kind = "lockdep map"
    recursive = True
    #: Exists for ordering only: never contended, never a sleep hazard.
    pseudo = True

    def can_grant(self, c, mode):
        """Always: a map never makes anyone wait."""
        return True

    def acquire(self):
        """``yield map.acquire()``: ``lock_map_acquire``, enter the context the map stands for."""
        ISSUED[0] += 1
        return self._lock_x

    def release(self):
        """``yield map.release()``: ``lock_map_release``."""
        ISSUED[0] += 1
        return self._unlock_x

    def might_enter(self):
        """Take and drop the map at once: "this call may enter that context"."""
        ISSUED[0] += 1
        return MightLock(self)


class MightLock(Op):
    """Witness checks the acquisition of ``lock`` without taking it (``might_lock``)."""

    __slots__ = ("lock",)

    def __init__(self, lock):
        self.lock = lock

    def execute(self, m, c):
        m.witness.before_acquire(c, self.lock, "x", False, m.site(c) if m.sites else "")
        return None


def might_lock(lock):
    """``yield might_lock(lk)``: witness checks taking ``lk`` here, without taking it (lockdep's ``might_lock``)."""
    ISSUED[0] += 1
    return MightLock(lock)
