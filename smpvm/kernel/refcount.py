"""A reference with drain: take a reference unless the object is dying; the destroyer waits for the last.

Kernels write this pattern again and again: FreeBSD's ``dev_refthread`` /
``dev_relthread`` with ``destroy_dev`` waiting for ``si_threadcount`` to
drain, ``if_ref``/``if_rele`` with ``IFF_DYING``, Linux's ``kref`` with a
release that waits on a completion.  ``ref = DrainRef(m, "cdev")``;
``if ref.acquire():`` takes a reference (False once the object is dying:
the caller must not touch it); ``ref.release()`` drops it and wakes the
destroyer when it was the last of a dying object; ``yield ref.drain()``
marks the object dying and sleeps until no reference is left, after which
the destroyer may free it.  ``acquire`` and ``release`` are atomic with the
step they are called in, as the kernel's atomics are.
"""

from __future__ import annotations

from .waits import Kobj, wait_for


class DrainRef(Kobj):
    """A reference with drain: ``acquire`` unless dying, ``release``, and ``drain`` to wait for the last user."""

    kind = "reference"

    def __init__(self, m, name: str):
        super().__init__(m, name)
        #: References held now.
        self.count = 0
        #: Set by ``drain``: no new reference may be taken.
        self.dying = False

    def acquire(self) -> bool:
        """Take a reference unless the object is dying (``dev_refthread``); True when taken."""
        self.touch()
        if self.dying:
            return False
        self.count += 1
        return True

    def release(self) -> None:
        """Drop a reference (``dev_relthread``); the last one of a dying object wakes the destroyer."""
        self.touch()
        if self.count <= 0:
            m = self.m
            m.fail("assertion", f"{self.label()}: released with no reference held "
                   f"(count {self.count}): reference count underflow")
            return
        self.count -= 1
        if self.dying and not self.count:
            self.waiters.wake_all()

    def drain(self):
        """``yield ref.drain()``: mark dying (``destroy_dev``) and sleep until no reference is left."""
        def start(c):
            self.touch()
            self.dying = True

        return wait_for(self, lambda c: not self.count, None, f"drain of {self.label()}",
                        sleeps=True, start=start)
