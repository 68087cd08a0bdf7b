"""Operations: what a model yields.

A model thread is a generator.  Every ``yield`` hands the machine one
*operation* and is a point where the machine may let another CPU step first,
or deliver an interrupt.  Code between two yields runs atomically, the way a
model checker sees a program:

    def vm_object_reference(obj):
        yield obj.lock.lock()         # a step: may wait for the lock
        obj.ref_count += 1            # same step as the acquisition
        yield obj.lock.unlock()       # the next step

An operation's ``execute(machine, cpu)`` performs it for that CPU and returns
the value the ``yield`` evaluates to, or ``BLOCKED`` when the CPU must wait
(someone else will resume it).  Operations charge their duration by moving
the CPU's clock forward.

This module holds the operations that are not about locks or memory:
``work``, ``pause``, ``may_sleep``, ``note``, the spl family, the sleep
queues (``msleep``, ``tsleep``, ``wakeup``, and ``any_waiter`` for a channel
whose ``wakeup_one`` may wake any sleeper) and ``wait_event``, which sleeps
until a SimPy event of the machine's environment fires (a device's
completion).
"""

from __future__ import annotations

from numbers import Real

from .cpu import BLOCKED as CPU_BLOCKED
from .violations import ModelError

#: Returned by ``execute`` when the CPU cannot go on until someone resumes it.
BLOCKED = object()

# spl levels, lowest to highest.  An interrupt source at level L is masked on
# a CPU whose level is >= L.  ``splvm`` masks the bio and net classes too, as
# it did in FreeBSD 4.x.
SPL0 = 0
SPLSOFT = 1
SPLNET = 2
SPLBIO = 3
SPLVM = 4
SPLCLOCK = 5
SPLHIGH = 6

SPL_NAMES = {SPL0: "spl0", SPLSOFT: "splsoft", SPLNET: "splnet", SPLBIO: "splbio",
             SPLVM: "splvm", SPLCLOCK: "splclock", SPLHIGH: "splhigh"}


class Op:
    """Base of everything a model may yield."""

    __slots__ = ()

    def execute(self, m, c):  # pragma: no cover - every subclass defines it
        raise NotImplementedError


class Work(Op):
    """Keep the CPU busy for ``ns`` nanoseconds (jittered by the cost model)."""

    __slots__ = ("ns",)

    def __init__(self, ns):
        if not isinstance(ns, Real):
            raise TypeError(f"work(ns) needs a number of nanoseconds, got {ns!r}")
        if not 0 <= ns < float("inf"):  # NaN and infinity too
            raise ValueError(f"work(ns) needs ns >= 0, got {ns}" if ns < 0
                             else f"work(ns) needs a finite ns, got {ns}")
        self.ns = ns

    def execute(self, m, c):
        d = m.duration(self.ns)
        if m.tracing:
            m.record(c, "work", "", "", d)
        c.clock += d
        return None


class Pause(Op):
    """An explicit yield point that takes no time (repeated in place, a spin: ``kernel.spin``)."""

    __slots__ = ()

    def execute(self, m, c):
        m.paused(c)
        if m.tracing:  # a step that does nothing else: the narrative still shows it
            m.record(c, "pause", "", "")
        return None


_PAUSE = Pause()


class MaySleep(Op):
    """A call that may sleep for ``ns`` (``uma_zalloc(M_WAITOK)``, reclaim, disk I/O).

    Sleeping is illegal with a non-sleepable lock held or inside an
    interrupt handler; witness reports it.
    """

    __slots__ = ("ns", "what")

    def __init__(self, ns, what):
        self.ns = ns
        self.what = what

    def execute(self, m, c):
        m.witness.check_sleep(c, self.what, interlock=None)
        d = m.duration(self.ns)
        if m.tracing:
            m.record(c, "work", "", f"may sleep: {self.what}", d)
        c.clock += d
        return None


class Note(Op):
    """Put a line of the model's own into the trace."""

    __slots__ = ("text",)

    def __init__(self, text):
        self.text = str(text)

    def execute(self, m, c):
        if m.tracing:
            m.record(c, "note", "", self.text)
        return None


