"""FreeBSD callouts (``callout(9)``): a function run once, later, in softclock context.

``co = Callout(m, "sc_callout", lock=sc_mtx, owner=sc)`` is ``callout_init_mtx``
(``lock=None``: ``callout_init(c, 1)``, an MPSAFE callout without a lock).
``yield co.reset(delay_ns, handler, *args)`` arms it: after ``delay_ns`` a
softclock interrupt (at ``SPLSOFT``) on the callout's CPU runs
``handler(*args)``, a generator function, there.  The semantics follow
``sys/kern/kern_timeout.c``:

* A callout with a lock runs its handler with the lock held, taken by
  softclock first.  ``callout_stop`` called with that lock held while the
  handler waits for it *cancels* the run: the handler is skipped.  That is
  the guarantee ``callout_init_mtx`` exists for.
* ``callout_stop`` does not wait for a running handler (it returns 0), so
  the handler may still touch the softc, and may re-arm itself, after it
  returns.  ``callout_drain`` sleeps ("codrain") until the running handler
  has finished, and while it drains a re-arm from the handler is ignored;
  draining with the handler's lock held is a deadlock when the handler runs
  (it waits for that lock), which the machine reports as the stall it is.
  WITNESS's check of the drain (it may sleep) applies, with the callout's
  own lock exempt, as in the kernel.
* ``callout_async_drain(fn)`` does not wait: ``fn`` runs (in softclock
  context) once the running handler has finished, or is not called and the
  return is 1 when nothing was running.
* ``callout_reset`` on a pending callout moves it; on a running one whose
  lock the caller holds, it cancels the waiting run first.

Freeing ``owner`` (the softc the callout is embedded in) while the callout
is pending or its handler runs is a ``use-after-free`` naming the callout
(softclock would read the freed memory).  Handlers run with
``THREAD_NO_SLEEPING``: sleeping in one is ``sleep-in-atomic``.

Where it runs: FreeBSD runs callouts in a softclock *thread*, which may
wait for the callout's lock while the thread it preempted goes on.  The
engine runs it as a handler at ``SPLSOFT`` marked threaded (witness draws
no interrupt-safety conclusions from it) on the callout's CPU, which should
run no thread of the model: ``callout_reset_on(..., cpu=N)``, else the
``cpu`` given at init, else the first CPU running no thread when it is
first armed (the arming CPU when every CPU runs one).  Deferred migration
of a running callout is not modelled: re-arming a running callout on
another CPU arms it there at once.
"""

from __future__ import annotations

from ..memory import watch_free
from ..ops import SPLSOFT
from .waits import Kobj, op, wait_for


def _softclock_cpu(m, c) -> int:
    """The first CPU that runs no thread (softclock's stand-in), else ``c``'s."""
    for o in m.cpus:
        if not o.frames:
            return o.id
    return c.id


