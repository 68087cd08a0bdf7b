"""The machine: one run of a model on a simulated SMP.

A machine has N CPUs, each running one kernel thread (a generator) and
taking interrupts; a cost model; a seeded random generator; the lock
registry, witness, lock statistics and the trace.  ``run()`` steps CPUs
until every thread has finished, the run stalls (deadlock), a fatal
violation ends it, or ``max_steps`` is exceeded.  A run is a pure function of
(model, scenario, variant, parameters, strategy, seed).

Which CPU steps next is the heart of it, and there are two views of time:

* **timed** (the default strategy): the CPUs whose next step is due earliest
  may step; durations come from the cost model, so statistics mean
  something.  Exact ties go to the strategy, which breaks them by CPU number.
* **exploration** (random, pct, dfs): every CPU that is not blocked may step;
  durations only order steps within one CPU, the way a model checker sees
  the program.  Time still advances consistently, so traces read the same.

The strategy is asked only when two or more CPUs could step (or two waiters
could get a released lock), and every answer is recorded by CPU number, so
the list of choices replays the run exactly.

The machine owns a SimPy environment (``m.env``, see ``smpvm.engine``):
each CPU's thread is a process in it, and the model may add processes of its
own (devices).  The machine's loop drives that environment: SimPy events due
before the next CPU step are processed first, in time order, then the
strategy picks among the CPUs that may step, and the chosen CPU's operation
runs directly, without an event (which is what makes thousands of runs per
second possible).  A model without processes of its own never touches
SimPy's queue.
"""

from __future__ import annotations

import functools
import gc
import heapq
import os
import traceback
from types import GeneratorType

from . import current, seeds
from .costs import Costs
from .cpu import BLOCKED, CPU, DONE, RUNNABLE, Frame
from .engine import Engine, KernelThread
from .locks.base import Acquire, Release
from .lockstat import LockStat
from .memory import Zone
from .ops import BLOCKED as OP_BLOCKED
from .ops import ISSUED, EventWait, IssueLog, Op, Work
from .ops import SleepQueues
from .kernel import spin
from .kernel.threads import Thread, thread_ended
from .strategies.base import DELIVER, NOT_YET
from .trace import TraceRecord
from .violations import FATAL, ModelError, Violation
from .witness import Witness

_ENGINE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


#: Root directory -> the site names of model code (``Machine.site_name``), for every
#: machine of the process with that root: runs of a search meet the same sites again.
_SITE_NAMES: dict = {}
_SITE_NAMES_MAX = 100_000

#: The timed view's heap entry for "SimPy events are due" (CPU numbers are >= 0).
DEVICES = -1


class UnyieldedOp(ModelError):
    """Model code made an operation and never yielded it (a call without its ``yield``)."""

    def __init__(self, message, choices=(), located=False):
        super().__init__(message)
        #: The run's choices up to the step that lost it (to run it again, noting sites).
        self.choices = list(choices)
        #: True when the message names the line that made the operation.
        self.located = located


class RunStopped(BaseException):
    """Unwinds model code when a fatal violation ends the run (not an error)."""


class InterruptSource:
    """Delivers a handler at an spl level to one CPU: at given times, as a Poisson stream,
    or once inside a window where the strategy places it."""

    def __init__(self, m, name, level, handler, cpu, rate_per_s, at_ns, window=None):
        self.m = m
        self.name = name
        self.level = level
        self.handler = handler
        self.cpu = cpu
        self.rate_per_s = rate_per_s
        #: (start_ns, end_ns or None) when the strategy places the one arrival; else None.
        self.window = window
        #: The strategy chose to deliver it (a window source only).
        self.landed = False
        if window is not None:
            at_ns = (window[0],)  # pending from the window's start, kept when threads end
        self.times = sorted(at_ns) if at_ns is not None else None
        self._next = 0
        #: Delivery latencies (arrival to handler start), ns.
        self.latencies: list[int] = []

    def next_arrival(self, after_ns):
        if self.times is not None:
            if self._next < len(self.times):
                t = self.times[self._next]
                self._next += 1
                return t
            return None
        gap = self.m.rng.exponential(1e9 / self.rate_per_s)
        return after_ns + max(1, int(gap))


class RaisedInterrupt:
    """One interrupt raised by ``Machine.interrupt`` (a device, a timer): delivered once."""

    __slots__ = ("name", "level", "handler", "latencies", "threaded", "window", "landed")

    #: Like a source with listed arrival times: kept when the threads have ended.
    times = ()

    def __init__(self, name, level, handler, latencies, window=None):
        self.name = name
        self.level = level
        self.handler = handler
        #: The latencies of every interrupt raised under this name.
        self.latencies = latencies
        #: A handler run as a thread (softclock): no interrupt-safety marks.
        self.threaded = False
        #: (start_ns, end_ns) when the strategy places the arrival inside it; else None.
        self.window = window
        self.landed = False

    def next_arrival(self, after_ns):
        return None


#: The options of an ``"irq"`` decision (``smpvm.strategies.base``).
IRQ_OPTIONS = [NOT_YET, DELIVER]
#: How ``_deliver_irq`` treats a window interrupt that is due: ask the strategy, do not
#: (the timed view asked at the yield, in ``_irq_due``), or take it at once (a spinner).
_DONT_ASK, _ASK, _FORCE = 0, 1, 2


def arrival_window(window, what):
    """``window`` checked: (start_ns, end_ns), or (0, None) for ``"any"``."""
    if window == "any":
        return (0, None)
    try:
        start, end = window
        start, end = int(start), int(end)
    except (TypeError, ValueError):
        raise ModelError(f"{what}: window must be (start_ns, end_ns) or \"any\", "
                         f"got {window!r}") from None
    if start < 0 or end < start:
        raise ModelError(f"{what}: window ({start}, {end}) must have 0 <= start_ns <= end_ns")
    return (start, end)


#: RunResult fields read off the run's witness only when asked for (most runs of a
#: search are never asked): name -> how.
_FROM_WITNESS = {
    "witness_edges": lambda w: w.edge_list(),
    "witness_usage": lambda w: w.usage_list(),
    "witness_classes": lambda w: dict(w.classes),
}


class RunResult:
    """Everything a run produced, as plain data (pickles across processes).

    The witness graph's fields (``witness_edges``, ``witness_usage``,
    ``witness_classes``) are made from the run's witness when first read, or
    when the result is pickled.
    """

    def __init__(self, witness=None, **kw):
        self.__dict__.update(kw)
        if witness is not None:
            self.__dict__["_witness"] = witness

    def __getattr__(self, name):
        make = _FROM_WITNESS.get(name)
        w = self.__dict__.get("_witness")
        if make is None or w is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        value = self.__dict__[name] = make(w)
        return value

    def __getstate__(self):
        for name in _FROM_WITNESS:
            getattr(self, name, None)
        state = dict(self.__dict__)
        state.pop("_witness", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)

    @property
    def failed(self) -> bool:
        """True when the run found any violation."""
        return bool(self.violations)

    def kinds(self) -> list[str]:
        """The distinct violation kinds found, sorted."""
        return sorted({v.kind for v in self.violations})

    def first(self):
        """The first violation found, or None."""
        return self.violations[0] if self.violations else None

    def lockstat_table(self) -> str:
        """The lock statistics as a fixed-width text table."""
        from .lockstat import plain_table
        return plain_table(self.lockstat)


