"""Traces: one record per step of a run.

A trace is what a developer reads after a failure: every step a CPU took, in
the order the machine took them, with the simulated time, the context (thread
or interrupt handler), what it did, to which lock or object, and the model
source line that did it.

Records are plain named tuples so that keeping them costs little and they
pickle across processes.  A run keeps no records at all unless something
asked for them (``Machine(trace=...)``): a *sink* receives each record as it
is made.  ``MemorySink`` keeps them in a list (for narratives and tests);
the Chrome exporter in :mod:`smpvm.report.chrome` streams them straight to a file so
memory stays flat however long the run.

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
