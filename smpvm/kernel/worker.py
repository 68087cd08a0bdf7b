"""A queue served by a worker thread: what taskqueues and workqueues share.

A queue owns at most one worker thread at a time.  Enqueueing onto an idle
queue spawns the worker on a CPU that runs no thread (``cpu`` when given);
the worker runs items in FIFO order in thread context (it may sleep) and
ends when the queue is empty, in the same step as it finds it empty, so an
item enqueued later spawns a new one.  The strategy decides when the worker
steps, as for any CPU, so where the item runs relative to the enqueuer and
to a drain is part of what the search explores.  The machine needs a CPU
free for the worker: a scenario that pins the CPU count must leave one.
``cpu`` is a preference: when that CPU is busy (its thread, or a handler
on it) the worker goes to the first free one.
"""

from __future__ import annotations

from .waits import Kobj


class WorkerQueue(Kobj):
    """Items run one at a time by an on-demand worker thread; subclasses say how."""

    def __init__(self, m, name: str, cpu: int | None = None):
        super().__init__(m, name)
        #: CPU the worker runs on (None: the first CPU without a thread).
        self.cpu = cpu
        #: Items waiting, oldest first.
        self.queue: list = []
        #: The item the worker is running, or None.
        self.current = None
        #: True while a worker thread exists.
        self.active = False

    def _kick(self, m) -> None:
        """Make sure a worker will run the queue."""
        if self.active:
            return
        self.active = True
        cpu = self.cpu
        if cpu is not None and cpu < len(m.cpus) and m.cpus[cpu].frames:
            cpu = None  # busy (a thread, or a handler on an idle CPU): any free CPU
        c = m.spawn(self._loop(), name=f"{self.kind}:{self.name}", cpu=cpu)
        m.make_runnable(c, at_ns=m.now)

    def _loop(self):
        while True:
            self.touch()
            if not self.queue:
                self.active = False
                return
            item = self.queue.pop(0)
            self.current = item
            yield from self._run(item)
            self.touch()
            self.current = None
            self.waiters.wake_all()

    def _run(self, item):  # pragma: no cover - every subclass defines it
        raise NotImplementedError
        yield
