"""Sweeps: one scenario over a grid of parameters, from a TOML file.

A study is data, not code (top-level keys come before the first table)::

    seeds = 3                 # runs per point (seeds base_seed, base_seed+1, ...)

    [study]
    question = "Does the single-lock simulation match the M/M/1//N queue?"
    expected = "Relative errors of a few percent at every N."

    [model]
    target = "models/synthetic/locks.py::single_lock"
    variant = "mutex"

    [run]                     # fixed parameters (scalars)
    think_ns = 2000.0

    [costs]                   # cost-model overrides for every run
    jitter = 0.0

    [sweep]                   # every list is swept (cartesian product)
    cpus = [1, 2, 4, 8]

    [[case]]                  # optional named designs, each crossed with [sweep]
    label = "queue lock"
    variant = "queue-lock"

    [plot]                    # which metric against which parameter, one line per ...
    x = "cpus"
    y = ["lock.the lock.wait_mean_ns"]
    lines = "variant"
    theory = "machine_repairman"

Top-level keys that set how long each point runs and what it is compared with::

    precision = 0.01          # run more seeds per point until every plotted metric's
    max_seeds = 40            # 95% interval is within 1% of its mean (at most 40 runs)
    max_steps = 50_000_000    # the step bound of every run (default: TIMED_STEP_BOUND, below)
    baseline = "queue mutex"  # a [[case]] label (or a [plot].lines value): ratios to it

Timed runs are not cut at the exploration step bound (a million steps): a
timed run is as long as the work it is asked for, so it may take up to
``TIMED_STEP_BOUND`` steps, or the study's ``max_steps``.  That bound also
ends the runs of a model that loops forever, in seconds rather than hours
(the watchdog still stops model code that never yields).  A point that hits
a limit, or does not reach its precision, says so in the ``limit`` column of
``summary.csv``, in the printed table and on the plots.

Nothing in the file is executed: it is validated against the scenario's
declared parameters, and every error names the key and how to fix it.

Results: ``runs.csv`` (one row per run, streamed as runs finish),
``summary.csv`` (per point: mean and 95% confidence interval of each metric,
and the analytic value where the study names a theory), ``manifest.json``
(resolved configuration, smpvm version, seeds, start and end) and one PNG per
plotted metric.  ``--resume`` continues an interrupted sweep without
repeating or losing rows.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import time
from dataclasses import dataclass, field

from ..violations import BadInput

TOP_LEVEL = {"study", "model", "run", "costs", "sweep", "case", "plot", "seeds", "seed",
             "precision", "max_seeds", "max_steps", "baseline"}

#: Steps a timed run may take where the study sets no ``max_steps`` (and the scenario's
#: own bound is lower): twenty times the exploration bound, tens of seconds of CPU.
TIMED_STEP_BOUND = 20_000_000


@dataclass(frozen=True)
class SweepConfig:
    """A validated study."""

    path: str
    target: str
    #: Fixed scenario parameters (and ``cpus``/``variant``).
    fixed: dict
    #: Swept parameter -> list of values, in file order.
    swept: dict
    #: Named designs: label -> overrides; every case is crossed with ``swept``.
    cases: dict
    costs: dict
    seeds: int
    base_seed: int
    study: dict
    plot: dict
    strategy: str = "timed"
    param_types: dict = field(default_factory=dict)
    #: Relative 95% half-width each point runs more seeds for (None: ``seeds`` runs).
    precision: float | None = None
    #: The most runs a point gets while chasing ``precision``.
    max_seeds: int = 0
    #: A fixed step bound for every run (None: start at the scenario's and grow).
    max_steps: int | None = None
    #: The design the others are compared with (a case label or a ``lines`` value).
    baseline: str | None = None

    @property
    def stride(self) -> int:
        """Run numbers per point: room for every seed a point may get."""
        return self.max_seeds if self.precision else self.seeds

    def design_key(self) -> str | None:
        """The parameter that names a design: ``case``, else the plot's ``lines``."""
        return "case" if self.cases else self.plot.get("lines")

    def run_count(self, seeds: int | None = None) -> int:
        """Points times ``seeds`` (default: the first seeds of each point), without
        making the points."""
        n = len(self.cases) if self.cases else 1
        for values in self.swept.values():
            n *= len(values)
        return n * (self.seeds if seeds is None else seeds)

    def points(self) -> list[dict]:
        """Every case times every combination of swept values, over the fixed ones, in order."""
        names = list(self.swept)
        out = []
        for label, overrides in (self.cases.items() if self.cases else [(None, {})]):
            for combo in itertools.product(*(self.swept[n] for n in names)):
                p = dict(self.fixed)
                p.update(overrides)
                p.update(zip(names, combo))
                if label is not None:
                    p["case"] = label
                out.append(p)
        return out

    def resolved(self) -> dict:
        return {"path": os.path.realpath(self.path), "target": self.target, "fixed": self.fixed,
                "swept": self.swept, "cases": self.cases, "costs": self.costs, "seeds": self.seeds,
                "base_seed": self.base_seed, "study": self.study, "plot": self.plot,
                "strategy": self.strategy,
                **{k: v for k, v in (("precision", self.precision), ("max_seeds", self.max_seeds),
                                     ("max_steps", self.max_steps), ("baseline", self.baseline))
                   if v}}


