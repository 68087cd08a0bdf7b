"""Lock statistics per lock class, exact in simulated time.

What ``lock_stat`` (Linux) and ``LOCK_PROFILING`` (FreeBSD) report, without
their sampling error: acquisitions, contended acquisitions, wait and hold
times (total, mean, max, p50, p99), con-bounces (the lock was taken on a
different CPU than the last time: its cache line moved), trylock failures
and utilisation (the share of simulated time the class's locks were held, in
any mode: overlapping readers count once).

Every wait and hold is kept as an integer in a compact array, so
percentiles are exact; a million acquisitions cost about 16 MB.
"""

from __future__ import annotations

from array import array
from dataclasses import asdict, dataclass


class ClassStats:
    """Running statistics of one lock class.

    The hot path only appends a sample and bumps a counter (the lock code does
    it inline); totals, maxima and percentiles are computed from the samples
    when a summary is asked for.
    """

    __slots__ = ("name", "kind", "instances", "contended", "bounces", "try_failures",
                 "waits", "holds", "busy", "overlapping")

    def __init__(self, name: str, kind: str):
        self.name = name
        self.kind = kind
        self.instances = 0
        self.contended = 0
        self.bounces = 0
        self.try_failures = 0
        #: Wait of every acquisition (0 when uncontended), ns.
        self.waits = array("q")
        #: Hold time of every release, ns.
        self.holds = array("q")
        #: Time any lock of the class was held in any mode (readers overlap), ns;
        #: kept only for kinds whose holds can overlap (else it is the hold total).
        self.busy = 0
        self.overlapping = False

    @property
    def acquisitions(self) -> int:
        return len(self.waits)



@dataclass(frozen=True)
class ClassSummary:
    """Plain-number summary of one class; what results, CSV and tables carry."""

    name: str
    kind: str
    instances: int
    acquisitions: int
    contended: int
    bounces: int
    try_failures: int
    wait_total_ns: int
    wait_mean_ns: float
    wait_max_ns: int
    wait_p50_ns: float
    wait_p99_ns: float
    hold_total_ns: int
    hold_mean_ns: float
    hold_max_ns: int
    hold_p50_ns: float
    hold_p99_ns: float
    utilization: float

    def as_dict(self) -> dict:
        return asdict(self)


#: From this many samples on, sort with numpy (its import is paid only by long runs).
_NUMPY_FROM = 4096


def _sorted_and_total(samples: array):
    """The samples in order (a list, or for long runs a numpy array) and their sum."""
    if len(samples) < _NUMPY_FROM:
        return sorted(samples), sum(samples)
    import numpy as np
    ordered = np.sort(np.frombuffer(samples, dtype=np.int64))
    return ordered, int(ordered.sum())


def _percentile(s, q: float) -> float:
    """Exact percentile of sorted values with linear interpolation (numpy's default method)."""
    n = len(s)
    if n == 0:
        return 0.0
    pos = (n - 1) * q
    lo = int(pos)
    hi = min(lo + 1, n - 1)
    return float(s[lo] + (s[hi] - s[lo]) * (pos - lo))


class LockStat:
    """The machine's statistics table, keyed by lock class in creation order."""

    def __init__(self) -> None:
        self.classes: dict[str, ClassStats] = {}

    def for_lock(self, lock) -> ClassStats:
        st = self.classes.get(lock.name)
        if st is None:
            st = ClassStats(lock.name, lock.kind)
            self.classes[lock.name] = st
        st.instances += 1
        st.overlapping = st.overlapping or lock.holds_overlap
        return st

    def summary(self, elapsed_ns: int) -> list[ClassSummary]:
        out = []
        for st in self.classes.values():
            n = len(st.waits)
            nh = len(st.holds)
            busy = elapsed_ns * max(1, st.instances)
            waits, wait_total = _sorted_and_total(st.waits)
            holds, hold_total = _sorted_and_total(st.holds)
            out.append(ClassSummary(
                name=st.name, kind=st.kind, instances=st.instances, acquisitions=n,
                contended=st.contended, bounces=st.bounces, try_failures=st.try_failures,
                wait_total_ns=wait_total, wait_mean_ns=wait_total / n if n else 0.0,
                wait_max_ns=int(waits[-1]) if n else 0, wait_p50_ns=_percentile(waits, 0.50),
                wait_p99_ns=_percentile(waits, 0.99), hold_total_ns=hold_total,
                hold_mean_ns=hold_total / nh if nh else 0.0, hold_max_ns=int(holds[-1]) if nh else 0,
                hold_p50_ns=_percentile(holds, 0.50), hold_p99_ns=_percentile(holds, 0.99),
                utilization=(st.busy if st.overlapping else hold_total) / busy if busy else 0.0))
        return out


CSV_FIELDS = [f for f in ClassSummary.__dataclass_fields__]


def write_csv(summaries: list[ClassSummary], fp) -> None:
    import csv
    w = csv.writer(fp, lineterminator="\n")
    w.writerow(CSV_FIELDS)
    for s in summaries:
        w.writerow([_cell(getattr(s, f)) for f in CSV_FIELDS])


def _cell(v) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def rich_table(summaries: list[ClassSummary], title: str = "lock statistics"):
    from rich.table import Table
    t = Table(title=title, title_justify="left")
    for col in ("class", "kind", "acq", "contended", "bounces", "wait mean", "wait p99",
                "wait max", "hold mean", "hold p99", "util"):
        t.add_column(col, justify="left" if col in ("class", "kind") else "right")
    for s in summaries:
        t.add_row(s.name, s.kind, str(s.acquisitions), str(s.contended), str(s.bounces),
                  fmt_ns(s.wait_mean_ns), fmt_ns(s.wait_p99_ns), fmt_ns(s.wait_max_ns),
                  fmt_ns(s.hold_mean_ns), fmt_ns(s.hold_p99_ns), f"{s.utilization:.1%}")
    return t


def plain_table(summaries: list[ClassSummary]) -> str:
    """The statistics as fixed-width text (stable across terminals; used in docs and tests)."""
    rows = [("class", "acq", "contended", "wait mean", "wait max", "hold mean", "util")]
    for s in summaries:
        rows.append((s.name, str(s.acquisitions), str(s.contended), fmt_ns(s.wait_mean_ns),
                     fmt_ns(s.wait_max_ns), fmt_ns(s.hold_mean_ns), f"{s.utilization:.1%}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for r in rows:
        cells = [r[0].ljust(widths[0])] + [r[i].rjust(widths[i]) for i in range(1, len(r))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def fmt_ns(ns: float) -> str:
    """A duration for people: 840 ns, 12.5 us, 3.20 ms, 1.50 s."""
    if ns < 1_000:
        return f"{ns:.0f} ns"
    if ns < 1_000_000:
        return f"{ns / 1e3:.1f} us"
    if ns < 1_000_000_000:
        return f"{ns / 1e6:.2f} ms"
    return f"{ns / 1e9:.2f} s"
