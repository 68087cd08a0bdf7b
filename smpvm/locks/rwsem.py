"""Linux ``struct rw_semaphore``: a sleeping reader/writer lock, fair to writers.

Waiters sleep.  A new reader queues behind a waiting writer (the kernel's
rwsem hands the lock out in arrival order of its wait list), so a reader
that reads again while a writer is queued between its two reads deadlocks.
For the same reason lockdep treats every ``down_read`` as a *non-recursive*
read: rw_semaphore readers take part in lock-order cycles, unlike the
readers of ``rwlock_t``.  Holding one may sleep; taking one in an interrupt
handler, under a spin lock or with interrupts off is a bug.
"""

from .base import Lock


class RwSemaphore(Lock):
    """Linux ``struct rw_semaphore``: sleeping reader/writer lock, FIFO, readers queue behind writers."""
    kind = "rw_semaphore"
    sleepable = True
    waiters_spin = False
    fifo = True
    shared_allowed = True

    def down_read(self):
        """``yield sem.down_read()``: take it for reading; may sleep."""
        return self._op("s")

    def down_write(self):
        """``yield sem.down_write()``: take it for writing; may sleep."""
        return self._lock_x

    def down_read_trylock(self):
        """``ok = yield sem.down_read_trylock()``: never waits."""
        return self._op("s", trylock=True)

    def down_write_trylock(self):
        """``ok = yield sem.down_write_trylock()``: never waits."""
        return self._op("x", trylock=True)

    def up_read(self):
        """``yield sem.up_read()``: release a read hold."""
        return self._rel("s")

    def up_write(self):
        """``yield sem.up_write()``: release the write hold."""
        return self._unlock_x
