"""Witness findings as multi-line reports, the way lockdep and WITNESS print them.

A one-line ``Violation.message`` is what scripts parse; a person acting on a
finding wants what the kernel prints: the lock being taken and the one
held, the chain that established the opposite order, and lockdep's
"Possible unsafe locking scenario" table (the CPU0/CPU1 columns, or CPU0 and
the interrupt that arrives on it).  FreeBSD lock kinds get WITNESS's
``1st ... / 2nd ...`` lines instead of lockdep's wording.  These functions
take plain data (names, kinds, sites) and return text; witness calls them
only when it reports.
"""

from __future__ import annotations

#: Lock kinds that read as Linux locks (lockdep's wording); the rest read as FreeBSD's.
LINUX_KINDS = frozenset({"spinlock_t", "spinlock_t (irq)", "rwlock_t", "mutex",
                         "rw_semaphore", "rt_mutex", "lockdep map"})

_COL = 31  # where the second column of a scenario table starts


def _verb(read: bool) -> str:
    return "rlock" if read else "lock"


def _table(rows, two_columns: bool) -> list[str]:
    """Rows of (column, text) as lockdep's scenario table."""
    out = [" Possible unsafe locking scenario:", ""]
    if two_columns:
        out += ["       CPU0".ljust(_COL) + "CPU1", "       ----".ljust(_COL) + "----"]
    else:
        out += ["       CPU0", "       ----"]
    for col, text in rows:
        out.append(("  " + text) if col == 0 else (" " * _COL + text))
    out += ["", " *** DEADLOCK ***"]
    return out


def _chain(frames) -> list[str]:
    if not frames:
        return []
    return ["  call chain (innermost last):"] + [f"    {f}" for f in frames]


def reversal(linux: bool, held: dict, taken: dict, established: list, cycle: list,
             who: str, frames: list) -> str:
    """A lock-order reversal: ``held`` and ``taken`` are {cls, kind, site, read}.

    ``established`` is the opposite order's edges (each {edge, first, second,
    ctx, declared}), ``cycle`` the classes a -> b -> ... -> a, ``who`` the
    context taking the lock, ``frames`` its model call chain.
    """
    a, b = held["cls"], taken["cls"]
    if not linux:
        lines = ["lock order reversal:",
                 f" 1st {a} ({held['kind']}) @ {held['site'] or '?'}",
                 f" 2nd {b} ({taken['kind']}) @ {taken['site'] or '?'}"]
        lines.append(f" lock order {' -> '.join(cycle[1:])} established at:")
        lines += [f"  {_edge_line(s)}" for s in established]
        lines += _chain(frames)
        return "\n".join(lines)
    lines = ["WARNING: possible circular locking dependency detected",
             f"{who} is trying to acquire lock:",
             f"  {b} ({taken['kind']}), at: {taken['site'] or '?'}",
             "", "but it is already holding lock:",
             f"  {a} ({held['kind']}), at: {held['site'] or '?'}",
             "", "which lock already depends on the new lock.", "",
             "the existing dependency chain (in reverse order) is:", ""]
    for n, s in reversed(list(enumerate(established))):
        lines.append(f"-> #{n} ({s['edge'][1]}): {_edge_line(s)}")
    lines += _chain(frames)
    lines += ["", "other info that might help us debug this:", ""]
    if len(cycle) > 3:
        lines += [" Chain exists of:", "   " + " --> ".join(cycle[1:]), ""]
    parent = cycle[-2]  # the lock held when the opposite order took ``a``
    rows = [(0, f"{_verb(held['read'])}({a});"), (1, f"lock({parent});"),
            (1, f"lock({a});"), (0, f"{_verb(taken['read'])}({b});")]
    lines += _table(rows, True)
    return "\n".join(lines)


def _edge_line(s) -> str:
    x, y = s["edge"]
    if s.get("declared") and s.get("first") == "declared":
        return f"{x} -> {y} (documented order)"
    who = s.get("ctx") or f"CPU{s.get('cpu', '?')}"
    return f"{x} @ {s.get('first') or '?'} -> {y} @ {s.get('second') or '?'} ({who})"


def irq_conflict(linux: bool, a: str, a_kind: str, level_name: str, safe_site: str,
                 safe_ctx: str, b: str, b_kind: str, spl_name: str, unsafe_site: str,
                 unsafe_ctx: str, chain: list, frames: list) -> str:
    """An interrupt-level conflict: ``a`` taken in a handler, ``b`` with that level unmasked."""
    if a == b:
        head = ("WARNING: inconsistent lock state" if linux
                else f"lock {a} ({a_kind}) used in and out of interrupt context")
        lines = [head,
                 f"{a} ({a_kind}) was taken in interrupt handler {safe_ctx} at {level_name}:",
                 f"  at: {safe_site or '?'}",
                 f"and with {level_name} unmasked ({spl_name}, in {unsafe_ctx}):",
                 f"  at: {unsafe_site or '?'}"]
        lines += _chain(frames)
        lines += ["", "other info that might help us debug this:", ""]
        lines += _table([(0, f"lock({a});"), (0, "<Interrupt>"), (0, f"  lock({a});")], False)
        return "\n".join(lines)
    head = ("WARNING: irq-safe -> irq-unsafe lock order detected" if linux
            else f"lock order {a} -> {b} from interrupt-safe to interrupt-unsafe")
    lines = [head,
             f"{a} ({a_kind}) is taken in interrupt handler {safe_ctx} at {level_name}:",
             f"  at: {safe_site or '?'}",
             f"and held while taking {' -> '.join(chain[1:])};",
             f"{b} ({b_kind}) is taken with {level_name} unmasked ({spl_name}, in {unsafe_ctx}):",
             f"  at: {unsafe_site or '?'}"]
    lines += _chain(frames)
    lines += ["", "other info that might help us debug this:", ""]
    rows = [(0, f"lock({b});"), (1, "mask the interrupt;"), (1, f"lock({a});"),
            (1, f"lock({chain[1]});" if len(chain) > 2 else f"lock({b});"),
            (0, "<Interrupt>"), (0, f"  lock({a});")]
    lines += _table(rows, True)
    return "\n".join(lines)


def deadlock(linux: bool, waits: list) -> str:
    """A wait-for cycle as a multi-line report: who holds what, who waits for what, the table.

    ``waits`` is the cycle in order, each {cpu, ctx, held: [(cls, site)], lock, site,
    holder, chain}: the CPU, its context, the locks it holds with where it took
    them, the lock it waits for, where it waits, the CPU that holds that lock,
    and the model's call chain where it waits (optional).
    """
    lines = ["WARNING: deadlock: circular wait among CPUs" if linux else "deadlock: wait-for cycle:"]
    for w in waits:
        lines.append(f"CPU{w['cpu']} ({w['ctx']}) holds:")
        lines += [f"  {cls} @ {site or '?'}" for cls, site in w["held"]] or ["  nothing"]
        lines.append(f" and waits for {w['lock']} held by CPU{w['holder']} "
                     f"@ {w['site'] or '?'}")
        lines += _chain(w.get("chain"))
    if len(waits) == 2:
        first, second = waits
        rows = []
        for col, w in ((0, first), (1, second)):
            wanted = second if col == 0 else first
            mine = [cls for cls, _ in w["held"] if cls == wanted["lock"]] or \
                   [cls for cls, _ in w["held"]][-1:]
            rows += [(col, f"lock({cls});") for cls in mine]
        rows += [(0, f"lock({first['lock']});"), (1, f"lock({second['lock']});")]
        lines += ["", "other info that might help us debug this:", ""]
        lines += _table(rows, True)
    return "\n".join(lines)
