"""Saved failures: one failing run, written down so that it replays exactly.

A failure file is a small JSON object that holds everything a run depends
on -- the model file (by path and by the sha256 of its contents), the
scenario, variant, parameters and CPU count, the run's seed and the list of
scheduling choices -- together with the violation the run ended with, so a
replay can check that it got the same one back (same kind, location and
simulated time).  The strategy that found the run and the exploration's master
seed and run number are kept as provenance; a replay does not need them.

Files are validated on load: anything missing or of the wrong type is one
line naming the file and the field, never a traceback.  Nothing read from a
file is executed.  A failure file is data, a model file is code (like a
pytest file): replaying imports only the model the ``target`` names, found
relative to the current directory or a ``root`` the user gives; a file whose
``model_path`` names another file than its ``target`` is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field

from ..violations import BadInput

from ..scenario import RunSpec, run_spec, split_target
from .manifest import write_manifest
from ..violations import KINDS, Violation

#: Marks a file as a saved failure, and its layout version.
FORMAT = "smpvm-failure/1"
#: The failure-file schema this smpvm writes and reads (docs/schema/failure.schema.json);
#: a file without the field is version 1.
SCHEMA_VERSION = 1


def model_fingerprint(path: str) -> str:
    """sha256 of a model file's bytes (hex); "" when the file cannot be read."""
    try:
        with open(path, "rb") as fp:
            return hashlib.sha256(fp.read()).hexdigest()
    except OSError:
        return ""


@dataclass
class Failure:
    """A saved failing run; see the module docstring."""

    #: ``path/to/model.py::scenario`` as it was given.
    target: str
    #: Absolute path of the model file when it was saved (checked against ``target``,
    #: never loaded).
    model_path: str
    #: sha256 of the model file when it was saved.
    model_sha256: str
    variant: str
    #: Parameter overrides (``--set``), as given.
    params: dict
    #: CPU count asked for (None: the scenario's own).
    cpus: int | None
    #: The run's own seed (drives the model's and the cost model's randomness).
    seed: int
    #: Every scheduling choice of the run, by CPU number.
    choices: list
    #: The violation the replay must reproduce.
    violation: Violation
    #: Directory model locations are shown relative to (so locations compare equal).
    source_root: str
    #: How the run was found: strategy description, master seed, run number.
    strategy: dict = field(default_factory=dict)
    master_seed: int | None = None
    run: int | None = None
    #: Preemptions in ``choices`` (the bug depth once shrunk), and before shrinking.
    preemptions: int | None = None
    original_preemptions: int | None = None
    max_steps: int | None = None
    smpvm_version: str = ""

    def to_dict(self) -> dict:
        return {
            "format": FORMAT, "schema_version": SCHEMA_VERSION,
            "smpvm_version": self.smpvm_version,
            "target": self.target, "model_path": self.model_path,
            "model_sha256": self.model_sha256, "variant": self.variant,
            "params": self.params, "cpus": self.cpus, "seed": self.seed,
            "strategy": self.strategy, "master_seed": self.master_seed, "run": self.run,
            "preemptions": self.preemptions, "original_preemptions": self.original_preemptions,
            "max_steps": self.max_steps, "source_root": self.source_root,
            "violation": self.violation.to_dict(), "choices": list(self.choices),
        }

    def model_file(self, root: str | None = None) -> str:
        """The model file to load: the one ``target`` names, relative to ``root``
        (default: the current directory).  ``model_path`` is never loaded: a failure
        file is data, and only the target it shows may choose the code that runs."""
        path, _ = split_target(self.target)
        full = os.path.abspath(os.path.join(root or os.getcwd(), path))
        if not os.path.isfile(full):
            where = f" (recorded in {self.source_root})" if self.source_root else ""
            raise BadInput(f"the failure's model {path} is not in {root or 'this directory'}"
                           f"{where}: run from the directory it was recorded in, or give "
                           f"--root DIR")
        return full

    def scenario_target(self, root: str | None = None) -> str:
        return f"{self.model_file(root)}::{split_target(self.target)[1]}"

    def spec(self, root: str | None = None) -> RunSpec:
        """The run this failure records (its model file as found under ``root``)."""
        return RunSpec(self.scenario_target(root), variant=self.variant, params=self.params,
                       cpus=self.cpus, seed=self.seed, max_steps=self.max_steps,
                       source_root=self.source_root or None)


def replay(failure: Failure, strategy=None, *, scn=None, trace=None, root=None):
    """Run a saved failure again from its recorded choices (or under ``strategy``).

    The one way every command replays a failure: ``smpvm replay``, ``smpvm
    report`` and the demo.  Recorded choices that do not fit the model raise
    ``ReplayMismatch``.
    """
    from ..strategies.replay import Replay
    return run_spec(failure.spec(root), strategy or Replay(failure.choices), scn=scn,
                    trace=trace)


