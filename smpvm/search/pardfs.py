"""Exhaustive search shared out over workers: ``dfs`` with ``--workers`` or ``--dask``.

The tree of schedules is cut into *parts*, each a subtree that one worker
searches as ``exhaust`` would, with the same reduction (this follows Yang,
Chen, Gopalakrishnan and Kirby, "Distributed dynamic partial order reduction
based verification of threaded software", SPIN 2007):

* A part is a path from the root to a state, its *root*: the states above
  it only as far as a run needs to follow them, the root itself whole (the
  CPUs tried there, their steps' footprints, which make later branches'
  sleep sets, and the CPUs still to try).  The worker tries the root's
  remaining CPUs and everything below them, depth first.
* Races found below the root may ask for a CPU to be tried at a state
  *above* it.  The worker does not own those states: it sends the request
  (state, initials, CPU) back, and the driver applies ``_backtrack``'s rule
  at its own copy of the state.  A state whose part is still out keeps its
  requests until that part comes back with the state's final branches, so
  the rule sees what the one-process search would have seen.
* A part that has made ``budget`` runs stops and sends its path back: the
  driver splits it into a part for the shallowest state with CPUs left to
  try and one that goes on below (a continuation of the same search).
* Once enough parts are out to keep every worker busy, a part may be asked
  to search ahead (``Part.chain``): in the same task, the worker makes from
  its cut the parts the driver is likely to make (the continuation, the
  shallowest state's part) and searches them too.  The driver takes such a
  result only for a part it makes itself and finds identical (every node,
  value for value); otherwise it sends its own.  Only round trips are saved,
  so only executors whose round trip passes a scheduler (Dask) search ahead:
  the local pool's is a write to a pipe, and a task searching ahead holds
  back the parts to be made from its first one.  The runs are the same with
  or without.
* A state with CPUs to try and no part out gets a part; the search ends
  when no part is out.  Nothing is lost: every branch the one-process search
  would add is added by the same rule at the same state, and a state's
  branches are only tried by its one owner, in order, each sleeping the
  ones before it (never one it has not run), so no CPU is tried twice.

**Deterministic.**  A part is a pure function of what it is sent, parts are
numbered as they are made, and the driver takes their results strictly in
that order (holding early ones), making the next parts from them.  So the
runs, their order and every count are the same whatever the number of
workers or their speed, one in this process included (``smpvm explore -s dfs
-w 1`` shares the tree out to an inline executor for that reason).  They may
differ from ``exhaust``'s single tree walk: a request applied later than that
search would have, against a state that has meanwhile gained other branches,
can pick another CPU, so a few schedules differ (equivalent ones: each still
covers its class).  Run ``i`` is the ``i``-th run in the order the parts were
made.

**Shared paths.**  A part carries the steps of the path to its root as the
runs that went down it recorded them (``Part.steps``; the driver keeps the
step into each state it stores), so its first run takes that path over as
any later run takes over the path it shares with the run before: no step is
recorded or analysed twice, and the parts together do the work of one
search.

**Symmetry.**  Identical threads are searched up to their names, as
``exhaust`` does: whether a state holds a CPU back depends only on the path
to it, so every part sees the tree the one-process search sees.  A part
whose run shows the threads were not alike after all makes the whole search
start again without the symmetry.

**A worker that dies.**  A part is a pure function of what it is sent, so
when a local worker process dies (killed, out of memory), the driver takes
the results that came back, starts a new pool (``renew``) and sends the
parts still out again: the runs come out as if nothing had happened.  A part
that was out at ``PART_ATTEMPTS`` such deaths (one that kills its worker
itself) ends the search, as does a death where no ``renew`` was given.  A
Dask cluster sends a dead worker's tasks elsewhere on its own.

**Resuming.**  Between two results taken, the driver's state (its stored
states, requests waiting, the parts out, the counts) is all a search is: a
search given ``on_checkpoint`` hands it over now and then (``CHECKPOINT_S``)
and when it is interrupted between two results (Ctrl-C, a lost cluster,
workers that keep dying), and one given that state as ``resume`` sends the
parts out again and goes on from there, to the runs an uninterrupted search
makes.

Limits: ``--max-runs`` counts runs in that order (parts still out are
cancelled); a window interrupt anywhere starts the whole search again as
plain enumeration, as ``exhaust`` does.
"""