class Machine:
    """One run of a model on a simulated SMP: CPUs, time, a strategy, locks, witness and the trace.

    ``m = Machine(seed=1)``; make locks and zones with it, ``m.spawn(gen)`` one
    kernel thread per CPU, then ``result = m.run()``.  A run is a pure function
    of the model, its parameters, the strategy and the seed.
    """

    # Slots: a machine has more attributes than an instance dict shares keys for, and
    # the hot loops read them all the time.  ``__dict__`` keeps room for the rest
    # (``placing``, ``issue_log`` and whatever a caller hangs on a machine).
    __slots__ = (
        "_alive", "_ended_holding", "_heap", "_jit_rand", "_locks", "_now", "_owed_at",
        "_owing", "_quiescence", "_raised", "_rng", "_root", "_simq", "_site_cache",
        "_spawned", "_started", "_static_zones", "_t0", "_threads", "_unsettled", "_want_fp",
        "_zones",
        "arrival_windows", "books", "choices", "costs", "cpus", "current", "decisions",
        "draws_by_index", "env", "escaped", "footprint", "interrupt_sources",
        "kernel_objects", "lockstat", "max_steps", "metrics", "ncpus", "params", "seed",
        "sim_events", "sink", "sites", "sleepq",
        "spin_watch", "steps", "stop_at_first", "stopped", "strategy", "timed", "tracing",
        "variant", "violations", "witness", "__dict__", "__weakref__")

    #: Take the plain path where the timed loop has hand-inlined copies (``_pop_due``,
    #: ``duration``, lock operations dispatched without ``execute``).  The copies
    #: exist for speed only; a test runs every shipped model both ways and compares
    #: the traces byte for byte.
    plain_hot_path = False

    def __init__(self, *, cpus: int | None = None, seed: int = 0, strategy=None,
                 costs: Costs | None = None, trace=None, max_steps: int = 1_000_000,
                 lockstat: bool = True, witness: bool = True, stop_at_first: bool = False,
                 footprints: bool = False, source_root: str | None = None,
                 variant: str | None = None, params: dict | None = None):
        if cpus is not None and cpus < 1:
            raise ValueError(f"a machine needs at least 1 CPU, got {cpus}")
        #: Requested CPU count (None: as many as the scenario spawns threads).
        self.ncpus = cpus
        self.seed = int(seed)
        self.costs = costs or Costs()
        if strategy is None:
            from .strategies.timed import Timed
            strategy = Timed()
            strategy.begin(self.seed)
        self.strategy = strategy
        #: True when the earliest-due CPUs step (durations order everything).
        self.timed = bool(getattr(strategy, "timed", False))
        #: The strategy draws hand-offs uniformly by index (``draw``) rather than by ``pick``.
        self.draws_by_index = bool(getattr(strategy, "draws_by_index", False))
        self.max_steps = max_steps
        self.stop_at_first = stop_at_first
        self.variant = variant
        self.params = dict(params or {})
        self.sink = trace
        self.tracing = trace is not None
        self.lockstat = LockStat() if lockstat else None
        self.witness = Witness(self, enabled=witness)
        #: Compute model sites for held locks (witness reports, traces).
        self.sites = witness or self.tracing
        self.sleepq = SleepQueues()
        self.cpus: list[CPU] = []
        #: The machine's global clock: the start time of the latest step (ns).
        self._now = 0
        #: The SimPy environment the CPUs' threads and the model's own processes share.
        self.env = Engine(self)
        #: SimPy events the loop has processed (devices' steps); 0 in a model without any.
        self.sim_events = 0
        # Name -> the stats source of interrupts raised under that name (``interrupt``).
        self._raised: dict = {}
        # SimPy's event queue (a heap of (time, priority, id, event)): empty unless
        # the model has processes of its own, which is all the hot loops look at.
        self._simq = self.env._queue
        self._started = False
        #: Simulated time at which the current step started.
        self._t0 = 0
        self.steps = 0
        #: Choices made at decision points (CPU numbers), in order.
        self.choices: list[int] = []
        #: Decision points where two or more CPUs could step.
        self.decisions = 0
        self.violations: list[Violation] = []
        self.metrics: dict[str, float] = {}
        #: State declared ``bookkeeping``: id -> (object, attribute names or None for all).
        #: Kept here, not in a table keyed by machine, so it dies with the run.
        self.books: dict = {}
        #: The spin watch (``kernel.spin``), made by the run's first pause.
        self.spin_watch = None
        self.current: CPU | None = None
        self.stopped = False
        #: The current step's footprint (key -> written), or None when no strategy wants it.
        self.footprint = None
        self._want_fp = footprints
        #: Set when a step may have handed plain Python state to another CPU (a thread
        #: started mid-run, a list stored in a field): ``dfs`` then looks for it again.
        self.escaped = False
        #: Slots freed in the step now ending, settled when it ends (``settle_later``).
        self._unsettled: list = []
        self._locks: list = []
        self._zones: list = []
        #: The kernel idioms' objects (callouts, tasks, ...), in the order made.
        self.kernel_objects: list = []
        #: Interrupt sources in the order they were declared.
        self.interrupt_sources: list[InterruptSource] = []
        #: Interrupts declared or raised with a window (their placement is a decision).
        self.arrival_windows = 0
        self._quiescence: list = []
        self._heap: list = []
        self._rng = None
        self._jit_rand = None
        self._static_zones: dict = {}
        root = source_root or os.getcwd()
        self._root = _normalised(root) if os.path.isabs(root) else os.path.abspath(root)
        # (id(code), offset) -> (code, "path:line"), shared by the machines with this root
        self._site_cache = _SITE_NAMES.get(self._root)
        if self._site_cache is None or len(self._site_cache) > _SITE_NAMES_MAX:
            self._site_cache = _SITE_NAMES[self._root] = {}
        self._alive = 0
        #: CPU id -> operations its thread made and has not yielded yet (see ``_settle``).
        self._owing: dict = {}
        #: CPU id -> where it started owing.
        self._owed_at: dict = {}
        #: CPU id -> the Thread it runs now; threads made so far.
        self._threads: dict = {}
        self._spawned = 0
        #: CPUs whose thread returned holding locks: a stall names them, else an assertion.
        self._ended_holding: list = []

    # -- what models use -----------------------------------------------------------

    @property
    def now(self) -> int:
        """Simulated time in ns: the running CPU's own clock inside a step, else the machine's."""
        c = self.current
        return c.clock if c is not None else self._now

    @property
    def clock_ns(self) -> int:
        """The machine's global clock (ns): the start of the latest step or device event."""
        return self._now

    def advance_clock(self, t) -> None:
        """Move the global clock to ``t`` if that is later (SimPy stepping its queue)."""
        if t > self._now:
            self._now = t

    @property
    def time_matters(self) -> bool:
        """Interrupts or device events in this run so far, or device events queued: when
        a step happens can change what happens.  Once true it stays so for the run."""
        return bool(self.interrupt_sources or self.sim_events or self._simq)

    @property
    def wants_footprints(self) -> bool:
        """Does every step note what it touches (``footprint``), for an exhaustive search?
        Fixed for the run; where it is false, the footprint is always None."""
        return self._want_fp

    @property
    def rng(self):
        """The run's seeded numpy Generator, for the model's own workload randomness."""
        if self._rng is None:
            self._rng = seeds.model_rng(self.seed)
        return self._rng

    @property
    def rng_in_use(self):
        """``m.rng`` if the model has drawn from it in this run, else None (nothing to track)."""
        return self._rng

    @property
    def zones(self) -> tuple:
        """Every zone of this run (those behind ``m.shared`` too), in the order made."""
        return tuple(self._zones)

    def spawn(self, gen, name: str | None = None, cpu: int | None = None) -> CPU:
        """Run the generator ``gen`` as the kernel thread of the next free CPU (or ``cpu``)."""
        if type(gen) is not GeneratorType:  # what inspect.isgenerator() asks (no subclasses)
            raise ModelError(f"spawn() needs a generator (call the thread function), got {gen!r}")
        running = self.current is not None  # a thread starts another mid-run
        cpus = self.cpus
        if cpu is None:
            # mid-run, a CPU whose thread ended holding locks keeps them (a stall names them)
            cpu = len(cpus)
            for c in cpus:
                if not c.frames and not (running and c.held):
                    cpu = c.id
                    break
        if self.ncpus is not None and cpu >= self.ncpus:
            raise ModelError(f"the scenario runs more threads than the {self.ncpus} CPU(s) "
                             f"asked for; raise --cpus")
        while len(cpus) <= cpu:
            cpus.append(CPU(len(cpus), f"cpu{len(cpus)}"))
        c = cpus[cpu]
        if c.frames:
            raise ModelError(f"CPU{cpu} already runs thread {c.name!r}")
        c.name = name = name or f"thread{cpu}"
        c.frames.append(Frame(gen, name))
        c.process = KernelThread(self.env, c, gen)
        self._threads[cpu] = Thread(c, name, self._spawned)
        self._spawned += 1
        self._alive += 1
        if running:  # runnable from the creator's time on, under every strategy
            self.escaped = True  # what its arguments hold, the creator may hold too
            c.clock = max(c.clock, self.current.clock)
            c.state = BLOCKED
            self.make_runnable(c)
            if self.tracing:
                self.record(c, "thread-begin", c.name, "", time=c.clock)
        else:
            c.state = RUNNABLE
        return c

    def thread_on(self, c):
        """The Thread that CPU ``c`` runs (or ran last), or None."""
        return self._threads.get(c.id)

    def metric(self, name: str, value: float) -> None:
        """Report a number of the model's own (throughput, retries...) in the run's results."""
        self.metrics[name] = value

    def count(self, name: str, n: float = 1) -> None:
        """Add ``n`` to a model metric."""
        self.metrics[name] = self.metrics.get(name, 0) + n

    def on_quiescence(self, check) -> None:
        """Call ``check()`` once every thread has finished (leak checks use ``kassert``)."""
        self._quiescence.append(check)

    def interrupt_source(self, name: str, level: int, handler, *, cpu: int = 0,
                         rate_per_s: float | None = None, at_ns=None,
                         window=None) -> InterruptSource:
        """Deliver ``handler()`` (a generator function) at spl ``level`` to ``cpu``.

        Give exactly one of:

        * ``at_ns``: arrival times;
        * ``rate_per_s``: a Poisson stream that lasts while any thread runs;
        * ``window``: one arrival whose placement the strategy chooses.
          ``(start_ns, end_ns)``: at any yield point of ``cpu`` from
          ``start_ns`` on, and at the first one at or after ``end_ns`` at the
          latest; ``"any"``: at any yield point while ``cpu``'s thread runs,
          and once it has ended (or sleeps) at the latest.  At each yield
          point where the window is open and ``level`` unmasked, the strategy
          decides (an ``"irq"`` decision: deliver now or not yet), so a search
          tries the interrupt at every point of the window, and a saved
          failure replays the placement.  A CPU that is idle, asleep or
          spinning for a lock takes it as soon as the window opens.

        A masked arrival waits until the CPU's level drops below ``level``.
        """
        if sum(x is not None for x in (rate_per_s, at_ns, window)) != 1:
            raise ModelError(f"interrupt source {name!r}: give exactly one of rate_per_s, "
                             f"at_ns, window")
        if window is not None:
            window = arrival_window(window, f"interrupt source {name!r}")
            self.arrival_windows += 1
        src = InterruptSource(self, name, level, handler, cpu, rate_per_s, at_ns, window)
        self.interrupt_sources.append(src)
        return src

    def interrupt(self, cpu: int, level: int, handler, *, name: str | None = None,
                  at_ns: int | None = None, window=None) -> "RaisedInterrupt":
        """Raise an interrupt on CPU ``cpu`` at spl ``level``: ``handler()`` (a generator
        function) runs there, from ``at_ns`` (default: now).

        For devices and timers (a SimPy process calls it).  Delivery follows the
        rules of every interrupt: pending while the CPU's level masks it, taken at
        the CPU's next yield point, by a CPU that is idle, asleep or spinning for a
        lock too.  ``window=(start_ns, end_ns)`` (absolute times) instead of
        ``at_ns`` lets the strategy place the arrival anywhere in it, as for
        ``interrupt_source``: a timer's slack, a completion whose latency
        varies.  Returns the raised interrupt; setting its ``threaded`` marks
        a handler that runs as a thread (a softclock), whose locks make no
        interrupt-safety marks.
        """
        if not callable(handler):
            raise ModelError(f"interrupt(): the handler must be a generator function, "
                             f"got {handler!r}")
        cpus = self.cpus
        if type(cpu) is int and 0 <= cpu < len(cpus):
            c = cpus[cpu]
        else:
            c = self._cpu_for_interrupt(cpu)
        if name is None:
            name = getattr(handler, "__name__", "irq")
        stats = self._raised.get(name)
        if stats is None:  # per-name delivery statistics, in the run's results
            stats = self._raised[name] = InterruptSource(self, name, level, handler, c.id,
                                                         None, ())
            self.interrupt_sources.append(stats)
        if window is None:
            t = self.now if at_ns is None else int(at_ns)
            raised = RaisedInterrupt(name, level, handler, stats.latencies)
        else:
            if at_ns is not None:
                raise ModelError(f"interrupt({name!r}): give at_ns or window, not both")
            window = arrival_window(window, f"interrupt({name!r})")
            self.arrival_windows += 1
            t = window[0]
            raised = RaisedInterrupt(name, level, handler, stats.latencies, window)
        self._queue_irq(c, t, raised)
        return raised

    def _cpu_for_interrupt(self, cpu):
        """``interrupt()``'s CPU when it is not simply an existing CPU's number."""
        if type(cpu) is CPU:
            return cpu
        if not isinstance(cpu, int) or cpu < 0:
            raise ModelError(f"interrupt(): cpu must be a CPU number, got {cpu!r}")
        if cpu >= len(self.cpus):
            if self._started or (self.ncpus is not None and cpu >= self.ncpus):
                raise ModelError(f"interrupt(): CPU{cpu} does not exist (the machine has "
                                 f"{max(len(self.cpus), self.ncpus or 0)})")
            while len(self.cpus) <= cpu:  # raised before the run: the CPU will exist
                self.cpus.append(CPU(len(self.cpus), f"cpu{len(self.cpus)}"))
        return self.cpus[cpu]

    def wakeup(self, chan) -> int:
        """Wake every thread sleeping on ``chan`` from outside a CPU (a device); how many woke."""
        return self.sleepq.wakeup(self, self.now, chan, False, traced_on_sleeper=True)

    def wakeup_one(self, chan) -> int:
        """Wake the longest sleeper on ``chan`` from outside a CPU; 1 if one woke, else 0."""
        return self.sleepq.wakeup(self, self.now, chan, True, traced_on_sleeper=True)

    def shared(self, type_name: str, **fields):
        """A statically allocated struct (never freed): a cdev, a global counter block."""
        z = self._static_zones.get(type_name)
        if z is None:
            z = Zone(self, type_name, fields)
            self._static_zones[type_name] = z
        return z._allocate(fields, "", -1, self._now)

    # -- registry --------------------------------------------------------------------------

    def register_lock(self, lock) -> int:
        """Enrol a new lock; returns its number (stable for the run, in creation order)."""
        self._locks.append(lock)
        return len(self._locks) - 1

    def settle_later(self, slot) -> None:
        """Have ``slot``'s zone settle its free when the step now running ends, when the
        freeing thread has run on to its next operation (``Zone._settle``)."""
        self._unsettled.append(slot)

    def _settle_frees(self) -> None:
        """The step that freed these slots has ended: each zone settles what the free
        touched (``Zone._settle``)."""
        slots, self._unsettled = self._unsettled, []
        for slot in slots:
            slot.zone._settle(slot)

    def register_zone(self, zone) -> int:
        """Enrol a new zone; returns its number (stable for the run, in creation order)."""
        self._zones.append(zone)
        return len(self._zones) - 1

    # -- helpers for operations --------------------------------------------------------------

    def duration(self, ns) -> int:
        """``ns`` with the cost model's jitter, from the run's seeded stream.

        ``_step_timed`` repeats this for ``work()``, its hottest caller: keep the two alike.
        """
        j = self.costs.jitter
        if not ns or not j:
            return int(ns)
        r = self._jit_rand
        if r is None:
            # the run's own stream: nothing to start (``seeds.JitterStream``)
            r = self._jit_rand = seeds.JitterStream(self.seed)
        d = int(ns * (1.0 + j * (2.0 * r.random() - 1.0)) + 0.5)
        return d if d > 0 else 0

    def footprint_touch(self, key, write: bool = True) -> None:
        """Note that this step read (or wrote) the state named ``key``, for the exhaustive search."""
        fp = self.footprint
        if fp is not None:
            if write:
                fp[key] = True
            else:
                fp.setdefault(key, False)

    def site(self, c) -> str:
        """Model location (``path:line``) where CPU ``c``'s innermost generator is suspended."""
        return self.site_name(self.site_token(c))

    @staticmethod
    def site_token(c):
        """Where ``c`` is suspended, cheaply: (code, instruction offset), or None.

        Acquisitions record this on every hold; ``site_name`` turns it into
        ``path:line`` only when a report or a trace needs the text.
        """
        if not c.frames:
            return None
        g = c.frames[-1].gen
        sub = g.gi_yieldfrom
        while sub is not None and type(sub) is GeneratorType and sub.gi_frame is not None:
            g = sub
            sub = g.gi_yieldfrom
        f = g.gi_frame
        if f is None:
            return None
        return (f.f_code, f.f_lasti)

    def site_name(self, token) -> str:
        """``path:line`` of a ``site_token`` (a string is already one)."""
        if token is None:
            return ""
        if type(token) is str:
            return token
        code, offset = token
        # Keyed by the code object's identity (hashing a code object hashes its
        # contents); the entry holds the code, so that identity is never reused.
        key = (id(code), offset)
        e = self._site_cache.get(key)
        if e is None or e[0] is not code:
            e = self._site_cache[key] = (
                code, f"{self._path(code.co_filename)}:{code_line(code, offset)}")
        return e[1]

    def frame_site(self, frame) -> str:
        """``path:line`` of a frame; inside the engine (a load or store operation), the model's."""
        if frame is None:
            return ""
        if frame.f_code.co_filename.startswith(_ENGINE_DIR):
            return self.site(self.current) if self.current is not None else ""
        return f"{self._path(frame.f_code.co_filename)}:{frame.f_lineno}"

    def call_chain(self, c) -> list[str]:
        """``file:line function`` of each model frame ``c`` runs, through ``yield from``
        helpers, outermost first (what a report prints as the call chain)."""
        out = []
        gen = c.frames[-1].gen if c.frames else None
        while gen is not None:
            f = getattr(gen, "gi_frame", None)
            if f is None:
                break
            out.append(f"{self.frame_site(f)} {f.f_code.co_name}")
            gen = getattr(gen, "gi_yieldfrom", None)
        return out

    def _path(self, filename: str) -> str:
        return display_path(filename, self._root)

    def record(self, c, action, target, detail, dur=0, time=None) -> None:
        """Trace one event of CPU ``c``, stamped with the start of its current step."""
        if time is None:
            time = self._t0 if c is self.current else c.clock
        self.sink.add(TraceRecord(time, c.id, c.ctx, action, target, self.site(c),
                                  detail, int(dur)))

    def fail(self, kind, message, c=None, loc=None, extra=None) -> None:
        """Record a violation; a fatal one (or any, with stop_at_first) ends the run."""
        if c is None:
            c = self.current
        if loc is None:
            loc = self.site(c) if c is not None else ""
        t = (self._t0 if c is self.current else c.clock) if c is not None else self._now
        v = Violation(kind=kind, message=message, time_ns=t,
                      cpu=c.id if c is not None else -1, ctx=c.ctx if c is not None else "",
                      location=loc, choices=list(self.choices), extra=extra or {})
        self.violations.append(v)
        if self.tracing:
            self.sink.add(TraceRecord(v.time_ns, max(v.cpu, 0), v.ctx, "violation", kind,
                                      loc, message, 0))
        if kind in FATAL or self.stop_at_first:
            self.stopped = True
            raise RunStopped()

    def pick(self, kind: str, options: list[int], last: int) -> int:
        """Ask the strategy at a decision point and record the answer."""
        cid = self.strategy.pick(kind, options, last)
        if cid not in options:
            raise ModelError(f"strategy {self.strategy.name} chose CPU{cid}, not one of {options}")
        self.choices.append(cid)
        self.decisions += 1
        return cid

    def make_runnable(self, c, at_ns=None) -> None:
        """Let ``c`` step again, at its clock or (an idle CPU) at ``at_ns``."""
        key = c.clock if at_ns is None else at_ns
        if c.state == RUNNABLE and c.heap_key == key:
            return  # already queued for that time
        c.state = RUNNABLE
        if self.timed:
            # A CPU has one valid heap entry: the one whose time is its heap_key;
            # older entries are skipped when popped.
            c.heap_key = key
            heapq.heappush(self._heap, (key, c.id))

    def draw(self, cands) -> int:
        """Index of a uniformly drawn member of ``cands`` (CPUs), recorded as a choice.

        Only for strategies with ``draws_by_index``: the timed hand-off's fast
        path, which skips building the sorted id list that ``pick`` takes.
        """
        i = self.strategy.index(len(cands))
        self.choices.append(cands[i].id)
        self.decisions += 1
        return i

    def resume_after_sleep(self, c, at_ns, value=None) -> None:
        """A sleeper was woken: it retakes its msleep interlock, then continues with ``value``."""
        lock = c.interlock
        c.interlock = None
        op = lock._lock_x if lock is not None else None
        fr = self.frame_above_sleeper(c) if c.irq_depth else None
        if fr is not None:
            # Woken while an interrupt handler runs on its CPU: the sleeper continues
            # when the handler returns, at the level it slept at.
            fr.saved_op, fr.saved_value, fr.saved_spl = op, value, c.sleep_spl
            return
        if c.clock < at_ns:
            c.clock = at_ns
        c.spl = c.sleep_spl
        c.op = op
        c.value = value
        if c.state == RUNNABLE:
            c.state = BLOCKED  # it was idling for an interrupt: queue it for the wakeup
        self.make_runnable(c)

    def paused(self, c) -> None:
        """CPU ``c`` paused: a spin if it repeats its last pause in place (``kernel.spin``)."""
        spin.paused(self, c)

    @staticmethod
    def frame_above_sleeper(c):
        """The handler frame that interrupted ``c``'s sleeping frame, or None if it is on top.

        The sleeper is usually the thread, interrupted on its idle CPU; it can be
        a handler that slept (itself a ``sleep-in-atomic`` finding).
        """
        i = c.sleep_frame + 1
        return c.frames[i] if i < len(c.frames) else None

    def idle_until_interrupt(self, c) -> None:
        """A CPU with nothing to run (thread asleep or ended) waits for its next interrupt."""
        if c.irqs:
            self.make_runnable(c, at_ns=max(c.clock, c.irqs[0][0]))
        elif c.frames:
            c.state = BLOCKED
        else:
            c.state = DONE

    # -- the run ------------------------------------------------------------------------------

    def run(self) -> RunResult:
        """Run every spawned thread to the end (or to a fatal violation or a stall); the result."""
        # A search tells a free that leaves no pointer behind by reference counts
        # (``Zone._settle``), which must depend on the run alone: the cycle collector
        # waits for the run's end, so a pointer in a cycle counts till then in every
        # process alike, not till a collection that the process's history times.
        collect = self._want_fp and gc.isenabled()
        if collect:
            gc.disable()
        with current.running(self):
            try:
                self._start()
                if self.timed:
                    self._loop_timed()
                else:
                    self._loop_explore()
                if not self.stopped:
                    self._finish()
            except RunStopped:
                pass
            except KeyboardInterrupt:
                current.raise_if_stuck()
                raise
            finally:
                self.current = None
                if collect:
                    gc.enable()
                if self.sink is not None:
                    self.sink.close()
        if self._owing:  # findings of a run that lost an operation mean nothing
            self._report_lost()
        return self._result()

    def dismantle(self) -> None:
        """Undo what ties the finished run's objects into cycles, so that reference
        counting frees them as soon as the result is dropped.

        For a caller that keeps only the ``RunResult`` (an exploration makes
        thousands of runs a second): left whole, every run is a web of
        cycles -- the machine and its witness and environment, CPUs and their
        SimPy processes, locks and their operations, zones and their slots,
        threads' generators and the model objects they reach -- which only
        the cycle collector frees.  The machine answers nothing afterwards
        but its plain counts and lists (``cpus`` keep their ids and states).
        """
        for c in self.cpus:
            c.process = None
            c.frames.clear()
            c.held.clear()
            c.irqs.clear()
            c.op = c.value = c.wait_lock = c.sleep_chan = c.interlock = None
        for lock in self._locks:
            lock.retire()
        for zone in self._zones:
            zone.retire()
        self._locks.clear()
        self._zones.clear()
        self._static_zones.clear()
        self.kernel_objects.clear()
        self._quiescence.clear()
        self._threads.clear()
        self._raised.clear()
        self.interrupt_sources.clear()
        self.books.clear()
        self.sleepq = None
        self.spin_watch = None
        self.witness = None
        self.env = None

    def _start(self) -> None:
        self._started = True
        if not self.cpus:
            raise ModelError("the scenario spawned no thread (call m.spawn(...))")
        if self.ncpus is not None:
            while len(self.cpus) < self.ncpus:
                self.cpus.append(CPU(len(self.cpus), f"cpu{len(self.cpus)}"))
        for src in self.interrupt_sources:
            if src.cpu >= len(self.cpus):
                raise ModelError(f"interrupt source {src.name!r} targets CPU{src.cpu}, "
                                 f"but the machine has {len(self.cpus)}")
            t = src.next_arrival(0)
            if t is not None:
                self._queue_irq(self.cpus[src.cpu], t, src)
        for c in self.cpus:
            if c.irqs and not c.frames and c.state != RUNNABLE:  # raised during set-up
                self.make_runnable(c, at_ns=max(c.clock, c.irqs[0][0]))
        for c in self.cpus:
            if self.tracing and c.frames:
                self.record(c, "thread-begin", c.name, "")
            if c.state == RUNNABLE and self.timed and c.frames and c.heap_key < 0:
                c.heap_key = c.clock
                heapq.heappush(self._heap, (c.clock, c.id))

    def _queue_irq(self, c, t, src) -> None:
        irqs = c.irqs
        last = irqs[-1] if irqs else None
        irqs.append([t, src])
        if last is not None and (last[0], last[1].name) > (t, src.name):
            irqs.sort(key=_irq_order)  # arrivals are kept in (time, name) order
        if not self._started:
            return  # raised during set-up: ``_start`` lets idle CPUs wait for it
        if c.wait_lock is not None:
            if c.state == BLOCKED:
                self.spin_wait_irqs(c)
        elif not c.frames or (c.sleep_chan is not None and not c.irq_depth):
            # idle or asleep: step when the first interrupt arrives
            at = max(c.clock, c.irqs[0][0])
            if c.state != RUNNABLE or (self.timed and at < c.heap_key):
                self.make_runnable(c, at_ns=at)

    def spin_wait_irqs(self, c) -> None:
        """``c`` spins for a lock with interrupts enabled: let it step when the first
        interrupt it may take arrives (it takes it there, see ``_irq_to_waiter``)."""
        t = self._spin_irq_time(c)
        if t is None:
            return
        at = t if t > c.clock else c.clock
        if c.state == RUNNABLE and (not self.timed or c.heap_key <= at):
            return  # it steps by then anyway
        self.make_runnable(c, at_ns=at)

    @staticmethod
    def _spin_irq_time(c):
        """Arrival of the first interrupt spinning waiter ``c`` takes, or None.

        A waiter for a lock that disables interrupts (a spin mutex,
        ``spin_lock_irq``), or one holding such a lock, spins with interrupts
        off; a sleeping (blocked) waiter's thread is off the CPU and keeps them
        pending until it has the lock.  So does a waiter in a FIFO line (ticket,
        queued): on hardware it keeps its ticket through a handler, which leaving
        the line and joining it again would not model.
        """
        lock = c.wait_lock
        if lock is None or c.irq_off or not c.wait_spins or lock.disables_irqs or lock.fifo:
            return None
        spl = c.spl
        for t, src in c.irqs:
            if src.level > spl:
                return t
        return None

    def _irq_to_waiter(self, c) -> bool:
        """A spinning waiter takes an interrupt: it leaves the lock's queue, the handler
        runs, and the acquisition starts over when the handler returns."""
        t = self._spin_irq_time(c)
        if t is None:
            return False
        lock = c.wait_lock
        if t > c.clock:
            if not self.timed and lock.can_grant(c, c.wait_mode):
                return False  # the lock is free before the interrupt comes: retry first
            c.clock = t  # it spins until then
            if t > self._now:
                self._now = t
        lock.waiters.remove(c)
        c.wait_lock = None
        return self._deliver_irq(c, _FORCE)

    def _loop_explore(self) -> None:
        """Steps in the exploration view, until no CPU can step or the run stops.

        The step (``_step``), the resumption of the model (``_resume``) and the
        strategy's question (``pick``) are written out inline: this loop runs
        every step of every run of a search.  ``plain_hot_path`` takes the
        plain methods instead; a test compares the two, trace for trace.  Under
        a strategy that gives a path to take again (``Strategy.follow``: dfs,
        the steps a run shares with the one before), those steps are taken
        inline too, the strategy not asked; a test compares its runs with the
        plain code's.
        """
        cpus = self.cpus
        strategy = self.strategy
        simq = self._simq
        choices = self.choices
        plain = self.plain_hot_path or self._want_fp
        issued = ISSUED
        last = -1
        # The path the strategy gives to take again (``Strategy.follow``): from step 1 on,
        # its steps are taken here, inline, without asking (footprints are still made:
        # what a step hands to another CPU is noticed through them).
        follow = getattr(strategy, "follow", None) \
            if self._want_fp and not self.plain_hot_path else None
        follow_to = strategy.follow_to if follow is not None else 0
        following = follow_to > 1
        fast = False  # the last step was one of the path, taken unasked
        try:
            while not self.stopped:
                if self._unsettled:  # the step before freed memory
                    self._settle_frees()
                if fast:
                    fast = False
                    self.footprint = None
                    if self.escaped:
                        strategy.escaped_on_path()
                if simq and simq[0][0] <= self._now:
                    self._run_devices(self._now)  # what the devices do by now comes first
                    continue
                opts = []  # (a loop: on 3.11 a comprehension is a function call per step)
                for o in cpus:
                    if o.state == RUNNABLE:
                        opts.append(o.id)
                n = len(opts)
                if n == 0:
                    if simq and self._alive > 0:  # every thread waits: the devices go on
                        self._run_devices(simq[0][0])
                        continue
                    return
                if following and self.steps:
                    k = self.steps
                    step = follow[k] if k < follow_to else None
                    sw = self.spin_watch
                    if step is None or step.opts != opts or simq or (sw is not None and sw.spins):
                        # the path ends (or this state differs: the strategy, asked, says
                        # why), or devices or spins need the strategy's own book-keeping
                        following = False
                        strategy.followed(k)
                    else:
                        cid = step.cpu
                        if n > 1:
                            choices.append(cid)
                            self.decisions += 1
                        c = cpus[cid]
                        last = cid
                        self.footprint = {}
                        fast = True
                if not fast:
                    if n == 1:
                        cid = opts[0]
                    elif plain:
                        cid = self.pick("cpu", opts, last)
                    else:  # pick(), inline
                        cid = strategy.pick("cpu", opts, last)
                        if cid not in opts:
                            raise ModelError(f"strategy {strategy.name} chose CPU{cid}, "
                                             f"not one of {opts}")
                        choices.append(cid)
                        self.decisions += 1
                    c = cpus[cid]
                    if simq and simq[0][0] <= self._step_time(c):
                        # device steps due before the chosen CPU's step happen first, in
                        # time order
                        self._run_devices(self._step_time(c))
                    last = cid
                    if plain:
                        if self._want_fp:
                            self.footprint = {}
                            try:
                                self._step(c)
                            finally:  # also the step that ends the run with a violation
                                if self._unsettled:
                                    self._settle_frees()
                                strategy.stepped(cid, self.footprint, opts)
                                self.footprint = None
                        else:
                            self._step(c)
                        continue
                # _step(), inline: _enter() first
                self.steps += 1
                if self.steps > self.max_steps:
                    self._too_many_steps(c)
                clk = c.clock
                if clk > self._now:
                    self._now = clk
                else:
                    c.clock = clk = self._now
                self._t0 = clk
                self.current = c
                if c.granted is not None:
                    if self.tracing:
                        self.record(c, "acquire", c.granted, c.wait_mode)
                    c.granted = None
                if c.irqs and (self._deliver_irq(c) if c.wait_lock is None
                               else self._irq_to_waiter(c)):
                    op = None
                elif c.sleep_chan is not None and not c.irq_depth:  # asleep, no handler running
                    self.idle_until_interrupt(c)
                    continue
                else:
                    op = c.op
                if op is not None:
                    kind = type(op)
                    if kind is Acquire:  # the lock operations, dispatched without execute()
                        res = op.lock._acquire(self, c, op.mode, op.trylock)
                    elif kind is Release:
                        res = op.lock._release(self, c, op.mode)
                    else:
                        res = op.execute(self, c)
                    if res is OP_BLOCKED:
                        continue
                    c.op = None
                else:
                    res = c.value
                    c.value = None
                # _resume(), inline
                issued[0] = 0
                try:
                    op = c.frames[-1].gen.send(res)
                    res = None  # (a pointer kept here would outlive the model's own)
                except StopIteration:
                    res = None
                    if issued[0] or self._owing:
                        self._settle(c, None)
                    self._pop_frame(c)
                    continue
                except (RunStopped, ModelError):
                    raise
                except Exception as e:  # the model raised: bad input, reported on one line
                    raise model_raised(e) from None
                if issued[0] != 1:  # not one operation made for the one yielded
                    self._settle(c, op)
                c.op = op if isinstance(op, Op) else self._check_op(c, op)
        finally:
            if self._unsettled:  # the last step freed memory
                self._settle_frees()
            if following:
                self.footprint = None
                strategy.followed(self.steps)

    def _step_time(self, c) -> int:
        """When ``c``'s next step happens in the exploration view (for the devices' order)."""
        t = c.clock if c.clock > self._now else self._now
        if c.irqs:
            lock = c.wait_lock
            if lock is not None:
                if not lock.can_grant(c, c.wait_mode):
                    first = self._spin_irq_time(c)
                    if first is not None and first > t:
                        t = first
            elif not c.frames or (c.sleep_chan is not None and not c.irq_depth):
                if c.irqs[0][0] > t:
                    t = c.irqs[0][0]  # an idle CPU's step is its next interrupt
        return t

    def _run_devices(self, until_ns) -> None:
        """Process the SimPy events due at or before ``until_ns``, in time order."""
        env = self.env
        simq = self._simq
        self.current = None  # no CPU steps meanwhile: ``m.now`` is SimPy's time
        while simq and simq[0][0] <= until_ns and not self.stopped:
            self.sim_events += 1  # not CPU steps: strategies count those
            if self.sim_events > self.max_steps:
                self._too_many_steps(None)
            try:
                env.step()
            except (RunStopped, ModelError):
                raise
            except Exception as e:  # a process of the model's failed: bad input
                raise device_raised(e) from None

    def _pop_due(self):
        """The next valid heap entry ``(time, cpu)``, skipping stale ones; None when empty."""
        heap = self._heap
        cpus = self.cpus
        while heap:
            t, cid = heapq.heappop(heap)
            if cid == DEVICES:
                return t, cid
            c = cpus[cid]
            if c.state == RUNNABLE and c.heap_key == t:
                return t, cid
        return None

    def device_scheduled(self, t) -> None:
        """SimPy queued an event for ``t``: the timed loop stops there for the devices.

        A marker in the timed view's heap of CPU times does it, so the hot loops,
        which already stop at the heap's earliest entry, need no check of their own.
        """
        if self.timed:
            heapq.heappush(self._heap, (t, DEVICES))

    def _loop_timed(self) -> None:
        cpus = self.cpus
        heap = self._heap
        push = heapq.heappush
        step = self._step_timed
        pop = heapq.heappop
        plain = self.plain_hot_path
        last = -1
        while not self.stopped:
            if plain:
                due = self._pop_due()
                if due is None:
                    return
                t, cid = due
                c = cpus[cid]
            else:
                # _pop_due(), inline: the next valid entry, skipping stale ones
                while heap:
                    t, cid = pop(heap)
                    if cid < 0:  # DEVICES
                        break
                    c = cpus[cid]
                    if c.state == RUNNABLE and c.heap_key == t:
                        break
                else:
                    return
            if cid < 0:  # DEVICES: SimPy events are due (ties: before the CPUs)
                if self._alive == 0 and not any(o.state == RUNNABLE for o in cpus):
                    return  # the run is over; device events left are not processed
                self._run_devices(t)
                continue
            if heap and heap[0][0] == t:
                ties = [cid]
                while heap and heap[0][0] == t:
                    more = self._pop_due()
                    if more is None:
                        break
                    if more[0] != t or more[1] == DEVICES:
                        push(heap, more)
                        break
                    ties.append(more[1])
                if len(ties) > 1:
                    cid = self.pick("cpu", ties, last)
                for o in ties:
                    if o != cid:
                        push(heap, (t, o))
                c = cpus[cid]
            if c.clock < t:
                c.clock = t  # an idle CPU woken for an interrupt
            c.heap_key = -1
            step(c)
            # While this CPU stays strictly earliest it would be popped next anyway:
            # step it again without a trip through the heap.
            while c.state == RUNNABLE and c.heap_key < 0 and not self.stopped and (
                    not heap or c.clock < heap[0][0]):
                step(c)
            if c.state == RUNNABLE and c.heap_key < 0:
                c.heap_key = c.clock
                push(heap, (c.clock, cid))
            last = cid

    def _enter(self, c) -> None:
        """Book-keeping at the start of every step of ``c``."""
        self.steps += 1
        if self.steps > self.max_steps:
            self._too_many_steps(c)
        clk = c.clock
        if clk > self._now:
            self._now = clk
        else:
            c.clock = clk = self._now
        self._t0 = clk
        self.current = c
        if c.granted is not None:
            if self.tracing:
                self.record(c, "acquire", c.granted, c.wait_mode)
            c.granted = None

    def _too_many_steps(self, c) -> None:
        self.current = c
        what = "steps (a livelock" if c is not None else \
            "device events (devices running on while every thread waits"
        self.fail("max-steps", f"the run exceeded {self.max_steps} {what}, or "
                  f"raise --max-steps, a study's max_steps)", c)

    def _step(self, c) -> None:
        """One step in the exploration view: do the pending operation, then run the
        model up to its next yield (that code is atomic with the operation)."""
        self._enter(c)
        if c.irqs and (self._deliver_irq(c) if c.wait_lock is None else self._irq_to_waiter(c)):
            op = None
        elif c.sleep_chan is not None and not c.irq_depth:  # asleep, no handler running
            self.idle_until_interrupt(c)
            return
        else:
            op = c.op
        if op is not None:
            res = op.execute(self, c)
            if res is OP_BLOCKED:
                return
            c.op = None
        else:
            res = c.value
            c.value = None
        op = self._resume(c, res)
        if op is not None:
            c.op = op

    def _step_timed(self, c) -> None:
        """Steps in the timed view: run the model up to its next operation and do it.

        The code after an operation runs in the CPU's next step, at the time the
        operation completed: a write after ``work(d)`` becomes visible d later.
        While this CPU stays strictly the earliest, its next step is taken here
        at once: the scheduler would pick it anyway, and this is the engine's
        hottest loop (so the per-step book-keeping is written out inline).
        """
        heap = self._heap
        tracing = self.tracing
        jitter = self.costs.jitter
        plain = self.plain_hot_path
        issued = ISSUED
        first = True
        while True:
            self.steps += 1
            if self.steps > self.max_steps:
                self._too_many_steps(c)
            clk = c.clock
            if clk > self._now:
                self._now = clk
            self._t0 = clk
            if first:
                # Only a CPU's first step here can find a lock handed to it, a sleep
                # or a pending operation: each of those ends a step with a return.
                first = False
                self.current = c
                if c.granted is not None:
                    if tracing:
                        self.record(c, "acquire", c.granted, c.wait_mode)
                    c.granted = None
                if c.irqs and (self._deliver_irq(c) if c.wait_lock is None
                               else self._irq_to_waiter(c)):
                    pass  # the handler starts now (a spinner stepped here always takes it)
                elif c.sleep_chan is not None and not c.irq_depth:  # asleep, no handler
                    self.idle_until_interrupt(c)
                    return
                else:
                    op = c.op
                    if op is not None:  # left pending (a woken sleeper's retake, an interrupt)
                        self._t0 = c.clock
                        res = op.execute(self, c)
                        if res is not OP_BLOCKED:
                            c.op = None
                            c.value = res
                        return
            elif c.irqs and c.wait_lock is None:
                self._deliver_irq(c)
            res = c.value
            c.value = None
            issued[0] = 0
            try:
                op = c.frames[-1].gen.send(res)
            except StopIteration:
                if issued[0] or self._owing:
                    self._settle(c, None)
                self._pop_frame(c)
                return
            except (RunStopped, ModelError):
                raise
            except Exception as e:  # the model raised: bad input, reported on one line
                raise model_raised(e) from None
            if issued[0] != 1:  # not one operation made for the one yielded
                self._settle(c, op)
            if c.irqs and self._irq_due(c):
                c.op = self._check_op(c, op)  # the interrupt comes first, at the next step
                return
            self._t0 = c.clock  # records and findings carry the time the operation starts
            kind = type(op)
            if plain:
                res = self._check_op(c, op).execute(self, c)
            elif kind is Work:
                d = op.ns
                if d and jitter:  # duration(), inline
                    r = self._jit_rand
                    if r is None:
                        r = self._jit_rand = seeds.JitterStream(self.seed)
                    d = int(d * (1.0 + jitter * (2.0 * r.random() - 1.0)) + 0.5)
                    if d < 0:
                        d = 0
                else:
                    d = int(d)
                if tracing:
                    self.record(c, "work", "", "", d)
                c.clock += d
                res = None
            elif kind is Acquire:  # the lock operations, dispatched without execute()
                res = op.lock._acquire(self, c, op.mode, op.trylock)
            elif kind is Release:
                res = op.lock._release(self, c, op.mode)
            else:
                res = self._check_op(c, op).execute(self, c)
            if res is not None:
                if res is OP_BLOCKED:
                    c.op = op
                    return
                c.value = res
            if self.stopped or (heap and c.clock >= heap[0][0]) or c.state != RUNNABLE:
                return

    def _check_op(self, c, op):
        if not isinstance(op, Op):
            raise ModelError(f"{c.ctx} yielded {op!r} at {self.site(c)}; yield an smpvm "
                             f"operation such as work(ns), lock.lock() or obj.load(field)")
        return op

    def _resume(self, c, value):
        """Send ``value`` into the top frame's generator; its next operation, or None."""
        ISSUED[0] = 0
        try:
            op = c.frames[-1].gen.send(value)
        except StopIteration:
            if ISSUED[0] or self._owing:
                self._settle(c, None)
            self._pop_frame(c)
            return None
        except (RunStopped, ModelError):
            raise
        except Exception as e:  # the model raised: bad input, reported on one line
            raise model_raised(e) from None
        if ISSUED[0] != 1:  # not one operation made for the one yielded
            self._settle(c, op)
        return self._check_op(c, op)

    #: While a run is made again to find a lost operation: the log of hand-outs.
    issue_log = None

    def _settle(self, c, yielded) -> None:
        """A resumption of ``c`` made other than one operation for the one it yielded.

        Fewer is fine (an operation made earlier, yielded now); more leaves ``c``
        owing operations until it yields them.  A thread that returns owing, or a
        run that ends with a thread owing, lost one: a model error.
        """
        made = ISSUED[0]
        owed = self._owing.get(c.id, 0) + made - (yielded is not None)
        if owed <= 0:
            self._owing.pop(c.id, None)
            return
        if c.id not in self._owing:
            self._owed_at[c.id] = self.site(c) if yielded is not None else ""
        self._owing[c.id] = owed
        if yielded is None and len(c.frames) == 1:  # the thread returns owing
            self._report_lost(c)

    def _report_lost(self, c=None) -> None:
        """Raise the model error for an operation made and never yielded."""
        if c is None:
            c = self.cpus[min(self._owing)]
        lost = self.issue_log.lost() if self.issue_log is not None else None
        if lost is not None:
            where = f"at {self._path(lost[0])}:{lost[1]}"
        elif self._owed_at.get(c.id):
            where = f"in the step that ended at {self._owed_at[c.id]}"
        else:
            where = "before it returned"
        raise UnyieldedOp(f"{c.ctx} made an operation it never yielded {where}: "
                          f"missing `yield`? (an operation does nothing until yielded)",
                          self.choices, located=lost is not None)

    def find_unyielded(self):
        """The log to give a run made again to locate a lost operation (see ``_settle``)."""
        self.issue_log = IssueLog(_ENGINE_DIR, __file__)
        return self.issue_log

    def _irq_due(self, c) -> bool:
        """Is an interrupt to be taken at this yield point (the timed view, before the op)?"""
        if c.irq_off:
            return False
        for t, src in c.irqs:
            if t <= c.clock and src.level > c.spl and (
                    src.window is None or self._lands(c, src, _ASK)):
                return True
        return False

    def _deliver_irq(self, c, window_mode=None) -> bool:
        """Take the first due, unmasked interrupt at this yield point; True if one was taken.

        A due window interrupt lands here only if the strategy says so
        (``window_mode``: whether to ask; the exploration view asks here).
        """
        if c.irq_off:
            return False
        for i, (t, src) in enumerate(c.irqs):
            if t > c.clock:
                if c.frames and c.sleep_chan is None:
                    return False
                c.clock = t  # an idle CPU waits for its next interrupt
                if t > self._now:
                    self._now = t
            if src.level > c.spl:
                if src.window is not None and not self._lands(
                        c, src, (_DONT_ASK if self.timed else _ASK)
                        if window_mode is None else window_mode):
                    continue
                del c.irqs[i]
                src.latencies.append(c.clock - t)
                nxt = src.next_arrival(t)
                if nxt is not None and (self._alive > 0 or src.times is not None):
                    c.irqs.append([nxt, src])
                    c.irqs.sort(key=_irq_order)
                c.frames.append(Frame(src.handler(), f"irq:{src.name}", c.op, c.value, c.spl, src))
                c.op = None
                c.value = None
                c.spl = src.level
                c.irq_depth += 1
                c.clock += self.costs.irq_entry_ns
                if self.tracing:
                    self.record(c, "irq-begin", src.name, str(src.level))
                return True
        return False

    #: The window interrupt whose placement the strategy is deciding (for its ``pick``).
    placing = None

    def _lands(self, c, src, mode) -> bool:
        """Does window interrupt ``src``, due and unmasked, land at ``c``'s yield point now?

        It must when nothing runs to place it against (an idle, sleeping or
        spinning CPU) and once its window has closed; otherwise the strategy
        decides, recorded like every choice.
        """
        if src.landed or mode == _FORCE or not c.frames or c.wait_lock is not None or (
                c.sleep_chan is not None and not c.irq_depth):
            return True
        end = src.window[1]
        if end is not None and c.clock >= end:
            return True
        if mode == _DONT_ASK:
            return False
        self.placing = src
        try:
            land = self.pick("irq", IRQ_OPTIONS, NOT_YET) == DELIVER
        finally:
            self.placing = None
        src.landed = land
        return land

    def _pop_frame(self, c) -> None:
        fr = c.frames.pop()
        if fr.source is not None:
            if self.tracing:
                self.record(c, "irq-end", fr.source.name, "")
            c.irq_depth -= 1
            c.spl = fr.saved_spl
            c.op = fr.saved_op
            c.value = fr.saved_value
            if not c.frames or (c.sleep_chan is not None and not c.irq_depth):
                self.idle_until_interrupt(c)  # the last handler returned: idle, or sleep on
            return
        if self.tracing:
            self.record(c, "thread-end", c.name, "")
        self._alive -= 1
        c.process.finished(c.clock - self._now if c.clock > self._now else 0)
        thread_ended(self, c, self._threads[c.id])
        if c.held:
            self._ended_holding.append(c)
        if self._alive == 0:
            # Poisson streams last while threads run; listed arrival times are all delivered.
            for o in self.cpus:
                if o.irqs:
                    o.irqs = [e for e in o.irqs if e[1].times is not None]
                if not o.frames and not o.irqs and o.state == RUNNABLE:
                    o.state = DONE
        c.state = DONE
        self.idle_until_interrupt(c)

    def _finish(self) -> None:
        stuck, never = [], []  # (one loop: two comprehensions are two calls on 3.11)
        for c in self.cpus:
            if c.state == BLOCKED:
                stuck.append(c)
            elif c.state == RUNNABLE and c.frames:
                never.append(c)
        if never:  # no strategy may leave a runnable thread behind: that would be a silent pass
            raise ModelError(f"thread {never[0].name} on CPU{never[0].id} could still run when "
                             f"the run ended; the engine lost it")
        if stuck:
            self._report_stall(stuck)
            return
        for c in self._ended_holding:
            if c.held:  # nobody waited for what it kept: the leak itself is the finding
                held = ", ".join(f"{h.lock.label()} (taken at {h.site or '?'})" for h in c.held)
                self.fail("assertion", f"thread {c.name} returned with locks held: {held}", c,
                          loc=c.held[0].site)
        self.current = None
        for check in self._quiescence:
            check()

    def _report_stall(self, stuck) -> None:
        """No CPU can step but some wait: name the wait-for cycle, or what each waits on."""
        waits_on = {}
        for c in stuck:
            if c.wait_lock is not None:
                hs = c.wait_lock.holders()
                waits_on[c.id] = hs[0].id if hs else None
        cycle = _find_cycle(waits_on)
        parts = []
        for c in stuck:
            parts.append(self._describe_wait(c))
        if cycle:
            desc = "; ".join(self._describe_wait(self.cpus[i]) for i in cycle)
            msg = f"deadlock: wait-for cycle {' -> '.join(f'CPU{i}' for i in cycle + [cycle[0]])}: {desc}"
        else:
            msg = "deadlock: no CPU can make progress: " + "; ".join(parts)
        for c in self._ended_holding:  # who holds what, though their threads are gone
            if c.held:
                held = ", ".join(f"{h.lock.label()} (taken at {h.site or '?'})" for h in c.held)
                msg += f"; thread {c.name} on CPU{c.id} ended holding {held}"
        # no cycle: point at a lock waiter rather than at whoever waits for it (a join)
        c0 = (self.cpus[cycle[0]] if cycle
              else next((c for c in stuck if c.wait_lock is not None), stuck[0]))
        self.current = c0
        extra = {}
        if cycle:
            extra["report"] = self._cycle_report(cycle)
        self.fail("deadlock", msg, c0, extra={
            **extra,
            "cycle": [f"CPU{i}" for i in cycle] if cycle else [],
            "waits": [{"cpu": c.id, "thread": c.name,
                       "lock": c.wait_lock.label() if c.wait_lock is not None else None,
                       "channel": self.sleepq.label(c.sleep_chan) if c.sleep_chan is not None else None,
                       "site": (self.site_name(c.wait_site) if c.wait_lock is not None
                                else self.site(c)),
                       "call_chain": self.call_chain(c)}
                      for c in stuck]})

    def _cycle_report(self, cycle) -> str:
        """The wait-for cycle as lockdep or WITNESS would print it (multi-line)."""
        from .report import lockdep
        waits, linux = [], False
        for i in cycle:
            c = self.cpus[i]
            hs = c.wait_lock.holders()
            linux = linux or c.wait_lock.kind in lockdep.LINUX_KINDS
            waits.append({"cpu": c.id, "ctx": c.ctx,
                          "held": [(h.lock.label(), h.site) for h in c.held],
                          "lock": c.wait_lock.label(), "site": self.site_name(c.wait_site),
                          "holder": hs[0].id if hs else "?", "chain": self.call_chain(c)})
        return lockdep.deadlock(linux, waits)

    def _describe_wait(self, c) -> str:
        held = ", ".join(h.lock.label() for h in c.held) or "nothing"
        if c.wait_lock is not None:
            hs = c.wait_lock.holders()
            if hs:
                by = ", ".join(f"CPU{h.id} ({h.name})" for h in hs)
            else:
                by = "nobody (its waiters were never handed it)"
            if hs and all(h.state == DONE for h in hs):
                by += " whose thread has ended"
            return (f"CPU{c.id} ({c.name}) holds {held} and waits for {c.wait_lock.label()} "
                    f"held by {by} at {self.site_name(c.wait_site) or '?'}")
        if type(c.sleep_chan) is EventWait:
            return (f"CPU{c.id} ({c.name}) holds {held} and waits for "
                    f"{self.sleepq.label(c.sleep_chan)}, which nothing will trigger, "
                    f"at {self.site(c)}")
        if c.sleep_chan is not None:
            return (f"CPU{c.id} ({c.name}) holds {held} and sleeps on "
                    f"{self.sleepq.label(c.sleep_chan)} with no wakeup to come at {self.site(c)}")
        return f"CPU{c.id} ({c.name}) is blocked at {self.site(c)}"

    def _result(self) -> RunResult:
        end = self._now
        for c in self.cpus:
            if c.clock > end:
                end = c.clock
        summaries = self.lockstat.summary(end) if self.lockstat is not None else []
        irq = {}
        for src in self.interrupt_sources:
            lat = src.latencies
            irq[src.name] = {"delivered": len(lat), "latency_max_ns": max(lat) if lat else 0,
                             "latency_mean_ns": sum(lat) / len(lat) if lat else 0.0}
        return RunResult(
            violations=self.violations, steps=self.steps, time_ns=end,
            choices=self.choices, decisions=self.decisions, lockstat=summaries,
            metrics=dict(self.metrics), interrupts=irq, seed=self.seed,
            strategy=getattr(self.strategy, "name", "?"), timed=self.timed,
            sim_events=self.sim_events,
            variant=self.variant, params=dict(self.params), ncpus=len(self.cpus),
            witness=self.witness)


