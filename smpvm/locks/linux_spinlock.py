"""Linux ``spinlock_t`` as in 2.4 (test-and-set, so release order is a race), and masking at the call site.

The holder must not sleep.  In Linux a spinlock does not mask interrupts by
itself: each *call site* says whether it does.  ``spin_lock`` masks nothing,
``spin_lock_bh`` masks softirqs (timers, tasklets: ``SPLSOFT`` here),
``spin_lock_irq`` and ``spin_lock_irqsave`` mask hard interrupts too
(``SPLHIGH``), and the matching unlock restores what the lock call saved.
So one lock can be taken with interrupts masked in one place and unmasked in
another, which is exactly the bug lockdep reports as
``{IN-HARDIRQ-W} -> {HARDIRQ-ON-W}``: a timer or interrupt handler that takes
the lock arrives on a CPU holding it through a plain ``spin_lock``.

``local_irq_save``/``local_irq_restore``, ``local_irq_disable``/``local_irq_enable``
and ``local_bh_disable``/``local_bh_enable`` mask without a lock.

``IrqSpinlock`` is a ``spinlock_t`` whose every call site masks: it keeps
interrupts off while held, like FreeBSD's spin mutexes (which mask by kind).
"""

from __future__ import annotations

import weakref

from ..ops import BLOCKED, ISSUED, SPL_NAMES, SPLHIGH, SPLSOFT, Op, SplRaise, SplX
from .base import Lock


class MaskedAcquire(Op):
    """Raise this CPU's level to ``level``, then take ``lock`` (``spin_lock_irqsave``, ``_bh``).

    The level in force before is saved per CPU on the lock, for the matching
    ``MaskedRelease``.  A contended attempt that is retried does not save again.
    """

    __slots__ = ("lock", "level")

    def __init__(self, lock, level):
        self.lock = lock
        self.level = level

    def execute(self, m, c):
        lock = self.lock
        if c.wait_lock is not lock:  # first attempt: save and mask
            lock.saved_levels(c).append(c.spl)
            _set_level(m, c, max(c.spl, self.level))
        return lock._acquire(m, c, "x", False)


class MaskedRelease(Op):
    """Release ``lock``, then restore the level its ``MaskedAcquire`` saved on this CPU."""

    __slots__ = ("lock",)

    def __init__(self, lock):
        self.lock = lock

    def execute(self, m, c):
        lock = self.lock
        res = lock._release(m, c, "x")
        if res is BLOCKED:
            return res  # unlock-not-held was reported; the run ends
        saved = lock.saved_levels(c)
        if saved:
            _set_level(m, c, saved.pop())
        return res


def _set_level(m, c, level) -> None:
    old = c.spl
    if level == old:
        return
    c.spl = level
    if m.tracing:
        m.record(c, "spl", "", f"{SPL_NAMES.get(old, old)}->{SPL_NAMES.get(level, level)}")
    if level < old and c.held:
        m.witness.irqs_enabled(c)  # the locks still held are now held unmasked


