"""Where runs execute: in this process, on local processes, or on a Dask cluster.

Exploration and sweeps hand work to a ``concurrent.futures.Executor`` and
know nothing else about where it runs:

* ``workers=1``: in this process, in order (deterministic, debuggable);
* ``workers=N`` (default: one per core): local worker processes
  (``pool.ProcessPool``, fed through pipes with no threads here);
* ``dask="tcp://host:8786"``: an existing Dask cluster, through
  ``Client(address).get_executor()``; ``dask="local"`` starts a
  ``LocalCluster`` on this machine.

Only this module (and ``dask_code``, which makes a cluster's workers run the
driver's model files and smpvm) imports Dask, and only when asked to.
Per-run results do not depend on the executor: every run is a pure function
of its inputs.

A cluster can fail in ways a process pool cannot, and none of them may hang
the search: an address that does not answer as a Dask scheduler is refused
after ``SMPVM_DASK_CONNECT_S`` seconds (default 20); a scheduler that goes
away is given as long to come back; a cluster left without workers for
``SMPVM_DASK_NO_WORKERS_S`` seconds (default 60) is given up.  Each ends the
search with ``ClusterLost``: what finished is on disk and ``--resume`` goes on.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import gc
import os
import threading
import time
import warnings


class ClusterLost(Exception):
    """The Dask cluster went away (or lost all its workers) while runs were out."""


def _seconds(name: str, default: float) -> float:
    try:
        return max(1.0, float(os.environ.get(name, default)))
    except ValueError:
        return default


def connect_s() -> float:
    return _seconds("SMPVM_DASK_CONNECT_S", 20)


def no_workers_s() -> float:
    return _seconds("SMPVM_DASK_NO_WORKERS_S", 60)


class InlineExecutor(cf.Executor):
    """Runs each submitted call at once, in the caller's process."""

    def width(self) -> int:
        """Calls that can run at once."""
        return 1

    def submit(self, fn, /, *args, **kwargs):
        fut = cf.Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except Exception as e:  # delivered through the future, like any executor
            fut.set_exception(e)
        return fut  # an interrupt (KeyboardInterrupt) propagates at once


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)


def max_workers() -> int:
    """The most local worker processes: eight per core (beyond that, only memory grows)."""
    return 8 * default_workers()


def describe(workers: int | None, dask: str | None) -> str:
    if dask:
        return f"dask {dask}"
    w = workers or default_workers()
    return "in-process" if w == 1 else f"{w} local processes"


@contextlib.contextmanager
def make_executor(workers: int | None = None, dask: str | None = None, models=()):
    """Yield an executor for the requested place; shut it down afterwards.

    ``models``: the model files the calls load.  Dask workers are given their
    sources as this process runs them, and run only on this smpvm
    (``dask_code``): a worker's own copies may be missing or other versions.
    Local processes are forked from this one, with the models loaded.

    Its ``start_s`` says how long it took to bring up (Dask's import and a local
    cluster's processes, or a scheduler's connection; the pool forks its workers
    later, at the first task), which a search reports apart from its runs' time.
    """
    t0 = time.perf_counter()
    if dask is not None and not dask.strip():
        from ..violations import BadInput
        raise BadInput("--dask needs a Dask scheduler's address (tcp://HOST:PORT) or 'local'")
    if dask:
        Client, LocalCluster = _dask_classes()
        import dask as dask_config
        with contextlib.ExitStack() as stack:
            cluster = None
            if dask == "local":
                stack.enter_context(frozen_heap())
                # held while the cluster lives: a worker restarted after it died is
                # started the same way
                stack.enter_context(dask_config.config.set(LOCAL_CLUSTER_CONFIG))
                cluster = _local_cluster(LocalCluster, workers or default_workers())
                client = Client(cluster)
            else:
                client = _connect(Client, dask)
            try:
                with _quiet_dask():  # smpvm says in one line what went wrong
                    # pure=False: a task's key is not a hash of its arguments (no
                    # hashing of the plan per task; a batch sent again is a new task)
                    ex = client.get_executor(pure=False)
                    # the workers there now load the models' sources at once, so one
                    # that cannot (no smpvm) is said here rather than as lost runs
                    _wait_for_a_worker(client, dask)
                    from .dask_code import ship_models
                    ship_models(client, ex, models)
                    ex.check_alive = _Health(client, dask)
                    ex.through_scheduler = True  # a round trip costs ms: tasks do more
                    # a worker process runs one task at a time (``dask_code``)
                    ex.width = lambda: max(1, len(client.nthreads()))
                    ex.start_s = time.perf_counter() - t0
                    yield ex
            finally:
                with _quiet_dask():
                    client.close()
                    if cluster is not None:
                        cluster.close()
        return
    w = workers or default_workers()
    if w == 1:
        inline = InlineExecutor()
        inline.start_s = time.perf_counter() - t0
        yield inline
        return
    # Ctrl-C reaches the whole process group; it is this process's to handle: a worker
    # that died of it would break the pool (and print a traceback) on the way out
    from .pool import ProcessPool
    pool = ProcessPool(w, initializer=_leave_interrupts_to_parent)
    try:
        with frozen_heap():  # the workers are forked as work comes
            pool.start_s = time.perf_counter() - t0
            yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def frozen_heap():
    """The objects of this process left out of the cycle collector's passes meanwhile.

    Workers are forked from this process.  A forked worker's collector would
    otherwise go over every object it inherited (the model, smpvm, whatever
    the caller had), writing to each one's header and so copying the pages
    that hold them; in a two-worker dfs search of the doomed-object model
    that was half the workers' page faults and about a tenth of their CPU.
    Objects made meanwhile are collected as ever; those from before are
    handed back to the collector at the end.  A caller that froze the heap
    itself keeps it frozen.
    """
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


