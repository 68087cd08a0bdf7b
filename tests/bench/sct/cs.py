"""Classic small concurrency bugs, re-expressed as smpvm models.

The programs are the "CS" group of SCTBench (Thomson, Donaldson and Betts,
"Concurrency testing using controlled schedulers: an empirical study",
TOPC 2016; github.com/mc-imperial/sctbench, benchmarks/concurrent-software-
benchmarks), which came from the ESBMC and Inspect test suites and are also
SV-COMP's ``c/pthread`` tasks.  Each scenario names its file there.

How they are re-expressed: ``main`` is a thread that starts the others with
``spawn_thread`` and waits with ``join``; a ``pthread_mutex_t`` is a sleep
mutex; ``pthread_cond_wait``/``signal`` are ``msleep``/``wakeup_one``; an
``__ESBMC_atomic`` block is one step; every other access to a shared
variable is its own step (``load``/``store``), which is where the C program
can be preempted.  An ``assert`` is ``kassert``; a program whose bug is a
deadlock ends in a stall.  ``EXPECTED`` says which violation each one ends
with and its depth: the fewest preemptions that show it, as iterative
preemption bounding measures it (``run.py`` checks both).
"""

from smpvm import SleepMutex, join, kassert, msleep, scenario, spawn_thread, wakeup_one

#: scenario -> (violation kind, fewest preemptions that show it).
EXPECTED = {
    "account": ("assertion", 0),
    "arithmetic_prog": ("assertion", 0),
    "bluetooth_driver": ("assertion", 1),
    "carter01": ("deadlock", 1),
    "circular_buffer": ("assertion", 1),
    "phase01": ("deadlock", 0),
    "reorder": ("assertion", 1),
    "stack": ("assertion", 1),
    "sync01": ("deadlock", 0),
    "token_ring": ("assertion", 0),
    "twostage": ("assertion", 1),
    "wronglock": ("assertion", 1),
}


def _run_all(m, threads, joined=True):
    """``main``: create ``threads`` (name -> generator) in order, then join them all."""
    def main():
        handles = []
        for name, gen in threads:
            handles.append((yield spawn_thread(gen, name=name)))
        if joined:
            for t in handles:
                yield join(t)
    return main


@scenario(description="account_bad.c: the checker asserts a wrong balance once both are done")
def account(m, variant):
    g = m.shared("globals", balance=1, deposit_done=0, withdraw_done=0)
    lock = SleepMutex(m, "m")
    x, y, z = 1, 2, 4

    def deposit():
        yield lock.lock()
        g.balance = g.balance + y
        g.deposit_done = 1
        yield lock.unlock()

    def withdraw():
        yield lock.lock()
        g.balance = g.balance - z
        g.withdraw_done = 1
        yield lock.unlock()

    def check_result():
        yield lock.lock()
        if g.deposit_done and g.withdraw_done:
            kassert(g.balance == (x - y) - z, "balance is not (x - y) - z")
        yield lock.unlock()

    m.spawn(_run_all(m, [("check", check_result()), ("deposit", deposit()),
                         ("withdraw", withdraw())], joined=False)(), name="main")


