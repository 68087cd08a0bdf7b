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


def _max_steps(default: str):
    return click.option("--max-steps", type=int, default=None,
                        help=f"Steps a run may take before it counts as never ending (default: "
                             f"the scenario's own, else {default}).")


max_steps_option = _max_steps("a million")
#: explore's: dfs and ipb record every step of a run, so their bound is smaller.
search_max_steps_option = _max_steps("a million, or 100,000 for dfs and ipb")


def seed_option(f):
    return click.option("--seed", type=int, default=0, show_default=True,
                        help="Seed of the run (of the exploration's run 0).")(f)


def parse_sets(sets) -> dict:
    return parse_set(sets)


def check_positive(name: str, value, minimum: int = 1):
    if value is not None and value < minimum:
        raise BadInput(f"{name} must be at least {minimum}, got {value}")


def echo_json(obj) -> None:
    """Print ``obj`` as strict JSON: a number that is not finite (no estimate) becomes null."""
    import json
    click.echo(json.dumps(finite(obj), indent=2, sort_keys=False, allow_nan=False))


def finite(obj):
    """``obj`` with every NaN or infinite float replaced by None (JSON has no NaN)."""
    import math
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def prog() -> str:
    """How to run smpvm again the way the user just did, for the commands we print.

    ``smpvm`` when that is the script on PATH; the path the user typed
    (``.venv/bin/smpvm``) when it is not; ``python -m smpvm`` (with the
    interpreter as it must be typed) when invoked as a module.
    """
    import os
    import shlex
    import shutil
    import sys
    argv0 = sys.argv[0] if sys.argv else ""
    base = os.path.basename(argv0)
    if base == "__main__.py" and os.path.basename(os.path.dirname(argv0)) == "smpvm":
        exe = sys.executable or "python"
        for name in ("python3", "python"):
            found = shutil.which(name)
            if found and os.path.realpath(found) == os.path.realpath(exe):
                exe = name
                break
        else:
            exe = _as_typed(exe)
        return f"{shlex.quote(exe)} -m smpvm"
    if base != "smpvm" or os.sep not in argv0:
        return "smpvm"  # found on PATH, or not run as the script at all
    found = shutil.which("smpvm")
    if found and os.path.realpath(found) == os.path.realpath(argv0):
        return "smpvm"
    return shlex.quote(_as_typed(argv0))


def _as_typed(path: str) -> str:
    """``path`` relative to the working directory when inside it, else absolute."""
    import os
    ab = os.path.abspath(path)
    rel = os.path.relpath(ab)
    if rel.startswith(".."):
        return ab
    return rel if os.sep in rel else "." + os.sep + rel


def replay_command(path: str) -> str:
    """The one line that replays a saved failure, safe to paste into a shell."""
    import shlex
    return f"{prog()} replay {shlex.quote(path)}"
