"""Shared state the engine cannot see: plain Python objects two CPUs both reach.

Partial-order reduction (``dfs``) is only as good as the footprints it is
given: the engine records what a step does to locks, zone items, wait
channels and the model's random stream, but a list captured by two threads'
closures, an attribute of a plain object both threads were handed, or a
module global one of them rebinds changes without a trace.  Two steps that
race on such an object look independent, the reduction runs only one of
their orders, and "all K schedules explored" would be a proof of nothing.

This module finds that state and watches it:

* ``find(m)`` walks what each CPU's thread can reach -- the locals,
  arguments and closure cells of its generators, the functions and bound
  methods they hold, the module globals their code names, and the contents
  of lists, dicts, sets, deques and plain objects -- and keeps the mutable
  objects that two or more CPUs reach.  An object whose state is kept where
  Python cannot read it field by field (a numpy or ``array`` array, an
  ``itertools`` counter, a ``random.Random``) is *opaque*: it is compared by
  a snapshot of its bytes or its pickle, and one that cannot be pickled
  counts as changed by every step (sound, if dear).  The walk stops at
  model-API objects (locks, zones, the machine, ``SharedList``...), whose
  every access the engine records; it looks inside a zone item or a shared
  collection only for mutable Python values kept there.  Each object found
  is named by the first path that reaches it (``log``, ``world.pending``,
  ``COUNTS (global of models/x.py)``).
* ``Watch`` keeps a copy of everything reachable from those objects and, after
  every step, says which of them the step changed.

``dfs`` turns that into footprints: every step reads every such object, a
step that changed one writes it, so the reduction orders those steps as it
orders field accesses (see ``smpvm.strategies.dfs``).  The names go into
the search's report, so a user learns which state to move into the model
API (``m.shared`` fields, ``SharedList``, ``SharedDict``).

What a zone item's fields, a ``SharedList`` or a ``SharedDict`` hold is
looked into as well, and whatever an item's field (live or freed) or a kernel
object's deferred work (a callout's, task's, work item's, timer's or RCU
callback's handler and arguments) leads to counts as reached by every CPU:
any of them may read the field, or run the work, later.  A step that hands
plain state over during the run -- starts a thread, stores a list in a field
or a shared collection, makes or arms deferred work -- sets
``Machine.escaped``, and ``dfs`` finds the shared state anew after it.

A class of the model's own that its code names is state too: its
attributes (``Box.count += 1``) are copied like an object's; so is what the
model hangs on the machine (``m.log = []``), and a closure cell that code the
walk reaches rebinds (``nonlocal count; count += 1``).

Limits: state reached through ``getattr``/``import`` inside model code
rather than by name is not found.
"""

from __future__ import annotations

import array
import collections
import dis
import functools
import gc
import operator
import pickle
import random
import sys
import types
import weakref

from ..memory import _Tracked, bookkept

#: Values that cannot change (nothing to watch), compared by value.  A builtin method
#: bound to an object (``log.append``) is a way to that object, though (``_bound``).
_ATOMS = (type(None), bool, int, float, complex, str, bytes, range, type(Ellipsis),
          type, types.ModuleType, types.BuiltinFunctionType, types.CodeType,
          types.MethodWrapperType, types.WrapperDescriptorType)
_CONTAINERS = (list, dict, set, bytearray, collections.deque)
#: Keys a recipe can name a dict's or shared collection's entry by (``refind``).
_RECIPE_KEYS = (str, int, bool, type(None), bytes)
_BOUND_TYPES = (types.BuiltinFunctionType, types.MethodWrapperType)


def _bound(value):
    """The object a builtin method is bound to (``log`` for ``log.append``), else None."""
    if type(value) in _BOUND_TYPES:
        owner = getattr(value, "__self__", None)
        if owner is not None and not isinstance(owner, types.ModuleType):
            return owner
    return None


@functools.lru_cache(maxsize=4096)
def _globals_named(code) -> tuple:
    """(names read or written as globals, names stored as globals) by ``code`` and its nested code."""
    read, stored = [], []
    stack = [code]
    while stack:
        co = stack.pop()
        for ins in dis.get_instructions(co):
            if ins.opname in ("LOAD_GLOBAL", "STORE_GLOBAL", "DELETE_GLOBAL", "LOAD_NAME"):
                if ins.argval not in read:
                    read.append(ins.argval)
                if ins.opname != "LOAD_GLOBAL" and ins.argval not in stored:
                    stored.append(ins.argval)
        stack.extend(c for c in co.co_consts if isinstance(c, types.CodeType))
    return tuple(read), tuple(stored)


