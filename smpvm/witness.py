"""Witness: lock-order checking in the manner of FreeBSD WITNESS and lockdep.

Every acquisition made while other locks are held adds an edge
held-class -> acquired-class to a graph of lock *classes*.  An edge that
closes a cycle is a lock-order reversal: two CPUs taking those locks in
those orders can deadlock, whether or not this run did.  Declared orders
(a model's documented order, as data) are enrolled first, so the first
acquisition against them is reported at once.

Besides order, witness checks the rules about sleeping: no blocking on a
non-spin lock while a spin lock is held, no sleepable lock taken after a
non-sleepable one, no sleeping (``msleep``, ``may_sleep``, a waiting
allocation) with a non-sleepable lock held or inside an interrupt handler.

Findings are warnings: they are recorded once per distinct pair in a run and
the run goes on, as WITNESS does.
"""

from __future__ import annotations


class EdgeInfo:
    """What witness remembers of one order edge a -> b."""

    __slots__ = ("first_site", "second_site", "cpu", "count", "declared")

    def __init__(self, first_site, second_site, cpu, declared=False):
        #: Where the held lock (a) was taken when the edge was first seen.
        self.first_site = first_site
        #: Where the second lock (b) was taken then.
        self.second_site = second_site
        #: CPU that established the edge (-1 when declared).
        self.cpu = cpu
        #: How many acquisitions followed this order.
        self.count = 0
        #: Enrolled from a model's declared order rather than seen.
        self.declared = declared


class Witness:
    """Per-run lock-order graph and rule checker."""

    def __init__(self, m, enabled: bool = True) -> None:
        self.m = m
        self.enabled = enabled
        #: class -> {successor class -> EdgeInfo}, in first-seen order.
        self.edges: dict[str, dict[str, EdgeInfo]] = {}
        #: class -> lock kind, in first-seen order.
        self.classes: dict[str, str] = {}
        #: Pairs already reported in this run.
        self._reported: set = set()
        #: Class pairs never reported (frozensets of two names).
        self._blessed: set = set()

    # -- declared orders ----------------------------------------------------------

    def declare(self, chains) -> None:
        """Enroll documented orders: each chain ``[a, b, c]`` means a before b before c."""
        for chain in chains or ():
            for a, b in zip(chain, chain[1:]):
                self.edges.setdefault(a, {}).setdefault(b, EdgeInfo("declared", "declared", -1, True))

    def bless(self, pairs) -> None:
        """Exempt class pairs ``(a, b)`` from reversal reports, in either order."""
        self._blessed = {frozenset(p) for p in pairs or ()}

    # -- hooks called by the engine ------------------------------------------------------

    def before_acquire(self, c, lock, mode, trylock, site) -> None:
        if not self.enabled:
            return
        self.classes.setdefault(lock.cls, lock.kind)
        if not trylock:
            self._check_sleep_rules(c, lock, site)
        if trylock:
            return  # a trylock cannot deadlock: it adds no order
        for h in c.held:
            if h.lock is lock:
                continue
            self._add_edge(c, h, lock, site)

    def check_sleep(self, c, what, interlock) -> None:
        if not self.enabled:
            return
        if c.in_interrupt:
            self._report_once(("sleep-irq", what), "sleep-with-spinlock",
                              f"{what} inside interrupt handler {c.ctx}", c)
            return
        for h in c.held:
            if h.lock is interlock or h.lock.sleepable:
                continue
            self._report_once(("sleep", h.lock.cls, what), "sleep-with-spinlock",
                              f"{what} with non-sleepable {h.lock.kind} {h.lock.label()} held "
                              f"(taken at {h.site or '?'})", c)
            return

    # -- rules --------------------------------------------------------------------------

    def _check_sleep_rules(self, c, lock, site) -> None:
        if lock.sleepable and c.in_interrupt:
            self._report_once(("sleepable-irq", lock.cls), "sleep-with-spinlock",
                              f"sleepable {lock.kind} {lock.label()} taken in interrupt "
                              f"handler {c.ctx}", c)
        for h in c.held:
            if h.lock is lock:
                continue
            if h.lock.spin and not lock.spin:
                self._report_once(("spin", h.lock.cls, lock.cls), "sleep-with-spinlock",
                                  f"blocking on {lock.kind} {lock.label()} with {h.lock.kind} "
                                  f"{h.lock.label()} held (taken at {h.site or '?'})", c)
            elif lock.sleepable and not h.lock.sleepable and not h.lock.kind == "lockdep map":
                self._report_once(("sleepable", h.lock.cls, lock.cls), "sleep-with-spinlock",
                                  f"sleepable {lock.kind} {lock.label()} acquired after "
                                  f"non-sleepable {h.lock.kind} {h.lock.label()} "
                                  f"(taken at {h.site or '?'})", c)

    def _add_edge(self, c, h, lock, site) -> None:
        a, b = h.lock.cls, lock.cls
        if a == b:
            if not (h.lock.dupok or lock.dupok):
                self._report_once(("dup", a), "lock-order-reversal",
                                  f"acquiring duplicate lock of same type: {a} ({lock.kind}) "
                                  f"1st {h.lock.label()} @ {h.site or '?'} / 2nd {lock.label()} "
                                  f"@ {site or '?'}", c, extra={"cycle": [a, a]})
            return
        succ = self.edges.setdefault(a, {})
        info = succ.get(b)
        if info is None:
            info = EdgeInfo(h.site, site, c.id)
            succ[b] = info
            path = self._path(b, a)
            if path is not None:
                self._report_reversal(c, h, lock, site, path)
        info.count += 1

    def _path(self, src, dst):
        """A path src -> ... -> dst in the class graph (deterministic DFS), or None."""
        stack = [(src, [src])]
        seen = {src}
        while stack:
            node, path = stack.pop()
            if node == dst:
                return path
            for nxt in reversed(list(self.edges.get(node, ()))):
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, path + [nxt]))
        return None

    def _report_reversal(self, c, h, lock, site, path) -> None:
        a, b = h.lock.cls, lock.cls
        cycle = [a] + path  # a -> b -> ... -> a
        key = ("lor",) + tuple(sorted(set(cycle)))
        established = self.edges[path[0]][path[1]] if len(path) > 1 else None
        est = ""
        if established is not None:
            if established.declared:
                est = f"; documented order {' -> '.join(path)}"
            else:
                est = (f"; established order {path[0]} @ {established.first_site} -> "
                       f"{path[1]} @ {established.second_site}")
        chain = " -> ".join(cycle)
        msg = (f"lock order reversal: 1st {a} ({h.lock.kind}) @ {h.site or '?'} / "
               f"2nd {b} ({lock.kind}) @ {site or '?'}{est}; cycle {chain}")
        sites = [{"class": a, "site": h.site}, {"class": b, "site": site}]
        for x, y in zip(path, path[1:]):
            e = self.edges[x][y]
            sites.append({"edge": [x, y], "first": e.first_site, "second": e.second_site,
                          "declared": e.declared})
        self._report_once(key, "lock-order-reversal", msg, c,
                          extra={"cycle": cycle, "sites": sites})

    def _report_once(self, key, kind, msg, c, extra=None) -> None:
        if key in self._reported:
            return
        self._reported.add(key)
        self.m.fail(kind, msg, c, extra=extra)
