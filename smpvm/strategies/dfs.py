"""``dfs``: every schedule of a small model, with dynamic partial-order reduction.

A run of a model is fixed by its choices: at each point where two or more
CPUs could step, which one does.  ``dfs`` walks the tree of those choices
depth first, re-running the model from the start for every leaf (stateless
search: no state is stored or compared, so there is no state key that could
be incomplete).  When the tree is used up it says so, and "all K schedules
explored, none failed" is then a proof for that model, its parameters and
its seed.

**Reduction.**  Two steps of different CPUs that touch different locks,
fields, zones and wait channels end in the same state in either order, so
only one order needs running.  After every step the engine says what it
touched (its *footprint*: key -> written); two steps are *dependent* when
they share a key and one writes it.  The search is dynamic partial-order
reduction with sleep sets:

1. Run a schedule; record each step's CPU, footprint and the CPUs that
   could step before it.
2. Find its races, as Flanagan and Godefroid do ("Dynamic partial-order
   reduction for model checking software", POPL 2005): a step ``e`` of CPU
   ``p`` was ``p``'s next step in every state since ``p``'s previous step,
   and in each of them the latest step ``d`` of another CPU that is
   dependent with ``e``, could be enabled together with it and does not
   happen before ``p`` is a race.  Steps that ``e`` follows directly are
   races too, as in source-DPOR (Abdulla et al., "Optimal dynamic partial
   order reduction", POPL 2014).
3. Reverse each race as source-DPOR does: from the state before ``d``, run
   the steps after ``d`` that do not depend on it, then ``e``.  The CPUs
   that can go first in that sequence are its *initials*.  If one of them
   was already tried in that state, or sleeps there, the reversal is
   covered; otherwise one is added to the CPUs to try there.  If none of
   them can step there, every CPU that can is tried.
4. Sleep sets: once the branch of CPU ``q`` at a state is done, ``q`` sleeps
   in the later branches and their descendants for as long as the steps
   taken are independent of ``q``'s step: what begins with it was covered.
   A state where every CPU that could step sleeps has nothing new below it;
   the run finishes anyway, off the tree, and counts as redundant
   (``sleep_blocked``), but is still a distinct schedule.
5. Go back to the deepest state with a CPU still to try, and run again.
   The steps a run shares with the one before were analysed then, so step
   2 looks only at the new ones.

Two refinements come from the engine's locks: starting to wait for a lock
that does not serve waiters in order only *reads* it (two CPUs that start to
wait commute), and a step of a CPU holding lock L is never enabled together
with the next step of a CPU waiting for L.

**Lock waits.**  Such a wait is not even a step of the tree.  Where waiting
for a lock changes nothing another CPU can see -- a blocking attempt, not a
trylock, on a lock the CPU does not hold, whose release lets its waiters
retry rather than handing it on in order, and (for a shared lock) where a
waiting writer does not hold new readers back -- the CPU whose next step
would only start to wait counts as unable to step until the lock can be
granted to it, as a guarded acquisition in a model checker's language.  A
schedule in which it tries, waits and is let in later ends as the one in
which it simply takes the lock then: the same accesses in the same order,
the same lock order for witness (its checks run at the acquisition), the
same violations; only lock statistics tell them apart, and a search keeps
none.  So a run has no waits but a deadlock's: when every CPU that could
step would wait, the run leaves the tree there and makes those waits, in
CPU order, for the engine to report the deadlock; the CPUs left waiting
count as unfinished (their next steps dependent with every step).  The
rule is off in a state with interrupts or device processes, where a
spinning waiter takes interrupts and time matters (``ELIDE_WAITS``, the
default, switches it for a whole search).  It leaves out all the schedules
that differ only in which attempts failed first: on the fixed doomed-object
model with two allocators, 92 schedules where there were 3,336.

**Type-stable memory.**  A ``nofree`` zone reuses a freed slot for the
next allocation, so a free and another CPU's allocation would be ordered
like writes to the zone.  What the order changes is only which slot the
allocation takes, and a slot's number is a name, not state, unless a
pointer to the freed allocation is still held somewhere (then the next
allocation aliases it).  So a free orders itself with the zone's
allocations only where a pointer outlived its step, or outlived the free
of another slot waiting for reuse (``memory.Zone._settle``: Python's
reference counts of the model's item pointers say which); footprints name
an allocation by slot and generation, so the free of one and the reuse of
its slot share no key; and ``live_items`` lists allocations in the order
they were made, which allocations agree on whatever their slots.  A
schedule then stands for those that differ in which slot numbers its
allocations got.  On the fixed doomed-object model: 4, 34 and 379
schedules with one, two and three allocators, where there were 6, 92 and
3,189 (and 7,658 with four); random programs over a zone, stale pointers
kept, published and read through, are cross-checked against plain
enumeration in ``tests/test_dfs_heap.py``.

**Why it is sound, and how far.**  Sleep sets, the race detection of
step 2 and the reversal rule of step 3 are each proven in the papers above
(Flanagan and Godefroid's for acyclic state spaces, with disabled threads;
source-DPOR's with sleep sets); this combination of them is not itself a
published theorem.  It is cross-checked in ``tests/test_dfs.py`` against
plain enumeration, outcome for outcome, on hand-written models (locks,
sleeps, interrupts, random draws) and on random programs over four kinds of
lock, trylock, msleep and wakeups.  A failing step fails as a function of
what it reads, which equivalent schedules give it unchanged, so a search
that reaches every class of schedules reaches every failure.  All of this
assumes complete footprints, so ``dfs`` completes them where the engine
leaves gaps:

* a step that makes another CPU runnable or not (a release letting waiters
  retry, a wakeup, a grant that re-blocks retriers) writes that CPU's key
  ``("sched", cpu)``, which the CPU's next step reads;
* a step after which its CPU waits for a lock touches that lock (a failed
  retry leaves no record in the engine);
* a step that draws from the model's random stream ``m.rng`` writes
  ``("rng",)``;
* with interrupt sources every step writes ``("time",)``: interrupts arrive
  by simulated time, which every step moves, so nothing commutes and the
  search is plain enumeration;
* an interrupt given a window (``m.interrupt_source(..., window=...)``)
  lands where an ``"irq"`` decision says, at one of its CPU's yield points;
  the tree of the reduction has a node per step, not per decision, so a
  model with such an interrupt is searched by plain enumeration of every
  decision, placements included (``exhaust`` switches as soon as it sees
  one), and each placement counts as a schedule;
* the step that ends a run with a fatal violation counts as dependent with
  every step, and so does the pending step of every CPU not finished when a
  run ends;
* plain Python state that two CPUs reach (``unseen``: lists, dicts, plain
  objects, module globals) is read by every step and written by a step that
  changed it, found by copying it after every step; the report names it.

**Symmetry.**  Threads started by the same code with equal arguments
(``identical_threads``: the allocators of a model spawned in a loop) are
interchangeable.  Two of them are *twins* while both have taken the same
number of pure steps (writing nothing, reading only keys no step has
written) and neither has finished: they are in the same state, every shared
object is as it was, and the state is its own image with their names
swapped.  There the higher CPU is held back; whatever it would do, the lower
one does in the mirror-image schedule.  Any schedule becomes one that never
steps a held-back CPU by swapping the twins' names from each state where
the higher one stepped, with the same violations up to those names, so the
reduction needs only the constrained schedules; to it the hold-back is
enabledness like a lock's, recorded with the ``("sched", cpu)`` keys.  This
assumes the engine and the model treat CPUs alike but for their names:
threads whose model code (their module and what it reaches) reads
``m.current`` or ``m.now`` are never taken as identical;
with interrupts or device processes, or where holding back leaves no CPU to
step, ``exhaust`` searches again without it.  It is cross-checked like the
reduction, outcomes compared up to the twins' names.

**Shared paths.**  Run after run, the search replays the path down to the
state where the new run branches off.  The model is deterministic for a
given schedule, so those steps are the previous run's: their footprints,
the book-keeping after them and the race analysis's index of them are taken
over (``_take_over``, ``_Run.truncate``), and only the new steps are
recorded; the watch of unseen state compares from the branching state on.

A CPU that spins is held back until the others have stepped
(``smpvm.strategies.fair``), so a busy-wait does not make the tree infinite.

Limits (effects no footprint records, which the reduction cannot see):
model code reading ``m.now`` or a lock's state directly, or setting one
``m.metric`` name from several CPUs.  (``obj.live``, ``zone.live_count`` and
``zone.live_items()`` are recorded as reads; ``obj.same_memory()`` compares
pointers, which no schedule changes.)  Witness findings come
from the order graph, which equivalent schedules build alike.

**Preemption bound.**  With ``preemption_bound=B`` only schedules with at
most ``B`` preemptions run (CHESS: Musuvathi and Qadeer, PLDI 2007); a
preemption is a choice of another CPU while the CPU that took the previous
step could go on.  Reduction and a bound do not mix naively (a schedule
within the bound may be covered only by an equivalent one beyond it; Coons
et al., "Bounded partial-order reduction", OOPSLA 2013), so a bounded search
is plain enumeration and "exhausted" means every schedule within the bound
ran.

``exhaust()`` is the driver; the ``DFS`` strategy alone runs one schedule:
its current path, then the lowest CPU that may step.
"""

