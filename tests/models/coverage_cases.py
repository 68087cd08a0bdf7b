"""Models for the coverage tests: state outside the model API, spin-waits, livelocks."""

import types

from smpvm import (Callout, Rcu, SharedDict, SharedList, Task, Taskqueue, WorkItem, Workqueue,
                   Zone, bookkeeping, cpu_relax, kassert, pause, scenario, spin_until, work)

#: A module-level table that threads write: invisible to the engine.
SEEN = {}


def check_then_act(m, grow, size, what):
    """Two threads: W grows some state once, C reads ``size()`` twice with a step
    between; the assertion fails in the schedules where W's step falls between."""
    def writer():
        yield pause()
        grow()

    def checker():
        yield pause()
        seen = size()
        yield pause()
        kassert(seen == size(), f"{what} changed between the check and the act")

    m.spawn(writer(), name="W")
    m.spawn(checker(), name="C")


@scenario(variants={"plain": "the log is a plain Python list",
                    "tracked": "the log is a SharedList"},
          description="B checks that A has not logged yet; a race only the log shows")
def plain_list(m, variant):
    log = [] if variant == "plain" else SharedList(m, "log")

    def checker():
        yield pause()
        kassert(len(log) == 0, "the checker saw the writer's entry")

    def writer():
        yield pause()
        log.append("written")

    m.spawn(checker(), name="checker")
    m.spawn(writer(), name="writer")


@scenario(description="two threads count in a module-level dict without a lock")
def global_dict(m, variant):
    SEEN.clear()

    def thread(name):
        yield pause()
        v = SEEN.get("n", 0)
        yield pause()
        SEEN["n"] = v + 1

    m.spawn(thread("a"), name="A")
    m.spawn(thread("b"), name="B")
    m.on_quiescence(lambda: kassert(SEEN.get("n") == 2, f"lost update: n = {SEEN.get('n')}"))


@scenario(description="two threads read one plain list of items that nobody changes")
def read_only_list(m, variant):
    box = m.shared("box", a=0, b=0)
    names = ["a", "b"]             # shared, never changed: nothing for the search to watch

    def thread(i):
        setattr(box, names[i], 1)
        yield pause()
        setattr(box, names[i], 2)

    m.spawn(thread(0), name="A")
    m.spawn(thread(1), name="B")


class _World:
    """A model's own object: the threads count their steps in it."""

    def __init__(self):
        self.steps = 0


@scenario(variants={"watched": "the step counter is shared state",
                    "declared": "the step counter is declared book-keeping"},
          description="a counter written by both threads that no decision reads")
def step_counter(m, variant):
    world = _World()
    if variant == "declared":
        bookkeeping(world, "steps")
    box = m.shared("box", a=0, b=0)

    def thread(name):
        setattr(box, name, 1)
        world.steps += 1
        yield pause()
        setattr(box, name, 2)

    m.spawn(thread("a"), name="A")
    m.spawn(thread("b"), name="B")


@scenario(variants={"pause": "the waiter polls with pause()",
                    "cpu_relax": "the waiter polls with cpu_relax()",
                    "spin_until": "the waiter uses spin_until()"},
          description="del_timer_sync-style: wait on another CPU until its handler is done")
def busy_wait(m, variant):
    timer = m.shared("timer", running=1, freed=0)

    def handler_cpu():
        yield work(300)               # the handler still runs for a while
        timer.running = 0

    def deleter():
        if variant == "spin_until":
            yield from spin_until(lambda: not timer.running)
        else:
            while timer.running:
                yield pause() if variant == "pause" else cpu_relax()
        kassert(not timer.running, "freed while the handler runs")
        timer.freed = 1

    m.spawn(deleter(), name="deleter")
    m.spawn(handler_cpu(), name="softclock")


@scenario(description="two CPUs each spin until the other's flag is set: a livelock")
def mutual_spin(m, variant):
    f = m.shared("flags", a=0, b=0)

    def a():
        while not f.b:
            yield cpu_relax()
        f.a = 1

    def b():
        while not f.a:
            yield cpu_relax()
        f.b = 1

    m.spawn(a(), name="a")
    m.spawn(b(), name="b")


