"""Studies that are not parameter sweeps: race reproduction and the lock-order survey.

A study file with ``[study].kind = "races"`` lists race scenarios
(``[[race]]``: a target, its buggy variants, its fixed ones).  For every buggy
variant and every strategy it explores ``runs`` schedules and reports the
failing-run rate with a Wilson 95% interval, the run of the first failure and
the bug depth after shrinking; for every fixed variant, "0 failures in N
runs", and whether the exhaustive search covered its whole space.
``fail_on`` / ``ignore`` (lists of violation kinds, for the study or per
race) choose which findings make a run fail, as ``explore --fail-on`` does:
a race searched for its deadlock is not cut short by the reversal witness
reports on the way.  ``max_steps`` (for the study, or per race or model)
bounds every run's steps, as ``--max-steps`` does, for models whose runs are
long but finite.

``kind = "lor"`` lists models (``[[model]]``: a target, its old variants, its
fixed ones); every variant runs ``runs`` times under random schedules, the
witness graphs of old and of fixed variants are merged into two pictures
side by side, and every reversal is listed with its sites.

Like sweeps, these files are data: validated, never executed.
"""

from __future__ import annotations

import csv
import os
import tomllib

from ..violations import BadInput

#: Strategy labels of the race study -> explore arguments.
STRATEGIES = {"random": {"strategy": "random"},
              "pct-d1": {"strategy": "pct", "depth": 1},
              "pct-d2": {"strategy": "pct", "depth": 2},
              "pct-d3": {"strategy": "pct", "depth": 3},
              "dfs": {"strategy": "dfs"}}


def study_kind(path: str) -> str:
    """``[study].kind`` of a study file ("sweep" when absent)."""
    data = read_study(path)
    kind = data.get("study", {}).get("kind", "sweep") if isinstance(data.get("study"), dict) else "sweep"
    if kind not in ("sweep", "races", "lor"):
        raise BadInput(f"{path}: [study].kind must be \"sweep\", \"races\" or \"lor\", got {kind!r}")
    return kind


