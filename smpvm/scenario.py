"""Scenarios: the runnable units of a model file, found by path like pytest ids.

A model file declares scenarios with the ``@scenario`` decorator::

    LOCK_ORDER = [["dev_pager_mtx", "vm object"]]      # documented order, as data
    LOCK_BLESSED = []                                    # pairs witness must not report

    @scenario(variants={"buggy": "...", "fixed": "..."}, params={"allocators": 1})
    def doomed_object(m, variant, allocators):
        ...                                              # make locks, objects, threads

and is run as ``smpvm run models/freebsd/device_pager.py::doomed_object``.
The function sets the machine up (locks, zones, ``m.spawn(thread(...))``);
the engine then runs it.  Parameters have defaults whose types say what
``--set name=value`` accepts; ``costs.<field>`` overrides the cost model.

Model files are loaded from their path under a private module name, so a
user's own model anywhere works the same way and nothing named ``models`` is
ever imported from site-packages.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass, field

from . import current
from . import machine as _machine
from .witness import Witness
from .costs import Costs
from .violations import BadInput, ModelError

#: Steps a run may take unless ``--max-steps`` or the scenario says otherwise.
DEFAULT_MAX_STEPS = 1_000_000


@dataclass(frozen=True)
class Scenario:
    """A scenario as declared in its model file."""

    name: str
    func: object
    #: Variant name -> one-line description, in declaration order.
    variants: dict
    default_variant: str
    #: Parameter name -> default value (its type is the parameter's type).
    params: dict
    description: str
    #: Documented lock order: chains of lock class names, enrolled in witness (or a
    #: dict variant -> chains, with "*" for chains true of every variant).
    lock_order: object
    #: Lock class pairs witness must not report in either order (its blessed list).
    blessed: tuple
    #: CPUs when --cpus is not given (None: one per spawned thread).
    cpus: int | None
    #: Steps a run may take (``DEFAULT_MAX_STEPS`` unless the scenario declares its own).
    max_steps: int
    file: str = ""
    #: Parameter name -> help text.
    param_help: dict = field(default_factory=dict)
    #: The scenario declares its ``max_steps`` (a systematic search then keeps it too).
    max_steps_declared: bool = False

    def check_variant(self, variant: str | None) -> str:
        """The variant to run (the default for None); an unknown one is ``BadInput`` naming the known ones."""
        v = self.default_variant if variant is None else variant
        if v not in self.variants:
            raise BadInput(f"scenario {self.name} has no variant {v!r}; "
                           f"choose one of: {', '.join(self.variants)}")
        return v

    def order_for(self, variant: str) -> tuple:
        """The declared lock-order chains that hold for ``variant``."""
        if isinstance(self.lock_order, dict):
            return self.lock_order.get("*", ()) + self.lock_order.get(variant, ())
        return self.lock_order

    def resolve_params(self, overrides: dict | None) -> tuple[dict, dict]:
        """(model parameters, cost overrides) from ``--set`` pairs, type-checked."""
        params = dict(self.params)
        costs = {}
        for key, value in (overrides or {}).items():
            if key.startswith("costs."):
                costs[key[len("costs."):]] = value
                continue
            if key not in params:
                known = ", ".join(sorted(self.params)) or "none"
                raise BadInput(f"scenario {self.name} has no parameter {key!r} (known: {known}; "
                               f"cost model fields are set as costs.<field>)")
            params[key] = _coerce(key, value, self.params[key])
        return params, costs


def scenario(*, variants=None, params=None, description: str | None = None,
             lock_order=None, blessed=None, cpus: int | None = None,
             max_steps: int | None = None,
             default_variant: str | None = None, param_help: dict | None = None):
    """Declare a scenario: ``@scenario(variants={...}, params={...})`` on ``f(m, variant, **params)``.

    ``variants`` maps each variant's name to a one-line description (the
    first is the default); ``params`` gives every parameter its default, which
    ``--set name=value`` overrides (converted to the default's type).
    ``lock_order`` and ``blessed`` default to the module's ``LOCK_ORDER`` and
    ``LOCK_BLESSED``; ``cpus`` and ``max_steps`` are the run's defaults (``max_steps``:
    ``DEFAULT_MAX_STEPS`` when not given; ``dfs`` and ``ipb`` then take their own,
    smaller, bound, see ``smpvm.search.plan.SYSTEMATIC_MAX_STEPS``).  The
    function builds the run on machine ``m``: locks, zones, threads.
    """
    if variants is None:
        variants = {"default": ""}
    if not isinstance(variants, dict):
        variants = {v: "" for v in variants}

    def wrap(func):
        doc = (func.__doc__ or "").strip().splitlines()
        module_vars = sys.modules[func.__module__].__dict__
        order = module_vars.get("LOCK_ORDER", ()) if lock_order is None else lock_order
        bless = module_vars.get("LOCK_BLESSED", ()) if blessed is None else blessed
        # A dict declares orders per variant; "*" holds the ones true of every variant.
        if isinstance(order, dict):
            order = {v: tuple(tuple(c) for c in chains) for v, chains in order.items()}
        else:
            order = tuple(tuple(c) for c in order)
        func.__smpvm_scenario__ = Scenario(
            name=func.__name__, func=func, variants=dict(variants),
            default_variant=default_variant or next(iter(variants)),
            params=dict(params or {}), description=description or (doc[0] if doc else ""),
            lock_order=order,
            blessed=tuple(tuple(p) for p in bless), cpus=cpus,
            max_steps=DEFAULT_MAX_STEPS if max_steps is None else max_steps,
            file=getattr(sys.modules.get(func.__module__), "__file__", "") or "",
            param_help=dict(param_help or {}), max_steps_declared=max_steps is not None)
        return func
    return wrap


def _coerce(key, value, default):
    """Convert a ``--set`` value (a string from the CLI, or already typed) to the default's type."""
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        s = str(value).strip().lower()
        if s in ("1", "true", "yes", "on"):
            return True
        if s in ("0", "false", "no", "off"):
            return False
        raise BadInput(f"parameter {key} takes true or false, got {value!r}")
    if isinstance(default, int):
        try:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(str(value).replace("_", "")) if not isinstance(value, (int, float)) else int(value)
        except ValueError:
            raise BadInput(f"parameter {key} takes a whole number, got {value!r}") from None
    if isinstance(default, float):
        try:
            return float(value)
        except (TypeError, ValueError):
            raise BadInput(f"parameter {key} takes a number, got {value!r}") from None
    return str(value)


