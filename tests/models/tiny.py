"""Tiny scenarios with ordering bugs of known depth, for the exploration tests.

Bug depth, in the sense of probabilistic concurrency testing, is the number
of ordering constraints between steps of different threads that must all
hold for the bug to show:

* ``publish``: depth 1.  The consumer must read the value before the
  producer stores it; one constraint, and no preemption is needed (running the
  consumer first is enough).
* ``check_then_use``: depth 2.  The reader checks a pointer, the reclaimer
  must clear and free it after the check, and the reader must then use it:
  check < clear and free < use.  It needs one preemption of the reader
  between its check and its use.
* ``abba``: two threads take two locks in opposite orders; witness reports
  the reversal in every run that takes both orders, and a deadlock needs
  both threads to hold their first lock.

Each buggy variant has a fixed one that never fails.  ``uneven`` has no
bug: its threads run for a number of steps drawn from the model's own random
stream, so some runs have many more decision points than others.
"""

from smpvm import SleepMutex, Zone, kassert, msleep, pause, scenario, wakeup, work


@scenario(variants={"buggy": "the consumer does not wait for the value",
                    "fixed": "the consumer sleeps until the producer publishes"},
          description="depth-1 ordering bug: use before publish")
def publish(m, variant):
    box = m.shared("box", value=0, ready=0)
    mtx = SleepMutex(m, "box lock")
    m.spawn(producer(box, mtx), name="producer")
    m.spawn(consumer(box, mtx, variant == "fixed"), name="consumer")


def producer(box, mtx):
    yield work(10)
    yield mtx.lock()
    box.value = 42
    box.ready = 1
    yield wakeup(box)
    yield mtx.unlock()


def consumer(box, mtx, waits):
    yield work(10)
    if waits:
        yield mtx.lock()
        while not box.ready:
            yield msleep(box, mtx)
        yield mtx.unlock()
    v = yield box.load("value")
    kassert(v == 42, f"consumer read value {v} before it was published")


@scenario(variants={"buggy": "the reader checks the pointer, then uses it unlocked",
                    "fixed": "check and use happen under the lock the reclaimer takes"},
          params={"pad": 2}, param_help={"pad": "extra steps around the race window"},
          description="depth-2 atomicity bug: check, then use after free")
def check_then_use(m, variant, pad):
    zone = Zone(m, "node", {"x": 0}, type_name="node")
    head = m.shared("head", ptr=zone.new(x=1))
    mtx = SleepMutex(m, "head lock")
    m.spawn(reader(head, mtx, pad, variant == "fixed"), name="reader")
    m.spawn(reclaimer(head, zone, mtx, pad), name="reclaimer")


def reader(head, mtx, pad, locked):
    for _ in range(pad):
        yield work(5)
    if locked:
        yield mtx.lock()
    p = yield head.load("ptr")
    if p is not None:
        yield work(5)
        yield p.load("x")
    if locked:
        yield mtx.unlock()


def reclaimer(head, zone, mtx, pad):
    for _ in range(pad):
        yield work(5)
    yield mtx.lock()
    p = head.ptr
    head.ptr = None
    yield mtx.unlock()
    if p is not None:
        yield zone.free(p)


LOCK_ORDER = [["lock a", "lock b"]]


@scenario(variants={"buggy": "the second thread takes the locks in reverse order",
                    "fixed": "both threads take lock a first"},
          description="lock-order reversal, and a deadlock when both hold their first lock")
def abba(m, variant):
    a = SleepMutex(m, "lock a")
    b = SleepMutex(m, "lock b")
    m.spawn(take_two(a, b), name="ab")
    m.spawn(take_two(b, a) if variant == "buggy" else take_two(a, b), name="ba")


def take_two(first, second):
    yield first.lock()
    yield work(10)
    yield second.lock()
    yield second.unlock()
    yield first.unlock()


@scenario(description="no bug; run length varies with the model's random stream")
def uneven(m, variant):
    for name in ("left", "right"):
        m.spawn(spin(int(m.rng.geometric(0.08))), name=name)


def spin(steps):
    for _ in range(steps):
        yield pause()