# -- loading and validation ---------------------------------------------------------------


def load_config(path: str, overrides: dict | None = None, *, sets=(),
                seeds: int | None = None) -> SweepConfig:
    """Read and validate a study file; raises BadInput naming the key and the fix.

    ``sets`` and ``seeds`` are the command line's edits (``smpvm.studies.edits``).
    """
    from .races import read_study
    data = read_study(path)
    if sets or seeds is not None:
        from .edits import apply_sets
        data = apply_sets(data, sets, seeds)
    for table in ("study", "model", "run", "costs", "sweep", "plot"):
        t = data.get(table)
        for k in ("seeds", "seed"):
            if isinstance(t, dict) and k in t and not (table == "sweep" and isinstance(t[k], list)):
                raise BadInput(f"{path}: {k} is a top-level key, not part of [{table}]: move "
                               f"`{k} = {t[k]}` above the first [table] (in TOML, keys after a "
                               f"[table] header belong to it)")
    unknown = sorted(set(data) - TOP_LEVEL)
    if unknown:
        raise BadInput(f"{path}: unknown key(s) {', '.join(unknown)}; known: "
                       f"{', '.join(sorted(TOP_LEVEL))}")
    model = _table(data, "model", path, required=True)
    target = model.get("target")
    if not isinstance(target, str):
        raise BadInput(f"{path}: [model].target must be a string like "
                       f"\"models/freebsd/page_locks.py::hold_wire\"")
    stray = sorted(set(model) - {"target", "variant"})
    if stray:
        raise BadInput(f"{path}: [model] has unknown key(s) {', '.join(stray)}; it takes target "
                       f"and variant (fixed parameters go in [run], swept ones in [sweep])")
    from ..scenario import load_target, resolve_target
    target = resolve_target(target, path)
    try:
        scn = load_target(target, fresh=True)
    except BadInput as e:
        raise BadInput(f"{path}: [model].target: {e}") from None
    fixed = dict(_table(data, "run", path))
    for k in ("seeds", "seed"):
        if k in fixed:
            raise BadInput(f"{path}: {k} is a top-level key, not a [run] parameter: move "
                           f"`{k} = {fixed[k]}` above the first [table]")
    if "variant" in model:
        if not isinstance(model["variant"], str) or model["variant"] not in scn.variants:
            raise BadInput(f"{path}: [model].variant: scenario {scn.name} has no variant "
                           f"{model['variant']!r}; choose from {', '.join(scn.variants)}")
        fixed["variant"] = model["variant"]
    swept = dict(_table(data, "sweep", path))
    for k, v in swept.items():
        if k in ("seeds", "seed") and not isinstance(v, list):
            raise BadInput(f"{path}: {k} is a top-level key: move `{k} = {v}` above the "
                           f"first [table] (in TOML, keys after [sweep] belong to it)")
        if isinstance(v, list) and not v:
            raise BadInput(f"{path}: [sweep].{k} must be a non-empty list: list the values "
                           f"to sweep, or remove the key")
        if not isinstance(v, list):
            raise BadInput(f"{path}: [sweep].{k} must be a non-empty list, got {v!r}; write "
                           f"`{k} = [{_toml(v)}]` to hold it fixed, or move it to [run]")
    for k, v in fixed.items():
        if isinstance(v, (list, dict)):
            raise BadInput(f"{path}: [run].{k} must be a single value, got {v!r}; "
                           f"move it to [sweep] to sweep it")
    both = sorted(set(fixed) & set(swept))
    if both:
        where = "[model]" if both == ["variant"] and "variant" in model else "[run]"
        raise BadInput(f"{path}: {', '.join(both)} set in both {where} and [sweep]; keep one")
    cases = _cases(data, path, swept)
    if overrides:
        fixed.update(overrides)
    types = dict(scn.params)
    for k in list(fixed) + list(swept):
        values = swept[k] if k in swept else [fixed[k]]
        where = f"[sweep].{k}" if k in swept else f"[run].{k}"
        _check_param(path, where, k, values, scn, types)
    for label, overrides in cases.items():
        for k, v in overrides.items():
            _check_param(path, f"[[case]] {label!r}: {k}", k, [v], scn, types)
    costs = dict(_table(data, "costs", path))
    from ..costs import Costs
    try:
        Costs().override(**costs)
    except ValueError as e:
        raise BadInput(f"{path}: [costs]: {e}") from None
    seeds = data.get("seeds", 3)
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise BadInput(f"{path}: seeds must be a whole number >= 1 (runs per point), got {seeds!r}")
    base_seed = data.get("seed", 0)
    if not isinstance(base_seed, int) or isinstance(base_seed, bool):
        raise BadInput(f"{path}: seed must be a whole number, got {base_seed!r}")
    plot = dict(_table(data, "plot", path))
    _check_plot(path, plot, dict(swept, **({"case": list(cases)} if cases else {})))
    study = dict(_table(data, "study", path))
    _check_theory_inputs(path, plot, scn, fixed, swept, cases)
    strategy = fixed.pop("strategy", "timed")
    if strategy != "timed":
        raise BadInput(f"{path}: [run].strategy: sweeps measure time, so only \"timed\" is "
                       f"supported, got {strategy!r}")
    precision, max_seeds, max_steps = _run_length(path, data, seeds)
    baseline = data.get("baseline")
    shape = SweepConfig(path=path, target=target, fixed=fixed, swept=swept, cases=cases,
                        costs=costs, seeds=seeds, base_seed=base_seed, study={}, plot={})
    most = shape.run_count(max(seeds, max_seeds))
    if most > MAX_RUNS:
        raise BadInput(f"{path}: this study asks for up to {most:,} runs; a sweep holds at "
                       f"most {MAX_RUNS:,} (lower seeds or max_seeds, or split the sweep)")
    if baseline is not None:
        designs = list(cases) if cases else swept.get(plot.get("lines"), [])
        if not isinstance(baseline, str) or baseline not in [str(d) for d in designs]:
            where = ("a [[case]] label" if cases else
                     "a value of the swept [plot].lines parameter" if designs else None)
            if where is None:
                raise BadInput(f"{path}: baseline needs [[case]] designs, or a [plot].lines "
                               f"parameter that is swept, to compare with")
            raise BadInput(f"{path}: baseline must be {where} ({', '.join(map(str, designs))}), "
                           f"got {baseline!r}")
    return SweepConfig(path=path, target=target, fixed=fixed, swept=swept, cases=cases, costs=costs,
                       seeds=seeds, base_seed=base_seed, study=study, plot=plot,
                       strategy=strategy, param_types=types, precision=precision,
                       max_seeds=max_seeds, max_steps=max_steps, baseline=baseline)


