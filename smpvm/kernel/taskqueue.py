"""FreeBSD taskqueues (``taskqueue(9)``): deferred work run by a queue's thread.

``tq = Taskqueue(m, "sc_tq")`` is ``taskqueue_create`` plus one started
thread; ``task = Task(m, "sc_task", fn, *args, owner=sc)`` is
``TASK_INIT``.  The semantics follow ``sys/kern/subr_taskqueue.c``:

* ``taskqueue_enqueue`` of a task already queued only counts it again
  (``ta_pending``): the task runs once, and ``fn(*args, pending)`` learns
  how many enqueues it stands for.  A task may enqueue itself again.
* The queue's thread runs ``fn`` in thread context: it may sleep and take
  sleep mutexes.
* ``taskqueue_cancel`` removes a queued task and answers ``EBUSY`` (16)
  when the task is running; it never waits.  ``taskqueue_drain`` sleeps
  until the task is neither queued nor running.  Draining with a lock the
  task takes is a deadlock when the task runs, reported as the stall it is.

Freeing ``owner`` while the task is queued or running is a
``use-after-free`` naming the task.  See ``worker`` for where the thread
runs.
"""

from __future__ import annotations

from ..memory import watch_free
from .waits import Kobj, op, wait_for
from .worker import WorkerQueue

#: ``taskqueue_cancel``'s answer for a running task.
EBUSY = 16


class Task(Kobj):
    """A FreeBSD ``struct task``: ``fn(*args, pending)``, a generator function."""

    kind = "task"
    deferred = ("fn", "args")

    def __init__(self, m, name: str, fn, *args, owner=None):
        super().__init__(m, name)
        self.fn = fn
        self.args = args
        #: ``ta_pending``: enqueues not yet run (0: not queued).
        self.pending = 0
        #: The queue it was last enqueued on.
        self.queue = None
        if owner is not None:
            watch_free(owner, self._freed)

    def _freed(self, m, c, owner) -> None:
        q = self.queue
        running = q is not None and q.current is self
        if self.pending or running:
            state = "queued" if self.pending else "running"
            m.fail("use-after-free", f"free of {owner.label()} with {self.label()} still {state} "
                   f"on taskqueue {q.name}: taskqueue_drain() it first",
                   extra={"object": owner.label(), "task": self.name})


class Taskqueue(WorkerQueue):
    """A FreeBSD taskqueue with one thread: ``enqueue``, ``cancel`` (never waits), ``drain`` (sleeps)."""

    kind = "taskq"

    def enqueue(self, task: Task):
        """``yield tq.enqueue(task)``: ``taskqueue_enqueue``; a queued task is only counted again."""
        return op(lambda m, c: self._enqueue(m, task))

    def cancel(self, task: Task):
        """``err = yield tq.cancel(task)``: dequeue ``task``; ``EBUSY`` (16) if it is running, else 0."""
        return op(lambda m, c: self._cancel(task))

    def drain(self, task: Task):
        """``yield tq.drain(task)``: ``taskqueue_drain``, sleep until ``task`` is neither queued nor running."""
        return wait_for(self, lambda c: not task.pending and self.current is not task, None,
                        f"taskqueue_drain({task.name})", sleeps=True)

    def drain_all(self):
        """``yield tq.drain_all()``: ``taskqueue_drain_all``, sleep until the queue is idle."""
        return wait_for(self, lambda c: not self.queue and self.current is None, None,
                        f"taskqueue_drain_all({self.name})", sleeps=True)

    def _enqueue(self, m, task):
        self.touch()
        task.touch()
        task.queue = self
        if task.pending:
            task.pending += 1
            return 0
        task.pending = 1
        self.queue.append(task)
        self._kick(m)
        return 0

    def _cancel(self, task):
        self.touch()
        task.touch()
        if task.pending and task in self.queue:
            self.queue.remove(task)
            task.pending = 0
        return EBUSY if self.current is task else 0

    def _run(self, task):
        task.touch()
        pending, task.pending = task.pending, 0
        yield from task.fn(*task.args, pending)
