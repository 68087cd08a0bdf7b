"""Published JSON Schemas (docs/schema/): every file and ``--json`` output smpvm
writes validates against its schema, and replay checks a failure file's
``schema_version``.

The outputs come from real commands on the doomed-object model and a small
parameter sweep, so a field added or renamed without its schema fails here.
"""

from __future__ import annotations

import json
import os

import pytest

jsonschema = pytest.importorskip("jsonschema")

from conftest import ROOT, assert_one_error_line, cli  # noqa: E402

SCHEMAS = os.path.join(ROOT, "docs", "schema")
DOOMED = os.path.join(ROOT, "models", "freebsd", "device_pager.py") + "::doomed_object"


def validate(doc, name):
    with open(os.path.join(SCHEMAS, name), encoding="utf-8") as fp:
        schema = json.load(fp)
    jsonschema.Draft202012Validator(schema).validate(doc)


def load(path):
    with open(path, encoding="utf-8") as fp:
        return json.load(fp)


@pytest.fixture(scope="module")
def explored(tmp_path_factory):
    """``smpvm explore --json`` of the doomed-object race: (output, out dir)."""
    out = tmp_path_factory.mktemp("schema") / "x"
    import contextlib
    import io

    from smpvm.cli import main
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()):
        with pytest.raises(SystemExit):
            main(["explore", DOOMED, "--variant", "buggy", "--stop-on-first", "--workers", "1",
                  "--seed", "1", "--out", str(out), "--json"])
    return json.loads(buf.getvalue()), out


def test_every_schema_is_a_valid_draft_2020_12_schema():
    names = sorted(n for n in os.listdir(SCHEMAS) if n.endswith(".schema.json"))
    assert {"failure.schema.json", "explore-file.schema.json", "manifest.schema.json",
            "run-output.schema.json", "explore-output.schema.json", "replay-output.schema.json",
            "lor-output.schema.json", "sweep-output.schema.json"} <= set(names)
    for name in names:
        schema = load(os.path.join(SCHEMAS, name))
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        jsonschema.Draft202012Validator.check_schema(schema)


def test_run_json_matches_its_schema(capsys):
    rc, out, err = cli(capsys, "run", DOOMED, "--variant", "buggy", "--seed", "3", "--json")
    assert rc == 1, err
    doc = json.loads(out)
    assert doc["violations"]  # the schema is checked on a run that has findings
    validate(doc, "run-output.schema.json")


def test_explore_json_explore_file_and_failure_file_match_their_schemas(explored):
    doc, out = explored
    validate(doc, "explore-output.schema.json")
    manifest = load(out / "explore.json")
    assert manifest["schema_version"] == 1
    validate(manifest, "explore-file.schema.json")
    failure = load(doc["failure_files"]["use-after-free"])
    assert failure["schema_version"] == 1
    validate(failure, "failure.schema.json")


def test_replay_json_matches_its_schema(capsys, explored):
    doc, _ = explored
    rc, out, err = cli(capsys, "replay", doc["failure_files"]["use-after-free"], "--json")
    assert rc == 1, err
    replay = json.loads(out)
    assert replay["reproduced"] is True
    validate(replay, "replay-output.schema.json")


def test_lor_json_matches_its_schema(capsys):
    rc, out, err = cli(capsys, "lor", DOOMED, "--runs", "5", "--json")
    assert rc in (0, 1), err
    doc = json.loads(out)
    assert doc["edges"]
    validate(doc, "lor-output.schema.json")


def test_sweep_json_and_manifest_match_their_schemas(capsys, tmp_path):
    from test_sweep import queue_study
    path = queue_study(tmp_path, acquisitions=5)
    out = tmp_path / "out"
    rc, stdout, err = cli(capsys, "sweep", path, "--out", out, "--workers", "1", "--json")
    assert rc == 0, err
    validate(json.loads(stdout), "sweep-output.schema.json")
    manifest = load(out / "manifest.json")
    assert manifest["schema_version"] == 1
    validate(manifest, "manifest.schema.json")


def test_a_schema_rejects_what_it_should(explored):
    doc, _ = explored
    failure = load(doc["failure_files"]["use-after-free"])
    bad = dict(failure, choices=["cpu0"])
    with pytest.raises(jsonschema.ValidationError):
        validate(bad, "failure.schema.json")
    with pytest.raises(jsonschema.ValidationError):
        validate(dict(failure, schema_version=2), "failure.schema.json")


def _rewrite(src, dst, **changes):
    d = load(src)
    for k, v in changes.items():
        if v is None:
            d.pop(k, None)
        else:
            d[k] = v
    with open(dst, "w", encoding="utf-8") as fp:
        json.dump(d, fp)
    return dst


def test_replay_refuses_an_unknown_schema_version(capsys, tmp_path, explored):
    doc, _ = explored
    f = _rewrite(doc["failure_files"]["use-after-free"], tmp_path / "v2.json", schema_version=2)
    rc, _, err = cli(capsys, "replay", f)
    assert rc == 2
    assert_one_error_line(err, "v2.json", "schema_version 2")


def test_a_failure_file_without_a_version_is_version_1(capsys, tmp_path, explored):
    doc, _ = explored
    f = _rewrite(doc["failure_files"]["use-after-free"], tmp_path / "old.json",
                 schema_version=None)
    rc, out, err = cli(capsys, "replay", f)
    assert rc == 1, err
    assert "reproduced use-after-free" in out
