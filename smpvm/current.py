"""The machine in progress, and a watchdog for model code that never yields.

Model helpers (``kassert``, refcounts, zones) need "the machine whose run or
set-up is in progress" without importing the machine; so do the watchdog and
the exhaustive search.  This module holds that one pointer.


Interleavings happen only at yields, so a model stuck in a Python loop
between two yields would hang the run (a loop that does yield is caught by
``max_steps`` instead).  One daemon thread per process watches the machine
in progress; when its step count has not moved for ``SMPVM_STEP_TIMEOUT``
seconds (default 30), it interrupts the thread running it -- with a real
signal for the main thread (SIGUSR1, else SIGINT), so a model blocked in a system call
(``time.sleep(3600)``, a read that never returns) is woken too -- and the
machine turns that into a one-line ``ModelError`` naming where the model was
stuck.  A thread that still does not move after as long again (a call that
ignores signals) cannot be stopped from inside: the watchdog prints that one
line itself and ends the process with status 2.  The watchdog only ever
aborts a run: it cannot change what a run computes.
"""

from __future__ import annotations

import _thread
import ctypes
import os
import signal
import sys
import threading
import time
from threading import get_ident

_current = None
#: The thread running ``_current``.
_thread_id = None
_started = False
_lock = threading.Lock()
#: Set when the watchdog interrupted the main thread, with the stuck site.
fired: dict = {}


def current_machine():
    """The machine whose run (or scenario set-up) is in progress in this process."""
    return _current


class running:
    """Make ``m`` the machine in progress for the duration of a ``with`` block.

    A class rather than a generator-based context manager: every run enters
    it twice (set-up and run), thousands of times a second.
    """

    __slots__ = ("m", "prev")

    def __init__(self, m):
        self.m = m

    def __enter__(self):
        global _current, _thread_id
        self.prev = _current, _thread_id
        _current, _thread_id = self.m, get_ident()
        return self.m

    def __exit__(self, *exc):
        global _current, _thread_id
        _current, _thread_id = self.prev
        return False


def raise_if_stuck() -> None:
    """Turn the watchdog's interrupt into a one-line model error."""
    if fired:
        from .violations import ModelError
        site = fired.pop("site", "?")
        secs = fired.pop("seconds", 0)
        raise ModelError(stuck_message(secs, site)) from None


def stuck_message(secs, site) -> str:
    return (f"the model ran {secs:g} s inside one step without yielding (an endless loop "
            f"between yields, or a call that blocks?) near {site}")


def timeout_s() -> float:
    try:
        return max(0.1, float(os.environ.get("SMPVM_STEP_TIMEOUT", "30")))
    except ValueError:
        return 30.0


#: The signal the watchdog wakes the main thread with (SIGUSR1, when it was free).
_wake = None


def _woken(signum, frame):
    raise KeyboardInterrupt  # turned into the one-line error by raise_if_stuck()


def _forked() -> None:
    """In a forked child (a pool worker): the watchdog thread did not come along, so the
    child's first run starts its own; the signal handler did, so ``_wake`` stays."""
    global _started, _lock
    _started = False
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


def ensure_started() -> None:
    """Start the watchdog thread of this process (once)."""
    global _started, _wake
    if _started:
        return
    with _lock:
        if _started:
            return
        _started = True
        # its own signal, so that it works where SIGINT is ignored (pool workers, jobs
        # started in the background); taken only when nobody else handles it
        sig = getattr(signal, "SIGUSR1", None)
        if sig is not None and threading.current_thread() is threading.main_thread() \
                and signal.getsignal(sig) == signal.SIG_DFL:
            signal.signal(sig, _woken)
            _wake = sig
        threading.Thread(target=_watch, name="smpvm-watchdog", daemon=True).start()


def _watch() -> None:
    limit = timeout_s()
    last = (None, -1)
    since = time.monotonic()
    interrupted = False
    while True:
        time.sleep(min(1.0, limit / 4))
        m = _current
        now = time.monotonic()
        key = (m, m.steps if m is not None else -1)
        if m is None or key != last:
            last = key
            since = now
            interrupted = False
            continue
        if now - since < limit:
            continue
        c = m.current
        site = m.site(c) if c is not None else "scenario set-up"
        if interrupted:  # it did not wake: nothing short of ending the process stops it
            sys.stderr.write(f"smpvm: error: {stuck_message(2 * limit, site)}; it does not "
                             f"respond to interrupts, so smpvm stops here\n")
            sys.stderr.flush()
            os._exit(2)
        fired["site"] = site
        fired["seconds"] = limit
        since = now
        interrupted = True
        _interrupt(_thread_id)


def _interrupt(ident) -> None:
    """Raise KeyboardInterrupt in thread ``ident``, waking it from a system call if main."""
    main = threading.main_thread().ident
    if ident is None or ident == main:
        if _wake is not None and signal.getsignal(_wake) is _woken:
            signal.pthread_kill(main, _wake)  # EINTR ends sleep(), read() ...
        elif callable(signal.getsignal(signal.SIGINT)):
            signal.pthread_kill(main, signal.SIGINT)
        else:
            _thread.interrupt_main()
        return
    # a worker thread (a Dask worker's): an asynchronous exception, seen between bytecodes
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident),
                                               ctypes.py_object(KeyboardInterrupt))
