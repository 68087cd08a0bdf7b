"""Models with a forgotten ``yield``, and one that makes operations ahead and yields them later."""

from smpvm import SleepMutex, note, scenario, work


@scenario(variants={"lock": "lock() without yield", "helper": "a plain helper's unlock()",
                    "at-end": "note() as the thread's last line", "ahead": "made ahead, yielded"})
def forgot(m, variant):
    lock = SleepMutex(m, "L")

    def release():
        lock.unlock()                                  # FORGOT helper

    def t():
        if variant == "lock":
            lock.lock()                                # FORGOT lock
            yield work(10)
        elif variant == "helper":
            yield lock.lock()
            release()
            yield work(10)
        elif variant == "at-end":
            yield work(10)
            note("done")                               # FORGOT at-end
        else:
            ops = [lock.lock(), work(10), lock.unlock()]
            for op in ops:
                yield op

    m.spawn(t(), name="t0")
    m.spawn(t(), name="t1")


@scenario(variants=["a", "b"])
def fine(m, variant):
    lock = SleepMutex(m, "L")

    def t():
        yield lock.lock()
        yield work(5)
        yield lock.unlock()

    m.spawn(t(), name="t0")
    m.spawn(t(), name="t1")
