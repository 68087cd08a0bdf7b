"""The machine's SimPy environment: kernel threads are processes in it, devices live beside them.

Every machine owns an ``Engine`` (``m.env``), a ``simpy.Environment`` whose
clock is the machine's clock in nanoseconds.  Each CPU's kernel thread, and
the interrupt handlers that run on top of it, is a ``KernelThread``: a real
``simpy.Process`` that other processes may ``yield`` to wait for the thread
to end, and that ``env.active_process`` names while the CPU steps.

What differs from a plain environment is who drives it.  SimPy would resume
a process by scheduling an event for every step; the machine instead runs
its own loop (``Machine.run``): it lets SimPy process its queue up to the
time of the next CPU step, asks the strategy when two or more CPUs could
step, and runs the chosen CPU's operation directly.  A kernel operation that
takes no simulated time therefore costs no SimPy event at all, and a model
with no process of its own never touches SimPy's queue.

Processes added with ``m.env.process(gen)`` (a disk, a NIC, a workload
generator) are ordinary SimPy processes: they yield timeouts, store and
resource requests, any event.  They reach the CPUs through the machine:
``m.interrupt(...)``, ``m.wakeup(chan)``, or by triggering an event a kernel
thread waits on with ``yield wait_event(ev)``.
"""

from __future__ import annotations

from heapq import heappush
from itertools import count

import simpy
from simpy.events import NORMAL, PENDING, Process

from .violations import ModelError


class Engine(simpy.Environment):
    """``m.env``: a SimPy environment whose clock and loop belong to machine ``m``."""

    def __init__(self, machine):
        #: The machine this environment belongs to (its clock is the machine's).
        self.machine = machine
        # What Environment.__init__ sets, less the clock (the machine's) and the early
        # binding of its shortcuts (a few microseconds per run, at thousands of runs/s).
        self._queue = []
        self._eid = count()
        self._active_proc = None

    # SimPy reads and writes ``_now`` itself (scheduling, stepping); here it is the
    # machine's clock, which never runs backwards.
    @property
    def _now(self):
        return self.machine.clock_ns

    @_now.setter
    def _now(self, t):
        self.machine.advance_clock(t)

    @property
    def now(self):
        """Simulated time in ns: the stepping CPU's clock inside a step, else the machine's."""
        return self.machine.now

    @property
    def active_process(self):
        """The SimPy process running: a device's, or the kernel thread of the CPU stepping."""
        p = self._active_proc
        if p is None:
            c = self.machine.current
            if c is not None:
                return c.process
        return p

    def schedule(self, event, priority=NORMAL, delay=0):
        """Queue ``event`` as SimPy does, and tell the machine's loop when it is due."""
        t = self._now + delay
        heappush(self._queue, (t, priority, next(self._eid), event))
        self.machine.device_scheduled(t)

    def run(self, until=None):
        """Refused: the machine's loop drives this environment (``m.run()`` or the scenario)."""
        raise ModelError("the machine drives its environment: call m.run() (or run the "
                         "scenario), not m.env.run()")


class KernelThread(Process):
    """A CPU's kernel thread as a SimPy process, stepped by the machine's loop.

    It is an event that succeeds (value None) when the thread returns, so a
    device may ``yield`` it to wait for the thread.  SimPy never resumes it
    itself: there is no initialising event and no event per step.
    """

    def __init__(self, env, cpu, generator):
        # Process.__init__ would schedule an Initialize event; the machine steps this one.
        self.env = env
        self.callbacks = []
        self._value = PENDING
        self._generator = generator
        self._target = None
        #: The CPU that runs the thread.
        self.cpu = cpu

    @property
    def name(self) -> str:
        """The name of the CPU that runs the thread (``cpu0``...)."""
        return self.cpu.name

    def interrupt(self, cause=None):
        """Refused: interrupts reach a CPU through ``m.interrupt`` and its masking rules."""
        raise ModelError(f"a kernel thread takes interrupts from the machine: use "
                         f"m.interrupt({self.cpu.id}, level, handler), not "
                         f"{self.cpu.name}.process.interrupt()")

    def finished(self, delay: int) -> None:
        """The thread returned: succeed, resuming whoever waits ``delay`` ns from now."""
        self._ok = True
        self._value = None
        if self.callbacks:
            self.env.schedule(self, delay=delay)
        else:
            self.callbacks = None  # processed: a later ``yield`` goes straight on
