"""Models that misbehave in the ways a model file can, for the fault tests.

``misbehave``'s parameter ``how`` picks the fault, made by a thread's code
(``where="thread"``) or by the scenario's set-up (``where="setup"``):

* ``exit``: ``sys.exit(3)``; ``base``: raises a ``BaseException`` subclass;
* ``os_exit``: ``os._exit(0)``, only in a worker process (never in the process
  driving the search, which it would end with it);
* ``sleep``: blocks in a system call (``time.sleep(seconds)``);
* ``deaf``: the same with every signal the watchdog could wake it with ignored;
* ``loop``: loops forever between two yields;
* ``worker_loop``: the same, only in a worker process;
* ``none``: a plain two-thread counter, no fault.
"""

import multiprocessing
import os
import signal
import sys
import time

from smpvm import SleepMutex, kassert, scenario, work


class Shutdown(BaseException):
    """Not an ``Exception``: what a careless model might raise to stop everything."""


def fault(how, seconds):
    if how == "exit":
        sys.exit(3)
    if how == "base":
        raise Shutdown("stop the world")
    if how == "os_exit" and multiprocessing.parent_process() is not None:
        os._exit(0)
    if how == "deaf":
        for sig in (signal.SIGINT, signal.SIGUSR1):
            signal.signal(sig, signal.SIG_IGN)
    if how in ("sleep", "deaf"):
        time.sleep(seconds)
    while how == "loop" or (how == "worker_loop"
                             and multiprocessing.parent_process() is not None):
        pass


@scenario(variants={"default": "two threads bump a counter, one of them misbehaving"},
          params={"how": "none", "where": "thread", "seconds": 3600.0},
          description="a model that misbehaves on request")
def misbehave(m, variant, how, where, seconds):
    if where == "setup":
        fault(how, seconds)
    box = m.shared("box", n=0)
    mtx = SleepMutex(m, "box lock")
    m.spawn(bump(box, mtx, how if where == "thread" else "none", seconds), name="a")
    m.spawn(bump(box, mtx, "none", seconds), name="b")
    m.on_quiescence(lambda: kassert(box.n == 2, "lost an update"))


def bump(box, mtx, how, seconds):
    yield work(10)
    yield mtx.lock()
    n = box.n
    fault(how, seconds)
    yield work(5)
    box.n = n + 1
    yield mtx.unlock()
