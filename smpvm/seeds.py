"""Random streams: every random number of a run comes from its seed, through here.

A run is a pure function of its inputs, so nothing in it may draw from global
or wall-clock randomness.  Each consumer gets a stream of its own, derived
from the run's seed and the stream's number, so that adding draws to one
(a model drawing more workload numbers) leaves the others unchanged:

===========  ==============================================  ===============
stream       used by                                         generator
===========  ==============================================  ===============
MODEL (0)    the model's workload randomness (``m.rng``)      numpy Generator
JITTER (1)   duration jitter of the cost model                SplitMix64, then
                                                              random.Random
STRATEGY (2) the search strategies' own choices               SplitMix64
             a user's strategy's (``Strategy.random``)        random.Random
SHRINK (3)   a strategy re-run on a salted stream             numpy words
===========  ==============================================  ===============

SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number
generators", OOPSLA 2014) keeps its whole state in one 64-bit number set from
the seed, so a stream costs nothing to start; a Mersenne Twister takes
microseconds to seed, which a search making thousands of runs a second feels.

Explorations derive run i's seed from their master seed in blocks
(``run_seed``).  The formulas are part of what makes a saved failure replay:
changing one changes every run.
"""

from __future__ import annotations

import functools
import random
import weakref

MODEL, JITTER, STRATEGY, SHRINK = 0, 1, 2, 3
#: Runs whose seeds are drawn from one SeedSequence.
SEED_BLOCK = 1024


def model_rng(seed: int):
    """The numpy Generator behind ``m.rng`` (stream MODEL)."""
    import numpy as np
    return np.random.default_rng(np.random.SeedSequence([int(seed), MODEL]))


_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


class SplitMix64:
    """A uniform stream whose state is one 64-bit number (see the module docstring)."""

    _state = 0

    def start(self, seed: int) -> None:
        """Set the state from ``seed``."""
        self._state = int(seed) & _MASK

    def random(self) -> float:
        """A uniform number in [0, 1)."""
        self._state = z = (self._state + _GOLDEN) & _MASK
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        return ((z ^ (z >> 31)) >> 11) * (1.0 / (1 << 53))


#: Jitter draws a run takes from SplitMix64 before it seeds a Mersenne Twister.
JITTER_CHEAP_DRAWS = 64


class JitterStream:
    """The cost model's jitter (stream JITTER): a run's first draws from SplitMix64,
    which costs nothing to start, and the rest from a Mersenne Twister seeded from
    where those left off, whose draws cost a twentieth as much.  An exploration run
    takes a handful of draws and never seeds the Twister; a timed run of a million
    operations seeds it once.  ``random`` is rebound to the Twister's own method at
    the switch, so later draws are one C call."""

    __slots__ = ("random", "__weakref__")

    def __init__(self, seed: int):
        mix = SplitMix64()
        # started from the seed mixed with the stream's number: not the strategy's
        # stream of the same seed, shifted
        mix.start(int(seed) * 4 + JITTER)
        mix.start(int(mix.random() * (1 << 53)) << 11 | JITTER)
        left = [JITTER_CHEAP_DRAWS]
        me = weakref.ref(self)  # (a strong one would tie every run's stream into a cycle)

        def cheap() -> float:
            left[0] -= 1
            if not left[0]:
                me().random = random.Random(int(mix.random() * (1 << 53))).random
            return mix.random()
        self.random = cheap


def python_stream(seed: int, stream: int) -> random.Random:
    """A private Mersenne Twister for a stream (STRATEGY, for a user's strategy):
    microseconds to start."""
    return random.Random(int(seed) * 4 + stream)


def salted_seed(seed: int, salt: int) -> int:
    """A seed for a strategy re-run on a stream of its own (stream SHRINK, ``salt``)."""
    import numpy as np
    return int(np.random.SeedSequence([int(seed), SHRINK, salt]).generate_state(1)[0])


def run_seed(master: int, index: int) -> int:
    """The seed of run ``index`` of an exploration with master seed ``master``.

    Seeds are drawn in blocks of ``SEED_BLOCK`` runs, block b from
    ``SeedSequence(master, spawn_key=(b,))``: the same numbers whoever asks,
    at a fraction of the cost of one SeedSequence per run.
    """
    block, j = divmod(index, SEED_BLOCK)
    words = _seed_block(master, block)
    return (words[2 * j] << 32 | words[2 * j + 1]) >> 1  # 63 bits: fits any int64 column


@functools.lru_cache(maxsize=8)
def _seed_block(master: int, block: int) -> list:
    import numpy as np
    return np.random.SeedSequence(master, spawn_key=(block,)).generate_state(
        2 * SEED_BLOCK).tolist()
