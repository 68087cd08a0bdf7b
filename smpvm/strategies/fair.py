"""Fair scheduling around spin-waits, for every search strategy.

A CPU that spins (``smpvm.kernel.spin``: a pause repeated in place with nothing
learnt) says "I cannot go on until someone else steps".  A search that
keeps choosing it anyway explores nothing new and, worse, starves the CPU
it waits for.  Musuvathi and Qadeer ("Fair stateless model checking",
PLDI 2008) give the rule used here: when CPU t spins, every CPU that could
step and has not stepped since t's previous spin gets priority over t; t
may step again once each of them has stepped (or can no longer step).  The
schedules this leaves out are those where t re-checks a condition no other
CPU has touched: they repeat a state already seen.  So a correct busy-wait
ends after as many spins as the CPU it waits for takes steps, and a real
livelock is caught by ``smpvm.kernel.spin``'s round count, not by ``max_steps``.

``Fairness.allowed(options, last)`` is what random, pct and dfs call first
in ``pick``; it costs one lookup while no CPU has spun.
"""

from __future__ import annotations

from ..current import current_machine


class Fairness:
    """Priority edges between CPUs from their spins, for one run at a time."""

    def __init__(self):
        self._m = None
        #: CPU t -> CPUs that go before t's next step (t spun since they last stepped).
        self.behind: dict[int, set] = {}
        #: CPU t -> CPUs that stepped since t's last spin.
        self.since: dict[int, set] = {}
        #: CPU t -> its spin count when last looked at.
        self.seen: dict[int, int] = {}
        #: What the last call let step (a switch away from a CPU held back is no preemption).
        self.last_allowed: list = []

    def begin(self) -> None:
        """A run starts: no edges (the tables are made again only if the last run spun)."""
        self._m = None
        if self.behind or self.since or self.seen:
            self.behind = {}
            self.since = {}
            self.seen = {}
        self.last_allowed = []

    def allowed(self, options: list, last: int) -> list:
        """The CPUs of ``options`` that fairness lets step now (never none)."""
        m = self._m
        if m is None:
            m = self._m = current_machine()
        w = m.spin_watch if m is not None else None
        if w is None or not w.spins:  # no CPU has spun: every option (the common case)
            self.last_allowed = options
            return options
        if last >= 0:
            self._stepped(last, w, options)
        behind = self.behind
        out = [c for c in options if not behind.get(c) or not any(u in behind[c] for u in options)]
        self.last_allowed = out or options
        return self.last_allowed

    def held_back(self, cpu) -> bool:
        """Did the last call keep ``cpu`` from stepping (it spun and others go first)?"""
        return cpu not in self.last_allowed

    def _stepped(self, last, w, options) -> None:
        """``last`` took the step just made: it no longer holds anyone back; did it spin?"""
        for held in self.behind.values():
            held.discard(last)
        for seen in self.since.values():
            seen.add(last)
        n = w.spins.get(last, 0)
        if n != self.seen.get(last, 0):
            self.seen[last] = n
            done = self.since.get(last, ())
            self.behind[last] = {c for c in options if c != last and c not in done}
            self.since[last] = set()
