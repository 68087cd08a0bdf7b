"""Traces: one record per step of a run.

A trace is what a developer reads after a failure: every step a CPU took, in
the order the machine took them, with the simulated time, the context (thread
or interrupt handler), what it did, to which lock or object, and the model
source line that did it.

Records are plain named tuples so that keeping them costs little and they
pickle across processes.  A run keeps no records at all unless something
asked for them (``Machine(trace=...)``): a *sink* receives each record as it
is made.  ``MemorySink`` keeps them in a list (for narratives and tests);
``WindowSink`` keeps what a report shows of a run of any length (the records
around its first violation) in bounded memory; the Chrome exporter in
:mod:`smpvm.report.chrome` streams them straight to a file so memory stays
flat however long the run.

Actions (the ``action`` field) and what ``target``/``detail`` hold:

==============  =========================================  =====================
action          target                                     detail
==============  =========================================  =====================
thread-begin    thread name                                ""
thread-end      thread name                                ""
spawn           the new thread's name                      its CPU, "CPU<n>"
pause           ""                                         ""
acquire         lock ("class" or "class[instance]")        mode: "x", "s", ...
release         lock                                       mode
wait            lock the CPU starts waiting for            "spin" or "block"
trylock-fail    lock                                       mode
work            ""                                         "" (``dur`` is set)
spl             ""                                         "old->new" levels
irq-begin       interrupt source name                      level
irq-end         interrupt source name                      ""
alloc           item ("zone#slot")                         ""
free            item                                       ""
load            item.field                                 repr of the value
store           item.field                                 repr of the value
sleep           wait channel                               ""
wakeup          wait channel                               number woken
note            ""                                         free text from model
violation       violation kind                             message
==============  =========================================  =====================

``dur`` is non-zero only for ``work`` (the CPU is busy for that long) and
``wait`` (filled in when the wait ends, so exporters can draw a slice).
"""

from __future__ import annotations

import hashlib
from collections import deque
from typing import NamedTuple


class TraceRecord(NamedTuple):
    """One step, or one event inside a step."""

    #: Simulated time in nanoseconds at which the step happened.
    time_ns: int
    #: CPU number, 0-based.
    cpu: int
    #: The context: the thread's name, or ``irq:<source>`` inside a handler.
    ctx: str
    #: What happened; one of the actions in the module docstring.
    action: str
    #: The lock, object or channel it happened to ("" when none).
    target: str
    #: Model source location, ``path:line`` ("" when unknown).
    loc: str
    #: Action-specific text (lock mode, value, message); see the docstring.
    detail: str = ""
    #: Duration in nanoseconds for ``work`` and ``wait`` records, else 0.
    dur_ns: int = 0


class Window(NamedTuple):
    """What a report shows of a run: a stretch of its records and what it needs of the rest."""

    #: The records shown, in order.
    records: list
    #: Index in the run of the first record shown (the records before it are left out).
    start: int
    #: Records in the whole run.
    total: int
    #: CPU -> the first thread it began, over the whole run.
    names: dict
    #: Every CPU a record of the run names (>= 0), ascending.
    cpus: list
    #: Indices of the steps on which a violation was found: each violating CPU's
    #: record before the violation.
    culprits: frozenset
    #: Index of the run's first violation (None: none).
    violation_at: int | None = None

    def narrowed(self, rows: int, after: int) -> "Window":
        """What a ``WindowSink(rows, after)`` would keep of the same run, cut from this
        window, which one with at least as many rows and as many after kept: one replay
        serves both a page and a narrative."""
        end = _window_end(self.total, rows, after, self.violation_at)
        start = max(0, end - rows)
        lo, hi = start - self.start, end - self.start
        if lo < 0 or hi > len(self.records):
            raise ValueError(f"a window of {len(self.records)} records from {self.start} "
                             f"holds no window of {rows} records ending {after} past a violation")
        return self._replace(records=self.records[lo:hi], start=start)


def _window_end(total: int, rows: int, after: int, violation_at: int | None) -> int:
    """One past the last record a window shows: a short run's end, else ``after``
    records past the first violation (or the run's end)."""
    if total <= rows:
        return total
    at = violation_at if violation_at is not None else total
    return min(total, at + after)


class WindowSink:
    """Keeps what a report shows of a run of any length, in memory bounded by ``rows``.

    A run of at most ``rows`` records is shown whole; of a longer one, the
    ``rows`` records that end ``after`` records past its first violation (or
    at its end): the steps that led to the violation matter most.  A run cut
    at a million steps (a livelock) kept all its records for a report that
    shows a few thousand of them.  ``window()`` gives the ``Window``.
    """

    def __init__(self, rows: int, after: int) -> None:
        self.rows = rows
        self.after = after
        self.total = 0
        self._kept: deque = deque(maxlen=rows)
        self._violation_at = None
        self._names: dict[int, str] = {}
        self._cpus: set = set()
        self._last: dict[int, int] = {}
        self._culprits: set = set()

    def add(self, rec: TraceRecord) -> None:
        i = self.total
        self.total = i + 1
        cpu = rec.cpu
        if cpu not in self._cpus and cpu >= 0:
            self._cpus.add(cpu)
        action = rec.action
        if action == "violation":
            if cpu in self._last:
                self._culprits.add(self._last[cpu])
        else:
            self._last[cpu] = i
            if action == "thread-begin" and cpu not in self._names:
                self._names[cpu] = rec.target
        at = self._violation_at
        if at is None:
            if action == "violation":
                self._violation_at = i
            self._kept.append((i, rec))
        elif i < at + self.after or i < self.rows:  # (a short run is shown whole)
            self._kept.append((i, rec))

    def close(self) -> None:
        pass

    def window(self) -> Window:
        total = self.total
        end = _window_end(total, self.rows, self.after, self._violation_at)
        kept = [(i, r) for i, r in self._kept if i < end][-self.rows:] if self.rows else []
        start = kept[0][0] if kept else end
        return Window([r for _, r in kept], start, total, dict(self._names),
                      sorted(self._cpus), frozenset(self._culprits), self._violation_at)


def window_of(records, rows: int, after: int) -> Window:
    """``WindowSink``'s window of records at hand."""
    sink = WindowSink(rows, after)
    for rec in records:
        sink.add(rec)
    return sink.window()


class MemorySink:
    """Keeps every record in a list: for narratives, tests and small runs."""

    def __init__(self) -> None:
        self.records: list[TraceRecord] = []

    def add(self, rec: TraceRecord) -> None:
        self.records.append(rec)

    def close(self) -> None:
        pass


class HashSink:
    """Counts records and hashes their canonical text, keeping nothing else.

    Used when a caller wants a fingerprint of the run (``trace_sha256``)
    without paying for the records' memory.
    """

    def __init__(self) -> None:
        self.count = 0
        self._sha = hashlib.sha256()

    def add(self, rec: TraceRecord) -> None:
        self.count += 1
        self._sha.update(canonical(rec).encode())

    def close(self) -> None:
        pass

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


class TeeSink:
    """Sends every record to several sinks."""

    def __init__(self, *sinks) -> None:
        self.sinks = [s for s in sinks if s is not None]

    def add(self, rec: TraceRecord) -> None:
        for s in self.sinks:
            s.add(rec)

    def close(self) -> None:
        for s in self.sinks:
            s.close()


def canonical(rec: TraceRecord) -> str:
    """A stable one-line text form of a record (tab-separated, newline-ended)."""
    return "\t".join(
        (str(rec.time_ns), str(rec.cpu), rec.ctx, rec.action, rec.target,
         rec.loc, rec.detail, str(rec.dur_ns))) + "\n"
