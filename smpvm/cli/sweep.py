"""``smpvm sweep``: run a study described by a TOML file."""

from __future__ import annotations

import os

import click

from .common import echo_json
from .exits import EXIT_BAD_INPUT, EXIT_INCOMPLETE, verdict


@click.command("sweep")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--workers", type=int, default=None,
              help="Local worker processes (default: one per core; 1 = in this process; "
                   "with --dask ADDRESS, the cluster's own).")
@click.option("--dask", default=None, metavar="ADDRESS|local",
              help="Run on a Dask cluster (scheduler address), or 'local' for a LocalCluster.")
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False),
              help="Output directory (default: smpvm-out/<study file name>).")
@click.option("--resume", is_flag=True, help="Continue an interrupted sweep in --out.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="A quick check without editing FILE: keep only these values of a swept "
                   "parameter (cpus=1,2,4), or fix a parameter for every run.")
@click.option("--seeds", type=int, default=None, help="Runs per point (a sweep's seeds).")
@click.option("--runs", type=int, default=None,
              help="Runs per variant and strategy (race and lock-order studies).")
def command(file, workers, dask, out_dir, resume, as_json, sets, seeds, runs):
    """Run the sweep in FILE and write runs.csv, summary.csv, manifest.json and plots.

    Exit status 1 when runs reported violations (for a race study: a fixed
    variant failed), 0 when none did, 2 for bad input, 3 when the study is
    incomplete (interrupted, or runs lost); --resume continues it.
    """
    from ..search.executors import ClusterLost
    from ..studies.sweep import load_config, run_sweep
    from ..violations import BadInput
    from .common import check_positive

    check_positive("--workers", workers)
    from ..search.executors import max_workers
    if workers is not None and workers > max_workers():
        raise BadInput(f"--workers must be at most {max_workers()} (eight per core), "
                       f"got {workers}")
    if workers is not None and dask:
        raise BadInput("give --workers or --dask, not both")
    out_dir = out_dir or os.path.join("smpvm-out", os.path.splitext(os.path.basename(file))[0])
    from ..studies.races import study_kind
    kind = study_kind(file)
    if kind != "sweep":
        if sets or seeds is not None:
            raise BadInput(f"{file} is a {kind} study: it takes --runs, not --set or --seeds")
        check_positive("--runs", runs)
        return _other_study(file, kind, out_dir, workers, dask, as_json, resume, runs)
    if runs is not None:
        raise BadInput(f"{file} is a sweep: give --seeds (runs per point), not --runs")
    cfg = load_config(file, sets=sets, seeds=seeds)
    bar = _progress(as_json)
    try:
        result = run_sweep(cfg, out_dir, workers=workers, dask=dask, resume=resume,
                           progress=bar.update if bar else None)
    except (KeyboardInterrupt, ClusterLost) as e:
        if bar:
            bar.close()
            bar = None
        if isinstance(e, ClusterLost):
            click.echo(f"smpvm: {e}", err=True)
        _interrupted(file, out_dir, "runs.csv")
        return EXIT_INCOMPLETE
    finally:
        if bar:
            bar.close()
    table = result.pop("table")
    _write_report(file, result, _summary_rows(os.path.join(result["out"], "summary.csv")))
    if as_json:
        echo_json(result)
    else:
        click.echo(f"{result['runs']} runs over {result['points']} points "
                   f"({result['ran']} run now) -> {result['out']}")
        for f in result["files"]:
            click.echo(f"  {f}")
        from ..studies.compare import describe
        from ..studies.summary import format_table
        for line in format_table(cfg, table):
            click.echo(line)
        for line in describe(result["comparisons"], cfg.plot.get("x")):
            click.echo(line)
        if result["violations"]:
            click.echo(f"{result['violations']} run(s) reported violations: see runs.csv")
        if result["limited_runs"]:
            click.echo(f"{result['limited_runs']} run(s) stopped at their step bound: see the "
                       f"limit column of summary.csv")
    for metric in result.get("unplotted_metrics", []):
        click.echo(f"smpvm: warning: no run reported metric {metric!r}: nothing to plot "
                   f"(see the metric names in runs.csv)", err=True)
    for lost in result["lost_runs"]:
        click.echo(f"lost run {lost['run']} (point {lost['point']}, seed {lost['seed']}): "
                   f"{lost['error']}", err=True)
    if result["lost_runs"]:
        click.echo(f"incomplete: {len(result['lost_runs'])} run(s) were lost with their "
                   f"workers; the summary leaves them out", err=True)
    if result["runs"] and result["limited_runs"] == result["runs"]:
        # no run ended: nothing was measured (what did run is on disk all the same)
        click.echo("smpvm: error: every run stopped at its step bound (the limit column of "
                   "summary.csv), so none ran to its end: the model loops forever, or its "
                   "runs need a larger max_steps in the study", err=True)
        return EXIT_BAD_INPUT
    return verdict(bool(result["violations"]), bool(result["lost_runs"]))


