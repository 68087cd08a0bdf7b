"""Witness: lock-order and lock-context checking, as FreeBSD WITNESS and lockdep do it.

Witness watches every acquisition and learns, per run, a graph of lock
*classes* (a lock's ``cls``: its name, plus a nesting subclass when given).
It never waits for a deadlock to happen: it reports the *possibility*, from
the orders it has seen, on whichever CPUs and in whichever order they were
learned.  The rules, each with the two-CPU story of why it holds:

1. **Order.**  Taking B while holding A adds the edge A -> B.  An edge that
   closes a cycle is a lock-order reversal: CPU0 holds A and waits for B,
   CPU1 holds B and waits for A.  Longer cycles (A -> B -> C -> A) are three
   CPUs doing the same.  A trylock adds no edge: it cannot wait.
2. **Declared order.**  A model's documented order (``LOCK_ORDER``) is
   enrolled before the run, so the first acquisition against it is reported
   at once.  Pairs in ``LOCK_BLESSED`` never take part in a reported cycle.
3. **Classes, not instances.**  Holding one instance of a class while taking
   another of the same class is reported (two CPUs may take the pair in
   opposite orders) unless the lock is duplicate-ok or the inner one has a
   nesting subclass.
4. **Readers.**  Each edge remembers how the held lock was held (E
   exclusive, S shared) and how the new one was taken (R: a recursive
   reader, which never waits for other readers, as the read side of a
   reader-preferring ``rwlock_t``; N: anything that may wait, including sx
   readers queued behind a waiting writer).  As in lockdep, a cycle is a
   deadlock only if it is *strong*: no lock in it is entered as a recursive
   reader (-(*R)->) and left while held shared (-(S*)->), since nobody can
   be waiting for that lock.  So rwlock_t readers make no false reversal
   among themselves, while sx readers take part in cycles.
5. **Interrupt levels** (lockdep's irq-safe rules over spl).  A class taken
   in a handler of level L is *L-safe* (unless the handler is *threaded*, as
   FreeBSD's softclock is: a thread can wait for a lock without stalling
   the CPU it interrupted); a class taken with L unmasked (spl
   below L, interrupts not disabled) is *L-unsafe*.  One class both is an
   ``spl-violation`` (the interrupt arrives while the thread holds it, and
   the handler spins on it).  So is an L-safe class A from which the graph
   reaches an L-unsafe class B: CPU0 holds A and waits for B, CPU1 holds B
   with L unmasked, takes the interrupt, and its handler waits for A.
6. **Sleeping.**  Sleeping in atomic context is ``sleep-in-atomic`` (Linux's
   "sleeping function called from invalid context"): blocking on a lock that
   may block (sleep mutex, sx, rw, Linux mutex) or sleeping while a spin
   lock is held, taking a sleepable lock or sleeping in an interrupt
   handler, and taking a sleepable lock or sleeping inside an RCU read-side
   or epoch section.  Sleeping with a non-sleepable default mutex held is
   ``sleep-with-spinlock`` (WITNESS's "sleeping with non-sleepable locks
   held").  Taking a sleepable lock (sx, Linux mutex) while holding a
   non-sleepable one is a reversal of WITNESS's implied order "sleepable
   before non-sleepable".
7. **Interrupt state changes.**  Lowering the spl (or dropping the last
   lock that kept interrupts off) with locks held makes every held class
   unsafe at the new level, as lockdep marks held locks when interrupts are
   re-enabled: so a class taken in a handler and *held* while its level is
   unmasked is caught, whichever came first.
8. **Wait context.**  Taking a sleepable lock in thread context with
   interrupts disabled, or a Linux one (mutex, rw_semaphore, rt_mutex) with
   any level masked (softirqs included), is a ``sleep-with-spinlock``: the
   thread could sleep with the CPU unable to take interrupts (lockdep's
   invalid wait context).  A FreeBSD spl is saved across a sleep, so a
   raised spl alone is no such bug there.
9. **Lifecycle.**  Destroying or re-initialising a held lock, or freeing a
   zone item one of whose fields is a held lock, is ``held-lock-freed``
   (lockdep's "held lock freed!", WITNESS's destroy of a held lock).
10. **Gate locks.**  A class declared a gate (``m.witness.gate(lock)``, the
   role of lockdep's ``nest_lock``) serialises what is taken under it: when
   every edge of a cycle was only ever taken with the same gate held, no two
   CPUs can be inside the cycle at once, and it is not reported (the gate
   locks of Havelund's GoodLock).  An edge taken once without the gate counts
   as ungated from then on, and the cycle is looked for again.

Reports about Linux locks speak lockdep's words (hardirq and softirq,
``{IN-HARDIRQ-W} -> {HARDIRQ-ON-W}``); reports about FreeBSD's speak spl.

Findings are warnings: each distinct one is recorded once per run (a
reversal is keyed by the set of classes in its cycle) and the run goes on,
unless the machine was asked to stop at the first.

The per-acquisition cost is a few dictionary look-ups: the graph lives in
plain dicts, and everything else (cycle search, interrupt-level search)
runs only when the run learns something new.  ``Witness.graph()`` builds a
networkx view on demand.
"""

