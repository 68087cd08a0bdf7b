"""Linux workqueues: ``work_struct`` items run by a worker thread.

``wq = Workqueue(m, "events")`` is ``alloc_workqueue`` (one worker: an
ordered queue); ``w = WorkItem(m, "sc_work", fn, *args, owner=sc)`` is
``INIT_WORK``.  The semantics follow ``kernel/workqueue.c``:

* ``queue_work`` of a pending item does nothing and evaluates to False;
  the pending bit is cleared just before the item runs, so an item may be
  queued again (also by itself) while it runs.
* ``flush_work`` sleeps until the last queueing made before it has run to
  the end; ``cancel_work_sync`` dequeues the item, refuses to let it be
  queued again meanwhile, and sleeps until a running instance has finished.
  Both carry lockdep's annotation: the item is a pseudo-lock held while it
  runs and taken by the flush, so flushing with a lock the item takes is
  reported as a circular dependency even in runs where it did not deadlock.
* Items run in process context: they may sleep.

Freeing ``owner`` while the item is pending or running is a
``use-after-free`` naming the item.  See ``worker`` for where the worker
runs.
"""

from __future__ import annotations

from ..locks.pseudo import LockMap
from ..memory import watch_free
from .waits import Kobj, op, wait_for
from .worker import WorkerQueue


class WorkItem(Kobj):
    """A Linux ``struct work_struct``: ``fn(*args)``, a generator function."""

    kind = "work_struct"
    deferred = ("fn", "args")

    def __init__(self, m, name: str, fn, *args, owner=None):
        super().__init__(m, name)
        self.fn = fn
        self.args = args
        #: ``WORK_STRUCT_PENDING``: queued and not yet started.
        self.pending = False
        #: ``cancel_work_sync`` in progress: queueing is refused.
        self.canceling = False
        #: Queueings so far, and the number of the last one whose run has ended.
        self.queued_seq = 0
        self.done_seq = 0
        #: The queueing number of the run in progress (0: not running).
        self.running_seq = 0
        #: The queue it was last queued on.
        self.queue = None
        #: Lockdep's map of the item, held while it runs.
        self.map = LockMap(m, f"({name})")
        if owner is not None:
            watch_free(owner, self._freed)

    def _freed(self, m, c, owner) -> None:
        if self.pending or self.running_seq:
            state = "pending" if self.pending else "running"
            m.fail("use-after-free", f"free of {owner.label()} with {self.label()} still {state}: "
                   f"cancel_work_sync() or flush_work() it first",
                   extra={"object": owner.label(), "work": self.name})


class Workqueue(WorkerQueue):
    """A Linux workqueue with one worker: ``queue_work``; ``flush_work`` and ``cancel_work_sync`` wait."""

    kind = "kworker"

    def queue_work(self, work: WorkItem):
        """``queued = yield wq.queue_work(work)``: False when it was already pending."""
        return op(lambda m, c: self._queue(m, work))

    def _queue(self, m, work):
        self.touch()
        work.touch()
        if work.pending or work.canceling:
            return False
        work.pending = True
        work.queue = self
        work.queued_seq += 1
        self.queue.append(work)
        self._kick(m)
        return True

    def _run(self, work):
        work.touch()
        work.pending = False
        work.running_seq = work.queued_seq
        yield work.map.acquire()
        yield from work.fn(*work.args)
        yield work.map.release()
        work.touch()
        work.done_seq = work.running_seq
        work.running_seq = 0
        work.waiters.wake_all()


def _annotate(m, c, work) -> None:
    """lockdep: a flush takes the item's map, so a lock held here that the item takes is a cycle."""
    m.witness.before_acquire(c, work.map, "x", False, m.site(c) if m.sites else "")


def flush_work(work: WorkItem):
    """``waited = yield flush_work(work)``: sleep until its last queueing has run to the end."""
    target = [0]

    def start(c):
        _annotate(work.m, c, work)
        work.touch(write=False)
        target[0] = work.queued_seq if (work.pending or work.running_seq) else 0

    def ready(c):
        return work.done_seq >= target[0]

    return wait_for(work, ready, lambda c: bool(target[0]),
                    f"flush_work({work.name})", sleeps=True, start=start)


def cancel_work_sync(work: WorkItem):
    """``was_pending = yield cancel_work_sync(work)``: dequeue it and sleep until it is not running."""
    was = [False]

    def start(c):
        _annotate(work.m, c, work)
        work.touch()
        q = work.queue
        if work.pending and q is not None and work in q.queue:
            q.queue.remove(work)
            work.pending = False
            was[0] = True
        work.canceling = True

    def finish(c):
        work.touch()
        work.canceling = False
        return was[0]

    return wait_for(work, lambda c: not work.running_seq, finish,
                    f"cancel_work_sync({work.name})", sleeps=True, start=start)
