"""The machine in progress, and a watchdog for model code that never yields.

Model helpers (``kassert``, refcounts, zones) need "the machine whose run or
set-up is in progress" without importing the machine; so do the watchdog and
the exhaustive search.  This module holds that one pointer.


Interleavings happen only at yields, so a model stuck in a Python loop
between two yields would hang the run (a loop that does yield is caught by
``max_steps`` instead).  One daemon thread per process watches the machine
in progress; when its step count has not moved for ``SMPVM_STEP_TIMEOUT``
seconds (default 30), it interrupts the main thread, and the machine turns
that into a one-line ``ModelError`` naming where the model was stuck.  The
watchdog only ever aborts a run: it cannot change what a run computes.
"""

from __future__ import annotations

import _thread
import contextlib
import os
import threading
import time

_current = None
_started = False
_lock = threading.Lock()
#: Set when the watchdog interrupted the main thread, with the stuck site.
fired: dict = {}


def current_machine():
    """The machine whose run (or scenario set-up) is in progress in this process."""
    return _current


@contextlib.contextmanager
def running(m):
    """Make ``m`` the machine in progress for the duration of a ``with`` block."""
    global _current
    prev = _current
    _current = m
    try:
        yield m
    finally:
        _current = prev


def raise_if_stuck() -> None:
    """Turn the watchdog's interrupt into a one-line model error."""
    if fired:
        from .violations import ModelError
        site = fired.pop("site", "?")
        secs = fired.pop("seconds", 0)
        raise ModelError(f"the model ran {secs:g} s inside one step without yielding "
                         f"(an endless loop between yields?) near {site}") from None


def timeout_s() -> float:
    try:
        return max(0.1, float(os.environ.get("SMPVM_STEP_TIMEOUT", "30")))
    except ValueError:
        return 30.0


def ensure_started() -> None:
    """Start the watchdog thread of this process (once)."""
    global _started
    if _started:
        return
    with _lock:
        if _started:
            return
        _started = True
        threading.Thread(target=_watch, name="smpvm-watchdog", daemon=True).start()


def _watch() -> None:
    limit = timeout_s()
    last = (None, -1)
    since = time.monotonic()
    while True:
        time.sleep(min(1.0, limit / 4))
        m = _current
        now = time.monotonic()
        key = (m, m.steps if m is not None else -1)
        if m is None or key != last:
            last = key
            since = now
            continue
        if now - since >= limit:
            c = m.current
            fired["site"] = m.site(c) if c is not None else "scenario set-up"
            fired["seconds"] = limit
            since = now
            _thread.interrupt_main()
