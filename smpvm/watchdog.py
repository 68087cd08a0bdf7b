"""A watchdog for model code that never yields.

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
import os
import threading
import time

_started = False
_lock = threading.Lock()
#: Set when the watchdog interrupted the main thread, with the stuck site.
fired: dict = {}


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
    from . import machine
    limit = timeout_s()
    last = (None, -1)
    since = time.monotonic()
    while True:
        time.sleep(min(1.0, limit / 4))
        m = machine._current
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
