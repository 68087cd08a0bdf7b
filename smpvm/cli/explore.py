"""``smpvm explore``: search a scenario's schedules for violations.

Prints a summary (or one JSON object with ``--json``), the shrunk
interleaving of the first failure as a narrative with one column per CPU
(for a long run, the steps that led to the violation), and for each
violation kind found its preemption count and ``smpvm replay FILE`` line.
``report.html`` in the output directory shows the first failure in one
page.  A progress bar goes to stderr when stderr is a terminal.
"""

from __future__ import annotations

import sys
import time

import click

from .common import (echo_json, parse_sets, replay_command, search_max_steps_option,
                     set_option)
from .exits import verdict, worst
from .select import label, select, selection_options, summary


@click.command("explore")
@selection_options
@click.option("--strategy", "-s", type=click.Choice(["portfolio", "random", "pct", "dfs", "idb", "ipb"]),
              default="portfolio", show_default=True,
              help="portfolio rotates random, pct d=2, pct d=3 and idb across runs; idb: "
                   "delay bounding; dfs enumerates schedules, its tree shared out over "
                   "--workers or --dask; ipb (iterative preemption bounding) enumerates "
                   "them in this process.")
@click.option("--runs", "-n", type=int, default=None,
              help="Runs to make (default 2000; dfs: until the space is exhausted).")
@click.option("--depth", "-d", type=int, default=None,
              help="PCT bug depth (d-1 change points; default 3). With portfolio the pct "
                   "members are d=2..DEPTH.")
@click.option("--preemption-bound", type=int, default=None,
              help="At most this many preemptions per run.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Master seed: run i's seed derives from (seed, i).")
@click.option("--cpus", type=int, default=None, help="Number of CPUs (default: the scenario's).")
@set_option
@click.option("--workers", "-w", type=int, default=None,
              help="Worker processes (default: one per core; 1 runs in this process; "
                   "with --dask ADDRESS, the cluster's own).")
@click.option("--dask", default=None, metavar="ADDRESS|local",
              help="Run on a Dask cluster at ADDRESS, or 'local' to start a LocalCluster.")
@click.option("--out", "-o", type=click.Path(file_okay=False), default=None,
              help="Directory for runs.csv, explore.json and failure files "
                   "(default smpvm-out/SCENARIO-VARIANT-STRATEGY-sSEED; with several "
                   "targets, one subdirectory SCENARIO-VARIANT each).")
@click.option("--stop-on-first", is_flag=True, help="Stop at the first failing run.")
@click.option("--fail-on", "fail_on", default=None, metavar="KINDS",
              help="Only these violation kinds (comma-separated) make a run fail; the "
                   "others are still reported.")
@click.option("--ignore", "ignore", default=None, metavar="KINDS",
              help="These violation kinds (comma-separated) never make a run fail.")
@search_max_steps_option
@click.option("--resume", is_flag=True,
              help="Continue the exploration saved in --out, with the same arguments: "
                   "sampled runs after the last one finished; a dfs search from the state "
                   "it saved while running and when interrupted (ipb does not resume).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def command(targets, variants, keyword, strategy, runs, depth, preemption_bound, seed, cpus,
            sets, workers, dask, out, stop_on_first, fail_on, ignore, max_steps, resume,
            as_json):
    """Search the schedules of TARGET (path/to/model.py::scenario) for violations.

    TARGET may also be path.py::glob* or a model file alone (all its
    scenarios); each selected scenario and variant is explored in turn.

    Exit status 1 when any run failed, 0 when none did, 2 for bad input, 3
    when the exploration is incomplete (interrupted, or runs lost with their
    workers) and nothing failed in what finished; with several targets, the
    worst of them.
    """
    import os
    picked = select(targets, keyword, variants)
    args = dict(strategy=strategy, runs=runs, depth=depth, preemption_bound=preemption_bound,
                seed=seed, cpus=cpus, sets=sets, workers=workers, dask=dask,
                stop_on_first=stop_on_first, fail_on=fail_on, ignore=ignore,
                max_steps=max_steps, resume=resume, as_json=as_json)
    if len(picked) == 1:
        target, _, _ = picked[0]
        return _one(target, variants[0] if variants else None, out=out, **args)[0]
    rows, docs = [], []
    for target, scn, variant in picked:
        if not as_json:
            click.echo(f"== {label(target, variant)}")
        sub = os.path.join(out, f"{scn.name}-{variant}") if out else None
        code, interrupted = _one(target, variant, out=sub, docs=docs if as_json else None,
                                 **args)
        rows.append((target, variant, code))
        if interrupted:
            break
    if as_json:
        echo_json(docs)
        return worst(c for *_, c in rows)
    return summary(rows)


