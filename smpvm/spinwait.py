"""Busy-waiting in the kernel's words: ``cpu_relax()`` and ``spin_until(cond)``.

Kernel code that waits for another CPU without sleeping polls a condition,
relaxing the CPU between reads (Linux ``cpu_relax()``, FreeBSD
``cpu_spinwait()``): ``del_timer_sync`` waiting for a handler running
elsewhere, a detach polling a "busy" flag.  In a model:

    while timer.running:
        yield cpu_relax()

or, the same loop in one line, ``yield from spin_until(lambda: not timer.running)``.

Both are ``pause()`` underneath, and every strategy treats a pause repeated
in place as a spin (``smpvm.spin``): the search re-runs the spinning CPU
only after the others have stepped, the timed view charges each turn a few
nanoseconds, and CPUs that spin on each other forever are reported as a
``livelock`` naming each CPU and where it spins.
"""

from __future__ import annotations

from .ops import pause


def cpu_relax():
    """One turn of a busy-wait loop: ``yield cpu_relax()`` (a ``pause()``)."""
    return pause()


def spin_until(cond):
    """Busy-wait until ``cond()`` is true: ``yield from spin_until(lambda: flag.done)``.

    ``cond`` is re-read after every turn; reading it through model state
    (zone item fields, ``SharedList``...) lets the search see what it waits for.
    """
    if not callable(cond):
        raise TypeError(f"spin_until() needs a function to re-check, got {cond!r}")
    while not cond():
        yield pause()