class SplRaise(Op):
    """Raise this CPU's interrupt priority level; evaluates to the old level."""

    __slots__ = ("level",)

    def __init__(self, level):
        self.level = level

    def execute(self, m, c):
        old = c.spl
        if self.level > old:
            c.spl = self.level
        if m.tracing:
            m.record(c, "spl", "", f"{SPL_NAMES.get(old, old)}->{SPL_NAMES.get(c.spl, c.spl)}")
        c.clock += m.costs.spl_ns
        return old


class SplX(Op):
    """Restore a level saved from an earlier raise; unmasked pending interrupts run next."""

    __slots__ = ("level",)

    def __init__(self, level):
        self.level = level

    def execute(self, m, c):
        old = c.spl
        c.spl = self.level
        if self.level < old and c.held:
            m.witness.irqs_enabled(c)  # the locks still held are now held unmasked
        if m.tracing:
            m.record(c, "spl", "", f"{SPL_NAMES.get(old, old)}->{SPL_NAMES.get(c.spl, c.spl)}")
        c.clock += m.costs.spl_ns
        return old


class Sleep(Op):
    """Sleep on a wait channel until woken; with ``interlock``, ``msleep`` style.

    With an interlock mutex the release and the sleep are one atomic step, and
    the mutex is taken again before the sleeper continues: exactly the window
    ``msleep(9)`` gives, which is how a sleeper lets others change what the
    mutex protects.
    """

    __slots__ = ("chan", "interlock")

    def __init__(self, chan, interlock=None):
        self.chan = chan
        self.interlock = interlock

    def execute(self, m, c):
        m.witness.check_sleep(c, "sleep", interlock=self.interlock)
        if self.interlock is not None:
            if not self.interlock.release_for_sleep(m, c):
                return BLOCKED  # unlock-not-held was reported; the run ends
        m.sleepq.sleep(m, c, self.chan, self.interlock)
        return BLOCKED


class WaitEvent(Op):
    """Block until a SimPy event fires (a device's completion); evaluates to its value.

    The thread sleeps as in ``tsleep``: its CPU idles at spl0 and takes
    interrupts meanwhile, and an event that nothing will ever trigger is
    reported as a deadlock naming it.
    """

    __slots__ = ("event", "name")

    def __init__(self, event, name):
        if not hasattr(event, "callbacks") or not hasattr(event, "env"):
            raise TypeError(f"wait_event() needs a SimPy event, got {event!r}")
        self.event = event
        self.name = name

    def execute(self, m, c):
        ev = self.event
        if ev.env is not m.env:
            raise ModelError(f"{c.ctx} waits for an event of another environment; make it "
                             f"with m.env (m.env.event(), m.env.timeout(...), a Store on m.env)")
        if ev.callbacks is None:  # already processed: go on at once
            return event_value(ev, c)
        m.witness.check_sleep(c, "wait_event", interlock=None)
        chan = EventWait(ev, self.name, m)
        m.sleepq.sleep(m, c, chan, None)
        ev.callbacks.append(chan.fired)
        return BLOCKED


class EventWait:
    """The wait channel of one ``wait_event``: woken when its SimPy event is processed."""

    __slots__ = ("event", "name", "m")

    def __init__(self, event, name, m):
        self.event = event
        #: What the wait is called in traces and reports (default: the event's type).
        self.name = name or type(event).__name__
        self.m = m

    def label(self) -> str:
        return f"event {self.name}"

    def fired(self, ev) -> None:
        """SimPy's callback: wake the thread with the event's value."""
        m = self.m
        for c in m.sleepq.sleepers(self):
            value = event_value(ev, c)
            m.sleepq.wakeup(m, m.clock_ns, self, False, traced_on_sleeper=True, value=value)


def event_value(ev, c):
    """What ``yield wait_event(ev)`` evaluates to: the event's value (a failure is an error)."""
    if not ev._ok:
        ev.defused = True
        raise ModelError(f"{c.ctx} waited for event {type(ev).__name__}, which failed: "
                         f"{ev._value!r}")
    return ev._value


