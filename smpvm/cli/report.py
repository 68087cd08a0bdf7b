"""``smpvm report``: one self-contained HTML page for a saved failure.

The failure is replayed exactly as ``smpvm replay`` does it, with its trace
records kept; the page (see :mod:`smpvm.report.html`) holds the run's
inputs, its replay command, the interleaving, the violations, the
lock-order graph and the lock statistics.  A Chrome trace of the replay is
written next to the page and linked from it.
"""

from __future__ import annotations

import os

import click


@click.command("report")
@click.argument("failure_file", metavar="FILE")
@click.option("--out", "-o", "out", type=click.Path(dir_okay=False), default=None,
              help="The HTML file to write (default: FILE with .html instead of .json).")
@click.option("--trace", "trace_path", type=click.Path(dir_okay=False), default=None,
              help="Where to write the replay's Chrome trace (default: next to the page, "
                   "NAME.trace.json; its first 250,000 events: 'smpvm replay FILE --trace "
                   "PATH' writes a whole run).")
def command(failure_file, out, trace_path):
    """Write an HTML report of the failure saved in FILE by 'smpvm explore'.

    Exit status 0 when the page is written, 2 for bad input.
    """
    out = out or os.path.splitext(failure_file)[0] + ".html"
    write_failure_report(failure_file, out, trace_path)
    click.echo(f"report written to {out}")
    return 0


#: Events the report's trace holds at most (a million-step run makes a file of about
#: 200 MB, more than a browser's trace viewer loads in comfort); ``smpvm replay --trace``
#: writes a whole run.
REPORT_TRACE_EVENTS = 250_000


def write_failure_report(failure_file: str, out: str, trace_path: str | None = None):
    """Replay ``failure_file`` and write its report to ``out``; returns ``out`` and the
    replay's ``Window`` (what the page shows of the run, from which a narrative is cut)."""
    from ..report.chrome import ChromeTraceSink, run_pid
    from ..report.html import MAX_ROWS, ROWS_AFTER, failure_html
    from ..scenario import load_target
    from ..search.failures import load_failure, model_fingerprint
    from ..trace import WindowSink
    from ..violations import BadInput
    from .common import replay_command
    from .replay import reproduced_by, run_failure

    failure = load_failure(failure_file)
    target = failure.scenario_target()
    scn = load_target(target)
    changed = bool(failure.model_sha256) and model_fingerprint(
        target.rsplit("::", 1)[0]) != failure.model_sha256
    trace_path = trace_path or os.path.splitext(out)[0] + ".trace.json"
    who = (failure.target, failure.variant, failure.seed)
    memory = WindowSink(MAX_ROWS, ROWS_AFTER)  # what the page shows of a run of any length
    whole = f"{replay_command(failure_file)} --trace PATH writes the whole run"
    try:
        chrome = ChromeTraceSink(trace_path, pid=run_pid(*who),
                                 process="smpvm {} {} seed {}".format(*who),
                                 max_events=REPORT_TRACE_EVENTS, cut_note=whole)
    except OSError as e:
        raise BadInput(f"cannot write trace {trace_path}: {e.strerror}") from None
    try:
        _, result = run_failure(failure_file, failure, scn, changed, None,
                         {"memory": memory, "chrome": chrome})
    finally:
        chrome.close()
    inputs = {
        "target": failure.target, "variant": failure.variant, "parameters": failure.params,
        "CPUs": failure.cpus if failure.cpus is not None else result.ncpus,
        "seed": failure.seed, "strategy": failure.strategy, "master seed": failure.master_seed,
        "run": failure.run, "preemptions": failure.preemptions,
        "preemptions before shrinking": failure.original_preemptions,
        "choices": len(failure.choices), "simulated time": f"{result.time_ns} ns",
        "steps": result.steps, "model sha256": failure.model_sha256,
        "model changed since recorded": "yes" if changed else "no",
        "smpvm version": failure.smpvm_version, "failure file": failure_file,
    }
    if chrome.left_out is not None:
        inputs["trace"] = (f"its first {REPORT_TRACE_EVENTS:,} events only "
                           f"({chrome.left_out:,} later records left out); {whole}")
    href = os.path.relpath(os.path.abspath(trace_path),
                           os.path.dirname(os.path.abspath(out))).replace(os.sep, "/")
    window = memory.window()
    page = failure_html(inputs, replay_command(failure_file), window,
                        result.violations, result.lockstat, result.witness_edges,
                        result.witness_classes,
                        reproduced=reproduced_by(failure.violation, result.violations) is not None,
                        trace_href=href)
    try:
        with open(out, "w", encoding="utf-8", newline="\n") as fp:
            fp.write(page)
    except OSError as e:
        raise BadInput(f"cannot write report {out}: {e.strerror}") from None
    return out, window