from __future__ import annotations

import inspect

from ..cpu import BLOCKED, DONE, RUNNABLE
from .. import seeds
from ..current import current_machine
from ..locks.base import Acquire
from ..memory import PLAIN_TYPES
from ..violations import ModelError
from .base import Strategy
from .fair import Fairness
from . import unseen

#: Footprint of a step whose effects are unknown: dependent with every step.
ANYTHING = None
_NO_LOCKS: dict = {}


def dependent(a, b) -> bool:
    """Do two footprints conflict (a shared key that at least one of them writes)?"""
    if a is ANYTHING or b is ANYTHING:
        return True
    if len(a) > len(b):
        a, b = b, a
    for key, wrote in a.items():
        other = b.get(key)
        if other is not None and (wrote or other):
            return True
    return False


class _Step:
    """One step of a run, as the race analysis needs it."""

    __slots__ = ("cpu", "fp", "enabled", "held", "waits", "books", "opts")

    def __init__(self, cpu, fp, enabled, held, waits, books=None, opts=None):
        #: The CPU that stepped.
        self.cpu = cpu
        #: Footprint (key -> written), or ANYTHING.
        self.fp = fp
        #: CPUs that could step in the state before it.
        self.enabled = enabled
        #: Locks the CPU held when the step began (lock uid -> "x" or "s"; may miss some).
        self.held = held
        #: (lock uid, mode) the CPU waits for after the step, or None; (lock uid, mode,
        #: True) where its next step is an acquisition that waits are elided from.
        self.waits = waits
        #: The search's own book-keeping after the step (``DFS._books``), from which a
        #: later run that replays this step takes over.
        self.books = books
        #: The CPUs the engine offered before it (``stepped``'s ``enabled``), by which
        #: the engine follows the step again (``Strategy.follow``); None: it may not.
        self.opts = opts

    def bare(self) -> "_Step":
        """The step as the race analysis needs it, without the book-keeping: for a path
        on which no run will branch off right after it."""
        return _Step(self.cpu, self.fp, self.enabled, self.held, self.waits, opts=self.opts)


class _Node:
    """One state on the current path of the search tree (the state before a step)."""

    __slots__ = ("enabled", "chosen", "backtrack", "done", "sleep", "taken", "last",
                 "preemptions")

    def __init__(self, enabled, sleep, last, preemptions):
        #: CPUs that could step here, ascending.
        self.enabled = enabled
        #: The CPU stepping here in the current run (None: nothing new below).
        self.chosen = None
        #: CPUs to try from here.
        self.backtrack = set()
        #: CPUs tried, or being tried, from here.
        self.done = set()
        #: CPUs asleep on arrival: CPU -> footprint of its step from here.
        self.sleep = sleep
        #: Footprint of each tried CPU's step from here (they sleep in later branches).
        self.taken = {}
        #: The CPU that took the step before this state (-1 at the start).
        self.last = last
        #: Preemptions on the path up to this state.
        self.preemptions = preemptions

    def cost(self, cpu) -> int:
        """1 when stepping ``cpu`` here preempts the CPU that stepped last, else 0."""
        return 1 if self.last != cpu and self.last in self.enabled else 0


