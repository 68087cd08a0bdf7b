"""``smpvm demo``: the doomed-object race, found, explained, and fixed.

FreeBSD's 2007 ``dev_pager_alloc()`` could return a VM object that
``vm_object_terminate()`` had already doomed; the caller then used it after it
was freed.  The demo explores the buggy code's schedules, shows the shortest
failing interleaving found as a two-column narrative with the command that
replays it, writes a Perfetto trace of that run and the lock-order graph,
then runs the fixed code: no failure in as many schedules, and the
exhaustive search covers every interleaving.
"""

from __future__ import annotations

import os
import sys

import click

TARGET_FILE = os.path.join("models", "freebsd", "device_pager.py")
SCENARIO = "doomed_object"


def find_model() -> str:
    """The device pager model: in this checkout, beside the package, or installed data."""
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    candidates = [os.path.join(os.getcwd(), TARGET_FILE), os.path.join(here, TARGET_FILE),
                  os.path.join(sys.prefix, "share", "smpvm", TARGET_FILE)]
    for c in candidates:
        if os.path.isfile(c):
            return os.path.relpath(c) if c.startswith(os.getcwd() + os.sep) else c
    from ..violations import BadInput
    raise BadInput(f"cannot find {TARGET_FILE} (looked in {', '.join(candidates)})")


@click.command("demo")
@click.option("--out", "out_dir", default="smpvm-demo", show_default=True,
              type=click.Path(file_okay=False), help="Where to write the demo's files.")
@click.option("--runs", default=2000, show_default=True, help="Schedules to explore per variant.")
@click.option("--seed", default=1, show_default=True, help="Master seed of the explorations.")
def command(out_dir, runs, seed):
    """Reproduce the doomed-object race and show that the fix holds."""
    from rich.console import Console

    from ..search.explore import explore
    from .common import check_positive

    check_positive("--runs", runs)
    con = Console(highlight=False, soft_wrap=True)
    model = find_model()
    target = f"{model}::{SCENARIO}"
    os.makedirs(out_dir, exist_ok=True)

    con.rule("[bold]1. The 2007 code: dev_pager_alloc() vs vm_object_terminate()")
    con.print(f"Exploring {runs} schedules of [bold]{target}[/] --variant buggy ...")
    buggy = _with_progress(runs, explore, target, variant="buggy", runs=runs, seed=seed,
                           workers=1, out=os.path.join(out_dir, "buggy"))
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(buggy.violations.items()))
    con.print(f"{buggy.failing_runs} of {buggy.runs} schedules fail ({kinds}); "
              f"{buggy.runs_per_second:,.0f} schedules/s; first failure in run "
              f"{buggy.first_failure_run}.")
    if not buggy.first:
        con.print("[red]no failure found: the demo expected one[/]")
        return 1
    first = min(buggy.first.values(), key=lambda f: (f.run, f.kind))
    trace_path = os.path.join(out_dir, "doomed-object.trace.json")
    records, failure = _replay(first.path, trace_path)
    con.print(f"\nThe failing interleaving, shrunk to {first.preemptions} preemption(s) "
              f"(Pt terminates the object, Pa maps the device):\n")
    from ..report.narrative import narrate
    click.echo(narrate(records, width=46))
    v = failure.violation
    con.print(f"\n[red]{v.kind}[/]: {v.message}")
    from .explore import replay_command
    con.print(f"\nReplay it exactly:  [bold]{replay_command(first.path)}[/]")

    con.rule("[bold]2. The lock-order graph")
    dot, png, lg = _lock_order(target, out_dir, seed)
    edges = sum(len(s) for s in lg.edges.values())
    found = lg.reversals()
    verdict = (f"{len(found)} reversal(s): " + "; ".join(" -> ".join(f.cycle) for f in found)
               if found else "no reversal: the race is not a lock-order problem")
    con.print(f"{lg.runs} runs of both variants, {len(lg.classes)} lock classes, {edges} order "
              f"edges, {verdict}.  Graph: {png} (DOT: {dot}).")

    con.rule("[bold]3. The fix: dev_pager_mtx over lookup and insert, OBJ_DEAD skipped")
    fixed = _with_progress(runs, explore, target, variant="fixed", runs=runs, seed=seed,
                           workers=1, out=os.path.join(out_dir, "fixed"))
    con.print(f"{fixed.failing_runs} failures in {fixed.runs} schedules.")
    dfs = _with_progress(None, explore, target, variant="fixed", strategy="dfs", seed=seed,
                         workers=1, out=os.path.join(out_dir, "fixed-dfs"))
    if dfs.exhausted:
        con.print(f"Exhaustive search: all {dfs.runs} schedules explored, "
                  f"{dfs.failing_runs} failed (partial-order reduction skipped "
                  f"{dfs.pruned} branches).")
    con.rule("[bold]Files")
    con.print(f"  trace of the failing run: {trace_path}  (open it in https://ui.perfetto.dev)")
    con.print(f"  lock-order graph:         {png}")
    con.print(f"  saved failure:            {first.path}  ({replay_command(first.path)})")
    con.print(f"  per-run results:          {os.path.join(out_dir, 'buggy', 'runs.csv')}")
    ok = buggy.failing_runs > 0 and fixed.failing_runs == 0 and dfs.exhausted and not dfs.failing_runs
    con.print("[green]The race reproduces and the fix holds.[/]" if ok
              else "[red]Unexpected: the fixed variant failed or was not exhausted.[/]")
    return 0 if ok else 1


def _replay(path, trace_path):
    """Re-run a saved failure, keeping its records and writing its Chrome trace."""
    from ..report.chrome import ChromeTraceSink, run_pid
    from ..search.failures import load_failure, replay
    from ..trace import MemorySink, TeeSink

    failure = load_failure(path)
    memory = MemorySink()
    replay(failure, trace=TeeSink(memory, ChromeTraceSink(
        trace_path, pid=run_pid(failure.target, failure.variant, failure.seed),
        process=f"smpvm {failure.target} {failure.variant} seed {failure.seed}")))
    return memory.records, failure


def _lock_order(target, out_dir, seed):
    """Merge witness graphs of both variants' runs and draw them."""
    from ..report.lorgraph import LorGraph
    from ..scenario import RunSpec, load_target
    from ..search.lor import merge_runs
    from ..strategies import make_strategy

    scn = load_target(target)
    lg = LorGraph()
    for variant in ("buggy", "fixed"):
        merge_runs([lg], RunSpec(target, variant=variant, seed=seed), 20,
                   make_strategy("random"), scn=scn, origin={"variant": variant})
    dot = os.path.join(out_dir, "lock-order.dot")
    png = os.path.join(out_dir, "lock-order.png")
    lg.write_dot(dot)
    lg.write_png(png)
    return dot, png, lg


def _with_progress(total, explore, target, **options):
    """``explore(target, **options)`` with a progress bar on stderr when it is a terminal."""
    from .explore import ExploreProgress
    bar = ExploreProgress.make(total)
    try:
        return explore(target, progress=bar.update if bar else None, **options)
    finally:
        if bar:
            bar.close()
