"""``smpvm replay``: run a saved failure again, choice for choice.

The replay uses the recorded seed, parameters and choices and checks that
the same violation comes back (same kind, location and simulated time).
When the model file changed since the recording it says so; when the
recorded choices no longer fit the model it stops with a one-line error,
unless ``--continue random`` is given, which finishes the run with a
seeded random strategy after the prefix that still fits.
"""

from __future__ import annotations

import click

from ..strategies.replay import Replay


@click.command("replay")
@click.argument("failure_file", metavar="FILE")
@click.option("--trace", "trace_path", type=click.Path(dir_okay=False), default=None,
              help="Write a Chrome trace (open it in ui.perfetto.dev).")
@click.option("--narrate", is_flag=True, help="Print the interleaving, one column per CPU.")
@click.option("--continue", "continue_with", type=click.Choice(["random"]), default=None,
              help="If the recorded choices run out or no longer fit, finish the run with "
                   "this strategy (seeded by the run's seed).")
@click.option("--root", type=click.Path(file_okay=False, exists=True), default=None,
              help="Directory the failure's target is relative to (default: the current "
                   "one).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def command(failure_file, trace_path, narrate, continue_with, root, as_json):
    """Replay the failure saved in FILE by 'smpvm explore'.

    FILE is data; the model it names is code.  Replay imports only the model
    file named by FILE's target, relative to the current directory or --root,
    and prints its path first; a FILE whose model_path disagrees with its
    target is refused.

    Exit status 1 when the replay finds violations, 0 when it finds none, 2 for
    bad input (a missing or malformed file, choices that no longer fit).
    """
    from ..search.failures import load_failure, model_fingerprint
    from ..scenario import load_target

    failure = load_failure(failure_file)
    target = failure.scenario_target(root)
    if not as_json:
        click.echo(f"model: {target.rsplit('::', 1)[0]}")
    scn = load_target(target)
    changed = bool(failure.model_sha256) and model_fingerprint(
        target.rsplit("::", 1)[0]) != failure.model_sha256
    sinks = _sinks(trace_path, narrate, failure)
    strategy, result = run_failure(failure_file, failure, scn, changed, continue_with, sinks,
                                   root)
    match = reproduced_by(failure.violation, result.violations)
    if as_json:
        from ..scenario import result_to_dict
        from .common import echo_json
        out = {"file": failure_file, "target": failure.target,
               "model_file": target.rsplit("::", 1)[0], "reproduced": match is not None,
               "recorded": failure.violation.to_dict(), "model_changed": changed,
               "continued": strategy.continued,
               "unused_choices": max(0, len(failure.choices) - strategy.pos),
               "misfit_choice": getattr(strategy, "misfit", None),
               "preemptions": failure.preemptions}
        out.update(result_to_dict(result))
        out.pop("lockstat", None)
        out["trace_file"] = trace_path
        echo_json(out)
    else:
        _print_text(failure, result, match, changed, strategy, sinks.get("memory"), trace_path)
    return 1 if result.violations else 0


def run_failure(path, failure, scn, changed, continue_with, sinks, root=None):
    """Run the recorded choices; (strategy, result).  Choices that do not fit are bad input."""
    from ..search.failures import replay
    from ..strategies.replay import ReplayMismatch
    from ..violations import BadInput
    from ..trace import TeeSink
    if continue_with:
        from ..strategies import make_strategy
        strategy = Continuing(failure.choices, then=make_strategy(continue_with))
    else:
        strategy = Replay(failure.choices)
    why = ("the model file changed since it was recorded" if changed
           else "the recorded choices do not fit the model")
    try:
        result = replay(failure, strategy, scn=scn, trace=TeeSink(*sinks.values()), root=root)
    except ReplayMismatch as e:
        raise BadInput(f"{path}: {why}: {e}") from None
    ended_early = strategy.pos < len(failure.choices)
    if ended_early and not continue_with and not reproduced_by(failure.violation,
                                                             result.violations):
        # the run ended before its recorded decisions: the model no longer makes them
        raise BadInput(f"{path}: {why}: the run ended after {strategy.pos} of the "
                       f"{len(failure.choices)} recorded choices without the recorded "
                       f"{failure.violation.kind}")
    return strategy, result


class Continuing(Replay):
    """Replay that hands over to ``then`` at the first recorded choice that no longer fits."""

    #: Index of the first recorded choice that did not fit (None: all fitted).
    misfit = None

    def pick(self, kind, options, last):
        if self.pos < len(self.choices) and self.choices[self.pos] not in options:
            self.misfit = self.pos
            self.pos = len(self.choices)  # the rest of the recording no longer applies
        return super().pick(kind, options, last)


def _sinks(trace_path, narrate, failure) -> dict:
    from ..violations import BadInput
    from ..trace import MemorySink
    sinks = {}
    if narrate:
        sinks["memory"] = MemorySink()
    if trace_path:
        from ..report.chrome import ChromeTraceSink, run_pid
        who = (failure.target, failure.variant, failure.seed)
        try:
            sinks["chrome"] = ChromeTraceSink(
                trace_path, pid=run_pid(*who), process="smpvm {} {} seed {}".format(*who))
        except OSError as e:
            raise BadInput(f"cannot write trace {trace_path}: {e.strerror}") from None
    return sinks


def reproduced_by(recorded, found):
    """The violation in ``found`` identical to ``recorded`` in kind, location and time."""
    for v in found:
        if (v.kind, v.location, v.time_ns) == (recorded.kind, recorded.location,
                                               recorded.time_ns):
            return v
    return None


def _print_text(failure, result, match, changed, strategy, memory, trace_path) -> None:
    rec = failure.violation
    click.echo(f"{failure.target} variant={failure.variant} seed={failure.seed} "
               f"choices={len(failure.choices)}"
               + (f" preemptions={failure.preemptions}" if failure.preemptions is not None else ""))
    if changed:
        click.echo("note: the model file changed since this failure was recorded")
    misfit = getattr(strategy, "misfit", None)
    if misfit is not None:
        click.echo(f"note: recorded choice {misfit + 1} no longer fits the model; the run "
                   f"was finished by the random strategy from there")
    elif strategy.continued:
        click.echo("note: the recorded choices ran out; the run was finished by the "
                   "random strategy")
    if memory is not None:
        from ..report.narrative import narrate
        click.echo(narrate(memory.records))
    if match is not None:
        click.echo(f"reproduced {match.kind} at {match.location or '?'} at {match.time_ns} ns")
        click.echo(f"  {match.message}")
        if match.extra.get("report"):
            from .run import _indent
            click.echo(_indent(match.extra["report"]))
    else:
        click.echo(f"NOT reproduced: recorded {rec.kind} at {rec.location or '?'} at "
                   f"{rec.time_ns} ns")
        if result.violations:
            for v in result.violations:
                click.echo(f"  this run: {v.one_line()}")
        else:
            click.echo("  this run found no violation")
    if trace_path:
        click.echo(f"trace written to {trace_path} (open it in https://ui.perfetto.dev)")