def _interrupted(file, out_dir, what) -> None:
    from .common import prog
    import shlex
    click.echo(f"interrupted: the finished rows are in {os.path.join(out_dir, what)}; "
               f"{prog()} sweep {shlex.quote(file)} --out {shlex.quote(out_dir)} --resume "
               f"continues", err=True)


def _other_study(file, kind, out_dir, workers, dask, as_json, resume=False, runs=None) -> int:
    """A race-reproduction or lock-order study (see smpvm.studies.races)."""
    from ..studies.races import load_study, run_lor_survey, run_races
    cfg = load_study(file, kind, runs_override=runs)
    if kind == "races":
        result = run_races(cfg, out_dir, workers=workers, dask=dask, resume=resume)
        bad = result["fixed_failures"]
    else:
        result = run_lor_survey(cfg, out_dir)
        bad = result["fixed_reversals"]
    _write_report(file, result, result.get("table", []))
    if as_json:
        echo_json(result)
    else:
        for row in result["table"]:
            if kind == "races":
                click.echo(f"{row['target']} [{row['variant']}] {row['strategy']:>9}: "
                           f"{row['failing_runs']}/{row['runs']} failing "
                           f"({row['rate']:.1%}, 95% CI {row['ci_low']:.1%}-{row['ci_high']:.1%}), "
                           f"depth {row['bug_depth']}, {row['verdict']}")
            else:
                click.echo(f"{row['target']} [{row['variant']}, {row['group']}]: {row['message']}")
        click.echo(f"-> {result['out']}")
        for f in result["files"]:
            click.echo(f"  {f}")
    if result.get("interrupted"):
        _interrupted(file, out_dir, "races.csv")
    elif result.get("incomplete_rows"):
        click.echo(f"incomplete: {result['incomplete_rows']} row(s) of races.csv lost runs "
                   f"(complete=False)", err=True)
    # a fixed variant that fails (or reverses) is what a study of fixes must flag
    return verdict(bool(bad), bool(result.get("interrupted") or result.get("incomplete_rows")))


def _summary_rows(path) -> list[dict]:
    """summary.csv's rows, numbers as numbers."""
    import csv
    try:
        with open(path, newline="", encoding="utf-8") as fp:
            rows = list(csv.DictReader(fp))
    except OSError:
        return []
    for r in rows:
        for k, v in r.items():
            try:
                r[k] = int(v) if v.lstrip("-").isdigit() else float(v)
            except (ValueError, AttributeError):
                pass
    return rows


def _write_report(file, result, rows) -> None:
    """``report.html`` in the study's directory: inputs, table and plots in one page."""
    import json
    import os

    from ..report.html import study_html
    out = result["out"]
    inputs = {"study file": file, "output directory": out}
    for key in ("points", "runs", "rows", "violations"):
        if key in result:
            inputs[key] = result[key]
    try:
        with open(os.path.join(out, "manifest.json"), encoding="utf-8") as fp:
            manifest = json.load(fp)
        inputs.update({k: v for k, v in manifest.items() if k not in inputs})
    except (OSError, ValueError):
        pass
    images = []
    for f in result["files"]:
        if f.endswith(".png") and os.path.isfile(f):
            with open(f, "rb") as fp:
                images.append((os.path.basename(f), fp.read()))
    path = os.path.join(out, "report.html")
    title = f"smpvm study: {os.path.splitext(os.path.basename(file))[0]}"
    with open(path, "w", encoding="utf-8", newline="\n") as fp:
        fp.write(study_html(title, inputs, rows, images, list(result["files"])))
    result["files"].append(path)


class _Bar:
    def __init__(self):
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeRemainingColumn)
        from rich.console import Console
        self.p = Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(),
                          TextColumn("{task.fields[rate]} runs/s"), TimeRemainingColumn(),
                          console=Console(stderr=True), transient=True)
        self.task = None
        import time
        self._t0 = time.perf_counter()
        self._first = None
        self.p.start()

    def update(self, done, total):
        import time
        if self.task is None:
            self.task = self.p.add_task("sweep", total=total, completed=done, rate="-")
            self._first = done
            return
        dt = time.perf_counter() - self._t0
        rate = f"{(done - self._first) / dt:.1f}" if dt > 0 else "-"
        self.p.update(self.task, completed=done, rate=rate)

    def close(self):
        self.p.stop()


def _progress(as_json):
    import sys
    if as_json or not sys.stderr.isatty():
        return None
    return _Bar()
