"""Hypothesis fuzzing of every surface a user feeds smpvm: CLI arguments, study
TOML, failure JSON and model files.

Whatever comes in, the contract holds: an exit status in the contract (0, 1,
2 or 3), at most one ``smpvm: error:`` line for bad input, never a traceback
or an "internal error", never a hang (inputs are kept small so each one runs
in milliseconds).  The default run tries ``SMPVM_FUZZ_EXAMPLES`` inputs per
surface (default 40, to stay within the suite's budget); CI sets it to 2000.
"""

from __future__ import annotations

import json
import os
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ROOT, cli
from smpvm.search.explore import explore

EXAMPLES = int(os.environ.get("SMPVM_FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                suppress_health_check=list(HealthCheck))

TINY = os.path.join("tests", "models", "tiny.py")
CONTRACT = {0, 1, 2, 3}


@pytest.fixture(autouse=True)
def _in_project_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def holds_the_contract(code, err):
    assert code in CONTRACT, (code, err)
    assert "Traceback" not in err and "internal error" not in err, err
    if code == 2:
        errors = [ln for ln in err.splitlines() if ln.startswith("smpvm: error:")]
        assert len(errors) == 1, err


def run_cli(capsys, args):
    code, _, err = cli(capsys, *args)
    holds_the_contract(code, err)
    return code


# -- CLI arguments ------------------------------------------------------------------------------

junk = st.text(string.printable, max_size=12)
numbers = st.one_of(st.integers(-3, 40).map(str), st.sampled_from(
    ["10000000", "1e3", "nan", "-0", "0x10", "", "99999999999999999999"]))
targets = st.sampled_from([f"{TINY}::publish", f"{TINY}::check_then_use", f"{TINY}::abba",
                           TINY, f"{TINY}::nope", "nope.py::x", f"{TINY}::*", "::", "x"])
options = st.one_of(
    st.tuples(st.sampled_from(["--runs", "--depth", "--seed", "--cpus", "--preemption-bound",
                               "--workers"]), numbers),
    st.tuples(st.just("--variant"), st.sampled_from(["buggy", "fixed", "all", "nope", ""])),
    st.tuples(st.just("--set"), st.sampled_from(["pad=1", "pad=x", "costs.jitter=0.1",
                                                 "costs.nope=1", "=", "pad"])),
    st.tuples(st.just("--strategy"), st.sampled_from(["random", "pct", "dfs", "nope"])),
    st.tuples(st.sampled_from(["--json", "--stop-on-first", "--resume", "-k"]), junk),
)


@FUZZ
@given(command=st.sampled_from(["run", "explore", "list", "lor", "replay", "report", "sweep",
                                "nope"]),
       target=targets, opts=st.lists(options, max_size=4))
def test_cli_arguments(capsys, tmp_path_factory, command, target, opts):
    args = [command, target] + [x for pair in opts for x in pair]
    if command in ("explore", "lor"):
        # small runs only: a fuzzed --runs may not make an input slow
        args = [a if a not in ("--runs",) else "--runs" for a in args]
        args = _bounded(args)
        if command == "explore":
            args += ["--out", str(tmp_path_factory.mktemp("out")), "--workers", "1"]
    run_cli(capsys, args)


def _bounded(args):
    """Every --runs/--depth value at most 8 (the option and its value kept as given)."""
    out = list(args)
    for i, a in enumerate(out[:-1]):
        if a in ("--runs", "--depth") and out[i + 1].lstrip("-").isdigit():
            out[i + 1] = str(min(int(out[i + 1]), 8))
    if "--runs" not in out:
        out += ["--runs", "4"]
    return out


# -- study TOML -------------------------------------------------------------------------------

scalars = st.one_of(st.integers(-2, 5), st.floats(allow_nan=False, width=32), st.booleans(),
                    st.sampled_from(["mutex", "fixed", "", "x"]))
values = st.one_of(scalars, st.lists(scalars, max_size=3))
keys = st.sampled_from(["cpus", "think_ns", "hold_ns", "variant", "seeds", "seed", "x",
                        "precision", "max_seeds", "label", "target", "kind", "runs", "buggy"])


def toml_value(v):
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, float):
        return repr(v) if v == v and abs(v) != float("inf") else "1.0"
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return str(v)


@st.composite
def studies(draw):
    lines = [f"{k} = {toml_value(draw(values))}" for k in draw(st.lists(keys, max_size=2,
                                                                        unique=True))]
    target = draw(st.sampled_from(["models/synthetic/locks.py::single_lock",
                                   f"{TINY}::publish", "nope.py::x", "3"]))
    tables = draw(st.lists(st.sampled_from(["study", "model", "run", "sweep", "costs", "plot",
                                            "[race]", "[case]", "bogus"]),
                           max_size=5, unique=True))
    for t in tables:
        lines.append(f"[{t}]")
        if t == "model":
            lines.append(f"target = {json.dumps(target)}")
        if t == "[race]":
            lines.append(f"target = {json.dumps(target)}")
        for k in draw(st.lists(keys, max_size=3, unique=True)):
            if not (t in ("model", "[race]") and k == "target"):
                lines.append(f"{k} = {toml_value(draw(values))}")
    text = "\n".join(lines) + "\n"
    if draw(st.booleans()):  # damage it
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(st.sampled_from(["", "[", "=", "\x00", "é", "\"", "]]"]))
    return text


@FUZZ
@given(text=studies())
def test_study_toml(capsys, tmp_path_factory, text):
    d = tmp_path_factory.mktemp("study")
    path = d / "study.toml"
    path.write_text(text, encoding="utf-8")
    # a study that validates runs for real: keep it to a couple of runs per point
    code = run_cli(capsys, ["sweep", str(path), "--workers", "1", "--out", str(d / "o")]
                   if _small(text) else ["list", str(path)])
    assert code in CONTRACT


def _small(text):
    return "seeds" not in text and "runs" not in text and "cpus = [" not in text


# -- failure JSON -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def failure_doc(tmp_path_factory):
    out = tmp_path_factory.mktemp("failure")
    os.chdir(ROOT)
    rep = explore(f"{TINY}::publish", variant="buggy", runs=50, workers=1,
                  stop_on_first=True, out=out)
    (f,) = rep.first.values()
    return json.loads(open(f.path).read())


json_junk = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-5, 10**20),
                                   st.floats(), st.text(max_size=8)),
                         lambda c: st.one_of(st.lists(c, max_size=3),
                                             st.dictionaries(st.text(max_size=6), c,
                                                             max_size=3)), max_leaves=6)