class Wakeup(Op):
    """Wake every sleeper on a channel (``wakeup``), or the first one (``wakeup_one``)."""

    __slots__ = ("chan", "one")

    def __init__(self, chan, one=False):
        self.chan = chan
        self.one = one

    def execute(self, m, c):
        n = m.sleepq.wakeup(m, c.clock, self.chan, self.one)
        if m.tracing:
            m.record(c, "wakeup", m.sleepq.label(self.chan), str(n))
        return n


# Operations handed out and never yielded.  Every function that gives model code an
# operation bumps ``ISSUED``; the machine zeroes it before it resumes a thread and
# reads it after, and more operations made there than the one yielded (or any, when the
# thread returned) means a call lost its ``yield``: ``lock.lock()`` on its own does
# nothing.  Prebuilt operations (a lock's, ``work``'s) count too, since the count is
# taken at the call.  Finding *where* is the slow path: the run is made again with
# ``IssueLog`` noting the caller of each operation handed out.

#: Operations handed out to model code since the machine last resumed a thread (it
#: sets 0 first: one slot holding a small int is the cheapest counter there is).
ISSUED = [0]


class IssueLog:
    """While active, where each operation was handed out and not yet yielded (slow).

    A profile hook sees an engine function hand an operation to code outside
    the engine (noted with the caller's line), and a model generator yield one
    to the machine (struck off).
    """

    def __init__(self, engine_dir: str, machine_file: str):
        self.engine_dir = engine_dir
        self.machine_file = machine_file
        #: (operation, file, line) handed out and not yielded yet, in order.
        self.pending: list = []

    def __enter__(self):
        import sys
        self._old = sys.getprofile()
        sys.setprofile(self._hook)
        return self

    def __exit__(self, *exc):
        import sys
        sys.setprofile(self._old)
        return False

    def _hook(self, frame, event, arg):
        if event != "return" or not isinstance(arg, Op):
            return
        caller = frame.f_back
        if caller is None:
            return
        if frame.f_code.co_flags & 0x20:  # a generator yields: to the machine?
            if caller.f_code.co_filename == self.machine_file:
                for i, e in enumerate(self.pending):
                    if e[0] is arg:
                        del self.pending[i]
                        break
            return
        if (frame.f_code.co_filename.startswith(self.engine_dir)
                and not caller.f_code.co_filename.startswith(self.engine_dir)):
            self.pending.append((arg, caller.f_code.co_filename, caller.f_lineno))

    def lost(self):
        """(file, line) of the first operation handed out and never yielded, or None."""
        return (self.pending[0][1], self.pending[0][2]) if self.pending else None


#: Work operations by duration: models yield the same few durations over and over,
#: and an operation is immutable, so one object serves them all.
_WORK: dict = {}


def work(ns):
    """Busy the CPU for ``ns`` nanoseconds: ``yield work(120)``."""
    ISSUED[0] += 1
    try:
        op = _WORK.get(ns)
    except TypeError:  # unhashable: Work() says what is wrong with it
        op = None
    if op is None:
        op = Work(ns)
        if len(_WORK) < 4096 and type(ns) is int:
            _WORK[ns] = op
    return op


def pause():
    """A yield point that takes no time: lets other CPUs step here."""
    ISSUED[0] += 1
    return _PAUSE


def may_sleep(ns, what="may sleep"):
    """A call that may sleep for ``ns``: ``yield may_sleep(2_000, "uma_zalloc M_WAITOK")``."""
    ISSUED[0] += 1
    return MaySleep(ns, what)


def note(text):
    """Add the model's own line to the trace and the narrative."""
    ISSUED[0] += 1
    return Note(text)


def splraise(level):
    """``s = yield splraise(level)``: raise this CPU's level to ``level`` (never lowers it); evaluates to the old level."""
    ISSUED[0] += 1
    return SplRaise(level)


def splvm():
    """``s = yield splvm()``: mask vm, bio and net interrupts; evaluates to the old level."""
    ISSUED[0] += 1
    return SplRaise(SPLVM)


