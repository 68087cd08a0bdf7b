"""Shrinking: the fewest preemptions that still produce the same violation.

A failing schedule found by a random search is full of context switches that
have nothing to do with the bug.  What a developer wants to read is the
essential interleaving: the few places where one CPU *had* to be
interrupted by another.  Those places are the schedule's **preemptions**: a
decision where the CPU that stepped last could have gone on and a different
one was chosen instead.  Choosing among CPUs after the last one blocked or
finished is not a preemption; it is forced.

The shrinker describes a schedule by what happened at each decision point
-- *stay* (the last CPU went on), *switch* to CPU x (a preemption), or a
*free* choice of x (the last CPU could not go on) -- and replays it with some
of the switches turned into stays.  A replay follows the remaining
decisions as far as they still apply and otherwise keeps running the last
CPU, so it never adds a preemption by itself.  A trial succeeds when the same
violation kind comes back with no more preemptions than it kept.  Which
switches to keep is found by delta debugging (Zeller's ddmin) over the set
of preemptions; PCT's change points are preemptions too, so the search covers
them.  Each accepted trial's *recorded* choices become the new schedule, so
the result is always a schedule that really fails, and the number of
preemptions it has is the bug depth the exploration reports.

An interrupt given a window that lands before it must is a preemption too
(the ``"irq"`` decision's stay is "not yet"): ddmin tries moving it to the
end of its window, keeps it where the bug needs it, and counts it in the
depth.

ddmin and the probes only ever find *a* schedule with few preemptions.  The
last step makes it the fewest: iterative preemption bounding
(:mod:`smpvm.search.iterative`) runs every schedule with 0, then 1, ...
preemptions, up to one fewer than the best so far, and stops at the first
that fails the same way.  When that search finishes, the depth is the
minimum (``Shrunk.minimal``); when it runs out of budget first (many threads
make even bound 0 large), the depth is only an upper bound, and reports say
"≤ d".
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import seeds
from ..scenario import RunSpec, run_spec
from ..strategies.base import Strategy
from ..strategies.fair import Fairness
from ..strategies.replay import Replay, ReplayMismatch

# What happened at a decision point.
STAY, SWITCH, FREE = 0, 1, 2


class Stay(Strategy):
    """Never preempt: keep running the last CPU while it can step, else the lowest one.

    A CPU that spins waits, as under every strategy, until the others have
    stepped (``smpvm.strategies.fair``).
    """

    name = "stay"
    timed = False

    def begin(self, seed):
        self.fair = Fairness()

    def pick(self, kind, options, last):
        if kind == "cpu":
            options = self.fair.allowed(options, last)
        return last if last in options else options[0]


class Bounded(Strategy):
    """Wraps a strategy so that a run has at most ``bound`` preemptions.

    Once the budget is spent the last CPU keeps running whenever it can.
    """

    def __init__(self, inner: Strategy, bound: int):
        self.inner = inner
        self.bound = bound
        self.name = inner.name
        self.timed = inner.timed
        self.used = 0

    def begin(self, seed):
        self.inner.begin(seed)
        self.used = 0
        self.fair = Fairness()

    def pick(self, kind, options, last):
        if last in options and self.used >= self.bound and (
                kind != "cpu" or last in self.fair.allowed(options, last)):
            return last
        c = self.inner.pick(kind, options, last)
        if last in options and c != last:
            self.used += 1
        return c

    def describe(self):
        return {**self.inner.describe(), "preemption_bound": self.bound}


class _Reseeded(Strategy):
    """Runs ``inner`` on a stream of its own (``salt``) while the run keeps its seed."""

    def __init__(self, inner: Strategy, salt: int):
        self.inner = inner
        self.salt = salt
        self.name = inner.name
        self.timed = inner.timed

    def begin(self, seed):
        self.inner.begin(seeds.salted_seed(seed, self.salt))

    def pick(self, kind, options, last):
        return self.inner.pick(kind, options, last)


class Recorder(Strategy):
    """Wraps a strategy and writes down each decision as (choice, kind of decision)."""

    def __init__(self, inner: Strategy):
        self.inner = inner
        self.name = inner.name
        self.timed = inner.timed
        self.wants_footprints = inner.wants_footprints
        #: One (choice, STAY | SWITCH | FREE) per decision point.
        self.decisions: list[tuple[int, int]] = []

    def begin(self, seed):
        self.inner.begin(seed)
        self.decisions = []

    def pick(self, kind, options, last):
        c = self.inner.pick(kind, options, last)
        fair = getattr(self.inner, "fair", None)
        if last not in options or (fair is not None and fair.held_back(last)):
            self.decisions.append((c, FREE))  # a spinning CPU waiting its turn is not preempted
        else:
            self.decisions.append((c, STAY if c == last else SWITCH))
        return c

    def stepped(self, cpu, footprint, enabled):
        self.inner.stepped(cpu, footprint, enabled)

    def preemptions(self) -> list[int]:
        """Decision numbers (0-based) that were preemptions."""
        return [j for j, (_, how) in enumerate(self.decisions) if how == SWITCH]


class Guided(Strategy):
    """Replays a described schedule with the preemptions in ``removed`` turned into stays."""

    name = "guided"
    timed = False

    def __init__(self, decisions, removed=frozenset()):
        self.decisions = decisions
        self.removed = removed
        self.pos = 0

    def begin(self, seed):
        self.pos = 0
        self.fair = Fairness()

    def pick(self, kind, options, last):
        j = self.pos
        self.pos += 1
        fair = self.fair.allowed(options, last) if kind == "cpu" else options
        stay = last if last in fair else fair[0]
        if j >= len(self.decisions):
            return stay
        want, how = self.decisions[j]
        if how == STAY or (how == SWITCH and j in self.removed):
            return stay
        return want if want in options else stay


@dataclass
class Shrunk:
    """The outcome of shrinking one failing schedule."""

    #: Every choice of the shrunk run (replays exactly with ``Replay``).
    choices: list
    #: Preemptions in the shrunk schedule: the bug depth.
    preemptions: int
    #: Preemptions in the schedule before shrinking.
    original_preemptions: int
    #: The violation of the requested kind in the shrunk run.
    violation: object
    #: Replays tried.
    trials: int
    #: True when no schedule with fewer preemptions fails this way (the bounded search
    #: below the depth finished); False: the depth is an upper bound.
    minimal: bool = True


#: Steps all the replays of one shrink may take together.  Runs of tens to thousands of
#: steps never come near it; a failure at the end of a million-step run (a livelock cut
#: by ``max_steps``) gets ten replays instead of a thousand, each the whole run.
SHRINK_STEPS = 10_000_000


class _Trials:
    """Runs candidate schedules of one failing run and keeps the best that still fails."""

    def __init__(self, spec, scn, kind, budget, steps=SHRINK_STEPS):
        self.spec = spec
        self.scn = scn
        self.kind = kind
        self.budget = budget
        self.count = 0
        #: Steps the replays may take in all, and have taken.
        self.step_budget = steps
        self.steps = 0
        self.best = None  # (preemptions, decisions, choices, violation)

    def spent(self) -> bool:
        """Are the replays or their steps used up?"""
        return self.count >= self.budget or self.steps >= self.step_budget

    def run(self, strategy):
        """Run once; (preemptions, decisions, result) or None when over budget or off-model."""
        if self.spent():
            return None
        self.count += 1
        rec = Recorder(strategy)
        try:
            r = run_spec(self.spec, rec, scn=self.scn, lockstat=False)
        except ReplayMismatch:
            return None
        self.steps += r.steps
        return len(rec.preemptions()), rec.decisions, r

    def consider(self, outcome) -> int | None:
        """Keep ``outcome`` if it fails the same way with fewer preemptions; its preemptions."""
        if outcome is None:
            return None
        n, decisions, r = outcome
        v = next((v for v in r.violations if v.kind == self.kind), None)
        if v is None:
            return None
        if self.best is None or n < self.best[0]:
            self.best = (n, decisions, list(r.choices), v)
        return n


def shrink(spec: RunSpec, *, choices, kind, scn=None, budget: int = 1000,
           probes: int = 200, exhaustive_budget: int = 1000,
           steps: int = SHRINK_STEPS) -> Shrunk | None:
    """Shrink a failing schedule; None if replaying ``choices`` does not give ``kind``.

    ``budget`` caps the replays of ddmin and the probes, ``steps`` the steps they take
    in all; ``probes`` is how many fresh schedules with fewer preemptions are tried
    each time ddmin gets stuck; ``exhaustive_budget`` caps the runs of the last,
    exhaustive step, which is skipped (the depth is then an upper bound) once the
    replays have taken ``steps``.
    """
    trials = _Trials(spec, scn or spec.scenario(), kind, budget, steps)
    original = trials.consider(trials.run(Replay(choices, then=Stay())))
    if original is None:
        return None
    # what came after the finding did not cause it: keep the prefix, then stay
    trials.consider(trials.run(Replay(trials.best[3].choices, then=Stay())))
    while True:
        before = trials.best[0]
        _ddmin_pass(trials)
        if trials.best[0] > 0:
            _probe(trials, trials.best[0] - 1, probes)
        if trials.best[0] >= before or trials.best[0] == 0:
            break
    minimal = _fewest(trials, exhaustive_budget)
    n, _, best_choices, v = trials.best
    return Shrunk(choices=best_choices, preemptions=n, original_preemptions=original,
                  violation=v, trials=trials.count, minimal=minimal)


def _fewest(trials: _Trials, budget: int) -> bool:
    """Every schedule with fewer preemptions than the best, bound by bound; True if it finished.

    The first schedule that fails the same way replaces the best; since every
    lower bound ran before it, its preemptions are then the minimum too.
    """
    from .iterative import iterate
    if trials.best[0] == 0:
        return True
    if trials.steps >= trials.step_budget:
        return False  # (its runs may each be as long as the failing one)
    rep = iterate(trials.spec, scn=trials.scn, max_bound=trials.best[0] - 1, max_runs=budget,
                  stop_on_first=True, kind=trials.kind)
    if rep.failures:  # replayed once more to count its preemptions as ddmin's trials do
        trials.budget = max(trials.budget, trials.count + 1)
        trials.step_budget = max(trials.step_budget, trials.steps + 1)
        trials.consider(trials.run(Replay(rep.failures[0].choices, then=Stay())))
    trials.count += rep.runs
    if rep.failures:
        return trials.best[0] <= rep.first_failure_bound
    return rep.exhausted or rep.bound_done == trials.best[0] - 1


def _ddmin_pass(trials: _Trials) -> None:
    """One round of ddmin over the preemptions of the best schedule so far."""
    base = trials.best[1]
    points = [j for j, (_, how) in enumerate(base) if how == SWITCH]

    def fails_keeping(kept) -> bool:
        removed = frozenset(points) - frozenset(kept)
        n = trials.consider(trials.run(Guided(base, removed)))
        return n is not None and n <= len(kept)

    if fails_keeping([]):
        return
    items = points
    n = 2
    while len(items) >= 2 and not trials.spent():
        chunks = _split(items, n)
        subset = next((c for c in chunks if fails_keeping(c)), None)
        if subset is not None:
            items, n = subset, 2
            continue
        rest = next((r for r in (_without(items, c) for c in chunks) if fails_keeping(r)), None)
        if rest is not None:
            items, n = rest, max(n - 1, 2)
            continue
        if n >= len(items):
            break
        n = min(len(items), 2 * n)


def _probe(trials: _Trials, bound: int, probes: int, patience: int = 25) -> None:
    """Look for the bug with at most ``bound`` preemptions by fresh PCT schedules.

    ddmin only removes preemptions; it cannot move one, nor change which CPU
    starts.  PCT with ``bound`` change points, held to ``bound`` preemptions,
    samples exactly the schedules that differ in those ways.  A small space
    (few CPUs, a low bound) is soon seen whole: after ``patience`` probes in a
    row that bring no schedule not seen before, the search stops.
    """
    from ..strategies.pct import PCT
    k = max(1, len(trials.best[1]))
    seen: set = set()
    stale = 0
    for salt in range(probes):
        outcome = trials.run(_Reseeded(Bounded(PCT(depth=bound + 1, k=k), bound), salt))
        n = trials.consider(outcome)
        if n is not None and n <= bound:
            return
        if outcome is None:
            return  # over budget
        schedule = tuple(outcome[2].choices)
        stale = 0 if schedule not in seen else stale + 1
        seen.add(schedule)
        if stale >= patience:
            return


def _split(items, n):
    size, extra = divmod(len(items), n)
    out, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        if end > start:
            out.append(items[start:end])
        start = end
    return out


def _without(items, chunk):
    drop = set(chunk)
    return [x for x in items if x not in drop]


def count_preemptions(spec: RunSpec, choices, *, scn=None) -> int:
    """Preemptions in a recorded schedule (replays it once)."""
    rec = Recorder(Replay(choices, then=Stay()))
    run_spec(spec, rec, scn=scn, lockstat=False)
    return len(rec.preemptions())
