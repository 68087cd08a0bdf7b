"""FreeBSD spin mutex (``MTX_SPIN``).

Waiters busy-wait with interrupts disabled, and the holder keeps interrupts
off its CPU until it releases.  Holding one forbids blocking on any other
kind of lock and sleeping: witness reports ``sleep-with-spinlock``.
"""

from .base import ExclusiveOps, Lock


class SpinMutex(ExclusiveOps, Lock):
    """FreeBSD spin mutex (``MTX_SPIN``): spinning waiters, interrupts off while held, no sleeping."""
    kind = "spin mutex"
    spin = True
    waiters_spin = True
    disables_irqs = True
