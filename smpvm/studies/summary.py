"""Summaries and plots of a sweep: per-point means with 95% confidence intervals.

``summary.csv`` has one row per point: its parameters, the number of runs,
and for each metric the mean and the bounds of a Student-t 95% confidence
interval over the point's seeds.  When the study names a theory, the
theory's value and the relative error of the mean sit beside the metric.
Plots draw the chosen metrics against the chosen parameter, one line per
value of another, with error bars and the theory as dashed lines.

Each row also says how its numbers were measured and whether anything cut
them short: ``estimator`` is "steady-state window" when the model reported
its measurement window (warm-up and drain left out, see
``smpvm.studies.steady``) and "whole run" otherwise; the interval is over the
point's independent replications (its seeds).  ``limit`` names any run that
stopped at its step bound and any precision the point did not reach; such a
point is marked on the plots too, never left blank.
"""

from __future__ import annotations

import csv
import math

from .theory import mean_confidence_interval


#: Columns of runs.csv that describe a run's limits rather than measure it.
LIMIT_COLUMNS = ("limit.max_steps",)


def point_rows(table) -> dict[int, list[dict]]:
    """runs.csv's rows by point."""
    by_point: dict[int, list[dict]] = {}
    for row in table.rows.values():
        by_point.setdefault(int(row["point"]), []).append(row)
    return by_point


def _values(rows, metric) -> list[float]:
    return [float(r[metric]) for r in rows if r.get(metric) not in (None, "")]


def relative_half_width(rows, metrics) -> float | None:
    """The widest 95% half-width, relative to its mean, of ``metrics`` over ``rows``.

    Metrics whose mean is 0 (nobody waits with one CPU) have no relative
    width and are skipped; None when no metric has two values.
    """
    widest = None
    for metric in metrics:
        vals = _values(rows, metric)
        if len(vals) < 2:
            continue
        mean, lo, hi = mean_confidence_interval(vals)
        if mean == 0 or math.isnan(lo):
            continue
        hw = (hi - lo) / 2 / abs(mean)
        widest = hw if widest is None else max(widest, hw)
    return widest


def _limit(cfg, rows) -> str:
    """What cut this point short, in words ("" when nothing did)."""
    notes = []
    hit = [r for r in rows if r.get("limit.max_steps") not in (None, "")]
    if hit:
        bound = max(int(float(r["limit.max_steps"])) for r in hit)
        notes.append(f"max-steps: {len(hit)}/{len(rows)} run(s) stopped at {bound} steps")
    if cfg.precision and rows:
        hw = relative_half_width([r for r in rows if r not in hit], cfg.plot.get("y", []))
        if hw is not None and hw > cfg.precision:
            notes.append(f"precision: +-{hw:.2%} after {len(rows)} runs (asked "
                         f"+-{cfg.precision:.2%}, max_seeds {cfg.max_seeds})")
    return "; ".join(notes)


def write_summary(path, cfg, points, table) -> list[dict]:
    by_point = point_rows(table)
    metrics = [m for m in table.metric_names if m not in LIMIT_COLUMNS]
    theory = None
    if cfg.plot.get("theory"):
        from .predictions import THEORIES
        theory = THEORIES[cfg.plot["theory"]]
    out = []
    for i, p in enumerate(points):
        rows = by_point.get(i, [])
        rec = {"point": i, **{k: p.get(k, "") for k in table.param_names}, "runs": len(rows),
               "estimator": ("steady-state window" if _values(rows, "window.end_ns")
                             else "whole run"),
               "limit": _limit(cfg, rows)}
        predicted = theory(_with_defaults(p, cfg), cfg.costs) if theory and rows else {}
        # a run cut short by its step bound measured nothing: its cells stay out of the mean
        rows = [r for r in rows if r.get("limit.max_steps") in (None, "")]
        for mname in metrics:
            vals = _values(rows, mname)
            if not vals:
                continue
            mean, lo, hi = mean_confidence_interval(vals) if len(vals) > 1 else (vals[0], vals[0], vals[0])
            rec[f"{mname}.mean"] = mean
            rec[f"{mname}.ci_low"] = lo
            rec[f"{mname}.ci_high"] = hi
            if mname in predicted:
                th = predicted[mname]
                rec[f"{mname}.theory"] = th
                rec[f"{mname}.rel_error"] = (mean - th) / th if th else math.nan
        out.append(rec)
    fields = []
    for rec in out:
        for k in rec:
            if k not in fields:
                fields.append(k)
    with open(path, "w", newline="", encoding="utf-8") as fp:
        w = csv.DictWriter(fp, fields, lineterminator="\n")
        w.writeheader()
        for rec in out:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in rec.items()})
    return out


