"""smpvm: simulate a shared-memory multiprocessor running kernel VM code.

Kernel code paths are written as generator functions ("models") that yield
operations: lock and unlock, ``work(ns)``, field loads and stores, spl
changes, sleeps and wakeups.  The machine runs them on simulated CPUs under
a strategy that decides the interleaving, and reports what went wrong
(use-after-free, assertion, deadlock, lock-order reversal, ...) and where the
time went (lock statistics).

This module is the public API: models and experiments use only the names
exported here.
"""

__version__ = "0.1.0"

from .costs import FREE, Costs
from .locks import (IrqSpinlock, Lock, LockMap, LockPool, Mutex, QueuedLock, RtMutex, RwLock,
                    RwlockT, RwSemaphore, SleepMutex, Spinlock, SpinMutex, Sx, TicketLock,
                    might_lock)
from .current import current_machine
from .machine import Machine, RunResult
from .memory import Item, Zone, kassert, refcount_acquire, refcount_release
from .ops import (SPL0, SPLBIO, SPLCLOCK, SPLHIGH, SPLNET, SPLSOFT, SPLVM, any_waiter,
                  may_sleep, msleep, note, pause, spl0, splbio, splhigh, splnet, splraise, splvm,
                  splx, tsleep, wakeup, wakeup_one, work)
from .scenario import RunSpec, Scenario, load_target, run_scenario, run_spec, scenario
from .strategies import Replay, Strategy, Timed, make_strategy
from .threads import Thread, join, spawn_thread
from .studies.steady import steady_state
from .violations import KINDS, BadInput, ModelError, Violation

__all__ = [
    "__version__", "Costs", "FREE", "Machine", "RunResult", "current_machine",
    "Lock", "SpinMutex", "SleepMutex", "Sx", "RwLock", "Spinlock", "IrqSpinlock", "RwlockT",
    "Mutex", "RwSemaphore", "RtMutex", "TicketLock", "QueuedLock", "LockPool", "LockMap", "might_lock",
    "Zone", "Item", "kassert", "refcount_acquire", "refcount_release",
    "work", "pause", "may_sleep", "note", "splvm", "splbio", "splnet", "splhigh", "spl0",
    "splx", "splraise", "msleep", "tsleep", "wakeup", "wakeup_one",
    "SPL0", "SPLSOFT", "SPLNET", "SPLBIO", "SPLVM", "SPLCLOCK", "SPLHIGH",
    "scenario", "Scenario", "load_target", "run_scenario", "RunSpec", "run_spec",
    "BadInput", "ModelError",
    "Strategy", "Timed", "Replay", "make_strategy", "Violation", "KINDS", "steady_state",
    "Thread", "spawn_thread", "join", "any_waiter",
]