#: Seconds between checks that a cluster is still there while no work finishes.
HEALTH_CHECK_S = 2.0


def wait_first(ex, inflight) -> set:
    """The futures of ``inflight`` that finished first; asks a cluster executor whether
    it still lives while none does (``ClusterLost`` when it is gone)."""
    own = getattr(ex, "wait_first", None)
    if own is not None:
        return own(inflight)
    check = getattr(ex, "check_alive", None)
    while True:
        finished, _ = cf.wait(list(inflight), timeout=HEALTH_CHECK_S if check else None,
                              return_when=cf.FIRST_COMPLETED)
        if finished:
            return finished
        check()


def _leave_interrupts_to_parent() -> None:
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _connect(Client, address: str):
    """A client of the scheduler at ``address``, or bad input within ``connect_s()``.

    Dask's own connect timeout does not cover a server that accepts the
    connection and never answers (an HTTP server, say): the client is made in
    a thread that is abandoned when it does not finish in time.
    """
    from ..violations import BadInput
    _check_address(address)
    limit = connect_s()
    box: dict = {}

    def connect():
        try:
            box["client"] = Client(address, timeout=f"{limit}s", set_as_default=False)
        except BaseException as e:  # delivered to the caller below
            box["error"] = e
    t = threading.Thread(target=connect, name="smpvm-dask-connect", daemon=True)
    with warnings.catch_warnings():
        # Dask's table of package versions that differ between client, scheduler and
        # workers: what matters is smpvm's, which every task checks (``dask_code``)
        from distributed.versions import VersionMismatchWarning
        warnings.simplefilter("ignore", VersionMismatchWarning)
        t.start()
        t.join(limit + 1)
    if "client" in box:
        return box["client"]
    why = f": {box['error']}" if "error" in box else f" within {limit:g} s"
    raise BadInput(f"no Dask scheduler answered at {address}{why} (is it a Dask "
                   f"scheduler's address, tcp://HOST:PORT?)")


def _check_address(address: str) -> None:
    """Bad input for an address no client could connect to (no port, a port out of
    range, an unknown scheme, a transport not set up here), found with Dask's own
    parser before a client is made: a client whose constructor fails waits out its
    timeout again as it is freed, then prints a traceback."""
    from distributed.comm.addressing import parse_address
    from distributed.comm.registry import get_backend
    from ..violations import BadInput
    why = None
    try:
        scheme, location = parse_address(address, strict=False)
        backend = get_backend(scheme)  # ValueError: a scheme Dask does not know
        if scheme == "inproc":
            why = "an inproc address reaches only a scheduler inside this process"
        elif not _usable(backend):
            why = f"Dask's {scheme} transport is not installed here"
        elif scheme in ("tls", "wss") and not _tls_set_up():
            why = "TLS is not set up for Dask here (see distributed.comm.tls in its configuration)"
        else:
            try:
                port = backend.get_address_host_port(location)[1]
            except NotImplementedError:  # (a backend that does not say)
                port = None
            if port is not None and not 0 < port < 65536:
                why = f"port {port} is out of range"
    except ValueError as e:  # Dask's parser: no port, not a number, an unknown scheme
        why = f"not a scheduler's address ({e})"
    if why is not None:
        raise BadInput(f"--dask {address}: {why}; give tcp://HOST:PORT, or 'local' for a "
                       f"cluster on this machine")


def _tls_set_up() -> bool:
    """Does Dask's configuration give a client what a TLS connection needs?"""
    from distributed.security import Security
    return Security().get_connection_args("client").get("ssl_context") is not None


