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
"""