def parse_set(pairs) -> dict:
    """``["a=1", "costs.x=2"]`` -> dict; values stay strings (typed later per scenario)."""
    out = {}
    for p in pairs or ():
        if "=" not in p:
            raise BadInput(f"--set takes key=value, got {p!r}")
        k, v = p.split("=", 1)
        k = k.strip()
        if not k:
            raise BadInput(f"--set takes key=value with a non-empty key, got {p!r}")
        if k.startswith("costs."):
            try:
                v = float(v) if "." in v or "e" in v.lower() else int(v.replace("_", ""))
            except ValueError:
                raise BadInput(f"--set {k} takes a number, got {v!r}") from None
        out[k] = v
    return out


# -- loading -------------------------------------------------------------------------------

#: Absolute path -> (sha256 of the source, module): each model file is executed once per
#: process, so a file edited while a search runs does not change the search's model.
_loaded: dict = {}
#: Absolute path -> {sha256: source}: model sources handed to this process by a search's
#: driver (a Dask worker's, see ``use_model_versions``), for files missing here or edited.
_given: dict = {}


def load_module(path: str, fresh: bool = False):
    """Import a model file by path (once per process) under a private name.

    ``fresh``: as the file reads now, if it was edited since it was loaded (a
    search's start does this; its runs then load what the search loaded).
    """
    ab = os.path.abspath(path)
    got = _loaded.get(ab)
    if got is not None and not (fresh and _edited(ab, got[0])):
        return got[1]
    if not os.path.isfile(ab):
        raise BadInput(f"no model file {path!r} (give path/to/model.py::scenario)")
    if not ab.endswith(".py"):
        raise BadInput(f"{path!r} is not a Python model file (path/to/model.py::scenario)")
    try:
        ab.encode("utf-8")
    except UnicodeEncodeError:  # every report, trace and CSV names the model in UTF-8
        raise BadInput(f"the model file's path {ab!r} is not valid UTF-8; rename the "
                       f"file or its directory") from None
    try:
        with open(ab, "rb") as fp:
            source = fp.read()
    except OSError as e:
        raise BadInput(f"cannot read model file {path!r}: {e.strerror}") from None
    return _execute(path, ab, source)