class DFS(Strategy):
    """Follows the current path of the search tree, then the lowest CPU awake.

    ``exhaust()`` drives it: after each run ``finish_run(result)`` analyses
    the run and ``advance()`` moves to the next branch to explore.
    """

    name = "dfs"
    timed = False
    #: States before this index belong to another part of a shared search (see ``below``).
    floor = 0

    #: The default of ``elide_waits``.
    ELIDE_WAITS = True

    def __init__(self, preemption_bound: int | None = None, reduction: bool = True,
                 symmetry: bool = False, elide_waits: bool | None = None):
        if preemption_bound is not None and preemption_bound < 0:
            raise ValueError(f"the preemption bound must be >= 0, got {preemption_bound}")
        #: Most preemptions a schedule may have (None: no bound).
        self.preemption_bound = preemption_bound
        #: Partial-order reduction in use (never together with a bound).
        self.reduction = bool(reduction) and preemption_bound is None
        self.wants_footprints = self.reduction
        #: Identical threads are taken in the order of their first steps (with reduction only).
        self.symmetry = bool(symmetry) and self.reduction
        #: A lock attempt that would wait is no step of the tree (with reduction only; see
        #: "Lock waits" in the module docstring).
        if elide_waits is None:
            elide_waits = self.ELIDE_WAITS
        self.elide_waits = bool(elide_waits) and self.reduction
        #: Groups of identical threads found at the start (names, in CPU order).
        self.symmetric: list[tuple[str, ...]] = []
        #: A run showed the threads were not interchangeable: search again without symmetry.
        self.symmetry_broken = False
        #: The current path: node k is the state before step k (decision k without reduction).
        self.tree: list[_Node] = []
        #: Branches the reduction skipped (each hides at least one schedule).
        self.pruned = 0
        #: Branches left out because they would exceed the preemption bound.
        self.beyond_bound = 0
        #: Shared state outside the model API that a step changed, in any run: name -> description.
        self.unseen: dict[str, str] = {}
        #: The model has interrupts given a window: their placements need plain enumeration.
        self.saw_windows = False
        #: The race analysis's index of the last run's steps (``_Run``), kept for the next.
        self._run = None
        #: Where the first run looked for unseen state (step, CPUs, CPUs started), and
        #: the recipe that finds what it found (``unseen.refind``).
        self._recipe = None
        #: The threads as the first run started them (``_start_signature``).
        self._start = None
        #: Where the first run looked for identical threads, and the groups it found:
        #: a run at the same state finds the same groups (as the recipe above).
        self._groups = None
        self.begin(0)

    # -- one run -------------------------------------------------------------------------

    def begin(self, seed):
        self._seed = int(seed)  # dfs draws no random numbers; random() seeds on demand
        #: State from which this run left the tree: every CPU there was asleep (or None).
        self.blocked_at = None
        #: State from which this run left the tree because every CPU that could step
        #: would only start to wait for a lock (or None): a deadlock, whose waits the
        #: run goes on to make, off the tree.
        self.stalled_at = None
        #: No interrupts and no devices anywhere in the run (``finish_run`` finds out).
        self._timeless_run = True
        #: First state of this run that the previous run did not visit.
        #: (A part of a shared search starts on a path that no run here has taken yet.)
        previous = getattr(self, "trace", [])
        self.fresh_from = min(max(len(self.tree) - 1, 0), len(previous))
        #: Steps of this run.  Those before ``fresh_from`` replay the previous run's path:
        #: the model is deterministic for a given schedule, so they are the previous
        #: run's steps, kept with their footprints instead of being recorded again.
        self.trace: list[_Step] = previous[:self.fresh_from]
        #: The engine takes the replayed steps without asking (``Strategy.follow``) and
        #: tells ``followed`` where it stopped: nothing about them is learnt anew.
        self.follow = self.trace if self.reduction else None
        self.follow_to = self.fresh_from
        #: Steps taken in this run so far.
        self._k = 0
        self._m = None
        self._picked = None
        self._decisions = 0
        self._after = None
        #: The CPUs able to step in the state after the last step, before any is held
        #: back (see "Lock waits"; None: every CPU that can step).
        self._able_next = None
        self._next_sleep = {}
        self._unsure = set()
        self._held = {}
        self._rng_state = None
        #: Watch over the shared state outside the model API (None: not looked yet; False: none).
        self._watch = None
        self._unseen_keys = ()
        #: Symmetry: CPU -> the identical threads on lower CPUs.
        self._lower = {}
        #: Symmetry: steps each CPU of a group took; the CPUs whose steps all were pure
        #: (wrote nothing, read only what no step had written); keys written so far.
        self._count = {}
        self._pure = set()
        self._written = set()
        #: CPUs that have stepped in this run.
        self._started = set()
        #: The book-keeping of the replayed path was taken over at ``fresh_from``.
        self._rebased = False
        #: Fair scheduling around spin-waits (``smpvm.strategies.fair``).
        self.fair = Fairness()

    def random(self):
        if not hasattr(self, "_rng"):
            super().begin(self._seed)
        return super().random()

    def pick(self, kind, options, last):
        if kind == "irq":
            return self._place(options, last)
        if kind != "cpu":
            raise ModelError(f"dfs explores CPU choices only, got a {kind!r} decision")
        if self.reduction:
            if self._watch is None:
                self._look_for_unseen(current_machine())
            if self._k == self.fresh_from and self._k and not self._rebased:
                self._take_over()
            if self.elide_waits:
                able = _able(self._m if self._m is not None else current_machine(), options)
                if not able or self.stalled_at is not None:
                    if self.stalled_at is None:
                        self.stalled_at = self._k
                    return options[0]  # a deadlock: its waits, off the tree
                options = able
            if len(self._pure) > 1:  # twins left (see ``_not_held_back``)
                options = self._not_held_back(options)
        options = self.fair.allowed(options, last)
        if self.blocked_at is not None:
            return options[0]  # past a sleep-blocked state: finish the run, off the tree
        if self.reduction:
            k = self._k
        else:  # plain enumeration: the tree has only the decision points
            k = self._decisions
            self._decisions += 1
        node = self._node(k, options, last)
        self._picked = (k, node.chosen)
        return node.chosen

    def _place(self, options, last):
        """An ``"irq"`` decision: a node like any other in plain enumeration.

        The reduction's tree has a node per step and knows no placements: it
        notes the window (``exhaust`` then starts again without reduction) and
        lets the interrupt wait.
        """
        self.saw_windows = True
        if self.reduction:
            return options[0]
        k = self._decisions
        self._decisions += 1
        node = self._node(k, options, last)
        self._picked = (k, node.chosen)
        return node.chosen

    def followed(self, n) -> None:
        """The engine took the replayed steps from ``_k`` to ``n`` (excluded) unasked:
        the book-keeping ``stepped`` does for a replayed step, from the recorded ones.
        (Whether a twin was held back there, the run that first took the step saw.)"""
        trace, started = self.trace, self._started
        for k in range(self._k, n):
            step = trace[k]
            started.add(step.cpu)
            if len(self._pure) > 1:
                self._track_twins(step.cpu, step.fp)
        self._k = n

    def escaped_on_path(self) -> None:
        self._look_again(self._m if self._m is not None else current_machine())

    def stepped(self, cpu, footprint, enabled):
        m = self._m
        if m is None:
            m = self._m = current_machine()
        k = self._k
        opts = enabled
        self._k = k + 1
        # a forced step (no pick) first off the previous run's path: take its book-keeping
        rebased = k and k == self.fresh_from and not self._rebased
        if rebased:
            self._take_over()
        if self.elide_waits and k >= self.fresh_from and self._able_next is not None:
            # (the machine is past the step now: what was able before it was noted after
            # the step before)
            able = self._able_next
            enabled = [c for c in enabled if c in able]
            if not enabled and self.stalled_at is None:
                self.stalled_at = k  # a forced step into a deadlock's waits
        twins = len(self._pure) > 1  # CPUs only ever leave the pure set
        if twins and self.stalled_at is None:
            enabled = self._not_held_back(enabled)
            if cpu not in enabled:
                self.symmetry_broken = True  # forced onto a thread held back
        self._started.add(cpu)
        if k < self.fresh_from:  # the previous run's path, its steps already recorded
            if self.trace[k].cpu != cpu:
                raise ModelError(f"dfs: step {k} went to CPU{cpu}, not CPU{self.trace[k].cpu} "
                                 f"as before; the model is not deterministic for a given "
                                 f"schedule")
            if self._watch is None:
                self._look_for_unseen(m)
            if m.escaped:
                self._look_again(m)
            if twins:
                self._track_twins(cpu, self.trace[k].fp)
            return
        if rebased:
            # a forced step (no pick): nothing was copied before it, so it counts as
            # having changed all the unseen state
            changed = self._watch.shared if self._watch else ()
        elif self._watch is None:
            # The run's first step was forced: nothing could go before it or be reordered
            # with it, so what it wrote needs no record; the copies start after it.
            self._look_for_unseen(m)
            changed = ()
        else:
            changed = self._watch.changed() if self._watch else ()
        after = [c.id for c in m.cpus if c.state == RUNNABLE]
        if self.elide_waits:
            after = self._able_next = _able(m, after)
        # The engine makes a fresh footprint per step and drops it after this
        # call, so it is completed in place and kept.
        step = self._record(m, cpu, footprint, enabled)
        step.opts = opts
        if self._watch:
            self._note_unseen(footprint, changed)
        if twins:
            self._track_twins(cpu, footprint)
            after = self._not_held_back(after)
        if after != enabled:
            self._note_enabling(cpu, footprint, enabled, after)
        step.books = self._books()
        self.trace.append(step)
        self._after = after
        if m.escaped:
            self._look_again(m)
        if self.blocked_at is not None or self.stalled_at is not None:
            return  # off the tree: the steps only tell what each CPU did next
        node = self._node_stepped(k, cpu, enabled)
        node.taken[cpu] = step.fp
        if k + 1 < len(self.tree):
            return  # replaying the path: the next state exists, with its sleep set
        self._next_sleep = self._sleep_after(node, cpu, step.fp)
        if after and all(q in self._next_sleep for q in after):
            blocked = _Node(tuple(after), self._next_sleep, cpu, 0)
            blocked.done.add(after[0])  # the run goes on that way, off the tree
            self.tree.append(blocked)
            self.blocked_at = k + 1

    def _books(self):
        """What ``stepped`` and ``_record`` carry from one step to the next."""
        return (self._after, dict(self._held), frozenset(self._unsure), self._rng_state,
                self._able_next)

    def _take_over(self) -> None:
        """At the first state the previous run did not visit: the book-keeping the replayed
        steps would have built is the previous run's after the same steps, and the watch
        of the unseen state starts its comparisons from the state here."""
        self._rebased = True
        after, held, unsure, rng_state, able = self.trace[self.fresh_from - 1].books
        self._after = after
        self._able_next = able
        self._held = dict(held)
        self._unsure = set(unsure)
        self._rng_state = rng_state
        if self._watch:
            self._watch.rebase()

    def _node_stepped(self, k, cpu, enabled):
        if k < len(self.tree):
            node = self.tree[k]
            if node.chosen != cpu:
                raise ModelError(f"dfs: step {k} went to CPU{cpu}, not CPU{node.chosen}; "
                                 f"the model is not deterministic for a given schedule")
            return node
        return self._node(k, enabled, self.trace[-2].cpu if k else -1)  # a forced step

    def _node(self, k, enabled, last):
        """The tree node of state ``k``, made (with its first choice) on the first visit."""
        enabled = tuple(enabled)
        if k < len(self.tree):
            node = self.tree[k]
            if node.enabled != enabled:
                raise ModelError(f"dfs: at state {k} CPUs {list(enabled)} could step, but "
                                 f"{list(node.enabled)} before on the same schedule; the model "
                                 f"is not deterministic (wall time? unseeded randomness?)")
            return node
        prev = self.tree[k - 1] if k else None
        spent = prev.preemptions + prev.cost(prev.chosen) if prev is not None else 0
        node = _Node(enabled, self._next_sleep if self.reduction else {}, last, spent)
        if self.reduction:
            awake = [c for c in enabled if c not in node.sleep]
            node.chosen = awake[0] if awake else enabled[0]
            node.backtrack.add(node.chosen)
        else:
            allowed = self.allowed(node)
            node.chosen = allowed[0]
            node.backtrack.update(allowed)
            self.beyond_bound += len(enabled) - len(allowed)
        node.done.add(node.chosen)
        self.tree.append(node)
        return node

    def allowed(self, node) -> list:
        """CPUs that may step at ``node`` without exceeding the preemption bound."""
        bound = self.preemption_bound
        if bound is None:
            return list(node.enabled)
        return [c for c in node.enabled if node.preemptions + node.cost(c) <= bound]

    # -- footprints ----------------------------------------------------------------------------

    def _record(self, m, cpu, fp, enabled) -> _Step:
        """The step, its footprint completed with what the engine does not record."""
        c = m.cpus[cpu]
        waits = None
        if c.state == BLOCKED and c.wait_lock is not None:
            lock = c.wait_lock
            waits = (lock.uid, c.wait_mode)
            key = ("lock", lock.uid)
            fp[key] = not (len(fp) == 1 and key in fp and _joining_only_reads(lock, c.wait_mode))
        elif self.elide_waits and c.state == RUNNABLE and type(c.op) is Acquire \
                and not m.time_matters and _disabled_while_held(c, c.op):
            waits = (c.op.lock.uid, c.op.mode, True)  # its next step needs the lock
        unsure = self._unsure
        if unsure and cpu in unsure:  # another step made this CPU runnable or not
            unsure.discard(cpu)
            fp.setdefault(("sched", cpu), False)
        rng = m.rng_in_use
        if rng is not None:
            state = rng.bit_generator.state
            if state != (self._rng_state or _fresh_rng_state(m.seed)):
                fp[("rng",)] = True
            self._rng_state = state
        if m.interrupt_sources:
            fp[("time",)] = True
        held = self._held.get(cpu, _NO_LOCKS)
        self._held[cpu] = {h.lock.uid: h.mode for h in c.held} if c.held else _NO_LOCKS
        return _Step(cpu, fp, enabled, held, waits)

    def _look_for_unseen(self, m) -> None:
        """Find the state outside the model API that two CPUs reach (see ``unseen``).

        Every run looks at its first decision (or first step), before any
        choice was made: for a model that is deterministic for a given
        schedule -- which the search checks, here and step by step -- that
        state is the same in every run, but for the objects' identities.  So
        a later run looking at the same step with the same CPUs follows the
        first look's recipe to this run's objects (``unseen.refind``) instead
        of walking everything each thread reaches.
        """
        if m.arrival_windows:
            self.saw_windows = True
        start = _start_signature(m)
        if self._start is None:
            self._start = start
        elif start != self._start:
            raise ModelError("dfs: the threads started otherwise than in the first run "
                             "(other code, arguments or CPUs); the model is not "
                             "deterministic (state kept from run to run? wall time? "
                             "unseeded randomness?)")
        where = (self._k, len(m.cpus), tuple(sorted(self._started)))
        shared = None
        if self._recipe is not None and self._recipe[0] == where:
            shared = unseen.refind(m, self._recipe[1])
        if shared is None:
            shared, books, recipe = unseen.find(m)
            if self._recipe is None and recipe is not None:
                self._recipe = (where, recipe)
        else:
            books = unseen.bookkept(m)
        # On the replayed path nothing is compared before ``_take_over`` copies anew.
        self._watch_unseen(shared, books, copy=self._k >= self.fresh_from)
        if self.symmetry and not m.interrupt_sources and not m.arrival_windows:
            if self._groups is None or self._groups[0] != where:
                self._groups = (where, identical_threads(m, exclude=self._started))
            groups = self._groups[1]
            self.symmetric = [tuple(m.cpus[c].name for c in g) for g in groups]
            for g in groups:
                for n, cpu in enumerate(g):
                    self._lower[cpu] = g[:n]
                    self._count[cpu] = 0
                    self._pure.add(cpu)

    def _look_again(self, m) -> None:
        """After a step that may have handed plain Python state to another CPU (it
        started a thread, or stored a list in a field): find the shared state anew,
        and watch it from here on (what it held before, only one CPU could reach)."""
        m.escaped = False
        shared, books, _ = unseen.find(m)
        self._watch_unseen(shared, books)

    def _watch_unseen(self, shared, books, copy=True) -> None:
        """Watch ``shared`` from here on; every step reads each of them (``_note_unseen``).
        Without ``copy`` the comparisons start at the next ``Watch.rebase``."""
        self._watch = unseen.Watch(shared, books, copy) if shared else False
        self._unseen_keys = tuple(("unseen", s.name) for s in shared)

    def _track_twins(self, cpu, fp) -> None:
        """Symmetry's book-keeping after ``cpu`` stepped with footprint ``fp``."""
        written = self._written
        if cpu in self._pure:
            self._count[cpu] += 1
            if fp is ANYTHING or any(
                    (w or key in written) for key, w in fp.items() if key[0] != "sched"):
                self._pure.discard(cpu)
        if fp is not ANYTHING:
            written.update(key for key, w in fp.items() if w and key[0] != "sched")

    def _not_held_back(self, cpus) -> list:
        """``cpus`` less those whose twin on a lower CPU could take the same step instead.

        Two identical threads are *twins* while both have taken the same number of
        steps, all pure, and neither has finished: they are then in the same
        state, and so is every shared object they could have touched, so the
        state is its own image with their names swapped and what the higher
        one would do next, the lower one does in a schedule that is its
        mirror image.  Should holding back leave no CPU, the threads were not
        alike after all: ``exhaust`` then searches again without the symmetry.
        """
        lower, pure, count = self._lower, self._pure, self._count
        if len(pure) < 2:
            return cpus  # no twins left
        m = self._m if self._m is not None else current_machine()
        out = []
        for c in cpus:
            if c in pure and lower.get(c) and any(
                    t in pure and count[t] == count[c] and m.cpus[t].state != DONE
                    for t in lower[c]):
                continue
            out.append(c)
        if not out and cpus:
            self.symmetry_broken = True
            return list(cpus)
        return out

    def _note_unseen(self, fp, changed) -> None:
        """Every step may read the unseen state; a step that changed some of it wrote it."""
        if fp is ANYTHING:
            return
        for key in self._unseen_keys:
            fp.setdefault(key, False)
        for s in changed:
            fp[("unseen", s.name)] = True
            self.unseen.setdefault(s.name, s.describe())

    def _note_enabling(self, cpu, fp, enabled, after) -> None:
        for other in enabled:
            if other != cpu and other not in after:
                fp[("sched", other)] = True
                self._unsure.add(other)
        for other in after:
            if other != cpu and other not in enabled:
                fp[("sched", other)] = True
                self._unsure.add(other)

    def _sleep_after(self, node, cpu, fp) -> dict:
        """Sleep set of the state after ``cpu`` steps from ``node`` with footprint ``fp``."""
        sleep = {}
        for q, qfp in list(node.sleep.items()) + list(node.taken.items()):
            if q != cpu and q not in sleep and ("sched", q) not in fp \
                    and not dependent(qfp, fp):
                sleep[q] = qfp
        return sleep

    # -- between runs ----------------------------------------------------------------------------

    def needs_plain(self) -> bool:
        """Must the search start again without reduction (the run met a window interrupt)?"""
        if self._m is not None and self._m.arrival_windows:
            self.saw_windows = True  # also one raised during the run (a timer with slack)
        return self.reduction and self.saw_windows

    def finish_run(self, result) -> bool:
        """Analyse the run just made; False when it was redundant (met a sleep-blocked state)."""
        if self._lower and (getattr(result, "sim_events", 0) or
                                  (self._m is not None and self._m.interrupt_sources)):
            self.symmetry_broken = True  # devices and interrupts may name CPUs
        if self.reduction and self._k < self.fresh_from:
            raise ModelError(f"dfs: a run ended after {self._k} steps where the same schedule "
                             f"took more before; the model is not deterministic for a given "
                             f"schedule")
        # time mattered nowhere in the run (it would from then on: ``Machine.time_matters``)
        self._timeless_run = self._m is None or not self._m.time_matters
        if self.reduction and self.stalled_at is not None:
            # a deadlock: the waits made after it are no steps of the tree, and every
            # CPU left waits for what it never got, as for any run that stalls
            steps = self.trace[:self.stalled_at]
            self._add_races(steps, self._pending(steps))
        elif self.reduction:
            steps = list(self.trace)
            if result.steps > len(steps):
                steps.append(self._fatal_step(result))
            self._add_races(steps, self._pending(steps))
        return self.blocked_at is None

    def let_go(self) -> None:
        """The run is analysed: take its machine apart (``Machine.dismantle``), so that
        reference counting frees it at once instead of the cycle collector, later.
        Its result stays whole."""
        m, self._m = self._m, None
        self._watch = None
        self.fair.begin()  # (it holds the machine too)
        if m is not None:
            m.dismantle()

    def _fatal_step(self, result) -> _Step:
        """The step that ended the run with a fatal violation (the engine does not report it)."""
        k = len(self.trace)
        if self._picked is not None and self._picked[0] == k:
            cpu = self._picked[1]
        elif self._after is not None and len(self._after) == 1:
            cpu = self._after[0]
        else:
            cpu = result.violations[-1].cpu
        enabled = tuple(self._after) if self._after is not None else (cpu,)
        step = _Step(cpu, ANYTHING, enabled, self._held.get(cpu, _NO_LOCKS), None)
        if self.blocked_at is None and k == len(self.tree):  # a forced step: no node yet
            node = _Node(enabled, self._next_sleep, self.trace[-1].cpu if k else -1, 0)
            node.chosen = cpu
            node.backtrack.add(cpu)
            node.done.add(cpu)
            self.tree.append(node)
        return step

    def _pending(self, steps) -> dict:
        """CPU -> footprint of the next step of each CPU unfinished when the run ended.

        That step never ran (a stall, or a fatal violation ended the run), so
        nothing is known of it: it counts as dependent with every step.
        """
        m = self._m
        if m is None:
            return {}
        stopper = steps[-1].cpu if len(steps) > len(self.trace) else None
        return {c.id: ANYTHING for c in m.cpus if c.state != DONE and c.id != stopper}

    def _add_races(self, steps, pending) -> None:
        """Steps 2 and 3 of the module docstring, for the steps this run added."""
        ncpu = 1 + max(max((s.cpu for s in steps), default=0), max(pending, default=0))
        if self._m is not None:
            ncpu = max(ncpu, len(self._m.cpus))
        run = self._run
        if run is None or run.ncpu < ncpu:  # (a CPU started during the run: index anew)
            run = self._run = _Run(ncpu)
        run.truncate(self.fresh_from)
        run.extend(steps)
        end = len(steps)
        limit = end if self.blocked_at is None else self.blocked_at
        new_by_cpu = {}  # older steps were analysed by earlier runs
        for i in range(self.fresh_from, end):
            new_by_cpu.setdefault(steps[i].cpu, []).append(i)
        for p in sorted(set(new_by_cpu) | set(pending)):
            for at in new_by_cpu.get(p, ()):
                prev = run.previous(at)
                if prev >= limit:
                    break  # states past a sleep-blocked one are not searched
                self._races_of(run, p, prev, at, min(at, limit), steps[at].fp)
            else:
                prev = run.latest(p)
                if p in pending and prev < limit:
                    self._races_of(run, p, prev, end, min(end, limit), pending[p])

    def _races_of(self, run, p, prev, at, top, fp) -> None:
        """Backtrack points for the races of CPU ``p``'s step ``at`` (footprint ``fp``).

        ``prev`` is ``p``'s step before it, so ``at`` was ``p``'s next step in
        every state from ``prev + 1`` to ``top``.  As in Flanagan and
        Godefroid's algorithm, in each such state the latest dependent step of
        another CPU that does not happen before ``p`` is a race: that is every
        dependent step after ``prev``, and the latest one before ``prev`` that
        does not happen before it.  Earlier dependent steps that ``at`` follows
        directly (no step in between happens after one and before the other)
        are races too, as in source-DPOR.
        """
        steps = run.steps
        vc, nth = run.vc, run.nth  # step i happens before step j: vc[j][cpu of i] >= nth[i]
        waits = steps[prev].waits if prev >= 0 else None
        if waits is not None and len(waits) > 2 and not self._timeless_run:
            # interrupts or devices came later in the run, and with them waits
            # (a CPU spinning for the lock may take an interrupt): no exclusion
            waits = None
        others = [i for i in sorted(run.dependent_before(fp, top)) if steps[i].cpu != p]
        before = []
        for i in others:
            if waits is not None and _excludes(steps[i].held, waits):
                continue  # never enabled together with the waiter's next step
            if i > prev:
                self._backtrack(run, i, p, at)
            elif vc[prev][steps[i].cpu] < nth[i]:  # does not happen before ``prev``
                before.append(i)
        for n, i in enumerate(reversed(before)):
            cpu, nth_i = steps[i].cpu, nth[i]
            if n == 0 or not any(vc[x][cpu] >= nth_i for x in others if x > i):
                self._backtrack(run, i, p, at)

    def _backtrack(self, run, i, p, at) -> None:
        """Make the state before step ``i`` try a CPU that starts the reversed race.

        The reversal runs, from that state, the steps after ``i`` that do not
        depend on it, then ``p``'s step ``at``; the CPUs able to go first in
        it are its *initials*.  One of them already tried there, or asleep
        there (its step was tried from an earlier state and covers whatever
        begins with it), covers the reversal; otherwise one is added.  When
        none can step there, every CPU that can is tried.
        """
        node = self.tree[i]
        able = [q for q in run.initials(i, at, p) if q in node.enabled]
        if i < self.floor:  # a state that another part of a shared search owns
            self.above.add((i, tuple(able), p))
            return
        self.reverse(node, able, p)

    def advance(self) -> bool:
        """Move to the deepest branch still to try; False when the tree is exhausted."""
        tree = self.tree
        while tree:
            node = tree[-1]
            todo = self.todo(node)
            if todo:
                node.chosen = todo[0]
                node.done.add(todo[0])
                return True
            if self.reduction:
                self.pruned += self.skipped(node)
            tree.pop()
        return False

    def describe(self):
        return {"name": self.name, "preemption_bound": self.preemption_bound,
                "reduction": self.reduction, "symmetry": self.symmetry}


    # -- one part of a search shared out over workers (``smpvm.search.pardfs``) ---------------

    @classmethod
    def below(cls, path, floor=None, preemption_bound=None, reduction=True,
              symmetry=False, steps=(), looks=None, elide_waits=None) -> "DFS":
        """A search of the subtree below node ``floor`` of ``path`` (default: its last;
        nodes above it from ``ancestor``), which chooses only at that node and deeper.

        ``steps``, when given, are the steps of the run that made ``path`` (one
        into each of its states after the first; book-keeping from ``floor - 1``
        on): the first run takes them over as any run takes over the path it
        shares with the one before, instead of recording and analysing them
        again.  A run that first took them analysed their races already.

        The reversals it finds for the states above are not applied: they are
        collected in ``above`` as ``(state index, initials, cpu)`` for the
        owner of those states to apply with ``reverse``.  With ``symmetry``,
        the path must come from searches that used it too: which CPUs a state
        holds back is a function of the path to it, the same in every part.
        ``looks``: what another part of the same search saw at its runs' first
        look (``looks()``), which every run of the model sees alike.
        """
        dfs = cls(preemption_bound, reduction, symmetry, elide_waits)
        if looks is not None:
            dfs._start, dfs._recipe, dfs._groups = looks
        dfs.tree = list(path)
        dfs.floor = max(len(path) - 1, 0) if floor is None else floor
        dfs.above = set()
        if reduction and len(steps) == len(path) - 1:
            dfs.trace = list(steps)
        dfs.begin(0)
        return dfs

    def looks(self) -> tuple:
        """What the runs' first look found (``_look_for_unseen``): how the threads
        started, the recipe that finds the unseen state, the identical threads.
        It is the same in every run of a deterministic model, whatever the
        schedule, so another part of the same search may start from it."""
        return (self._start, self._recipe, self._groups)

    def advance_within(self) -> bool:
        """``advance`` that leaves the states above ``floor`` alone, and the node at
        ``floor`` on the path (its owner counts what it pruned)."""
        tree = self.tree
        while len(tree) > self.floor:
            node = tree[-1]
            todo = self.todo(node)
            if todo:
                node.chosen = todo[0]
                node.done.add(todo[0])
                return True
            if len(tree) == self.floor + 1:
                return False
            if self.reduction:
                self.pruned += self.skipped(node)
            tree.pop()
        return False

    @staticmethod
    def skipped(node) -> int:
        """Branches of a finished ``node`` that the reduction skipped."""
        return len(node.enabled) - len(node.done)

    @staticmethod
    def todo(node) -> list:
        """CPUs still to try at ``node``, ascending."""
        return sorted(node.backtrack - node.done - set(node.sleep))

    @staticmethod
    def reverse(node, able, p) -> None:
        """The rule of ``_backtrack`` at ``node``: also what the owner of a state applies
        for a reversal a part found below it."""
        if not able:
            node.backtrack.update(node.enabled)
        elif all(q not in node.backtrack and q not in node.sleep for q in able):
            node.backtrack.add(p if p in able else able[0])

    @staticmethod
    def ancestor(node, choice):
        """What a part below ``node`` needs of it: CPUs able to step, the choice taken,
        and the preemption count (its sleep set and branches stay with its owner)."""
        copy = _Node(node.enabled, {}, node.last, node.preemptions)
        copy.chosen = choice
        return copy

