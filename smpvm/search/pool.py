"""Local worker processes fed through one pipe each, with no threads in this process.

``concurrent.futures.ProcessPoolExecutor`` hands every task through three
threads of the caller (the caller's, a queue-management thread and a queue
feeder), each hand-over a wake-up and a pass of the GIL.  A search sends
hundreds of batches a second to its workers, and that took most of the
driver's CPU: about 0.8 ms a batch with 16 workers, most of a core beside
them.  Here the caller writes each task straight into a worker's pipe and
reads the results itself, when it waits on a future (``wait_first``,
``Future.result``): about a third of that.

What the searches rely on is kept: a task goes to the worker with the least
in hand, and each holds at most one waiting task beside the one it runs, so
a long task holds up at most one other; an exception in a task is delivered
through its future, with the worker's traceback; a worker that dies breaks
the pool (``BrokenProcessPool`` for every task not finished, as the standard
pool does), and the search replaces it.  Workers start at the first task,
so that a caller's ``gc.freeze`` before it reaches them, and they end when
this process does, however it ends.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing as mp
import pickle
import selectors
import signal
import threading
import time
import traceback
from collections import deque
from concurrent.futures.process import BrokenProcessPool

#: A task at least this long (pickled) goes only to an idle worker, which reads it
#: as it is written: a waiting one and a result coming back could fill both ways of
#: a pipe, each side blocked writing.
SMALL_TASK = 16 * 1024
#: Tasks a worker holds at most: the one it runs and the next.
DEPTH = 2


class _Worker:
    __slots__ = ("process", "conn", "held")

    def __init__(self, process, conn):
        self.process = process
        self.conn = conn
        #: The futures of the tasks sent to it and not answered, oldest first.
        self.held: deque = deque()


class ProcessPool(cf.Executor):
    """``workers`` local processes, each running ``initializer()`` first; used from one
    thread (the one that submits reads the results)."""

    def __init__(self, workers: int, initializer=None):
        self._n = workers
        self._initializer = initializer
        self._workers: list[_Worker] = []
        #: Each worker's pipe (a result to read) and sentinel (it ended), registered once.
        self._selector: selectors.BaseSelector | None = None
        self._queue: deque = deque()  # (future, pickled task) not yet given to a worker
        #: Futures answered during the current ``wait_first`` (None outside one).
        self._answered: list | None = None
        self._broken: str | None = None
        self._shut = False

    def width(self) -> int:
        """Tasks that can run at once."""
        return self._n

    # -- the executor's interface -------------------------------------------------------------

    def submit(self, fn, /, *args, **kwargs):
        if self._broken:
            raise BrokenProcessPool(self._broken)
        if self._shut:
            raise RuntimeError("cannot submit to a pool that was shut down")
        if not self._workers:
            self._start()
        fut = _Future(self)
        # results come back in the order each worker was given its tasks: no ids
        self._queue.append((fut, pickle.dumps((fn, args, kwargs), pickle.HIGHEST_PROTOCOL)))
        self._dispatch()
        if self._broken:
            raise BrokenProcessPool(self._broken)
        return fut

    def wait_first(self, futures, timeout: float | None = None) -> set:
        """The futures of ``futures`` that are done, once at least one is (or none, after
        ``timeout`` seconds)."""
        futures = set(futures)
        done = {f for f in futures if f.done()}
        if done or not futures:
            return done
        answered = self._answered = []
        try:
            self._pump(lambda: any(f in futures for f in answered), timeout)
        finally:
            self._answered = None
        finished = {f for f in answered if f in futures}
        return finished or {f for f in futures if f.done()}  # a broken pool failed them

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if self._shut:
            return
        self._shut = True
        if cancel_futures:
            for fut, _ in self._queue:
                fut.cancel()
        elif wait:
            self._pump(lambda: not self._queue and not any(w.held for w in self._workers))
        for w in self._workers:
            if w.held:  # running tasks whose results nobody waits for now
                w.process.kill()
            else:
                try:
                    w.conn.send_bytes(b"")  # the worker's cue to end
                except OSError:
                    pass
        for w in self._workers:
            w.process.join()
            w.conn.close()
            self._fail(w.held, "the pool was shut down before the task finished")
        self._fail((fut for fut, _ in self._queue), "the pool was shut down before the task ran")
        self._queue.clear()
        self._workers = []
        if self._selector is not None:
            self._selector.close()

    # -- the work -------------------------------------------------------------------------------

    def _start(self) -> None:
        ctx = mp.get_context()
        self._selector = selectors.DefaultSelector()
        forked = ctx.get_start_method() == "fork"
        with _interrupts_held():
            self._fork(ctx, forked)

    def _fork(self, ctx, forked: bool) -> None:
        for _ in range(self._n):
            here, there = ctx.Pipe()
            # a forked worker inherits this process's ends of the pipes so far, its own
            # included; it closes them, so that it reads the end of its pipe when this
            # process ends, however it ends (a spawned one is given only what it is passed)
            ours = [w.conn for w in self._workers] + [here] if forked else []
            proc = ctx.Process(target=_serve, args=(there, self._initializer, ours),
                               daemon=True)
            proc.start()
            there.close()
            w = _Worker(proc, here)
            self._workers.append(w)
            self._selector.register(here, selectors.EVENT_READ, (w, False))
            self._selector.register(proc.sentinel, selectors.EVENT_READ, (w, True))

    def _dispatch(self) -> None:
        """Hand queued tasks to the workers with room, the least loaded first."""
        queue = self._queue
        while queue and not self._broken:
            fut, task = queue[0]
            if fut.cancelled():
                queue.popleft()
                continue
            room = DEPTH if len(task) < SMALL_TASK else 1
            worker = min((w for w in self._workers if len(w.held) < room),
                         key=lambda w: len(w.held), default=None)
            if worker is None:
                return
            queue.popleft()
            if not fut.set_running_or_notify_cancel():
                continue
            worker.held.append(fut)
            try:
                worker.conn.send_bytes(task)
            except OSError:
                self._break()
                return

    def _pump(self, until, timeout: float | None = None) -> None:
        """Read results (handing out queued tasks as workers free up) until ``until()``,
        or for ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not until():
            if self._broken or not self._workers:
                return
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            for key, _ in self._selector.select(left):
                worker, ended = key.data
                if not ended:
                    self._receive(worker)
                else:  # only shutdown() ends a worker: it died
                    self._drain(worker)
                    self._break()
                if self._broken:
                    return
            self._dispatch()
            if left == 0.0:
                return

    def _receive(self, worker: _Worker) -> None:
        try:
            data = worker.conn.recv_bytes()
        except (EOFError, OSError):
            self._break()
            return
        fut = worker.held.popleft()
        try:
            ok, value, where = pickle.loads(data)
        except Exception as e:  # e.g. an exception class that does not unpickle
            ok, value, where = False, RuntimeError(f"a task's result could not be read: "
                                                   f"{type(e).__name__}: {e}"), None
        if ok:
            fut.set_result(value)
        else:
            if where:  # shown under the exception's own traceback, as the standard pool does
                value.__cause__ = RemoteTraceback(where)
            fut.set_exception(value)
        if self._answered is not None:
            self._answered.append(fut)

    def _drain(self, worker: _Worker) -> None:
        """Take the results that a worker which ended wrote before it did."""
        while worker.held and not self._broken and worker.conn.poll():
            self._receive(worker)

    def _break(self) -> None:
        """A worker died: every task not finished fails, as in the standard pool."""
        if self._broken:
            return
        self._broken = ("A process in the process pool was terminated abruptly while the "
                        "future was running or pending.")
        for w in self._workers:
            self._fail(w.held, self._broken)
            w.held.clear()
            w.process.kill()
        self._fail((fut for fut, _ in self._queue), self._broken)
        self._queue.clear()

    @staticmethod
    def _fail(futures, why: str) -> None:
        """Fail each of ``futures`` not done (a cancelled one stays cancelled)."""
        for fut in futures:
            if fut.done():
                continue
            if fut.running() or fut.set_running_or_notify_cancel():
                fut.set_exception(BrokenProcessPool(why))


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker (its ``__cause__`` here)."""

    def __str__(self) -> str:
        return f"\n\"\"\"\n{self.args[0]}\"\"\""


class _Future(cf.Future):
    """A future whose result is read from the workers by whoever waits for it."""

    def __init__(self, pool: ProcessPool):
        super().__init__()
        self._pool = pool

    def result(self, timeout=None):
        self._pool._pump(self.done, timeout)
        return super().result(0 if timeout is not None else None)

    def exception(self, timeout=None):
        self._pool._pump(self.done, timeout)
        return super().exception(0 if timeout is not None else None)


_HOLDS_SIGNALS = hasattr(signal, "pthread_sigmask")


@contextlib.contextmanager
def _interrupts_held():
    """Ctrl-C held back while workers start: each inherits the mask and lets it through
    only after its initializer (which may ignore it) has run, so a Ctrl-C in between
    cannot end a worker with a traceback."""
    if not _HOLDS_SIGNALS or threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _serve(conn, initializer, inherited=()) -> None:
    """A worker: run each task read from ``conn``, write back (ok, result or exception);
    ``inherited``: the pool's ends of pipes, to close."""
    for other in inherited:
        other.close()
    # the caller's handler (SIGTERM as Ctrl-C) would turn an end into a task's error
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if initializer is not None:
        initializer()
    if _HOLDS_SIGNALS:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    while True:
        try:
            task = conn.recv_bytes()
        except (EOFError, OSError):
            return
        if not task:
            return
        try:
            fn, args, kwargs = pickle.loads(task)
            reply = (True, fn(*args, **kwargs), None)
        except BaseException as e:  # delivered through the future, like any executor
            reply = (False, e, traceback.format_exc())
        try:
            data = pickle.dumps(reply, pickle.HIGHEST_PROTOCOL)
        except Exception as e:  # a result or an exception that does not pickle
            data = pickle.dumps((False, RuntimeError(f"{type(e).__name__}: {e}"), reply[2]),
                                pickle.HIGHEST_PROTOCOL)
        try:
            conn.send_bytes(data)
        except OSError:  # the pool's process is gone: nobody is left to tell
            return
