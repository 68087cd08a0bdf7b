"""``smpvm run``: one run of one scenario, with its violations and lock statistics."""

from __future__ import annotations

import click

from .common import echo_json, max_steps_option, parse_sets, seed_option, set_option
from .select import label, select, selection_options, summary


@click.command("run")
@selection_options
@click.option("--cpus", type=int, default=None, help="Number of CPUs (default: the scenario's).")
@seed_option
@set_option
@click.option("--strategy", type=click.Choice(["timed", "replay"]), default="timed",
              show_default=True, help="timed: durations decide; replay: follow --choices.")
@click.option("--choices", default=None, metavar="LIST",
              help="With --strategy replay: comma-separated CPU numbers to choose, in order.")
@click.option("--trace", "trace_path", type=click.Path(dir_okay=False, writable=True),
              default=None, help="Write a Chrome trace (open it in ui.perfetto.dev).")
@click.option("--narrate", is_flag=True, help="Print the interleaving, one column per CPU.")
@click.option("--timeline", "timeline_path", type=click.Path(dir_okay=False, writable=True),
              default=None, help="Plot who held what, and when, on every CPU (PNG).")
@max_steps_option
@click.option("--lockstat-csv", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write the lock statistics as CSV.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def command(targets, variants, keyword, cpus, seed, sets, strategy, choices, trace_path,
            narrate, timeline_path, max_steps, lockstat_csv, as_json):
    """Run TARGET (path/to/model.py::scenario) once.

    TARGET may also be path.py::glob* or a model file alone (all its
    scenarios); each selected scenario and variant runs once.

    Exit status 0 when the run found nothing, 1 when it found violations,
    2 for bad input (the worst of them with several targets).
    """
    picked = select(targets, keyword, variants)
    if len(picked) == 1:
        target, scn, variant = picked[0]
        return _one(target, scn, variants[0] if variants else None, cpus, seed, sets, strategy,
                    choices, trace_path, narrate, max_steps, lockstat_csv, as_json,
                    timeline_path=timeline_path)
    from ..violations import BadInput
    if trace_path or lockstat_csv or choices or timeline_path:
        raise BadInput("--trace, --timeline, --lockstat-csv and --choices take a single target "
                       "and variant")
    rows, docs = [], []
    for target, scn, variant in picked:
        if not as_json:
            click.echo(f"== {label(target, variant)}")
        code = _one(target, scn, variant, cpus, seed, sets, strategy, None, None, narrate,
                    max_steps, None, as_json, docs if as_json else None)
        rows.append((target, variant, code))
    if as_json:
        echo_json(docs)
        return max(c for *_, c in rows)
    return summary(rows)


def _one(target, scn, variant, cpus, seed, sets, strategy, choices, trace_path, narrate,
         max_steps, lockstat_csv, as_json, docs=None, timeline_path=None):
    """One run of one target and variant, printed; its exit status."""
    from ..report.chrome import ChromeTraceSink, run_pid
    from ..lockstat import plain_table, rich_table, write_csv
    from ..scenario import result_to_dict, run_scenario
    from ..violations import BadInput
    from ..trace import HashSink, MemorySink, TeeSink
    from .common import check_positive

    check_positive("--cpus", cpus)
    check_positive("--max-steps", max_steps)
    params = parse_sets(sets)
    strat = None
    if choices is not None and strategy != "replay":
        raise BadInput(f"--choices only applies to --strategy replay (the {strategy} strategy "
                       f"makes its own choices); add --strategy replay to follow them")
    if strategy == "replay":
        from ..strategies.replay import Replay
        if choices is None:
            from .common import prog
            raise BadInput(f"--strategy replay needs --choices (or use '{prog()} replay FILE')")
        try:
            picks = [int(x) for x in choices.split(",") if x.strip()]
        except ValueError:
            raise BadInput(f"--choices takes comma-separated CPU numbers, got {choices!r}") from None
        strat = Replay(picks, timed=True)
    hasher = HashSink()
    memory = MemorySink() if narrate or timeline_path else None
    chrome = None
    if trace_path:
        try:
            chrome = ChromeTraceSink(trace_path, pid=run_pid(target, variant, seed),
                                     process=f"smpvm {target}{' ' + variant if variant else ''} seed {seed}")
        except OSError as e:
            raise BadInput(f"cannot write trace {trace_path}: {e.strerror}") from None
    result = run_scenario(scn, variant=variant, params=params, cpus=cpus, seed=seed,
                          strategy=strat, trace=TeeSink(hasher, memory, chrome),
                          max_steps=max_steps)
    if timeline_path:
        from ..report.timeline import plot_timeline
        try:
            plot_timeline(memory.records, timeline_path)
        except OSError as e:
            raise BadInput(f"cannot write timeline {timeline_path}: {e.strerror}") from None
    if lockstat_csv:
        with open(lockstat_csv, "w", encoding="utf-8") as fp:
            write_csv(result.lockstat, fp)
    if as_json:
        out = {"target": target}
        out.update(result_to_dict(result))
        out["events"] = hasher.count
        out["trace_sha256"] = hasher.hexdigest()
        out["trace_file"] = trace_path
        if docs is not None:
            docs.append(out)
        else:
            echo_json(out)
    else:
        _print_text(target, result, memory if narrate else None, trace_path, rich_table,
                    plain_table)
    return 1 if result.violations else 0


def _print_text(target, result, memory, trace_path, rich_table, plain_table) -> None:
    from rich.console import Console
    con = Console(highlight=False, soft_wrap=True)
    con.print(f"[bold]{target}[/] variant={result.variant} seed={result.seed} "
              f"cpus={result.ncpus} steps={result.steps} simulated={result.time_ns} ns")
    if memory is not None:
        from ..report.narrative import narrate
        click.echo(narrate(memory.records))
    if result.violations:
        for v in result.violations:
            con.print(f"[red]{v.kind}[/]: {v.message}", markup=True)
            who = f"on CPU{v.cpu} ({v.ctx})" if v.cpu >= 0 else "at quiescence"
            con.print(f"    at {v.location or '?'} {who} at {v.time_ns} ns")
            if v.extra.get("report"):
                click.echo(_indent(v.extra["report"]))
    else:
        con.print("no violations")
    if result.lockstat:
        if con.is_terminal:
            con.print(rich_table(result.lockstat))
        else:
            click.echo(plain_table(result.lockstat))
    if result.metrics:
        for k, v in result.metrics.items():
            con.print(f"  {k} = {v:g}" if isinstance(v, (int, float)) else f"  {k} = {v}")
    if trace_path:
        con.print(f"trace written to {trace_path} (open it in https://ui.perfetto.dev)")


def _indent(text: str) -> str:
    """A witness report (lockdep / WITNESS style), indented under its one-line message."""
    return "\n".join("    " + line if line else "" for line in text.splitlines())