def _run_length(path, data, seeds):
    """``precision``, ``max_seeds`` and ``max_steps``, checked."""
    precision = data.get("precision")
    if precision is not None and (isinstance(precision, bool)
                                  or not isinstance(precision, (int, float))
                                  or not 0 < precision < 1):
        raise BadInput(f"{path}: precision must be a relative half-width between 0 and 1 "
                       f"(0.01 for +-1%), got {precision!r}")
    max_seeds = data.get("max_seeds", 10 * seeds if precision else 0)
    if "max_seeds" in data and precision is None:
        raise BadInput(f"{path}: max_seeds bounds the runs that precision asks for: "
                       f"set precision too, or remove max_seeds")
    if precision is not None and (not isinstance(max_seeds, int) or isinstance(max_seeds, bool)
                                  or max_seeds < max(2, seeds)):
        raise BadInput(f"{path}: max_seeds must be a whole number >= seeds (and >= 2), "
                       f"got {max_seeds!r}")
    if precision is not None and seeds < 2:
        raise BadInput(f"{path}: precision needs seeds >= 2 to start from (one run has no "
                       f"confidence interval)")
    from .races import study_max_steps
    max_steps = study_max_steps(path, data.get("max_steps"))
    return (float(precision) if precision is not None else None), max_seeds, max_steps


