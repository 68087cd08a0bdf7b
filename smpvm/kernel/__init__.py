"""Kernel idioms built on the engine: timers, deferred work, grace periods, drained references.

One module per idiom, in both kernels' words where both have it:

* ``callout``: FreeBSD ``callout(9)``; ``timer``: Linux ``timer_list``.
  Handlers fire through ``Machine.interrupt`` at ``SPLSOFT`` (softclock,
  the timer softirq).
* ``taskqueue``: FreeBSD ``taskqueue(9)``; ``workqueue``: Linux workqueues.
  Items run in a worker thread (``worker``).
* ``epoch``: FreeBSD ``epoch(9)``; ``rcu``: Linux RCU (``grace`` holds what
  they share).
* ``refcount``: a reference that a destroyer drains.
* ``threads``: threads started by running threads (``kthread_add``), and
  ``join``.
* ``spin``: busy-waiting (``cpu_relax``, ``spin_until``) and the watch that
  tells a spin from progress, for fair scheduling and livelock reports.

``waits`` is the plumbing they share: footprints of their state and CPUs
blocked until it changes.
"""

from .callout import Callout
from .epoch import Epoch
from .rcu import Rcu
from .refcount import DrainRef
from .taskqueue import EBUSY, Task, Taskqueue
from .timer import Timer
from .workqueue import WorkItem, Workqueue, cancel_work_sync, flush_work

__all__ = ["Callout", "Timer", "Task", "Taskqueue", "EBUSY", "WorkItem", "Workqueue",
           "flush_work", "cancel_work_sync", "Epoch", "Rcu", "DrainRef"]
