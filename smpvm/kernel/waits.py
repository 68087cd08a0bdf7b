"""What the kernel idioms share: their state's footprint, and CPUs waiting for it to change.

A callout, a work item or an RCU domain keeps its state as plain Python
fields, changed atomically inside one step (the kernel changes them under
its internal spin lock).  Two things make that safe for the search:

* every read and write of the state is noted in the step's footprint
  (``Kobj.touch``), so the exhaustive search sees the steps conflict;
* a CPU that must wait for the state to change (``callout_drain``,
  ``del_timer_sync``, ``flush_work``, ``synchronize_rcu``) blocks on a
  ``Waiters`` list, and the step that changes the state wakes it; the
  blocked operation then runs again and re-checks, as the kernel's loop
  around its sleep does.  A wait that sleeps is checked by witness (no
  sleeping with a spin lock held, in a handler, in an RCU section); a wait
  that spins (``del_timer_sync``) is not.

A CPU blocked this way stays blocked until woken: if nothing will wake it,
the machine reports the stall as a ``deadlock``.
"""

from __future__ import annotations

import itertools
import weakref

from ..cpu import BLOCKED as CPU_BLOCKED
from ..ops import BLOCKED, ISSUED, Op

#: Machine -> counter of kernel objects (stable numbers in creation order).
_COUNTERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


class Kobj:
    """Base of the kernel idioms' objects: a name, a machine and a footprint key."""

    #: What the kernel calls this kind of object (``callout``, ``timer_list``...).
    kind = "kernel object"
    #: Attributes that hold deferred work (a handler and its arguments): the CPU that
    #: runs it reaches what they hold (``smpvm.strategies.unseen`` looks there).
    deferred: tuple = ()

    def __init__(self, m, name: str):
        #: The machine the object lives in.
        self.m = m
        #: The object's name in reports and traces.
        self.name = name
        counter = _COUNTERS.get(m)
        if counter is None:
            counter = _COUNTERS[m] = itertools.count()
        #: Stable number of this object within its machine.
        self.uid = next(counter)
        self._key = ("kobj", self.uid)
        #: CPUs blocked until this object's state changes.
        self.waiters = Waiters(self)
        m.kernel_objects.append(self)
        self.handed()

    def handed(self) -> None:
        """Deferred work was set (or the object made) by a step: what it holds may
        reach another CPU, so ``dfs`` looks for shared state again."""
        if self.m.footprint is not None:
            self.m.escaped = True

    def touch(self, write: bool = True) -> None:
        """Note a read (or write) of this object's state in the current step's footprint."""
        self.m.footprint_touch(self._key, write)

    def label(self) -> str:
        """``<kind> <name>``, as reports name the object."""
        return f"{self.kind} {self.name}"

    def __repr__(self) -> str:
        return f"<{self.label()}>"


class Waiters:
    """CPUs blocked in a ``WaitFor`` on one object, in arrival order."""

    def __init__(self, obj):
        self.obj = obj
        self.cpus: list = []

    def block(self, c) -> None:
        """``c`` stops being runnable until ``wake_all``."""
        if c not in self.cpus:
            self.cpus.append(c)
        c.state = CPU_BLOCKED

    def wake_all(self) -> None:
        """Every waiter becomes runnable and re-checks what it waits for."""
        m = self.obj.m
        now = m.now
        woken, self.cpus = self.cpus, []
        for w in woken:
            if w.clock < now:
                w.clock = now
            m.make_runnable(w)


class WaitFor(Op):
    """Block until ``ready()`` holds, then evaluate to ``finish()`` (both called with the CPU).

    ``what`` names the wait for witness and traces; ``sleeps`` says whether
    it sleeps (witness checks it) or spins.  ``start(c)``, when given, runs
    once, at the first attempt.
    """

    __slots__ = ("obj", "ready", "finish", "what", "sleeps", "start", "_started", "interlock")

    def __init__(self, obj, ready, finish, what, sleeps=True, start=None, interlock=None):
        self.obj = obj
        self.ready = ready
        self.finish = finish
        self.what = what
        self.sleeps = sleeps
        self.start = start
        self._started = False
        self.interlock = interlock

    def execute(self, m, c):
        obj = self.obj
        obj.touch(write=False)
        if not self._started:
            self._started = True
            if self.start is not None:
                self.start(c)
        if self.ready(c):
            return self.finish(c) if self.finish is not None else None
        if self.sleeps:
            m.witness.check_sleep(c, self.what, interlock=self.interlock)
        obj.waiters.block(c)
        if m.tracing:
            m.record(c, "wait", obj.label(), self.what)
        return BLOCKED


class Call(Op):
    """An operation that runs ``fn(m, c)`` atomically and evaluates to its result."""

    __slots__ = ("fn",)

    def __init__(self, fn):
        self.fn = fn

    def execute(self, m, c):
        return self.fn(m, c)


def op(fn) -> Call:
    """Hand model code an operation running ``fn(m, cpu)`` (counted as handed out)."""
    ISSUED[0] += 1
    return Call(fn)


def wait_for(obj, ready, finish, what, sleeps=True, start=None, interlock=None) -> WaitFor:
    """Hand model code a ``WaitFor`` operation (counted as handed out)."""
    ISSUED[0] += 1
    return WaitFor(obj, ready, finish, what, sleeps, start, interlock)