def _usable(backend) -> bool:
    """Can the transport make a connection here (UCX needs a package of its own)?"""
    try:
        backend.get_connector()
    except (TypeError, ImportError, NotImplementedError):
        return False
    return True


def remote_cluster(dask: str | None) -> bool:
    """Does ``--dask`` name a cluster's address (not ``local``, not absent or empty)?"""
    return bool(dask and dask.strip()) and dask != "local"


def dask_workers(address: str) -> int:
    """The worker processes of the Dask cluster at ``address`` (waiting for one as a
    search would), for sizing a search that was not told how many there are."""
    Client, _ = _dask_classes()
    client = _connect(Client, address)
    try:
        with _quiet_dask():
            _wait_for_a_worker(client, address)
            return max(1, len(client.nthreads()))
    finally:
        with _quiet_dask():
            client.close()


def _dask_classes():
    """Dask's ``Client`` and ``LocalCluster``; bad input where Dask is not installed."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        from ..violations import BadInput
        raise BadInput("--dask needs the dask extra: pip install 'smpvm[dask]'") from None
    return Client, LocalCluster


def _wait_for_a_worker(client, address) -> None:
    """Until the cluster has a worker; ``ClusterLost`` after ``no_workers_s()``."""
    try:
        client.wait_for_workers(1, timeout=no_workers_s())
    except TimeoutError:
        raise _no_workers(address) from None


def _no_workers(address) -> ClusterLost:
    """What a search is told when the cluster at ``address`` has had no workers too long."""
    return ClusterLost(f"the Dask cluster at {address} has had no workers for "
                       f"{no_workers_s():g} s")


class _Health:
    """``check_alive()``: raises ``ClusterLost`` when the cluster is gone or has no workers."""

    def __init__(self, client, address):
        self.client = client
        self.address = address
        self.workers_seen = time.monotonic()

    def __call__(self) -> None:
        if self.client.status not in ("running", "connecting", "newly-created"):
            raise ClusterLost(f"the Dask scheduler at {self.address} went away "
                              f"(client {self.client.status})")
        now = time.monotonic()
        if self.client.scheduler_info().get("workers"):
            self.workers_seen = now
        elif now - self.workers_seen > no_workers_s():
            raise _no_workers(self.address)


#: Dask settings for a ``--dask local`` cluster.  Its workers are forked from this
#: process, which has Dask, smpvm and the model loaded already: a spawned worker
#: imports all of them again (a second of CPU each, on the cores the search needs),
#: a forked one starts in a few milliseconds.  The workers run long tasks of pure
#: Python, so they are spared what only a dashboard shows: the statistical profiler
#: (a sample of every thread's stack each 10 ms), the event-loop health tick (each
#: 20 ms) and the system monitor (each 0.5 s); together these took about 6% of a
#: worker's CPU in a doomed-object search.  The worker's memory (against its spill,
#: pause and terminate limits) is read each second rather than ten times a second,
#: by the worker and by its nanny in this process: that halved the CPU that the
#: cluster's event loops take while the runs go on.
LOCAL_CLUSTER_CONFIG = {
    "distributed.worker.multiprocessing-method": "fork",
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.worker.memory.monitor-interval": "1s",
}


def _local_cluster(LocalCluster, n: int):
    """A LocalCluster whose worker processes leave Ctrl-C to this one (no tracebacks)."""
    import signal
    try:
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited by the workers
    except ValueError:  # not the main thread
        old = None
    quiet = {"DASK_LOGGING__DISTRIBUTED": "critical"}  # read by the workers as they start
    saved = {k: os.environ.get(k) for k in quiet}
    os.environ.update(quiet)
    try:
        # no dashboard; the scheduler's HTTP server (metrics) on any free port, not on
        # 8787, which another cluster or a notebook's dashboard may hold (Dask would
        # then warn on stderr and take another)
        with _quiet_dask():  # a forked worker keeps these quiet loggers
            return LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                dashboard_address=None,
                                scheduler_kwargs={"dashboard": False,
                                                  "dashboard_address": ":0"})
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if old is not None:
            signal.signal(signal.SIGINT, old)


@contextlib.contextmanager
def _quiet_dask():
    """Dask's shutdown chatter (lost connections, cancelled tasks) says nothing new."""
    import logging
    names = [n for n in list(logging.root.manager.loggerDict)
             if n.split(".")[0] in ("distributed", "tornado", "asyncio", "concurrent")]
    loggers = [logging.getLogger(n) for n in
               ["distributed", "tornado", "asyncio", "concurrent.futures"] + names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