def _cases(data, path, swept) -> dict:
    """``[[case]]`` tables: label -> overrides (a label defaults to ``case N``)."""
    raw = data.get("case", [])
    if not isinstance(raw, list) or not all(isinstance(c, dict) for c in raw):
        raise BadInput(f"{path}: case must be an array of tables: write each as [[case]]")
    cases = {}
    for i, c in enumerate(raw, 1):
        c = dict(c)
        label = c.pop("label", f"case {i}")
        if not isinstance(label, str) or label in cases:
            raise BadInput(f"{path}: [[case]] number {i}: label must be a unique string, got {label!r}")
        clash = sorted(set(c) & set(swept))
        if clash:
            raise BadInput(f"{path}: [[case]] {label!r} sets swept {', '.join(clash)}; a case "
                           f"may only hold values the sweep does not vary")
        for k, v in c.items():
            if isinstance(v, (list, dict)):
                raise BadInput(f"{path}: [[case]] {label!r}: {k} must be a single value, got {v!r}")
        cases[label] = c
    return cases


def _table(data, name, path, required=False) -> dict:
    t = data.get(name)
    if t is None:
        if required:
            raise BadInput(f"{path}: missing [{name}] table")
        return {}
    if not isinstance(t, dict):
        raise BadInput(f"{path}: {name} must be a table ([{name}]), got {t!r}")
    return t


def _check_param(path, where, key, values, scn, types) -> None:
    if key == "variant":
        for v in values:
            if v not in scn.variants:
                raise BadInput(f"{path}: {where}: scenario {scn.name} has no variant {v!r}; "
                               f"choose from {', '.join(scn.variants)}")
        return
    if key in ("cpus", "strategy") and key not in types:
        if key == "cpus":
            for v in values:
                from ..scenario import MAX_CPUS
                if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= MAX_CPUS:
                    raise BadInput(f"{path}: {where} must hold whole numbers >= 1 (at most "
                                   f"{MAX_CPUS}), got {v!r}")
        return
    if key not in types:
        known = ", ".join(sorted(types)) or "none"
        raise BadInput(f"{path}: {where}: scenario {scn.name} has no parameter {key!r} "
                       f"(known: {known}, plus cpus and variant)")
    want = types[key]
    for v in values:
        ok = (isinstance(v, bool) if isinstance(want, bool)
              else isinstance(v, int) and not isinstance(v, bool) if isinstance(want, int)
              else isinstance(v, (int, float)) and not isinstance(v, bool) if isinstance(want, float)
              else isinstance(v, str))
        if not ok:
            kind = type(want).__name__
            shown = "a list of " + kind + "s" if where.startswith("[sweep]") else "a " + kind
            raise BadInput(f"{path}: {where} must be {shown}, got {v!r}")


def _check_plot(path, plot, swept) -> None:
    if not plot:
        return
    allowed = {"x", "y", "lines", "theory", "logx", "logy", "title"}
    unknown = sorted(set(plot) - allowed)
    if unknown:
        raise BadInput(f"{path}: [plot] has unknown key(s) {', '.join(unknown)}; "
                       f"known: {', '.join(sorted(allowed))}")
    x = plot.get("x")
    if x not in swept:
        raise BadInput(f"{path}: [plot].x must name a swept parameter "
                       f"({', '.join(swept) or 'none swept'}), got {x!r}")
    y = plot.get("y")
    if isinstance(y, str):
        plot["y"] = [y]
    elif not (isinstance(y, list) and y and all(isinstance(s, str) for s in y)):
        raise BadInput(f"{path}: [plot].y must be a metric name or a list of them, got {y!r}")
    lines = plot.get("lines")
    if lines is not None and lines not in swept:
        raise BadInput(f"{path}: [plot].lines must name a swept parameter, got {lines!r}")
    theory = plot.get("theory")
    if theory is not None:
        from .predictions import THEORIES
        if theory not in THEORIES:
            raise BadInput(f"{path}: [plot].theory must be one of {', '.join(sorted(THEORIES))}, "
                           f"got {theory!r}")


