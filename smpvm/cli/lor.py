"""``smpvm lor``: run scenarios many times and report their merged lock-order graph.

Each target runs ``--runs`` times (seeds ``--seed``, ``--seed``+1, ...) with
witness on; the graphs are merged (``smpvm.report.lorgraph``) and searched again,
so a reversal whose two orders came from different runs, or from different
targets, is reported too.  Output: each reversal with its sites and how many
runs reported it, the other witness findings, the edges with their first
sites and counts; optionally a DOT file and a PNG of the graph.
"""

from __future__ import annotations

import click

from .common import echo_json, max_steps_option, parse_sets, seed_option, set_option
from .select import select, selection_options, summary


@click.command("lor")
@selection_options
@click.option("--runs", type=int, default=20, show_default=True,
              help="Runs of each target (seeds --seed, --seed+1, ...).")
@seed_option
@click.option("--strategy", default=None, metavar="NAME",
              help="Scheduling strategy (default: random when available, else timed).")
@set_option
@click.option("--cpus", type=int, default=None, help="Number of CPUs (default: the scenario's).")
@click.option("--dot", "dot_path", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write the merged graph as Graphviz DOT.")
@click.option("--png", "png_path", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Draw the merged graph (graphviz 'dot' when installed, else matplotlib).")
@click.option("--stop-at-first", is_flag=True,
              help="End each run at its first finding instead of going on (WITNESS goes on).")
@max_steps_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def command(targets, variants, keyword, runs, seed, strategy, sets, cpus, dot_path, png_path,
            stop_at_first, max_steps, as_json):
    """Run each TARGET (path/to/model.py::scenario) and report its lock-order graph.

    A TARGET may be path.py::glob* or a model file alone (all its
    scenarios).  --variant (repeatable, or 'all') and --set apply to every
    target; the graphs of all targets are merged into one, as one kernel's
    witness would see them.

    Exit status 1 when any reversal, spl or sleep violation (or lock misuse
    such as recursion) was found, 0 when none, 2 for bad input.
    """
    from ..report.lorgraph import LorGraph
    from ..scenario import RunSpec
    from ..search.lor import merge_runs
    from .common import check_positive

    check_positive("--runs", runs)
    check_positive("--cpus", cpus)
    check_positive("--max-steps", max_steps)
    params = parse_sets(sets)
    picked = select(targets, keyword, variants)
    for _, scn, v in picked:
        scn.resolve_params(params)
    variant = variants[0] if len(variants) == 1 and len(picked) == 1 else None
    if len(picked) > 1:
        targets = list(dict.fromkeys(t for t, _, _ in picked))
        variant = ",".join(dict.fromkeys(v for _, _, v in picked)) if variants else None
    strat = _strategy(strategy)
    lg = LorGraph()
    rows = []
    for target, scn, v in picked:
        spec = RunSpec(target, variant=v, params=params, cpus=cpus, seed=seed,
                       max_steps=max_steps)
        kinds = merge_runs([lg], spec, runs, strat, scn=scn, stop_at_first=stop_at_first)
        rows.append((target, v, int(any(LOCK_KINDS.intersection(k) for k in kinds))))
    lg.search()
    _write_files(lg, dot_path, png_path)
    found = lg.lock_findings()
    if as_json:
        out = {"targets": list(targets), "variant": variant, "runs": runs, "seed": seed,
               "strategy": getattr(strat, "name", "?")}
        out.update(lg.to_json())
        out["dot"] = dot_path
        out["png"] = png_path
        echo_json(out)
    else:
        _print_text(lg, targets, variant, runs, seed, strat, dot_path, png_path)
        if len(rows) > 1:
            summary(rows)
    return 1 if found else 0


#: Findings that make a target FAIL in the per-target summary (witness's kinds).
LOCK_KINDS = frozenset({"lock-order-reversal", "spl-violation", "sleep-with-spinlock", "sleep-in-atomic",
                        "recursion", "unlock-not-held"})


def _strategy(name):
    """The strategy by name; by default random (the exploration view)."""
    from ..violations import BadInput
    from ..strategies import make_strategy
    if name is None:
        return make_strategy("random")
    try:
        return make_strategy(name)
    except ValueError as e:
        raise BadInput(str(e)) from None
    except TypeError as e:
        raise BadInput(f"strategy {name!r} cannot run alone here: {e}") from None


def _write_files(lg, dot_path, png_path) -> None:
    from ..violations import BadInput
    try:
        if dot_path:
            lg.write_dot(dot_path)
        if png_path:
            lg.write_png(png_path)
    except OSError as e:
        raise BadInput(f"cannot write {e.filename or dot_path or png_path}: {e.strerror}") from None


def _print_text(lg, targets, variant, runs, seed, strat, dot_path, png_path) -> None:
    echo = click.echo
    name = getattr(strat, "name", "?")
    echo(f"lor: {', '.join(targets)}" + (f" variant={variant}" if variant else "")
         + f": {runs} run(s) each, seeds {seed}..{seed + runs - 1}, strategy {name}")
    edges = lg.edge_objects()
    echo(f"{len(lg.classes)} lock classes, {len(edges)} order edges")
    revs = lg.reversals()
    echo(f"\nreversals: {len(revs)}")
    for n, f in enumerate(revs, 1):
        echo(f"  [{n}] {' -> '.join(f.extra.get('cycle', []))}  ({_seen(f, lg)})")
        echo(f"      {f.message}")
        if f.extra.get("report"):
            echo("\n".join("      " + ln if ln else "" for ln in f.extra["report"].splitlines()))
        if f.first.get("choices") is not None:
            echo(f"      first in {f.first.get('target', '')} run {f.first.get('run')} "
                 f"(seed {f.first.get('seed')}, {len(f.first['choices'])} scheduling choices "
                 f"before it) on CPU{f.first.get('cpu')} ({f.first.get('ctx')})")
    rest = [f for f in lg.lock_findings() if f.kind != "lock-order-reversal"]
    if rest:
        echo(f"\nother witness findings: {len(rest)}")
        for f in rest:
            echo(f"  {f.kind} ({_seen(f, lg)}): {f.message}")
    other = lg.other_findings()
    if other:
        echo(f"\nother violations (not lock order): {len(other)}")
        for f in other:
            echo(f"  {f.kind} ({_seen(f, lg)}): {f.message}")
    if edges:
        echo("\norder edges (held -> taken: first sites, acquisitions, runs):")
        for e in edges:
            mark = ("  documented" if e.declared else "") + ("  REVERSAL" if e.reversal else "")
            where = "never taken" if e.declared and not e.count else \
                f"{e.first_site or '?'} / {e.second_site or '?'}"
            echo(f"  {e.a} -> {e.b}: {where}, x{e.count}, {e.runs} run(s){mark}")
    for label, path in (("DOT", dot_path), ("PNG", png_path)):
        if path:
            echo(f"{label} written to {path}")


def _seen(f, lg) -> str:
    """How many runs reported ``f``, counted against the runs of the targets that did."""
    if f.merged_only:
        return "only in the merged graph: its orders came from different runs"
    per = lg.runs_by_target
    if len(per) <= 1 or not f.by_target:
        return f"reported in {f.count} of {lg.runs} runs"
    if len(f.by_target) == 1:
        (target, n), = f.by_target.items()
        return f"reported in {n} of {per.get(target, lg.runs)} runs of {target}"
    return "reported in " + ", ".join(f"{n} of {per.get(t, 0)} runs of {t}"
                                      for t, n in f.by_target.items())
