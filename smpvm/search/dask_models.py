"""The model files a search runs, carried to its Dask workers.

A Dask worker outlives the searches it serves and may sit on another
machine: its copy of a model file may be missing, or another version (the
file edited since an earlier search loaded it, which the worker would go on
running).  So the driver hands its workers the source of every model file
as it runs it, through a worker plugin (which Dask also runs on workers that
join later, or replace a dead one), and every task first makes its worker run
that version.  Only this module and ``executors`` import Dask.
"""

from __future__ import annotations

import hashlib

from distributed.diagnostics.plugin import WorkerPlugin

from ..scenario import give_model_sources, model_versions, use_model_versions


class ModelSources(WorkerPlugin):
    """Gives a worker the sources of a search's model files."""

    def __init__(self, versions: dict):
        self.versions = versions

    def setup(self, worker) -> None:
        give_model_sources(self.versions)


def run_on_model_versions(shas: dict, fn, *args, **kwargs):
    """A task: ``fn(*args, **kwargs)`` on the model versions ``shas`` names."""
    use_model_versions(shas)
    return fn(*args, **kwargs)


def ship_models(client, executor, paths) -> None:
    """Register the sources of ``paths`` with ``client``'s workers, and make every call
    ``executor`` submits run on those versions."""
    versions = model_versions(paths)
    if not versions:
        return
    shas = {ab: sha for ab, (sha, _) in versions.items()}
    # one plugin per set of versions: searches of other versions may share the cluster
    key = hashlib.sha256(repr(sorted(shas.items())).encode()).hexdigest()[:16]
    client.register_plugin(ModelSources(versions), name=f"smpvm-models-{key}")
    submit = executor.submit

    def submit_on_versions(fn, /, *args, **kwargs):
        return submit(run_on_model_versions, shas, fn, *args, **kwargs)
    executor.submit = submit_on_versions