def _check_theory_inputs(path, plot, scn, fixed, swept, cases) -> None:
    """A theory must be computable from every point's parameters: check one now."""
    name = plot.get("theory")
    if not name:
        return
    from .predictions import THEORIES
    point = dict(scn.params)
    point.update(fixed)
    for overrides in list(cases.values())[:1]:
        point.update(overrides)
    point.update({k: v[0] for k, v in swept.items()})
    try:
        THEORIES[name](point, {})
    except KeyError as e:
        raise BadInput(f"{path}: [plot].theory {name!r} needs parameter {e.args[0]!r}, which "
                       f"{scn.name} does not have; drop the theory or sweep a scenario that "
                       f"has it") from None
    except (TypeError, ValueError) as e:
        raise BadInput(f"{path}: [plot].theory {name!r} cannot use these parameters: {e}") from None


def _toml(v) -> str:
    return json.dumps(v) if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else str(v)


# -- running ------------------------------------------------------------------------------


def run_one(spec: dict) -> dict:
    """Run one (point, seed) and return its row: parameters, seed and flat metrics.

    Module-level and picklable so any executor can run it.
    """
    from ..scenario import run_scenario
    from ..scenario import load_target
    from ..search.failon import cut_at_bound
    scn = load_target(spec["target"])
    params = dict(spec["params"])
    params.pop("case", None)
    variant = params.pop("variant", None)
    cpus = params.pop("cpus", None) if "cpus" not in scn.params else None
    for k, v in spec["costs"].items():
        params[f"costs.{k}"] = v
    # a timed run is as long as the work asked for: room, not the exploration's cut
    bound = spec.get("max_steps") or max(scn.max_steps, TIMED_STEP_BOUND)
    r = run_scenario(scn, variant=variant, params=params, cpus=cpus, seed=spec["seed"],
                     witness=False, max_steps=bound)
    hit = cut_at_bound(r)
    metrics = flat_metrics(r)
    if hit:
        metrics["limit.max_steps"] = bound
    return {"run": spec["run"], "point": spec["point"], "seed": spec["seed"],
            "metrics": metrics}


def flat_metrics(r) -> dict:
    """A run's numbers as flat names: model metrics, ``lock.<class>.<stat>``, ``irq.<src>.<stat>``."""
    out = {"time_ns": r.time_ns, "steps": r.steps, "violations": len(r.violations)}
    for k, v in r.metrics.items():
        if isinstance(v, (int, float)):
            out[k] = v
    for s in r.lockstat:
        for stat in ("acquisitions", "contended", "wait_mean_ns", "wait_p50_ns", "wait_p99_ns",
                     "wait_max_ns", "hold_mean_ns", "hold_p99_ns", "utilization", "bounces"):
            out[f"lock.{s.name}.{stat}"] = getattr(s, stat)
    for name, st in r.interrupts.items():
        for stat, v in st.items():
            out[f"irq.{name}.{stat}"] = v
    return out


def run_specs(cfg: SweepConfig, seeds: dict | None = None):
    """The runs of every point, made as they are asked for: seeds 0..n-1 of each
    (``seeds``: point -> n, default all).  A run names its model by absolute path, so
    workers elsewhere (a Dask cluster) load the same file."""
    path, name = cfg.target.rsplit("::", 1)
    target = f"{os.path.abspath(path)}::{name}"
    for i, point in enumerate(cfg.points()):
        n = cfg.seeds if seeds is None else seeds.get(i, 0)
        for j in range(n):
            spec = {"run": i * cfg.stride + j, "point": i, "seed": cfg.base_seed + j,
                    "target": target, "params": point, "costs": cfg.costs}
            if cfg.max_steps:
                spec["max_steps"] = cfg.max_steps
            yield spec