def _edited(ab: str, sha: str) -> bool:
    source = _source_now(ab)
    return source is not None and hashlib.sha256(source).hexdigest() != sha  # (gone: kept)


def _source_now(ab: str) -> bytes | None:
    """The model file's bytes as it reads now; None when it cannot be read."""
    try:
        with open(ab, "rb") as fp:
            return fp.read()
    except OSError:
        return None


def _execute(path: str, ab: str, source: bytes):
    import linecache
    import types
    sha = hashlib.sha256(source).hexdigest()
    name = f"smpvm_model_{hashlib.sha1(os.fsencode(ab)).hexdigest()[:12]}_{sha[:8]}"
    mod = types.ModuleType(name)
    mod.__file__ = ab
    sys.modules[name] = mod
    try:
        exec(compile(source, ab, "exec", dont_inherit=True), mod.__dict__)
    except KeyboardInterrupt:
        del sys.modules[name]
        raise
    except BaseException as e:  # SyntaxError, ImportError, sys.exit() at import ...
        del sys.modules[name]
        what = (f"it called sys.exit({e.code!r})" if isinstance(e, SystemExit)
                else f"{type(e).__name__}: {e}")
        raise ModelError(f"loading {path} failed: {what}") from None
    # tracebacks and inspect show the source that ran, whatever the file holds now
    text = source.decode("utf-8", "replace")
    linecache.cache[ab] = (len(source), None, text.splitlines(True), ab)
    _loaded[ab] = (sha, mod, source)
    return mod


def model_sha256(path: str) -> str:
    """sha256 of the model file as this process runs it (loading it once), which a
    search records: the file may have been edited since."""
    load_module(path)
    return _loaded[os.path.abspath(path)][0]


def model_versions(paths) -> dict:
    """``{absolute path: (sha256, source)}`` of the model files ``paths`` as this process
    runs them (loading each once): what a search's remote workers must run too."""
    out = {}
    for path in paths:
        load_module(path)
        sha, _, source = _loaded[os.path.abspath(path)]
        out[os.path.abspath(path)] = (sha, source)
    return out


def give_model_sources(versions: dict) -> None:
    """Keep ``model_versions``' sources in this process, for ``use_model_versions``."""
    for ab, (sha, source) in versions.items():
        _given.setdefault(ab, {})[sha] = source


def use_model_versions(shas: dict) -> None:
    """Make this process run the given version (``{absolute path: sha256}``) of each
    model file: a long-lived worker may hold another, loaded for an earlier search
    before the file was edited, or have no such file at all."""
    for ab, sha in shas.items():
        got = _loaded.get(ab)
        if got is not None and got[0] == sha:
            continue
        source = _given.get(ab, {}).get(sha)
        if source is None:
            source = _source_now(ab) or b""
            if hashlib.sha256(source).hexdigest() != sha:
                raise BadInput(f"this worker has no copy of the model file {ab} that the "
                               f"search runs (sha256 {sha[:12]}...)")
        _loaded.pop(ab, None)
        _execute(ab, ab, source)


def scenarios_in(path: str, fresh: bool = False) -> list[Scenario]:
    mod = load_module(path, fresh)
    out = []
    for obj in list(vars(mod).values()):
        s = getattr(obj, "__smpvm_scenario__", None)
        if isinstance(s, Scenario) and getattr(obj, "__module__", None) == mod.__name__:
            out.append(s)
    return out


def split_target(target: str) -> tuple[str, str]:
    if "::" not in target:
        raise BadInput(f"target {target!r} must be path/to/model.py::scenario")
    path, name = target.rsplit("::", 1)
    if not path or not name:
        raise BadInput(f"target {target!r} must be path/to/model.py::scenario")
    return path, name


def load_target(target: str, fresh: bool = False) -> Scenario:
    """The scenario named by ``path/to/model.py::scenario`` (``fresh``: see ``load_module``)."""
    path, name = split_target(target)
    found = scenarios_in(path, fresh)
    for s in found:
        if s.name == name:
            return s
    names = ", ".join(s.name for s in found) or "none"
    raise BadInput(f"{path} has no scenario {name!r} (scenarios there: {names})")


