"""How many distinct schedules an exploration has run, counted exactly in little memory.

Each run's schedule is a 64-bit fingerprint.  A Python set of them costs
about 70 bytes a fingerprint, and a long exploration on many workers (10^5
runs a second, most of them distinct on a large model) turns that into
gigabytes within minutes.  ``Distinct`` keeps them in a sorted numpy array,
8 bytes each, and the newest in a small set that is merged into the array
when it has grown by an eighth of it: adding a batch costs a binary search
per fingerprint, and the merges, each linear, add up to a few passes over
the array.  Until the first merge the set is all there is (up to
``MERGE_AT_LEAST`` fingerprints, a few megabytes), so an exploration of fewer
distinct schedules never imports numpy, nor pays its per-batch sort and search
(a tenth of a millisecond a batch, where adding to the set costs a hundredth).
"""

from __future__ import annotations


#: The set of new fingerprints is merged into the sorted array once it holds this
#: many (about 4.5 MB as a set), or an eighth of the array, whichever is more.
MERGE_AT_LEAST = 1 << 16


class Distinct:
    """The number of distinct 64-bit fingerprints added so far (``len``), exactly."""

    def __init__(self):
        #: The merged fingerprints, sorted (None: no merge yet).
        self._sorted = None
        #: Fingerprints added since the last merge and not in ``_sorted``.
        self._recent: set[int] = set()

    def add(self, fingerprints) -> None:
        """Count ``fingerprints`` (ints in [0, 2**64)) that were not seen before."""
        if not len(fingerprints):
            return
        known = self._sorted
        if known is None:
            self._recent.update(fingerprints)
            if len(self._recent) >= MERGE_AT_LEAST:
                self._merge()
            return
        import numpy as np
        new = np.sort(np.asarray(fingerprints, dtype=np.uint64))  # sorted: faster searches
        at = np.searchsorted(known, new)
        np.minimum(at, len(known) - 1, out=at)
        new = new[known[at] != new]
        if len(new):
            self._recent.update(new.tolist())
            if len(self._recent) >= max(MERGE_AT_LEAST, len(known) >> 3):
                self._merge()

    def _merge(self) -> None:
        import numpy as np
        recent = np.fromiter(self._recent, dtype=np.uint64, count=len(self._recent))
        recent.sort()
        if self._sorted is None:
            self._sorted = recent
        else:
            # two sorted runs: the stable sort (timsort) merges them in one pass
            self._sorted = np.sort(np.concatenate((self._sorted, recent)), kind="stable")
        self._recent = set()

    def __len__(self) -> int:
        merged = len(self._sorted) if self._sorted is not None else 0
        return merged + len(self._recent)