from __future__ import annotations

import concurrent.futures as cf
import copy
import io
import pickle
import time
from typing import NamedTuple

from ..scenario import RunSpec, load_target, run_spec
from ..strategies.dfs import DFS
from .exhaust import DfsReport, _count, _replayed, young_collections_only
from .failon import cut_at_bound
from .executors import ClusterLost, wait_first

#: Runs a part makes before it is cut (the first part: a few, to share out early).
PART_RUNS = 32
FIRST_PART_RUNS = 8
#: Parts a worker may search ahead in the task of the part they are made from, once
#: enough parts are out to keep the workers busy (see ``Part.chain``), on executors
#: whose round trip passes a scheduler.
CHAIN = 3
#: Deaths of a worker process a part may be out at before the search gives up on it.
PART_ATTEMPTS = 3
#: The states handed to ``on_checkpoint`` (and one at an interrupt) are at least this
#: many seconds apart, and as far apart as keeps their handling under ``CHECKPOINT_SHARE``
#: of the search's time (a large search's state takes longer to save).
CHECKPOINT_S = 0.5
CHECKPOINT_SHARE = 0.01


class Part(NamedTuple):
    """A subtree for one worker."""

    #: Number, in the order parts were made (results are taken in this order).
    number: int
    #: Choices from the root of the tree to the part's root state (its index: their number).
    key: tuple
    #: Pickled path: ``DFS.ancestor`` copies above the root, then the root's node, then
    #: (a continuation) the nodes of the branch it goes on below.
    path: bytes
    #: Runs to make before stopping to share out the rest.
    budget: int
    #: The first part: nothing run yet (no branch to move to first).
    fresh: bool = False
    #: Parts to search ahead in the same task when the part is cut (``ahead``): those the
    #: driver will make from the cut.  It takes such a result only for the very part it
    #: makes, so the runs are the same; what is saved is a round trip per part (on Dask,
    #: the scheduler's).
    chain: int = 0
    #: Pickled steps of the path, one into each of its states after the first, as the
    #: runs that went down it recorded them (``DFS.below``); empty: the first run records
    #: and analyses the path itself.
    steps: bytes = b""


class PartResult(NamedTuple):
    """What a worker sends back for a part."""

    #: Each run, in order: (RunResult, redundant) (passing runs without witness tables).
    runs: list
    #: (state index, initials, cpu): reversals for states above the part's root.
    above: list
    #: The nodes from the part's root down, when it stopped at its budget; else only the root.
    nodes: list
    #: True when it stopped at its budget (there may be CPUs still to try below its root).
    cut: bool
    pruned: int
    beyond_bound: int
    unseen: dict
    windows: bool
    #: A run met a window interrupt: the search must start again without reduction.
    needs_plain: bool = False
    #: A run showed the threads taken as identical were not: start again without symmetry.
    symmetry_broken: bool = False
    #: Groups of identical threads searched up to their names (names, in CPU order).
    symmetric: tuple = ()
    #: (part, result) of each part searched ahead in the same task from this one's cut.
    then: tuple = ()
    #: When cut: the last run's steps into the states of ``nodes`` after the first.
    steps: tuple = ()
    #: The last run ran into the step bound: the whole search stops there (``cut_at_bound``).
    at_bound: bool = False


def search_part(spec: RunSpec, part: Part, preemption_bound, reduction, counts=None,
                stop_on_first=False, scn=None, symmetry=False,
                full_failures=True) -> PartResult:
    """Search ``part`` in this process (the unit of work sent to an executor), and up to
    ``part.chain`` of the parts the driver will make from its cut (``ahead``), each in
    ``then`` of the result it was made from (``full_failures``: see ``exhaust_parallel``)."""
    scn = scn or load_target(spec.target)  # imported once per process
    order = [(part, _search(spec, part, preemption_bound, reduction, counts, stop_on_first,
                            scn, symmetry, full_failures))]
    made_from = [None]
    i = 0
    while i < len(order) and len(order) <= part.chain:
        for nxt in ahead(*order[i]):
            if len(order) > part.chain:
                break
            order.append((nxt, _search(spec, nxt, preemption_bound, reduction, counts,
                                       stop_on_first, scn, symmetry, full_failures)))
            made_from.append(i)
        i += 1
    children: list[list] = [[] for _ in order]
    for j in range(len(order) - 1, 0, -1):  # the results below a result go in its ``then``
        p, res = order[j]
        children[made_from[j]].insert(0, (p, res._replace(then=tuple(children[j]))))
    return order[0][1]._replace(then=tuple(children[0]))