def splbio():
    """``s = yield splbio()``: mask disk (bio) and network interrupts; evaluates to the old level."""
    ISSUED[0] += 1
    return SplRaise(SPLBIO)


def splnet():
    """``s = yield splnet()``: mask network interrupts; evaluates to the old level."""
    ISSUED[0] += 1
    return SplRaise(SPLNET)


def splhigh():
    """``s = yield splhigh()``: mask every interrupt on this CPU; evaluates to the old level."""
    ISSUED[0] += 1
    return SplRaise(SPLHIGH)


def spl0():
    """Lower the level to 0, letting every pending interrupt in."""
    ISSUED[0] += 1
    return SplX(SPL0)


def splx(level):
    """``yield splx(s)``: restore the level saved by ``splvm()`` and friends."""
    ISSUED[0] += 1
    return SplX(level)


def msleep(chan, mtx):
    """Drop ``mtx`` and sleep on ``chan`` atomically; retake ``mtx`` when woken."""
    ISSUED[0] += 1
    return Sleep(chan, mtx)


def tsleep(chan):
    """Sleep on ``chan`` until a ``wakeup(chan)``."""
    ISSUED[0] += 1
    return Sleep(chan, None)


def wakeup(chan):
    """Wake every thread sleeping on ``chan``; evaluates to how many were woken."""
    ISSUED[0] += 1
    return Wakeup(chan, False)


def wakeup_one(chan):
    """Wake the longest sleeper on ``chan`` (any of them after ``any_waiter(chan)``)."""
    ISSUED[0] += 1
    return Wakeup(chan, True)


def wait_event(event, name=None):
    """Sleep until the SimPy ``event`` fires: ``value = yield wait_event(done, "bio done")``."""
    ISSUED[0] += 1
    return WaitEvent(event, name)


# Sleep queues: Sleep queues: ``tsleep``/``msleep`` and ``wakeup`` on wait channels.
# 
# A wait channel is any model object (an item, a lock, a string).  Sleepers on
# a channel wait in FIFO order; ``wakeup`` makes all of them runnable,
# ``wakeup_one`` the first.  A sleeper that used ``msleep`` takes its interlock
# mutex again before it continues.  A wakeup that comes before the sleep is
# lost, as in a kernel: the sleeper then never wakes, and the machine reports
# the stall as a deadlock naming the channel.


class SleepQueues:
    """The machine's table of sleepers, keyed by channel object."""

    def __init__(self) -> None:
        # Dict keyed by the channel object itself; only looked up, never
        # iterated, so its order cannot leak into a run.
        self._queues: dict = {}
        #: Channels whose ``wakeup_one`` may wake any sleeper (``any_waiter``), and
        #: their sleepers woken but not yet stepped: channel -> [claims left, sleepers].
        self.any_order: set = set()
        self.claims: dict = {}

    def label(self, chan) -> str:
        lab = getattr(chan, "label", None)
        if callable(lab):
            return lab()
        return str(chan)

    def sleepers(self, chan) -> list:
        """The CPUs sleeping on ``chan``, longest sleeper first (a copy)."""
        return list(self._queues.get(chan, ()))

    def sleep(self, m, c, chan, interlock) -> None:
        self._queues.setdefault(chan, []).append(c)
        c.state = CPU_BLOCKED
        c.sleep_chan = chan
        c.interlock = interlock
        # The level belongs to the thread: while it sleeps its CPU idles at spl0 and
        # takes interrupts (how a 4.x biowait under splbio gets its disk interrupt).
        c.sleep_spl = c.spl
        c.sleep_frame = len(c.frames) - 1
        c.spl = 0
        if c.irqs:
            m.idle_until_interrupt(c)
        if m.tracing:
            m.record(c, "sleep", self.label(chan), "")
        if m.footprint is not None:  # the label only for the exhaustive search
            m.footprint_touch(("chan", self.label(chan)))

    def wakeup(self, m, at_ns, chan, one: bool, traced_on_sleeper=False, value=None) -> int:
        """Wake ``chan``'s sleepers (the first only, with ``one``) at ``at_ns``.

        From outside a CPU (a device) the trace shows the wakeup on each woken
        CPU, since no CPU did it.
        """
        if m.footprint is not None:  # the label only for the exhaustive search
            m.footprint_touch(("chan", self.label(chan)))
        if chan in self.any_order:
            return wake_any(m, at_ns, self, chan, self._queues.pop(chan, []), one, value)
        q = self._queues.get(chan)
        if not q:
            return 0
        woken = q[:1] if one else list(q)
        del q[:len(woken)]
        if not q:
            del self._queues[chan]
        for s in woken:
            s.sleep_chan = None
            if traced_on_sleeper and m.tracing:
                m.record(s, "wakeup", self.label(chan), "", time=at_ns)
            m.resume_after_sleep(s, at_ns + m.costs.block_wakeup_ns, value)
        return len(woken)