#: Attributes through which model code learns which CPU runs it, or the time: a thread
#: whose code reads them may behave differently from an identical one on another CPU.
_IDENTITY = frozenset({"current", "now"})
_IDENTITY_OPS = frozenset({"LOAD_ATTR", "LOAD_METHOD", "LOAD_GLOBAL", "LOAD_NAME",
                           "IMPORT_FROM"})


@functools.lru_cache(maxsize=4096)
def _code_reads_identity(code) -> bool:
    """Does ``code`` (or code nested in it) name ``current`` or ``now``?  An attribute
    read, or the bare name as a string (``getattr(m, "now")``, ``attrgetter``)."""
    stack = [code]
    while stack:
        co = stack.pop()
        for ins in dis.get_instructions(co):
            if ins.opname in _IDENTITY_OPS and ins.argval in _IDENTITY:
                return True
        for c in co.co_consts:
            if isinstance(c, types.CodeType):
                stack.append(c)
            elif type(c) is str and c in _IDENTITY:
                return True
    return False


#: Module namespace (kept alive here, so its id is not reused) -> does its code read identity.
_NAMESPACES: dict = {}


def reads_identity(code, ns) -> bool:
    """May code starting at ``code`` (module namespace ``ns``) read ``m.current`` or ``m.now``?

    Over-approximated by reading all model code in reach: ``code``, every
    function and class method of its module, and of the model modules that
    one names (the library's own code is left out: the engine treats CPUs
    alike).  A model that names either anywhere there gets ``True``.
    """
    if _code_reads_identity(code):
        return True
    return _namespace_reads_identity(ns)


def _namespace_reads_identity(ns) -> bool:
    if ns is None:
        return False
    entry = _NAMESPACES.get(id(ns))
    if entry is not None and entry[0] is ns:
        return entry[1]
    seen, todo, found = {id(ns)}, [ns], False
    while todo and not found:
        for value in list(todo.pop().values()):
            for code, other in _model_code(value):
                if code is not None and _code_reads_identity(code):
                    found = True
                    break
                if other is not None and id(other) not in seen:
                    seen.add(id(other))
                    todo.append(other)
            if found:
                break
    _NAMESPACES[id(ns)] = (ns, found)
    return found


def _model_code(value):
    """(code, its module namespace) of the model functions ``value`` is or holds; a
    model module ``value`` gives (None, its namespace), read in its turn."""
    if isinstance(value, types.ModuleType):
        file = getattr(value, "__file__", None)
        if file and not _library_file(file):
            yield None, vars(value)
        return
    if isinstance(value, type):
        if value.__module__ in ("builtins",) or _api_module(value.__module__ or ""):
            return
        for attr in list(vars(value).values()):
            yield from _model_code(attr)
        return
    if isinstance(value, (staticmethod, classmethod)):
        value = value.__func__
    elif isinstance(value, property):
        for f in (value.fget, value.fset, value.fdel):
            if f is not None:
                yield from _model_code(f)
        return
    elif isinstance(value, functools.partial):
        value = value.func
    if isinstance(value, types.FunctionType) and not _library(value.__code__):
        yield value.__code__, value.__globals__



def _is_api(obj) -> bool:
    """Objects of the model API (smpvm's own types): the engine records their accesses."""
    return _api_module(getattr(type(obj), "__module__", "") or "")


def _api_module(mod: str) -> bool:
    # numpy's Generator is m.rng, whose draws dfs records.
    return mod == "smpvm" or mod.startswith(("smpvm.", "numpy.random"))


class _Global:
    """A module global as a node of the walk: its binding can change."""

    __slots__ = ("ns", "name", "module", "stored")

    def __init__(self, ns, name, stored):
        self.ns = ns
        self.name = name
        self.module = ns.get("__file__") or ns.get("__name__", "?")
        #: Some code the walk reached assigns it (``global name``).
        self.stored = stored

    def value(self):
        return self.ns.get(self.name)


class _Attrs:
    """Attributes of an object the walk does not copy whole, as a node: a model's
    class (``Box.count += 1``), or what the model hangs on the machine (``m.log``)."""

    __slots__ = ("target",)

    def __init__(self, target):
        self.target = target


class _ClassAttrs(_Attrs):
    __slots__ = ()

    def items(self) -> list:
        """Its own attributes, less the class machinery (``__dunder__`` names)."""
        return [(k, v) for k, v in vars(self.target).items() if not k.startswith("__")]


#: What the engine itself hangs on a machine (beside its slots).
_ENGINE_EXTRAS = frozenset({"placing", "issue_log"})


class _MachineAttrs(_Attrs):
    __slots__ = ()

    def items(self) -> list:
        """What the model hung on the machine (``m.log = []``)."""
        return [(k, v) for k, v in vars(self.target).items()
                if k not in _ENGINE_EXTRAS and not k.startswith("_")]