def ahead(part: Part, res: PartResult) -> list[Part]:
    """Parts the driver is likely to make when it takes ``res``, the cut of ``part``
    (see ``_Driver._cut``): the continuation below the shallowest state with CPUs to
    try, then that state's own part.  Numbered -1; the driver takes one's result only
    if it would make the very same part (``_Driver._send``)."""
    if not res.cut or part.fresh:
        return []
    keys, todo = _states(part.key, res.nodes)
    if not todo:
        return []
    first, last, nodes = todo[0], todo[-1], res.nodes
    above = pickle.loads(part.path)[:len(part.key)]  # ancestor copies: they copy as they are
    path = [DFS.ancestor(node, node.chosen) for node in above + nodes[:first]]
    walked = None  # the steps into each state from the first below the root of the tree
    if part.steps and res.steps:
        walked = pickle.loads(part.steps)[:len(part.key)] + list(res.steps)
    out = []
    if len(todo) >= 2:
        below = path + [DFS.ancestor(nodes[first], nodes[first].chosen)]
        out.append(_part(keys[first + 1], below + nodes[first + 1:last + 1], part.budget,
                         walked))
    out.append(_part(keys[first], path + [nodes[first]], part.budget, walked))
    return out


def _part(key, path, budget, walked) -> Part:
    return Part(-1, key, pickle.dumps(path, pickle.HIGHEST_PROTOCOL), budget,
                steps=_carried(walked, path, len(key)))


def _carried(walked, path, root) -> bytes:
    """``Part.steps`` for ``path`` (its root at index ``root``), from ``walked``, the steps
    into the states from the first below the tree's root on (None: not known); only
    those from ``root - 1`` on keep their book-keeping, as no run branches off above."""
    if walked is None or len(walked) < len(path) - 1 or not path:
        return b""
    steps = [s.bare() if i < root - 1 else s for i, s in enumerate(walked[:len(path) - 1])]
    return pickle.dumps(steps, pickle.HIGHEST_PROTOCOL)


def _same_path(path: list, data: bytes) -> bool:
    """Is ``path`` what ``data`` holds?  Compared pickled without the memo, so that only
    values count, not which of them happen to be one object."""
    try:
        return _flat(path) == _flat(pickle.loads(data))
    except (ValueError, RecursionError):  # a cycle: not known to be the same
        return False


def _flat(obj) -> bytes:
    out = io.BytesIO()
    pickler = pickle.Pickler(out, pickle.HIGHEST_PROTOCOL)
    pickler.fast = True  # no memo: a cycle raises ValueError rather than pickle
    pickler.dump(obj)
    return out.getvalue()


def _states(key, nodes) -> tuple[list, list]:
    """(the keys of a cut part's states, from its root down; the indices of those with
    CPUs still to try)."""
    keys = [key]
    for node in nodes[:-1]:
        keys.append(keys[-1] + (node.chosen,))
    return keys, [j for j, node in enumerate(nodes) if DFS.todo(node)]


#: Per search in this process (its spec and options): the scenario, and what its
#: parts' runs (or the driver's ``warm_up`` run, before forking) saw at their first
#: look (``DFS.looks``), so that a later part follows the same recipe instead of
#: walking every thread's state again.
_LOOKS: dict = {}


def _search_key(spec, reduction, symmetry) -> tuple:
    return (repr(spec), reduction, symmetry)


def _keep_looks(search, scn, dfs) -> None:
    looks = dfs.looks()
    if looks[0] is not None:  # a run was made: it looked
        if len(_LOOKS) >= 8 and search not in _LOOKS:
            _LOOKS.clear()
        _LOOKS[search] = (scn, looks)