def select_targets(specs, keyword: str | None = None, variants=()) -> list[tuple]:
    """``(target, scenario, variant)`` for each selected scenario and variant, in order.

    A spec is ``path.py::name``, ``path.py::glob*`` (fnmatch on the name), or a
    file or directory alone (every scenario in it).  ``keyword`` keeps the
    targets whose ``path::name`` contains it.  ``variants``: the names given
    (``all``: every variant of each scenario; none: each scenario's default).
    A named variant that some selected scenarios lack skips those; one that
    none has is bad input.
    """
    from fnmatch import fnmatchcase
    picked = []
    for spec in specs:
        path, name = spec.rsplit("::", 1) if "::" in spec else (spec, None)
        if name is None and os.path.isdir(path):
            files = find_model_files([path])
        else:
            files = [path]
        for f in files:
            found = scenarios_in(f) if name is None or _is_glob(name) else [load_target(spec)]
            if name is not None and _is_glob(name):
                found = [x for x in found if fnmatchcase(x.name, name)]
                if not found:
                    raise BadInput(f"{path} has no scenario matching {name!r} (scenarios there: "
                                   f"{', '.join(x.name for x in scenarios_in(f)) or 'none'})")
            for x in found:
                target = f"{f}::{x.name}"
                if target not in [t for t, _ in picked]:
                    picked.append((target, x))
    if not picked:
        raise BadInput(f"no scenarios in {', '.join(specs)}")
    if keyword:
        picked = [(t, x) for t, x in picked if keyword in t]
        if not picked:
            raise BadInput(f"no selected scenario matches -k {keyword!r}")
    out = []
    names = list(dict.fromkeys(variants or ()))
    for target, x in picked:
        if not names:
            out.append((target, x, x.default_variant))
        elif "all" in names:
            out.extend((target, x, v) for v in x.variants)
        else:
            for v in names:
                if v in x.variants:
                    out.append((target, x, v))
                elif len(picked) == 1:
                    x.check_variant(v)  # the usual one-line error
    if not out:
        raise BadInput(f"no selected scenario has variant {', '.join(names)}")
    return out


def _is_glob(name: str) -> bool:
    return any(ch in name for ch in "*?[")


def find_model_files(paths) -> list[str]:
    """Model files under the given files/directories, sorted, skipping private ones."""
    out = []
    for p in paths:
        if os.path.isfile(p):
            out.append(p)
        elif os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
                for f in sorted(files):
                    if f.endswith(".py") and not f.startswith("_"):
                        out.append(os.path.join(root, f))
        else:
            raise BadInput(f"no such file or directory: {p}")
    return out


# Running one scenario: from a target and its inputs to a RunResult, the one place
# that turns (scenario, variant, parameters, CPUs, strategy, seed) into a machine.

DEFAULT_COSTS = Costs()


#: The most CPUs a machine may have (Linux's largest NR_CPUS): beyond it a typo,
#: not a machine, and its set-up alone would take gigabytes.
MAX_CPUS = 8192


def check_cpus(cpus, name: str = "--cpus") -> None:
    """Bad input unless ``cpus`` is None or a whole number in 1..MAX_CPUS."""
    if cpus is None:
        return
    if not isinstance(cpus, int) or isinstance(cpus, bool) or not 1 <= cpus <= MAX_CPUS:
        raise BadInput(f"{name} must be a whole number from 1 to {MAX_CPUS}, got {cpus!r}")


def run_scenario(scn: Scenario, *, variant: str | None = None, params: dict | None = None,
                 cpus: int | None = None, seed: int = 0, strategy=None, trace=None,
                 max_steps: int | None = None, stop_at_first: bool = False,
                 witness: bool = True, lockstat: bool = True, source_root: str | None = None,
                 _locate_unyielded: bool = False):
    """Run ``scn`` once and return its ``RunResult``.

    Raises ``BadInput`` for a bad variant, parameter or CPU count and
    ``ModelError`` when the model itself misbehaves (raises, yields junk).
    """
    setup = Setup(scn, variant=variant, params=params, cpus=cpus, max_steps=max_steps,
                  stop_at_first=stop_at_first, witness=witness, lockstat=lockstat,
                  source_root=source_root)
    return setup.run(seed, strategy, trace=trace, _locate_unyielded=_locate_unyielded)


