"""The README's Python example runs and prints exactly what the README shows."""

import contextlib
import io
import pathlib
import re

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def _example_and_output(section="A model in ten lines"):
    text = README.read_text(encoding="utf-8")
    m = re.search(rf"## {section}.*?```python\n(.*?)```\s*\n\s*prints\s*\n\s*```text\n(.*?)```",
                  text, re.S)
    assert m, f"README lost its example section {section!r}"
    return m.group(1), m.group(2)


def _printed(code):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})
    return out.getvalue()


def test_readme_example_prints_what_the_readme_shows():
    code, expected = _example_and_output()
    assert _printed(code) == expected


def test_readme_device_example_prints_what_the_readme_shows():
    code, expected = _example_and_output("A device as a SimPy process")
    assert "m.env.process(" in code and "m.interrupt(" in code and "wait_event(" in code
    assert _printed(code) == expected


def test_readme_quick_start_is_two_commands_and_ci_runs_the_second():
    text = README.read_text(encoding="utf-8")
    block = re.search(r"## Quick start\s*\n\s*```sh\n(.*?)```", text, re.S).group(1)
    commands = [line for line in block.splitlines() if line.strip()]
    assert len(commands) == 2
    assert "smpvm demo" in commands[0]
    assert "pytest" in commands[1]
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert commands[1] in ci
