"""The strategy interface: who steps next when several CPUs could.

A strategy is told when a run begins, is asked to pick at each decision
point, and draws its own random numbers.  That is all the engine knows of
it, so random search, PCT, systematic enumeration and replay are each one
small class, and wrappers compose.

Decision points are of three kinds: ``"cpu"`` (which runnable CPU takes the
next step), ``"handoff"`` (which waiter gets a released lock, when the
real lock does not fix the order) and ``"irq"`` (whether an interrupt given a
window lands at this yield point of its CPU).  For the first two, options are
CPU numbers in ascending order and ``last`` is the CPU that took the previous
step (-1 at the start), so a strategy can tell a preemption from a
continuation.  An ``"irq"`` decision has the options ``[NOT_YET, DELIVER]``
with ``last`` = ``NOT_YET``: the thread going on is the continuation, the
interrupt landing the preemption, so strategies that count preemptions or
delays count it as one without knowing the kind.

``timed`` says which view of time the strategy wants: True, only the CPUs
due earliest are options (durations decide); False, every CPU that is not
blocked is.  A strategy that sets ``wants_footprints`` is also told, after
every step, what the step touched (the basis of partial-order reduction).
Such a strategy may also give a path to take again first (``follow``): the
engine then takes those steps without asking it, as long as each state
offers the CPUs it offered before.
"""

from __future__ import annotations

from .. import seeds

#: The options of an ``"irq"`` decision: the interrupt waits, or lands now.
NOT_YET, DELIVER = 0, 1


class Strategy:
    """Base class; subclasses override ``pick`` and usually ``begin``."""

    #: Name used on the command line and in saved failures.
    name = "base"
    #: True: durations order steps (the options are the earliest-due CPUs).
    timed = False
    #: True: the strategy has ``index(n)``, a uniform draw the lock hand-off may use directly.
    draws_by_index = False
    #: True: ``stepped`` is called after every step with its footprint.
    wants_footprints = False

    #: This run's chance that a window interrupt lands at a given point (``arrival``).
    _arrival_chance = None

    def begin(self, seed: int) -> None:
        """A run starts; ``seed`` is the run's seed (derive any randomness from it)."""
        self._rand = seeds.python_stream(seed, seeds.STRATEGY)
        self._arrival_chance = None

    def pick(self, kind: str, options: list[int], last: int) -> int:
        """Choose who goes next: one of ``options`` (CPU numbers), ``last`` being the CPU that stepped last."""
        raise NotImplementedError

    def random(self) -> float:
        """A uniform number in [0, 1) from the strategy's own seeded stream."""
        return self._rand.random()

    def choose(self, options: list[int]) -> int:
        """A uniformly random element of ``options``."""
        return options[min(int(self.random() * len(options)), len(options) - 1)]

    def arrival(self) -> int:
        """A random answer to an ``"irq"`` decision: ``DELIVER`` or ``NOT_YET``.

        A fair coin at every point would almost always deliver in the first
        few; instead each run draws its own chance p (uniform) once, then
        delivers at each point with chance p, so the k-th point of a window
        gets the interrupt in about 1 / (k (k + 1)) of the runs, early and
        late placements alike come up, and none has chance 0.
        """
        p = self._arrival_chance
        if p is None:
            p = self._arrival_chance = self.random()
        return DELIVER if self.random() < p else NOT_YET

    def stepped(self, cpu: int, footprint: dict, enabled: list[int]) -> None:
        """After each step (only when ``wants_footprints``): what it read and wrote."""

    #: With ``wants_footprints``: steps this run takes again, each with ``cpu`` (who
    #: stepped) and ``opts`` (the CPUs that could, as ``stepped`` was told); the engine
    #: takes steps 1 to ``follow_to - 1`` of it without ``pick`` or ``stepped`` while
    #: each state offers the same ``opts`` (step 0 always asks: a run looks around
    #: first), then calls ``followed``.
    follow = None
    follow_to = 0

    def followed(self, n: int) -> None:
        """The engine took the steps of ``follow`` up to step ``n`` (excluded) unasked."""

    def escaped_on_path(self) -> None:
        """A step taken unasked set ``Machine.escaped`` (see ``stepped``)."""

    def describe(self) -> dict:
        """Parameters that, with the seed, recreate this strategy (for saved failures)."""
        return {"name": self.name}
