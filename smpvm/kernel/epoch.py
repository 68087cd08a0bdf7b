"""FreeBSD ``epoch(9)`` in its words: ``epoch_enter``, ``epoch_wait``, ``epoch_call``.

``net_epoch = Epoch(m, "net_epoch_preempt")`` is an epoch;
``yield net_epoch.enter()`` and ``yield net_epoch.exit()`` bracket a
section (``NET_EPOCH_ENTER``/``NET_EPOCH_EXIT``); ``p = net_epoch.load(obj,
"field")`` reads an epoch-protected pointer inside one (the
``CK_LIST_FOREACH``/``atomic_load_ptr`` of the kernel).  ``yield
net_epoch.wait()`` is ``epoch_wait``: it sleeps until every section open at
the call has ended; ``yield net_epoch.call(fn, *args)`` is ``epoch_call``:
``fn(*args)`` (a generator function) runs after such a grace period (here in
softirq context on the calling CPU, where FreeBSD uses its epoch taskqueue).
See ``grace`` for what is checked: freeing an object a reader took inside a
section still open is a ``use-after-free`` reported with the reader's
section, and sleeping in a section (``msleep``, an sx) is
``sleep-in-atomic``; default mutexes may be taken in a preemptible epoch.
"""

from __future__ import annotations

from .grace import GracePeriods
from .waits import op


class Epoch(GracePeriods):
    """A FreeBSD epoch: ``enter``/``exit`` sections, ``load`` pointers, ``wait`` or ``call`` past a grace period."""

    kind = "epoch"
    section_word = "epoch section"
    wait_word = "epoch_wait()"

    def enter(self):
        """``yield ep.enter()``: ``epoch_enter``, enter a section of this epoch."""
        return op(self._enter)

    def exit(self):
        """``yield ep.exit()``: ``epoch_exit``, leave the innermost section."""
        return op(self._exit)

    def load(self, item, field: str):
        """``p = ep.load(obj, "field")``: read an epoch-protected pointer; ``p`` is watched until the section ends."""
        return self.deref(item, field)

    def wait(self):
        """``yield ep.wait()``: ``epoch_wait``, sleep until the sections open at the call have ended."""
        return self._synchronize(f"epoch_wait({self.name})")

    def call(self, fn, *args):
        """``yield ep.call(fn, *args)``: ``epoch_call``, run ``fn(*args)`` after a grace period."""
        return op(lambda m, c: self._call(m, c, fn, args))