from __future__ import annotations

from .report.lockdep import LINUX_KINDS
from .ops import SPLSOFT
from .lockorder import (EN, SN, SPL_MASKED, TAKEN_RECURSIVE, spl_conflicts, spl_name,
                        strong_path, type_names)

class EdgeInfo:
    """What witness remembers of one order edge a -> b."""

    __slots__ = ("first_site", "second_site", "cpu", "ctx", "run", "count", "declared",
                 "types", "blessed", "reversal", "gates")

    def __init__(self, first_site, second_site, cpu, declared=False, ctx="", run=0):
        #: Where the held lock (a) was taken when the edge was first seen.
        self.first_site = first_site
        #: Where the second lock (b) was taken then.
        self.second_site = second_site
        #: CPU that established the edge (-1 when declared).
        self.cpu = cpu
        #: Context (thread or ``irq:<source>``) that established it.
        self.ctx = ctx
        #: The run (its seed) that established it.
        self.run = run
        #: How many acquisitions followed this order.
        self.count = 0
        #: Enrolled from a model's declared order rather than seen.
        self.declared = declared
        #: Dependency types seen (bits EN, ER, SN, SR).
        self.types = EN if declared else 0
        #: The pair is blessed: the edge never takes part in a reported cycle.
        self.blessed = False
        #: The edge closed a reported cycle (it is the "attempted" order).
        self.reversal = False
        #: Gate classes held every time the edge was taken (empty for a declared one).
        self.gates = frozenset()


