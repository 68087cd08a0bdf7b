"""The ``smpvm`` command line.

Subcommands live in ``smpvm.cli``, one module each, and are imported
only when used, so ``smpvm --help`` answers without loading numpy or
networkx.  Exit status everywhere (``exits``): 0 nothing found, 1 violations
found, 2 bad input, 3 incomplete (interrupted, or runs lost).  Bad input is one
line on stderr saying what is wrong and how to fix it, never a traceback.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

#: name -> (module in smpvm.cli, one-line help)
COMMANDS = {
    "list": ("listing", "List scenarios in model files with their variants and parameters."),
    "run": ("run", "Run one scenario once; print violations and lock statistics."),
    "explore": ("explore", "Search schedules of a scenario for violations."),
    "replay": ("replay", "Replay a saved failure exactly."),
    "report": ("report", "Write a self-contained HTML report of a saved failure."),
    "lor": ("lor", "Run scenarios and report their lock-order graph and reversals."),
    "sweep": ("sweep", "Run a parameter sweep described by a TOML file."),
    "demo": ("demo", "Reproduce the doomed-object race and show that the fix holds."),
    "new": ("new", "Write a small complete model (buggy and fixed) to start from."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return list(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        mod = importlib.import_module(f"smpvm.cli.{COMMANDS[name][0]}")
        return mod.command

    def format_commands(self, ctx, formatter):
        rows = [(n, COMMANDS[n][1]) for n in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="smpvm")
def cli():
    """smpvm: race search, lock-order checking and lock-granularity studies
    for kernel VM code on a simulated multiprocessor.

    Targets are model files and scenarios: models/freebsd/device_pager.py::doomed_object

    Exit status: 0 nothing found, 1 violations found, 2 bad input (one line
    on stderr), 3 incomplete: interrupted or runs lost, nothing found in what
    finished (--resume continues).
    """


def main(argv=None) -> None:
    """Entry point: run the CLI; every way it can end is one line and a status (``exits``)."""
    from .exits import EXIT_BAD_INPUT, EXIT_INCOMPLETE, EXIT_INTERNAL, sigterm_interrupts, \
        tolerant_stdout
    with tolerant_stdout(), sigterm_interrupts():
        rc = _run(argv, EXIT_BAD_INPUT, EXIT_INCOMPLETE, EXIT_INTERNAL)
    sys.exit(rc if isinstance(rc, int) else 0)


def _run(argv, bad_input, incomplete, internal) -> int:
    from ..violations import BadInput, ModelError
    try:
        with cli.make_context("smpvm", list(sys.argv[1:] if argv is None else argv)) as ctx:
            return cli.invoke(ctx)
    except click.exceptions.Exit as e:  # --help, --version
        return e.exit_code
    except click.UsageError as e:
        if type(e).__name__.startswith("NoArgsIsHelp"):
            click.echo(e.ctx.get_help() if e.ctx else e.format_message())
            return 0
        hint = f" (see '{e.ctx.command_path} --help')" if e.ctx else ""
        click.echo(f"smpvm: error: {e.format_message()}{hint}", err=True)
        return bad_input
    except (click.Abort, KeyboardInterrupt):
        click.echo("smpvm: interrupted", err=True)
        return incomplete
    except click.ClickException as e:
        click.echo(f"smpvm: error: {e.format_message()}", err=True)
        return e.exit_code if e.exit_code else bad_input
    except (BadInput, ModelError) as e:
        click.echo(f"smpvm: error: {e}", err=True)
        return bad_input
    except Exception as e:  # a bug in smpvm itself: one line, the traceback on request
        if os.environ.get("SMPVM_DEBUG"):
            raise
        click.echo(f"smpvm: internal error: {type(e).__name__}: {e} (set SMPVM_DEBUG=1 "
                   f"for the traceback, and please report it)", err=True)
        return internal


if __name__ == "__main__":
    main()