def _search(spec, part, preemption_bound, reduction, counts, stop_on_first, scn,
            symmetry, full_failures=True) -> PartResult:
    steps = pickle.loads(part.steps) if part.steps else ()
    search = _search_key(spec, reduction, symmetry)
    seen = _LOOKS.get(search)
    dfs = DFS.below(pickle.loads(part.path), len(part.key), preemption_bound, reduction,
                    symmetry, steps, looks=seen[1] if seen and seen[0] is scn else None)
    runs, cut = [], False
    replayed: set = set()  # violation kinds of the failing runs made again in full
    if part.fresh or dfs.advance_within():
        while True:
            with young_collections_only():
                result = run_spec(spec, dfs, scn=scn, lockstat=False)
            if dfs.needs_plain():
                return PartResult([], [], [], False, 0, 0, {}, True, needs_plain=True)
            if cut_at_bound(result):  # (not analysed: the search stops at it)
                dfs.let_go()
                runs.append((_replayed(spec, scn, result) if result.failed else _light(result),
                             False))
                return PartResult(runs, [], [], False, 0, 0, {}, False, at_bound=True)
            with young_collections_only():
                redundant = not dfs.finish_run(result)
            if dfs.symmetry_broken:  # seen during the run or after it
                return PartResult([], [], [], False, 0, 0, {}, False, symmetry_broken=True)
            dfs.let_go()
            if result.failed and (full_failures or not set(result.kinds()) <= replayed):
                result = _replayed(spec, scn, result)
                replayed.update(result.kinds())
            elif result.failed:
                result = _light(result)  # its kinds' first failing runs here are full
            runs.append((result if result.failed else _light(result), redundant))
            if stop_on_first and _fails(result, counts):
                break  # the driver stops at the first failure: nothing after it is wanted
            if len(runs) >= part.budget:
                cut = True
                break
            if not dfs.advance_within():
                break
    _keep_looks(search, scn, dfs)
    nodes = dfs.tree[dfs.floor:] if cut else dfs.tree[dfs.floor:dfs.floor + 1]
    walked = ()
    if cut and reduction and len(dfs.trace) >= dfs.floor + len(nodes) - 1:
        walked = tuple(dfs.trace[dfs.floor:dfs.floor + len(nodes) - 1])
    return PartResult(runs, sorted(dfs.above), nodes, cut, dfs.pruned, dfs.beyond_bound,
                      dict(dfs.unseen), dfs.saw_windows, symmetric=tuple(dfs.symmetric),
                      steps=walked)


#: Steps of the warm-up run at most (a long model's run is cut short: what it is for
#: is learnt at its first steps).
WARM_UP_STEPS = 256


def warm_up(spec: RunSpec, scn) -> None:
    """One run of the model here, not counted, before workers are forked from this
    process: what a search learns once per process (the threads' code read for the
    state it reaches, the model's call sites, the recipe of its runs' first look) is
    then learnt once, not in each worker while the others wait for its first part."""
    dfs = DFS(symmetry=True)
    run_spec(spec.replace(max_steps=WARM_UP_STEPS), dfs, scn=scn, lockstat=False)
    dfs.let_go()
    _keep_looks(_search_key(spec, True, True), scn, dfs)


def _fails(result, counts) -> bool:
    return result.failed if counts is None else any(counts(v.kind) for v in result.violations)


_WITNESS_TABLES = ("witness_edges", "witness_usage", "witness_classes")


def _light(result):
    """A passing run without its witness tables, which nothing downstream of a search reads.

    The run's witness goes too: it holds the run's locks and threads, and so
    the whole machine, alive until the part's results are taken.
    """
    witness = result.__dict__.pop("_witness", None)
    for name in _WITNESS_TABLES:
        if name in result.__dict__ or witness is not None:
            setattr(result, name, [] if name != "witness_classes" else {})
    return result


class _Restart(Exception):
    """A part met a window interrupt: start again without reduction."""


class _Asymmetric(Exception):
    """A part found the identical threads were not: start again without symmetry."""


#: In place of a part's future: not sent, the executor broke (sent again on a new one).
_UNSENT = object()


def _first_of_each_kind(failures) -> list:
    """The failing runs that bring a violation kind not seen in the ones before."""
    seen: set = set()
    out = []
    for r in failures:
        if not set(r.kinds()) <= seen:
            seen.update(r.kinds())
            out.append(r)
    return out