def identical_threads(m, exclude=()) -> list[tuple[int, ...]]:
    """Groups (two or more CPUs, ascending) of threads that are interchangeable at the start.

    A thread qualifies when it has not started (its generator is fresh), is
    runnable, holds nothing, has no handler or interrupt of its own, and no
    model code it could run reads ``m.current`` or ``m.now``
    (``unseen.reads_identity``); two
    are identical when their generators run the same code with equal
    arguments: the same objects, or equal plain values (numbers, strings).
    """
    groups = {}
    for c in m.cpus:
        if c.id in exclude or c.state != RUNNABLE or len(c.frames) != 1 or c.held \
                or c.irqs or c.spl or c.op is not None:
            continue
        gen, frame = _unstarted(c)
        if frame is None:
            continue
        if unseen.reads_identity(gen.gi_code, frame.f_globals):
            continue  # its code may branch on which CPU it is on, or on the time
        args = []
        for name, value in frame.f_locals.items():
            if type(value) in PLAIN_TYPES:
                args.append((name, type(value), value))
            else:
                args.append((name, None, id(value)))
        groups.setdefault((gen.gi_code, tuple(args)), []).append(c.id)
    return [tuple(g) for g in groups.values() if len(g) > 1]


def _start_signature(m) -> tuple:
    """Each CPU's thread as it starts: its code and plain arguments (objects by type).

    Every run of a search starts the same way; a model that keeps state
    from run to run shows here, before any schedule is replayed on it.
    """
    out = []
    for c in m.cpus:
        gen, frame = _unstarted(c)
        if frame is None:
            out.append((c.id, c.name, getattr(gen, "__qualname__", None)))
            continue
        args = tuple((name, value) if type(value) in PLAIN_TYPES else (name, type(value).__qualname__)
                     for name, value in frame.f_locals.items())
        out.append((c.id, c.name, gen.gi_code, args))
    return tuple(out)


