"""``smpvm new NAME``: write a complete small model to start from.

The template (``model_template.txt``) is a working race with a buggy and a
fixed variant, written to show the parts of a model: helpers called with
``yield from``, ``note``, variants, a declared lock order, ``kassert``, a
zone with reference counts and a leak check.  ``docs/writing-models.md``
walks through it.
"""

from __future__ import annotations

import os
from importlib import resources
from string import Template

import click

from ..violations import BadInput
from .common import prog


def render(name: str) -> str:
    """The template model with its scenario called ``name``."""
    text = resources.files("smpvm.cli").joinpath("model_template.txt").read_text("utf-8")
    return Template(text).substitute(name=name)


@click.command(help="Write NAME.py, a small complete model (buggy and fixed) to start from.")
@click.argument("name")
@click.option("--force", is_flag=True, help="Overwrite NAME.py if it exists.")
def command(name, force):
    if not os.path.basename(name.rstrip(".")) or os.path.isdir(name):
        raise BadInput(f"give the new model file's NAME (e.g. {os.path.join(name, 'my_race')}), "
                       f"not a directory")
    path = name if name.endswith(".py") else name + ".py"
    scenario = os.path.splitext(os.path.basename(path))[0]
    if not scenario.isidentifier() or scenario.startswith("_"):
        fixed = scenario.replace("-", "_").replace(".", "_").lstrip("_")
        hint = f" (try {fixed!r})" if fixed.isidentifier() else ""
        raise BadInput(f"{scenario!r} is not a Python identifier; the scenario is named after "
                       f"the file{hint}")
    if os.path.exists(path) and not force:
        raise BadInput(f"{path} exists; give another NAME or --force")
    folder = os.path.dirname(path)
    if folder and not os.path.isdir(folder):
        raise BadInput(f"no directory {folder!r}")
    try:
        with open(path, "w", encoding="utf-8") as fp:
            fp.write(render(scenario))
    except OSError as e:
        raise BadInput(f"cannot write {path}: {e.strerror}") from None
    click.echo(f"wrote {path}: scenario {scenario} (variants buggy, fixed)")
    click.echo(f"  {prog()} explore {path}::{scenario} --variant buggy")
    click.echo(f"  {prog()} explore {path}::{scenario} --variant fixed")
