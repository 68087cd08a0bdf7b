"""Options and helpers shared by several subcommands."""

from __future__ import annotations

import click

from ..violations import BadInput

from ..scenario import parse_set


def set_option(f):
    return click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                        help="Set a scenario parameter, or a cost as costs.<field>. Repeatable.")(f)


def variant_option(f):
    return click.option("--variant", "-v", default=None,
                        help="Scenario variant (default: the scenario's first).")(f)


def seed_option(f):
    return click.option("--seed", type=int, default=0, show_default=True,
                        help="Seed of the run (of the exploration's run 0).")(f)


def parse_sets(sets) -> dict:
    return parse_set(sets)


def check_positive(name: str, value, minimum: int = 1):
    if value is not None and value < minimum:
        raise BadInput(f"{name} must be at least {minimum}, got {value}")


def echo_json(obj) -> None:
    import json
    click.echo(json.dumps(obj, indent=2, sort_keys=False))


def replay_command(path: str) -> str:
    """The one line that replays a saved failure, safe to paste into a shell."""
    import shlex
    return f"smpvm replay {shlex.quote(path)}"
