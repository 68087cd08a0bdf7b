"""Chrome trace export: a run as a file for Perfetto UI or chrome://tracing.

The Chrome Trace Event Format is a JSON object whose ``traceEvents`` list
holds one small object per event.  A run is one process (``pid``: one per
run, see :func:`run_pid`) and each simulated CPU one of its threads, ``tid`` =
100 + CPU number, named by a ``thread_name`` metadata event ("CPU0 alloc").
Trace viewers take tid 0, or a tid equal to the pid, for the process's own
main thread and draw other threads' slices onto it, so neither is ever used.
On a track, things that take time are *slices*:

- a lock hold is a slice named after the lock, opened by ``acquire``
  (``"ph": "B"``) and closed by ``release`` (``"ph": "E"``);
- an interrupt handler is a slice ``irq <source>`` between ``irq-begin`` and
  ``irq-end``;
- ``wait`` and ``work`` records carry their own duration and become slices
  too, from the record's time to its end (cut short by the CPU's next record).

Everything else (loads, stores, alloc/free, spl changes, notes) is an instant
event on its CPU's track; a violation is a global instant, drawn across all
tracks so it cannot be missed.

Two more kinds of event tie the tracks together:

- a *flow arrow* (``"ph": "s"`` on the releasing CPU's lock slice, ``"f"``
  on the waiter's new lock slice, one ``id`` per hand-off) runs from a lock's
  release to the waiting CPU that gets it next;
- *counters* (``"ph": "C"``): per lock class, how many CPUs are waiting for
  it (``"<class>"`` / ``waiters``), and per CPU its spl level (``"CPU<n>"`` /
  ``spl``, raised by interrupt handlers and restored when they return).

Trace viewers require the slices on one track to nest like brackets.  Real
kernels do not release locks in stack order, so when a lock that is not the
innermost open slice is released, the slices above it are closed, it is
closed, and the ones above are reopened at the same instant with the same
names and arguments.

Events are written in time order whenever the records arrive in time order.
Perfetto reads such a file in file order; once a timestamp goes back it
sorts the events, and at equal times puts every end before any begin: a
slice that opens and closes in one instant is then left open, and an arrow
that starts as its lock is released finds no slice to start from.  So a
``wait`` or ``work`` slice is not written as one complete event (``"X"``),
which would have to wait for its end and land after later events of other
CPUs: its begin is written at once and its end as soon as any record reaches
that time, or earlier when the CPU's own next record comes first.

:class:`ChromeTraceSink` is a trace sink: it writes each event as its record
arrives and keeps only the per-CPU stack of open slices, so memory stays flat
however long the run.  Times are written as microseconds with exactly three
decimals, computed with integer arithmetic, so the same records always give
byte-identical files.
"""

from __future__ import annotations

import json
import zlib
from typing import IO, NamedTuple

from smpvm.ops import SPL_NAMES
from smpvm.trace import TraceRecord

_dumps = json.dumps

#: The process of a trace written without a run's own pid.
PID = 1000
#: CPU n's track is thread ``TID_BASE + n``: never 0, never a pid (pids are >= 1000).
TID_BASE = 100
#: spl levels by name, for the spl counters ("splvm" -> 4).
_SPL_LEVELS = {name: level for level, name in SPL_NAMES.items()}


def run_pid(*parts) -> int:
    """A pid for one run, from what identifies it (target, variant, seed).

    Traces of different runs loaded together into one viewer then show as
    different processes.  Always >= 1000 and below 2**31, so no CPU tid
    (``TID_BASE + cpu``) can equal it.
    """
    key = "\x1f".join(str(p) for p in parts).encode("utf-8")
    return 1000 + zlib.crc32(key) % 2_000_000_000


def _level(text: str) -> int | None:
    """An spl level from its name or number as the trace writes it."""
    if text in _SPL_LEVELS:
        return _SPL_LEVELS[text]
    try:
        return int(text)
    except ValueError:
        return None


def _lock_class(label: str) -> str:
    """The class of a lock label ("vm object[obj1]" -> "vm object")."""
    return label.split("[", 1)[0] if label.endswith("]") else label


def us(ns: int) -> str:
    """``ns`` as microseconds with exactly three decimals (``1234`` -> ``1.234``)."""
    ns = int(ns)
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    return f"{sign}{ns // 1000}.{ns % 1000:03d}"