def _unstarted(c) -> tuple:
    """(CPU ``c``'s outermost generator, its frame while it has not started; else None)."""
    gen = c.frames[0].gen if c.frames else None
    frame = getattr(gen, "gi_frame", None)
    if frame is None or inspect.getgeneratorstate(gen) != inspect.GEN_CREATED:
        return gen, None
    return gen, frame


def _able(m, cpus) -> list:
    """``cpus`` less those whose next step would only start to wait for a lock.

    Such an attempt changes nothing another CPU can see (``_disabled_while_held``),
    so the CPU counts as unable to step until the lock can be granted to it.
    With interrupts or device processes time matters (a waiter takes
    interrupts while it spins; a contended acquisition is charged otherwise),
    and every CPU that can step is able.
    """
    if m.time_matters:
        return cpus
    mc = m.cpus
    out = None
    for i, cid in enumerate(cpus):
        c = mc[cid]
        op = c.op
        if type(op) is Acquire and _disabled_while_held(c, op) and \
                not op.lock.can_grant(c, op.mode):
            if out is None:
                out = list(cpus[:i])
        elif out is not None:
            out.append(cid)
    return cpus if out is None else out


def _disabled_while_held(c, op) -> bool:
    """Is ``c``'s pending acquisition ``op`` one whose waiting nobody else can tell?

    A blocking attempt (not a trylock), not a retry, of a lock ``c`` does not
    hold (recursion is reported at the attempt), on a lock whose waiters
    leave every other CPU's prospects as they were (``_joining_only_reads``):
    waiting for it only reads it, and a release lets its waiters retry.
    """
    if op.trylock or c.wait_lock is not None:
        return False
    lock = op.lock
    if lock.pseudo or not _joining_only_reads(lock, op.mode):
        return False
    return not c.held or c.holding(lock) is None


