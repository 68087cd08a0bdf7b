"""Linux RCU in its words: ``rcu_read_lock``, ``synchronize_rcu``, ``call_rcu``, ``rcu_dereference``.

``rcu = Rcu(m)`` is the kernel's RCU (one per machine is the usual; a
model may make more for separate flavours).  ``yield rcu.read_lock()`` and
``yield rcu.read_unlock()`` bracket a read-side critical section;
``p = rcu.dereference(obj, "field")`` reads an RCU-protected pointer inside
it; ``rcu.assign_pointer(obj, "field", p)`` publishes one.  ``yield
rcu.synchronize()`` sleeps until every section open at the call has ended;
``yield rcu.call_rcu(fn, *args)`` runs ``fn(*args)`` (a generator function)
in softirq context on the calling CPU after such a grace period.  See
``grace`` for what is checked: freeing an object a reader took inside a
section still open is a ``use-after-free`` reported with the reader's
section, and sleeping in a section is ``sleep-in-atomic``.
"""

from __future__ import annotations

from .grace import GracePeriods
from .waits import op


class Rcu(GracePeriods):
    """Linux RCU: ``read_lock``/``read_unlock``, ``dereference``, ``synchronize`` or ``call_rcu``."""

    kind = "rcu"
    section_word = "read-side critical section"
    wait_word = "synchronize_rcu()"

    def __init__(self, m, name: str = "rcu"):
        super().__init__(m, name)

    def read_lock(self):
        """``yield rcu.read_lock()``: ``rcu_read_lock``, enter a read-side critical section."""
        return op(self._enter)

    def read_unlock(self):
        """``yield rcu.read_unlock()``: ``rcu_read_unlock``, leave the innermost section."""
        return op(self._exit)

    def dereference(self, item, field: str):
        """``p = rcu.dereference(obj, "next")``: ``rcu_dereference``; ``p`` is watched until the section ends."""
        return self.deref(item, field)

    def assign_pointer(self, item, field: str, value) -> None:
        """``rcu.assign_pointer(obj, "next", p)``: ``rcu_assign_pointer``, publish ``p``."""
        setattr(item, field, value)

    def synchronize(self):
        """``yield rcu.synchronize()``: ``synchronize_rcu``, sleep until pre-existing readers are done."""
        return self._synchronize("synchronize_rcu()")

    def call_rcu(self, fn, *args):
        """``yield rcu.call_rcu(fn, *args)``: run ``fn(*args)`` in softirq context after a grace period."""
        return op(lambda m, c: self._call(m, c, fn, args))
