"""Python collections the engine can see: ``SharedList`` and ``SharedDict``.

A model often keeps some book-keeping in plain Python: a log of events, a
table from address to object, a queue of work.  When two CPUs use the same
plain list, the engine does not know it (it records accesses to locks, zone
items, wait channels and the model's random stream), and the exhaustive
search would treat their steps as independent.  The search notices such
state and says so; these two classes are the way to share it *tracked*:
every read of one records a read of the collection in the step's footprint,
every change records a write, exactly as a field of a zone item does.

    log = SharedList(m, "log")        # instead of log = []
    table = SharedDict(m, "table")    # instead of table = {}

Both behave like ``list`` and ``dict`` for the usual operations; the whole
collection is one unit of sharing (two CPUs touching different entries still
conflict, which costs the search a few schedules and never misses one).
For single values, fields of ``m.shared("name", field=...)`` do the same.

State that threads write but whose value never changes what any thread does
-- counters and lists kept for the end-of-run checks, labels -- may instead
be declared ``bookkeeping``: the search then leaves it out, as it leaves
out ``m.metric``.  Declaring state that a thread's decisions do depend on
makes the exhaustive search unsound for that model.
"""

from __future__ import annotations

import weakref

from .current import current_machine
from .violations import ModelError


class _Tracked:
    """The part both share: the footprint key and the two kinds of access."""

    __slots__ = ("m", "name", "_data", "_key")

    def __init__(self, m, name, data):
        self.m = m
        #: Name in footprints and reports.
        self.name = str(name)
        self._data = data
        self._key = ("tracked", self.name)

    def _read(self):
        self.m.footprint_touch(self._key, write=False)
        return self._data

    def _write(self):
        self.m.footprint_touch(self._key, write=True)
        return self._data

    def __len__(self):
        return len(self._read())

    def __iter__(self):
        return iter(list(self._read()))

    def __contains__(self, x):
        return x in self._read()

    def __getitem__(self, k):
        return self._read()[k]

    def __setitem__(self, k, v):
        self._write()[k] = v

    def __delitem__(self, k):
        del self._write()[k]

    def __eq__(self, other):
        if isinstance(other, _Tracked):
            other = other._read()
        return self._read() == other

    __hash__ = None

    def __bool__(self):
        return bool(self._read())

    def copy(self):
        """A plain copy (reads the collection)."""
        return self._read().copy()

    def clear(self):
        """Empty the collection (a write)."""
        self._write().clear()

    def pop(self, *args):
        """Remove and return an entry, as ``list.pop`` / ``dict.pop`` (a write)."""
        return self._write().pop(*args)

    def __repr__(self):
        return f"{type(self).__name__}({self.name!r}, {self._data!r})"


class SharedList(_Tracked):
    """A list shared by CPUs, every access recorded: ``SharedList(m, "log", [1, 2])``."""

    __slots__ = ()

    def __init__(self, m, name, items=()):
        super().__init__(m, name, list(items))

    def append(self, x):
        """Add ``x`` at the end (a write)."""
        self._write().append(x)

    def extend(self, xs):
        """Add every item of ``xs`` at the end (a write)."""
        self._write().extend(xs)

    def insert(self, i, x):
        """Insert ``x`` before index ``i`` (a write)."""
        self._write().insert(i, x)

    def remove(self, x):
        """Remove the first ``x`` (a write)."""
        self._write().remove(x)

    def index(self, x, *args):
        """Index of the first ``x`` (a read)."""
        return self._read().index(x, *args)

    def count(self, x):
        """How many entries equal ``x`` (a read)."""
        return self._read().count(x)

    def sort(self, **kw):
        """Sort in place, as ``list.sort`` (a write)."""
        self._write().sort(**kw)

    def reverse(self):
        """Reverse in place (a write)."""
        self._write().reverse()

    def __iadd__(self, xs):
        self._write().extend(xs)
        return self


class SharedDict(_Tracked):
    """A dict shared by CPUs, every access recorded: ``SharedDict(m, "table")``."""

    __slots__ = ()

    def __init__(self, m, name, items=None):
        super().__init__(m, name, dict(items or {}))

    def get(self, k, default=None):
        """The value for ``k``, or ``default`` (a read)."""
        return self._read().get(k, default)

    def keys(self):
        """A list of the keys (a read)."""
        return list(self._read().keys())

    def values(self):
        """A list of the values (a read)."""
        return list(self._read().values())

    def items(self):
        """A list of the (key, value) pairs (a read)."""
        return list(self._read().items())

    def setdefault(self, k, default=None):
        """The value for ``k``, storing ``default`` first if absent (a read, and a write if stored)."""
        data = self._read()
        if k in data:
            return data[k]
        self._write()[k] = default
        return default

    def update(self, *args, **kw):
        """Merge entries in, as ``dict.update`` (a write)."""
        self._write().update(*args, **kw)


#: Machine -> {id(obj): (obj, attribute names or None for the whole object)}.
_BOOKS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def bookkeeping(obj, *attrs):
    """Declare ``obj`` (or only its attributes ``attrs``) book-keeping; returns ``obj``.

    For scenario set-up: ``self.mappings = bookkeeping([])``, or
    ``bookkeeping(self, "objects_made", "objects_destroyed")``.  It promises that
    no thread's decisions depend on that state (kept only for end-of-run checks),
    so the exhaustive search leaves it out; a false promise makes it unsound.
    """
    m = current_machine()
    if m is None:
        raise ModelError("bookkeeping() declares a scenario's state: call it while the "
                         "scenario sets up its machine")
    books = _BOOKS.setdefault(m, {})
    entry = books.get(id(obj))
    names = None if not attrs else frozenset(attrs) | (entry[1] if entry and entry[1] else frozenset())
    books[id(obj)] = (obj, names)
    return obj


def bookkept(m) -> dict:
    """id -> attribute names (None: the whole object) declared book-keeping in ``m``'s run."""
    return {k: names for k, (_, names) in _BOOKS.get(m, {}).items()}
