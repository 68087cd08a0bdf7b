"""Distinct schedules are counted exactly, in a fraction of a set's memory."""

from __future__ import annotations

import random
import tracemalloc

from hypothesis import given, settings, strategies as st

from smpvm.search import distinct
from smpvm.search.distinct import Distinct

FINGERPRINT = st.integers(min_value=0, max_value=2**64 - 1)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(FINGERPRINT | st.sampled_from([0, 1, 2**63, 2**64 - 1]), max_size=40),
                max_size=30))
def test_the_count_is_the_number_of_distinct_fingerprints_after_every_batch(batches):
    seen, counter = set(), Distinct()
    for batch in batches:
        counter.add(tuple(batch))
        seen.update(batch)
        assert len(counter) == len(seen)


def test_the_count_stays_exact_across_merges(monkeypatch):
    monkeypatch.setattr(distinct, "MERGE_AT_LEAST", 16)
    rng = random.Random(5)
    pool = [rng.getrandbits(64) for _ in range(3000)]  # batches repeat fingerprints
    seen, counter = set(), Distinct()
    for _ in range(400):
        batch = tuple(rng.choice(pool) for _ in range(rng.randrange(1, 64)))
        counter.add(batch)
        seen.update(batch)
        assert len(counter) == len(seen)
    assert len(counter._recent) < len(seen), "nothing was ever merged: the test proves little"


def test_a_million_distinct_schedules_take_a_fraction_of_a_sets_memory():
    rng = random.Random(1)
    batches = [tuple(rng.getrandbits(64) for _ in range(512)) for _ in range(2000)]
    tracemalloc.start()
    counter = Distinct()
    for batch in batches:
        counter.add(batch)
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(counter) == 512 * 2000
    # a set of as many ints holds about 70 MB
    assert held < 20 * 2**20, f"{held / 2**20:.0f} MiB for {len(counter):,} fingerprints"