def _one(target, variant, *, strategy, runs, depth, preemption_bound, seed, cpus, sets,
         workers, dask, out, stop_on_first, resume, as_json, fail_on=None, ignore=None,
         max_steps=None, docs=None):
    """One exploration of one target and variant, printed; (exit status, interrupted)."""
    from ..search.explore import Exploration

    exploration = Exploration(
        target, variant=variant, params=parse_sets(sets), cpus=cpus, strategy=strategy,
        runs=runs, depth=depth, preemption_bound=preemption_bound, seed=seed,
        workers=workers, dask=dask, out=out, stop_on_first=stop_on_first, resume=resume,
        fail_on=fail_on, ignore=ignore, max_steps=max_steps)
    progress = ExploreProgress.make(exploration.runs)
    exploration.progress = progress.update if progress else None
    try:
        report = exploration.run()
    finally:
        if progress:
            progress.close()
    page, window = _write_report(report)
    narrative = None if as_json else _narrative(exploration, report, window)
    if as_json:
        if docs is not None:
            docs.append(report.to_json())
        else:
            echo_json(report.to_json())
        for f in _failures(report):
            click.echo(replay_command(f.path), err=True)
    else:
        _print_text(report, narrative)
        if page:
            click.echo(f"report: {page}")
    incomplete = report.interrupted or bool(report.lost_runs)
    if as_json:
        _print_incomplete(report)
    return verdict(report.failing_runs > 0, incomplete), report.interrupted


def _write_report(report):
    """``report.html`` in the output directory, for the first failure saved: its path and
    what it shows of the failing run (``write_failure_report``); None, None without."""
    first = _failures(report)
    if not first or not report.out:
        return None, None
    import os
    from .report import write_failure_report
    try:
        return write_failure_report(first[0].path, os.path.join(report.out, "report.html"),
                                    os.path.join(report.out, f"trace-{first[0].kind}.json"))
    except Exception as e:  # the page is a courtesy; the saved failure is what counts
        click.echo(f"note: no report.html: {e}", err=True)
        return None, None


def _failures(report):
    return sorted(report.first.values(), key=lambda f: (f.run, f.kind))


def _print_text(report, narrative) -> None:
    rate = f"{report.runs_per_second:,.0f} runs/s"
    if report.executor_start_s >= 0.05:  # a Dask cluster's start: said apart from the rate
        rate += f" after {report.executor_start_s:.2f} s starting the executor"
    click.echo(f"{report.target} variant={report.variant} strategy={report.strategy} "
               f"seed={report.seed} ({report.executor})")
    resumed = f", {report.resumed_runs} from the earlier session" if report.resumed_runs else ""
    click.echo(f"{report.runs} runs{resumed} ({rate}), {report.failing_runs} failing, "
               f"{report.distinct_schedules} distinct schedules")
    if report.strategy in ("dfs", "ipb"):
        verdict = "none failed" if not report.failing_runs else f"{report.failing_runs} failed"
        if report.exhausted and report.devices:
            click.echo(f"{report.runs} schedules explored (device processes only at the "
                       f"times those schedules gave them), {verdict}")
        elif report.exhausted:
            click.echo(f"all {report.runs} schedules explored, {verdict}")
        else:
            click.echo(f"schedule space not exhausted after {report.runs} runs, {verdict}")
        if report.pruned is not None:
            click.echo(f"partial-order reduction pruned {report.pruned} branches")
        for name in report.unseen_shared:
            click.echo(f"shared state outside the model API, watched after every step: {name} "
                       f"(share it through m.shared, SharedList or SharedDict)")
    for kind, n in sorted(report.violations.items()):
        first = report.first.get(kind)
        at = f", first in run {first.run}" if first else ""
        click.echo(f"  {kind}: {n} run(s){at}")
    for kind, n in sorted(report.not_counted.items()):
        click.echo(f"  {kind}: {n} run(s), not counted as failures (--fail-on/--ignore)")
    for g in report.pct:
        click.echo(f"pct d={g['depth']}: with n={g['n']} CPUs and k={g['k']} decision points "
                   f"a depth-{g['depth']} bug is found by each run with probability >= "
                   f"1/(n*k^{g['depth'] - 1}) = {g['probability']:.3g}; "
                   f"{g['runs_for_99']} such runs give 99% confidence"
                   + (f" ({g['exploration_runs_for_99']} portfolio runs)"
                      if report.strategy == "portfolio" else ""))
    for note in report.notes:
        click.echo(f"note: {note}", err=True)
    for m in report.mismatches:
        click.echo(f"warning: run {m['run']} did not repeat itself when run again; the model "
                   f"depends on something besides its inputs", err=True)
    _print_incomplete(report)
    first = _failures(report)
    if first and first[0].preemptions is not None:
        f = first[0]
        click.echo(f"bug depth {_depth(f)} (preemptions after shrinking run {f.run}'s "
                   f"{f.original_preemptions})")
    if narrative:
        click.echo(narrative)
    for f in first:
        if f.preemptions is not None:
            click.echo(f"{f.kind}: {_depth(f)} preemption(s) (run {f.run}, "
                       f"{f.original_preemptions} before shrinking); replay it with")
        else:
            click.echo(f"{f.kind}: first in run {f.run}; replay it with")
        click.echo(replay_command(f.path))


