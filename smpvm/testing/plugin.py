"""The pytest plugin: each expectation a model file declares (``EXPECT``) is a test.

Opt in with ``pytest --smpvm [paths]`` or the ini option ``smpvm_models``
(glob patterns of model files, e.g. ``models/**/*.py``), so a project's own
test run is not changed by installing smpvm.  Each (scenario, variant) of
``EXPECT`` becomes one test item that runs the declared search:

* ``{"finds": KIND, "runs": N}``: some run of N must report KIND;
* ``{"clean": N}`` / ``{"clean": "dfs"}``: no run of N fails / the exhaustive
  search finishes without a failure.

Either may add ``"fail_on": "deadlock,..."`` or ``"ignore": "lock-order-reversal"``:
only those kinds (all but those) make a run fail, as ``smpvm explore`` does.

A failing test prints the failing interleaving as a narrative and the
command that replays it.  Failures found are kept in ``.smpvm-examples/``
(one saved-failure JSON per scenario and variant, as ``smpvm replay`` reads
them) and replayed first next time, before any search, the way Hypothesis
keeps its examples database; an entry that no longer fails is dropped.
"""

from __future__ import annotations

import os
from fnmatch import fnmatch

import pytest

DB_DIR = ".smpvm-examples"


def pytest_addoption(parser):
    group = parser.getgroup("smpvm")
    group.addoption("--smpvm", action="store_true", default=False,
                    help="Collect smpvm model files (those declaring EXPECT) as tests.")
    parser.addini("smpvm_models", type="args", default=[],
                   help="Glob patterns of smpvm model files to collect as tests.")


def pytest_collect_file(file_path, parent):
    config = parent.config
    if file_path.suffix != ".py":
        return None
    rel = os.path.relpath(str(file_path), str(config.rootpath))
    globs = config.getini("smpvm_models")
    if not (config.getoption("smpvm") or any(fnmatch(rel, g) for g in globs)):
        return None
    if not _declares_expectations(str(file_path)):
        return None
    return ModelFile.from_parent(parent, path=file_path)


def _declares_expectations(path: str) -> bool:
    try:
        with open(path, encoding="utf-8") as fp:
            text = fp.read()
    except (OSError, UnicodeDecodeError):
        return False
    return "\nEXPECT" in text and "scenario" in text


class ModelFile(pytest.File):
    def collect(self):
        from ..scenario import load_module, scenarios_in
        mod = load_module(str(self.path))
        expect = getattr(mod, "EXPECT", None)
        if not isinstance(expect, dict):
            raise ModelExpectationError(f"{self.path}: EXPECT must be a dict "
                                        f"{{scenario: {{variant: expectation}}}}")
        known = {s.name: s for s in scenarios_in(str(self.path))}
        for name, per_variant in expect.items():
            if name not in known:
                raise ModelExpectationError(f"{self.path}: EXPECT names no scenario {name!r}")
            for variant, want in per_variant.items():
                known[name].check_variant(variant)
                yield ExpectationItem.from_parent(self, name=f"{name}[{variant}]",
                                                  scenario=name, variant=variant,
                                                  want=_check(self.path, name, variant, want))


class ModelExpectationError(Exception):
    """An ``EXPECT`` declaration that cannot be read."""


def _check(path, name, variant, want) -> dict:
    if not isinstance(want, dict) or ("finds" in want) == ("clean" in want):
        raise ModelExpectationError(f"{path}: EXPECT[{name!r}][{variant!r}] takes "
                                    f"{{'finds': KIND, 'runs': N}} or {{'clean': N or 'dfs'}}")
    return dict(want)