@scenario(params={"n": 3}, description="arithmetic_prog_bad.c: producer/consumer sum")
def arithmetic_prog(m, variant, n):
    g = m.shared("globals", num=0, total=0, flag=0)
    lock = SleepMutex(m, "m")

    def producer():
        for _ in range(n):
            yield lock.lock()
            while g.num > 0:
                yield msleep("empty", lock)
            g.num += 1
            yield lock.unlock()
            yield wakeup_one("full")

    def consumer():
        for j in range(n):
            yield lock.lock()
            while g.num == 0:
                yield msleep("full", lock)
            g.total += j
            g.num -= 1
            yield lock.unlock()
            yield wakeup_one("empty")
        g.total += n
        g.flag = 1

    def main():
        t1 = yield spawn_thread(producer(), name="producer")
        t2 = yield spawn_thread(consumer(), name="consumer")
        yield join(t1)
        yield join(t2)
        if g.flag:
            kassert(g.total != n * (n + 1) // 2, "total is the arithmetic sum")

    m.spawn(main(), name="main")


@scenario(description="bluetooth_driver_bad.c: a stop races with an add's I/O count")
def bluetooth_driver(m, variant):
    e = m.shared("device", pendingIo=1, stoppingFlag=0, stoppingEvent=0, stopped=0)

    def io_decrement():
        e.pendingIo -= 1  # atomic block
        pending = e.pendingIo
        yield e.load("pendingIo")
        if pending == 0:
            yield e.store("stoppingEvent", 1)

    def pnp_stop():
        yield e.store("stoppingFlag", 1)
        yield from io_decrement()
        if (yield e.load("stoppingEvent")):
            yield e.store("stopped", 1)

    def pnp_add():
        flag = yield e.load("stoppingFlag")
        status = -1 if flag else 0
        if status == 0:
            yield e.load("pendingIo")
            e.pendingIo += 1  # atomic block
            stopped = yield e.load("stopped")
            kassert(not stopped, "the driver did I/O after it stopped")
        yield from io_decrement()

    def main():
        t = yield spawn_thread(pnp_stop(), name="stop")
        yield from pnp_add()
        yield join(t)

    m.spawn(main(), name="main")


@scenario(description="carter01_bad.c: class A and class B share an outer lock badly")
def carter01(m, variant):
    g = m.shared("globals", A=0, B=0)
    mtx, outer = SleepMutex(m, "m"), SleepMutex(m, "l")

    def user(field):
        yield mtx.lock()
        setattr(g, field, getattr(g, field) + 1)
        if getattr(g, field) == 1:
            yield outer.lock()
        yield mtx.unlock()
        yield mtx.lock()  # after the class's operation
        setattr(g, field, getattr(g, field) - 1)
        if getattr(g, field) == 0:
            yield outer.unlock()
        yield mtx.unlock()

    def idle():
        return
        yield

    m.spawn(_run_all(m, [("a1", user("A")), ("b1", user("B")), ("a2", idle()),
                         ("b2", idle())])(), name="main")


@scenario(params={"n": 7}, description="circular_buffer_bad.c: the reader's index goes wrong")
def circular_buffer(m, variant, n):
    size = 10
    g = m.shared("globals", first=0, next=0, send=1, receive=0)
    buf = [0] * size
    lock = SleepMutex(m, "m")

    def sender():
        for i in range(n):
            yield lock.lock()
            if g.send:
                if g.next < size:
                    buf[g.next] = i
                    g.next = (g.next + 1) % size
                g.send, g.receive = 0, 1
            yield lock.unlock()

    def receiver():
        for i in range(n):
            yield lock.lock()
            if g.receive:
                got = -1
                if g.next > 0 and g.first < size:
                    g.first += 1
                    got = buf[g.first - 1]
                kassert(got == i, f"removed {got}, expected {i}")
                g.receive, g.send = 0, 1
            yield lock.unlock()

    m.spawn(_run_all(m, [("sender", sender()), ("receiver", receiver())])(), name="main")


@scenario(description="phase01_bad.c: a thread ends holding x; the other waits for it")
def phase01(m, variant):
    x, y = SleepMutex(m, "x"), SleepMutex(m, "y")

    def thread():
        yield x.lock()
        yield x.unlock()
        yield x.lock()  # never released
        yield y.lock()
        yield y.unlock()
        yield y.lock()
        yield y.unlock()

    m.spawn(_run_all(m, [("t1", thread()), ("t2", thread())])(), name="main")


@scenario(params={"sets": 4, "checks": 1},
          description="reorder_X_bad.c (SV-COMP reorder_5): a checker sees a half-done update")
def reorder(m, variant, sets, checks):
    g = m.shared("globals", a=0, b=0)

    def setter():
        yield g.store("a", 1)
        yield g.store("b", -1)

    def checker():
        a = yield g.load("a")
        b = yield g.load("b")
        kassert((a == 0 and b == 0) or (a == 1 and b == -1), f"saw a={a}, b={b}")

    threads = [(f"set{i}", setter()) for i in range(sets)]
    threads += [(f"check{i}", checker()) for i in range(checks)]
    m.spawn(_run_all(m, threads)(), name="main")


@scenario(params={"size": 10}, description="stack_bad.c: pop before any push")
def stack(m, variant, size):
    g = m.shared("globals", top=0, flag=0)
    lock = SleepMutex(m, "m")

    def pusher():
        for i in range(size):
            yield lock.lock()
            kassert(g.top != size, "stack overflow")
            g.top += 1
            g.flag = 1
            yield lock.unlock()

    def popper():
        for _ in range(size):
            yield lock.lock()
            if g.flag:
                kassert(g.top != 0, "stack underflow")
                g.top -= 1
            yield lock.unlock()

    m.spawn(_run_all(m, [("push", pusher()), ("pop", popper())])(), name="main")


@scenario(description="sync01_bad.c: a consumer that never consumes; the producer waits forever")
def sync01(m, variant):
    g = m.shared("globals", num=1)
    lock = SleepMutex(m, "m")

    def producer():
        yield lock.lock()
        while g.num > 0:
            yield msleep("empty", lock)
        g.num += 1
        yield lock.unlock()
        yield wakeup_one("full")

    def consumer():
        yield lock.lock()
        while g.num == 0:
            yield msleep("full", lock)
        yield lock.unlock()
        yield wakeup_one("empty")

    m.spawn(_run_all(m, [("producer", producer()), ("consumer", consumer())])(), name="main")


@scenario(description="token_ring_bad.c: three copies around a ring disagree")
def token_ring(m, variant):
    g = m.shared("globals", x1=1, x2=2, x3=1, f1=0, f2=0, f3=0)

    def t1():
        g.x1, g.f1 = (g.x3 + 1) % 4, 1  # atomic block
        yield g.load("f1")

    def t2():
        g.x2, g.f2 = g.x1, 1
        yield g.load("f2")

    def t3():
        g.x3, g.f3 = g.x2, 1
        yield g.load("f3")

    def t4():
        if g.f1 and g.f2 and g.f3:
            kassert(g.x1 == g.x2 == g.x3, f"ring holds {g.x1}, {g.x2}, {g.x3}")
        yield g.load("f1")

    m.spawn(_run_all(m, [("t1", t1()), ("t2", t2()), ("t3", t3()), ("t4", t4())],
                     joined=False)(), name="main")


@scenario(params={"writers": 2, "readers": 1},
          description="twostage_bad.c (twostage_100 with writers=100): two critical sections")
def twostage(m, variant, writers, readers):
    g = m.shared("globals", data1=0, data2=0)
    lock1, lock2 = SleepMutex(m, "data1Lock"), SleepMutex(m, "data2Lock")

    def writer():
        yield lock1.lock()
        g.data1 = 1
        yield lock1.unlock()
        yield lock2.lock()
        g.data2 = g.data1 + 1
        yield lock2.unlock()

    def reader():
        yield lock1.lock()
        if g.data1 == 0:
            yield lock1.unlock()
            return
        t1 = g.data1
        yield lock1.unlock()
        yield lock2.lock()
        t2 = g.data2
        yield lock2.unlock()
        kassert(t2 == t1 + 1, f"read data1={t1}, data2={t2}")

    threads = [(f"w{i}", writer()) for i in range(writers)]
    threads += [(f"r{i}", reader()) for i in range(readers)]
    m.spawn(_run_all(m, threads)(), name="main")


@scenario(params={"a": 1, "b": 7},
          description="wronglock_bad.c (wronglock_3 with b=3): two locks guard one counter")
def wronglock(m, variant, a, b):
    g = m.shared("globals", value=0)
    data_lock, this_lock = SleepMutex(m, "dataLock"), SleepMutex(m, "thisLock")

    def func_a():
        yield data_lock.lock()
        x = yield g.load("value")
        yield g.store("value", (yield g.load("value")) + 1)
        now = yield g.load("value")
        kassert(now == x + 1, f"value went from {x} to {now}")
        yield data_lock.unlock()

    def func_b():
        yield this_lock.lock()
        yield g.store("value", (yield g.load("value")) + 1)
        yield this_lock.unlock()

    threads = [(f"A{i}", func_a()) for i in range(a)] + [(f"B{i}", func_b()) for i in range(b)]
    m.spawn(_run_all(m, threads)(), name="main")
