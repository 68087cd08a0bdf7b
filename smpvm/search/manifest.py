"""Manifests: the JSON file beside a search's or a study's results that says what made them.

``explore.json``, a sweep's or study's ``manifest.json`` and saved failures are
all written the same way: whole or not at all (a reader, or a resume after a
crash, never sees half a file), one trailing newline.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os


@contextlib.contextmanager
def whole_file(path: str, mode: str = "w", **open_args):
    """Open a file that replaces ``path`` whole, or not at all: written as ``path.tmp``
    and renamed over ``path`` once the ``with`` block ends without an error, so that a
    reader, or a resume after a crash, finds the old file or the new one, never half."""
    tmp = f"{path}.tmp"
    with open(tmp, mode, **open_args) as fp:
        yield fp
    os.replace(tmp, path)


def write_manifest(path: str, doc: dict, *, indent: int = 2) -> None:
    """Write ``doc`` as JSON to ``path``, whole or not at all (``whole_file``)."""
    with whole_file(path, encoding="utf-8") as fp:
        json.dump(doc, fp, indent=indent, default=str)
        fp.write("\n")


@functools.cache
def smpvm_fingerprint() -> str:
    """sha256 of smpvm's own source files (names and bytes), once per process: what a
    saved search state or a Dask worker must match to go on with the same code."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    h = hashlib.sha256()
    for folder, subfolders, files in os.walk(root):
        subfolders.sort()
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                h.update(os.path.relpath(path, root).encode() + b"\0")
                with open(path, "rb") as fp:
                    h.update(fp.read())
    return h.hexdigest()
