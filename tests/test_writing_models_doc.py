"""docs/writing-models.md: `smpvm new` writes the template, and every snippet runs as written."""

import os
import re
import subprocess
import sys

import pytest

from smpvm.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "writing-models.md")


def blocks(lang):
    with open(DOC, encoding="utf-8") as fp:
        return re.findall(rf"```{lang}\n(.*?)```", fp.read(), re.S)


def smpvm(*args):
    return subprocess.run([sys.executable, "-m", "smpvm", *args], capture_output=True, text=True)


def test_the_tutorial_runs_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    commands = [line.split()[1:] for b in blocks("sh") for line in b.splitlines() if line.strip()]
    assert commands[0] == ["new", "refs"]
    for args in commands:
        p = smpvm(*args)
        want = 1 if "buggy" in args else 0
        assert p.returncode == want, (args, p.stdout[-800:], p.stderr[-800:])
    namespace = {}
    for code in blocks("python"):
        exec(compile(code, DOC, "exec"), namespace)


def test_new_refuses_to_overwrite_and_bad_names(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(["new", "refs"])
    assert e.value.code in (0, None)
    (tmp_path / "ro").mkdir(mode=0o500)
    unwritable = [] if os.access(tmp_path / "ro", os.W_OK) else [["new", "ro/refs"]]  # root
    for args in (["new", "refs"], ["new", "not-an-identifier"], ["new", "nowhere/refs"],
                 ["new", "."], ["new", str(tmp_path)], ["new", "/proc/refs"], *unwritable):
        with pytest.raises(SystemExit) as e:
            main(args)
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("smpvm: error: "), err


def test_the_template_declares_what_its_variants_show(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert smpvm("new", "mydrv").returncode == 0
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "--smpvm", "mydrv.py"], capture_output=True, text=True)
    assert p.returncode == 0 and "2 passed" in p.stdout, p.stdout[-800:]
