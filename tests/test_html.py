"""HTML reports: one self-contained page per failure (``smpvm report``, explore's
``report.html``) and per study (sweep's ``report.html``).

The pages are checked for what a reader needs -- inputs, replay command,
the interleaving with the failing step highlighted, violations, the
lock-order graph with its legend, lock statistics -- and for never loading
anything from the network.  Where Chromium is installed, a page is also
rendered headless and the screenshot must not be blank.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from conftest import ROOT, assert_one_error_line, cli
from smpvm.report.html import MAX_ROWS, failure_html, lock_order_svg
from smpvm.trace import TraceRecord as R
from smpvm.violations import Violation

DOOMED = os.path.join(ROOT, "models", "freebsd", "device_pager.py") + "::doomed_object"
#: A reference to anything outside the page: what a self-contained page never has.
NETWORK = re.compile(r"""(src|href)\s*=\s*["']?\s*(https?:)?//|@import|url\(\s*["']?(https?:)?//""",
                     re.IGNORECASE)


@pytest.fixture(scope="module")
def explored(tmp_path_factory):
    """An exploration of the doomed-object race that saved a failure: its out directory."""
    out = tmp_path_factory.mktemp("explore") / "out"
    from smpvm.cli import main
    with pytest.raises(SystemExit) as exc:
        main(["explore", DOOMED, "--variant", "buggy", "--stop-on-first", "--workers", "1",
              "--seed", "1", "--out", str(out)])
    assert exc.value.code == 1
    return out


def read(path) -> str:
    with open(path, encoding="utf-8") as fp:
        return fp.read()


def assert_failure_page(text: str) -> None:
    assert text.startswith("<!DOCTYPE html>")
    assert not NETWORK.search(text), NETWORK.search(text).group(0)
    for part in ('id="inputs"', 'id="replay"', 'id="violations"', 'id="interleaving"',
                 'id="lock-order-graph"', 'id="lockstat"'):
        assert part in text, part
    assert "smpvm replay " in text
    assert "use-after-free" in text
    # one column per CPU, named after its thread
    assert "<th>CPU0 Pt</th>" in text and "<th>CPU1 Pa</th>" in text
    # the violation row and the step it was found at are marked
    assert 'class="violation"' in text and "culprit" in text
    # file:line of model steps
    assert re.search(r"@ device_pager\.py:\d+", text)
    # the graph's legend names each edge style
    assert text.count('class="legend"') == 3
    assert "vm object" in text


def test_explore_writes_a_report_of_its_first_failure(explored):
    text = read(explored / "report.html")
    assert_failure_page(text)
    # the trace of the same replay sits next to it and is linked relatively
    traces = sorted(p.name for p in explored.glob("trace-*.json"))
    assert traces == ["trace-use-after-free.json"]
    assert 'href="trace-use-after-free.json"' in text


def test_smpvm_report_writes_the_page_and_its_trace(capsys, tmp_path, explored):
    failure, = explored.glob("failure-*.json")
    out = tmp_path / "f.html"
    rc, stdout, err = cli(capsys, "report", failure, "-o", out)
    assert rc == 0, err
    assert str(out) in stdout
    text = read(out)
    assert_failure_page(text)
    assert "The replay reproduced the recorded violation." in text
    assert (tmp_path / "f.trace.json").is_file() and 'href="f.trace.json"' in text


def test_report_of_a_missing_file_is_one_line_and_exit_2(capsys, tmp_path):
    rc, _, err = cli(capsys, "report", tmp_path / "nope.json", "-o", tmp_path / "x.html")
    assert rc == 2
    assert_one_error_line(err, "nope.json")
    assert not (tmp_path / "x.html").exists()


def test_graph_draws_reversals_declared_orders_and_a_legend():
    edges = [
        {"from": "A", "to": "B", "count": 3, "second_site": "m/x.py:10"},
        {"from": "B", "to": "A", "count": 1, "second_site": "m/x.py:20"},
        {"from": "B", "to": "C", "count": 0, "declared": True},
    ]
    svg = lock_order_svg(edges, {"A": "sleep mutex", "B": "sleep mutex", "C": "spin mutex"})
    assert svg.count('class="node"') == 3
    assert svg.count("edge-reversal") == 2 and svg.count("edge-declared") == 1
    assert 'stroke-dasharray="6 4"' in svg
    assert "x.py:10 ×3" in svg and "x.py:20 ×1" in svg
    assert svg.count('class="legend"') == 3
    # labels come after every node box, so no box hides them
    assert svg.rindex('class="node"') < svg.index("x.py:10 ×3")


def test_a_long_interleaving_keeps_the_steps_before_the_violation():
    n = MAX_ROWS * 2
    recs = [R(i, i % 2, "t", "work", "", f"m.py:{i}", "", 1) for i in range(n)]
    recs.append(R(n, 1, "t", "violation", "assertion", "m.py:1", "boom"))
    v = Violation("assertion", "boom", n, 1, "t", "m.py:1")
    text = failure_html({"target": "m.py::s"}, "smpvm replay f.json", recs, [v], [], [], {})
    assert 'id="step-0"' not in text
    assert f'id="step-{n - 1}"' in text and f'id="step-{n}"' in text
    assert "earlier steps left out" in text


def test_sweep_writes_a_report_with_its_plots_and_table(capsys, tmp_path):
    from test_sweep import queue_study
    path = queue_study(tmp_path, acquisitions=10)
    out = tmp_path / "out"
    rc, stdout, err = cli(capsys, "sweep", path, "--out", out, "--workers", "1")
    assert rc == 0, err
    report = out / "report.html"
    assert str(report) in stdout
    text = read(report)
    assert not NETWORK.search(text)
    pngs = sorted(p for p in os.listdir(out) if p.endswith(".png"))
    assert pngs and text.count('src="data:image/png;base64,') == len(pngs)
    assert 'class="summary"' in text and text.count("<tr>") >= 4  # header + 3 CPU counts


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="no chromium or chromium-browser installed")
def test_the_failure_page_renders_in_headless_chromium(tmp_path, explored):
    import numpy as np
    from matplotlib.image import imread
    shot = tmp_path / "shot.png"
    proc = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--window-size=1280,1600", f"--screenshot={shot}",
         (explored / "report.html").as_uri()],
        capture_output=True, text=True, timeout=None)
    assert shot.is_file(), proc.stderr[-2000:]
    img = imread(str(shot))[..., :3]
    # not blank: a good share of the pixels is neither white nor one flat colour
    inked = (img.min(axis=2) < 0.8).mean()
    assert inked > 0.02, inked
    assert len(np.unique(img.reshape(-1, 3).round(2), axis=0)) > 20