def _depth(f) -> str:
    """The shrunk depth: "d" when no schedule with fewer preemptions fails, else "≤ d"."""
    return f"≤ {f.preemptions}" if f.minimal is False else str(f.preemptions)


def _print_incomplete(report) -> None:
    """On stderr: the runs lost and the interruption, which make the verdict partial."""
    for lost in report.lost_runs:
        click.echo(f"lost runs {lost['first']}-{lost['last']}: {lost['error']}", err=True)
    if report.lost_runs and not report.failing_runs:
        n = sum(x["last"] - x["first"] + 1 for x in report.lost_runs)
        click.echo(f"incomplete: {n} run(s) were lost with their workers; nothing failed "
                   f"in the {report.runs} that finished", err=True)
    from ..search.explore import dfs_state_saved
    if report.interrupted and report.strategy in ("dfs", "ipb") and not (
            report.strategy == "dfs" and dfs_state_saved(report.out)):
        click.echo(f"interrupted after {report.runs} runs; {report.strategy} does not "
                   f"resume from here: run it again to start over", err=True)
    elif report.interrupted:
        click.echo(f"interrupted: {report.runs} runs are in {report.out}/runs.csv; "
                   f"--resume continues", err=True)


def _narrative(exploration, report, window=None) -> str | None:
    """The shrunk schedule of the first failure, one column per CPU: cut from ``window``,
    what the report showed of its replay, or (no report written) from a replay here."""
    first = _failures(report)
    if not first:
        return None
    f = first[0]
    from ..report.narrative import narrate
    if window is not None:
        return _around_violation(window.narrowed(NARRATIVE_ROWS, ROWS_AFTER), narrate)
    from ..scenario import run_scenario
    from ..strategies.replay import Replay
    from ..trace import WindowSink
    sink = WindowSink(NARRATIVE_ROWS, ROWS_AFTER)
    plan = exploration.plan
    try:
        run_scenario(exploration.scn, variant=plan.variant, params=plan.params, cpus=plan.cpus,
                     seed=f.seed, strategy=Replay(f.choices), trace=sink, lockstat=False,
                     source_root=plan.source_root, max_steps=plan.max_steps)
    except Exception as e:  # a narrative is a courtesy; the saved file is what counts
        return f"(no narrative: {e})"
    return _around_violation(sink.window(), narrate)


#: Rows of the narrative of a failure; a longer run keeps those before its violation.
NARRATIVE_ROWS = 400
#: Of those, how many may come after the violation.
ROWS_AFTER = 20


def _around_violation(window, narrate) -> str:
    """The narrative of a run's ``window`` (``WindowSink``): the steps that led to its
    first violation."""
    if window.total <= NARRATIVE_ROWS:
        return narrate(window.records)
    start, end = window.start, window.start + len(window.records)
    text = narrate(window.records, cpu_names=window.names)
    if start:
        text = f"... {start} earlier records not shown\n" + text
    if end < window.total:
        text += f"... {window.total - end} more records not shown\n"
    return text


class ExploreProgress:
    """A rich progress bar on stderr: runs, runs/s, failing runs, distinct schedules."""

    def __init__(self, total):
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn)
        self.bar = Progress(TextColumn("exploring"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[rate]} runs/s"),
                            TextColumn("[red]{task.fields[failing]} failing"),
                            TextColumn("{task.fields[distinct]} distinct schedules"),
                            TimeElapsedColumn(), console=Console(stderr=True), transient=True)
        self.task = self.bar.add_task("explore", total=total, rate="-", failing=0, distinct=0)
        self.t0 = time.perf_counter()
        self.bar.start()

    @classmethod
    def make(cls, total):
        """A bar when stderr is a terminal (``total`` None: an open-ended count), else None."""
        return cls(total) if sys.stderr.isatty() else None

    def update(self, report) -> None:
        dt = time.perf_counter() - self.t0
        rate = f"{report.runs_this_session / dt:,.0f}" if dt > 0 else "-"
        self.bar.update(self.task, completed=report.runs, rate=rate,
                        failing=report.failing_runs, distinct=report.distinct_schedules)

    def close(self) -> None:
        self.bar.stop()