class RunsCsv:
    """``runs.csv``, appended row by row; a new metric widens the header (rewriting once)."""

    def __init__(self, path: str, param_names: list[str]):
        self.path = path
        self.param_names = param_names
        self.metric_names: list[str] = []
        self.rows: dict[int, dict] = {}
        if os.path.exists(path):
            self._read()

    def _read(self) -> None:
        with open(self.path, "rb") as fp:
            data = fp.read()
        # a last line without its newline was cut short (at any byte): not a finished run
        whole = data[:data.rfind(b"\n") + 1]
        try:
            text = whole.decode("utf-8")
        except UnicodeDecodeError:
            raise BadInput(f"{self.path} is not a sweep's runs.csv (not UTF-8 text); use "
                           f"another --out") from None
        if not text:  # not even the header was finished
            self._rewrite()
            return
        with io.StringIO(text, newline="") as fp:
            reader = csv.DictReader(fp)
            fields = reader.fieldnames or []
            fixed = ["run", "point", "seed"] + self.param_names
            if fields[:len(fixed)] != fixed:
                raise BadInput(f"{self.path} was written by a different sweep (columns differ); "
                               f"use another --out or drop --resume")
            self.metric_names = fields[len(fixed):]
            torn = 0
            for row in reader:
                # a line cut short by an interruption has missing cells: not a finished run
                if None in row.values() or None in row or not str(row.get("run", "")).isdigit():
                    torn += 1
                    continue
                self.rows[int(row["run"])] = row
        if torn or len(whole) < len(data):
            self._rewrite()

    def header(self) -> list[str]:
        return ["run", "point", "seed"] + self.param_names + self.metric_names

    def add(self, row: dict, params: dict) -> None:
        new = [k for k in row["metrics"] if k not in self.metric_names]
        flat = {"run": row["run"], "point": row["point"], "seed": row["seed"]}
        flat.update({k: params.get(k, "") for k in self.param_names})
        flat.update({k: _fmt(v) for k, v in row["metrics"].items()})
        self.rows[row["run"]] = flat
        if new or not os.path.exists(self.path):
            self.metric_names += sorted(new)
            self._rewrite()
            return
        with open(self.path, "a", newline="", encoding="utf-8") as fp:
            csv.DictWriter(fp, self.header(), lineterminator="\n").writerow(flat)

    def _rewrite(self) -> None:
        from ..search.manifest import whole_file
        with whole_file(self.path, newline="", encoding="utf-8") as fp:
            w = csv.DictWriter(fp, self.header(), lineterminator="\n")
            w.writeheader()
            for k in sorted(self.rows):
                w.writerow(self.rows[k])


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def run_sweep(cfg: SweepConfig, out_dir: str, *, workers: int | None = None,
              dask: str | None = None, resume: bool = False, progress=None) -> dict:
    """Run every (point, seed) not already in ``out_dir/runs.csv``; write all outputs.

    Returns a summary dict (for ``--json``).  ``progress(done, total)`` is
    called as runs finish.
    """
    import datetime

    from .. import __version__
    from ..search.executors import describe
    from .summary import write_plots, write_summary

    os.makedirs(out_dir, exist_ok=True)
    manifest_path = os.path.join(out_dir, "manifest.json")
    runs_path = os.path.join(out_dir, "runs.csv")
    resolved = cfg.resolved()
    if resume and os.path.exists(manifest_path):
        with open(manifest_path, encoding="utf-8") as fp:
            try:
                old = json.load(fp)
            except json.JSONDecodeError:
                raise BadInput(f"{manifest_path} is not valid JSON; use another --out") from None
        if old.get("config") != json.loads(json.dumps(resolved)):
            raise BadInput(f"{out_dir} holds a sweep with a different configuration; "
                           f"use another --out or drop --resume")
    elif not resume:
        for stale in (runs_path, os.path.join(out_dir, "summary.csv")):
            if os.path.exists(stale):
                os.remove(stale)
    case_keys = [k for c in cfg.cases.values() for k in c]
    params_names = (["case"] if cfg.cases else []) + list(cfg.swept) + [
        k for k in dict.fromkeys(list(cfg.fixed) + case_keys) if k not in cfg.swept]
    table = RunsCsv(runs_path, params_names)
    total = cfg.run_count()
    specs = (s for s in run_specs(cfg) if s["run"] not in table.rows)
    if cfg.precision:  # runs a resumed precision sweep had added beyond the first seeds
        missing = sum(1 for s in run_specs(cfg) if s["run"] not in table.rows)
        total = max(total, len(table.rows) + missing)
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    _write_manifest(manifest_path, resolved, __version__, started, None, total,
                    describe(workers, dask), cfg)
    t0 = time.perf_counter()
    first = len(table.rows)
    if progress:
        progress(min(first, total), total)
    lost: list[dict] = []
    counter = {"total": total}

    def on_row(spec, row):
        table.add(row, spec["params"])
        if progress:
            progress(len(table.rows), max(counter["total"], len(table.rows)))

    start_s = 0.0  # bringing the executors up: paid once, not by the runs
    while True:
        runner = Runner(workers, dask, on_row, lost, models=[cfg.target.rsplit("::", 1)[0]])
        runner.run(specs)
        start_s += runner.start_s
        # a point short of its precision gets more seeds (twice as many, up to the bound)
        more = [s for s in (_more_seeds(cfg, table) if cfg.precision else [])
                if s["run"] not in table.rows]
        if not more or lost:
            break
        counter["total"] += len(more)
        specs = iter(more)
    ran = len(table.rows) - first
    total = counter["total"]
    total = max(total, len(table.rows))
    elapsed = time.perf_counter() - t0
    ended = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    _write_manifest(manifest_path, resolved, __version__, started, ended, total,
                    describe(workers, dask), cfg)
    points = cfg.points()
    summary_path = os.path.join(out_dir, "summary.csv")
    summary = write_summary(summary_path, cfg, points, table)
    pngs, missing = write_plots(out_dir, cfg, summary)
    files = [runs_path, summary_path, manifest_path]
    comparisons = []
    if cfg.baseline:
        from .compare import compare, write_comparisons
        comparisons = compare(cfg, points, table)
        files.append(write_comparisons(os.path.join(out_dir, "comparisons.csv"), comparisons))
    violations = sum(int(float(r.get("violations", 0) or 0)) for r in table.rows.values())
    limited = sum(1 for r in table.rows.values() if r.get("limit.max_steps") not in (None, ""))
    return {"out": out_dir, "points": len(points), "runs": total, "ran": ran, "lost_runs": lost,
            "runs_per_second": ran / (elapsed - start_s) if elapsed > start_s else None,
            "elapsed_s": round(elapsed, 3), "executor_start_s": round(start_s, 3),
            "violations": violations - limited, "limited_runs": limited,
            "unplotted_metrics": missing, "limits": [{"point": r["point"], "limit": r["limit"]} for r in summary
                       if r.get("limit")],
            "table": summary, "comparisons": comparisons, "files": files + pngs}


