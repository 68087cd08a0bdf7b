"""Tiny scenarios whose schedules can be counted by hand, for the ``dfs`` tests.

What the engine calls a *step* is one pending operation plus the model code
up to the next ``yield``.  A thread's first step runs its code up to its first
yield, so a thread written as ``code; yield pause(); code`` takes exactly two
steps, and two such threads have C(4, 2) = 6 interleavings.

* ``independent``: two CPUs, two steps each, on fields of their own.
* ``shared_field``: two CPUs, two steps each, every step writes one field.
* ``locked_counter``: two (or ``threads``) CPUs add one to a counter under a
  sleep mutex (load and store as separate steps), so some of them may wait.
* ``two_preemptions``: a bug that shows only in A1 B1 A2 B2, where A is
  preempted after its first step and B after its own.
* ``handshake``: a consumer sleeps (``msleep``) until a producer publishes;
  in the ``lost-wakeup`` variant the consumer tests the flag without the
  mutex, so the wakeup may come between its test and its sleep.
* ``abba``: two locks taken in opposite orders (a deadlock in some
  schedules, a lock-order reversal in all that take both pairs).
* ``interrupted``: a disk interrupt on CPU 0 at a fixed time; whether it
  comes before or after a step depends on simulated time, which every step
  moves.
* ``late_interrupt``: a thread holding a mutex raises an interrupt on the
  other thread's CPU, which may be spinning for that mutex when it lands:
  interrupts that appear mid-run, after steps taken with none.
* ``dice``: two threads draw from the model's random stream ``m.rng``, so
  which one draws first decides what each gets.

Every scenario reports its final state as the metric ``outcome`` (and the
values threads saw as ``saw*``), so tests can compare the sets of final
states two searches reach.
"""

from smpvm import SPLBIO, SleepMutex, kassert, msleep, pause, scenario, wakeup, work


def _report(m, box, *fields):
    m.on_quiescence(lambda: m.metric("outcome", tuple(getattr(box, f) for f in fields)))


@scenario(description="two CPUs, two steps each, nothing shared")
def independent(m, variant):
    a = m.shared("left", x=0)
    b = m.shared("right", y=0)

    def thread(obj, name):
        setattr(obj, name, 1)
        yield pause()
        setattr(obj, name, 2)

    m.spawn(thread(a, "x"), name="A")
    m.spawn(thread(b, "y"), name="B")
    m.on_quiescence(lambda: m.metric("outcome", (a.x, b.y)))


@scenario(description="two CPUs, two steps each, every step writes one field")
def shared_field(m, variant):
    box = m.shared("box", v=0)

    def thread(digit):
        box.v = box.v * 10 + digit        # the order of the four writes is the outcome
        yield pause()
        box.v = box.v * 10 + digit + 1

    m.spawn(thread(1), name="A")
    m.spawn(thread(3), name="B")
    _report(m, box, "v")


@scenario(params={"threads": 2}, description="a counter incremented under a sleep mutex")
def locked_counter(m, variant, threads):
    box = m.shared("counter", n=0)
    mtx = SleepMutex(m, "counter lock")

    def thread():
        yield mtx.lock()
        v = yield box.load("n")
        yield box.store("n", v + 1)
        yield mtx.unlock()

    for i in range(threads):
        m.spawn(thread(), name=f"T{i}")
    m.on_quiescence(lambda: kassert(box.n == threads, f"lost update: n = {box.n}"))
    _report(m, box, "n")


@scenario(variants={"buggy": "B checks what it saw against a later value",
                    "fixed": "B checks nothing"},
          description="a bug that needs two preemptions: A1 B1 A2 B2")
def two_preemptions(m, variant):
    box = m.shared("box", a=0)

    def thread_a():
        box.a = 1
        yield pause()
        box.a = 2

    def thread_b():
        first = box.a
        yield pause()
        if variant == "buggy":
            kassert(not (first == 1 and box.a == 2), "B saw a go from 1 to 2 between its steps")
        m.metric("saw", (first, box.a))

    m.spawn(thread_a(), name="A")
    m.spawn(thread_b(), name="B")
    _report(m, box, "a")


@scenario(variants={"fixed": "the consumer tests the flag under the mutex",
                    "lost-wakeup": "the consumer tests the flag without the mutex"},
          description="a consumer blocks in msleep until a producer publishes")
def handshake(m, variant):
    box = m.shared("mailbox", ready=0, value=0)
    mtx = SleepMutex(m, "mailbox lock")

    def producer():
        yield mtx.lock()
        box.value = 42
        box.ready = 1
        yield wakeup(box)
        yield mtx.unlock()

    def consumer():
        if variant == "lost-wakeup":
            ready = yield box.load("ready")
            yield mtx.lock()
            if not ready:
                yield msleep(box, mtx)
        else:
            yield mtx.lock()
            while not box.ready:
                yield msleep(box, mtx)
        m.metric("saw", box.value)
        yield mtx.unlock()

    m.spawn(producer(), name="producer")
    m.spawn(consumer(), name="consumer")
    _report(m, box, "ready", "value")


@scenario(description="two locks taken in opposite orders")
def abba(m, variant):
    a = SleepMutex(m, "lock A")
    b = SleepMutex(m, "lock B")
    box = m.shared("pair", n=0)

    def thread(first, second, digit):
        yield first.lock()
        yield second.lock()
        box.n = box.n * 10 + digit
        yield second.unlock()
        yield first.unlock()

    m.spawn(thread(a, b, 1), name="AB")
    m.spawn(thread(b, a, 2), name="BA")
    _report(m, box, "n")


@scenario(description="an interrupt at a fixed time races with two threads' steps")
def interrupted(m, variant):
    box = m.shared("disk", done=0, seen=0)

    def handler():
        box.done += 1
        yield work(0)

    def thread(cpu):
        yield work(300)
        box.seen = box.seen * 10 + box.done + cpu
        yield work(300)
        box.seen = box.seen * 10 + box.done + cpu

    m.spawn(thread(0), name="T0")
    m.spawn(thread(5), name="T1")
    m.interrupt_source("disk", SPLBIO, handler, cpu=0, at_ns=[400])
    _report(m, box, "done", "seen")


@scenario(description="an interrupt raised by a lock holder lands on a CPU that may wait for it",
          params={"at_ns": 150})
def late_interrupt(m, variant, at_ns):
    lock = SleepMutex(m, "lock")
    box = m.shared("box", n=0, seen=0)

    def handler():
        box.seen = box.seen * 10 + box.n + 1
        yield work(0)

    def holder():
        yield pause()
        yield lock.lock()
        m.interrupt(1, SPLBIO, handler, at_ns=at_ns)
        box.n = 1
        yield work(100)
        box.n = 3
        yield lock.unlock()

    def waiter():
        yield pause()
        yield lock.lock()
        box.n = box.n * 10 + 2
        yield lock.unlock()

    m.spawn(holder(), name="T0")
    m.spawn(waiter(), name="T1")
    _report(m, box, "n", "seen")


@scenario(description="two threads draw from the model's random stream")
def dice(m, variant):
    box = m.shared("table", a=0, b=0)

    def thread(name):
        yield pause()
        setattr(box, name, int(m.rng.integers(0, 1_000_000)))

    m.spawn(thread("a"), name="A")
    m.spawn(thread("b"), name="B")
    _report(m, box, "a", "b")
