"""The simulator's locks, one kind per module; see ``base`` for what they share."""

from .base import Lock
from .linux_mutex import Mutex
from .linux_rwlock import RwlockT
from .linux_spinlock import (IrqSpinlock, Spinlock, local_bh_disable, local_bh_enable,
                             local_irq_disable, local_irq_enable, local_irq_restore,
                             local_irq_save)
from .pool import LockPool
from .pseudo import LockMap, might_lock
from .queued import QueuedLock
from .rt_mutex import RtMutex
from .rwlock import RwLock
from .rwsem import RwSemaphore
from .sleep_mutex import SleepMutex
from .spin_mutex import SpinMutex
from .sx import Sx
from .ticket import TicketLock

__all__ = ["Lock", "SpinMutex", "SleepMutex", "Sx", "RwLock", "Spinlock", "IrqSpinlock",
           "RwlockT", "Mutex", "RwSemaphore", "RtMutex", "TicketLock", "QueuedLock", "LockPool", "LockMap", "might_lock",
           "local_irq_save", "local_irq_restore", "local_irq_disable", "local_irq_enable",
           "local_bh_disable", "local_bh_enable"]
