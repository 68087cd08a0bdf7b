"""Thread bodies of the random programs that the exhaustive search's tests run.

They live apart from the tests because a thread whose module reads
``m.current`` or ``m.now`` anywhere is never taken as one of a group of
identical threads (``smpvm.strategies.dfs.identical_threads``): the twins
tests need the symmetry on.  So nothing here reads either; a twin learns
which one it is from a ticket it takes from shared memory in its first step
(``twin``), an order the symmetry leaves open like their names.
"""

from __future__ import annotations

import math

from smpvm import msleep, tsleep, wakeup, wakeup_one


def trimmed_to(program, steps, budget):
    """``program``'s threads, the longest cut first, until plain enumeration stays within
    ``budget`` schedules: the interleavings of each thread's ``steps(thread)``."""
    threads = [list(t) for t in program]
    while True:
        n = [steps(t) for t in threads]
        if math.factorial(sum(n)) // math.prod(math.factorial(k) for k in n) <= budget:
            return threads
        longest = max(range(len(threads)), key=lambda i: (len(threads[i]), i))
        threads[longest].pop()

#: Locks a thread may take: (index in the program's lock list, how to take and release it).
LOCKS = [(0, "lock", "unlock"),       # sleep mutex
         (1, "xlock", "xunlock"),     # sx, exclusive
         (1, "slock", "sunlock"),     # sx, shared: a writer waiting holds new readers back
         (2, "lock", "unlock"),       # Linux mutex: hands over in arrival order
         (3, "wlock", "wunlock"),     # rw lock, write
         (3, "rlock", "runlock")]     # rw lock, read


def program_thread(m, box, locks, body, base, metric_name, record_stores=False):
    """One thread of a random program over ``box``'s two fields, ``locks`` and two wait
    channels.  Values read, trylock results and wakeup counts land in the metrics under
    ``metric_name(what, i)`` ("seen", "try" or "w"; ``i`` the op's index), and with
    ``record_stores`` every value written under its field's name.  Lock use is kept well
    formed: a lock already held (in any mode) is not taken again, an ``unlock`` releases
    the last lock taken, and all are released at the end."""
    seen, held = [], []
    for i, (op, k) in enumerate(body):
        field, chan = f"f{k % 2}", f"channel {k % 2}"
        value = base + 10 * i + sum(seen)
        if op == "load":
            seen.append((yield box.load(field)))
            m.metric(metric_name("seen", i), tuple(seen))
        elif op in ("store", "write"):
            if op == "store":
                yield box.store(field, value)
            else:
                setattr(box, field, value)
            if record_stores:
                m.metric(field, value)
        elif op == "lock" and all(h[0] != LOCKS[k][0] for h in held):
            yield getattr(locks[LOCKS[k][0]], LOCKS[k][1])()
            held.append(LOCKS[k])
        elif op == "try" and all(h[0] != 0 for h in held):
            if (yield locks[0].trylock()):
                held.append(LOCKS[0])
            m.metric(metric_name("try", i), bool(held and held[-1] == LOCKS[0]))
        elif op == "unlock" and held:
            index, _, release = held.pop()
            yield getattr(locks[index], release)()
        elif op == "msleep" and held and held[-1] == LOCKS[0]:
            yield msleep(chan, locks[0])
        elif op in ("sleep", "msleep"):
            yield tsleep(chan)
        elif op in ("wake", "wake1"):
            n = yield (wakeup(chan) if op == "wake" else wakeup_one(chan))
            m.metric(metric_name("w", i), n)
    while held:
        index, _, release = held.pop()
        yield getattr(locks[index], release)()


def heap_thread(m, zone, ptrs, base, body, metric_name):
    """One thread: its own pointers in ``mine`` (the last one is the one it uses).  What
    it sees lands in the metrics as ``metric_name("at", i)`` (equal arguments: twins)."""
    mine = []
    for i, (op, k) in enumerate(body):
        name = metric_name("at", i)
        field = f"p{k}"
        if op == "alloc":
            mine.append((yield zone.alloc(tag=base + i)))
        elif op in ("free", "free-keep", "renew") and mine:
            yield zone.free(mine[-1])
            if op == "free":
                mine.pop()  # dropped with the free: no stale pointer left here
            elif op == "renew":  # the slot taken again in the step of the free
                mine[-1] = zone.new(tag=base + i)
        elif op == "publish" and mine:
            setattr(ptrs, field, mine[-1])
        elif op == "take":
            got = getattr(ptrs, field)
            if got is not None:
                mine.append(got)
            yield ptrs.load("n")  # a step of its own between takes
        elif op == "clear":
            setattr(ptrs, field, None)
        elif op == "drop" and mine:
            mine.pop()
        elif op == "read" and mine:
            m.metric(name, (yield mine[-1].load("tag")))
        elif op == "same" and len(mine) > 1:
            m.metric(name, mine[-1].same_memory(mine[0]))
        elif op == "live":
            m.metric(name, tuple(o.tag for o in zone.live_items()))
        elif op == "alive" and mine:
            m.metric(name, mine[-1].live)
        elif op == "link" and mine:
            yield mine[-1].store("link", mine[0])  # a pointer kept in the item itself
        elif op == "follow" and mine:
            got = yield mine[-1].load("link")
            if got is not None:
                mine.append(got)
        else:
            yield ptrs.load("n")
    del mine


def twin(thread, tickets, prefix, args):
    """``thread(*args, metric_name)`` whose metrics are named ``<prefix><ticket>.<what><i>``,
    the ticket taken from ``tickets.n`` in its first step.  Give every twin the same
    ``args`` tuple: arguments are equal when they are the same object or equal plain
    values."""
    me = tickets.n
    tickets.n = me + 1

    def metric_name(what, i):  # "seen" is one metric, the values read so far
        return f"{prefix}{me}.seen" if what == "seen" else f"{prefix}{me}.{what}{i}"
    yield from thread(*args, metric_name)
