"""A pool of locks picked by hashing an address, like FreeBSD's ``pa_lock[]``.

``lock_for(pa)`` is ``locks[(pa >> shift) % count]``: with FreeBSD's
``PDRSHIFT`` of 21 every page of one 2 MB frame shares a lock, and with 256
locks two frames collide when their addresses agree modulo 512 MB.  All
locks of a pool are one witness and statistics class (they are created
duplicate-ok, since code may hold two stripes at once).
"""

from .sleep_mutex import SleepMutex


class LockPool:
    """Locks picked by hashing an address (FreeBSD's ``pa_lock[]``): ``pool.lock_for(pa)``."""
    def __init__(self, m, name: str, count: int, shift: int, kind=SleepMutex):
        if count < 1:
            raise ValueError(f"lock pool {name!r} needs count >= 1, got {count}")
        if shift < 0:
            raise ValueError(f"lock pool {name!r} needs shift >= 0, got {shift}")
        self.name = name
        self.count = count
        self.shift = shift
        self._kind = kind
        self._m = m
        # Locks are made on first use so that a pool of 1024 costs nothing
        # until touched; index order keeps creation deterministic.
        self._locks: dict[int, object] = {}

    def index_for(self, addr: int) -> int:
        """The pool index for ``addr``: ``(addr >> shift) % count``."""
        return (addr >> self.shift) % self.count

    def lock_for(self, addr: int):
        """The lock guarding ``addr`` (made on first use; one class for the whole pool)."""
        i = (addr >> self.shift) % self.count
        lk = self._locks.get(i)
        if lk is None:
            lk = self._kind(self._m, self.name, instance=i, dupok=True)
            self._locks[i] = lk
        return lk

    def __getitem__(self, i: int):
        return self.lock_for(i << self.shift)