def _model_class(obj) -> bool:
    """Is ``obj`` a class of the model's own (not smpvm's, a library's or a builtin)?"""
    if not isinstance(obj, type) or _api_module(obj.__module__ or ""):
        return False
    module = sys.modules.get(obj.__module__)
    if module is None or obj.__module__ == "builtins":
        return False
    file = getattr(module, "__file__", None)
    return not (file and _library_file(file))


class _CellRef:
    """A closure cell as a node of the walk: code that says ``nonlocal`` rebinds it."""

    __slots__ = ("cell", "name")

    def __init__(self, cell, name):
        self.cell = cell
        self.name = name

    def value(self):
        try:
            return self.cell.cell_contents
        except ValueError:  # not bound yet (or deleted)
            return _UNBOUND


_UNBOUND = object()


@functools.lru_cache(maxsize=4096)
def _rebinds(code) -> frozenset:
    """Names of closure cells that ``code`` (or code nested in it) rebinds or deletes."""
    names, stack = set(), [code]
    while stack:
        co = stack.pop()
        for ins in dis.get_instructions(co):
            if ins.opname in ("STORE_DEREF", "DELETE_DEREF"):
                names.add(ins.argval)
        stack.extend(c for c in co.co_consts if isinstance(c, types.CodeType))
    return frozenset(names)


def _gen_cells(gen) -> list:
    """(name, cell) of a suspended generator's cells and free variables, in order.

    Python shows a frame's values, not its cells; the collector's view of the
    generator lists the cells themselves (which two closures share).
    """
    cells = [x for x in gc.get_referents(gen) if type(x) is types.CellType]
    code = gen.gi_code
    names = code.co_cellvars + code.co_freevars
    if len(names) != len(cells):
        names = tuple(f"cell{i}" for i in range(len(cells)))
    return list(zip(names, cells))


def _kind(node) -> str:
    if isinstance(node, _CellRef):
        return "cell"
    if isinstance(node, _Global):
        return "global"
    if isinstance(node, _Attrs):
        return "class" if isinstance(node, _ClassAttrs) else "machine"
    return type(node).__name__


class Shared:
    """One object reachable from two or more CPUs and invisible to the engine."""

    __slots__ = ("name", "kind", "cpus", "node")

    def __init__(self, name, kind, cpus, node):
        #: The first path that reaches it (``log``, ``world.pending``, ``X (global of f.py)``).
        self.name = name
        #: Its type name (``list``, ``dict``, ``global``...).
        self.kind = kind
        #: CPU numbers that reach it, ascending.
        self.cpus = cpus
        #: The object itself (or the ``_Global`` binding).
        self.node = node

    def describe(self) -> str:
        who = ", ".join(f"CPU{c}" for c in self.cpus)
        return f"{self.name} ({self.kind}, reached by {who})"


