"""smpvm: simulate a shared-memory multiprocessor running kernel VM code.

Kernel code paths are written as generator functions ("models") that yield
operations: lock and unlock, ``work(ns)``, field loads and stores, spl
changes, sleeps and wakeups.  Each CPU's thread is a SimPy process in the
machine's environment (``m.env``), beside which a model may run SimPy
processes of its own (devices) that raise interrupts (``m.interrupt``), wake
sleepers (``m.wakeup``) and trigger events threads wait for (``wait_event``).  The machine runs them on simulated CPUs under
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
                    local_bh_disable, local_bh_enable, local_irq_disable, local_irq_enable,
                    local_irq_restore, local_irq_save, might_lock)
from .kernel import (EBUSY, Callout, DrainRef, Epoch, Rcu, Task, Taskqueue, Timer, WorkItem,
                     Workqueue, cancel_work_sync, flush_work)
from .current import current_machine
from .machine import Machine, RunResult
from .memory import (Item, SharedDict, SharedList, Zone, bookkeeping, free_history, kassert, kref_get, kref_get_unless_zero, kref_put,
                     refcount_acquire, refcount_acquire_if_not_zero, refcount_dec_and_test,
                     refcount_inc, refcount_inc_not_zero, refcount_release, watch_free)
from .ops import (SPL0, SPLBIO, SPLCLOCK, SPLHIGH, SPLNET, SPLSOFT, SPLVM, any_waiter,
                  may_sleep, msleep, note, pause, spl0, splbio, splhigh, splnet, splraise, splvm, splx, tsleep,
                  wait_event, wakeup, wakeup_one, work)
from .engine import Engine, KernelThread
from .kernel.spin import cpu_relax, spin_until
from .scenario import RunSpec, Scenario, load_target, run_scenario, run_spec, scenario
from .strategies import Replay, Strategy, Timed, make_strategy
from .kernel.threads import Thread, join, spawn_thread
from .studies.steady import steady_state
from .violations import KINDS, BadInput, ModelError, Violation

__all__ = [
    "__version__", "Costs", "FREE", "Machine", "RunResult", "current_machine",
    "Lock", "SpinMutex", "SleepMutex", "Sx", "RwLock", "Spinlock", "IrqSpinlock", "RwlockT",
    "Mutex", "RwSemaphore", "RtMutex", "TicketLock", "QueuedLock", "LockPool", "LockMap", "might_lock",
    "local_irq_save", "local_irq_restore", "local_irq_disable", "local_irq_enable",
    "local_bh_disable", "local_bh_enable",
    "Zone", "Item", "kassert", "refcount_acquire", "refcount_release",
    "refcount_acquire_if_not_zero", "refcount_inc", "refcount_inc_not_zero",
    "refcount_dec_and_test", "kref_get", "kref_get_unless_zero", "kref_put", "watch_free",
    "free_history",
    "Callout", "Timer", "Taskqueue", "Task", "EBUSY", "Workqueue", "WorkItem", "flush_work",
    "cancel_work_sync", "Epoch", "Rcu", "DrainRef",
    "SharedList", "SharedDict", "bookkeeping",
    "work", "pause", "cpu_relax", "spin_until", "may_sleep", "note", "splvm", "splbio", "splnet", "splhigh", "spl0",
    "splx", "splraise", "msleep", "tsleep", "wakeup", "wakeup_one", "wait_event",
    "Engine", "KernelThread",
    "SPL0", "SPLSOFT", "SPLNET", "SPLBIO", "SPLVM", "SPLCLOCK", "SPLHIGH",
    "scenario", "Scenario", "load_target", "run_scenario", "RunSpec", "run_spec",
    "BadInput", "ModelError",
    "Strategy", "Timed", "Replay", "make_strategy", "Violation", "KINDS", "steady_state",
    "Thread", "spawn_thread", "join", "any_waiter",
]