# Which sleeper ``wakeup_one`` wakes, when the real primitive does not say.
#
# FreeBSD's ``wakeup_one`` wakes the sleeper that has waited longest, and that
# is what a channel does by default.  But ``pthread_cond_signal`` wakes "at
# least one" waiter, Linux's exclusive waits depend on queue position and
# priority, and a model of either should not bake in one order.  After
# ``any_waiter(chan)`` a ``wakeup_one(chan)`` makes every sleeper runnable and
# hands out one *claim*: the first to step takes it and goes on (retaking its
# ``msleep`` mutex); the others find it gone and sleep again.  Who steps first
# is an ordinary scheduling decision, so every strategy explores which waiter
# a signal wakes.  A sleeper woken and not yet stepped still counts as asleep:
# a second ``wakeup_one`` before it steps adds a claim rather than being lost.


class Claim(Op):
    """A woken sleeper's first step: take a wakeup, or go back to sleep."""

    __slots__ = ("queues", "chan", "group", "interlock", "then")

    def __init__(self, queues, chan, group, interlock, then):
        self.queues = queues
        self.chan = chan
        #: [wakeups not yet claimed, sleepers woken and not yet stepped], shared.
        self.group = group
        #: The ``msleep`` mutex to sleep with again, or None.
        self.interlock = interlock
        #: What the sleeper does once it has the wakeup (retake the mutex), or None.
        self.then = then

    def execute(self, m, c):
        queues, group = self.queues, self.group
        m.footprint_touch(("chan", queues.label(self.chan)))
        group[1] -= 1
        if group[1] == 0:
            del queues.claims[self.chan]
        if group[0] > 0:
            group[0] -= 1
            c.op = self.then  # if retaking the mutex must wait, that is what it waits in
            return self.then.execute(m, c) if self.then is not None else None
        queues.sleep(m, c, self.chan, self.interlock)
        return BLOCKED


def any_waiter(chan) -> None:
    """Let ``wakeup_one(chan)`` wake any of its sleepers, as the strategy chooses."""
    from .current import current_machine
    m = current_machine()
    if m is None:
        raise RuntimeError("call any_waiter() while a scenario sets its machine up")
    m.sleepq.any_order.add(chan)


def wake_any(m, at_ns, queues, chan, sleepers, one: bool, value=None) -> int:
    """A wakeup on an any-order channel: its sleepers run for the claims; how many get one.

    Sleepers woken earlier that have not stepped yet are still in the running,
    so a second ``wakeup_one`` before they step is not lost.
    """
    group = queues.claims.get(chan)
    if group is None:
        group = queues.claims[chan] = [0, 0]
    for s in sleepers:
        s.sleep_chan = None
        interlock = s.interlock
        m.resume_after_sleep(s, at_ns + m.costs.block_wakeup_ns, value)
        group[1] += 1
        fr = m.frame_above_sleeper(s)
        if fr is not None:  # it continues when the handler on its CPU returns
            fr.saved_op = Claim(queues, chan, group, interlock, fr.saved_op)
        else:
            s.op = Claim(queues, chan, group, interlock, s.op)
    before = group[0]
    group[0] = min(group[1], group[0] + 1 if one else group[1])
    if not group[1]:
        del queues.claims[chan]
    return group[0] - before
