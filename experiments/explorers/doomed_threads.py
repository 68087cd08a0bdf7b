"""The doomed-object race as plain threaded Python, for the explorers that trace
bytecode (frontrun, interleave-test): ``models/freebsd/device_pager.py`` cut
down to what such a tool sees.

A terminator drops an object's last reference: under the object lock it marks
it dead, then unlinks it from the pager list and frees it.  Each allocator
looks the device's object up.  The sx-era allocator (``buggy``) walks the list
without the list lock and takes its reference under the object lock without
looking at the dead flag, so it can reference a dying object or touch a freed
one.  The fixed allocator looks up under the list lock, skips dead objects and
allocates outside the lock, looking again before it inserts.  What smpvm's
model has and this has not: simulated time, type-stable memory (a freed object
is here a flag, not a slot that the next allocation reuses) and the kernel's
lock hand-off; so counts of schedules differ between the two.
"""

import threading

OBJ_DEAD = 0x8


class VmObject:
    def __init__(self, handle):
        self.lock = threading.Lock()
        self.ref_count = 1
        self.flags = 0
        self.handle = handle
        self.freed = False


class Pager:
    """What the threads share: the device, the pager list, its locks, the findings."""

    def __init__(self):
        self.list_mtx = threading.Lock()
        self.create_sx = threading.Lock()
        self.dev = object()
        self.obj = VmObject(self.dev)
        self.pagers = (self.obj,)
        self.use_after_free = False
        self.doomed_references = 0


def touch(p, obj):
    if obj.freed:
        p.use_after_free = True


def terminator(p):
    obj = p.obj
    obj.lock.acquire()
    obj.ref_count -= 1
    if obj.ref_count > 0 or obj.flags & OBJ_DEAD:
        obj.lock.release()
        return
    obj.flags |= OBJ_DEAD
    obj.lock.release()
    p.list_mtx.acquire()
    p.pagers = tuple(o for o in p.pagers if o is not obj)
    p.list_mtx.release()
    obj.freed = True


def allocator_buggy(p):
    p.create_sx.acquire()
    obj = None
    for o in p.pagers:  # no list lock, no dead test
        if o.handle is p.dev:
            obj = o
            break
    if obj is None:
        obj = VmObject(p.dev)
        p.list_mtx.acquire()
        p.pagers = p.pagers + (obj,)
        p.list_mtx.release()
    else:
        touch(p, obj)
        obj.lock.acquire()
        touch(p, obj)
        obj.ref_count += 1
        if obj.flags & OBJ_DEAD:
            p.doomed_references += 1
        obj.lock.release()
    p.create_sx.release()
    touch(p, obj)  # the page fault on the new mapping
    return obj.flags


def lookup_referenced(p):
    """Under the list lock: the first live object of the device, referenced."""
    for o in [o for o in p.pagers if o.handle is p.dev]:
        touch(p, o)
        o.lock.acquire()
        if o.flags & OBJ_DEAD:
            o.lock.release()
            continue
        o.ref_count += 1
        o.lock.release()
        return o
    return None


def allocator_fixed(p):
    p.list_mtx.acquire()
    obj = lookup_referenced(p)
    p.list_mtx.release()
    if obj is None:
        fresh = VmObject(p.dev)
        p.list_mtx.acquire()
        obj = lookup_referenced(p)
        if obj is None:
            obj, fresh = fresh, None
            p.pagers = p.pagers + (obj,)
        p.list_mtx.release()
        if fresh is not None:  # another allocator inserted first
            fresh.freed = True
    touch(p, obj)
    return obj.flags


def holds(p) -> bool:
    """Nothing touched a freed object and nobody referenced a dead one."""
    return not p.use_after_free and p.doomed_references == 0


def workers(variant: str, allocators: int) -> list:
    alloc = allocator_buggy if variant == "buggy" else allocator_fixed
    return [terminator] + [alloc] * allocators