class _Driver:
    """Makes parts, takes their results in order, applies requests; see the module docstring."""

    def __init__(self, spec, executor, preemption_bound, reduction, max_runs, stop_on_first,
                 on_run, counts, budget, scn=None, symmetry=False, chain=CHAIN, renew=None,
                 on_checkpoint=None, failures="all"):
        self.spec = spec
        #: Every failing run in full and in the report ("all"), or the first of each kind.
        self.full_failures = failures == "all"
        #: Violation kinds of the failing runs in the report (with ``failures="first"``).
        self.kept_kinds: set = set()
        #: Called with ``checkpoint()`` now and then, and at an interrupt (or None).
        self.on_checkpoint = on_checkpoint
        #: True while a result is taken: the state is whole only between two.
        self.taking = False
        #: Number of the part whose result is taken next.
        self.turn = 0
        #: Makes a new executor when this one broke (a worker process died); None: a
        #: broken executor ends the search.
        self.renew = renew
        #: Part number -> deaths of a worker process while it was out.
        self.attempts: dict[int, int] = {}
        self.chain = chain
        #: Parts out before new ones may search ahead: two per worker keep every worker
        #: busy while a task searching ahead holds back its part's cut.
        self.spread = 2 * max(1, getattr(executor, "width", lambda: 1)())
        self.symmetry = symmetry
        self.scn = scn
        self.ex = executor
        self.bound = preemption_bound
        self.reduction = reduction
        self.max_runs = max_runs
        self.stop_on_first = stop_on_first
        self.on_run = on_run
        self.counts = counts
        self.budget = budget
        self.report = DfsReport(reduction=reduction and preemption_bound is None,
                                preemption_bound=preemption_bound)
        #: Choices to a state -> its node (whole), for every state a part was rooted at
        #: or stopped above.
        self.nodes: dict[tuple, object] = {}
        #: Choices to a state -> the step into it, as a cut part's last run recorded it,
        #: for the states a part may be rooted at or below (``Part.steps``).
        self.walked: dict[tuple, object] = {}
        #: State -> number of the part that owns it now.
        self.owner: dict[tuple, int] = {}
        #: State -> requests waiting for its owner to come back.
        self.waiting: dict[tuple, list] = {}
        #: Part number -> (part, future), for the parts out (future None: searched ahead).
        self.out: dict[int, tuple] = {}
        #: Part number -> its result, for those at hand before their turn (searched ahead;
        #: the others' results wait in their futures: the loop waits for its turn's only).
        self.early: dict[int, PartResult] = {}
        #: While a result is taken: root -> (part, result) searched ahead from it.
        self.ahead: dict[tuple, tuple] = {}
        self.made = 0
        self.unseen: dict[str, str] = {}
        self.stopped = False

    # -- making parts ----------------------------------------------------------------------

    def _send(self, key, nodes_below=(), fresh=False) -> None:
        """A part rooted at state ``key`` (with ``nodes_below`` for a continuation)."""
        path = [DFS.ancestor(self.nodes[key[:i]], key[i]) for i in range(len(key))]
        if not fresh:
            path.append(self.nodes[key])
        path.extend(nodes_below)
        budget = FIRST_PART_RUNS if fresh else self.budget
        steps = b"" if fresh else _carried(self._walked_to(key, nodes_below), path, len(key))
        number = self.made
        self.made += 1
        self.owner[key] = number
        ready = self.ahead.pop(key, None)
        if ready is not None and not fresh and ready[0].budget == budget \
                and _same_path(path, ready[0].path):
            # searched ahead by the worker of the part it was cut from: take its result
            self.out[number] = (ready[0]._replace(number=number), None)
            self.early[number] = ready[1]
            return
        chain = self.chain if not fresh and len(self.out) >= self.spread else 0
        part = Part(number, key, pickle.dumps(path, pickle.HIGHEST_PROTOCOL), budget, fresh, chain,
                    steps)
        try:
            fut = self._submit(part)
        except cf.BrokenExecutor:
            if self.renew is None:
                raise
            fut = _UNSENT  # the loop replaces the executor before it waits again
        self.out[number] = (part, fut)

    def _submit(self, part: Part):
        return self.ex.submit(search_part, self.spec, part, self.bound, self.reduction,
                              self.counts, self.stop_on_first, self.scn, self.symmetry,
                              self.full_failures)

    def _replace_executor(self, error) -> None:
        """A worker process died: keep the results that came back, send the other parts
        out again on a new executor (``renew``)."""
        lost = []
        for number, (part, fut) in self.out.items():
            if fut is None or number in self.early:
                continue  # at hand
            if fut is not _UNSENT and fut.done() and not fut.cancelled():
                e = fut.exception()
                if e is None:
                    self.early[number] = fut.result()
                    continue
                if not isinstance(e, cf.BrokenExecutor):
                    continue  # the part's own error: raised in its turn
            n = self.attempts[number] = self.attempts.get(number, 0) + 1
            if n >= PART_ATTEMPTS:
                raise cf.BrokenExecutor(f"worker processes died {n} times with part {number} "
                                        f"out: does the model end its process?") from error
            lost.append(number)
        self.ex = self.renew()
        for number in lost:
            part = self.out[number][0]
            self.out[number] = (part, self._submit(part))

    def _send_again_cancelled(self) -> None:
        """A Dask client cancels the tasks its scheduler lost: unless the cluster is gone
        (``ClusterLost``, from its health check), send those parts again."""
        check = getattr(self.ex, "check_alive", None)
        if check is not None:
            check()
        for number, (part, fut) in self.out.items():
            if fut is not None and fut is not _UNSENT and fut.cancelled():
                self.out[number] = (part, self._submit(part))

    def _walked_to(self, key, nodes_below):
        """The steps into each state of the path to ``key`` and ``nodes_below`` (but the
        last), or None where one is not known."""
        chain = [key[:i] for i in range(1, len(key) + 1)]
        if nodes_below:
            at = key
            for node in [self.nodes[key], *nodes_below[:-1]]:
                at = at + (node.chosen,)
                chain.append(at)
        steps = [self.walked.get(k) for k in chain]
        return None if None in steps else steps

    def _share(self, keys) -> None:
        """A part for each of ``keys`` with CPUs to try and no owner, shallowest first."""
        for key in sorted(set(keys), key=lambda k: (len(k), k)):
            if key not in self.owner and DFS.todo(self.nodes[key]):
                self._send(key)

    # -- taking results --------------------------------------------------------------------

    def take(self, part: Part, res: PartResult) -> None:
        """Count a part's runs, store its states, apply its requests, make the next parts."""
        if res.needs_plain:
            raise _Restart
        if res.symmetry_broken:
            raise _Asymmetric
        if res.symmetric and not self.report.symmetric:
            self.report.symmetric = [tuple(g) for g in res.symmetric]
        self._count_runs(res.runs)
        if res.at_bound and not self.stopped:
            self.report.cut_at = self.report.runs - 1
            self.stopped = True
        if self.stopped:
            return
        rep = self.report
        rep.pruned += res.pruned
        rep.beyond_bound += res.beyond_bound
        rep.arrival_windows = rep.arrival_windows or res.windows
        self.unseen.update(res.unseen)
        del self.owner[part.key]
        touched = [part.key] if res.nodes else []
        if res.nodes:
            self.nodes[part.key] = res.nodes[0]
        self.ahead = {p.key: (p, r) for p, r in res.then}
        continuation = self._cut(part.key, res.nodes, res.steps) if res.cut else []
        touched += continuation
        for i, able, p in res.above:
            touched.append(self._request(part.key[:i], able, p))
        for key in [part.key] + continuation:
            for able, p in self.waiting.pop(key, ()):
                DFS.reverse(self.nodes[key], able, p)
        self._share(touched)
        self.ahead = {}  # what the driver made otherwise: searched for nothing

    def _count_runs(self, runs) -> None:
        rep = self.report
        for result, redundant in runs:
            if self.max_runs is not None and rep.runs >= self.max_runs:
                self.stopped = True
                return
            rep.sleep_blocked += redundant
            kept = len(rep.failures)
            _count(rep, result, self.on_run, self.counts)
            if not self.full_failures and len(rep.failures) > kept:
                if set(result.kinds()) <= self.kept_kinds:
                    rep.failures.pop()  # (on_run has had it)
                else:
                    self.kept_kinds.update(result.kinds())
            if self.stop_on_first and rep.failing_runs:
                self.stopped = True
                return

    def _cut(self, key, nodes, steps=()) -> list:
        """Store the path of a part stopped at its budget; the keys of its states.

        The shallowest state with CPUs to try is shared like any other; the
        states below it with CPUs to try go on as one part (a continuation),
        rooted just below it; the states deeper than the deepest of them are
        finished and counted now.
        """
        keys, todo = _states(key, nodes)
        last = todo[-1] if todo else -1
        for node in nodes[max(last + 1, 1):]:
            self.report.pruned += self._skipped(node)
        for j in range(1, last + 1):
            self.nodes[keys[j]] = nodes[j]
            if j <= len(steps):
                self.walked[keys[j]] = steps[j - 1]
        if len(todo) >= 2:  # below the first: a continuation from the state under it
            first = todo[0]
            root = keys[first + 1]
            self._send(root, nodes[first + 2:last + 1])
            for k in keys[first + 2:last + 1]:
                del self.nodes[k]  # the continuation owns these, and counts their pruning
            return keys[:first + 2]
        return keys[:last + 1]

    def _request(self, key, able, p):
        """Apply a reversal at state ``key`` now, or when its owner comes back."""
        if key in self.owner:
            self.waiting.setdefault(key, []).append((able, p))
        else:
            DFS.reverse(self.nodes[key], able, p)
        return key

    def _skipped(self, node) -> int:
        return DFS.skipped(node) if self.reduction else 0

    # -- resuming ------------------------------------------------------------------------------

    def checkpoint(self) -> dict:
        """The search between two results taken: what ``restore`` goes on from.

        Of the failing runs so far, the report keeps the first of each violation
        kind (a search may fail in most of its runs, and the state is saved often):
        a resumed search's ``failures`` are those and the ones found after it.
        """
        report = copy.copy(self.report)
        report.failures = _first_of_each_kind(self.report.failures)
        return {"reduction": self.reduction, "symmetry": self.symmetry, "nodes": self.nodes,
                "walked": self.walked, "owner": self.owner, "waiting": self.waiting,
                "parts": {n: part for n, (part, _) in self.out.items()},
                "made": self.made, "turn": self.turn, "unseen": self.unseen, "report": report}

    def restore(self, state: dict) -> None:
        """Go on from ``checkpoint()``'s state: the parts that were out go out again,
        those whose results were at hand too (made again, under this search's options:
        ``stop_on_first`` may differ)."""
        self.nodes, self.walked = state["nodes"], state["walked"]
        self.owner, self.waiting = state["owner"], state["waiting"]
        self.made, self.turn = state["made"], state["turn"]
        self.unseen, self.report = state["unseen"], state["report"]
        if not self.full_failures:
            self.kept_kinds = {k for r in self.report.failures for k in r.kinds()}
        for number in sorted(state["parts"]):
            part = state["parts"][number]
            self.out[number] = (part, self._submit(part))

    def _hand_over(self) -> float:
        """Give ``on_checkpoint`` the state, pickled; the seconds that took."""
        t0 = time.monotonic()
        data = pickle.dumps(self.checkpoint(), pickle.HIGHEST_PROTOCOL)
        took = time.monotonic() - t0
        self.on_checkpoint(data)
        return took

    def _checkpoint_due(self, due: float) -> float:
        """Hand the state over if it is ``due``; when the next one is."""
        now = time.monotonic()
        if now < due:
            return due
        return now + max(CHECKPOINT_S, self._hand_over() / CHECKPOINT_SHARE)

    # -- the loop --------------------------------------------------------------------------

    def run(self, resume: dict | None = None) -> DfsReport:
        if resume is None:
            self._send((), fresh=True)
            self.nodes[()] = None  # filled in by the first part
        else:
            self.restore(resume)
        early = self.early
        turn = self.turn
        due = time.monotonic() + CHECKPOINT_S
        try:
            while self.out and not self.stopped:
                if turn not in early:  # (results after it wait in their futures)
                    fut = self.out[turn][1]
                    if fut is _UNSENT:
                        self._replace_executor(cf.BrokenExecutor("a worker process died"))
                    elif wait_first(self.ex, [fut]):
                        try:
                            early[turn] = fut.result()
                        except cf.BrokenExecutor as e:
                            if self.renew is None:
                                raise
                            self._replace_executor(e)
                        except cf.CancelledError:
                            self._send_again_cancelled()
                    continue
                self.taking = True
                part, _ = self.out.pop(turn)
                self.take(part, early.pop(turn))
                turn = self.turn = turn + 1
                self.taking = False
                if self.on_checkpoint is not None and not self.stopped:
                    due = self._checkpoint_due(due)
        except (KeyboardInterrupt, ClusterLost, cf.BrokenExecutor):
            if self.on_checkpoint is not None and not self.taking and not self.stopped:
                self._hand_over()  # interrupted between two results
            raise
        finally:
            for _, fut in self.out.values():
                if fut is not None and fut is not _UNSENT:
                    fut.cancel()
        rep = self.report
        rep.exhausted = not self.out and not self.stopped
        if rep.exhausted:  # every state is finished: what each one skipped is final
            rep.pruned += sum(self._skipped(n) for n in self.nodes.values() if n is not None)
        rep.unseen_shared = [self.unseen[k] for k in sorted(self.unseen)]
        return rep


