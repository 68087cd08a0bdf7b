"""Queued (MCS-style) spin lock: FIFO, constant-cost hand-off.

Each waiter spins on its own cache line and the releaser writes only its
successor's, so hand-off costs one line transfer whatever the number of
spinners: the scalable counterpart of the ticket lock.
"""

from .base import Lock


class QueuedLock(Lock):
    kind = "queued spinlock"
    spin = True
    waiters_spin = True
    fifo = True

    def lock(self):
        return self._op("x")

    def unlock(self):
        return self._rel("x")
