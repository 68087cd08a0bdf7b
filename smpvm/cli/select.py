"""Choosing what to run: targets, ``-k``, repeated ``--variant``, and the summary.

``run``, ``explore`` and ``lor`` take one or more targets: ``path.py::name``,
``path.py::glob*``, or a model file (or directory) alone for all its
scenarios; ``-k TEXT`` keeps the targets whose id contains TEXT; ``--variant``
may repeat, or be ``all``.  When more than one target x variant runs, each
gets a pytest-style ``PASS``/``FAIL`` line at the end and the exit status is
the worst of them.
"""

from __future__ import annotations

import click

from .complete import complete_target, complete_variant


def selection_options(f):
    """TARGETS..., ``--variant`` (repeatable), ``-k``."""
    f = click.option("-k", "keyword", default=None, metavar="TEXT",
                     help="Only the targets whose path::scenario contains TEXT.")(f)
    f = click.option("--variant", "-v", "variants", multiple=True,
                     shell_complete=complete_variant, help="Scenario variant (default: each scenario's first); repeatable, "
                          "or 'all'.")(f)
    return click.argument("targets", nargs=-1, required=True,
                          shell_complete=complete_target)(f)


def select(targets, keyword, variants):
    """[(target, scenario, variant)] for the command line's selection."""
    from ..scenario import select_targets
    return select_targets(list(targets), keyword, variants)


def label(target: str, variant: str) -> str:
    return f"{target}[{variant}]"


def summary(rows) -> int:
    """Print ``PASS``/``FAIL`` per (target, variant, exit status); the worst status."""
    from .exits import worst
    click.echo("")
    for target, variant, code in rows:
        word = {0: "PASS", 1: "FAIL", 2: "ERROR", 3: "INCOMPLETE"}.get(code, "STOP")
        click.echo(f"{word} {label(target, variant)}")
    failed = sum(1 for *_, c in rows if c == 1)
    click.echo(f"{len(rows)} target(s): {len(rows) - failed} passed, {failed} failed")
    return worst(code for *_, code in rows)
