"""A scenario that kills the worker process running it, to test exploration's recovery.

A real model never does this; a model that segfaults an extension, runs the
machine out of memory or is killed by an operator looks the same to the
exploration driver: a worker process vanishes in the middle of a batch.
The scenario kills its process only when it runs in a worker (never in the
process that drives the exploration), on runs whose seed is divisible by
``every`` (never when 0).  With ``once`` set it first creates the file
``marker`` and spares every later run once the marker exists, so exactly one
worker dies; without it, every such run kills its worker, every time.
"""

import multiprocessing
import os

from smpvm import SleepMutex, kassert, scenario, work


@scenario(variants={"default": "two threads bump a counter under a lock"},
          params={"every": 0, "marker": "", "once": True},
          description="kills its worker process on some runs")
def killer(m, variant, every, marker, once):
    if every and m.seed % every == 0 and multiprocessing.parent_process() is not None:
        if not once:
            os._exit(3)
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            pass
        else:
            os.close(fd)
            os._exit(3)
    box = m.shared("box", n=0)
    mtx = SleepMutex(m, "box lock")
    for name in ("a", "b"):
        m.spawn(bump(box, mtx), name=name)
    m.on_quiescence(lambda: kassert(box.n == 2, "lost an update"))


def bump(box, mtx):
    yield work(10)
    yield mtx.lock()
    n = box.n
    yield work(5)
    box.n = n + 1
    yield mtx.unlock()