def read_study(path: str) -> dict:
    """A study file's TOML, parsed; bad input for a file that is missing or not TOML."""
    try:
        with open(path, "rb") as fp:
            return tomllib.load(fp)
    except FileNotFoundError:
        raise BadInput(f"no study file {path!r}") from None
    except OSError as e:
        raise BadInput(f"cannot read study file {path!r}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise BadInput(f"{path}: not a TOML study file (not UTF-8 text)") from None
    except tomllib.TOMLDecodeError as e:
        raise BadInput(f"{path}: malformed TOML: {e}") from None


def load_study(path: str, kind: str, runs_override: int | None = None) -> dict:
    """Validate a races/lor study; returns its resolved configuration."""
    data = read_study(path)
    table = "race" if kind == "races" else "model"
    allowed = {"study", table, "runs", "dfs_runs", "seed", "strategies", "params", "max_steps"}
    kinds_keys = ("fail_on", "ignore") if kind == "races" else ()
    allowed |= set(kinds_keys)
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise BadInput(f"{path}: unknown key(s) {', '.join(unknown)} for a {kind} study; "
                       f"known: {', '.join(sorted(allowed))}")
    runs = runs_override or data.get("runs", 500)
    seed = data.get("seed", 1)
    study_max_steps(path, data.get("max_steps"))
    for name, v in (("runs", runs), ("seed", seed)):
        if not isinstance(v, int) or isinstance(v, bool) or v < (1 if name == "runs" else 0):
            raise BadInput(f"{path}: {name} must be a whole number{' >= 1' if name == 'runs' else ''}, got {v!r}")
    groups = ("buggy", "fixed") if kind == "races" else ("old", "fixed")
    entries = data.get(table)
    if not isinstance(entries, list) or not entries:
        raise BadInput(f"{path}: list the scenarios as [[{table}]] tables with target, "
                       f"{'buggy' if kind == 'races' else 'old'} and fixed variants")
    from ..scenario import load_target
    resolved = []
    for i, e in enumerate(entries, 1):
        stray = sorted(set(e) - {"target", "params", "max_steps", *groups, *kinds_keys})
        if stray:
            known = ", ".join(["target", *groups, "params", "max_steps", *kinds_keys])
            raise BadInput(f"{path}: [[{table}]] number {i} has unknown key(s) "
                           f"{', '.join(stray)}; known: {known}")
        target = e.get("target")
        if not isinstance(target, str):
            raise BadInput(f"{path}: [[{table}]] number {i} needs target = \"path.py::scenario\"")
        try:
            scn = load_target(_near(target, path), fresh=True)
        except BadInput as err:
            raise BadInput(f"{path}: [[{table}]] number {i}: {err}") from None
        entry = {"target": _near(target, path), "params": dict(e.get("params", {}))}
        for key in kinds_keys:  # which violation kinds count, per race or for the study
            entry[key] = _kinds_option(path, key, e.get(key, data.get(key)))
        entry["max_steps"] = study_max_steps(f"{path}: [[{table}]] number {i}",
                                             e.get("max_steps", data.get("max_steps")))
        for g in groups:
            vs = e.get(g, [])
            if not isinstance(vs, list) or not all(isinstance(v, str) for v in vs):
                raise BadInput(f"{path}: [[{table}]] {target}: {g} must be a list of variant names")
            try:
                for v in vs:
                    scn.check_variant(v)
            except BadInput as err:
                raise BadInput(f"{path}: [[{table}]] {target}: {g}: {err}") from None
            entry[g] = vs
        try:
            scn.resolve_params(entry["params"])
        except BadInput as err:
            raise BadInput(f"{path}: [[{table}]] {target}: params: {err}") from None
        resolved.append(entry)
    dfs_runs = data.get("dfs_runs", 5000)
    if not isinstance(dfs_runs, int) or isinstance(dfs_runs, bool) or dfs_runs < 1:
        raise BadInput(f"{path}: dfs_runs must be a whole number >= 1, got {dfs_runs!r}")
    strategies = data.get("strategies", list(STRATEGIES))
    bad = [s for s in strategies if s not in STRATEGIES]
    if kind == "races" and bad:
        raise BadInput(f"{path}: unknown strategies {', '.join(bad)}; choose from {', '.join(STRATEGIES)}")
    return {"kind": kind, "path": path, "study": data.get("study", {}), "runs": runs,
            "seed": seed, "entries": resolved, "strategies": strategies, "dfs_runs": dfs_runs}


def _near(target: str, path: str) -> str:
    from ..scenario import resolve_target
    return resolve_target(target, path)


# -- race reproduction --------------------------------------------------------------------


#: Columns of races.csv; ``complete`` is false for a row whose exploration was cut short.
RACE_FIELDS = ["target", "variant", "role", "strategy", "runs", "failing_runs", "rate",
               "ci_low", "ci_high", "first_failure_run", "bug_depth", "exhausted", "verdict",
               "complete"]


def run_races(cfg: dict, out_dir: str, workers: int | None = None, dask: str | None = None,
              resume: bool = False) -> dict:
    """Explore every (scenario, variant, strategy) of a race study; write races.csv.

    races.csv is rewritten (whole, atomically) after every exploration, so an
    interrupted study keeps what it finished; its last row may say
    ``complete=false``.  With ``resume`` the complete rows are kept and the
    rest explored again, each continuing its own ``runs/`` directory.
    """
    from ..search.explore import explore
    from .theory import wilson_interval

    os.makedirs(out_dir, exist_ok=True)
    table = os.path.join(out_dir, "races.csv")
    done = _finished_rows(out_dir, cfg, table) if resume else {}
    _manifest(out_dir, cfg, ended=False)
    plan = []
    for e in cfg["entries"]:
        plan += [(e, v, label, "buggy") for v in e["buggy"] for label in cfg["strategies"]]
        plan += [(e, v, label, "fixed") for v in e["fixed"] for label in ("portfolio", "dfs")]
    rows, interrupted = [], False
    for e, variant, label, role in plan:
        key = (e["target"], variant, role, label)
        if key in done:
            rows.append(done[key])
            continue
        try:
            row = _race_row(explore, wilson_interval, cfg, e, variant, label, role, out_dir,
                            workers, dask, resume)
        except KeyboardInterrupt:
            interrupted = True
            break
        interrupted = row.pop("interrupted")
        rows.append(row)
        _write_rows(table, rows)
        if interrupted:
            break
    _write_rows(table, rows)
    png = os.path.join(out_dir, "races.png")
    _plot_races(rows, png)
    if not interrupted:
        _manifest(out_dir, cfg, ended=True)
    failing_fixed = [r for r in rows if r["role"] == "fixed" and r["failing_runs"]]
    return {"out": out_dir, "rows": len(rows), "files": [table, png,
            os.path.join(out_dir, "manifest.json")], "fixed_failures": len(failing_fixed),
            "table": rows, "interrupted": interrupted,
            "incomplete_rows": sum(1 for r in rows if not r["complete"]),
            "planned_rows": len(plan)}


def _write_rows(path, rows) -> None:
    from ..search.manifest import whole_file
    with whole_file(path, newline="", encoding="utf-8") as fp:
        w = csv.DictWriter(fp, RACE_FIELDS, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in RACE_FIELDS})