class Callout(Kobj):
    """A FreeBSD ``struct callout``: ``reset`` arms it, ``stop`` cancels without waiting, ``drain`` waits.

    ``lock`` is ``callout_init_mtx``'s mutex, taken by softclock around the
    handler; ``owner`` is the item the callout is embedded in (freeing it
    while the callout is pending or running is a use-after-free naming it).
    """

    kind = "callout"
    deferred = ("func", "args")

    def __init__(self, m, name: str, *, lock=None, owner=None, cpu: int | None = None,
                 return_unlocked: bool = False):
        super().__init__(m, name)
        #: ``c_lock``: the lock softclock takes around the handler (None: MPSAFE, no lock).
        self.lock = lock
        #: ``CALLOUT_RETURNUNLOCKED``: the handler releases ``lock`` itself.
        self.return_unlocked = return_unlocked
        #: ``c_cpu``: where it fires (None: the CPU of the first ``reset``).
        self.cpu = cpu
        #: ``CALLOUT_PENDING``: armed and not yet started.
        self.pending = False
        #: ``CALLOUT_ACTIVE``: armed since the last stop (``callout_active``).
        self.active = False
        #: Bumped at every arming; a softclock run for an older arming does nothing.
        self.gen = 0
        #: The CPU running the handler (``cc_exec_curr == c``), or None.
        self.running = None
        #: ``cc_exec_cancel``: the running softclock must skip (or can no longer be stopped).
        self.cancel = False
        #: ``cc_exec_waiting``: a ``callout_drain`` waits for the running handler.
        self.draining = False
        #: The ``callout_async_drain`` function to run when the handler finishes.
        self.drain_fn = None
        #: The handler and its arguments of the current arming.
        self.func = None
        self.args = ()
        #: Where the current arming was made, for reports.
        self.armed_at = ""
        if owner is not None:
            watch_free(owner, self._freed)

    # -- the API ------------------------------------------------------------------------

    def reset(self, delay_ns: int, handler, *args, cpu: int | None = None,
              precision_ns: int = 0):
        """``cancelled = yield co.reset(delay_ns, handler, *args)``: ``callout_reset(9)``.

        Arms the callout to run ``handler(*args)`` after ``delay_ns``;
        evaluates to 1 when a pending (or cancellable running) arming was
        replaced, else 0.  ``cpu`` is ``callout_reset_on``'s CPU.
        ``precision_ns`` is ``callout_reset_sbt``'s ``pr``: the callout may
        fire anywhere from ``delay_ns`` to ``delay_ns + precision_ns``, and
        the search places it there (an interrupt given a window).
        """
        return op(lambda m, c: self._reset(m, c, int(delay_ns), handler, args, cpu,
                                           int(precision_ns)))

    def schedule(self, delay_ns: int, precision_ns: int = 0):
        """``yield co.schedule(delay_ns)``: ``callout_schedule``, re-arm with the last handler."""
        return op(lambda m, c: self._reset(m, c, int(delay_ns), self.func, self.args, None,
                                           int(precision_ns)))

    def stop(self):
        """``stopped = yield co.stop()``: ``callout_stop(9)``, which never waits.

        Evaluates to 1 when the pending run was removed or a run waiting for
        the callout's lock was cancelled, 0 when the handler is already
        running (it may still run to the end, and re-arm itself).  A callout
        with a lock must be stopped with that lock held.
        """
        return op(lambda m, c: self._stop(m, c, None))

    def drain(self):
        """``yield co.drain()``: ``callout_drain(9)``: stop it and sleep until its handler has finished.

        While the drain waits, the handler's own re-arm is ignored.  It may
        sleep: not with a spin lock held, not in a handler.
        """
        return wait_for(self, lambda c: self.running is None,
                        self._drained, f"callout_drain({self.name})", sleeps=True,
                        start=self._start_drain, interlock=self.lock)

    def async_drain(self, fn, *args):
        """``r = yield co.async_drain(fn, *args)``: ``callout_async_drain(9)``.

        Stops the callout without waiting; when its handler is running,
        ``fn(*args)`` runs in softclock context once it has finished and the
        result is 0; otherwise 1 and ``fn`` is not called.
        """
        return op(lambda m, c: self._stop(m, c, (fn, args)))

    def is_pending(self) -> bool:
        """``callout_pending``: armed and not yet started."""
        self.touch(write=False)
        return self.pending

    def is_active(self) -> bool:
        """``callout_active``: armed since the last stop or ``deactivate``."""
        self.touch(write=False)
        return self.active

    def deactivate(self) -> None:
        """``callout_deactivate``: clear the active flag (handlers call it first thing)."""
        self.touch()
        self.active = False

    # -- mechanics ---------------------------------------------------------------------------

    def _reset(self, m, c, delay_ns, handler, args, cpu, precision_ns=0):
        self.touch()
        cancelled = 0
        if self.running is not None:
            if self.lock is not None and not self.cancel:
                self.cancel = True
                cancelled = 1
            if self.draining or self.drain_fn is not None:
                return cancelled  # being drained: do not re-arm
        if self.pending:
            cancelled = 1
        if handler is None:
            from ..violations import ModelError
            raise ModelError(f"callout_schedule({self.name}) before any callout_reset")
        if cpu is not None:
            self.cpu = cpu
        elif self.cpu is None:
            self.cpu = _softclock_cpu(m, c)
        self.pending = self.active = True
        self.gen += 1
        if handler is not self.func or len(args) != len(self.args) \
                or any(a is not b for a, b in zip(args, self.args)):
            self.handed()
        self.func, self.args = handler, args
        self.armed_at = m.site(c) if m.sites else ""
        gen = self.gen
        at = m.now + delay_ns
        when = {"window": (at, at + precision_ns)} if precision_ns > 0 else {"at_ns": at}
        src = m.interrupt(self.cpu, SPLSOFT, lambda: self._softclock(gen),
                          name=f"softclock:{self.name}", **when)
        src.threaded = True  # softclock is a thread: its locks make no interrupt-safety marks
        if m.tracing:
            m.record(c, "note", "", f"callout_reset({self.name}, {delay_ns} ns) on CPU{self.cpu}")
        return cancelled

    def _stop(self, m, c, drain_fn):
        self.touch()
        lock = self.lock
        if lock is not None and not lock.held_by(c):
            m.fail("assertion", f"callout_stop({self.name}) without its lock {lock.label()} "
                   f"held (callout_init_mtx callouts are stopped under their lock)")
        cancelled = 1
        if self.running is not None:
            self.active = False
            if lock is not None and not self.cancel and drain_fn is None:
                self.cancel = True  # the run waits for our lock: it will be skipped
                return 1
            if drain_fn is not None:
                self.drain_fn = drain_fn
            cancelled = 0
        if not self.pending:
            return cancelled if self.running is not None or drain_fn is not None else 0
        self.pending = self.active = False
        return cancelled

    def _start_drain(self, c) -> None:
        self.touch()
        if self.running is not None and self.running is not c:
            self.draining = True

    def _drained(self, c):
        self.touch()
        self.pending = self.active = False
        return 1

    def _softclock(self, gen):
        """softclock_call_cc: one run of the handler, in softclock (interrupt) context."""
        m = self.m
        c = m.current
        self.touch()
        if not self.pending or gen != self.gen:
            return  # stopped or re-armed since this run was scheduled
        self.pending = False
        self.running = c
        self.cancel = False
        func, args, lock = self.func, self.args, self.lock
        if lock is not None:
            yield lock.lock()
            self.touch()
            if self.cancel:
                yield lock.unlock()
                yield from self._finish()
                return
            self.cancel = True  # it cannot be stopped now
        yield from func(*args)
        if lock is not None and not self.return_unlocked:
            yield lock.unlock()
        yield from self._finish()

    def _finish(self):
        self.touch()
        self.running = None
        self.draining = False
        drain_fn, self.drain_fn = self.drain_fn, None
        self.waiters.wake_all()
        if drain_fn is not None:
            fn, args = drain_fn
            yield from fn(*args)

    def _freed(self, m, c, owner) -> None:
        if self.pending:
            m.fail("use-after-free", f"free of {owner.label()} with {self.label()} still pending "
                   f"(armed at {self.armed_at or '?'}, to fire on CPU{self.cpu}): softclock "
                   f"will run its handler on freed memory; callout_drain() it first",
                   extra={"object": owner.label(), "timer": self.name})
        elif self.running is not None:
            m.fail("use-after-free", f"free of {owner.label()} while the handler of "
                   f"{self.label()} runs on CPU{self.running.id}: callout_stop() does not wait "
                   f"for it; callout_drain() does", extra={"object": owner.label(),
                                                          "timer": self.name})
