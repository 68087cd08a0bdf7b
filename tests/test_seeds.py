"""Run seeds: smpvm's own SeedSequence gives numpy's numbers, so saved failures replay.

Run seeds and shrink seeds used to be drawn through ``numpy.random.SeedSequence``;
``seeds.seed_words`` writes the same algorithm out so that a start of smpvm need
not import numpy.  Every saved failure names its run's seed: a single word of
difference would make old failure files replay other runs.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smpvm import seeds
from smpvm.seeds import SEED_BLOCK, SHRINK, run_seed, salted_seed, seed_words

# ints of one to three 32-bit words, the edges of each word among them
word_ints = st.one_of(st.integers(0, 2**32 - 1), st.integers(0, 2**96),
                      st.sampled_from([0, 1, 2**32 - 1, 2**32, 2**64 - 1, 2**64]))


@settings(max_examples=300, deadline=None)
@given(entropy=st.lists(word_ints, min_size=1, max_size=6),
       spawn_key=st.lists(word_ints, max_size=3), n=st.integers(1, 24))
def test_seed_words_are_numpys_seed_sequence(entropy, spawn_key, n):
    want = np.random.SeedSequence(entropy, spawn_key=tuple(spawn_key)).generate_state(n)
    assert seed_words(entropy, spawn_key, n) == want.tolist()


def test_run_seeds_are_the_numbers_numpy_gave():
    for master in (0, 1, 7, 2**40 + 3):
        for block in (0, 1, 5):
            words = np.random.SeedSequence(master, spawn_key=(block,)).generate_state(
                2 * SEED_BLOCK).tolist()
            for j in (0, 1, 511, SEED_BLOCK - 1):
                want = (words[2 * j] << 32 | words[2 * j + 1]) >> 1
                assert run_seed(master, block * SEED_BLOCK + j) == want


def test_shrink_seeds_are_the_numbers_numpy_gave():
    for seed in (0, 1, 123456789, 2**63 - 1):
        for salt in (0, 1, 17):
            want = int(np.random.SeedSequence([seed, SHRINK, salt]).generate_state(1)[0])
            assert salted_seed(seed, salt) == want


def test_negative_seeds_are_refused_as_numpy_refuses_them():
    for bad in ([-1], [3, -2]):
        with pytest.raises(ValueError):
            np.random.SeedSequence(bad)
        with pytest.raises(ValueError, match="non-negative"):
            seed_words(bad, (), 1)


def test_drawing_run_seeds_does_not_import_numpy():
    code = ("import sys; from smpvm.seeds import run_seed, salted_seed; "
            "run_seed(1, 5000); salted_seed(3, 1); print('numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"
    assert seeds.model_rng(1).integers(10) >= 0  # m.rng is still numpy's Generator


def test_jitter_draws_are_a_function_of_the_seed_and_uniform():
    first = [seeds.JitterStream(7).random() for _ in range(3)]
    assert first == [seeds.JitterStream(7).random() for _ in range(3)]
    a, b = seeds.JitterStream(7), seeds.JitterStream(8)
    xs = [a.random() for _ in range(20_000)]  # past the slices, into the Twister
    assert xs[:5] != [b.random() for _ in range(5)]
    assert all(0.0 <= x < 1.0 for x in xs)
    assert len(set(xs)) > 19_000
    for part in (xs[:60], xs[1_000:]):  # the SplitMix64 slices, then the Twister
        mean = sum(part) / len(part)
        assert abs(mean - 0.5) < 4 * (1 / 12 / len(part)) ** 0.5


def test_the_jitter_stream_switches_to_a_twister_after_its_cheap_draws():
    j = seeds.JitterStream(3)
    cheap = j.random
    slices = 3 * seeds.JITTER_CHEAP_WORDS
    for _ in range(slices):
        j.random()
    assert j.random is cheap
    j.random()
    assert j.random is not cheap and type(j.random).__name__ == "builtin_function_or_method"
