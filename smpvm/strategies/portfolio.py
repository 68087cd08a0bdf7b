"""``portfolio``: take turns among several strategies, one per run.

No single strategy is best: uniform random choice finds shallow races
quickly and sees many different schedules, PCT with two or three change
points finds the deeper ordering bugs with a guaranteed probability, and
delay bounding (``idb``) walks the schedules one, two... delays away from
round robin, which is what still works among a hundred threads.  The
portfolio gives run i to member ``i mod m`` -- random, pct d=2, pct d=3 and
idb by default -- so a search gets a share of each, and run i is still a
pure function of (master seed, i).

The exploration driver asks ``member_for(run)`` and runs that member
directly; used as a plain strategy, the portfolio delegates to the member of
the run number it was made for.
"""

from .base import Strategy
from .bounding import Delays
from .pct import PCT
from .random import Random


class Portfolio(Strategy):
    name = "portfolio"
    timed = False

    def __init__(self, depths=(2, 3), k: int = 1, run: int = 0):
        #: The members in rotation order: random, pct at each depth, delay bounding.
        self.members: list[Strategy] = ([Random()] + [PCT(depth=d, k=k) for d in depths]
                                        + [Delays(max_delays=max(depths, default=2), k=k)])
        #: Run number whose member plays when this object is used as a strategy.
        self.run = int(run)
        self.current: Strategy = self.members[0]

    def member_for(self, run: int) -> Strategy:
        """The member that plays run number ``run``."""
        return self.members[run % len(self.members)]

    def set_k(self, k: int) -> None:
        """Give every pct and idb member a new estimate of the decision points per run."""
        for s in self.members:
            if isinstance(s, (PCT, Delays)):
                s.k = max(1, int(k))

    def begin(self, seed):
        self.current = self.member_for(self.run)
        if isinstance(self.current, Delays):
            self.current.ordinal = self.run // len(self.members)
        self.current.begin(seed)

    def pick(self, kind, options, last):
        return self.current.pick(kind, options, last)

    def describe(self):
        return {"name": self.name, "run": self.run, "member": self.current.describe()}
