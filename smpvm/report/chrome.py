"""Chrome trace export: a run as a file for Perfetto UI or chrome://tracing.

The Chrome Trace Event Format is a JSON object whose ``traceEvents`` list
holds one small object per event.  Each simulated CPU becomes one track
(``pid`` 1, ``tid`` = CPU number) named by a ``thread_name`` metadata event.
On a track, things that take time are *slices*:

- a lock hold is a slice named after the lock, opened by ``acquire``
  (``"ph": "B"``) and closed by ``release`` (``"ph": "E"``);
- an interrupt handler is a slice ``irq <source>`` between ``irq-begin`` and
  ``irq-end``;
- ``wait`` and ``work`` records carry their own duration and become complete
  events (``"ph": "X"``).

Everything else (loads, stores, alloc/free, spl changes, notes) is an instant
event on its CPU's track; a violation is a global instant, drawn across all
tracks so it cannot be missed.

Trace viewers require the slices on one track to nest like brackets.  Real
kernels do not release locks in stack order, so when a lock that is not the
innermost open slice is released, the slices above it are closed, it is
closed, and the ones above are reopened at the same instant with the same
names and arguments.  A complete event is held back until the CPU's next
record arrives and is clipped to lie between the last slice boundary on the
track and that record, so it always nests too.

:class:`ChromeTraceSink` is a trace sink: it writes each event as its record
arrives and keeps only the per-CPU stack of open slices, so memory stays flat
however long the run.  Times are written as microseconds with exactly three
decimals, computed with integer arithmetic, so the same records always give
byte-identical files.
"""

from __future__ import annotations

import json
from typing import IO, NamedTuple

from smpvm.trace import TraceRecord

_dumps = json.dumps

#: The one process all CPU tracks belong to.
PID = 1


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


class _Complete(NamedTuple):
    """A complete event waiting for the CPU's next record to clip its end."""

    #: Start time in ns (already clipped to the track's last boundary).
    start_ns: int
    #: End time in ns as the record says.
    end_ns: int
    #: Ready-made JSON text of its name and category.
    label: str
    #: Ready-made JSON text of its args.
    args: str


