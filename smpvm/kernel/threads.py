"""Threads made while a run is going on, and waiting for one to end.

A scenario starts its threads with ``m.spawn`` before the run; a running
thread can start more, the way ``kthread_add`` or ``pthread_create`` do:

    def parent():
        child = yield spawn_thread(worker(), name="worker")
        ...                       # the child may already have run here
        yield join(child)         # waits until worker() has returned

``spawn_thread`` is a scheduling point on both sides of the creation: the
child becomes runnable in the step that creates it, and the parent's next
code runs only in a later step, so every strategy may run the child first.
(``m.spawn`` called directly from a running thread also starts the child at
once, but the parent's code up to its next ``yield`` stays atomic with it.)

``join`` waits on the thread's end as on a wait channel: the end wakes every
joiner, a join of a thread that has already ended returns at once, and a
join that can never return (the thread is stuck) is part of the stall the
machine reports.  A ``Thread`` handle is what both return; ``join`` also
takes the CPU that ``m.spawn`` returns, meaning the thread it runs now.
"""

from __future__ import annotations

from ..ops import BLOCKED, ISSUED, Op


class Thread:
    """A kernel thread started by ``m.spawn`` or ``spawn_thread``: what ``join`` waits for."""

    __slots__ = ("cpu", "name", "serial", "ended")

    def __init__(self, cpu, name: str, serial: int):
        #: The CPU the thread runs on.
        self.cpu = cpu
        #: The thread's name (the CPU's display name while it runs).
        self.name = name
        #: Its number among the threads of the run, in creation order (from 0).
        self.serial = serial
        #: True once its generator has returned.
        self.ended = False

    def label(self) -> str:
        """How traces, footprints and stall reports name the end of this thread."""
        return f"end of thread {self.name}#{self.serial}"

    def __repr__(self) -> str:
        return f"Thread({self.name!r} on CPU{self.cpu.id})"


class SpawnThread(Op):
    """Start a thread on a free CPU; evaluates to its ``Thread`` (two steps: see the module)."""

    __slots__ = ("gen", "name", "cpu_id", "thread")

    def __init__(self, gen, name, cpu_id):
        self.gen = gen
        self.name = name
        self.cpu_id = cpu_id
        #: The thread once made (the op's second execution hands it to the parent).
        self.thread = None

    def execute(self, m, c):
        if self.thread is not None:
            return self.thread  # the parent's step after the creation
        child = m.spawn(self.gen, self.name, self.cpu_id)
        self.thread = m.thread_on(child)
        if m.tracing:
            m.record(c, "spawn", child.name, f"CPU{child.id}")
        return BLOCKED  # end the parent's step here: the creation is a scheduling point


class Join(Op):
    """Wait until a thread has returned."""

    __slots__ = ("thread",)

    def __init__(self, thread):
        self.thread = thread

    def execute(self, m, c):
        t = self.thread
        m.footprint_touch(("chan", t.label()), write=False)
        if t.ended:
            return None
        if t.cpu is c:
            from .violations import ModelError
            raise ModelError(f"thread {t.name} joins itself at {m.site(c)}")
        m.sleepq.sleep(m, c, t, None)
        return BLOCKED


def spawn_thread(gen, name: str | None = None, cpu: int | None = None):
    """``t = yield spawn_thread(worker(), name="w")``: start a thread from a running one."""
    ISSUED[0] += 1
    return SpawnThread(gen, name, cpu)


def join(thread):
    """``yield join(t)``: wait until thread ``t`` (or the thread on CPU ``t``) has returned."""
    ISSUED[0] += 1
    if not isinstance(thread, Thread):
        from ..current import current_machine
        m = current_machine()
        found = m.thread_on(thread) if m is not None else None
        if found is None:
            raise TypeError(f"join() needs a Thread (from spawn_thread) or a CPU "
                            f"(from m.spawn), got {thread!r}")
        thread = found
    return Join(thread)


def thread_ended(m, c, thread) -> None:
    """The machine's part when a thread returns: mark it and wake its joiners."""
    thread.ended = True
    m.sleepq.wakeup(m, c.clock, thread, False)
