"""A study made smaller from the command line: ``sweep FILE --set k=v --seeds N``.

A quick check of a study should not need a copy of its TOML.  ``--set k=v``
on a swept parameter keeps only the values given (``--set cpus=1,2,4``); on
any other it fixes the parameter's value for every run (a ``[run]`` entry);
``--seeds N`` sets the runs per point.  The edits apply to the file's data
before it is validated, so the usual checks name anything wrong.
"""

from __future__ import annotations

from ..violations import BadInput


def parse_value(text: str):
    """A command-line value as TOML would read it: integer, float, true/false, else text."""
    t = text.strip()
    if t.lower() in ("true", "false"):
        return t.lower() == "true"
    for kind in (int, float):
        try:
            return kind(t)
        except ValueError:
            pass
    return t


def apply_sets(data: dict, sets, seeds: int | None) -> dict:
    """``data`` (a study file, parsed) with the command line's edits; the file is untouched."""
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    for item in sets or ():
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise BadInput(f"--set takes key=value, got {item!r}")
        swept = data.get("sweep") or {}
        if key in swept:
            values = [parse_value(v) for v in value.split(",") if v.strip()]
            if not values:
                raise BadInput(f"--set {key}= needs at least one value")
            data["sweep"][key] = values
        elif key == "variant" and "variant" in (data.get("model") or {}):
            data["model"]["variant"] = parse_value(value)
        else:
            data.setdefault("run", {})[key] = parse_value(value)
    if seeds is not None:
        if seeds < 1:
            raise BadInput(f"--seeds must be at least 1, got {seeds}")
        data["seeds"] = seeds
        if "max_seeds" in data and data["max_seeds"] < seeds:
            data["max_seeds"] = seeds
    return data
