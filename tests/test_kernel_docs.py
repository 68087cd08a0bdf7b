"""docs/kernel-idioms.md runs as printed, and every public name documents itself.

Each ``python`` block of the page is run on its own and must print exactly
the ``text`` block after it.  Every public name of ``smpvm`` (and each public
method or property of a public class) has a docstring that stands alone:
present, and not a pointer elsewhere ("see the module docstring").
"""

import contextlib
import inspect
import io
import os
import re

import pytest

import smpvm
from conftest import ROOT

PAGE = os.path.join(ROOT, "docs", "kernel-idioms.md")
EXAMPLE = re.compile(r"```python\n(.*?)```\n\s*prints\s*\n\s*```text\n(.*?)```", re.S)


def _examples():
    return EXAMPLE.findall(open(PAGE, encoding="utf-8").read())


def test_the_page_has_an_example_per_idiom():
    assert len(_examples()) >= 9


@pytest.mark.parametrize("index", range(len(_examples())))
def test_each_example_prints_what_the_page_shows(index, monkeypatch):
    monkeypatch.chdir(ROOT)  # model locations are shown relative to the current directory
    code, expected = _examples()[index]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "example", "exec"), {})
    assert out.getvalue() == expected


def test_the_map_names_every_kernel_idiom_class():
    page = open(PAGE, encoding="utf-8").read()
    for name in ("Callout", "Timer", "Taskqueue", "Task", "Workqueue", "WorkItem", "Epoch", "Rcu",
                 "DrainRef", "spin_lock_irqsave", "spin_lock_bh", "local_irq_save",
                 "local_bh_disable", "refcount_inc_not_zero", "kref_get_unless_zero",
                 "refcount_acquire_if_not_zero", "flush_work", "cancel_work_sync"):
        assert f"`{name}" in page or f"{name}(" in page, name


def _weak(doc) -> bool:
    doc = (doc or "").strip()
    return not doc or "see the module" in doc.lower()


def _public():
    for name in smpvm.__all__:
        obj = getattr(smpvm, name)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        yield name, obj.__doc__
        if inspect.isclass(obj):
            for attr in dir(obj):
                if attr.startswith("_"):
                    continue
                a = inspect.getattr_static(obj, attr)
                if isinstance(a, (staticmethod, classmethod)):
                    a = a.__func__
                if inspect.isfunction(a) or isinstance(a, property):
                    yield f"{name}.{attr}", a.__doc__


def test_every_public_name_has_a_docstring_that_stands_alone():
    missing = [name for name, doc in _public() if _weak(doc)]
    assert missing == []