def _args(**fields: str) -> str:
    """A JSON object of string fields, in the order given."""
    return "{" + ",".join(f'"{k}":{_dumps(v)}' for k, v in fields.items()) + "}"


class _Slice(NamedTuple):
    """An open slice on a CPU track."""

    #: "lock" or "irq": what closes it (``release`` or ``irq-end``).
    kind: str
    #: The record target that must match to close it (lock or irq source).
    target: str
    #: Ready-made JSON text of its name and category (for both B and E).
    label: str
    #: Ready-made JSON text of the args of its B event.
    args: str


class ChromeTraceSink:
    """Streams trace records to a Chrome Trace Event Format JSON file.

    ``path_or_file`` is a path (the sink opens the file and closes it in
    :meth:`close`) or an open text file (left open).  ``cpu_names`` maps CPU
    numbers to a role shown next to the track name ("CPU0 terminator");
    tracks for CPUs it names are declared up front, others when their first
    record arrives.  ``pid`` is the run's process id (:func:`run_pid`) and
    ``process`` the process's name in the viewer.  With ``max_events`` the
    trace stops at the record that would go past that many events: what is
    open there ends there, and a last event says so, adding ``cut_note``
    (where to get the whole run).
    """

    def __init__(self, path_or_file: str | IO[str],
                 cpu_names: dict[int, str] | None = None, *,
                 pid: int = PID, process: str = "smpvm", max_events: int | None = None,
                 cut_note: str = "") -> None:
        if hasattr(path_or_file, "write"):
            #: The text file events are written to.
            self._out: IO[str] = path_or_file
            #: Whether :meth:`close` closes ``_out`` (we opened it).
            self._owned = False
        else:
            self._out = open(path_or_file, "w", encoding="utf-8", newline="\n")
            self._owned = True
        #: Roles for CPU track names, by CPU number.
        self._names: dict[int, str] = dict(cpu_names or {})
        #: Open slices per CPU, innermost last.
        self._stacks: dict[int, list[_Slice]] = {}
        #: Per CPU, the latest time of any slice boundary written on its track.
        self._edge_ns: dict[int, int] = {}
        #: Per CPU, the latest time seen in its records (end of work/wait included).
        self._last_ns: dict[int, int] = {}
        #: Per CPU, when its open ``wait``/``work`` slice ends (it is the innermost).
        self._ends: dict[int, int] = {}
        #: The run's process id, written on every event.
        self._pid = int(pid)
        #: Per lock label, the CPUs waiting for it, in the order they began.
        self._waiting: dict[str, list[int]] = {}
        #: Per lock class, how many CPUs wait for one of its locks.
        self._class_waiters: dict[str, int] = {}
        #: Per lock label, the flow id of its latest release that had waiters.
        self._handoff: dict[str, int] = {}
        #: The last flow id handed out.
        self._flow_id = 0
        #: Per CPU, its spl level as the trace shows it.
        self._spl: dict[int, int] = {}
        #: Per CPU, the levels to restore when its running handlers return.
        self._spl_saved: dict[int, list[int]] = {}
        #: Whether the next event is the first in the list (no comma before it).
        self._first = True
        #: Whether :meth:`close` has run.
        self.closed = False
        #: Number of events written so far.
        self.events = 0
        self._max_events = max_events
        self._cut_note = cut_note
        self._cut_ns = 0
        #: Records left out after the trace was cut (``max_events``); None: not cut.
        self.left_out = None
        self._out.write('{"displayTimeUnit":"ns","traceEvents":[\n')
        self._meta(None, "process_name", _args(name=process))
        for cpu in sorted(self._names):
            self._track(cpu)

    # -- the sink interface ---------------------------------------------------

    def add(self, rec: TraceRecord) -> None:
        """Write the events for one record."""
        if self._max_events is not None and self.events >= self._max_events:
            self._cut(rec)
            return
        cpu = rec.cpu
        # timed slices end, at the latest, when this record happens
        self._end_timed(rec.time_ns, cpu)
        if cpu not in self._stacks:
            if rec.action == "thread-begin" and cpu not in self._names:
                self._names[cpu] = rec.target
            self._track(cpu)
        if cpu not in self._spl:
            # every CPU starts at spl0; its counter track starts with its first record
            self._spl[cpu] = 0
            self._counter(f"CPU{cpu}", "spl", 0, rec.time_ns)
        if rec.time_ns > self._last_ns[cpu]:
            self._last_ns[cpu] = rec.time_ns
        handler = _HANDLERS.get(rec.action, ChromeTraceSink._instant)
        handler(self, rec)

    def close(self) -> None:
        """Close still-open slices at the end of the run and finish the JSON.

        A lock still held or a wait still pending when the run stops (a
        deadlock, the step limit) lasts until the run's last moment, which
        also keeps the file in time order.
        """
        if self.closed:
            return
        self.closed = True
        if self.left_out is None:
            self._end_all(max(self._last_ns.values(), default=0))
        else:
            self._emit(f'{{"name":"trace cut","cat":"note","ph":"i","s":"g"'
                       f',"ts":{us(self._cut_ns)},"pid":{self._pid}'
                       f',"args":{_args(message=self._cut_message())}}}')
        self._out.write("\n]}\n")
        if self._owned:
            self._out.close()
        else:
            self._out.flush()

    def _end_all(self, run_end: int) -> None:
        """End every open slice at ``run_end`` (timed ones when they end, if that is sooner)."""
        for end, cpu in sorted((min(end, run_end), cpu) for cpu, end in self._ends.items()):
            self._end_timed_slice(cpu, end)
        for cpu in sorted(self._stacks):
            stack = self._stacks[cpu]
            while stack:
                self._end(cpu, stack.pop(), run_end)

    def _cut(self, rec: TraceRecord) -> None:
        """The trace is full: what is open ends at ``rec``'s time; count what follows."""
        if self.left_out is None:
            self.left_out = 0
            self._end_all(rec.time_ns)
            self._cut_ns = max([rec.time_ns, *self._edge_ns.values()])
        self.left_out += 1

    def _cut_message(self) -> str:
        return (f"the trace stops after {self._max_events:,} events; {self.left_out:,} "
                f"later records left out. {self._cut_note}").strip()

    def __enter__(self) -> ChromeTraceSink:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- per-action handlers --------------------------------------------------

    def _acquire(self, rec: TraceRecord) -> None:
        # a wait that began with a zero-length record ends at this acquisition
        stack = self._stacks[rec.cpu]
        if stack and stack[-1].kind == "wait" and stack[-1].target == rec.target:
            self._close_slice(rec.cpu, "wait", rec.target, rec.time_ns)
        label = f'"name":{_dumps(rec.target)},"cat":"lock"'
        sl = _Slice("lock", rec.target, label, _args(mode=rec.detail, loc=rec.loc))
        self._open(rec.cpu, sl, rec.time_ns)
        # a waiter that gets the lock ends the arrow from its release
        waiting = self._waiting.get(rec.target)
        flow = self._handoff.get(rec.target)
        if waiting and rec.cpu in waiting:
            waiting.remove(rec.cpu)
            self._count_waiter(rec.target, -1, rec.time_ns)
            if flow is not None:
                self._flow("f", flow, rec.cpu, rec.time_ns)
        # an exclusive acquisition takes the released lock; shared ones may share it
        if flow is not None and not rec.detail.startswith("s"):
            del self._handoff[rec.target]

    def _release(self, rec: TraceRecord) -> None:
        if self._waiting.get(rec.target) and self._has_slice(rec.cpu, "lock", rec.target):
            # start an arrow on the slice being closed: a waiter gets the lock next
            self._flow_id += 1
            self._handoff[rec.target] = self._flow_id
            self._flow("s", self._flow_id, rec.cpu, rec.time_ns)
        if not self._close_slice(rec.cpu, "lock", rec.target, rec.time_ns):
            self._instant(rec)

    def _irq_begin(self, rec: TraceRecord) -> None:
        label = f'"name":{_dumps("irq " + rec.target)},"cat":"irq"'
        sl = _Slice("irq", rec.target, label, _args(level=rec.detail, loc=rec.loc))
        self._open(rec.cpu, sl, rec.time_ns)
        # the handler runs at its source's level
        self._spl_saved.setdefault(rec.cpu, []).append(self._spl.get(rec.cpu, 0))
        level = _level(rec.detail)
        if level is not None:
            self._set_spl(rec.cpu, level, rec.time_ns)

    def _irq_end(self, rec: TraceRecord) -> None:
        if not self._close_slice(rec.cpu, "irq", rec.target, rec.time_ns):
            self._instant(rec)
        saved = self._spl_saved.get(rec.cpu)
        if saved:
            self._set_spl(rec.cpu, saved.pop(), rec.time_ns)

    def _spl_change(self, rec: TraceRecord) -> None:
        self._instant(rec)
        level = _level(rec.detail.rpartition("->")[2])
        if level is not None:
            self._set_spl(rec.cpu, level, rec.time_ns)

    def _wait(self, rec: TraceRecord) -> None:
        waiting = self._waiting.setdefault(rec.target, [])
        if rec.cpu not in waiting:
            waiting.append(rec.cpu)
            self._count_waiter(rec.target, 1, rec.time_ns)
        label = f'"name":{_dumps("wait " + rec.target)},"cat":"wait"'
        if rec.dur_ns == 0:
            # the engine reports a wait when it starts: a slice open until the acquisition
            sl = _Slice("wait", rec.target, label, _args(how=rec.detail, loc=rec.loc))
            self._open(rec.cpu, sl, rec.time_ns)
            return
        self._hold(rec, label, _args(how=rec.detail, loc=rec.loc))

    def _work(self, rec: TraceRecord) -> None:
        self._hold(rec, '"name":"work","cat":"work"', _args(loc=rec.loc))

    def _violation(self, rec: TraceRecord) -> None:
        self._emit(f'{{"name":{_dumps(rec.target)},"cat":"violation","ph":"i"'
                   f',"s":"g","ts":{us(rec.time_ns)},"pid":{self._pid},"tid":{TID_BASE + rec.cpu}'
                   f',"args":{_args(message=rec.detail, loc=rec.loc)}}}')

    def _note(self, rec: TraceRecord) -> None:
        self._emit(f'{{"name":{_dumps(rec.detail)},"cat":"note","ph":"i"'
                   f',"s":"t","ts":{us(rec.time_ns)},"pid":{self._pid},"tid":{TID_BASE + rec.cpu}'
                   f',"args":{_args(loc=rec.loc)}}}')

    def _instant(self, rec: TraceRecord) -> None:
        name = f"{rec.action} {rec.target}" if rec.target else rec.action
        args = _args(target=rec.target, detail=rec.detail, loc=rec.loc)
        self._emit(f'{{"name":{_dumps(name)},"cat":{_dumps(rec.action)},"ph":"i"'
                   f',"s":"t","ts":{us(rec.time_ns)},"pid":{self._pid},"tid":{TID_BASE + rec.cpu}'
                   f',"args":{args}}}')

    # -- counters and flows ---------------------------------------------------

    def _count_waiter(self, lock: str, delta: int, time_ns: int) -> None:
        cls = _lock_class(lock)
        n = self._class_waiters.get(cls, 0) + delta
        self._class_waiters[cls] = n
        self._counter(cls, "waiters", n, time_ns)

    def _set_spl(self, cpu: int, level: int, time_ns: int) -> None:
        if self._spl.get(cpu) != level:
            self._spl[cpu] = level
            self._counter(f"CPU{cpu}", "spl", level, time_ns)

    def _counter(self, name: str, key: str, value: int, time_ns: int) -> None:
        self._emit(f'{{"name":{_dumps(name)},"cat":"counter","ph":"C","ts":{us(time_ns)}'
                   f',"pid":{self._pid},"args":{{{_dumps(key)}:{int(value)}}}}}')

    def _flow(self, ph: str, flow_id: int, cpu: int, time_ns: int) -> None:
        """One end of a hand-off arrow, bound to the lock slice open on ``cpu`` now."""
        t = max(time_ns, self._edge_ns[cpu])
        bind = ',"bp":"e"' if ph == "f" else ""
        self._emit(f'{{"name":"hand-off","cat":"lock","ph":"{ph}","id":{flow_id}{bind}'
                   f',"ts":{us(t)},"pid":{self._pid},"tid":{TID_BASE + cpu}}}')

    # -- slices ---------------------------------------------------------------

    def _has_slice(self, cpu: int, kind: str, target: str) -> bool:
        return any(sl.kind == kind and sl.target == target for sl in self._stacks[cpu])

    def _open(self, cpu: int, sl: _Slice, time_ns: int) -> None:
        self._stacks[cpu].append(sl)
        self._begin(cpu, sl, time_ns)

    def _close_slice(self, cpu: int, kind: str, target: str, time_ns: int) -> bool:
        """Close the innermost open slice matching ``kind``/``target``.

        Returns False (and writes nothing) when no such slice is open.
        """
        stack = self._stacks[cpu]
        for i in range(len(stack) - 1, -1, -1):
            if stack[i].kind == kind and stack[i].target == target:
                break
        else:
            return False
        # close the slices above it, then it, then reopen those above
        above = stack[i + 1:]
        for sl in reversed(above):
            self._end(cpu, sl, time_ns)
        self._end(cpu, stack[i], time_ns)
        del stack[i:]
        for sl in above:
            self._open(cpu, sl, time_ns)
        return True

    def _begin(self, cpu: int, sl: _Slice, time_ns: int) -> None:
        t = self._boundary(cpu, time_ns)
        self._emit(f'{{{sl.label},"ph":"B","ts":{us(t)},"pid":{self._pid},"tid":{TID_BASE + cpu}'
                   f',"args":{sl.args}}}')

    def _end(self, cpu: int, sl: _Slice, time_ns: int) -> None:
        t = self._boundary(cpu, time_ns)
        self._emit(f'{{{sl.label},"ph":"E","ts":{us(t)},"pid":{self._pid},"tid":{TID_BASE + cpu}}}')

    def _boundary(self, cpu: int, time_ns: int) -> int:
        """The time of a slice boundary: never before the track's last one."""
        t = max(time_ns, self._edge_ns[cpu])
        self._edge_ns[cpu] = t
        return t

    # -- timed slices (wait, work) -------------------------------------------

    def _hold(self, rec: TraceRecord, label: str, args: str) -> None:
        """Open a slice for a record with a duration; it ends in :meth:`_end_timed`."""
        start = max(rec.time_ns, self._edge_ns[rec.cpu])
        end = max(start, rec.time_ns + max(rec.dur_ns, 0))
        if end > self._last_ns[rec.cpu]:
            self._last_ns[rec.cpu] = end
        self._open(rec.cpu, _Slice("timed", "", label, args), start)
        self._ends[rec.cpu] = end

    def _end_timed(self, now_ns: int, cpu: int) -> None:
        """Before a record of ``cpu`` at ``now_ns``: end the timed slices due by then.

        ``cpu``'s own ends now at the latest (its next step has begun); other
        CPUs' ones only if they end by ``now_ns``.  Earliest first, so the
        file stays in time order.
        """
        if not self._ends:
            return
        due = sorted((min(end, now_ns), c) for c, end in self._ends.items()
                     if c == cpu or end <= now_ns)
        for end, c in due:
            self._end_timed_slice(c, end)

    def _end_timed_slice(self, cpu: int, end_ns: int) -> None:
        del self._ends[cpu]
        self._end(cpu, self._stacks[cpu].pop(), end_ns)

    # -- output ---------------------------------------------------------------

    def _track(self, cpu: int) -> None:
        """Declare the track for ``cpu`` and start its bookkeeping."""
        role = self._names.get(cpu)
        name = f"CPU{cpu} {role}" if role else f"CPU{cpu}"
        self._meta(cpu, "thread_name", _args(name=name))
        self._meta(cpu, "thread_sort_index", f'{{"sort_index":{int(cpu)}}}')
        self._stacks[cpu] = []
        self._edge_ns[cpu] = 0
        self._last_ns[cpu] = 0

    def _meta(self, cpu: int | None, name: str, args: str) -> None:
        tid = "" if cpu is None else f',"tid":{TID_BASE + int(cpu)}'
        self._emit(f'{{"name":"{name}","ph":"M","pid":{self._pid}{tid},"args":{args}}}')

    def _emit(self, event: str) -> None:
        if self._first:
            self._first = False
            self._out.write(event)
        else:
            self._out.write(",\n" + event)
        self.events += 1


#: Which method turns a record of each action into events (others: instants).
_HANDLERS = {
    "acquire": ChromeTraceSink._acquire,
    "release": ChromeTraceSink._release,
    "irq-begin": ChromeTraceSink._irq_begin,
    "irq-end": ChromeTraceSink._irq_end,
    "wait": ChromeTraceSink._wait,
    "work": ChromeTraceSink._work,
    "violation": ChromeTraceSink._violation,
    "note": ChromeTraceSink._note,
    "spl": ChromeTraceSink._spl_change,
}


def write_chrome_trace(records, path_or_file: str | IO[str],
                       cpu_names: dict[int, str] | None = None, *,
                       pid: int = PID, process: str = "smpvm") -> None:
    """Write ``records`` (any iterable) as a Chrome trace file."""
    sink = ChromeTraceSink(path_or_file, cpu_names, pid=pid, process=process)
    for rec in records:
        sink.add(rec)
    sink.close()
