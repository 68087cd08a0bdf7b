"""Scheduling strategies, one per module, all on the interface in ``base``."""

import importlib

from .base import Strategy
from .replay import Replay, ReplayMismatch
from .timed import Timed

__all__ = ["Strategy", "Timed", "Replay", "ReplayMismatch", "make_strategy", "STRATEGIES"]

#: Strategies by command-line name -> "module:Class" (imported on first use).
STRATEGIES = {
    "timed": "timed:Timed",
    "random": "random:Random",
    "pct": "pct:PCT",
    "dfs": "dfs:DFS",
    "portfolio": "portfolio:Portfolio",
    "idb": "bounding:Delays",
}


def make_strategy(name: str, **options) -> Strategy:
    """A strategy by name; unknown names raise ValueError listing the known ones."""
    spec = STRATEGIES.get(name)
    if spec is None:
        raise ValueError(f"unknown strategy {name!r}; choose one of: {', '.join(sorted(STRATEGIES))}")
    mod, cls = spec.split(":")
    module = importlib.import_module(f"{__name__}.{mod}")
    return getattr(module, cls)(**options)