@scenario(description="a worker counts in a loop that pauses, a waiter spins on it")
def counting_loop(m, variant):
    box = m.shared("box", n=0)

    def worker():
        for i in range(1500):          # its locals change: progress, not a spin
            box.n = i + 1
            yield pause()

    def waiter():
        while box.n < 1500:
            yield cpu_relax()

    m.spawn(waiter(), name="waiter")
    m.spawn(worker(), name="worker")


class _Slotted:
    """A model's own slotted object, one slot set later: the flag two threads race on."""

    __slots__ = ("flag", "later", "books")

    def __init__(self):
        self.flag = 0
        self.books = 0


@scenario(variants={"set": "the race is on a slot set from the start",
                    "unset": "the race is on a slot first set by a thread"},
          description="check-then-act on a slotted plain object")
def slotted(m, variant):
    obj = _Slotted()
    bookkeeping(obj, "books")

    def setter():
        yield pause()
        if variant == "set":
            obj.flag = 1
        else:
            obj.later = 1
        obj.books += 1

    def checker():
        yield pause()
        seen = obj.flag if variant == "set" else getattr(obj, "later", 0)
        yield pause()
        now = obj.flag if variant == "set" else getattr(obj, "later", 0)
        kassert(seen == now, "the flag changed between the check and the act")

    m.spawn(setter(), name="S")
    m.spawn(checker(), name="C")


@scenario(variants={"tuple": "the list is in a tuple in a field of a zone item",
                    "callback": "the list is in the closure of a function in a field",
                    "via-object": "the item is reached through a plain object both share"},
          description="check-then-act on a plain list that a model API item holds")
def list_in_an_item(m, variant):
    log = []

    def entries():
        return log
    holder = m.shared("holder", lists=entries if variant == "callback" else (log,))
    shared = types.SimpleNamespace(holder=holder)

    def read():
        if variant == "via-object":
            return shared.holder.lists[0]
        return holder.lists[0] if variant == "tuple" else holder.lists()
    check_then_act(m, lambda: read().append(1), lambda: len(read()), "the list")


@scenario(variants={"deque": "a collections.deque",
                    "array": "an array.array",
                    "ndarray": "a numpy array",
                    "counter": "an itertools.count",
                    "random": "a random.Random of the model's own",
                    "bound": "a list the threads hold only as its bound append",
                    "weakref": "a list the threads reach only through a weak reference"},
          description="check-then-act on state kept where Python cannot read it field by field")
def opaque_state(m, variant):
    import array
    import collections
    import itertools
    import random
    import weakref

    import numpy
    if variant == "deque":
        box = collections.deque()
        grow, size = (lambda: box.append(1)), (lambda: len(box))
    elif variant == "array":
        box = array.array("i", [0])
        grow, size = (lambda: box.__setitem__(0, box[0] + 1)), (lambda: box[0])
    elif variant == "ndarray":
        box = numpy.zeros(1)
        grow, size = (lambda: box.__setitem__(0, box[0] + 1)), (lambda: box[0])
    elif variant == "counter":
        box = itertools.count()
        grow, size = (lambda: next(box)), (lambda: repr(box))
    elif variant == "random":
        box = random.Random(1)
        grow, size = (lambda: box.random()), (lambda: box.getstate()[1][:4])
    elif variant == "bound":
        log = []
        push, peek = log.append, log.copy
        grow, size = (lambda: push(1)), (lambda: len(peek()))
    else:
        holder = _Holder([])
        m.keep_alive = holder  # alive for the run; the threads hold only the weak reference
        ref = weakref.ref(holder)
        grow, size = (lambda: ref().items.append(1)), (lambda: len(ref().items))
    check_then_act(m, grow, size, "the state")


class _Holder:
    def __init__(self, items):
        self.items = items


@scenario(variants={"spawn": "a thread starts another mid-run and hands it a list",
                    "field": "a thread stores a list in a field the other reads later",
                    "found": "a thread allocates an item holding a list; the other finds it "
                             "among the zone's live items",
                    "list-entry": "the list sits in a SharedList from the start",
                    "dict-entry": "the list sits in a SharedDict from the start",
                    "appended": "a thread appends a list to a SharedList mid-run"},
          description="check-then-act on a plain list handed over through the model API")
