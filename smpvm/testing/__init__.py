"""Model files as tests: the pytest plugin (``pytest --smpvm models/``).

A model file declares what each scenario's variants must show, as data::

    EXPECT = {
        "doomed_object": {
            "buggy": {"finds": "use-after-free", "runs": 2000},   # some run must find it
            "fixed": {"clean": 2000},                             # no run may fail
        },
    }

``clean`` is a number of runs, or ``"dfs"`` for an exhaustive search that
must finish without a failure.  ``strategy`` picks the search (default
``portfolio``; ``dfs`` for ``clean: "dfs"``).  See ``smpvm.testing.plugin``.

``runs(target, params=...)`` is a Hypothesis strategy of runs, for ``@given``
tests that search a model's parameters and schedules together and shrink
both (``smpvm.testing.runs``).
"""

__all__ = ["runs", "Run"]


def __getattr__(name):
    # Hypothesis is a test dependency: import it only when its strategies are asked for.
    if name in __all__:
        from . import search_runs as _runs_module
        return getattr(_runs_module, name)
    raise AttributeError(name)
