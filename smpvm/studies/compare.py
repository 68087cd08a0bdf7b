"""Design against design: each design's ratio to a named baseline, and crossovers.

A what-if study asks "how much better is design A than design B, and from
where on?".  With ``baseline = "queue mutex"`` in a study whose designs are
``[[case]]`` tables (or the values of its ``[plot].lines`` parameter), every
other design is compared with the baseline at each setting of the other
swept parameters, for every plotted metric:

    ratio = mean(design) / mean(baseline)

with a 95% interval from the two sets of independent replications: on the
log scale the ratio's variance is s_a^2 / (n_a m_a^2) + s_b^2 / (n_b m_b^2)
(the delta method), with Student's t at the Welch-Satterthwaite degrees of
freedom.  A *crossover* is where, along ``[plot].x``, the ratio passes
through 1 (the designs swap places); it is reported between the two x values
it lies between, with the linear interpolation of the ratio as an estimate.

``comparisons.csv`` has one row per (design, setting, metric), ``kind`` =
"ratio", and one per crossover, ``kind`` = "crossover".
"""

from __future__ import annotations

import csv
import math

from .summary import LIMIT_COLUMNS, _values, point_rows
from .theory import student_t_quantile


def ratio_interval(a: list[float], b: list[float], confidence: float = 0.95):
    """(ratio, low, high) of mean(a) / mean(b); the bounds are nan with fewer than 2 values."""
    ma, mb = math.fsum(a) / len(a), math.fsum(b) / len(b)
    if mb == 0:
        return math.nan, math.nan, math.nan
    r = ma / mb
    if len(a) < 2 or len(b) < 2 or ma <= 0 or mb <= 0:
        return r, math.nan, math.nan
    va = math.fsum((x - ma) ** 2 for x in a) / (len(a) - 1) / (len(a) * ma * ma)
    vb = math.fsum((x - mb) ** 2 for x in b) / (len(b) - 1) / (len(b) * mb * mb)
    se = math.sqrt(va + vb)
    if se == 0:
        return r, r, r
    df = (va + vb) ** 2 / (va * va / (len(a) - 1) + vb * vb / (len(b) - 1))
    t = student_t_quantile(0.5 + confidence / 2, df)
    return r, r * math.exp(-t * se), r * math.exp(t * se)


def compare(cfg, points, table) -> list[dict]:
    """Ratios of every design to ``cfg.baseline`` and the crossovers along ``[plot].x``."""
    key = cfg.design_key()
    by_point = point_rows(table)
    x = cfg.plot.get("x")
    others = [k for k in cfg.swept if k not in (key, x)]
    metrics = [m for m in cfg.plot.get("y", []) if m not in LIMIT_COLUMNS]

    def setting(p):
        return tuple((k, p.get(k)) for k in others + [x] if k)

    base = {}
    for i, p in enumerate(points):
        if str(p.get(key)) == cfg.baseline:
            base[setting(p)] = i
    out = []
    for i, p in enumerate(points):
        design = str(p.get(key))
        j = base.get(setting(p))
        if design == cfg.baseline or j is None:
            continue
        for metric in metrics:
            a, b = _ok(by_point.get(i, []), metric), _ok(by_point.get(j, []), metric)
            if not a or not b:
                continue
            r, lo, hi = ratio_interval(a, b)
            out.append({"kind": "ratio", "design": design, "baseline": cfg.baseline,
                        **dict(setting(p)), "metric": metric, "ratio": r, "ci_low": lo,
                        "ci_high": hi, "runs": len(a), "baseline_runs": len(b)})
    return out + _crossovers(out, x, others)


def _ok(rows, metric) -> list[float]:
    return _values([r for r in rows if r.get("limit.max_steps") in (None, "")], metric)


def _crossovers(ratios, x, others) -> list[dict]:
    """Where a design's ratio to the baseline passes through 1 along x."""
    if not x:
        return []
    lines: dict = {}
    for r in ratios:
        lines.setdefault((r["design"], r["metric"]) + tuple(r[k] for k in others), []).append(r)
    out = []
    for (design, metric, *rest), rs in lines.items():
        try:
            rs = sorted(rs, key=lambda r: float(r[x]))
        except (TypeError, ValueError):
            continue  # a categorical x has no "between"
        for a, b in zip(rs, rs[1:]):
            da, db = a["ratio"] - 1, b["ratio"] - 1
            if math.isnan(da) or math.isnan(db) or da * db > 0 or (da == 0 and db == 0):
                continue
            xa, xb = float(a[x]), float(b[x])
            at = xa if da == db else xa + (xb - xa) * (-da) / (db - da)
            out.append({"kind": "crossover", "design": design, "baseline": a["baseline"],
                        **dict(zip(others, rest)), "metric": metric, x: f"{a[x]}..{b[x]}",
                        "crossover_at": at, "ratio": b["ratio"],
                        "ci_low": b["ci_low"], "ci_high": b["ci_high"]})
    return out


def write_comparisons(path, rows) -> str:
    fields = []
    for r in rows:
        for k in r:
            if k not in fields:
                fields.append(k)
    with open(path, "w", newline="", encoding="utf-8") as fp:
        w = csv.DictWriter(fp, fields or ["kind"], lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    return path


def describe(rows, x: str | None) -> list[str]:
    """Printable lines: "hashed x32 vs queue mutex at cpus=64: ops_per_ms 3.6x [3.5, 3.7]"."""
    lines = []
    for r in rows:
        where = ", ".join(f"{k}={v}" for k, v in r.items()
                          if k not in ("kind", "design", "baseline", "metric", "ratio", "ci_low",
                                       "ci_high", "runs", "baseline_runs", "crossover_at"))
        ci = ("" if math.isnan(r["ci_low"]) else f" [{r['ci_low']:.3g}, {r['ci_high']:.3g}]")
        if r["kind"] == "ratio":
            lines.append(f"{r['design']} vs {r['baseline']} at {where}: {r['metric']} "
                         f"{r['ratio']:.3g}x{ci}")
        else:
            lines.append(f"{r['design']} crosses {r['baseline']} on {r['metric']} at {where} "
                         f"(about {x}={r['crossover_at']:.3g})")
    return lines
