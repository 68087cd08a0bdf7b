"""Read-side sections and grace periods: what RCU and epoch(9) share.

Readers enter and leave *sections* (``rcu_read_lock``/``rcu_read_unlock``,
``epoch_enter``/``epoch_exit``) without locks; an updater unpublishes an
object and must not free it until every section that might hold a pointer
to it has ended: a *grace period*.  ``synchronize`` (``synchronize_rcu``,
``epoch_wait``) sleeps until every section open when it was called has
ended; ``call`` (``call_rcu``, ``epoch_call``) runs a callback, in softirq
context on the calling CPU, once they have.  Sections opened later do not
delay either.

A pointer a reader obtains inside a section through ``deref``
(``rcu_dereference``) is watched: freeing the object while that section
is still open is a ``use-after-free`` reported with the reader's section
(where it was entered, where the pointer was taken), whether or not the
reader touches the object again.  Sleeping inside a section is
``sleep-in-atomic``.

Where a grace period ends is decided by when the readers leave their
sections, which the strategy orders like any other step; a callback's
arrival is an interrupt on the calling CPU.
"""

from __future__ import annotations

from ..memory import Item, watch_free
from ..ops import SPLSOFT
from .waits import Kobj, wait_for


class Section:
    """One open read-side section: who, where, and the pointers it took."""

    __slots__ = ("cpu", "ctx", "site", "time_ns", "open")

    def __init__(self, cpu, ctx, site, time_ns):
        self.cpu = cpu
        self.ctx = ctx
        self.site = site
        self.time_ns = time_ns
        #: False once the reader has left it.
        self.open = True


class GracePeriods(Kobj):
    """A domain of read-side sections and grace periods (an RCU flavour, an epoch)."""

    deferred = ("callbacks",)
    #: Words for reports, set by the subclasses.
    section_word = "read-side critical section"
    enter_word = "enter"
    wait_word = "synchronize"

    def __init__(self, m, name: str):
        super().__init__(m, name)
        #: CPU id -> open sections, innermost last.
        self.sections: dict[int, list] = {}
        #: Callbacks waiting for a grace period: [(sections to outlive, cpu, fn, args)].
        self.callbacks: list = []

    # -- readers ---------------------------------------------------------------------------

    def _enter(self, m, c):
        self.touch()
        site = m.site(c) if m.sites else ""
        self.sections.setdefault(c.id, []).append(Section(c.id, c.ctx, site, m.now))
        m.witness.enter_atomic(c, f"{self.name} {self.section_word}", site)
        return None

    def _exit(self, m, c):
        self.touch()
        stack = self.sections.get(c.id)
        if not stack:
            m.fail("assertion", f"{self.name}: leaving a {self.section_word} that was never "
                   f"entered on CPU{c.id}")
            return None
        stack.pop().open = False
        m.witness.exit_atomic(c, f"{self.name} {self.section_word}")
        self.waiters.wake_all()
        self._run_callbacks(m)
        return None

    def deref(self, item: Item, field: str):
        """Read a pointer field inside a section; the object it points to is watched until the section ends."""
        value = getattr(item, field)
        m = self.m
        c = m.current
        if isinstance(value, Item) and c is not None:
            self.touch(write=False)
            stack = self.sections.get(c.id)
            if stack:
                sec = stack[-1]
                where = m.site(c) if m.sites else ""
                watch_free(value, lambda m_, c_, obj: self._freed(m_, c_, obj, sec, where))
        return value

    def _freed(self, m, c, obj, sec, where) -> None:
        if not sec.open or sec.cpu == c.id:
            return
        m.fail("use-after-free",
               f"free of {obj.label()} while {sec.ctx} on CPU{sec.cpu} may still use it: it "
               f"took the pointer @ {where or '?'} inside its {self.name} {self.section_word} "
               f"entered @ {sec.site or '?'}, and no grace period has ended since "
               f"({self.wait_word} before the free, or free from a callback)",
               extra={"object": obj.label(), "reader_cpu": sec.cpu, "reader": sec.ctx,
                      "section_site": sec.site, "deref_site": where})

    # -- updaters -----------------------------------------------------------------------------

    def _open_sections(self, c) -> list:
        self.touch(write=False)
        return [s for cpu in sorted(self.sections) for s in self.sections[cpu]
                if s.open and cpu != c.id]

    def _synchronize(self, what):
        before = []

        def start(c):
            before.extend(self._open_sections(c))

        return wait_for(self, lambda c: not any(s.open for s in before), None, what,
                        sleeps=True, start=start)

    def _call(self, m, c, fn, args):
        self.callbacks.append((self._open_sections(c), c.id, fn, args))
        self.handed()
        self.touch()
        self._run_callbacks(m)
        return None

    def _run_callbacks(self, m) -> None:
        """Hand every callback whose grace period has ended to its CPU's softirq."""
        still = []
        for entry in self.callbacks:
            before, cpu, fn, args = entry
            if any(s.open for s in before):
                still.append(entry)
                continue
            m.interrupt(cpu, SPLSOFT, lambda fn=fn, args=args: fn(*args),
                        name=f"{self.name}-callback")
        self.callbacks = still