class _Walker:
    """What one CPU's thread reaches: mutable non-API objects, in a fixed order.

    Beside each object's path for people it keeps a *recipe*: the steps
    (``via``) that lead to it from the CPU's thread, which ``refind`` follows
    in a later run of the same search.  A step through a set, or a dict key
    that is not a plain value, has no stable recipe (``None``).
    """

    def __init__(self, root_path, books, machine=None):
        self.root = root_path
        #: The run's machine: what the model hangs on it is state (``_machine``).
        self.machine = machine
        #: Keys of the cells found whose variable some code reached rebinds (``nonlocal``).
        self.rebound: set = set()
        #: Objects (or attributes) declared book-keeping: id -> None (all) or attribute names.
        self.books = books
        #: id -> (node, path, kind) in discovery order.
        self.found: dict = {}
        #: id -> the recipe of ``found``'s entry (None: none that replays).
        self.via: dict = {}
        self._seen: set = set()

    def thread(self, gen, via) -> None:
        depth = 0
        while isinstance(gen, types.GeneratorType):
            self._generator(gen, "", via + (("yf", depth),))
            gen = gen.gi_yieldfrom
            depth += 1

    def _generator(self, gen, path, via) -> None:
        frame = gen.gi_frame
        if frame is not None:
            for name, value in frame.f_locals.items():
                self.visit(value, _join(path, name), _step(via, ("local", name)))
            rebinds = _rebinds(gen.gi_code)
            for i, (name, cell) in enumerate(_gen_cells(gen)):
                self._cell(cell, name, name in rebinds, _step(via, ("gcell", i)))
            if not _library(gen.gi_code):
                self._code_globals(gen.gi_code, frame.f_globals, _step(via, ("gns",)))

    def _code_globals(self, code, ns, via) -> None:
        if ns is None:
            return
        read, stored = _globals_named(code)
        for name in read:
            if name not in ns:
                continue  # a builtin or an attribute name
            value = ns[name]
            if name in stored:  # rebound by model code: the binding itself is state
                key = ("global", id(ns), name)
                if key not in self.found:
                    g = _Global(ns, name, True)
                    self.found[key] = (g, f"global {name} of {_short(g.module)}", "global")
                    self.via[key] = _step(via, ("binding", name))
            self.visit(value, f"global {name}", _step(via, ("key", name)))

    def visit(self, obj, path, via) -> None:
        shape = _shape(type(obj))
        if shape == _ATOM:
            owner = _bound(obj)
            if owner is not None:
                self.visit(owner, path, _step(via, ("attr", "__self__")))
            elif _model_class(obj):
                self._class(obj, via)
            return
        oid = id(obj)
        if oid in self._seen:
            return
        self._seen.add(oid)
        if oid in self.books and self.books[oid] is None:
            return
        if shape == _TRACKED or shape == _PTR:  # its entries or fields
            tracked = shape == _TRACKED
            for name, value in _item_fields(obj):
                if not tracked:
                    self.visit(value, f"{path}.{name}", _step(via, ("field", name)))
                elif type(name) in _RECIPE_KEYS:
                    self.visit(value, f"{path}[{name!r}]", _step(via, ("entry", name)))
                else:
                    self.visit(value, f"{path}[{name!r}]", None)
            return
        if shape == _REF and _is_api(obj):
            if obj is self.machine:
                self._machine(obj, via)
            return
        if isinstance(obj, (tuple, frozenset)):
            ordered = isinstance(obj, tuple)
            for i, x in enumerate(obj):
                self.visit(x, f"{path}[{i}]", _step(via, ("index", i)) if ordered else None)
            return
        if isinstance(obj, types.FunctionType):
            if not _library(obj.__code__):
                self._function(obj, path, via)
            return
        if isinstance(obj, types.GeneratorType):
            self._generator(obj, path, via)
            return
        if isinstance(obj, types.MethodType):
            self.visit(obj.__self__, path, _step(via, ("attr", "__self__")))
            self.visit(obj.__func__, path, _step(via, ("attr", "__func__")))
            return
        if isinstance(obj, weakref.ref):  # a way to its referent, while it lives
            target = obj()
            if target is not None:
                self.visit(target, path, None)
            return
        if isinstance(obj, functools.partial):
            self.visit(obj.func, path, _step(via, ("attr", "func")))
            self.visit(obj.args, path, _step(via, ("attr", "args")))
            self.visit(obj.keywords, path, _step(via, ("attr", "keywords")))
            return
        if isinstance(obj, _CONTAINERS):
            self.found[oid] = (obj, path, type(obj).__name__)
            self.via[oid] = via
            self._contents(obj, path, via)
            return
        attrs = _attributes(obj, self.books)
        if shape == _OPAQUE:
            self.found[oid] = (obj, path, type(obj).__name__)
            self.via[oid] = via
            for name, value in attrs or ():
                self.visit(value, f"{path}.{name}", _step(via, ("attr", name)))
            return
        if attrs is None:
            return  # something without state we can read (a C object, a cell-less callable)
        self.found[oid] = (obj, path, type(obj).__name__)
        self.via[oid] = via
        for name, value in attrs:
            self.visit(value, f"{path}.{name}", _step(via, ("attr", name)))

    def _cell(self, cell, name, rebound, via) -> None:
        """A cell two closures may share: state when some code reached rebinds it."""
        key = ("cell", id(cell))
        if key not in self.found:
            self.found[key] = (_CellRef(cell, name), name, "cell")
            self.via[key] = via
        if rebound:
            self.rebound.add(key)

    def _machine(self, m, via) -> None:
        """What the model hung on the machine is state like an object's attributes."""
        node = _MachineAttrs(m)
        items = node.items()
        if not items:
            return
        key = ("machine", id(m))
        self.found[key] = (node, "m", "machine")
        self.via[key] = _step(via, ("machine",))
        for attr, value in items:
            self.visit(value, f"m.{attr}", _step(via, ("attr", attr)))

    def _class(self, cls, via) -> None:
        """A model class: its attributes are state (``Box.count += 1``), its methods code."""
        key = ("class", id(cls))
        if key in self.found:
            return
        name = cls.__qualname__
        self.found[key] = (_ClassAttrs(cls), f"class {name}", "class")
        self.via[key] = _step(via, ("class",))
        for attr, value in _ClassAttrs(cls).items():
            if isinstance(value, (staticmethod, classmethod)):
                value = value.__func__
            self.visit(value, f"{name}.{attr}", _step(via, ("attr", attr)))

    def _function(self, fn, path, via) -> None:
        code = fn.__code__
        if fn.__closure__:
            rebinds = _rebinds(code)
            for i, (name, cell) in enumerate(zip(code.co_freevars, fn.__closure__)):
                self._cell(cell, name, name in rebinds, _step(via, ("fcell", i)))
                try:
                    value = cell.cell_contents
                except ValueError:
                    continue  # not bound yet
                self.visit(value, name, _step(via, ("cell", i)))
        if fn.__defaults__:
            self.visit(fn.__defaults__, path, _step(via, ("attr", "__defaults__")))
        if fn.__kwdefaults__:
            self.visit(tuple(fn.__kwdefaults__.values()), path, _step(via, ("kwdefaults",)))
        self._code_globals(code, fn.__globals__, _step(via, ("attr", "__globals__")))

    def _contents(self, obj, path, via) -> None:
        if isinstance(obj, dict):
            for k, v in obj.items():
                plain = type(k) in _RECIPE_KEYS
                self.visit(v, f"{path}[{k!r}]", _step(via, ("key", k)) if plain else None)
        elif isinstance(obj, (list, collections.deque)):
            for i, x in enumerate(obj):
                self.visit(x, f"{path}[{i}]", _step(via, ("index", i)))
        elif isinstance(obj, set):
            for i, x in enumerate(obj):
                self.visit(x, f"{path}[{i}]", None)


