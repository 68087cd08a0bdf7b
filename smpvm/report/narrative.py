"""Narratives: a trace as side-by-side columns, one per CPU.

A race is easiest to follow the way it is drawn on a whiteboard: one column
per CPU, time running down the page, each step on its own row so that the
order in which the CPUs interleaved is the order of the rows::

     time µs | CPU0 allocator            | CPU1 terminator
    ---------+---------------------------+---------------------------
       0.010 | lock dev_pager_mtx        |
             | @ device_pager.py:123     |
       0.040 |                           | wait vm object[obj1]
             |                           | (block, 410 ns)
             |                           | @ vm_object.py:77
       0.450 |                           | lock vm object[obj1]

Each row starts with the record's simulated time in microseconds, then the
step written the way a kernel developer would say it (``lock``, ``unlock``,
``load obj1.ref_count = 0``, ``free obj_zone#0``) followed by the source
location as ``file:line``.  Long text wraps within its column so the columns
stay aligned.  Violations span the whole width, marked ``>>>``, so the moment
things went wrong stands out.

A ``wait`` record is written when the wait ends but carries the time the
wait began, so its row may show an earlier time than the row above it.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable

from smpvm.report.chrome import us as _us
from smpvm.trace import TraceRecord

#: Between the time column and the first CPU column, and between CPU columns.
SEP = " | "
#: Header of the time column.
TIME_HEADER = "time µs"


def narrate(records: Iterable[TraceRecord],
            cpu_names: dict[int, str] | None = None,
            width: int = 38,
            max_rows: int | None = None,
            actions: set[str] | None = None) -> str:
    """The records as a text table with one column per CPU.

    ``cpu_names`` maps CPU numbers to a role shown in the header ("CPU1
    terminator"); without one, the first thread a CPU begins names it.
    ``width`` is the width of each CPU column; longer text wraps.
    ``max_rows`` stops after that many records (a last line says how many
    were left out).  ``actions``, when given, keeps only records whose action
    is in it.
    """
    if width < 8:
        raise ValueError(f"width={width} is too narrow for a column; use 8 or more")
    recs = [r for r in records if actions is None or r.action in actions]
    shown = recs if max_rows is None else recs[:max(max_rows, 0)]
    cpus = sorted(set(cpu_names or {}) | {r.cpu for r in recs})
    column = {cpu: i for i, cpu in enumerate(cpus)}
    time_w = max([len(TIME_HEADER)] + [len(_us(r.time_ns)) for r in shown])
    # violations use the width of all CPU columns together
    data_w = len(cpus) * width + (len(cpus) - 1) * len(SEP)

    def line(time_text: str, cells: dict[int, str]) -> str:
        parts = [time_text.rjust(time_w)]
        for i in range(len(cpus)):
            parts.append(cells.get(i, "").ljust(width))
        return SEP.join(parts).rstrip()

    names = _header_names(recs, cpus, cpu_names or {})
    out = [line(TIME_HEADER, {i: _clip(names[c], width) for c, i in column.items()})]
    rule = "-" * (time_w + 1) + "+" + "+".join(["-" * (width + 2)] * len(cpus))
    out.append(rule[:time_w + len(SEP) + data_w])
    for rec in shown:
        time_text = _us(rec.time_ns)
        if rec.action == "violation":
            text = f">>> CPU{rec.cpu} {rec.target}: {rec.detail}"
            for k, piece in enumerate(_wrap(text, _where(rec.loc), data_w)):
                out.append((time_text if k == 0 else "").rjust(time_w)
                           + SEP + piece)
            continue
        for k, piece in enumerate(_wrap(step_text(rec), _where(rec.loc), width)):
            out.append(line(time_text if k == 0 else "", {column[rec.cpu]: piece}))
    if len(shown) < len(recs):
        out.append(f"... {len(recs) - len(shown)} more records not shown")
    return "\n".join(out) + "\n"


def step_text(rec: TraceRecord) -> str:
    """What one record says, in a kernel developer's words (no location)."""
    a, target, detail = rec.action, rec.target, rec.detail
    if a in ("acquire", "release", "trylock-fail"):
        verb = {"acquire": "lock", "release": "unlock", "trylock-fail": "trylock"}[a]
        mode = f" ({detail})" if detail and detail != "x" else ""
        fail = " failed" if a == "trylock-fail" else ""
        return f"{verb} {target}{mode}{fail}"
    if a == "wait":
        how = ", ".join(p for p in (detail, _ns(rec.dur_ns) if rec.dur_ns else "") if p)
        return f"wait {target} ({how})" if how else f"wait {target}"
    if a == "work":
        return f"work {_ns(rec.dur_ns)}"
    if a in ("load", "store"):
        return f"{a} {target} = {detail}"
    if a == "spl":
        return f"spl {detail}"
    if a == "irq-begin":
        return f"irq {target} begin" + (f" (level {detail})" if detail else "")
    if a == "irq-end":
        return f"irq {target} end"
    if a == "thread-begin":
        return f"thread {target} begins"
    if a == "thread-end":
        return f"thread {target} ends"
    if a == "sleep":
        return f"sleep on {target}"
    if a == "wakeup":
        return f"wakeup {target}" + (f" (woke {detail})" if detail else "")
    if a == "note":
        return detail
    if a == "violation":
        return f">>> {target}: {detail}"
    return " ".join(p for p in (a, target, detail) if p)


def _header_names(recs: list[TraceRecord], cpus: list[int],
                  cpu_names: dict[int, str]) -> dict[int, str]:
    """Header text per CPU: "CPU<n>" plus its role or its first thread's name."""
    roles = dict(cpu_names)
    for r in recs:
        if r.action == "thread-begin" and r.cpu not in roles and r.target:
            roles[r.cpu] = r.target
    return {c: f"CPU{c} {roles[c]}" if roles.get(c) else f"CPU{c}" for c in cpus}


def _wrap(text: str, where: str, width: int) -> list[str]:
    """``text`` then ``where`` wrapped into lines of at most ``width`` chars.

    The location is never split: it goes at the end of the last line when it
    fits there, else on a line of its own.
    """
    lines = textwrap.wrap(text, width, break_on_hyphens=False) or [""]
    if where:
        tail = "@ " + where
        if len(lines[-1]) + 1 + len(tail) <= width:
            lines[-1] = f"{lines[-1]} {tail}" if lines[-1] else tail
        else:
            lines.append(_clip(tail, width))
    return lines


def _where(loc: str) -> str:
    """``path/to/file.py:123`` as ``file.py:123``."""
    return loc.replace("\\", "/").rsplit("/", 1)[-1] if loc else ""


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def _ns(ns: int) -> str:
    return f"{int(ns)} ns"