def _with_defaults(point, cfg) -> dict:
    from ..scenario import load_target
    p = dict(load_target(cfg.target).params)
    p.update(point)
    return p


UNITS = (("_per_us", "per µs"), ("_per_ms", "per ms"), ("_per_s", "per s"), ("_ns", "ns"),
         ("utilization", "fraction of time"), ("acquisitions", "count"), ("contended", "count"))


def unit_of(metric: str) -> str:
    for suffix, unit in UNITS:
        if metric.endswith(suffix):
            return unit
    return ""


#: Lock-statistics fields as an axis title says them.
_LOCK_FIELDS = {
    "wait_mean_ns": "mean wait", "wait_max_ns": "longest wait", "wait_p50_ns": "median wait",
    "wait_p99_ns": "99th-percentile wait", "wait_total_ns": "total wait",
    "hold_mean_ns": "mean hold time", "hold_max_ns": "longest hold", "hold_p50_ns":
    "median hold time", "hold_p99_ns": "99th-percentile hold time", "hold_total_ns":
    "total hold time", "utilization": "utilisation", "acquisitions": "acquisitions",
    "contended": "contended acquisitions", "bounces": "cache-line transfers",
    "try_failures": "failed trylocks", "instances": "instances",
}
#: Units for a duration, largest first: (name, ns in one).
_TIME_UNITS = (("s", 1e9), ("ms", 1e6), ("µs", 1e3), ("ns", 1.0))


def axis_title(metric: str) -> str:
    """A metric key as words ("lock.the lock.wait_mean_ns" -> "the lock: mean wait")."""
    if metric.startswith("lock.") and metric.count(".") >= 2:
        cls, field = metric[len("lock."):].rsplit(".", 1)
        return f"{cls}: {_LOCK_FIELDS.get(field, field.replace('_', ' '))}"
    for suffix, words in (("_per_us", " per µs"), ("_per_ms", " per ms"), ("_per_s", " per s"),
                          ("_ns", "")):
        if metric.endswith(suffix):
            return (metric[:-len(suffix)] + words).replace("_", " ")
    return "CPUs" if metric == "cpus" else metric.replace("_", " ")


def axis_scale(metric: str, values) -> tuple[float, str]:
    """(divisor, unit) for plotting ``values`` of ``metric``: times in ns, µs, ms or s by
    their size, utilisation in %, rates and counts as they are."""
    if metric.endswith("_ns"):
        top = max((abs(v) for v in values if v == v), default=0.0)
        for unit, scale in _TIME_UNITS:
            if top >= scale:
                return scale, unit
        return 1.0, "ns"
    if metric.endswith("utilization"):
        return 0.01, "%"
    return 1.0, ""