def save_failure(path: str, failure: Failure) -> None:
    """Write ``failure`` to ``path`` (atomically: a reader never sees half a file)."""
    write_manifest(path, failure.to_dict(), indent=1)


def load_failure(path: str) -> Failure:
    """Read and validate a failure file; bad files raise ``BadInput`` with one line."""
    try:
        with open(path, encoding="utf-8") as fp:
            d = json.load(fp)
    except FileNotFoundError:
        raise BadInput(f"no failure file {path!r}") from None
    except OSError as e:
        raise BadInput(f"cannot read failure file {path}: {e.strerror}") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise BadInput(f"{path} is not JSON ({e}); give a file saved by 'smpvm explore'") from None
    return _from_dict(path, d)


def _from_dict(path: str, d) -> Failure:
    def bad(what: str) -> BadInput:
        return BadInput(f"{path} is not a valid smpvm failure file: {what}")

    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise bad(f"'format' is not {FORMAT!r}")
    version = d.get("schema_version", 1)
    if version != SCHEMA_VERSION or isinstance(version, bool):
        raise BadInput(f"{path} has schema_version {version!r}; this smpvm reads version "
                       f"{SCHEMA_VERSION} (replay it with the smpvm that wrote it)")
    need = {"target": str, "variant": str, "params": dict, "seed": int, "choices": list,
            "violation": dict}
    for key, typ in need.items():
        if key not in d:
            raise bad(f"missing {key!r}")
        if not isinstance(d[key], typ) or isinstance(d[key], bool):
            raise bad(f"{key!r} should be of type {typ.__name__}")
    if not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in d["choices"]):
        raise bad("'choices' must be a list of CPU numbers")
    if "::" not in d["target"]:
        raise bad("'target' must be path/to/model.py::scenario")
    model_path = d.get("model_path", "")
    if not isinstance(model_path, str):
        raise bad("'model_path' should be of type str")
    if not names_same_file(split_target(d["target"])[0], model_path, d.get("source_root")):
        raise bad(f"its target names {split_target(d['target'])[0]} but its model_path is "
                  f"{model_path}; refusing a file that does not agree on which code to run")
    cpus = d.get("cpus")
    if cpus is not None and (not isinstance(cpus, int) or cpus < 1):
        raise bad("'cpus' must be a positive integer or null")
    max_steps = d.get("max_steps")
    if max_steps is not None and (not isinstance(max_steps, int) or isinstance(max_steps, bool)
                                  or max_steps < 1):
        raise bad("'max_steps' must be a positive integer or null")
    v = d["violation"]
    if v.get("kind") not in KINDS:
        raise bad(f"violation kind {v.get('kind')!r} is not one of {', '.join(KINDS)}")
    try:
        violation = Violation.from_dict(v)
    except (KeyError, TypeError, ValueError) as e:
        raise bad(f"violation is incomplete ({type(e).__name__}: {e})") from None
    return Failure(
        target=d["target"], model_path=model_path,
        model_sha256=str(d.get("model_sha256", "")), variant=d["variant"],
        params=d["params"], cpus=cpus, seed=d["seed"], choices=d["choices"],
        violation=violation, source_root=str(d.get("source_root") or os.getcwd()),
        strategy=d.get("strategy") if isinstance(d.get("strategy"), dict) else {},
        master_seed=_opt_int(d.get("master_seed")), run=_opt_int(d.get("run")),
        preemptions=_opt_int(d.get("preemptions")),
        original_preemptions=_opt_int(d.get("original_preemptions")),
        max_steps=max_steps, smpvm_version=str(d.get("smpvm_version", "")))


def names_same_file(target_path: str, model_path: str, source_root) -> bool:
    """Do a failure's ``target`` (as typed, relative to ``source_root``) and its absolute
    ``model_path`` name one file?  The path as typed must at least end the absolute one."""
    if not model_path:
        return True
    norm = os.path.normpath
    if os.path.isabs(target_path):
        return norm(target_path) == norm(model_path)
    if isinstance(source_root, str) and source_root and \
            norm(os.path.join(source_root, target_path)) == norm(model_path):
        return True
    tail = norm(target_path).split(os.sep)
    return ".." not in tail and norm(model_path).split(os.sep)[-len(tail):] == tail


def _opt_int(x):
    return x if isinstance(x, int) and not isinstance(x, bool) else None


def failure_file_name(kind: str) -> str:
    """File name of the saved first failure of a violation kind."""
    return f"failure-{kind}.json"