@FUZZ
@given(data=st.data())
def test_failure_json(capsys, tmp_path_factory, failure_doc, data):
    doc = json.loads(json.dumps(failure_doc))
    for key in data.draw(st.lists(st.sampled_from(sorted(doc)), max_size=3)):
        if data.draw(st.booleans()):
            doc.pop(key, None)
        else:
            doc[key] = data.draw(json_junk)
    if data.draw(st.booleans()) and isinstance(doc.get("violation"), dict):
        v = doc["violation"]
        v[data.draw(st.sampled_from(sorted(v) or ["kind"]))] = data.draw(json_junk)
    path = tmp_path_factory.mktemp("f") / "failure.json"
    text = json.dumps(doc)
    if data.draw(st.integers(0, 9)) == 0:
        text = text[:data.draw(st.integers(0, len(text)))]
    path.write_text(text)
    run_cli(capsys, [data.draw(st.sampled_from(["replay", "report"])), str(path)])


# -- model files ------------------------------------------------------------------------------

BODIES = [
    "    yield work(10)",
    "    yield 42",
    "    yield None",
    "    yield work(-1)",
    "    yield work('x')",
    "    return 3",
    "    raise ValueError('bad')",
    "    raise KeyError('k')",
    "    raise SystemExit(3)",
    "    raise GeneratorExit()",
    "    raise Boom('base')",
    "    raise RecursionError()",
    "    yield from iter([1, 2])",
    "    work(5)",
    "    1 / 0",
    "    yield m",
    "    yield work(float('inf'))",
]
SETUPS = ["    m.spawn(t(m), name='a')", "    m.spawn(t(m), name='a')\n    m.spawn(t(m))",
          "    m.spawn(t)", "    m.spawn(42)", "    pass", "    raise Boom('setup')",
          "    m.spawn(t(m), name='a')\n    import sys; sys.exit(0)"]


@st.composite
def model_files(draw):
    body = "\n".join(draw(st.lists(st.sampled_from(BODIES), min_size=1, max_size=3)))
    setup = draw(st.sampled_from(SETUPS))
    src = ("from smpvm import scenario, work\n"
           "class Boom(BaseException):\n    pass\n"
           "def t(m):\n" + body + "\n"
           "@scenario(variants={'a': '', 'b': ''}, params={'n': 1})\n"
           "def s(m, variant, n):\n" + setup + "\n")
    if draw(st.integers(0, 5)) == 0:  # a file that does not even parse
        cut = draw(st.integers(0, len(src)))
        src = src[:cut] + draw(st.sampled_from(["(", "\x00", ":", "  ", "é"]))
    return src


@FUZZ
@given(src=model_files(), command=st.sampled_from(["run", "explore", "list", "lor"]))
def test_model_files(capsys, tmp_path_factory, src, command):
    d = tmp_path_factory.mktemp("model")
    path = d / "model.py"
    path.write_text(src, encoding="utf-8")
    args = [command, f"{path}::s" if command != "list" else str(path)]
    if command in ("explore", "lor"):
        args += ["--runs", "3"]
    if command == "explore":
        args += ["--workers", "1", "--out", str(d / "o")]
    run_cli(capsys, args)