class ChromeTraceSink:
    """Streams trace records to a Chrome Trace Event Format JSON file.

    ``path_or_file`` is a path (the sink opens the file and closes it in
    :meth:`close`) or an open text file (left open).  ``cpu_names`` maps CPU
    numbers to a role shown next to the track name ("CPU0 terminator");
    tracks for CPUs it names are declared up front, others when their first
    record arrives.
    """

    def __init__(self, path_or_file: str | IO[str],
                 cpu_names: dict[int, str] | None = None) -> None:
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
        #: Per CPU, a complete event held back until the CPU's next record.
        self._held: dict[int, _Complete] = {}
        #: Whether the next event is the first in the list (no comma before it).
        self._first = True
        #: Whether :meth:`close` has run.
        self.closed = False
        #: Number of events written so far.
        self.events = 0
        self._out.write('{"displayTimeUnit":"ns","traceEvents":[\n')
        self._meta(None, "process_name", '{"name":"smpvm"}')
        for cpu in sorted(self._names):
            self._track(cpu)

    # -- the sink interface ---------------------------------------------------

    def add(self, rec: TraceRecord) -> None:
        """Write the events for one record."""
        cpu = rec.cpu
        if cpu not in self._stacks:
            if rec.action == "thread-begin" and cpu not in self._names:
                self._names[cpu] = rec.target
            self._track(cpu)
        # a held complete event ends, at the latest, when this record happens
        held = self._held.pop(cpu, None)
        if held is not None:
            self._flush(cpu, held, rec.time_ns)
        if rec.time_ns > self._last_ns[cpu]:
            self._last_ns[cpu] = rec.time_ns
        handler = _HANDLERS.get(rec.action, ChromeTraceSink._instant)
        handler(self, rec)

    def close(self) -> None:
        """Close still-open slices at each CPU's last time and finish the JSON."""
        if self.closed:
            return
        self.closed = True
        for cpu in sorted(self._stacks):
            held = self._held.pop(cpu, None)
            if held is not None:
                self._flush(cpu, held, None)
            stack = self._stacks[cpu]
            while stack:
                self._end(cpu, stack.pop(), self._last_ns[cpu])
        self._out.write("\n]}\n")
        if self._owned:
            self._out.close()
        else:
            self._out.flush()

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

    def _release(self, rec: TraceRecord) -> None:
        if not self._close_slice(rec.cpu, "lock", rec.target, rec.time_ns):
            self._instant(rec)

    def _irq_begin(self, rec: TraceRecord) -> None:
        label = f'"name":{_dumps("irq " + rec.target)},"cat":"irq"'
        sl = _Slice("irq", rec.target, label, _args(level=rec.detail, loc=rec.loc))
        self._open(rec.cpu, sl, rec.time_ns)

    def _irq_end(self, rec: TraceRecord) -> None:
        if not self._close_slice(rec.cpu, "irq", rec.target, rec.time_ns):
            self._instant(rec)

    def _wait(self, rec: TraceRecord) -> None:
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
                   f',"s":"g","ts":{us(rec.time_ns)},"pid":{PID},"tid":{rec.cpu}'
                   f',"args":{_args(message=rec.detail, loc=rec.loc)}}}')

    def _note(self, rec: TraceRecord) -> None:
        self._emit(f'{{"name":{_dumps(rec.detail)},"cat":"note","ph":"i"'
                   f',"s":"t","ts":{us(rec.time_ns)},"pid":{PID},"tid":{rec.cpu}'
                   f',"args":{_args(loc=rec.loc)}}}')

    def _instant(self, rec: TraceRecord) -> None:
        name = f"{rec.action} {rec.target}" if rec.target else rec.action
        args = _args(target=rec.target, detail=rec.detail, loc=rec.loc)
        self._emit(f'{{"name":{_dumps(name)},"cat":{_dumps(rec.action)},"ph":"i"'
                   f',"s":"t","ts":{us(rec.time_ns)},"pid":{PID},"tid":{rec.cpu}'
                   f',"args":{args}}}')

    # -- slices ---------------------------------------------------------------

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
        self._emit(f'{{{sl.label},"ph":"B","ts":{us(t)},"pid":{PID},"tid":{cpu}'
                   f',"args":{sl.args}}}')

    def _end(self, cpu: int, sl: _Slice, time_ns: int) -> None:
        t = self._boundary(cpu, time_ns)
        self._emit(f'{{{sl.label},"ph":"E","ts":{us(t)},"pid":{PID},"tid":{cpu}}}')

    def _boundary(self, cpu: int, time_ns: int) -> int:
        """The time of a slice boundary: never before the track's last one."""
        t = max(time_ns, self._edge_ns[cpu])
        self._edge_ns[cpu] = t
        return t

    # -- complete events ------------------------------------------------------

    def _hold(self, rec: TraceRecord, label: str, args: str) -> None:
        """Keep a wait/work event until we know when the CPU did its next thing."""
        end = rec.time_ns + max(rec.dur_ns, 0)
        if end > self._last_ns[rec.cpu]:
            self._last_ns[rec.cpu] = end
        start = max(rec.time_ns, self._edge_ns[rec.cpu])
        self._held[rec.cpu] = _Complete(start, max(start, end), label, args)

    def _flush(self, cpu: int, ev: _Complete, next_ns: int | None) -> None:
        """Write a held complete event, clipped to end by ``next_ns``."""
        end = ev.end_ns if next_ns is None else min(ev.end_ns, next_ns)
        end = max(end, ev.start_ns)
        self._edge_ns[cpu] = max(self._edge_ns[cpu], end)
        self._emit(f'{{{ev.label},"ph":"X","ts":{us(ev.start_ns)}'
                   f',"dur":{us(end - ev.start_ns)},"pid":{PID},"tid":{cpu}'
                   f',"args":{ev.args}}}')

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
        tid = "" if cpu is None else f',"tid":{int(cpu)}'
        self._emit(f'{{"name":"{name}","ph":"M","pid":{PID}{tid},"args":{args}}}')

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
}


def write_chrome_trace(records, path_or_file: str | IO[str],
                       cpu_names: dict[int, str] | None = None) -> None:
    """Write ``records`` (any iterable) as a Chrome trace file."""
    sink = ChromeTraceSink(path_or_file, cpu_names)
    for rec in records:
        sink.add(rec)
    sink.close()
