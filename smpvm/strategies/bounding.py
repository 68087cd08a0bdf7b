"""Iterative preemption bounding and iterative delay bounding.

Most concurrency bugs need few context switches in the right places.  A
*bounded* search runs only the schedules that deviate from a default one a
few times, and an *iterative* one runs bound 0, then 1, then 2...: the first
failure it meets is one of the fewest deviations.  Two ways to count them:

* **preemptions** (CHESS: Musuvathi and Qadeer, "Iterative context
  bounding for systematic testing of multithreaded programs", PLDI 2007): a
  preemption is choosing another CPU while the one that stepped last could
  go on.  Choices after the last CPU blocked or ended are free, and every
  one of them is explored, so the schedules of bound 0 grow as the orders in
  which the threads can run one after the other: fine for a few threads,
  hopeless for a hundred.
* **delays** (Emmi, Qadeer and Rakamarić, "Delay-bounded scheduling",
  POPL 2011): a deterministic round-robin scheduler runs the last CPU while
  it can, then the next CPU number down (wrapping to the highest); a *delay*
  skips the CPU it would pick, and choosing the j-th CPU in round-robin
  order costs j delays.
  Bound 0 is one schedule whatever the number of threads, bound 1 is about
  one schedule per decision point, which is what makes it the search for
  many threads.

``BoundedTree`` walks the tree of choices within a bound, depth first, for
``iterate()`` in ``smpvm.search.exhaust``-style drivers (it is a plain
enumeration: a bound and partial-order reduction do not mix soundly, Coons,
Musuvathi and McKinley, OOPSLA 2013).  ``Delays`` is the same delay-bounded
enumeration made stateless: run number r of an exploration is the r-th
delay schedule in order of bound, then of where the delays fall among the
first k decision points, so its runs can be farmed out to workers like the
random ones and the portfolio can take turns with it.

An interrupt given a window (an ``"irq"`` decision, ``smpvm.strategies.base``)
waits by default; landing it at a yield point before it must costs one
preemption, or one delay, so bound 0 runs it at the end of its window and
bound 1 tries it at each point.

Both schedule spinning CPUs fairly (``fair``): a CPU that spins waits until
the CPUs it may wait for have stepped, and switching away from it then costs
nothing, so a busy-wait neither eats the bound nor runs into ``max_steps``.
"""

from __future__ import annotations

import functools
from math import comb

from .base import Strategy
from .fair import Fairness

PREEMPTION, DELAY = "preemption", "delay"
MEASURES = (PREEMPTION, DELAY)


def round_robin(options, last) -> list:
    """``options`` in the order the round-robin scheduler prefers them from ``last``.

    ``last`` itself first (when it can go on), then downwards, wrapping to the
    highest number: when a thread that made others blocks (a ``join``), the
    newest of them runs first.  Any fixed order makes a delay-bounded search;
    this one puts the threads a loop created last, where a test's checker
    usually is, one delay away instead of a hundred.
    """
    down = [c for c in reversed(options) if c <= last]
    return down + [c for c in reversed(options) if c > last]


def costs(measure: str, kind: str, options, last) -> list:
    """(CPU, cost) for each option, cheapest first: what choosing it adds to the bound."""
    if measure == DELAY:  # which waiter gets a lock goes round the same way
        return [(c, j) for j, c in enumerate(round_robin(options, last))]
    if last in options:
        return [(last, 0)] + [(c, 1) for c in options if c != last]
    return [(c, 0) for c in options]


class _Node:
    """A decision point on the current path."""

    __slots__ = ("alternatives", "at", "spent")

    def __init__(self, alternatives, spent):
        #: (CPU, cost) of every choice here, cheapest first.
        self.alternatives = alternatives
        #: Index of the alternative the current run takes.
        self.at = 0
        #: Cost spent on the path before this decision.
        self.spent = spent