def handed_over(m, variant):
    holder = m.shared("holder", box=None)
    boxes = Zone(m, "boxes", {"box": None})
    entries = SharedList(m, "entries", [[]] if variant == "list-entry" else [])
    table = SharedDict(m, "table", {"k": []} if variant == "dict-entry" else {})

    def checker(log):
        seen = len(log)
        yield pause()
        kassert(seen == len(log), "the list grew between the check and the act")

    def starter():
        yield pause()
        log = []
        if variant == "spawn":
            m.spawn(checker(log), name="C")
        elif variant == "field":
            holder.box = log
        elif variant == "found":
            yield boxes.alloc(box=log)
        elif variant == "appended":
            entries.append(log)
        else:
            log = entries[0] if variant == "list-entry" else table["k"]
        yield pause()
        log.append(1)

    def reader():
        yield pause()
        yield pause()
        if variant == "field":
            log = holder.box
        elif variant == "found":
            live = boxes.live_items()
            log = live[0].box if live else None
        elif variant in ("appended", "list-entry"):
            log = entries[0] if len(entries) else None
        else:
            log = table["k"]
        if log is not None:
            yield from checker(log)

    m.spawn(starter(), name="S")
    if variant != "spawn":
        m.spawn(reader(), name="R")


@scenario(cpus=2,
          variants={"task": "a taskqueue task made mid-run, its handler closing over a list",
                    "work": "a workqueue item made mid-run, its handler closing over a list",
                    "rcu": "an RCU callback closing over a list",
                    "callout": "a callout armed with a handler closing over a list"},
          description="check-then-act on a plain list that deferred work appends to")
def deferred_work(m, variant):
    callout = Callout(m, "co", cpu=1) if variant == "callout" else None
    taskq = Taskqueue(m, "tq") if variant == "task" else None
    workq = Workqueue(m, "wq") if variant == "work" else None
    rcu = Rcu(m) if variant == "rcu" else None

    def starter():
        log = []

        def handler(*_):
            yield work(5)
            log.append(1)
        if variant == "task":
            yield taskq.enqueue(Task(m, "t", handler))
        elif variant == "work":
            yield workq.queue_work(WorkItem(m, "w", handler))
        elif variant == "rcu":
            yield rcu.call_rcu(handler)
        else:
            yield callout.reset(10, handler)
        seen = len(log)
        yield work(20)
        yield pause()
        kassert(seen == len(log), "the list grew between the check and the act")

    m.spawn(starter(), name="S", cpu=0)


@scenario(variants={"counter": "a class attribute counted up",
                    "list": "a list that is a class attribute"},
          description="check-then-act on a class attribute of the model's own")
def class_state(m, variant):
    class Box:  # made anew in each run
        count = 0
        items = []

    def grow():
        if variant == "counter":
            Box.count += 1
        else:
            Box.items.append(1)
    check_then_act(m, grow, lambda: Box.count if variant == "counter" else len(Box.items),
                   "the class attribute")


@scenario(variants={"counter": "a number the model hangs on the machine",
                    "list": "a list the model hangs on the machine"},
          description="check-then-act on state the model keeps on the machine object")
def machine_state(m, variant):
    m.count, m.items = 0, []

    def grow():
        if variant == "counter":
            m.count += 1
        else:
            m.items.append(1)
    check_then_act(m, grow, lambda: m.count if variant == "counter" else len(m.items),
                   "the machine's attribute")


@scenario(variants={"thread": "a thread rebinds a variable of the enclosing set-up",
                    "helper": "a helper function the thread calls rebinds it"},
          description="check-then-act on a closure variable that nonlocal code rebinds")
def nonlocal_state(m, variant):
    count = 0

    def bump():
        nonlocal count
        count += 1

    def writer():
        nonlocal count
        yield pause()
        if variant == "thread":
            count += 1
        else:
            bump()

    def checker():
        yield pause()
        seen = count
        yield pause()
        kassert(seen == count, "the variable changed between the check and the act")

    m.spawn(writer(), name="W")
    m.spawn(checker(), name="C")
