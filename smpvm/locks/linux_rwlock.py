"""Linux ``rwlock_t``: spinning reader/writer lock that prefers readers.

Readers get in whenever no writer holds the lock, even past waiting writers,
so readers may recurse freely and a steady stream of readers can starve a
writer (the 2.4 ``vmlist_lock`` behaviour).  The holder must not sleep.
"""

from ..ops import ISSUED
from .base import Lock


class RwlockT(Lock):
    kind = "rwlock_t"
    spin = True
    waiters_spin = True
    reader_preferring = True
    read_recursive = True
    shared_allowed = True

    def read_lock(self):
        return self._op("s")

    def read_unlock(self):
        return self._rel("s")

    def write_lock(self):
        ISSUED[0] += 1
        return self._lock_x

    def write_unlock(self):
        ISSUED[0] += 1
        return self._unlock_x

    def read_trylock(self):
        return self._op("s", trylock=True)

    def write_trylock(self):
        return self._op("x", trylock=True)
