"""Queued (MCS-style) spin lock: FIFO, constant-cost hand-off.

Each waiter spins on its own cache line and the releaser writes only its
successor's, so hand-off costs one line transfer whatever the number of
spinners: the scalable counterpart of the ticket lock.
"""

from .base import ExclusiveOps, Lock


class QueuedLock(ExclusiveOps, Lock):
    """Queued (MCS-style) spin lock: FIFO, constant-cost hand-off."""
    kind = "queued spinlock"
    spin = True
    waiters_spin = True
    fifo = True
