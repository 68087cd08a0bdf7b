"""``random``: a uniformly random runnable CPU at every decision point.

The simplest search there is, and a strong one for small models: each
decision is a fair draw among the CPUs that could step, from the strategy's
own stream seeded by the run's seed.  Timing varies too: the run's seed also
drives the cost model's jitter, so durations (and with them interrupt
arrivals relative to each CPU's steps) differ from run to run.

A CPU that spins waiting for another is scheduled fairly (``fair``): it
re-checks only after the others have stepped.

Where an interrupt given a window lands is drawn too (``arrival``): each
run has its own chance of delivery per point, so early and late points of
the window both come up.

A bug that needs one particular ordering at each of d decision points among
n CPUs is hit with probability about n**-d per run, which is why ``pct``
exists for the deep ones.

The search strategies draw from ``SeededStream``, a SplitMix64 generator
(Steele, Lea and Flood, "Fast splittable pseudorandom number generators",
OOPSLA 2014): its whole state is one 64-bit number set from the run's seed,
so starting a run costs nothing, which matters at thousands of runs per
second; the run seeds themselves come from numpy's SeedSequence algorithm
(``seeds.seed_words``).
"""

from ..seeds import SplitMix64
from .base import Strategy
from .fair import Fairness


class SeededStream(SplitMix64, Strategy):
    """A strategy whose ``random()`` is SplitMix64 seeded by the run's seed."""

    def begin(self, seed):
        self.start(seed)
        self._arrival_chance = None
        fair = self.__dict__.get("fair")
        if fair is None:
            #: Fair scheduling around spin-waits (``smpvm.strategies.fair``).
            self.fair = Fairness()
        else:
            fair.begin()


class Random(SeededStream):
    name = "random"
    timed = False

    def pick(self, kind, options, last):
        if kind == "cpu":
            options = self.fair.allowed(options, last)
        elif kind == "irq":
            return self.arrival()
        return options[int(self.random() * len(options))]
