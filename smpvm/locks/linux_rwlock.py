"""Linux ``rwlock_t``: spinning reader/writer lock that prefers readers.

Readers get in whenever no writer holds the lock, even past waiting writers,
so readers may recurse freely and a steady stream of readers can starve a
writer (the 2.4 ``vmlist_lock`` behaviour).  The holder must not sleep.
"""

from ..ops import ISSUED
from .base import Lock


class RwlockT(Lock):
    """Linux ``rwlock_t``: spinning, reader-preferring; readers recurse freely and may starve writers."""
    kind = "rwlock_t"
    spin = True
    waiters_spin = True
    reader_preferring = True
    read_recursive = True
    shared_allowed = True

    def read_lock(self):
        """``yield rw.read_lock()``: take it for reading; passes waiting writers."""
        return self._op("s")

    def read_unlock(self):
        """``yield rw.read_unlock()``: release a read hold."""
        return self._rel("s")

    def write_lock(self):
        """``yield rw.write_lock()``: take it for writing, spinning until no reader holds it."""
        ISSUED[0] += 1
        return self._lock_x

    def write_unlock(self):
        """``yield rw.write_unlock()``: release the write hold."""
        ISSUED[0] += 1
        return self._unlock_x

    def read_trylock(self):
        """``ok = yield rw.read_trylock()``: never waits."""
        return self._op("s", trylock=True)

    def write_trylock(self):
        """``ok = yield rw.write_trylock()``: never waits."""
        return self._op("x", trylock=True)
