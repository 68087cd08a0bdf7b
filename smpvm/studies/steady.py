"""Steady-state estimators: what a lock looks like once the run has settled.

A timed run of a closed workload has three phases.  At the start every CPU
is thinking and the lock is idle (the *warm-up*); then the queue settles
into its steady state; at the end CPUs run out of work one by one and the
last few hold the lock alone (the *drain*).  A rate computed over the whole
run (all acquisitions over the time the last CPU finished) counts the drain's
idle CPUs as lost throughput, and the error shrinks only as 1/sqrt(work).

The measurement window here excludes both ends:

* it **ends** when the first CPU runs out of work (before that every CPU is
  still in the loop, so the population is the one the study asked for);
* it **starts** after the warm-up: a declared fraction of the time before
  the drain (``warmup_fraction``), or the truncation point MSER-5 finds in
  the series of waits (White, "An effective truncation heuristic for bias
  reduction in simulation output", Simulation 69(6), 1997), whichever is
  later.

MSER-5 batches the series into means of five, and picks the number d of
leading batches to drop that minimises the squared standard error of the
remaining mean, sum_{j>d} (Z_j - mean_d)^2 / (m - d)^2, over d up to m/2.

Within the window: throughput is the releases in the window over its
length; wait and hold are those of the acquisitions granted in it; the
utilisation is the held time inside the window over its length.  One run
gives one value of each; the confidence interval comes from independent
replications (the seeds), in the summary.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Window", "mser5", "steady_state"]


def mser5(series) -> int:
    """How many leading observations of ``series`` MSER-5 drops as warm-up (a multiple of 5)."""
    import numpy as np
    x = np.asarray(series, dtype=float)
    m = len(x) // 5
    if m < 4:
        return 0
    z = x[:m * 5].reshape(m, 5).mean(axis=1)
    # suffix sums give every truncation's mean and spread in one pass
    tail = z[::-1]
    n = np.arange(1, m + 1, dtype=float)
    s1 = np.cumsum(tail)[::-1]
    s2 = np.cumsum(tail * tail)[::-1]
    count = n[::-1]
    sse = s2 - s1 * s1 / count
    stat = sse / (count * count)
    half = m // 2 + 1
    d = int(np.argmin(stat[:half]))
    return 5 * d


@dataclass(frozen=True)
class Window:
    """The steady-state measurement of one run of a closed lock workload."""

    #: Window start: after the warm-up (ns).
    start_ns: int
    #: Window end: the first CPU ran out of work (ns).
    end_ns: int
    #: Where the start came from: "fraction" or "mser5".
    warmup_by: str
    #: Releases inside the window.
    releases: int
    #: Acquisitions granted inside the window.
    acquisitions: int
    #: Releases per ns inside the window.
    throughput_per_ns: float
    wait_mean_ns: float
    wait_p50_ns: float
    wait_p99_ns: float
    hold_mean_ns: float
    #: Share of the window the lock was held.
    utilization: float

    def metrics(self, prefix: str = "") -> dict:
        """The window as flat metric names, for ``m.metric``."""
        return {f"{prefix}acquisitions_per_us": self.throughput_per_ns * 1e3,
                f"{prefix}wait_mean_ns": self.wait_mean_ns,
                f"{prefix}wait_p50_ns": self.wait_p50_ns,
                f"{prefix}wait_p99_ns": self.wait_p99_ns,
                f"{prefix}hold_mean_ns": self.hold_mean_ns,
                f"{prefix}utilization": self.utilization,
                "window.start_ns": self.start_ns, "window.end_ns": self.end_ns,
                "window.acquisitions": self.acquisitions}


def steady_state(requests, acquires, releases, *, warmup_fraction: float = 0.0,
                 detect: bool = True) -> Window | None:
    """The steady-state window of per-CPU acquisition logs.

    ``requests[i]``, ``acquires[i]`` and ``releases[i]`` are CPU i's times
    (ns) of asking for the lock, getting it and having released it, one
    entry per acquisition in order.  ``warmup_fraction`` (0 <= f < 1) of the
    time before the drain is dropped; with ``detect`` MSER-5 may drop more.
    None when the window would be empty (no CPU did anything).
    """
    import numpy as np
    if not 0 <= warmup_fraction < 1:
        raise ValueError(f"warmup_fraction must be in [0, 1), got {warmup_fraction!r}")
    logs = [(np.asarray(q, dtype=np.int64), np.asarray(a, dtype=np.int64),
             np.asarray(r, dtype=np.int64)) for q, a, r in zip(requests, acquires, releases)]
    ends = [int(r[-1]) for _, _, r in logs if len(r)]
    if not ends:
        return None
    end = min(ends)
    req = np.concatenate([q for q, _, _ in logs])
    acq = np.concatenate([a for _, a, _ in logs])
    rel = np.concatenate([r for _, _, r in logs])
    start, by = int(warmup_fraction * end), "fraction"
    if detect:
        order = np.argsort(acq, kind="stable")
        before = order[acq[order] < end]
        cut = mser5((acq - req)[before])
        if cut and int(acq[before[cut]]) > start:
            start, by = int(acq[before[cut]]), "mser5"
    if end <= start:
        return None
    span = end - start
    granted = (acq >= start) & (acq < end)
    waits = (acq - req)[granted]
    holds = (rel - acq)[granted]
    held = np.clip(rel, start, end) - np.clip(acq, start, end)
    n = int(granted.sum())
    return Window(
        start_ns=start, end_ns=end, warmup_by=by,
        releases=int(((rel >= start) & (rel < end)).sum()), acquisitions=n,
        throughput_per_ns=float(((rel >= start) & (rel < end)).sum()) / span,
        wait_mean_ns=float(waits.mean()) if n else 0.0,
        wait_p50_ns=float(np.percentile(waits, 50)) if n else 0.0,
        wait_p99_ns=float(np.percentile(waits, 99)) if n else 0.0,
        hold_mean_ns=float(holds.mean()) if n else 0.0,
        utilization=float(held.sum()) / span)