def _irq_order(entry):
    """Pending interrupts' order on a CPU: arrival time, then source name."""
    return entry[0], entry[1].name


def _find_cycle(waits_on: dict) -> list:
    for start in sorted(waits_on):
        seen = []
        node = start
        while node is not None and node in waits_on and node not in seen:
            seen.append(node)
            node = waits_on[node]
        if node is not None and node in seen:
            return seen[seen.index(node):]
    return []


@functools.lru_cache(maxsize=8192)
def code_line(code, offset: int) -> int:
    """The source line of the instruction at byte ``offset`` (what ``frame.f_lineno`` gives)."""
    if offset < 0:
        return code.co_firstlineno  # not started yet
    for start, end, line in code.co_lines():
        if start <= offset < end:
            return -1 if line is None else line
    return -1


@functools.lru_cache(maxsize=64)
def _normalised(path: str) -> str:
    """``os.path.abspath`` of an absolute path every run of a search names again."""
    return os.path.abspath(path)


@functools.lru_cache(maxsize=1024)
def display_path(filename: str, root: str) -> str:
    """How a model file is named in reports: relative to ``root`` when inside it."""
    ab = os.path.abspath(filename)
    try:
        rel = os.path.relpath(ab, root)
    except ValueError:
        rel = ab
    if not rel.startswith(".."):
        return rel.replace(os.sep, "/")
    parts = ab.replace(os.sep, "/").split("/")
    if "models" in parts:
        return "/".join(parts[len(parts) - 1 - parts[::-1].index("models"):])
    return ab


def device_raised(exc) -> ModelError:
    """The one-line error for a SimPy process of the model's that failed."""
    exc = exc.__cause__ or exc  # SimPy re-raises a copy; the original has the traceback
    return ModelError(f"a SimPy process of the model raised {type(exc).__name__}: "
                      f"{exc}{model_where(exc)}")


def model_raised(exc) -> ModelError:
    """The one-line error for an exception the model's code raised."""
    return ModelError(f"model raised {type(exc).__name__}: {exc}{model_where(exc)}")


def model_where(exc) -> str:
    """`` at file:line`` of the innermost frame of a model's exception outside smpvm."""
    here = os.path.dirname(os.path.abspath(__file__))
    for fs in reversed(traceback.extract_tb(exc.__traceback__)):
        if not os.path.abspath(fs.filename).startswith(here):
            return f" at {display_path(fs.filename, os.getcwd())}:{fs.lineno}"
    return ""

