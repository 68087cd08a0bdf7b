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

**Many CPUs.**  A hundred threads make a hundred columns no one can read.
When the columns would not fit in ``max_line`` characters, only the CPUs
that acted last before the violation (or the end) get a column of their
own; one more column, "other CPUs", holds the rest: a single step of
another CPU is written there with its CPU number, and a stretch of several
is summed up in one row ("CPU3-CPU98: 57 steps").  Their threads' beginnings
are left out (the "start thread" of their creator says it), and a creator
starting many threads in a row takes one row.
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


#: Longest line a narrative aims for when it has to leave CPUs out of the columns.
MAX_LINE = 160
#: Column key of the "other CPUs" column.
OTHERS = -1


def narrate(records: Iterable[TraceRecord],
            cpu_names: dict[int, str] | None = None,
            width: int = 38,
            max_rows: int | None = None,
            actions: set[str] | None = None,
            max_line: int = MAX_LINE) -> str:
    """The records as a text table with one column per CPU.

    ``cpu_names`` maps CPU numbers to a role shown in the header ("CPU1
    terminator"); without one, the first thread a CPU begins names it.
    ``width`` is the width of each CPU column; longer text wraps.
    ``max_rows`` stops after that many records (a last line says how many
    were left out).  ``actions``, when given, keeps only records whose action
    is in it.  ``max_line``: with more CPUs than fit in that many characters,
    the CPUs acting nearest the violation get columns (module docstring).
    """
    if width < 8:
        raise ValueError(f"width={width} is too narrow for a column; use 8 or more")
    recs = [r for r in records if actions is None or r.action in actions]
    shown = recs if max_rows is None else recs[:max(max_rows, 0)]
    cpus = sorted(set(cpu_names or {}) | {r.cpu for r in recs})
    time_w = max([len(TIME_HEADER)] + [len(_us(r.time_ns)) for r in shown])
    names = _header_names(recs, cpus, cpu_names or {})
    if time_w + len(cpus) * (width + len(SEP)) > max_line and len(cpus) > 2:
        width = min(width, 34)
        keep = _near_violation(shown, (max_line - time_w) // (width + len(SEP)) - 1)
        names[OTHERS] = f"other CPUs ({len(cpus) - len(keep)})"
        shown = _fold_others(shown, set(keep))
        cpus = keep + [OTHERS]
    column = {cpu: i for i, cpu in enumerate(cpus)}
    # violations use the width of all CPU columns together
    data_w = len(cpus) * width + (len(cpus) - 1) * len(SEP)

    def line(time_text: str, cells: dict[int, str]) -> str:
        parts = [time_text.rjust(time_w)]
        for i in range(len(cpus)):
            parts.append(cells.get(i, "").ljust(width))
        return SEP.join(parts).rstrip()

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
        text = step_text(rec)
        where = column.get(rec.cpu)
        if where is None:  # a CPU without a column of its own
            where = column[OTHERS]
            text = f"CPU{rec.cpu} {text}"
        for k, piece in enumerate(_wrap(text, _where(rec.loc), width)):
            out.append(line(time_text if k == 0 else "", {where: piece}))
    if len(shown) < len(recs):
        out.append(f"... {len(recs) - len(shown)} more records not shown")
    return "\n".join(out) + "\n"


def _near_violation(recs: list[TraceRecord], n: int) -> list[int]:
    """The ``n`` (at least 2) CPUs that acted last up to the first violation, ascending."""
    at = next((i for i, r in enumerate(recs) if r.action == "violation"), len(recs) - 1)
    keep: list[int] = []
    for r in reversed(recs[:at + 1]):
        if r.cpu not in keep:
            keep.append(r.cpu)
            if len(keep) >= max(n, 2):
                break
    return sorted(keep)


def _fold_others(recs: list[TraceRecord], keep: set) -> list[TraceRecord]:
    """Records of CPUs without a column: each alone, named, or a stretch summed up in one."""
    out: list[TraceRecord] = []
    run: list[TraceRecord] = []

    def flush():
        if len(run) <= 2:
            out.extend(run)
        else:
            ids = sorted({r.cpu for r in run})
            span = f"CPU{ids[0]}" if len(ids) == 1 else f"CPU{ids[0]}-CPU{ids[-1]}"
            out.append(TraceRecord(run[0].time_ns, OTHERS, "", "summary", span, "",
                                   f"{len(run)} steps of {len(ids)} CPU(s)"))
        run.clear()

    for r in recs:
        if r.cpu in keep or r.action == "violation":
            flush()
            out.append(r)
        elif r.action != "thread-begin":
            run.append(r)
    flush()
    return _fold_spawns(out)


def _fold_spawns(recs: list[TraceRecord]) -> list[TraceRecord]:
    """Three or more thread starts in a row by one CPU, as one row."""
    out: list[TraceRecord] = []
    i = 0
    while i < len(recs):
        j = i
        while j < len(recs) and recs[j].action == "spawn" and recs[j].cpu == recs[i].cpu:
            j += 1
        if j - i >= 3:
            first, last = recs[i], recs[j - 1]
            out.append(first._replace(action="summary", target=f"start {j - i} threads",
                                      detail=f"{first.target} on {first.detail} to "
                                             f"{last.target} on {last.detail}"))
            i = j
        else:
            out.append(recs[i])
            i += 1
    return out


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
    if a == "spawn":
        return f"start thread {target} on {detail}"
    if a == "pause":
        return "yield"
    if a == "summary":
        return f"{target}: {detail}"
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
