"""``smpvm list``: the scenarios in model files, with variants and parameters."""

from __future__ import annotations

import click

from ..scenario import find_model_files, scenarios_in
from .common import echo_json


@click.command("list")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def command(paths, as_json):
    """List the scenarios found in PATHS (files or directories; default ./models)."""
    files = find_model_files(paths or ["models"])
    rows = []
    for f in files:
        for s in scenarios_in(f):
            rows.append({"target": f"{f}::{s.name}", "description": s.description,
                         "variants": s.variants, "default_variant": s.default_variant,
                         "params": s.params, "param_help": s.param_help,
                         "lock_order": ({v: [list(c) for c in cs] for v, cs in s.lock_order.items()}
                                        if isinstance(s.lock_order, dict)
                                        else [list(c) for c in s.lock_order])})
    if as_json:
        echo_json({"scenarios": rows})
        return
    if not rows:
        click.echo("no scenarios found")
        return
    for r in rows:
        click.secho(r["target"], bold=True)
        if r["description"]:
            click.echo(f"  {r['description']}")
        for v, d in r["variants"].items():
            mark = "*" if v == r["default_variant"] else " "
            click.echo(f"  {mark} {v:<22} {d}")
        if r["params"]:
            ps = ", ".join(f"{k}={v!r}" for k, v in r["params"].items())
            click.echo(f"    params: {ps}")