class Witness:
    """Per-run lock-order graph and rule checker; see the module docstring."""

    def __init__(self, m, enabled: bool = True) -> None:
        self.m = m
        self.enabled = enabled
        #: class -> {successor class -> EdgeInfo}, in first-seen order.
        self.edges: dict[str, dict[str, EdgeInfo]] = {}
        #: class -> lock kind, in first-seen order.
        self.classes: dict[str, str] = {}
        #: class -> [by waiting acquisitions, by recursive readers]: (highest level of a
        #: handler that took it, site, context), or None.
        self.safe: dict[str, list] = {}
        #: class -> [by waiting acquisitions, by recursive readers]: (lowest effective
        #: spl it was taken at, site, context), or None.
        self.unsafe: dict[str, list] = {}
        #: Keys of findings already reported in this run.
        self._reported: set = set()
        #: Class pairs never reported (frozensets of one or two names).
        self._blessed: set = set()
        #: CPU id -> [[handler frame, index in ``held`` of its first lock], ...].
        self._irq_bases: dict[int, list] = {}
        #: CPU id -> open atomic sections (RCU read side, epoch): [(what, site, ctx)].
        self.atomic: dict[int, list] = {}
        #: Classes declared gate locks (rule 10).
        self._gates: set = set()
        for observer in _observers:
            observer(self)

    # -- set-up -------------------------------------------------------------------------

    def declare(self, chains) -> None:
        """Enroll documented orders: each chain ``[a, b, c]`` means a before b before c."""
        for chain in chains or ():
            for a, b in zip(chain, chain[1:]):
                self.edges.setdefault(a, {}).setdefault(
                    b, EdgeInfo("declared", "declared", -1, True, run=self.m.seed))
                self.edges.setdefault(b, {})

    def bless(self, pairs) -> None:
        """Exempt class pairs ``(a, b)`` from reversal reports, in either order."""
        self._bless(self.blessed_set(pairs))

    def _bless(self, blessed) -> None:
        self._blessed = blessed
        if not blessed:
            for succ in self.edges.values():
                for info in succ.values():
                    info.blessed = False
            return
        for a, succ in self.edges.items():
            for b, info in succ.items():
                info.blessed = frozenset((a, b)) in blessed

    @staticmethod
    def declared_pairs(chains) -> tuple:
        """``declare``'s chains as the (a, b) pairs it enrols, in order (see ``enrol``)."""
        return tuple((a, b) for chain in chains or () for a, b in zip(chain, chain[1:]))

    @staticmethod
    def blessed_set(pairs) -> frozenset:
        """``bless``'s pairs as the set it keeps (see ``enrol``)."""
        return frozenset(frozenset(p) for p in pairs or ())

    def enrol(self, pairs, blessed) -> None:
        """``declare`` then ``bless``, from ``declared_pairs`` and ``blessed_set`` made once
        for many runs of one scenario."""
        edges = self.edges
        seed = self.m.seed
        for a, b in pairs:
            succ = edges.get(a)
            if succ is None:
                succ = edges[a] = {}
            if b not in succ:
                succ[b] = EdgeInfo("declared", "declared", -1, True, "", seed)
            if b not in edges:
                edges[b] = {}
        if blessed:
            self._bless(blessed)

    def gate(self, *locks) -> None:
        """Declare gate locks (rule 10): cycles taken wholly under one are not reported."""
        for lock in locks:
            self._gates.add(getattr(lock, "cls", lock))

    # -- hooks called by the engine -----------------------------------------------------

    def before_acquire(self, c, lock, mode, trylock, site) -> None:
        """Check and learn from an acquisition attempt (before it may wait)."""
        if not self.enabled:
            return
        cls = lock.cls
        recursive = mode == "s" and lock.reader_preferring
        # Interrupt-level usage; the slow path only when this class is new here, in a
        # handler, or taken at a lower spl than ever before.
        marks = self.unsafe.get(cls)
        if marks is None or c.irq_depth:
            self._note_usage(c, lock, cls, recursive, site)
        else:
            mark = marks[recursive]
            if mark is None or (SPL_MASKED if c.irq_off or lock.disables_irqs
                                else c.spl) < mark[0]:
                self._note_usage(c, lock, cls, recursive, site)
        if trylock:
            return  # a trylock cannot wait: no order, no blocking rule
        if lock.sleepable and not c.irq_depth and (
                c.irq_off or (c.spl and lock.kind in LINUX_KINDS)):
            self._wait_context(c, lock, site)
        if lock.sleepable and self.atomic.get(c.id):
            self._sleep_in_section(c, f"acquiring sleepable {lock.kind} {lock.label()} @ "
                                   f"{site or '?'}", ("section-lock", lock.cls))
        held = c.held
        if c.irq_depth:
            held = self._handler_held(c, held, lock, site)
        edges = self.edges
        gated = frozenset(h.lock.cls for h in held if h.lock.cls in self._gates) \
            if self._gates else frozenset()
        for h in held:
            hl = h.lock
            if hl.spin and not lock.spin and not lock.pseudo:
                self._blocking_under_spin(c, h, lock, site)
            if hl is lock:
                self._same_lock(c, h, lock, mode, site)
                continue
            a = hl.cls
            if a == cls:
                self._same_class(c, h, lock, recursive, site)
                continue
            if lock.sleepable and not hl.sleepable and not hl.spin and not hl.pseudo:
                self._sleepable_after(c, h, lock, site)
            succ = edges.get(a)
            if succ is None:
                succ = edges[a] = {}
            info = succ.get(cls)
            bit = (SN if h.mode == "s" else EN) << recursive
            if info is None or not info.types & bit or not info.count or (
                    info.gates and not info.gates <= gated):
                info = self._learn_edge(c, h, lock, site, info, bit, gated)
            info.count += 1

    def _handler_held(self, c, held, lock, site) -> list:
        """In a handler: the sleep rules over everything held, and the handler's own locks.

        Order edges are not drawn across contexts (lockdep does not either):
        the interrupted thread's locks are the spl rules' business.
        """
        if lock.sleepable:
            self._sleepable_in_irq(c, lock, site)
        base = self._context_base(c)
        for h in held[:base]:
            if h.lock.spin and not lock.spin and not lock.pseudo:
                self._blocking_under_spin(c, h, lock, site)
        return held[base:]

    def check_sleep(self, c, what, interlock) -> None:
        """A call that may sleep (msleep, may_sleep, a waiting allocation, a drain)."""
        if not self.enabled:
            return
        if c.irq_depth:
            key = ("sleep-irq", c.ctx, what)
            if key not in self._reported:
                self._report(key, "sleep-in-atomic",
                             f"sleeping function called from invalid context: {what} inside "
                             f"interrupt handler {c.ctx}", c,
                             {"key": list(key), "context": c.ctx})
            return
        if self.atomic.get(c.id):
            self._sleep_in_section(c, what, ("section-sleep", what))
            return
        for h in c.held:
            lk = h.lock
            if lk is interlock or lk.sleepable or lk.pseudo:
                continue
            key = ("sleep", lk.cls, what)
            if key not in self._reported:
                kind = "sleep-in-atomic" if lk.spin else "sleep-with-spinlock"
                self._report(key, kind,
                             f"sleeping ({what}) with non-sleepable {lk.kind} {lk.label()} "
                             f"held (taken at {h.site or '?'})", c,
                             {"key": list(key), "held": lk.cls, "held_site": h.site})
            return

    # -- atomic sections (RCU read side, epoch) ----------------------------------------------

    def enter_atomic(self, c, what: str, site: str) -> None:
        """CPU ``c`` entered a section in which it must not sleep (``rcu_read_lock``)."""
        self.atomic.setdefault(c.id, []).append((what, site, c.ctx))

    def exit_atomic(self, c, what: str) -> bool:
        """Leave the innermost open section named ``what``; False when none is open."""
        stack = self.atomic.get(c.id) or []
        for i in range(len(stack) - 1, -1, -1):
            if stack[i][0] == what:
                del stack[i]
                return True
        return False

    def _sleep_in_section(self, c, what, key) -> None:
        sec, site, ctx = self.atomic[c.id][-1]
        key = key + (sec,)
        if key in self._reported:
            return
        self._report(key, "sleep-in-atomic",
                     f"sleeping function called from invalid context: {what} inside {sec} "
                     f"(entered by {ctx} @ {site or '?'})", c,
                     {"key": list(key), "section": sec, "section_site": site})

    def irqs_enabled(self, c) -> None:
        """The spl was lowered (or interrupts turned back on) with locks held (rule 7)."""
        if not self.enabled:
            return
        held = c.held
        if c.irq_depth:
            held = held[self._context_base(c):]
        if not held:
            return
        where = self.m.site(c) if self.m.sites else ""
        for h in list(held):
            lk = h.lock
            if lk.pseudo:
                continue
            recursive = h.mode == "s" and lk.reader_preferring
            self._note_usage(c, lk, lk.cls, recursive,
                             f"{where or '?'} (unmasked there, held since {h.site or '?'})")

    def check_lifecycle(self, c, lock, what) -> None:
        """``init()`` or ``destroy()`` of ``lock``: nobody may hold it (rule 9)."""
        if not self.enabled:
            return
        holders = lock.holders()
        if holders:
            self._held_freed(c, lock, f"{what} of", holders)

    def check_free(self, c, label, fields) -> None:
        """A zone item's memory is freed: none of its fields may be a lock ``c`` holds.

        As lockdep's check, it looks at the freeing CPU's own locks (rule 9);
        a NOFREE zone's memory stays a valid lock, so it is not asked.
        """
        if not self.enabled or not c.held:
            return
        for name, value in fields.items():
            held_by = getattr(value, "held_by", None)
            if callable(held_by) and getattr(value, "cls", None) is not None and held_by(c):
                self._held_freed(c, value, f"free of {label} (field {name}) holding",
                                 value.holders())

    def _held_freed(self, c, lock, what, holders) -> None:
        key = ("freed", lock.cls, what.split()[0])
        if key in self._reported:
            return
        sites = []
        for o in holders:
            h = o.holding(lock)
            sites.append(f"CPU{o.id} ({o.ctx}) @ {h.site if h is not None else '?'}")
        self._report(key, "held-lock-freed",
                     f"held lock freed: {what} {lock.kind} {lock.label()} while held by "
                     f"{', '.join(sites)}", c,
                     {"key": list(key), "lock": lock.cls, "holders": sites})

    def _wait_context(self, c, lock, site) -> None:
        """A sleepable lock taken with interrupts masked in thread context (rule 8)."""
        if any(h.lock.spin for h in c.held):
            return  # the spin lock held is the finding (rule 6)
        key = ("wait-context", lock.cls)
        if key in self._reported:
            return
        why = "interrupts disabled" if c.irq_off else f"{spl_name(c.spl)} raised"
        self._report(key, "sleep-with-spinlock",
                     f"invalid wait context: sleepable {lock.kind} {lock.label()} taken "
                     f"@ {site or '?'} with {why} (it may sleep with the CPU unable to "
                     f"take interrupts)", c,
                     {"key": list(key), "acquired": lock.cls, "site": site, "spl": c.spl})

    # -- order ------------------------------------------------------------------------------

    def _learn_edge(self, c, h, lock, site, info, bit, gated=frozenset()) -> EdgeInfo:
        """A new edge, a new dependency type on one, or one now taken with fewer gates held:
        record it, then look for a cycle."""
        a, b = h.lock.cls, lock.cls
        narrowed = False
        if info is None:
            info = EdgeInfo(h.site, site, c.id, ctx=c.ctx, run=self.m.seed)
            info.blessed = frozenset((a, b)) in self._blessed
            info.gates = gated
            self.edges[a][b] = info
            self.edges.setdefault(b, {})
        else:
            if not info.count and not info.declared:
                info.gates = gated
            narrowed = bool(info.gates - gated)
            info.gates &= gated
            if not info.count:
                # A declared edge taken for the first time: remember where.
                info.first_site, info.second_site, info.cpu, info.ctx = (
                    h.site, site, c.id, c.ctx)
        new_type = not info.types & bit
        info.types |= bit
        if (new_type or narrowed) and not info.blessed:
            found = strong_path(self.edges, b, a, bool(bit & TAKEN_RECURSIVE), h.mode == "s")
            if found is not None:
                self._report_reversal(c, h, lock, site, info, bit, found)
        if new_type and self.safe:
            self._check_spl(c)
        return info

    def _report_reversal(self, c, h, lock, site, info, bit, found) -> None:
        a, b = h.lock.cls, lock.cls
        path, path_types = found                      # b -> ... -> a
        cycle = [a] + path                            # a -> b -> ... -> a
        key = ("lor",) + tuple(sorted(set(cycle)))
        if key in self._reported:
            return
        if info.gates and info.gates.intersection(
                *(self.edges[x][y].gates for x, y in zip(path, path[1:]))):
            return  # every edge of the cycle was taken under one gate (rule 10)
        info.reversal = True
        sites = [{"edge": [a, b], "first": h.site, "second": site, "cpu": c.id,
                  "ctx": c.ctx, "declared": False, "attempted": True}]
        for x, y in zip(path, path[1:]):
            e = self.edges[x][y]
            sites.append({"edge": [x, y], "first": e.first_site, "second": e.second_site,
                          "cpu": e.cpu, "ctx": e.ctx, "declared": e.declared,
                          "attempted": False})
        msg = (f"lock order reversal: 1st {a} ({h.lock.kind}) @ {h.site or '?'} / "
               f"2nd {b} ({lock.kind}) @ {site or '?'}; {_established(path, sites[1:])}")
        if len(cycle) > 3:
            msg += f"; cycle {' -> '.join(cycle)}"
        types = [type_names(bit)] + [type_names(t) for t in path_types]
        from .report import lockdep
        kinds = [self.classes.get(x, "") for x in cycle] + [h.lock.kind, lock.kind]
        text = lockdep.reversal(
            any(k in lockdep.LINUX_KINDS for k in kinds),
            {"cls": a, "kind": h.lock.kind, "site": h.site, "read": h.mode == "s"},
            {"cls": b, "kind": lock.kind, "site": site, "read": bool(bit & TAKEN_RECURSIVE)},
            sites[1:], cycle, f"{c.ctx} (CPU{c.id})", self.m.call_chain(c))
        self._report(key, "lock-order-reversal", msg, c,
                     {"key": list(key), "cycle": cycle, "sites": sites, "types": types,
                      "report": text})

    def _same_class(self, c, h, lock, recursive, site) -> None:
        """Two instances of one class, nested (rule 3)."""
        if h.lock.dupok or lock.dupok:
            return
        if recursive and h.mode == "s":
            return  # readers of a reader-preferring lock never wait for each other
        a = lock.cls
        key = ("lor", a)
        if key in self._reported or frozenset((a,)) in self._blessed:
            return
        sites = [{"edge": [a, a], "first": h.site, "second": site, "cpu": c.id, "ctx": c.ctx,
                  "declared": False, "attempted": True}]
        self._report(key, "lock-order-reversal",
                     f"acquiring duplicate lock of same type: {a} ({lock.kind}): "
                     f"1st {h.lock.label()} @ {h.site or '?'} / 2nd {lock.label()} "
                     f"@ {site or '?'}", c, {"key": list(key), "cycle": [a, a], "sites": sites})

    def _same_lock(self, c, h, lock, mode, site) -> None:
        """The very lock held is wanted again (``might_lock``, or a shared re-entry)."""
        if h.mode == "s" and mode == "s" and lock.read_recursive:
            return  # this lock lets a reader in again past waiting writers
        if h.mode == "x" and mode == "x" and lock.recursive:
            return
        a = lock.cls
        key = ("lor", a)
        if key in self._reported:
            return
        why = ("a writer queued between the two holds would deadlock it"
               if h.mode == "s" and mode == "s" else "it would wait for itself")
        sites = [{"edge": [a, a], "first": h.site, "second": site, "cpu": c.id, "ctx": c.ctx,
                  "declared": False, "attempted": True}]
        self._report(key, "lock-order-reversal",
                     f"possible recursive locking of {lock.kind} {lock.label()}: "
                     f"1st {a} @ {h.site or '?'} / 2nd {a} @ {site or '?'} ({why})", c,
                     {"key": list(key), "cycle": [a, a], "sites": sites})

    def _sleepable_after(self, c, h, lock, site) -> None:
        """WITNESS's implied order: sleepable locks before non-sleepable ones (rule 6)."""
        a, b = h.lock.cls, lock.cls
        key = ("lor",) + tuple(sorted((a, b)))
        if key in self._reported or frozenset((a, b)) in self._blessed:
            return
        sites = [{"edge": [a, b], "first": h.site, "second": site, "cpu": c.id, "ctx": c.ctx,
                  "declared": False, "attempted": True}]
        self._report(key, "lock-order-reversal",
                     f"lock order reversal: (sleepable after non-sleepable) 1st {a} "
                     f"({h.lock.kind}) @ {h.site or '?'} / 2nd {b} ({lock.kind}) @ {site or '?'}",
                     c, {"key": list(key), "cycle": [a, b, a], "sites": sites,
                         "reason": "sleepable after non-sleepable"})

    # -- sleeping -------------------------------------------------------------------------------

    def _blocking_under_spin(self, c, h, lock, site) -> None:
        key = ("spin", h.lock.cls, lock.cls)
        if key in self._reported:
            return
        self._report(key, "sleep-in-atomic",
                     f"acquiring {lock.kind} {lock.label()} (it may block) @ {site or '?'} with "
                     f"{h.lock.kind} {h.lock.label()} held (taken at {h.site or '?'})", c,
                     {"key": list(key), "held": h.lock.cls, "held_site": h.site,
                      "acquired": lock.cls, "site": site})

    def _sleepable_in_irq(self, c, lock, site) -> None:
        key = ("sleepable-irq", lock.cls)
        if key in self._reported:
            return
        self._report(key, "sleep-in-atomic",
                     f"sleepable {lock.kind} {lock.label()} taken in interrupt handler "
                     f"{c.ctx} @ {site or '?'}", c,
                     {"key": list(key), "acquired": lock.cls, "site": site})

    # -- interrupt levels -------------------------------------------------------------------

    def _context_base(self, c) -> int:
        """Index in ``c.held`` of the first lock taken by the running interrupt handler."""
        stack = self._irq_bases.setdefault(c.id, [])
        frames = c.frames
        while stack and not any(f is stack[-1][0] for f in frames):
            stack.pop()  # that handler has returned
        top = frames[-1]
        if not stack or stack[-1][0] is not top:
            stack.append([top, len(c.held)])
        return stack[-1][1]

    def _note_usage(self, c, lock, cls, recursive, site) -> None:
        """Mark ``cls`` L-safe (taken in a handler of level L) and L-unsafe (L unmasked)."""
        if cls not in self.classes:
            self.classes[cls] = lock.kind
        spl = SPL_MASKED if (c.irq_off or lock.disables_irqs) else c.spl
        marks = self.unsafe.get(cls)
        if marks is None:
            marks = self.unsafe[cls] = [None, None]
        mark = marks[recursive]
        changed = False
        if mark is None or spl < mark[0]:
            marks[recursive] = (spl, site, c.ctx)
            changed = spl < SPL_MASKED
        src = c.frames[-1].source if c.irq_depth else None
        if src is not None and not getattr(src, "threaded", False):
            level = src.level
            marks = self.safe.get(cls)
            if marks is None:
                marks = self.safe[cls] = [None, None]
            mark = marks[recursive]
            if mark is None or level > mark[0]:
                marks[recursive] = (level, site, c.ctx)
                changed = True
        if changed and self.safe:
            self._check_spl(c)

    def _check_spl(self, c) -> None:
        """Rule 5 over the whole graph: an L-safe class reaching an L-unsafe one."""
        for a, safe, b, unsafe, chain in spl_conflicts(self.edges, self.safe, self.unsafe):
            key = ("spl", a, b)
            if key not in self._reported:
                self._report_spl(c, key, a, safe, b, unsafe, chain)

    def _report_spl(self, c, key, a, safe, b, unsafe, chain) -> None:
        level, s_site, s_ctx = safe
        spl, u_site, u_ctx = unsafe
        kinds = self.classes
        from .report import lockdep
        linux = kinds.get(a, "") in lockdep.LINUX_KINDS or kinds.get(b, "") in lockdep.LINUX_KINDS
        if linux:
            msg, lvl, at = self._spl_message_linux(c, a, level, s_site, s_ctx, b, u_site,
                                                    u_ctx, chain)
        else:
            msg, lvl, at = self._spl_message(a, level, s_site, s_ctx, b, spl, u_site, u_ctx,
                                             chain)
        text = lockdep.irq_conflict(
            linux, a, kinds.get(a, "?"), lvl, s_site, s_ctx, b, kinds.get(b, "?"), at, u_site,
            u_ctx, chain, self.m.call_chain(c))
        self._report(key, "spl-violation", msg, c, {
            "key": list(key), "chain": chain, "report": text,
            "safe": {"class": a, "level": level, "site": s_site, "ctx": s_ctx},
            "unsafe": {"class": b, "spl": spl, "site": u_site, "ctx": u_ctx}})

    def _spl_message(self, a, level, s_site, s_ctx, b, spl, u_site, u_ctx, chain):
        """The FreeBSD wording: spl levels."""
        lvl, at = spl_name(level), spl_name(spl)
        kinds = self.classes
        if a == b:
            msg = (f"{a} ({kinds.get(a, '?')}) is taken in interrupt handler {s_ctx} at {lvl} "
                   f"@ {s_site or '?'} and with {lvl} unmasked ({at}, in {u_ctx}) @ "
                   f"{u_site or '?'}: the interrupt can arrive while it is held and its "
                   f"handler wait for it forever")
        else:
            first = self.edges[chain[0]][chain[1]]
            msg = (f"{a} ({kinds.get(a, '?')}) is taken in interrupt handler {s_ctx} at {lvl} "
                   f"@ {s_site or '?'} and held while taking {' -> '.join(chain[1:])} "
                   f"(first @ {first.first_site or '?'} / {first.second_site or '?'}), but "
                   f"{b} ({kinds.get(b, '?')}) is taken with {lvl} unmasked ({at}, in {u_ctx}) "
                   f"@ {u_site or '?'}: a CPU holding {b} can take the interrupt while "
                   f"another holding {a} waits for {b}")
        return msg, lvl, at

    def _spl_message_linux(self, c, a, level, s_site, s_ctx, b, u_site, u_ctx, chain):
        """Lockdep's wording: hardirq and softirq usage states."""
        irq = "SOFTIRQ" if level <= SPLSOFT else "HARDIRQ"
        low = irq.lower()
        lvl, at = f"{low} ({spl_name(level)})", f"{low}s enabled"
        kinds = self.classes
        if a == b:
            states = [f"{{IN-{irq}-W}}", f"{{{irq}-ON-W}}"]
            if c.irq_depth:  # the handler's use came second
                states.reverse()
            msg = (f"inconsistent {states[0]} -> {states[1]} usage: {a} ({kinds.get(a, '?')}) "
                   f"is taken in {low} context ({s_ctx}) @ {s_site or '?'} and with {low}s "
                   f"enabled (in {u_ctx}) @ {u_site or '?'}: the {low} can arrive on the CPU "
                   f"holding it and spin on it forever")
        else:
            first = self.edges[chain[0]][chain[1]]
            msg = (f"{irq}-safe -> {irq}-unsafe lock order detected: {a} "
                   f"({kinds.get(a, '?')}) became {irq}-safe in {s_ctx} @ {s_site or '?'} and "
                   f"is held while taking {' -> '.join(chain[1:])} (first @ "
                   f"{first.first_site or '?'} / {first.second_site or '?'}), but {b} "
                   f"({kinds.get(b, '?')}) is {irq}-unsafe: taken with {low}s enabled (in "
                   f"{u_ctx}) @ {u_site or '?'}")
        return msg, lvl, at

    # -- results ----------------------------------------------------------------------------

    def _report(self, key, kind, msg, c, extra) -> None:
        self._reported.add(key)
        self.m.fail(kind, msg, c, extra=extra)

    def edge_list(self) -> list[dict]:
        """Every edge as plain data (what ``lor`` merges across runs)."""
        out = []
        for a, succ in self.edges.items():
            for b, e in succ.items():
                out.append({"from": a, "to": b, "first_site": e.first_site,
                            "second_site": e.second_site, "cpu": e.cpu, "ctx": e.ctx,
                            "run": e.run, "count": e.count, "declared": e.declared,
                            "types": type_names(e.types), "blessed": e.blessed,
                            "reversal": e.reversal})
        return out

    def usage_list(self) -> dict:
        """Interrupt-level usage per class: where it was taken in handlers and unmasked."""
        out = {}
        for cls in self.classes:
            safe = [_mark(m, "level", r) for r, m in enumerate(self.safe.get(cls, ()))
                    if m is not None]
            unsafe = [_mark(m, "spl", r) for r, m in enumerate(self.unsafe.get(cls, ()))
                      if m is not None and m[0] < SPL_MASKED]
            out[cls] = {"safe": safe, "unsafe": unsafe}
        return out