def _finished_rows(out_dir, cfg, table) -> dict:
    """The complete rows of an earlier session of this study, by (target, variant, role,
    strategy); refuses a directory that holds another study."""
    import json
    try:
        with open(os.path.join(out_dir, "manifest.json"), encoding="utf-8") as fp:
            saved = json.load(fp)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        raise BadInput(f"--resume: {out_dir}/manifest.json is unreadable; use another "
                       f"--out") from None
    if not isinstance(saved, dict) or saved.get("config") != json.loads(
            json.dumps(cfg, default=str)):
        raise BadInput(f"--resume: {out_dir} holds a study with a different configuration; "
                       f"use another --out or drop --resume")
    try:
        with open(table, newline="", encoding="utf-8") as fp:
            found = list(csv.DictReader(fp))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, csv.Error):
        raise BadInput(f"--resume: {table} is unreadable; use another --out") from None
    out = {}
    for r in found:
        if r.get("complete") != "True":
            continue
        try:
            row = {**r, "runs": int(r["runs"]), "failing_runs": int(r["failing_runs"]),
                   "rate": float(r["rate"]), "ci_low": float(r["ci_low"]),
                   "ci_high": float(r["ci_high"]), "exhausted": r["exhausted"] == "True",
                   "complete": True,
                   "first_failure_run": int(r["first_failure_run"])
                   if r["first_failure_run"] else None,
                   "bug_depth": int(r["bug_depth"]) if r["bug_depth"] else None}
        except (KeyError, ValueError, TypeError):
            continue  # not a row this smpvm wrote: explore it again
        out[(r["target"], r["variant"], r["role"], r["strategy"])] = row
    return out


def _kinds_option(path, key, value) -> str | None:
    """A study's ``fail_on``/``ignore``: a list of kinds (or one comma-separated string)."""
    from ..search.failon import parse_kinds
    if value is None:
        return None
    if isinstance(value, list) and all(isinstance(k, str) for k in value):
        value = ",".join(value)
    if not isinstance(value, str):
        raise BadInput(f"{path}: {key} must be a list of violation kinds, got {value!r}")
    try:
        return ",".join(parse_kinds(value, key))
    except BadInput as err:
        raise BadInput(f"{path}: {err}") from None


