"""Manifests: the JSON file beside a search's or a study's results that says what made them.

``explore.json``, a sweep's or study's ``manifest.json`` and saved failures are
all written the same way: whole or not at all (a reader, or a resume after a
crash, never sees half a file), one trailing newline.
"""

from __future__ import annotations

import json
import os


def write_manifest(path: str, doc: dict, *, indent: int = 2) -> None:
    """Write ``doc`` as JSON to ``path`` atomically (through ``path.tmp`` and a rename)."""
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fp:
        json.dump(doc, fp, indent=indent, default=str)
        fp.write("\n")
    os.replace(tmp, path)