def _mark(mark, what, recursive) -> dict:
    return {what: mark[0], "site": mark[1], "ctx": mark[2], "read": bool(recursive)}


def _established(path, sites) -> str:
    """How the order the attempt reverses was established, WITNESS's "established at"."""
    untaken = [s["declared"] and s["first"] == "declared" for s in sites]
    if sites and all(untaken):
        return f"documented order {' -> '.join(path)}"
    parts = []
    for s, never in zip(sites, untaken):
        x, y = s["edge"]
        if never:
            parts.append(f"{x} -> {y} (documented)")
            continue
        who = s["ctx"] or f"CPU{s['cpu']}"
        doc = ", documented" if s["declared"] else ""
        parts.append(f"{x} @ {s['first'] or '?'} -> {y} @ {s['second'] or '?'} ({who}{doc})")
    return "established order " + ", ".join(parts)


#: Callables told of every Witness created (see ``observe``).
_observers: list = []


class observe:
    """Collect the Witness of every run started inside the block.

    ``with observe() as seen: run_scenario(...)`` leaves the run's witness
    in ``seen`` so a caller can read its full graph (``edge_list``,
    ``usage_list``) after the run.
    """

    def __enter__(self) -> list:
        self.seen: list = []
        _observers.append(self.seen.append)
        return self.seen

    def __exit__(self, *exc) -> None:
        _observers.remove(self.seen.append)