def _more_seeds(cfg, table) -> list[dict]:
    """Runs for the points whose plotted metrics are not yet within ``precision``."""
    from .summary import point_rows, relative_half_width
    by_point = point_rows(table)
    want = {}
    for i in range(len(cfg.points())):
        rows = by_point.get(i, [])
        if len(rows) >= cfg.max_seeds:
            continue
        hw = relative_half_width(rows, cfg.plot.get("y", []))
        if hw is not None and hw > cfg.precision:
            want[i] = min(cfg.max_seeds, 2 * len(rows))
    return run_specs(cfg, want) if want else []


def _wait_alive(ex, fut) -> None:
    """Wait for ``fut``; on a cluster, check every few seconds that it is still there."""
    import concurrent.futures as cf

    from ..search.explore import HEALTH_CHECK_S
    check = getattr(ex, "check_alive", None)
    while check is not None and not fut.done():
        cf.wait([fut], timeout=HEALTH_CHECK_S)
        if not fut.done():
            check()


#: Times a run is tried before it is reported as lost (its worker died every time).
RUN_ATTEMPTS = 3
#: Most runs a sweep may have: its rows are held in memory to summarise them.
MAX_RUNS = 1_000_000


class Runner:
    """Runs specs on an executor, a bounded window at a time, rows handed over as they come.

    A worker that dies (kill -9, out of memory, a crashing extension) breaks a
    process pool: the runs it held are run again on a new one, each alone, so
    the run that kills its worker every time is found, tried ``RUN_ATTEMPTS``
    times and reported as lost -- never dropped, never the sweep's end.
    """

    def __init__(self, workers, dask, on_row, lost: list, models=()):
        self.workers = workers
        self.dask = dask
        #: The model files the runs load (a Dask cluster's workers are given them).
        self.models = list(models)
        self.on_row = on_row
        #: Seconds spent bringing executors up (Dask's import, a local cluster's processes).
        self.start_s = 0.0
        #: Lost runs: {"run": n, "error": "..."}.
        self.lost = lost
        self.inline = (workers or 0) == 1 and not dask
        self.window = 1 if self.inline else 4 * (workers or os.cpu_count() or 1)
        #: Runs that were out when a worker died, to run again alone: run -> (spec, tries).
        self.suspects: dict[int, list] = {}

    def run(self, specs) -> None:
        from collections import deque
        again = deque()  # runs to make again, before any new one
        specs = iter(specs)
        while self._feed(specs, again):
            pass  # the executor broke: a new one takes over

    def _next(self, specs, again):
        if again:
            return again.popleft()
        return next(specs, None)

    def _feed(self, specs, again) -> bool:
        """Run specs until done; True when the executor broke and must be replaced."""
        import concurrent.futures as cf
        from collections import deque

        from ..search.executors import make_executor, remote_cluster
        from ..violations import ModelError
        with make_executor(self.workers, self.dask, self.models) as ex:
            self.start_s += ex.start_s
            if remote_cluster(self.dask) and not self.workers:
                self.window = 4 * ex.width()  # a cluster's own size, --workers not given
            inflight = deque()
            while True:
                while len(inflight) < self.window:
                    if again and again[0]["run"] in self.suspects and inflight:
                        break  # a run that was out when a worker died runs alone
                    spec = self._next(specs, again)
                    if spec is None:
                        break
                    try:
                        inflight.append((spec, ex.submit(run_one, spec)))
                    except cf.BrokenExecutor:
                        # a worker died since the last look: this run was not sent; the
                        # runs out learn it from their futures, below
                        again.appendleft(spec)
                        if not inflight:
                            return True
                        break
                    if spec["run"] in self.suspects:
                        break
                if not inflight:
                    return False
                spec, fut = inflight.popleft()
                _wait_alive(ex, fut)
                try:
                    row = fut.result()
                except (ModelError, BadInput):
                    raise
                except Exception as e:
                    if self.inline:
                        raise
                    if not isinstance(e, cf.BrokenExecutor):  # one run's worker died
                        self._retry(spec, e, again, alone=True)
                        continue
                    # the pool is gone with every run it held: run them again, each alone
                    self._retry(spec, e, again, alone=not inflight)
                    for other, f in inflight:
                        f.cancel()
                        self.suspects.setdefault(other["run"], [other, 0])
                        again.append(other)
                    return True
                self.suspects.pop(spec["run"], None)
                self.on_row(spec, row)

    def _retry(self, spec, error, again, alone: bool) -> None:
        """Run ``spec`` again; when it broke a worker on its own often enough, lose it."""
        entry = self.suspects.setdefault(spec["run"], [spec, 0])
        if alone:
            entry[1] += 1
        if entry[1] >= RUN_ATTEMPTS:
            self.suspects.pop(spec["run"])
            self.lost.append({"run": spec["run"], "point": spec["point"], "seed": spec["seed"],
                              "error": f"{type(error).__name__}: {error}"})
        else:
            again.appendleft(spec)


def _write_manifest(path, resolved, version, started, ended, total, where, cfg) -> None:
    doc = {"schema_version": 1, "smpvm_version": version, "config": resolved, "runs": total,
           "seeds": [cfg.base_seed + j for j in range(cfg.seeds)], "executor": where,
           "started": started, "ended": ended}
    from ..search.manifest import write_manifest
    write_manifest(path, doc)