def study_max_steps(where, value) -> int | None:
    """A study's (or one entry's) ``max_steps``, checked: a whole number >= 1, or absent."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise BadInput(f"{where}: max_steps must be a whole number >= 1, got {value!r}")
    return value


def _race_row(explore, wilson, cfg, e, variant, label, role, out_dir, workers, dask,
              resume=False) -> dict:
    args = dict(STRATEGIES.get(label, {"strategy": label}))
    is_dfs = args["strategy"] == "dfs"
    name = e["target"].split("::")[-1]
    out = os.path.join(out_dir, "runs", f"{name}-{variant}-{label}")
    if is_dfs:  # an interrupted search goes on from its saved state; any other starts over
        from ..search.explore import dfs_state_saved
        resume = resume and dfs_state_saved(out)
    # dfs searches a buggy variant only until its first failure (that is its figure), and
    # any variant within the study's run budget; "exhausted" says whether it covered all.
    rep = explore(e["target"], variant=variant, params=e["params"], seed=cfg["seed"],
                  runs=cfg["dfs_runs"] if is_dfs else cfg["runs"],
                  workers=1 if is_dfs else workers, dask=None if is_dfs else dask,
                  stop_on_first=is_dfs and role == "buggy", resume=resume,
                  fail_on=e.get("fail_on"), ignore=e.get("ignore"), max_steps=e.get("max_steps"),
                  out=out, **args)
    lo, hi = wilson(rep.failing_runs, rep.runs) if rep.runs else (0.0, 1.0)
    if role == "fixed":
        verdict = (f"all {rep.runs} schedules explored, {rep.failing_runs} failed" if rep.exhausted
                   else f"{rep.failing_runs} failures in {rep.runs} runs")
    elif rep.failing_runs:
        verdict = f"found in run {rep.first_failure_run}" if is_dfs else "found"
    else:
        verdict = (f"exhausted: no failure in all {rep.runs} schedules" if rep.exhausted
                   else f"not found in {rep.runs} runs")
    return {"target": e["target"], "variant": variant, "role": role, "strategy": label,
            "runs": rep.runs, "failing_runs": rep.failing_runs,
            "rate": rep.failing_runs / rep.runs if rep.runs else 0.0, "ci_low": lo, "ci_high": hi,
            "first_failure_run": rep.first_failure_run, "bug_depth": rep.bug_depth,
            "exhausted": rep.exhausted, "verdict": verdict,
            "complete": not (rep.interrupted or rep.lost_runs), "interrupted": rep.interrupted}


def _plot_races(rows, path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    buggy = [r for r in rows if r["role"] == "buggy" and r["strategy"] != "dfs"]
    cases = list(dict.fromkeys(f"{r['target'].split('::')[-1]} [{r['variant']}]" for r in buggy))
    labels = list(dict.fromkeys(r["strategy"] for r in buggy))
    fig, ax = plt.subplots(figsize=(max(6.4, 1.1 * len(cases) + 2), 4.4), dpi=100)
    width = 0.8 / max(1, len(labels))
    for j, lab in enumerate(labels):
        xs, ys, err = [], [], [[], []]
        for i, case in enumerate(cases):
            r = next((r for r in buggy if r["strategy"] == lab and
                      f"{r['target'].split('::')[-1]} [{r['variant']}]" == case), None)
            if r is None:
                continue
            xs.append(i + (j - (len(labels) - 1) / 2) * width)
            ys.append(r["rate"])
            err[0].append(max(0.0, r["rate"] - r["ci_low"]))
            err[1].append(max(0.0, r["ci_high"] - r["rate"]))
        ax.bar(xs, ys, width, yerr=err, capsize=2, label=lab)
    ax.set_xticks(range(len(cases)))
    ax.set_xticklabels(cases, rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("failing runs (fraction, Wilson 95% CI)")
    ax.set_title("race reproduction: failing-run rate per strategy", fontsize=10)
    if labels:
        ax.legend(fontsize=7)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# -- lock-order survey ----------------------------------------------------------------------


def run_lor_survey(cfg: dict, out_dir: str) -> dict:
    from ..report.lorgraph import LorGraph
    from ..scenario import RunSpec, load_target
    from ..search.lor import merge_runs
    from ..strategies import make_strategy

    os.makedirs(out_dir, exist_ok=True)
    graphs = {"old": LorGraph(), "fixed": LorGraph()}
    found = []
    for e in cfg["entries"]:
        scn = load_target(e["target"])
        for group in ("old", "fixed"):
            for variant in e[group]:
                lg = LorGraph()
                spec = RunSpec(e["target"], variant=variant, params=e["params"], seed=cfg["seed"],
                               max_steps=e.get("max_steps"))
                merge_runs([lg, graphs[group]], spec, cfg["runs"], make_strategy("random"),
                           scn=scn, origin={"variant": variant})
                for f in lg.reversals():
                    found.append({"target": e["target"], "variant": variant, "group": group,
                                  "cycle": " -> ".join(f.extra.get("cycle", [])),
                                  "runs_reporting": f.count, "message": f.message})
    files = []
    for group, lg in graphs.items():
        dot = os.path.join(out_dir, f"lock-order-{group}.dot")
        png = os.path.join(out_dir, f"lock-order-{group}.png")
        lg.write_dot(dot)
        lg.write_png(png)
        files += [png, dot]
    table = os.path.join(out_dir, "reversals.csv")
    with open(table, "w", newline="", encoding="utf-8") as fp:
        w = csv.DictWriter(fp, ["target", "variant", "group", "cycle", "runs_reporting", "message"],
                           lineterminator="\n")
        w.writeheader()
        w.writerows(found)
    _manifest(out_dir, cfg)
    return {"out": out_dir, "reversals": len(found),
            "fixed_reversals": sum(1 for f in found if f["group"] == "fixed"),
            "files": [table] + files + [os.path.join(out_dir, "manifest.json")], "table": found}


def _manifest(out_dir, cfg, ended: bool = True) -> None:
    """manifest.json; ``complete`` is false until the whole study has run."""
    import datetime

    from .. import __version__
    doc = {"schema_version": 1, "smpvm_version": __version__, "config": cfg,
           "written": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "complete": ended}
    from ..search.manifest import write_manifest
    write_manifest(os.path.join(out_dir, "manifest.json"), doc)