class Setup:
    """A scenario with its inputs checked and resolved once, for runs that differ only in
    seed, strategy and trace (an exploration's batch makes thousands of them).

    Raises ``BadInput`` for a bad variant, parameter or CPU count when made.
    """

    def __init__(self, scn: Scenario, *, variant: str | None = None,
                 params: dict | None = None, cpus: int | None = None,
                 max_steps: int | None = None, stop_at_first: bool = False,
                 witness: bool = True, lockstat: bool = True, source_root: str | None = None):
        self.scn = scn
        self.variant = scn.check_variant(variant)
        #: The parameters as given, and the CPUs asked for (to make a run again).
        self.given = params
        self.cpus = cpus
        params, cpus = one_meaning_of_cpus(scn, params, cpus)
        self.model_params, cost_overrides = scn.resolve_params(params)
        try:
            self.costs = (DEFAULT_COSTS.override(**cost_overrides) if cost_overrides
                          else DEFAULT_COSTS)
        except ValueError as e:
            raise BadInput(str(e)) from None
        check_cpus(cpus)
        self.machine_cpus = cpus if cpus is not None else scn.cpus
        self.max_steps = max_steps
        self.stop_at_first = stop_at_first
        self.witness = witness
        self.lockstat = lockstat
        self.source_root = source_root
        #: The documented order and blessed pairs, in the form witness enrols them fast.
        self.order = Witness.declared_pairs(scn.order_for(self.variant))
        self.blessed = Witness.blessed_set(scn.blessed)

    def run(self, seed: int, strategy=None, *, trace=None, dismantle: bool = False,
            _locate_unyielded: bool = False):
        """Run once with ``seed`` under ``strategy`` (None: timed) and return its ``RunResult``.

        ``dismantle``: the run's objects are freed at once (``Machine.dismantle``),
        for a caller that keeps nothing but the result and whose strategy does
        not look at the machine after the run.
        """
        scn = self.scn
        variant = self.variant
        model_params = self.model_params
        if strategy is None:
            from .strategies.timed import Timed
            strategy = Timed()
        strategy.begin(seed)
        m = _machine.Machine(cpus=self.machine_cpus, seed=seed, strategy=strategy,
                             costs=self.costs, trace=trace,
                             max_steps=self.max_steps or scn.max_steps,
                             stop_at_first=self.stop_at_first, witness=self.witness,
                             lockstat=self.lockstat,
                             footprints=getattr(strategy, "wants_footprints", False),
                             source_root=self.source_root, variant=variant,
                             params=model_params)
        m.witness.enrol(self.order, self.blessed)
        current.ensure_started()
        try:
            with current.running(m):
                scn.func(m, variant, **model_params)
        except KeyboardInterrupt:
            current.raise_if_stuck()
            raise
        except (ModelError, BadInput):
            raise
        except ValueError as e:
            raise BadInput(f"{scn.name}: {e}") from None
        except Exception as e:
            raise ModelError(f"{scn.name} set-up raised {type(e).__name__}: {e}"
                             f"{_machine.model_where(e)}") from None
        except BaseException as e:  # sys.exit() and kin: the model's fault, not smpvm's exit
            raise escaped(e, f"{scn.name} set-up") from None
        if _locate_unyielded:
            with m.find_unyielded():
                return m.run()
        try:
            result = m.run()
        except _machine.UnyieldedOp as e:
            if e.located:
                raise
            # Found cheaply, located slowly: make the same run again noting who made what.
            if not m.timed:
                from .strategies.replay import Replay
                strategy = Replay(e.choices)
            try:
                self.run(seed, strategy, _locate_unyielded=True)
            except _machine.UnyieldedOp as again:
                if again.located:
                    raise again from None
            except ModelError:
                pass
            raise
        except (KeyboardInterrupt, Exception):
            raise
        except BaseException as e:  # the same, from a thread's code
            raise escaped(e, "model") from None
        if dismantle:
            m.dismantle()
        return result


