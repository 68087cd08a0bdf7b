"""Linux ``spinlock_t`` as in 2.4: test-and-set, so release order is a race.

The holder must not sleep.  ``lock_irq`` also keeps interrupts off this CPU
until the matching ``unlock_irq`` (``spin_lock_irq``).
"""

from ..ops import ISSUED
from .base import Lock


class Spinlock(Lock):
    kind = "spinlock_t"
    spin = True
    waiters_spin = True

    def spin_lock(self):
        ISSUED[0] += 1
        return self._lock_x

    def spin_trylock(self):
        return self._op("x", trylock=True)

    def spin_unlock(self):
        ISSUED[0] += 1
        return self._unlock_x

    lock = spin_lock
    trylock = spin_trylock
    unlock = spin_unlock


class IrqSpinlock(Spinlock):
    """A ``spinlock_t`` always taken with ``spin_lock_irq``/``spin_unlock_irq``."""

    kind = "spinlock_t (irq)"
    disables_irqs = True
