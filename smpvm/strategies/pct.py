"""``pct``: probabilistic concurrency testing with d - 1 priority change points.

Burckhardt, Kothari, Musuvathi and Nagarakatte, "A Randomized Scheduler with
Probabilistic Guarantees of Finding Bugs" (ASPLOS 2010).  Every CPU gets a
random priority when it first shows up; at each decision point the
highest-priority CPU that can step goes.  Before the run, d - 1 *change
points* are drawn among the first k decision points; when the run reaches
one, the CPU about to step drops to a priority below every initial one
(the j-th change point gives priority d - j), so another CPU takes over
right there.

The guarantee: a bug of depth d (d ordering constraints between threads)
is found by one run with probability at least 1 / (n * k**(d - 1)), for n
threads and k decision points.  Only decision points where two or more CPUs
could step count towards k, as the machine asks the strategy only there;
a run that has fewer decisions than a change point simply never reaches it.
k must be known before the run, so the exploration estimates it from earlier
runs (the most decisions seen so far, leaving out runs stopped by
``max_steps`` or a livelock) and passes it in.

An interrupt given a window is one more competitor: at each of its CPU's
yield points it lands if its priority is above that CPU's, and these
``"irq"`` decisions are decision points like the others (they count
towards k, and a change point may fall on one).

A CPU that spins (``smpvm.kernel.spin``) keeps its priority but is held back by
fair scheduling (``fair``) until the CPUs it may wait for have stepped, so
a busy-wait cannot starve the lower-priority CPU that would end it.
"""

import math

from ..current import current_machine
from .base import DELIVER, NOT_YET
from .random import SeededStream


class PCT(SeededStream):
    name = "pct"
    timed = False

    def __init__(self, depth: int = 3, k: int = 1):
        if depth < 1:
            raise ValueError(f"pct depth must be at least 1, got {depth}")
        #: Bug depth searched for: d - 1 change points per run.
        self.depth = int(depth)
        #: Estimated number of decision points per run (change points fall in 1..k).
        self.k = max(1, int(k))
        #: CPU number -> current priority (higher steps first).
        self.priority: dict[int, float] = {}
        #: Decision number (1-based) -> priority given at that change point.
        self.change_at: dict[int, int] = {}
        #: Decision points passed so far in this run.
        self.decision = 0

    def begin(self, seed):
        super().begin(seed)
        self.priority = {}
        self.decision = 0
        self.change_at = self._draw_change_points()

    def _draw_change_points(self) -> dict:
        """d - 1 distinct decision numbers in 1..k (fewer when k < d - 1)."""
        points: dict[int, int] = {}
        wanted = min(self.depth - 1, self.k)
        j = 0
        while len(points) < wanted:
            at = 1 + min(int(self.random() * self.k), self.k - 1)
            if at not in points:
                j += 1
                points[at] = self.depth - j
        return points

    def _priority_of(self, cpu: int) -> float:
        # Initial priorities lie in [d, d + 1): above every change-point priority.
        p = self.priority.get(cpu)
        if p is None:
            p = self.depth + self.random()
            self.priority[cpu] = p
        return p

    def pick(self, kind, options, last):
        if kind == "irq":
            return self._arrival()
        if kind == "cpu":
            options = self.fair.allowed(options, last)
        self.decision += 1
        # _priority_of() for each option in turn (new CPUs draw theirs in that order),
        # then the highest: what max(options, key=self._priority_of) does, without a
        # call per option.
        priority = self.priority
        for c in options:
            if c not in priority:
                priority[c] = self.depth + self.random()
        best = max(options, key=priority.__getitem__)
        lowered = self.change_at.get(self.decision)
        if lowered is not None:
            priority[best] = lowered
            best = max(options, key=priority.__getitem__)
        return best

    def _arrival(self) -> int:
        """An ``"irq"`` decision: the interrupt lands when it outranks the CPU it targets.

        The interrupt competes like one more thread, with a priority of its
        own; the decision is a decision point, so a change point falling on
        it drops whichever of the two would win.
        """
        self.decision += 1
        m = current_machine()
        key = ("irq", m.placing.name)
        cpu = m.current.id
        lowered = self.change_at.get(self.decision)
        if lowered is not None:
            win = key if self._priority_of(key) > self._priority_of(cpu) else cpu
            self.priority[win] = lowered
        return DELIVER if self._priority_of(key) > self._priority_of(cpu) else NOT_YET

    def describe(self):
        return {"name": self.name, "depth": self.depth, "k": self.k}


# -- the guarantee (Burckhardt et al.) ----------------------------------------------------


def pct_probability(n_threads: int, k_steps: int, depth: int) -> float:
    """Lower bound on the chance that one PCT run finds a bug of depth d.

    Burckhardt, Kothari, Musuvathi, Nagarakatte, "A Randomized Scheduler
    with Probabilistic Guarantees of Finding Bugs", ASPLOS 2010: with n
    threads and k steps, one run with d - 1 priority change points hits a
    given depth-d bug with probability at least 1 / (n * k^(d-1)).  Clamped
    to 1.  Dimensionless.
    """
    if n_threads < 1 or k_steps < 1 or depth < 1:
        raise ValueError("n_threads, k_steps and depth must all be >= 1 "
                         f"(got {n_threads}, {k_steps}, {depth})")
    return min(1.0, 1.0 / (n_threads * float(k_steps) ** (depth - 1)))


def runs_for_confidence(p: float, confidence: float = 0.99) -> int:
    """Fewest independent runs that find an event of per-run probability p
    at least once with the given confidence.

    The smallest r with 1 - (1 - p)^r >= confidence, i.e.
    r = ceil(ln(1 - confidence) / ln(1 - p)).  p >= 1 needs one run.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1) (got {confidence!r})")
    if not p > 0:
        raise ValueError(f"p must be > 0 (got {p!r}): an event that never "
                         "happens is not found by any number of runs")
    if p >= 1:
        return 1
    miss = math.log1p(-confidence)
    runs = max(1, math.ceil(miss / math.log1p(-p)))
    # ceil() of a quotient that is an integer up to rounding may overshoot
    while runs > 1 and (runs - 1) * math.log1p(-p) <= miss:
        runs -= 1
    return runs