def _joining_only_reads(lock, mode) -> bool:
    """Does starting to wait for ``lock`` leave every other CPU's prospects unchanged?

    Then two CPUs that start to wait commute, and the attempt only reads the
    lock.  Not so when waiters are served in arrival order, nor for a writer
    that makes later readers queue behind it.
    """
    if lock.fifo:
        return False
    return mode == "s" or not lock.shared_allowed or lock.reader_preferring


def _excludes(held, waits) -> bool:
    """Can a step begun holding ``held`` never be enabled with the next step of a waiter?

    A CPU waiting for a lock steps again only once the lock can be granted to
    it, which a holder in a conflicting mode rules out.
    """
    uid, mode = waits[0], waits[1]
    have = held.get(uid)
    return have == "x" or (have == "s" and mode == "x")


class _Run:
    """One run's steps, indexed for race finding: who touched what, and happens-before.

    Happens-before is program order plus the order of dependent steps, closed
    transitively; it is kept as a vector clock per step, made as the step is
    added: the join of its CPU's previous step's clock, of the clock of the
    last step that wrote a key it touches, and, when it writes the key, of
    every step that read the key since.  A run shares its first steps with
    the run before it (the path down to the state where it branched off), and
    what those steps are indexed by depends on nothing after them:
    ``truncate`` keeps that part, ``extend`` adds the new steps.
    """

    def __init__(self, ncpu):
        self.ncpu = ncpu
        self.steps = []
        #: Key -> [(step, wrote)] in step order.
        self.touches = {}
        #: Key -> the steps that wrote it, in order.
        self.writes = {}
        #: Steps whose footprint is ANYTHING.
        self.anything = []
        #: Each step's vector clock, and its number among its CPU's steps (from 1).
        self.vc, self.nth = [], []
        #: Each step's CPU's step before it (-1: none), and each CPU's latest step.
        self._before = []
        self._latest = [-1] * ncpu
        #: The keys each step touched, as indexed (what ``truncate`` undoes).
        self._keys = []

    def truncate(self, n) -> None:
        """Keep only the first ``n`` steps (undoing the later ones key by key: a run
        drops a few steps, the index holds many keys)."""
        if n >= len(self.steps):
            return
        latest, before, steps, keys = self._latest, self._before, self.steps, self._keys
        touches, writes = self.touches, self.writes
        for i in range(len(steps) - 1, n - 1, -1):
            latest[steps[i].cpu] = before[i]
            for key in keys[i]:
                entries = touches.get(key)
                if entries is None:
                    continue  # (a key of two steps: undone at the later one)
                while entries and entries[-1][0] >= n:
                    entries.pop()
                if not entries:
                    del touches[key]
                wrote = writes.get(key)
                if wrote is not None:
                    while wrote and wrote[-1] >= n:
                        wrote.pop()
                    if not wrote:
                        del writes[key]
        del steps[n:]
        del self.vc[n:]
        del self.nth[n:]
        del before[n:]
        del keys[n:]
        anything = self.anything
        while anything and anything[-1] >= n:
            anything.pop()

    def extend(self, steps) -> None:
        """Add the steps of ``steps`` past the ones kept (``steps`` starts with those)."""
        touches, writes, vcs, latest = self.touches, self.writes, self.vc, self._latest
        for i in range(len(self.steps), len(steps)):
            step = steps[i]
            cpu, fp = step.cpu, step.fp
            self.steps.append(step)
            prev = latest[cpu]
            vc = list(vcs[prev]) if prev >= 0 else [0] * self.ncpu
            if fp is ANYTHING:
                self.anything.append(i)
                self._keys.append(())
                for j in latest:
                    if j >= 0:
                        _join(vc, vcs[j])
            else:
                for key, w in fp.items():
                    entries = touches.get(key)
                    if entries is None:
                        entries = touches[key] = []
                    wrote = writes.get(key)
                    last_write = wrote[-1] if wrote else -1
                    if w:  # after the last write and every read since
                        for j, _ in reversed(entries):
                            _join(vc, vcs[j])
                            if j == last_write:
                                break
                        if wrote is None:
                            wrote = writes[key] = []
                        wrote.append(i)
                    elif last_write >= 0:
                        _join(vc, vcs[last_write])
                    entries.append((i, w))
                self._keys.append(tuple(fp))
            vc[cpu] += 1
            vcs.append(vc)
            self.nth.append(vc[cpu])
            self._before.append(prev)
            latest[cpu] = i

    def previous(self, i) -> int:
        """The step before step ``i`` of the same CPU (-1: none)."""
        return self._before[i]

    def latest(self, cpu) -> int:
        """The last step of ``cpu`` (-1: none)."""
        return self._latest[cpu]

    def dependent_before(self, fp, top):
        """Steps before ``top`` that are dependent with a step of footprint ``fp``."""
        if fp is ANYTHING:
            return range(top)
        out = {i for i in self.anything if i < top}
        touches, writes = self.touches, self.writes
        for key, w in fp.items():
            if w:
                for i, _ in touches.get(key, ()):
                    if i >= top:
                        break
                    out.add(i)
            else:  # a read depends on the writes only
                for i in writes.get(key, ()):
                    if i >= top:
                        break
                    out.add(i)
        return out

    def initials(self, i, at, p) -> list:
        """CPUs whose first step in "the steps after ``i`` not depending on it, then ``at``" waits
        for none of the others (``at`` may be one past the last step: a pending one, after all)."""
        vc, nth = self.vc, self.nth
        steps = self.steps
        last = len(steps)
        cpu_i, nth_i = steps[i].cpu, nth[i]
        first = {}  # CPU -> number of its earliest step in the sequence so far
        found = []
        for j in list(range(i + 1, min(at, last))) + [at]:
            if j < last:
                clock = vc[j]
                if j != at and clock[cpu_i] >= nth_i:
                    continue  # depends on step i: not in the sequence
                cpu = steps[j].cpu
                if cpu in first:
                    continue
                waits = any(clock[c] >= n for c, n in first.items())
                first[cpu] = nth[j]
            else:  # a pending step depends on everything before it
                cpu, waits = p, bool(first)
                if cpu in first:
                    continue
                first[cpu] = 0
            if not waits:
                found.append(cpu)
        return found


def _join(into, other) -> None:
    for k, v in enumerate(other):
        if v > into[k]:
            into[k] = v


_FRESH_RNG: dict = {}


def _fresh_rng_state(seed):
    """State of a run's ``m.rng`` before any draw (the machine seeds it from the run's seed)."""
    state = _FRESH_RNG.get(seed)
    if state is None:
        state = _FRESH_RNG[seed] = seeds.model_rng(seed).bit_generator.state
    return state
