"""Where runs execute: in this process, on local processes, or on a Dask cluster.

Exploration and sweeps hand work to a ``concurrent.futures.Executor`` and
know nothing else about where it runs:

* ``workers=1``: in this process, in order (deterministic, debuggable);
* ``workers=N`` (default: one per core): a ``ProcessPoolExecutor``;
* ``dask="tcp://host:8786"``: an existing Dask cluster, through
  ``Client(address).get_executor()``; ``dask="local"`` starts a
  ``LocalCluster`` on this machine.

Only this module imports Dask, and only when asked to.  Per-run results do
not depend on the executor: every run is a pure function of its inputs.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import os


class InlineExecutor(cf.Executor):
    """Runs each submitted call at once, in the caller's process."""

    def submit(self, fn, /, *args, **kwargs):
        fut = cf.Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except Exception as e:  # delivered through the future, like any executor
            fut.set_exception(e)
        return fut  # an interrupt (KeyboardInterrupt) propagates at once


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)


def describe(workers: int | None, dask: str | None) -> str:
    if dask:
        return f"dask {dask}"
    w = workers or default_workers()
    return "in-process" if w == 1 else f"{w} local processes"


@contextlib.contextmanager
def make_executor(workers: int | None = None, dask: str | None = None):
    """Yield an executor for the requested place; shut it down afterwards."""
    if dask:
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:
            from ..violations import BadInput
            raise BadInput("--dask needs the dask extra: pip install 'smpvm[dask]'") from None
        cluster = None
        if dask == "local":
            cluster = LocalCluster(n_workers=workers or default_workers(), threads_per_worker=1,
                                   processes=True, dashboard_address=None)
            client = Client(cluster)
        else:
            try:
                client = Client(dask, timeout="10s")
            except (OSError, TimeoutError) as e:
                from ..violations import BadInput
                raise BadInput(f"cannot reach the Dask scheduler at {dask}: {e}") from None
        try:
            yield client.get_executor()
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
        return
    w = workers or default_workers()
    if w == 1:
        yield InlineExecutor()
        return
    pool = cf.ProcessPoolExecutor(max_workers=w)
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