class BoundedTree(Strategy):
    """Follows the current path, then the cheapest choice; ``advance`` moves to the next path."""

    timed = False

    def __init__(self, measure: str = PREEMPTION, bound: int = 0):
        if measure not in MEASURES:
            raise ValueError(f"unknown bound measure {measure!r}; choose one of {MEASURES}")
        if bound < 0:
            raise ValueError(f"the bound must be >= 0, got {bound}")
        self.measure = measure
        self.bound = int(bound)
        self.name = "ipb" if measure == PREEMPTION else "idb"
        self.tree: list[_Node] = []
        #: Choices left out because they would exceed the bound.
        self.beyond_bound = 0
        self._k = 0
        #: Fair scheduling around spin-waits (``smpvm.strategies.fair``).
        self.fair = Fairness()

    def begin(self, seed):
        self._k = 0
        self.fair.begin()

    def pick(self, kind, options, last):
        if kind == "cpu":
            options = self.fair.allowed(options, last)
        k = self._k
        self._k += 1
        if k == len(self.tree):
            spent = self.tree[-1].spent + self._cost(self.tree[-1]) if self.tree else 0
            alts = costs(self.measure, kind, options, last)
            within = [a for a in alts if spent + a[1] <= self.bound]
            self.beyond_bound += len(alts) - len(within)
            self.tree.append(_Node(within, spent))
        node = self.tree[k]
        return node.alternatives[node.at][0]

    @staticmethod
    def _cost(node) -> int:
        return node.alternatives[node.at][1]

    def cost(self) -> int:
        """What the current path spends in all (its preemptions or delays)."""
        return sum(self._cost(n) for n in self.tree[:self._k])

    def advance(self) -> bool:
        """Move to the deepest decision with a choice still to try; False when none is left."""
        del self.tree[self._k:]  # a run may end before decisions an earlier one had
        while self.tree:
            node = self.tree[-1]
            if node.at + 1 < len(node.alternatives):
                node.at += 1
                return True
            self.tree.pop()
        return False

    def describe(self):
        return {"name": self.name, "bound": self.bound}


class Delays(Strategy):
    """The ``ordinal``-th delay-bounded schedule over the first ``k`` decision points.

    Stateless across runs: ``ordinal`` (the run's number among this
    strategy's runs) and ``k`` (decision points per run, estimated by the
    exploration as for PCT) fix the schedule.  Bound 0 comes first (one
    schedule), then every way to put one delay among the k points, then two
    (a point may take both), and so on up to ``max_delays``, then again.
    """

    name = "idb"
    timed = False

    def __init__(self, max_delays: int = 3, k: int = 1, ordinal: int = 0):
        if max_delays < 0:
            raise ValueError(f"idb needs max_delays >= 0, got {max_delays}")
        #: Most delays in one schedule.
        self.max_delays = int(max_delays)
        #: Estimated decision points per run (delays fall among the first k).
        self.k = max(1, int(k))
        #: This run's number among the strategy's runs.
        self.ordinal = int(ordinal)
        self.delays_at: dict[int, int] = {}
        self.decision = 0
        #: Fair scheduling around spin-waits (``smpvm.strategies.fair``).
        self.fair = Fairness()

    def begin(self, seed):
        self.decision = 0
        self.fair.begin()
        self.delays_at = {}
        for p in delay_positions(self.ordinal, self.k, self.max_delays):
            self.delays_at[p] = self.delays_at.get(p, 0) + 1

    def pick(self, kind, options, last):
        if kind == "cpu":
            options = self.fair.allowed(options, last)
        d = self.delays_at.get(self.decision, 0)
        self.decision += 1
        if not d:  # round_robin(options, last)[0], without making the order
            for c in reversed(options):
                if c <= last:
                    return c
            return options[-1]
        order = round_robin(options, last)
        return order[d % len(order)]

    def describe(self):
        return {"name": self.name, "max_delays": self.max_delays, "k": self.k,
                "ordinal": self.ordinal}


def schedules_with(delays: int, k: int) -> int:
    """How many ways ``delays`` delays fall among ``k`` decision points (repeats allowed)."""
    return comb(k + delays - 1, delays) if delays else 1


def delay_positions(ordinal: int, k: int, max_delays: int) -> list:
    """The decision points (sorted, repeats allowed) delayed in schedule number ``ordinal``."""
    r = ordinal % _schedules_up_to(k, max_delays)
    for b in range(max_delays + 1):
        n = schedules_with(b, k)
        if r < n:
            # a multiset of b points from k is a set of b from k + b - 1 (stars and bars)
            chosen = _unrank_combination(r, k + b - 1, b)
            return [q - i for i, q in enumerate(chosen)]
        r -= n
    raise AssertionError("unreachable: r < total")


@functools.lru_cache(maxsize=256)
def _schedules_up_to(k: int, max_delays: int) -> int:
    """Schedules with at most ``max_delays`` delays among ``k`` points (one per ordinal)."""
    return sum(schedules_with(b, k) for b in range(max_delays + 1))


def _unrank_combination(r: int, n: int, b: int) -> list:
    """The ``r``-th b-subset of range(n) in lexicographic order."""
    out, x = [], 0
    for slot in range(b, 0, -1):
        while True:
            below = comb(n - x - 1, slot - 1)  # subsets that take x here
            if r < below:
                out.append(x)
                x += 1
                break
            r -= below
            x += 1
    return out