class Spinlock(Lock):
    """Linux ``spinlock_t``: busy-waiting, never sleeping, masking only where the call site says.

    ``spin_lock``/``spin_unlock`` mask nothing; ``spin_lock_bh``,
    ``spin_lock_irq`` and ``spin_lock_irqsave`` mask softirqs or all
    interrupts on this CPU until the matching unlock, which restores what the
    lock call saved; a lock taken by an interrupt or timer handler must be
    taken with those everywhere else.  ``lock``/``trylock``/``unlock`` are
    the plain forms.
    """

    kind = "spinlock_t"
    spin = True
    waiters_spin = True

    def saved_levels(self, c) -> list:
        """The levels ``c``'s masked acquisitions of this lock saved, innermost last."""
        saved = self.__dict__.get("_saved")
        if saved is None:
            saved = self._saved = {}
        return saved.setdefault(c.id, [])

    def spin_lock(self):
        """``yield lock.spin_lock()``: take the lock, masking nothing."""
        ISSUED[0] += 1
        return self._lock_x

    def spin_trylock(self):
        """``ok = yield lock.spin_trylock()``: take it if free; evaluates to True or False."""
        return self._op("x", trylock=True)

    def spin_unlock(self):
        """``yield lock.spin_unlock()``: release a ``spin_lock``."""
        ISSUED[0] += 1
        return self._unlock_x

    def spin_lock_irqsave(self):
        """``yield lock.spin_lock_irqsave()``: mask all interrupts on this CPU, then take the lock.

        The lock keeps the saved state (Linux's ``flags``) for
        ``spin_unlock_irqrestore``.
        """
        ISSUED[0] += 1
        return MaskedAcquire(self, SPLHIGH)

    def spin_unlock_irqrestore(self, flags=None):
        """``yield lock.spin_unlock_irqrestore()``: release, then restore the masking saved at lock time.

        ``flags`` is accepted for the kernel's spelling and ignored: the lock
        remembers what its ``spin_lock_irqsave`` saved on this CPU.
        """
        ISSUED[0] += 1
        return MaskedRelease(self)

    def spin_lock_irq(self):
        """``yield lock.spin_lock_irq()``: mask all interrupts on this CPU, then take the lock."""
        ISSUED[0] += 1
        return MaskedAcquire(self, SPLHIGH)

    def spin_unlock_irq(self):
        """``yield lock.spin_unlock_irq()``: release, then unmask what ``spin_lock_irq`` masked."""
        ISSUED[0] += 1
        return MaskedRelease(self)

    def spin_lock_bh(self):
        """``yield lock.spin_lock_bh()``: mask softirqs (timers) on this CPU, then take the lock."""
        ISSUED[0] += 1
        return MaskedAcquire(self, SPLSOFT)

    def spin_unlock_bh(self):
        """``yield lock.spin_unlock_bh()``: release, then let softirqs in again."""
        ISSUED[0] += 1
        return MaskedRelease(self)

    lock = spin_lock
    trylock = spin_trylock
    unlock = spin_unlock


class IrqSpinlock(Spinlock):
    """A ``spinlock_t`` every call site of which takes it with ``spin_lock_irq``.

    Holding it keeps interrupts off this CPU, whatever the call site says.
    """

    kind = "spinlock_t (irq)"
    disables_irqs = True


# -- masking without a lock ---------------------------------------------------------------------


def local_irq_save():
    """``flags = yield local_irq_save()``: mask all interrupts on this CPU; evaluates to the old state."""
    ISSUED[0] += 1
    return SplRaise(SPLHIGH)


def local_irq_restore(flags):
    """``yield local_irq_restore(flags)``: restore the state ``local_irq_save`` returned."""
    ISSUED[0] += 1
    return SplX(flags)


def local_irq_disable():
    """``yield local_irq_disable()``: mask all interrupts on this CPU (until ``local_irq_enable``)."""
    ISSUED[0] += 1
    return _BhOrIrq(SPLHIGH, True)


def local_irq_enable():
    """``yield local_irq_enable()``: undo the matching ``local_irq_disable``."""
    ISSUED[0] += 1
    return _BhOrIrq(SPLHIGH, False)


def local_bh_disable():
    """``yield local_bh_disable()``: mask softirqs (timers, tasklets) on this CPU; nests."""
    ISSUED[0] += 1
    return _BhOrIrq(SPLSOFT, True)


def local_bh_enable():
    """``yield local_bh_enable()``: undo the matching ``local_bh_disable``."""
    ISSUED[0] += 1
    return _BhOrIrq(SPLSOFT, False)


#: Machine -> {(cpu id, level): [saved levels]}: what each disable saved, for its enable.
_SAVED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


class _BhOrIrq(Op):
    """``local_bh_disable``/``enable`` and ``local_irq_disable``/``enable``: nesting, per CPU."""

    __slots__ = ("level", "disable")

    def __init__(self, level, disable):
        self.level = level
        self.disable = disable

    def execute(self, m, c):
        stack = _SAVED.setdefault(m, {}).setdefault((c.id, self.level), [])
        c.clock += m.costs.spl_ns
        if self.disable:
            stack.append(c.spl)
            _set_level(m, c, max(c.spl, self.level))
        elif stack:
            _set_level(m, c, stack.pop())
        return None
