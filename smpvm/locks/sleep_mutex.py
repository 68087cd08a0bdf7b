"""FreeBSD default mutex (``MTX_DEF``), the kernel's everyday lock.

Adaptive: a waiter spins while the owner is running on another CPU and
blocks on a turnstile otherwise.  A release wakes the waiters and they race,
so the order is not fixed (the strategy decides).  The holder must not sleep
(except through ``msleep``, which drops it atomically), but may block on
another default mutex.
"""

from .base import ExclusiveOps, Lock


class SleepMutex(ExclusiveOps, Lock):
    """FreeBSD default mutex (``MTX_DEF``): adaptive waiters, may block but the holder must not sleep."""
    kind = "sleep mutex"
    waiters_spin = None
