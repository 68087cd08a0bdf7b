"""Lock-order graph vocabulary: edge types and the searches over a class graph.

An edge A -> B of a lock-order graph says "B was taken while A was held".
Following lockdep, each edge carries *dependency types* as bits: how A was
held (E exclusive, S shared) and how B was taken (N: may wait, R: a recursive
reader that never waits for other readers).  A cycle is a deadlock only if it
is *strong*: no recursive-reader step is followed by a step that holds its
lock shared.  Witness searches the graph of one run as edges appear; the
merged picture of many runs (``report.lorgraph``) searches the same way.
Both use the functions here, so both give the same verdicts.
"""

from __future__ import annotations

from collections import deque

from .ops import SPL_NAMES

# Dependency types of an edge A -> B, as bits (lockdep's notation): how A was
# held (E exclusive / S shared) and how B was taken (N may wait / R recursive
# reader that never waits for readers).
EN, ER, SN, SR = 1, 2, 4, 8
#: Bit names, in bit order, for reports.
TYPE_NAMES = ((EN, "EN"), (ER, "ER"), (SN, "SN"), (SR, "SR"))
#: Types whose held side is exclusive (may follow an R acquisition in a strong path).
HELD_EXCLUSIVE = EN | ER
#: Types whose taken side is a recursive reader.
TAKEN_RECURSIVE = ER | SR

#: An effective spl above every level: interrupts are disabled.
SPL_MASKED = 1 << 20



def type_names(bits: int) -> list[str]:
    return [name for bit, name in TYPE_NAMES if bits & bit]


def type_bits(names) -> int:
    """Bits from names such as ``["EN", "SR"]`` (unknown or missing: strong ``EN``)."""
    by_name = {name: bit for bit, name in TYPE_NAMES}
    bits = 0
    for name in names or ():
        bits |= by_name.get(name, 0)
    return bits or EN


def spl_name(level: int) -> str:
    if level >= SPL_MASKED:
        return "interrupts disabled"
    return SPL_NAMES.get(level, f"spl {level}")


def _walk(edges, start, skip_blessed: bool):
    """Breadth-first over states (class, entered as a recursive reader) from ``start``.

    Yields each state as it leaves the queue, with ``prev`` (state -> (previous
    state, edge type bits)) filled in so far; the order is the graph's
    (deterministic) insertion order, so paths found are shortest ones.
    """
    prev = {start: None}
    queue = deque([start])
    while queue:
        state = queue.popleft()
        yield state, prev
        node, recursive = state
        for succ, edge in edges.get(node, {}).items():
            if skip_blessed and edge.blessed:
                continue
            types = edge.types & HELD_EXCLUSIVE if recursive else edge.types
            for nxt_rec, mask in ((False, EN | SN), (True, ER | SR)):
                if types & mask and (succ, nxt_rec) not in prev:
                    prev[(succ, nxt_rec)] = (state, types & mask)
                    queue.append((succ, nxt_rec))


def strong_path(edges, src, dst, enter_recursive: bool, leave_shared: bool):
    """A strong path src -> ... -> dst that closes a strong cycle, or None.

    ``edges`` maps a class to {successor: edge}, each edge with ``types``
    (bits) and ``blessed``.  The cycle is closed by an edge dst -> src whose
    held side is shared when ``leave_shared`` and whose taken side is a
    recursive reader when ``enter_recursive``.  Breadth-first over states
    (class, entered as a recursive reader), so the path found is a shortest
    one and the search order is the graph's (deterministic) insertion order.
    Returns ``(classes, type_bits_per_edge)``.
    """
    for state, prev in _walk(edges, (src, enter_recursive), skip_blessed=True):
        node, recursive = state
        if node == dst and not (recursive and leave_shared):
            return _unwind(prev, state)
    return None


def reachable(edges, src, enter_recursive: bool):
    """Every state (class, entered recursively) reachable from ``src`` with how it was reached."""
    prev = {}
    for _, prev in _walk(edges, (src, enter_recursive), skip_blessed=False):
        pass
    return prev


def spl_conflicts(edges, safe, unsafe):
    """Rule 5 as a search: yield (a, safe mark, b, unsafe mark, chain a -> ... -> b).

    ``safe`` and ``unsafe`` map a class to two marks (by waiting acquisitions,
    by recursive readers), each None or (level or spl, site, context).  The
    handler's acquisition of ``a`` and the hold of ``b`` close the chain into
    a cycle, which must be strong (rule 4) to be a deadlock: a recursive
    reader in the handler passes a reader holding the lock.
    """
    for a, safe_marks in safe.items():
        for a_rec in (0, 1):
            mark = safe_marks[a_rec]
            if mark is None:
                continue
            prev = reachable(edges, a, bool(a_rec))
            for state in prev:
                b, entered_rec = state
                for b_rec, bad in enumerate(unsafe.get(b, ())):
                    if bad is None or bad[0] >= mark[0] or (b_rec and entered_rec):
                        continue
                    yield a, mark, b, bad, _unwind(prev, state)[0]
                    break


def _unwind(prev, state):
    nodes, types = [state[0]], []
    while prev[state] is not None:
        state, bits = prev[state]
        nodes.append(state[0])
        types.append(bits)
    return nodes[::-1], types[::-1]
