"""The doomed-object race in ploom's operations: ``doomed_threads`` with every
shared field a ``SharedCell`` (which holds only immutable values, so the
pager list holds indices into the run's objects) and ploom's own locks."""

import ploom

OBJ_DEAD = 0x8


class VmObject:
    def __init__(self):
        self.lock = ploom.Lock()
        self.ref_count = ploom.SharedCell(1)
        self.flags = ploom.SharedCell(0)
        self.freed = ploom.SharedCell(False)


def scenario(variant: str, allocators: int):
    objs = [VmObject()]  # the heap: a thread publishes an object by its index
    obj = objs[0]
    pagers = ploom.SharedCell((0,))
    list_mtx, create_sx = ploom.Lock(), ploom.Lock()
    bad = ploom.SharedCell(0)  # uses after free and references to dead objects

    def new_object():
        objs.append(VmObject())
        return len(objs) - 1

    def touch(o):
        if o.freed.read():
            bad.write(bad.read() + 1)

    def terminator():
        obj.lock.acquire()
        obj.ref_count.write(obj.ref_count.read() - 1)
        if obj.ref_count.read() > 0 or obj.flags.read() & OBJ_DEAD:
            obj.lock.release()
            return
        obj.flags.write(obj.flags.read() | OBJ_DEAD)
        obj.lock.release()
        with list_mtx:
            pagers.write(tuple(i for i in pagers.read() if i != 0))
        obj.freed.write(True)

    def allocator_buggy():
        with create_sx:
            found = pagers.read()
            o = objs[found[0]] if found else None
            if o is None:
                i = new_object()
                o = objs[i]
                with list_mtx:
                    pagers.write(pagers.read() + (i,))
            else:
                touch(o)
                with o.lock:
                    touch(o)
                    o.ref_count.write(o.ref_count.read() + 1)
                    if o.flags.read() & OBJ_DEAD:
                        bad.write(bad.read() + 1)
        touch(o)

    def lookup_referenced():
        for i in pagers.read():
            o = objs[i]
            touch(o)
            with o.lock:
                if o.flags.read() & OBJ_DEAD:
                    continue
                o.ref_count.write(o.ref_count.read() + 1)
                return i
        return None

    def allocator_fixed():
        with list_mtx:
            i = lookup_referenced()
        if i is None:
            fresh = new_object()
            with list_mtx:
                i = lookup_referenced()
                if i is None:
                    i, fresh = fresh, None
                    pagers.write(pagers.read() + (i,))
            if fresh is not None:
                objs[fresh].freed.write(True)
        touch(objs[i])

    alloc = allocator_buggy if variant == "buggy" else allocator_fixed
    threads = [ploom.Thread(target=terminator)]
    threads += [ploom.Thread(target=alloc) for _ in range(allocators)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert bad.read() == 0, "use after free or a reference to a dead object"
