"""Shell completion of targets and variants (click's completion, see the README).

``path.py::`` completes to the file's scenarios, a path to files and
directories, and ``--variant`` to the variants of the targets already typed.
A model that cannot be loaded completes to nothing rather than an error.
"""

from __future__ import annotations

from click.shell_completion import CompletionItem


def _scenarios(path: str) -> list:
    from ..scenario import scenarios_in
    try:
        return scenarios_in(path)
    except Exception:  # completion must never fail the shell
        return []


def complete_target(ctx, param, incomplete: str) -> list:
    """``file.py::`` -> its scenarios; anything else -> paths (the shell lists them)."""
    if "::" in incomplete:
        path, prefix = incomplete.rsplit("::", 1)
        return [CompletionItem(f"{path}::{s.name}", help=s.description.split("\n")[0])
                for s in sorted(_scenarios(path), key=lambda s: s.name)
                if s.name.startswith(prefix)]
    return [CompletionItem(incomplete, type="file")]


def complete_variant(ctx, param, incomplete: str) -> list:
    """The variants of the scenarios among the targets typed so far, and ``all``."""
    names = []
    # While completing an option, click leaves the positional targets in ``ctx.args``.
    typed = list(ctx.params.get("targets") or ()) + [a for a in ctx.args if "::" in a]
    for target in typed:
        path, _, scenario = target.partition("::")
        for s in _scenarios(path):
            if not scenario or s.name == scenario:
                names += [v for v in s.variants if v not in names]
    return [CompletionItem(v) for v in names + ["all"] if v.startswith(incomplete)]
