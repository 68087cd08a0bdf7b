"""The code a search runs, the same on every Dask worker: its model files and smpvm.

A Dask worker outlives the searches it serves and may sit on another
machine: its copy of a model file may be missing, or another version (the
file edited since an earlier search loaded it, which the worker would go on
running), and it may have another smpvm installed, or another Python, numpy
or SimPy, whose runs may differ.  So the driver hands its workers the source
of every model file as it runs it, through a worker plugin (which Dask also
runs on workers that join later, or replace a dead one), and every task
first makes its worker run that version, and refuses to run on an smpvm
whose source differs from the driver's, or on another runtime.  A worker
process runs one task at a time, whatever its threads.  Only this module and
``executors`` import Dask.
"""

from __future__ import annotations

import functools
import hashlib
import os
import sys
import threading

from distributed.diagnostics.plugin import WorkerPlugin

from ..scenario import give_model_sources, model_versions, use_model_versions
from ..violations import BadInput
from .manifest import smpvm_fingerprint


class ModelSources(WorkerPlugin):
    """Gives a worker the sources of a search's model files."""

    def __init__(self, versions: dict):
        self.versions = versions

    def setup(self, worker) -> None:
        give_model_sources(self.versions)


class NoSampling(WorkerPlugin):
    """Stops a worker's statistical profiler, which samples the frames of the task
    running and holds them a while: a frame held past its code's end keeps what
    the code pointed to alive, and an exhaustive search tells a free that leaves
    no pointer behind by reference counts (``Zone._settle``).  Sampled at times
    the search cannot know, a worker could take a free for one that leaves a
    pointer, run schedules the others would not, and write another runs.csv.
    (The cluster's dashboard shows no task profiles while it is off; a worker
    that joins later is set up the same way.)"""

    def setup(self, worker) -> None:
        # taken out, not only stopped: a worker that joins later sets its plugins up
        # before it starts its periodic callbacks
        for name in ("profile", "profile-cycle"):
            callback = worker.periodic_callbacks.pop(name, None)
            if callback is not None:
                callback.stop()


#: Held by the task running in this process.  A run keeps process-wide state (the
#: machine in progress, the operation just issued), so a worker with several threads
#: (Dask's default: one a core) runs one task at a time; pure Python holds the GIL
#: anyway, so its threads could not run two at once.
ONE_TASK_AT_A_TIME = threading.Lock()


@functools.cache
def runtime() -> dict:
    """What a run's results depend on besides smpvm and the model: the Python, numpy
    (the models' random streams) and SimPy (the devices' event order) versions."""
    import numpy
    import simpy
    return {"Python": "%d.%d" % sys.version_info[:2], "numpy": numpy.__version__,
            "SimPy": simpy.__version__}


def run_as_driver(smpvm_code: str, driver_runtime: dict, shas: dict, fn, *args, **kwargs):
    """A task: ``fn(*args, **kwargs)`` on the driver's smpvm, runtime and model versions
    ``shas``."""
    if smpvm_code != smpvm_fingerprint():
        from .. import __version__
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        raise BadInput(f"a Dask worker's smpvm ({__version__} at {here}) is not the driver's "
                       f"(their source files differ): install the same smpvm on every worker")
    for name, version in runtime().items():
        if driver_runtime.get(name) != version:
            raise BadInput(f"a Dask worker has {name} {version} where the driver has "
                           f"{driver_runtime.get(name)}: runs could differ; install the same "
                           f"on every worker")
    with ONE_TASK_AT_A_TIME:
        use_model_versions(shas)
        return fn(*args, **kwargs)


def ship_models(client, executor, paths) -> None:
    """Register the sources of ``paths`` with ``client``'s workers, and make every call
    ``executor`` submits run on those versions and on this process's smpvm."""
    versions = model_versions(paths)
    shas = {ab: sha for ab, (sha, _) in versions.items()}
    # one plugin per set of versions: searches of other versions may share the cluster
    key = hashlib.sha256(repr(sorted(shas.items())).encode()).hexdigest()[:16]
    plugins = [(NoSampling(), "smpvm-no-sampling")]
    if versions:
        plugins.append((ModelSources(versions), f"smpvm-models-{key}"))
    for plugin, name in plugins:
        try:
            client.register_plugin(plugin, name=name)
        except Exception as e:  # raised on a worker: without smpvm, say
            raise BadInput(f"a Dask worker could not load smpvm's code ({e}): install the "
                           f"same smpvm on every worker") from None
    code, here = smpvm_fingerprint(), runtime()
    submit = executor.submit

    def submit_as_driver(fn, /, *args, **kwargs):
        return submit(run_as_driver, code, here, shas, fn, *args, **kwargs)
    executor.submit = submit_as_driver
