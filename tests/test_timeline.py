"""Timeline plots: a PNG is written, and the intervals behind it are right."""

from smpvm.report.timeline import PALETTE, _intervals, lock_class, plot_timeline
from smpvm.trace import TraceRecord as R

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

RECORDS = [
    R(0, 0, "alloc", "thread-begin", "alloc", ""),
    R(10, 0, "alloc", "acquire", "dev_pager_mtx", "d.py:1", "x"),
    R(40, 1, "term", "wait", "vm object[obj1]", "t.py:2", "block", 60),
    R(100, 1, "term", "acquire", "vm object[obj1]", "t.py:2", "x"),
    R(120, 1, "irq:clock", "irq-begin", "clock", "", "6"),
    R(150, 1, "irq:clock", "irq-end", "clock", ""),
    R(200, 1, "term", "acquire", "page lock[7]", "t.py:3", "x"),
    R(260, 1, "term", "release", "vm object[obj1]", "t.py:4", "x"),
    R(300, 0, "alloc", "release", "dev_pager_mtx", "d.py:5", "x"),
    R(320, 0, "alloc", "violation", "use-after-free", "d.py:6", "read of freed obj1"),
    R(400, 1, "term", "work", "", "", "", 50),
]


def test_png_is_written(tmp_path):
    path = tmp_path / "timeline.png"
    plot_timeline(RECORDS, str(path), cpu_names={1: "terminator"}, title="doomed object")
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 1000


def test_empty_trace_still_gives_a_png(tmp_path):
    path = tmp_path / "empty.png"
    plot_timeline([], path)
    assert path.read_bytes().startswith(PNG_SIGNATURE)


def test_intervals_behind_the_plot():
    bars, violations, roles = _intervals(iter(RECORDS))
    got = sorted((b.kind, b.cpu, b.start_ns, b.end_ns, b.label, b.depth) for b in bars)
    assert got == [
        ("hold", 0, 10, 300, "dev_pager_mtx", 0),
        ("hold", 1, 100, 260, "vm object", 0),
        # still held at the end: drawn up to the CPU's last time (end of its work)
        ("hold", 1, 200, 450, "page lock", 1),
        ("irq", 1, 120, 150, "clock", 1),
        ("wait", 1, 40, 100, "vm object[obj1]", 0),
    ]
    assert violations == [(320, "use-after-free")]
    assert roles == {0: "alloc", 1: ""}


def test_lock_classes_and_palette():
    assert lock_class("vm object[obj1]") == "vm object"
    assert lock_class("dev_pager_mtx") == "dev_pager_mtx"
    assert len(set(PALETTE)) == len(PALETTE) >= 10


def test_run_writes_a_timeline_png(tmp_path):
    """``smpvm run --timeline`` draws the run it made, and prints no narrative for it."""
    import os
    import subprocess
    import sys
    png = tmp_path / "t.png"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = subprocess.run([sys.executable, "-m", "smpvm", "run",
                        "models/freebsd/device_pager.py::doomed_object", "--variant", "fixed",
                        "--seed", "3", "--timeline", str(png)],
                       capture_output=True, text=True, cwd=root)
    assert p.returncode == 0, p.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert "time µs" not in p.stdout