def exhaust_parallel(spec: RunSpec, executor, *, preemption_bound=None, max_runs=None,
                     stop_on_first=False, on_run=None, reduction=True, counts=None,
                     on_restart=None, budget=PART_RUNS, scn=None, symmetry=True,
                     chain=None, renew=None, on_checkpoint=None, resume=None,
                     failures="all") -> DfsReport:
    """``exhaust`` with the tree shared out over ``executor``; see the module docstring.

    Takes the same options; ``counts`` must pickle (``FailOn.counts`` does)
    when the executor runs elsewhere, and ``scn`` (the scenario, already
    loaded) is for an in-process executor only.  ``budget``: runs per part;
    ``chain``: parts a task may search ahead (the runs are the same whatever it
    is; default: ``CHAIN`` where ``executor.through_scheduler`` is true, else
    none); ``executor.width()``, when there, says how many workers it has;
    ``renew()``, when given, makes a new executor to go on with when a worker
    process of this one died (``BrokenExecutor``; see the module docstring);
    ``on_checkpoint(state)``, when given, is handed the search's state (bytes)
    now and then, and ``resume`` (such bytes, unpickled: a caller that saved them
    reads them once) makes the search go on from it (see the module docstring).
    ``failures``: ``"all"``, every failing run made again in full (its lock
    statistics and witness tables, as ``exhaust`` gives them) and kept in the
    report's ``failures``; ``"first"``, only the first of each violation kind
    in each part made again, and only the first of each kind kept (the others
    are handed to ``on_run`` as passing runs are): what an exploration, which
    saves the first failure of each kind, needs, where a search that fails in
    most of its runs would spend half its time making them again, and its
    memory keeping them.
    """
    if failures not in ("all", "first"):
        raise ValueError(f"failures must be 'all' or 'first', got {failures!r}")
    if chain is None:
        chain = CHAIN if getattr(executor, "through_scheduler", False) else 0
    reduction = bool(reduction) and preemption_bound is None
    symmetry = bool(symmetry) and reduction
    if resume is not None:  # (it may have started over with less reduction)
        reduction, symmetry = resume["reduction"], resume["symmetry"]
    while True:
        driver = _Driver(spec, executor, preemption_bound, reduction, max_runs, stop_on_first,
                         on_run, counts, budget, scn, symmetry, chain, renew, on_checkpoint,
                         failures)
        try:
            return driver.run(resume)
        except _Asymmetric:
            executor = driver.ex  # (a new one, if a worker died under the search given up)
            resume = None
            if driver.report.runs and on_restart is not None:
                on_restart()
            symmetry = False
        except _Restart:
            executor = driver.ex
            resume = None
            if not reduction:
                raise RuntimeError("dfs: plain enumeration asked to start over") from None
            if driver.report.runs and on_restart is not None:
                on_restart()
            reduction = symmetry = False
