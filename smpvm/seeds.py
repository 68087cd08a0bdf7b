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
(``run_seed``), with numpy's ``SeedSequence`` algorithm written out here
(``seed_words``): the same numbers, without importing numpy, which would
add a tenth of a second to every start of smpvm.  The formulas are part of
what makes a saved failure replay: changing one changes every run.
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
        # (``_mix64`` written out: a function call less on every draw of a strategy)
        self._state = z = (self._state + _GOLDEN) & _MASK
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        return ((z ^ (z >> 31)) >> 11) * (1.0 / (1 << 53))


def _mix64(z: int) -> int:
    """SplitMix64's output function: a 64-bit word from a state."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


#: Bits of a jitter draw: a SplitMix64 word holds three (a uniform on a grid of 2**-21,
#: far finer than the nanosecond a duration is rounded to).
JITTER_BITS = 21
#: SplitMix64 words a run slices into jitter draws before it seeds a Mersenne Twister.
JITTER_CHEAP_WORDS = 20
_SLICE = (1 << JITTER_BITS) - 1
_SLICE_UNIT = 1.0 / (1 << JITTER_BITS)
#: A word's 63 bits under a marker bit: the marker alone is left when its three are used.
_MARKED = 1 << 63


class JitterStream:
    """The cost model's jitter (stream JITTER): a run's first draws are 21-bit slices
    of SplitMix64 words, three a word, which cost nothing to start; the rest come from
    a Mersenne Twister seeded from where those left off, whose draws cost a twentieth
    as much.  An exploration run takes a handful of draws (two or three words) and
    never seeds the Twister; a timed run of a million operations seeds it once.
    ``random`` is rebound to the Twister's own method at the switch, so later draws
    are one C call."""

    __slots__ = ("random", "__weakref__")

    def __init__(self, seed: int):
        # [SplitMix64 state (None: not mixed from the seed yet), unread slices under
        # their marker bit, words left before the Twister]
        st = [None, 0, JITTER_CHEAP_WORDS]
        me = weakref.ref(self)  # (a strong one would tie every run's stream into a cycle)

        def cheap() -> float:
            b = st[1]
            if b <= _SLICE:  # the marker alone (or nothing yet): slice the next word
                state = st[0]
                if state is None:
                    # started from the seed mixed with the stream's number: not the
                    # strategy's stream of the same seed, shifted
                    state = _mix64(((int(seed) * 4 + JITTER) + _GOLDEN) & _MASK) | JITTER
                if not st[2]:
                    twister = random.Random(state).random
                    me().random = twister
                    return twister()
                st[2] -= 1
                st[0] = state = (state + _GOLDEN) & _MASK
                b = _MARKED | _mix64(state) >> 1
            st[1] = b >> JITTER_BITS
            return (b & _SLICE) * _SLICE_UNIT
        self.random = cheap


def python_stream(seed: int, stream: int) -> random.Random:
    """A private Mersenne Twister for a stream (STRATEGY, for a user's strategy):
    microseconds to start."""
    return random.Random(int(seed) * 4 + stream)


def salted_seed(seed: int, salt: int) -> int:
    """A seed for a strategy re-run on a stream of its own (stream SHRINK, ``salt``)."""
    return seed_words([int(seed), SHRINK, int(salt)], (), 1)[0]


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
    return seed_words([int(master)], (block,), 2 * SEED_BLOCK)


# numpy's SeedSequence (O'Neill's seed_seq, as numpy.random.bit_generator has it),
# for entropy and spawn keys of non-negative ints and 32-bit words out.
_M32 = 0xFFFFFFFF
_POOL = 4
_INIT_A, _MULT_A = 0x43B0D7E5, 0x931E8875
_INIT_B, _MULT_B = 0x8B51F9DD, 0x58F38DED
_MIX_L, _MIX_R = 0xCA01F9DD, 0x4973F715


def _words32(values) -> list:
    """Non-negative ints as numpy coerces them: each one's 32-bit words, low first."""
    out = []
    for n in values:
        n = int(n)
        if n < 0:
            raise ValueError(f"seeds must be non-negative, got {n}")
        out.append(n & _M32)
        n >>= 32
        while n:
            out.append(n & _M32)
            n >>= 32
    return out


def seed_words(entropy, spawn_key, n: int) -> list:
    """``SeedSequence(entropy, spawn_key=spawn_key).generate_state(n).tolist()``: the
    same ``n`` 32-bit words, for ``entropy`` and ``spawn_key`` sequences of ints."""
    run = _words32(entropy)
    spawn = _words32(spawn_key)
    if spawn and len(run) < _POOL:  # numpy >= 1.19 pads the entropy when spawned
        run += [0] * (_POOL - len(run))
    words = run + spawn
    h = _INIT_A

    def hashmix(value):
        nonlocal h
        value ^= h
        h = (h * _MULT_A) & _M32
        value = (value * h) & _M32
        return value ^ (value >> 16)

    def mix(x, y):
        r = (_MIX_L * x - _MIX_R * y) & _M32
        return r ^ (r >> 16)

    pool = [hashmix(words[i] if i < len(words) else 0) for i in range(_POOL)]
    for src in range(_POOL):
        for dst in range(_POOL):
            if src != dst:
                pool[dst] = mix(pool[dst], hashmix(pool[src]))
    for src in range(_POOL, len(words)):
        for dst in range(_POOL):
            pool[dst] = mix(pool[dst], hashmix(words[src]))
    out = []
    h = _INIT_B
    for i in range(n):
        value = pool[i % _POOL] ^ h
        h = (h * _MULT_B) & _M32
        value = (value * h) & _M32
        out.append(value ^ (value >> 16))
    return out
