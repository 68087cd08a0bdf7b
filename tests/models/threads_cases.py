"""Scenarios whose threads start other threads and wait for them.

* ``fork_join``: a parent starts two workers that each add to a shared
  counter under a lock, joins both and checks the sum.  Correct: no
  schedule fails; under the timed strategy the workers must run at all.
* ``early_child``: the parent publishes a value right after it creates the
  child; the child asserts the value is there.  It fails only in schedules
  where the child runs between its creation and the parent's next code:
  creation is a scheduling point.
* ``join_stuck``: the parent joins a child that sleeps forever: a stall.
* ``spawn_direct``: the parent starts its child with ``m.spawn`` mid-run
  (not through an operation); the child records that it ran.
"""

from smpvm import (SleepMutex, any_waiter, join, kassert, msleep, scenario, spawn_thread,
                   tsleep, wakeup, wakeup_one, work)



@scenario(params={"workers": 2})
def fork_join(m, variant, workers):
    box = m.shared("box", total=0)
    mtx = SleepMutex(m, "box lock")

    def worker(k):
        yield work(20)
        yield mtx.lock()
        box.total += k
        yield mtx.unlock()

    def parent():
        children = []
        for k in range(1, workers + 1):
            t = yield spawn_thread(worker(k), name=f"worker{k}")
            children.append(t)
        for t in children:
            yield join(t)
        kassert(box.total == workers * (workers + 1) // 2, "a worker's addition is missing")
        m.metric("total", box.total)

    m.spawn(parent(), name="parent")


@scenario()
def early_child(m, variant):
    box = m.shared("box", ready=0)

    def child():
        kassert(box.ready == 1, "the child ran before the parent published")
        yield work(1)

    def parent():
        yield spawn_thread(child(), name="child")
        box.ready = 1
        yield work(1)

    m.spawn(parent(), name="parent")


@scenario()
def join_stuck(m, variant):
    def child():
        yield tsleep("never")

    def parent():
        t = yield spawn_thread(child(), name="sleeper")
        yield join(t)

    m.spawn(parent(), name="parent")


@scenario()
def spawn_direct(m, variant):
    def child():
        yield work(5)
        m.metric("child_ran", 1)

    def parent():
        yield work(10)
        m.spawn(child(), name="child")
        yield work(10)

    m.spawn(parent(), name="parent")


@scenario(variants={"fifo": "wakeup_one wakes the longest sleeper",
                    "any": "any_waiter: the strategy chooses"})
def signal_one(m, variant):
    """Two waiters sleep on a condition; one signal, then another: who wakes first?"""
    g = m.shared("cond", sleepers=0, tokens=0)
    mtx = SleepMutex(m, "cond mutex")
    order = {"slept": [], "woke": []}
    if variant == "any":
        any_waiter("cv")

    def waiter(name):
        yield mtx.lock()
        g.sleepers += 1
        order["slept"].append(name)
        yield wakeup("ready")
        while not g.tokens:
            yield msleep("cv", mtx)
        g.tokens -= 1
        order["woke"].append(name)
        yield wakeup("consumed")
        yield mtx.unlock()

    def signaller():
        yield mtx.lock()
        while g.sleepers < 2:
            yield msleep("ready", mtx)
        for n in range(2):
            g.tokens += 1
            yield wakeup_one("cv")
            while len(order["woke"]) <= n:  # one signal at a time
                yield msleep("consumed", mtx)
        yield mtx.unlock()

    m.spawn(waiter("a"), name="a")
    m.spawn(waiter("b"), name="b")
    m.spawn(signaller(), name="signaller")
    m.on_quiescence(lambda: m.metric("first", (order["slept"][0], order["woke"][0])))