class ExpectationItem(pytest.Item):
    def __init__(self, *, scenario, variant, want, **kw):
        super().__init__(**kw)
        self.scenario = scenario
        self.variant = variant
        self.want = want

    @property
    def target(self) -> str:
        return f"{os.path.relpath(str(self.path))}::{self.scenario}"

    def _db_path(self) -> str:
        d = os.path.join(str(self.config.rootpath), DB_DIR)
        stem = os.path.splitext(os.path.basename(str(self.path)))[0]
        return os.path.join(d, f"{stem}-{self.scenario}-{self.variant}.json")

    def runtest(self):
        want = self.want
        if "clean" in want:
            self._replay_saved()
            report, out = self._explore(want["clean"])
            if report.failing_runs:
                first = min(report.first.values(), key=lambda f: (f.run, f.kind))
                self._keep(first.path)
                raise ExpectationFailed(self, f"expected no failure in {report.runs} runs of "
                                        f"{self.variant}, found {dict(report.violations)}",
                                        self._db_path())
            if want["clean"] == "dfs" and not report.exhausted:
                raise ExpectationFailed(self, f"dfs did not exhaust the schedules of "
                                        f"{self.variant} in {report.runs} runs", None)
        else:
            kind = want["finds"]
            report, _ = self._explore(want.get("runs", 2000), stop_on_first=False)
            if kind not in report.violations:
                raise ExpectationFailed(self, f"expected {kind} in {report.runs} runs of "
                                        f"{self.variant}, found "
                                        f"{dict(report.violations) or 'no violation'}", None)

    def _explore(self, runs, stop_on_first=False):
        from ..search.explore import Exploration
        strategy = self.want.get("strategy", "dfs" if runs == "dfs" else "portfolio")
        stem = os.path.splitext(os.path.basename(str(self.path)))[0]
        out = os.path.join(str(self.config.rootpath), DB_DIR, "explore",
                           f"{stem}-{self.scenario}-{self.variant}-{strategy}")
        ex = Exploration(self.target, variant=self.variant, strategy=strategy,
                         runs=None if runs == "dfs" else int(runs), seed=self.want.get("seed", 0),
                         workers=1, out=out, stop_on_first=stop_on_first,
                         fail_on=self.want.get("fail_on"), ignore=self.want.get("ignore"))
        return ex.run(), out

    def _keep(self, failure_path: str) -> None:
        import shutil
        os.makedirs(os.path.dirname(self._db_path()), exist_ok=True)
        shutil.copyfile(failure_path, self._db_path())

    def _replay_saved(self) -> None:
        """Run the failure kept from an earlier session first; drop it if it no longer fails."""
        path = self._db_path()
        if not os.path.exists(path):
            return
        from ..search.failures import load_failure
        from ..scenario import load_target, run_scenario
        from ..strategies.replay import Replay
        from ..violations import BadInput, ModelError
        try:
            f = load_failure(path)
            r = run_scenario(load_target(self.target), variant=f.variant, params=f.params,
                             cpus=f.cpus, seed=f.seed, strategy=Replay(f.choices),
                             max_steps=f.max_steps)
        except (BadInput, ModelError):
            r = None
        from ..search.failon import fail_on
        failing = fail_on(self.want.get("fail_on"), self.want.get("ignore")).failing(
            r.violations) if r is not None else []
        if failing:
            raise ExpectationFailed(self, f"the failure kept in {path} still fails: "
                                    f"{failing[0].one_line()}", path)
        os.remove(path)

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, ExpectationFailed):
            return excinfo.value.render()
        if isinstance(excinfo.value, ModelExpectationError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, 0, f"smpvm: {self.target} [{self.variant}]"


class ExpectationFailed(Exception):
    """A declared expectation did not hold; ``render`` gives the narrative and the replay."""

    def __init__(self, item, message, failure_path):
        super().__init__(message)
        self.item = item
        self.message = message
        self.failure_path = failure_path

    def render(self) -> str:
        lines = [f"{self.item.target} [{self.item.variant}]: {self.message}"]
        if self.failure_path and os.path.exists(self.failure_path):
            lines.append(_narrative(self.failure_path))
            lines.append(f"replay: smpvm replay {self.failure_path}")
        return "\n".join(lines)


def _narrative(path: str) -> str:
    from ..report.narrative import narrate
    from ..scenario import load_target, run_scenario
    from ..search.failures import load_failure
    from ..strategies.replay import Replay
    from ..trace import MemorySink
    try:
        f = load_failure(path)
        sink = MemorySink()
        run_scenario(load_target(f.scenario_target()), variant=f.variant, params=f.params,
                     cpus=f.cpus, seed=f.seed, strategy=Replay(f.choices), trace=sink,
                     lockstat=False, max_steps=f.max_steps, source_root=f.source_root)
        return narrate(sink.records, max_rows=200)
    except Exception as e:  # the narrative is a courtesy; the replay line is what counts
        return f"(no narrative: {e})"