def write_plots(out_dir, cfg, summary) -> list[str]:
    """One PNG per ``[plot].y`` metric; returns (paths written, metrics no run reported)."""
    plot = cfg.plot
    if not plot or not summary:
        return [], []
    import os

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = plot["x"]
    lines = plot.get("lines")
    others = [k for k in (["case"] if cfg.cases else []) + list(cfg.swept) if k not in (x, lines)]
    paths, missing = [], []
    for metric in plot["y"]:
        fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=100)
        groups: dict = {}
        for rec in summary:
            if f"{metric}.mean" not in rec:
                continue
            key = tuple(rec[k] for k in ([lines] if lines else []) + others)
            groups.setdefault(key, []).append(rec)
        categories = _categories(summary, x)
        scale, unit = axis_scale(metric, [r[f"{metric}.mean"] for g in groups.values()
                                          for r in g])
        all_xs: set = set()
        for key, recs in groups.items():
            if categories is None:
                recs = sorted(recs, key=lambda r: float(r[x]))
                xs = [float(r[x]) for r in recs]
            else:  # a categorical x (a case, a variant): one position per value, file order
                recs = sorted(recs, key=lambda r: categories.index(str(r[x])))
                xs = [categories.index(str(r[x])) for r in recs]
            ys = [r[f"{metric}.mean"] / scale for r in recs]
            err = [[max(0.0, r[f"{metric}.mean"] - _num(r[f"{metric}.ci_low"], r[f"{metric}.mean"])) / scale for r in recs],
                   [max(0.0, _num(r[f"{metric}.ci_high"], r[f"{metric}.mean"]) - r[f"{metric}.mean"]) / scale for r in recs]]
            names = ([lines] if lines else []) + others
            label = ", ".join(f"{n}={v}" for n, v in zip(names, key)) or axis_title(metric)
            line = ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=label)
            all_xs.update(xs)
            th = [r.get(f"{metric}.theory") for r in recs]
            if all(t is not None for t in th):
                ax.plot(xs, [t / scale for t in th], linestyle="--", color=line[0].get_color(),
                        label=f"{label} (theory)")
        _mark_limits(ax, summary, metric, x, _categories(summary, x))
        if not groups and not any(r.get("limit") for r in summary):
            plt.close(fig)
            missing.append(metric)
            continue
        if categories is not None:
            ax.set_xticks(range(len(categories)))
            ax.set_xticklabels(categories, rotation=20, ha="right", fontsize=7)
        elif plot.get("logx"):
            ax.set_xscale("log", base=2)
            if len(all_xs) <= 16:
                # plain numbers at the values swept (1, 2, 4, ... CPUs), not 2^0, 2^1, ...
                from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator
                ax.xaxis.set_major_locator(FixedLocator(sorted(all_xs)))
                ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
                ax.xaxis.set_minor_locator(NullLocator())
        if plot.get("logy"):
            ax.set_yscale("log")
        ax.set_xlabel(axis_title(x) + (" (ns)" if x.endswith("_ns") else ""))
        title = axis_title(metric)
        ax.set_ylabel(f"{title} ({unit})" if unit else title)
        ax.set_title(plot.get("title") or cfg.study.get("name") or metric, fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in metric)
        path = os.path.join(out_dir, f"{safe}.png")
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)
    return paths, missing


def _mark_limits(ax, summary, metric, x, categories) -> None:
    """A red cross and the word "limit" where a point was cut short."""
    marked = [r for r in summary if r.get("limit")]
    if not marked:
        return
    xs, ys = [], []
    bottom = ax.get_ylim()[0] if ax.has_data() else 0.0
    for r in marked:
        xs.append(categories.index(str(r[x])) if categories is not None else float(r[x]))
        ys.append(r.get(f"{metric}.mean", bottom))
    ax.plot(xs, ys, linestyle="none", marker="x", markersize=10, color="red",
            label="limit (see summary.csv)")
    for xv, yv in zip(xs, ys):
        ax.annotate("limit", (xv, yv), textcoords="offset points", xytext=(4, 6),
                    color="red", fontsize=7)


def format_table(cfg, summary, metric: str | None = None) -> list[str]:
    """One line per point: its parameters, runs, a metric's mean [95% CI], and its limit."""
    metric = metric or (cfg.plot.get("y") or [None])[0]
    names = (["case"] if cfg.cases else []) + list(cfg.swept)
    lines = []
    for r in summary:
        where = ", ".join(f"{k}={r.get(k)}" for k in names)
        if metric and f"{metric}.mean" in r:
            lo, hi = r[f"{metric}.ci_low"], r[f"{metric}.ci_high"]
            ci = "" if isinstance(lo, float) and math.isnan(lo) else f" [{lo:.4g}, {hi:.4g}]"
            value = f"{metric} {r[f'{metric}.mean']:.4g}{ci}"
        else:
            value = f"{metric}: no value" if metric else ""
        limit = f"  LIMIT: {r['limit']}" if r.get("limit") else ""
        lines.append(f"{where}: {r['runs']} runs, {value}{limit}")
    return lines


def _categories(summary, x):
    """The x values in order of appearance when any is not a number, else None."""
    values = list(dict.fromkeys(str(r[x]) for r in summary))
    try:
        for v in values:
            float(v)
    except ValueError:
        return values
    return None


def _num(v, default):
    try:
        f = float(v)
    except (TypeError, ValueError):
        return default
    return default if math.isnan(f) else f
