"""CPUs: each runs one kernel thread and takes interrupts.

A CPU keeps a stack of *frames*: its thread's generator at the bottom and,
above it, the generator of each interrupt handler it is running.  The top
frame's last yielded operation is the CPU's *pending* step.  An interrupt
is taken only at such a yield point, by pushing the handler's frame; when the
handler returns, the interrupted operation is still pending and runs next.

The CPU's ``clock`` is the simulated time at which its next step happens.
"""

from __future__ import annotations

RUNNABLE = 0
BLOCKED = 1
DONE = 2


class Frame:
    """One context on a CPU: the thread, or an interrupt handler above it."""

    __slots__ = ("gen", "ctx", "saved_op", "saved_value", "saved_spl", "source")

    def __init__(self, gen, ctx, saved_op=None, saved_value=None, saved_spl=0, source=None):
        #: The model generator running in this context.
        self.gen = gen
        #: The context's name: the thread's name or ``irq:<source>``.
        self.ctx = ctx
        #: The interrupted context's pending operation and resume value.
        self.saved_op = saved_op
        self.saved_value = saved_value
        #: The spl level to restore when the handler returns.
        self.saved_spl = saved_spl
        #: The interrupt source (None for the thread frame).
        self.source = source


class Held:
    """A lock this CPU holds, with where and when it took it."""

    __slots__ = ("lock", "mode", "_site", "since_ns", "count", "depth")

    def __init__(self, lock, mode, site, since_ns, depth=0):
        self.lock = lock
        #: "x" exclusive or "s" shared.
        self.mode = mode
        # Where it was taken: a site token, named only if a report asks (see ``site``).
        self._site = site
        #: Simulated time the hold began (for hold-time statistics).
        self.since_ns = since_ns
        #: Recursion depth (1 = held once).
        self.count = 1
        #: The CPU's interrupt nesting when it was taken (0: by the thread).
        self.depth = depth

    @property
    def site(self) -> str:
        """Model location (``path:line``) of the acquisition, for reports."""
        s = self._site
        if type(s) is not str:
            s = self._site = self.lock.m.site_name(s)
        return s


class CPU:
    """One simulated processor."""

    __slots__ = ("id", "name", "frames", "op", "value", "clock", "spl", "held",
                 "state", "wait_lock", "wait_mode", "wait_since", "wait_spins",
                 "wait_site", "sleep_chan", "irqs", "irq_depth", "irq_off",
                 "interlock", "granted", "sleep_spl", "sleep_frame", "heap_key", "process")

    def __init__(self, cpu_id: int, name: str):
        self.id = cpu_id
        #: Display name: the thread's name once one is spawned here.
        self.name = name
        #: Contexts, thread first, interrupt handlers above.
        self.frames: list[Frame] = []
        #: Pending operation, or None when the next step resumes with ``value``.
        self.op = None
        self.value = None
        #: Simulated time (ns) of this CPU's next step.
        self.clock = 0
        #: Current interrupt priority level.
        self.spl = 0
        #: Locks held, in acquisition order.
        self.held: list[Held] = []
        #: RUNNABLE, BLOCKED or DONE.
        self.state = DONE
        #: The lock this CPU waits for, the mode, since when, spinning or not, where.
        self.wait_lock = None
        self.wait_mode = "x"
        self.wait_since = 0
        self.wait_spins = True
        self.wait_site = None  # a site token (Machine.site_token)
        #: The wait channel this CPU sleeps on (None when not sleeping).
        self.sleep_chan = None
        #: The mutex to retake after an msleep wakeup.
        self.interlock = None
        #: The thread's spl while it sleeps (its CPU idles at spl0 meanwhile).
        self.sleep_spl = 0
        #: Index in ``frames`` of the frame that sleeps (a thread, or a handler that slept).
        self.sleep_frame = 0
        #: Time of this CPU's valid entry in the timed scheduler's heap (-1: none).
        self.heap_key = -1
        #: Pending interrupts: list of [arrival_ns, source], sorted by arrival.
        self.irqs: list = []
        #: Nesting depth of interrupt handlers (0 in thread context).
        self.irq_depth = 0
        #: Spin mutexes held that disable interrupts (FreeBSD spinlock_enter).
        self.irq_off = 0
        #: Label of a lock handed to this CPU while it waited, traced at its next step.
        self.granted = None
        #: The thread as a SimPy process (``smpvm.engine.KernelThread``), once spawned.
        self.process = None


    @property
    def ctx(self) -> str:
        return self.frames[-1].ctx if self.frames else self.name

    @property
    def in_interrupt(self) -> bool:
        return self.irq_depth > 0

    def holding(self, lock):
        """The Held record for ``lock``, or None."""
        for h in self.held:
            if h.lock is lock:
                return h
        return None

    def holds(self, lock, exclusive: bool = False) -> bool:
        h = self.holding(lock)
        return h is not None and (not exclusive or h.mode == "x")

    def __repr__(self) -> str:
        return f"CPU{self.id}({self.name})"