def escaped(e: BaseException, who: str) -> ModelError:
    """A ``BaseException`` a model let out (``sys.exit``, its own subclass) as a model error.

    Left alone it would end smpvm itself, with the model's exit status and no word.
    """
    where = _machine.model_where(e)
    if isinstance(e, SystemExit):
        return ModelError(f"{who} called sys.exit({e.code!r}){where}; a model must not end "
                          f"the process (a thread ends by returning)")
    return ModelError(f"{who} raised {type(e).__name__}: {e}{where}")


def one_meaning_of_cpus(scn: Scenario, params: dict | None, cpus: int | None):
    """``--cpus N`` and ``--set cpus=N`` mean the same: N CPUs, each running a thread.

    A scenario that declares a ``cpus`` parameter sizes its own threads by it
    (and gets one CPU per thread); for any other, ``cpus`` is the machine's
    CPU count.  Returns (params, machine CPUs).
    """
    params = dict(params or {})
    if "cpus" in scn.params:
        if cpus is not None:
            if "cpus" in params and str(params["cpus"]) != str(cpus):
                raise BadInput(f"--cpus {cpus} and --set cpus={params['cpus']} disagree")
            params["cpus"] = cpus
        return params, None
    if "cpus" in params:
        given = params.pop("cpus")
        try:
            n = int(given)
        except (TypeError, ValueError):
            raise BadInput(f"cpus takes a whole number, got {given!r}") from None
        if cpus is not None and cpus != n:
            raise BadInput(f"--cpus {cpus} and --set cpus={given} disagree")
        cpus = n
    return params, cpus


def resolve_target(target: str, near: str | None = None) -> str:
    """Where a target's model file is: as given, else beside the file ``near`` or its parent.

    The one rule for every command and study: a target is relative to the
    current directory; a study file's or a failure's targets may also be
    relative to the directory of the file that names them, or the one above.
    """
    file_part = target.split("::", 1)[0]
    if os.path.exists(file_part) or near is None:
        return target
    here = os.path.dirname(os.path.abspath(near))
    for base in (here, os.path.dirname(here)):
        cand = os.path.join(base, file_part)
        if os.path.exists(cand):
            return os.path.relpath(cand) + target[len(file_part):]
    return target


@dataclass(frozen=True)
class RunSpec:
    """One run, described once: what the run, replay, shrink, exhaust and failure paths share.

    A run is a pure function of this description and its strategy.
    """

    #: ``path/to/model.py::scenario``.
    target: str
    variant: str | None = None
    #: ``--set`` overrides (model parameters and ``costs.<field>``), as given.
    params: dict = field(default_factory=dict)
    #: CPUs asked for (None: the scenario's own).
    cpus: int | None = None
    seed: int = 0
    #: Step bound (None: the scenario's).
    max_steps: int | None = None
    #: Directory model locations are shown relative to (None: the current one).
    source_root: str | None = None

    def scenario(self) -> Scenario:
        """The scenario ``target`` names, loaded from its model file."""
        return load_target(self.target)

    def replace(self, **changes) -> "RunSpec":
        """A copy with ``changes`` applied (``spec.replace(seed=2)``)."""
        import dataclasses
        return dataclasses.replace(self, **changes)


def run_spec(spec: RunSpec, strategy=None, *, scn: Scenario | None = None, trace=None,
             stop_at_first: bool = False, witness: bool = True, lockstat: bool = True):
    """Run ``spec`` once under ``strategy`` (``scn``: its scenario, if already loaded)."""
    return run_scenario(scn or spec.scenario(), variant=spec.variant, params=spec.params,
                        cpus=spec.cpus, seed=spec.seed, strategy=strategy, trace=trace,
                        max_steps=spec.max_steps, stop_at_first=stop_at_first,
                        witness=witness, lockstat=lockstat, source_root=spec.source_root)


def result_to_dict(r) -> dict:
    """A JSON-ready summary of a run."""
    return {
        "variant": r.variant,
        "params": r.params,
        "seed": r.seed,
        "strategy": r.strategy,
        "cpus": r.ncpus,
        "steps": r.steps,
        "time_ns": r.time_ns,
        "decisions": r.decisions,
        "choices": list(r.choices),
        "violations": [v.to_dict() for v in r.violations],
        "lockstat": [s.as_dict() for s in r.lockstat],
        "metrics": r.metrics,
        "interrupts": r.interrupts,
    }