def _step(via, step):
    return None if via is None else via + (step,)


_LIBRARY_DIRS = None


def _library(code) -> bool:
    """Code of smpvm itself, the standard library or an installed package (not a model's)."""
    return _library_file(code.co_filename)


def _library_file(filename) -> bool:
    global _LIBRARY_DIRS
    if _LIBRARY_DIRS is None:
        import os
        import sysconfig
        dirs = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
        dirs.add(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        _LIBRARY_DIRS = tuple(os.path.join(d, "") for d in sorted(dirs))
    return filename.startswith(_LIBRARY_DIRS)


def _join(path, name):
    return f"{path}.{name}" if path else name


def _short(module) -> str:
    import os
    return os.path.relpath(module) if os.path.isabs(module) else module


@functools.lru_cache(maxsize=1024)
def _never_mutable(t) -> bool:
    """Is no value of type ``t`` mutable state, nor a way to some (``_mutable`` by type)?"""
    return (issubclass(t, _ATOMS) and t not in _BOUND_TYPES) \
        or _api_module(getattr(t, "__module__", "") or "")


def _mutable(value) -> bool:
    """Is ``value`` mutable state outside the model API, or a way to some?

    A tuple or frozenset is when something in it is; a function of the model
    is (its closure and globals), a bound method when its object is.
    """
    if isinstance(value, _ATOMS) or _is_api(value):
        owner = _bound(value)
        return owner is not None and _mutable(owner)
    if isinstance(value, (tuple, frozenset)):
        return any(_mutable(v) for v in value)
    if isinstance(value, types.FunctionType):
        return not _library(value.__code__)
    if isinstance(value, types.MethodType):
        return _mutable(value.__self__) or _mutable(value.__func__)
    return isinstance(value, _CONTAINERS) or _shape(type(value)) == _OPAQUE \
        or _attributes(value) is not None


def _holds_state(value) -> bool:
    """``_mutable``, asked only of values whose type does not already say no."""
    return not _never_mutable(type(value)) and _mutable(value)


def _attributes(obj, books=None):
    """(name, value) pairs of a plain object's state, or None when it has none to read.

    Attributes declared book-keeping (``books``: id -> names) are left out.
    """
    if isinstance(obj, (types.FunctionType, types.GeneratorType, types.MethodType)):
        return None
    d = getattr(obj, "__dict__", None)
    if isinstance(d, dict):
        pairs = list(d.items())
    else:
        slots = _slots_of(type(obj))
        if not slots:
            return None
        missing = _MISSING
        pairs = [(s, v) for s in slots if (v := getattr(obj, s, missing)) is not missing]
    skip = books.get(id(obj)) if books else None
    if skip:
        pairs = [(k, v) for k, v in pairs if k not in skip]
    return pairs


_MISSING = object()


@functools.lru_cache(maxsize=1024)
def _slots_of(t) -> tuple:
    """Slot names of a class and its bases (none for builtins)."""
    if t.__module__ == "builtins":
        return ()
    slots = []
    for klass in t.__mro__:
        s = klass.__dict__.get("__slots__", ())
        slots.extend([s] if isinstance(s, str) else s)
    return tuple(slots)


def _item_fields(obj):
    """Fields of a zone item, entries of a ``SharedList``/``SharedDict``, that hold mutable
    values (the engine tracks the fields and entries, not what such values hold)."""
    if isinstance(obj, _Tracked):
        data = obj._data
        pairs = data.items() if isinstance(data, dict) else enumerate(data)
        return [(k, v) for k, v in pairs if _holds_state(v)]
    slot = getattr(type(obj), "_slot", None)
    if slot is None:
        return ()
    try:
        fields = object.__getattribute__(obj, "_slot").fields
    except AttributeError:
        return ()
    return [(k, v) for k, v in fields.items() if _holds_state(v)]


def find(m) -> tuple[list[Shared], dict, tuple | None]:
    """The mutable objects outside the model API that two or more of ``m``'s CPUs reach,
    the model's book-keeping declarations (for ``Watch``), and the recipe that finds
    the same objects again in a run that reached the same state (``refind``; None
    when one of them was reached only through a set or an unordered key)."""
    reach = {}   # key -> (node, path, kind)
    by = {}      # key -> [cpu ids]
    vias = {}    # key -> recipe
    rebound = set()  # keys of cells some code reached rebinds
    books = bookkept(m)
    sources = list(getattr(m, "interrupt_sources", ()))
    for c in m.cpus:
        w = _Walker(c.name, books, m)
        for i, frame in enumerate(c.frames):
            w.thread(frame.gen, (("cpu", c.id, i),))
        for i, src in enumerate(sources):
            if src.cpu == c.id:
                w.visit(src.handler, f"irq:{src.name}", (("irq", i),))
        for key, entry in w.found.items():
            if key not in reach:
                reach[key] = entry
                by[key] = []
                vias[key] = w.via[key]
            by[key].append(c.id)
        rebound |= w.rebound
    everyone = [c.id for c in m.cpus]
    stored = _stored(m, books)  # any CPU may come to read the field, or run the work
    for key, entry in stored.found.items():
        if key not in reach:
            reach[key], vias[key] = entry, stored.via[key]
        by[key] = everyone
    rebound |= stored.rebound
    out, recipe = [], []
    for key, (node, path, kind) in reach.items():
        if len(by[key]) < 2 or (kind == "cell" and key not in rebound):
            continue  # one CPU's, or a cell nobody rebinds (its value is walked)
        out.append(Shared(path, kind, tuple(by[key]), node))
        recipe.append((vias[key], path, kind, tuple(by[key])))
    return out, books, (None if any(r[0] is None for r in recipe) else tuple(recipe))


def _stored(m, books) -> "_Walker":
    """A walk of the mutable state that zone items' fields (freed ones too) and kernel
    objects' deferred work (handlers, their arguments) lead to.

    Any CPU may come to read such a field through the model API, or run such
    work, and then hold what it leads to: so that counts as reached by every
    CPU, wherever it came from.
    """
    w = _Walker("stored", books, m)
    for zi, zone in enumerate(getattr(m, "zones", ())):
        for index, name, value in zone.field_values():
            if _holds_state(value):
                w.visit(value, f"{zone.type_name}#{index}.{name}", (("stored", zi, index, name),))
    for ki, kobj in enumerate(getattr(m, "kernel_objects", ())):
        for name in kobj.deferred:
            value = getattr(kobj, name, None)
            if _holds_state(value):
                w.visit(value, f"{kobj.label()}.{name}", (("deferred", ki, name),))
    return w


def refind(m, recipe) -> list[Shared] | None:
    """What ``find`` found, in another run at the same state, by following its recipe.

    None when a step no longer leads anywhere, or to an object of another
    type (the caller then walks again).
    """
    sources = list(getattr(m, "interrupt_sources", ()))
    out = []
    try:
        for via, path, kind, cpus in recipe:
            node = _follow(m, sources, via)
            if kind != _kind(node):
                return None
            out.append(Shared(path, kind, cpus, node))
    except (LookupError, AttributeError, TypeError, ValueError):
        return None
    return out


def _follow(m, sources, via):
    root = via[0]
    if root[0] == "stored":
        obj = m.zones[root[1]].field_value(root[2], root[3])
    elif root[0] == "deferred":
        obj = getattr(m.kernel_objects[root[1]], root[2])
    elif root[0] == "cpu":
        obj = m.cpus[root[1]].frames[root[2]].gen
    else:
        obj = sources[root[1]].handler
    for step in via[1:]:
        op = step[0]
        if op == "yf":
            for _ in range(step[1]):
                obj = obj.gi_yieldfrom
        elif op == "local":
            obj = obj.gi_frame.f_locals[step[1]]
        elif op == "gns":
            obj = obj.gi_frame.f_globals
        elif op == "key" or op == "index":
            obj = obj[step[1]]
        elif op == "field":
            obj = object.__getattribute__(obj, "_slot").fields[step[1]]
        elif op == "entry":
            obj = obj._data[step[1]]
        elif op == "attr":
            d = getattr(obj, "__dict__", None)
            obj = d[step[1]] if isinstance(d, dict) and step[1] in d else getattr(obj, step[1])
        elif op == "cell":
            obj = obj.__closure__[step[1]].cell_contents
        elif op == "kwdefaults":
            obj = tuple(obj.__kwdefaults__.values())
        elif op == "binding":
            obj = _Global(obj, step[1], True)
        elif op == "gcell":
            obj = _CellRef(*reversed(_gen_cells(obj)[step[1]]))
        elif op == "fcell":
            obj = _CellRef(obj.__closure__[step[1]], obj.__code__.co_freevars[step[1]])
        elif op == "class":
            obj = _ClassAttrs(obj)
        elif op == "machine":
            obj = _MachineAttrs(obj)
        else:
            raise ValueError(op)
    return obj


class Watch:
    """Copies of everything reachable from the shared objects; which a step changed.

    ``changed()`` compares against the copies taken last time and takes new
    ones.  A copy is flat: the values of immutable types, and for anything
    else its identity followed by what it holds.  So a list that got a new
    element, a dict whose entry was rebound, an object whose attribute was
    set, or a global bound anew all count as changed, as does anything below
    them.  (Identities are only ever compared for equality, never ordered.)
    """

    def __init__(self, shared: list[Shared], books=None, copy=True):
        self.shared = shared
        self.books = books or {}
        #: Objects watched on their own: a copy of another one stops at them.
        self._own = {id(s.node) for s in shared}
        #: Per shared object, a reader of its slots when it is a plain slotted object
        #: (``_slot_reader``), else None; and the values it read last time when every
        #: one of them was copied as itself (an atom) or by identity (a reference).
        self._readers = [self._reader(s.node) for s in shared]
        self._last = [None] * len(shared)
        self._copies = [self._copy(s) for s in shared] if copy else None

    def _reader(self, node):
        if isinstance(node, (_Global, _CellRef, _Attrs)) or _shape(type(node)) != _OBJ \
                or getattr(node, "__dict__", None) is not None:
            return None
        oid = id(node)
        if oid in self.books and self.books[oid] is None:
            return None
        names, read = _slot_reader(type(node), self.books.get(oid) if self.books else None)
        if not names:
            return None
        return read if len(names) > 1 else lambda obj: (read(obj),)

    def _copy(self, s) -> list:
        out = []
        _flatten(s.node, out, self._own - {id(s.node)}, self.books)
        return out

    def rebase(self) -> None:
        """Take the copies anew: ``changed()`` compares against the state now."""
        self._last = [None] * len(self.shared)
        self._copies = [self._copy(s) for s in self.shared]

    def changed(self) -> list[Shared]:
        out = []
        copies, readers, last = self._copies, self._readers, self._last
        for i, s in enumerate(self.shared):
            if last[i] is not None:
                try:
                    if all(map(operator.is_, readers[i](s.node), last[i])):
                        continue  # the same objects in every slot: the copy is the same
                except AttributeError:  # a slot no longer set
                    pass
            now = self._copy(s)
            if now != copies[i]:
                out.append(s)
                copies[i] = now
            last[i] = _flat_values(readers[i], s.node)
        return out


def _flat_values(read, node):
    """The values in ``node``'s watched slots when each copies as itself or by its
    identity, so that the same objects again make the same copy; else None."""
    if read is None:
        return None
    try:
        values = read(node)
    except AttributeError:  # a slot not set
        return None
    for v in values:
        shape = _SHAPES.get(type(v))
        if shape == _PTR:
            if v.zone.nofree:
                return None  # kept, it would outlive the model's pointer (``Zone._settle``)
        elif shape != _ATOM and shape != _REF:
            return None
    return values


# How a copy treats each type (cached): what to append for it.  A zone item's pointer
# (``_PTR``) is a reference to a copy: the engine tracks its fields, and what they hold
# that is mutable ``find`` watches on its own (``_stored``: any CPU may read a field).
# A ``SharedList``'s or ``SharedDict``'s entries (``_TRACKED``) are looked into.
_ATOM, _REF, _TRACKED, _PTR, _SEQ, _DICT, _SET, _BYTES, _OBJ, _OPAQUE = range(10)
_SHAPES: dict = {}


def _shape(t):
    shape = _SHAPES.get(t)
    if shape is None:
        if issubclass(t, _ATOMS):
            shape = _ATOM
        elif _api_module(t.__module__ or ""):
            shape = _PTR if hasattr(t, "_slot") else _TRACKED if issubclass(t, _Tracked) else _REF
        elif issubclass(t, (list, tuple, collections.deque)):
            shape = _SEQ
        elif issubclass(t, dict):
            shape = _DICT
        elif issubclass(t, (set, frozenset)):
            shape = _SET
        elif issubclass(t, bytearray):
            shape = _BYTES
        elif issubclass(t, (types.FunctionType, types.GeneratorType, types.MethodType,
                            functools.partial, weakref.ref, property,
                            types.MemberDescriptorType, types.GetSetDescriptorType)):
            shape = _REF  # (a class's descriptors: fixed once the class is made)
        elif _opaque(t):
            shape = _OPAQUE
        else:
            shape = _OBJ
        _SHAPES[t] = shape
    return shape


def _flatten(node, out, seen, books) -> None:
    """Append a flat copy of ``node`` and what lies below it to ``out``.

    ``seen`` holds the ids already copied (and those watched on their own);
    ``books`` the book-keeping declared by the model, left out.
    """
    if isinstance(node, (_Global, _CellRef)):
        node = node.value()
        out.append(id(node))
    elif isinstance(node, _Attrs):
        items = node.items()
        out.append(len(items))
        out.extend(k for k, _ in items)
        _values([v for _, v in items], out, seen, books)
        return
    shape = _shape(type(node))
    if shape == _ATOM:
        out.append(node)
        return
    oid = id(node)
    out.append(oid)
    if oid in seen or shape == _REF or shape == _PTR:
        return
    seen.add(oid)
    if oid in books and books[oid] is None:
        return
    if shape == _SEQ:
        out.append(len(node))
        _values(node, out, seen, books)
    elif shape == _DICT:
        out.append(len(node))
        out.extend(k if _shape(type(k)) == _ATOM else id(k) for k in node)
        _values(node.values(), out, seen, books)
    elif shape == _SET:
        out.append(frozenset(node))
    elif shape == _BYTES:
        out.append(bytes(node))
    elif shape == _OPAQUE:
        out.append(_snapshot(node))
    elif shape == _OBJ and getattr(node, "__dict__", None) is None:
        # a slotted object: its watched slots read in one call (the common model object)
        names, read = _slot_reader(type(node), books.get(oid) if books else None)
        try:
            values = read(node) if names else ()
        except AttributeError:  # a slot not set: the general way below says which
            _pairs_of(node, shape, out, seen, books)
            return
        out.append(names)
        _values(values if len(names) > 1 else (values,), out, seen, books)
    else:
        _pairs_of(node, shape, out, seen, books)


def _opaque(t) -> bool:
    """Do objects of type ``t`` keep state that Python cannot read field by field?

    Those with neither an instance dict nor slots of Python classes (numpy
    and ``array`` arrays, ``itertools`` iterators, a bare ``object()``), and
    ``random.Random``, whose generator's state is not in its dict.
    """
    if issubclass(t, random.Random):
        return True
    return not getattr(t, "__dictoffset__", 0) and not _slots_of(t)


def _snapshot(obj):
    """A copy of an opaque object's state: equal copies, equal states.  One that
    cannot be copied never equals another, so the object counts as changed."""
    if isinstance(obj, array.array):
        return obj.typecode, obj.tobytes()
    if type(obj).__module__ == "numpy" and hasattr(obj, "tobytes") and hasattr(obj, "dtype"):
        return obj.shape, obj.dtype.str, obj.tobytes()
    try:
        return pickle.dumps(obj, pickle.HIGHEST_PROTOCOL)
    except Exception:  # anything pickle refuses: no copy to compare
        return object()


def _pairs_of(node, shape, out, seen, books) -> None:
    """``_flatten``'s general way for an item's fields or an object's attributes."""
    pairs = _item_fields(node) if shape == _TRACKED else _attributes(node, books)
    if pairs:
        out.extend(k for k, _ in pairs)
        _values([v for _, v in pairs], out, seen, books)


@functools.lru_cache(maxsize=1024)
def _slot_reader(t, skip):
    """(watched slot names, a function returning their values) for a slotted class,
    less the slots declared book-keeping (``skip``)."""
    import operator
    names = tuple(n for n in _slots_of(t) if not skip or n not in skip)
    return names, (operator.attrgetter(*names) if names else None)


def _values(values, out, seen, books) -> None:
    """``_flatten`` each of ``values``; the common atoms and references without a call."""
    shapes = _SHAPES
    for v in values:
        shape = shapes.get(type(v))
        if shape == _ATOM:
            out.append(v)
        elif shape == _REF or shape == _PTR:
            out.append(id(v))
        else:
            _flatten(v, out, seen, books)
