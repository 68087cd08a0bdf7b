"""FreeBSD taskqueues and Linux workqueues: deferred work in a worker thread."""

from conftest import RandomWalk, simulate
from smpvm import (EBUSY, Mutex, Task, Taskqueue, WorkItem, Workqueue, Zone, cancel_work_sync,
                   flush_work, may_sleep, pause, work)


def _runs(setup, seeds=60, cpus=None):
    return [simulate(setup, strategy=RandomWalk(), seed=s, cpus=cpus) for s in range(seeds)]


def test_a_task_enqueued_twice_before_it_runs_runs_once_with_its_count():
    seen = []

    def setup(m):
        tq = Taskqueue(m, "sc_tq")

        def fn(tag, pending):
            seen.append((tag, pending, m.current.name))
            yield may_sleep(10, "thread context")    # allowed in the queue's thread

        task = Task(m, "sc_task", fn, "t")

        def t():
            yield tq.enqueue(task)
            yield tq.enqueue(task)
            yield tq.drain(task)
            seen.append("drained")
        m.spawn(t(), name="t", cpu=0)
    r = simulate(setup)
    assert r.violations == []
    assert seen == [("t", 2, "taskq:sc_tq"), "drained"]


def test_taskqueue_cancel_answers_ebusy_for_a_running_task_and_drain_waits():
    answers = []

    def setup(m):
        tq = Taskqueue(m, "sc_tq")

        def fn(pending):
            yield work(500)

        task = Task(m, "sc_task", fn)

        def t():
            yield tq.enqueue(task)
            yield work(100)                            # the task is running now
            answers.append((yield tq.cancel(task)))
            yield tq.drain(task)
            answers.append((yield tq.cancel(task)))
        m.spawn(t(), name="t", cpu=0)
    assert simulate(setup).violations == []
    assert answers == [EBUSY, 0]


def _softc_with_task(stop):
    def setup(m):
        z = Zone(m, "softc", {"n": 0}, type_name="softc")
        sc = z.new()
        tq = Taskqueue(m, "sc_tq")

        def fn(pending):
            yield work(50)
            sc.n += pending

        task = Task(m, "sc_task", fn, owner=sc)

        def detach():
            yield tq.enqueue(task)
            yield work(20)
            yield from stop(tq, task)
            yield z.free(sc)
        m.spawn(detach(), name="detach", cpu=0)
    return setup


def test_freeing_a_softc_with_its_task_queued_or_running_is_a_use_after_free():
    def cancel_only(tq, task):
        yield tq.cancel(task)
    runs = _runs(_softc_with_task(cancel_only))
    msgs = [r.violations[0].message for r in runs if r.violations]
    assert msgs and all(r.kinds() in ([], ["use-after-free"]) for r in runs)
    assert any("task sc_task still running" in msg for msg in msgs)


def test_taskqueue_drain_before_the_free_is_clean():
    def drain(tq, task):
        yield tq.drain(task)
    for r in _runs(_softc_with_task(drain)):
        assert r.violations == []


def test_queue_work_of_a_pending_item_is_refused_and_flush_work_waits_for_it():
    seen = []

    def setup(m):
        wq = Workqueue(m, "events")

        def fn():
            yield work(100)
            seen.append("ran")

        w = WorkItem(m, "w", fn)

        def t():
            seen.append((yield wq.queue_work(w)))
            seen.append((yield wq.queue_work(w)))
            seen.append((yield flush_work(w)))
            seen.append((yield flush_work(w)))
        m.spawn(t(), name="t", cpu=0)
    assert simulate(setup).violations == []
    assert seen == [True, False, "ran", True, False]


def test_cancel_work_sync_dequeues_or_waits_and_the_free_is_clean():
    def setup(m):
        z = Zone(m, "dev", {"n": 0}, type_name="dev")
        d = z.new()
        wq = Workqueue(m, "events")

        def fn():
            yield work(50)
            d.n += 1
            yield wq.queue_work(w)          # requeues itself: refused while cancelling

        w = WorkItem(m, "w", fn, owner=d)

        def remove():
            yield wq.queue_work(w)
            yield work(30)
            yield cancel_work_sync(w)
            yield z.free(d)
        m.spawn(remove(), name="remove", cpu=0)
    for r in _runs(setup):
        assert r.violations == [], [v.message for v in r.violations]


def test_flush_work_with_a_mutex_the_work_takes_is_a_circular_dependency():
    def setup(m):
        mtx = Mutex(m, "dev mutex")
        wq = Workqueue(m, "events")

        def fn():
            yield mtx.lock()
            yield mtx.unlock()

        w = WorkItem(m, "dev_work", fn)

        def t():
            yield wq.queue_work(w)
            yield flush_work(w)             # it has run: no deadlock in this run
            yield mtx.lock()
            yield flush_work(w)             # would wait for a work that takes dev mutex
            yield mtx.unlock()
            yield pause()
        m.spawn(t(), name="t", cpu=0)
    r = simulate(setup)
    assert r.kinds() == ["lock-order-reversal"]
    assert set(r.violations[0].extra["cycle"]) == {"dev mutex", "(dev_work)"}
