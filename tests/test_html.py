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


def test_what_the_page_shows_of_a_long_run_is_kept_in_bounded_memory():
    # explore's report replays the failing run; one cut at a million steps kept every
    # record for a page that shows a few thousand.  What a WindowSink keeps makes the
    # same page as the whole list, culprit marks and counts of left-out steps included.
    import random
    import tracemalloc
    from smpvm.report.html import ROWS_AFTER
    from smpvm.trace import WindowSink

    def run(n, violations, seed):
        rng = random.Random(seed)
        for i in range(n):
            if i in violations:
                yield R(i, i % 3, "t", "violation", "assertion", "m.py:1", f"boom {i}")
            else:
                yield R(i, rng.randrange(3), "t", rng.choice(["work", "acquire", "load"]),
                        "A", f"m.py:{i}", "", 1)

    for seed, (n, violations) in enumerate([
            (10, {4}), (MAX_ROWS, {5}), (MAX_ROWS + 1, {MAX_ROWS - 1}), (3 * MAX_ROWS, set()),
            (3 * MAX_ROWS, {10}), (3 * MAX_ROWS, {2 * MAX_ROWS, 2 * MAX_ROWS + 50}),
            (3 * MAX_ROWS, {3 * MAX_ROWS - 5})]):
        sink = WindowSink(MAX_ROWS, ROWS_AFTER)
        for rec in run(n, violations, seed):
            sink.add(rec)
        window = sink.window()
        assert window.total == n and len(window.records) <= MAX_ROWS
        whole = failure_html({"target": "m.py::s"}, "c", list(run(n, violations, seed)),
                             [], [], [], {})
        assert failure_html({"target": "m.py::s"}, "c", window, [], [], [], {}) == whole
    # a hundred times the rows: the sink's memory stays that of the rows it keeps
    tracemalloc.start()
    sink = WindowSink(MAX_ROWS, ROWS_AFTER)
    for rec in run(100 * MAX_ROWS, {99 * MAX_ROWS}, 1):
        sink.add(rec)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4 * MAX_ROWS * 400  # a list of them all would take 100 times the rows


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
