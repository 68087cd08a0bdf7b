"""Benchmark session helpers: collect the ratios benchmarks report and print them at the end.

A benchmark that compares smpvm with a baseline calls the ``report_ratio``
fixture with one line of its findings; the lines are printed as a section
of the terminal summary, after pytest-benchmark's own tables.
"""

from __future__ import annotations

import pytest

_RATIOS = pytest.StashKey[list]()


@pytest.fixture
def report_ratio(pytestconfig):
    """``report_ratio(name, figure)``: add a line to the session's ratio summary."""
    lines = pytestconfig.stash.setdefault(_RATIOS, [])

    def add(name: str, figure: str) -> None:
        lines.append((name, figure))
    return add


def pytest_terminal_summary(terminalreporter, config):
    lines = config.stash.get(_RATIOS, [])
    if not lines:
        return
    terminalreporter.section("smpvm against its baselines (best round of each, same run)")
    width = max(len(name) for name, _ in lines)
    for name, figure in lines:
        terminalreporter.write_line(f"{name:<{width}}  {figure}")
