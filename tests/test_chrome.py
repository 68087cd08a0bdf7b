"""Chrome trace export: valid JSON, properly nested slices, exact times,
byte-stable output and flat memory however long the stream."""

import io
import json
import os
import random
import subprocess
import sys
import tracemalloc
from decimal import Decimal
from pathlib import Path

from smpvm.report.chrome import TID_BASE, ChromeTraceSink, run_pid, us, write_chrome_trace
from smpvm.trace import TraceRecord as R

ROOT = Path(__file__).resolve().parent.parent


def load(path):
    """The trace file, with numbers parsed exactly."""
    with open(path, encoding="utf-8") as f:
        return json.load(f, parse_float=Decimal)


def ns(ts):
    """A ``ts``/``dur`` value (µs) back to integer ns."""
    value = Decimal(ts) * 1000
    assert value == int(value)
    return int(value)


def check_nesting(trace):
    """Assert every B has its E in stack order and all slices nest, per tid.

    Returns the slices as (cpu, name, start_ns, end_ns), B/E and X alike,
    with the CPU number read back from the tid.
    """
    stacks, last, slices = {}, {}, []
    for ev in trace["traceEvents"]:
        ph, tid = ev["ph"], ev.get("tid")
        if ph in ("B", "E", "X"):
            # a viewer would draw tid 0 or tid == pid on the process's own lane
            assert tid >= TID_BASE and tid != ev["pid"], ev
            tid -= TID_BASE
        if ph == "B":
            assert ns(ev["ts"]) >= last.get(tid, 0), ev
            last[tid] = ns(ev["ts"])
            stacks.setdefault(tid, []).append(ev)
        elif ph == "E":
            assert ns(ev["ts"]) >= last.get(tid, 0), ev
            last[tid] = ns(ev["ts"])
            assert stacks.get(tid), f"E without an open B: {ev}"
            b = stacks[tid].pop()
            assert b["name"] == ev["name"], (b, ev)
            slices.append((tid, b["name"], ns(b["ts"]), ns(ev["ts"])))
        elif ph == "X":
            start = ns(ev["ts"])
            slices.append((tid, ev["name"], start, start + ns(ev["dur"])))
    assert all(not s for s in stacks.values()), f"unclosed slices: {stacks}"
    # any two slices on a track are disjoint or one contains the other
    by_tid = {}
    for s in slices:
        by_tid.setdefault(s[0], []).append(s)
    for tid, items in by_tid.items():
        open_ = []
        for _, name, start, end in sorted(items, key=lambda s: (s[2], -s[3])):
            while open_ and open_[-1][1] <= start:
                open_.pop()
            if open_:
                assert end <= open_[-1][1], f"{name} [{start},{end}] crosses {open_[-1]}"
            open_.append((name, end))
    return slices


def events(trace, ph=None):
    return [e for e in trace["traceEvents"] if ph is None or e["ph"] == ph]


def write(tmp_path, records, name="t.json", **kw):
    path = tmp_path / name
    write_chrome_trace(records, str(path), **kw)
    return path


def test_us_uses_exact_three_decimals():
    assert [us(0), us(7), us(1000), us(1234567)] == ["0.000", "0.007", "1.000", "1234.567"]


def test_file_is_a_chrome_trace_with_one_named_track_per_cpu(tmp_path):
    path = write(tmp_path, [
        R(0, 0, "alloc", "thread-begin", "alloc", ""),
        R(5, 2, "term", "thread-begin", "term", ""),
    ], cpu_names={1: "terminator"})
    trace = load(path)
    assert trace["displayTimeUnit"] == "ns"
    names = {(e["pid"], e["tid"]): e["args"]["name"]
             for e in events(trace, "M") if e["name"] == "thread_name"}
    # unnamed tracks take the name of the thread whose first record begins them;
    # tids start at 100, so none is 0 or the pid (a viewer's main-thread lane)
    pid = events(trace, "M")[0]["pid"]
    assert pid >= 1000
    assert names == {(pid, 100): "CPU0 alloc", (pid, 101): "CPU1 terminator",
                     (pid, 102): "CPU2 term"}
    # the named CPU is declared up front, the others when first seen
    order = [e.get("tid") for e in events(trace) if e["name"] == "thread_name"]
    assert order == [101, 100, 102]


def test_ts_is_ns_over_1000(tmp_path):
    path = write(tmp_path, [
        R(1234567, 0, "t", "acquire", "A", "m.py:1", "x"),
        R(1234999, 0, "t", "release", "A", "m.py:2", "x"),
        R(2000001, 0, "t", "load", "obj1.ref_count", "m.py:3", "0"),
    ])
    text = path.read_text()
    assert '"ts":1234.567' in text and '"ts":1234.999' in text
    assert '"ts":2000.001' in text
    for e in events(load(path)):
        if "ts" in e:
            assert ns(e["ts"]) in (1234567, 1234999, 2000001)


def test_acquire_release_is_a_slice_named_after_the_lock(tmp_path):
    trace = load(write(tmp_path, [
        R(100, 0, "t", "acquire", "vm object[obj1]", "vm.py:10", "x"),
        R(300, 0, "t", "release", "vm object[obj1]", "vm.py:20", "x"),
    ]))
    b, = events(trace, "B")
    e, = events(trace, "E")
    assert b["name"] == e["name"] == "vm object[obj1]"
    assert b["args"] == {"mode": "x", "loc": "vm.py:10"}
    assert (ns(b["ts"]), ns(e["ts"])) == (100, 300)
    assert b["tid"] == e["tid"] == TID_BASE and b["pid"] != TID_BASE
    check_nesting(trace)


def test_out_of_order_release_closes_and_reopens_the_slices_above(tmp_path):
    trace = load(write(tmp_path, [
        R(10, 0, "t", "acquire", "A", "m.py:1", "x"),
        R(20, 0, "t", "acquire", "B", "m.py:2", "s"),
        R(30, 0, "t", "acquire", "C", "m.py:3", "x"),
        R(40, 0, "t", "release", "A", "m.py:4", "x"),
        R(50, 0, "t", "release", "C", "m.py:5", "x"),
        R(60, 0, "t", "release", "B", "m.py:6", "s"),
    ]))
    seq = [(e["ph"], e["name"], ns(e["ts"])) for e in events(trace) if e["ph"] in "BE"]
    assert seq == [
        ("B", "A", 10), ("B", "B", 20), ("B", "C", 30),
        ("E", "C", 40), ("E", "B", 40), ("E", "A", 40), ("B", "B", 40), ("B", "C", 40),
        ("E", "C", 50), ("E", "B", 60),
    ]
    reopened = [e for e in events(trace, "B") if ns(e["ts"]) == 40]
    assert [e["args"] for e in reopened] == [
        {"mode": "s", "loc": "m.py:2"}, {"mode": "x", "loc": "m.py:3"}]
    check_nesting(trace)


def test_wait_is_a_slice_ending_where_the_hold_begins(tmp_path):
    trace = load(write(tmp_path, [
        R(0, 1, "t", "acquire", "outer", "m.py:1", "x"),
        R(100, 1, "t", "wait", "vm object[obj1]", "m.py:2", "block", 400),
        R(500, 1, "t", "acquire", "vm object[obj1]", "m.py:2", "x"),
        R(900, 1, "t", "release", "vm object[obj1]", "m.py:3", "x"),
        R(950, 1, "t", "release", "outer", "m.py:4", "x"),
    ]))
    b, = [e for e in events(trace, "B") if e["name"].startswith("wait")]
    assert b["name"] == "wait vm object[obj1]" and b["tid"] == TID_BASE + 1
    assert b["args"] == {"how": "block", "loc": "m.py:2"}
    slices = check_nesting(trace)
    assert (1, "wait vm object[obj1]", 100, 500) in slices
    hold = [s for s in slices if s[1] == "vm object[obj1]"]
    assert hold == [(1, "vm object[obj1]", 500, 900)]


def test_timed_slices_are_clipped_to_nest(tmp_path):
    # a wait that claims to end after the CPU's next step, and one that
    # claims to start before a slice boundary already on the track
    trace = load(write(tmp_path, [
        R(100, 0, "t", "wait", "L", "m.py:1", "spin", 500),
        R(300, 0, "t", "acquire", "L", "m.py:1", "x"),
        R(400, 0, "t", "wait", "M", "m.py:2", "spin", 100),
        R(500, 0, "t", "acquire", "M", "m.py:2", "x"),
        R(600, 0, "t", "release", "L", "m.py:3", "x"),
        R(700, 0, "t", "release", "M", "m.py:3", "x"),
    ]))
    waits = [(s[2], s[3]) for s in check_nesting(trace) if s[1].startswith("wait")]
    assert waits == [(100, 300), (400, 500)]


def test_work_violation_note_and_other_instants(tmp_path):
    trace = load(write(tmp_path, [
        R(0, 0, "t", "work", "", "m.py:1", "", 120),
        R(120, 0, "t", "store", "obj1.ref_count", "m.py:2", "1"),
        R(130, 0, "t", "note", "", "m.py:3", "object is dead"),
        R(140, 1, "u", "violation", "use-after-free", "m.py:4", "read of freed obj1"),
    ]))
    work, = [e for e in events(trace, "B") if e["cat"] == "work"]
    assert (0, "work", 0, 120) in check_nesting(trace)
    inst = events(trace, "i")
    assert [(e["name"], e["s"]) for e in inst] == [
        ("store obj1.ref_count", "t"), ("object is dead", "t"), ("use-after-free", "g")]
    assert inst[0]["args"] == {"target": "obj1.ref_count", "detail": "1", "loc": "m.py:2"}
    assert inst[2]["args"] == {"message": "read of freed obj1", "loc": "m.py:4"}
    check_nesting(trace)


def test_irq_slices_nest_with_lock_slices(tmp_path):
    trace = load(write(tmp_path, [
        R(0, 0, "t", "acquire", "A", "m.py:1", "x"),
        R(10, 0, "irq:clock", "irq-begin", "clock", "", "6"),
        R(20, 0, "irq:clock", "acquire", "B", "m.py:9", "x"),
        R(30, 0, "irq:clock", "irq-end", "clock", ""),
        R(40, 0, "t", "release", "B", "m.py:2", "x"),
        R(50, 0, "t", "release", "A", "m.py:3", "x"),
    ]))
    slices = check_nesting(trace)
    assert (0, "irq clock", 10, 30) in slices


def test_close_closes_open_slices_at_the_end_of_the_run(tmp_path):
    trace = load(write(tmp_path, [
        R(10, 0, "t", "acquire", "A", "m.py:1", "x"),
        R(20, 0, "t", "irq-begin", "clock", "", "6"),
        R(30, 1, "u", "acquire", "B", "m.py:2", "x"),
        R(35, 1, "u", "work", "", "m.py:2", "", 100),
        R(80, 0, "t", "load", "x.y", "m.py:3", "1"),
    ]))
    slices = check_nesting(trace)
    # CPU0 still holds A when the run ends (at CPU1's last moment), not at its own last record
    assert sorted(slices) == [
        (0, "A", 10, 135), (0, "irq clock", 20, 135), (1, "B", 30, 135), (1, "work", 35, 135)]
    times = [ns(e["ts"]) for e in events(trace) if "ts" in e]
    assert times == sorted(times)


def random_records(seed, n=300):
    """A random stream of three CPUs' holds, waits, work and interrupts, in time order."""
    rng = random.Random(seed)
    recs, t, held = [], 0, {0: [], 1: [], 2: []}
    for _ in range(n):
        cpu = rng.randrange(3)
        t += rng.randrange(0, 50)
        locks = held[cpu]
        r = rng.random()
        if r < 0.3:
            lock = rng.choice("ABCDE")
            if rng.random() < 0.5:
                d = rng.randrange(0, 80)
                recs.append(R(t, cpu, "t", "wait", lock, "", "spin", d))
                t += d
            recs.append(R(t, cpu, "t", "acquire", lock, "", "x"))
            locks.append(lock)
        elif r < 0.6 and locks:
            lock = locks.pop(rng.randrange(len(locks)))
            recs.append(R(t, cpu, "t", "release", lock, "", "x"))
        elif r < 0.7:
            recs.append(R(t, cpu, "t", rng.choice(["irq-begin", "irq-end"]), "clock", ""))
        else:
            d = rng.randrange(0, 60)
            recs.append(R(t, cpu, "t", "work", "", "", "", d))
            t += d
    return recs


def test_random_streams_always_nest(tmp_path):
    for seed in range(40):
        recs = random_records(seed)
        check_nesting(load(write(tmp_path, recs, name=f"r{seed}.json")))


def test_records_in_time_order_give_a_file_in_time_order(tmp_path):
    # Perfetto re-sorts a file whose times go back, ends before begins at equal
    # times, which leaves zero-length slices open and arrows without a start
    recs = [
        R(0, 0, "a", "work", "", "m.py:1", "", 500),      # ends after CPU1's records
        R(10, 1, "b", "acquire", "L", "m.py:2", "x"),
        R(20, 1, "b", "work", "", "m.py:3", "", 100),
        R(200, 1, "b", "wait", "M", "m.py:4", "spin", 400),
        R(700, 0, "a", "acquire", "M", "m.py:5", "x"),
        R(700, 0, "a", "release", "M", "m.py:5", "x"),     # a zero-length hold
        R(700, 1, "b", "acquire", "M", "m.py:4", "x"),
        R(700, 1, "b", "violation", "use-after-free", "m.py:6", "boom"),
    ]
    trace = load(write(tmp_path, recs))
    times = [ns(e["ts"]) for e in events(trace) if "ts" in e]
    assert times == sorted(times)
    slices = check_nesting(trace)
    assert (0, "work", 0, 500) in slices and (1, "work", 20, 120) in slices
    assert (0, "M", 700, 700) in slices and (1, "M", 700, 700) in slices
    for seed in range(10):
        rng = random.Random(seed)
        recs, t = [], 0
        for _ in range(200):
            t += rng.choice([0, 0, 5, 40])
            cpu = rng.randrange(3)
            if rng.random() < 0.5:
                recs.append(R(t, cpu, "t", "work", "", "", "", rng.randrange(0, 200)))
            else:
                recs.append(R(t, cpu, "t", "load", "x.y", "", "0"))
        trace = load(write(tmp_path, recs, name=f"o{seed}.json"))
        times = [ns(e["ts"]) for e in events(trace) if "ts" in e]
        assert times == sorted(times), seed
        check_nesting(trace)


def sample_records():
    return [
        R(0, 0, "alloc", "thread-begin", "alloc", ""),
        R(10, 0, "alloc", "acquire", "dev_pager_mtx", "models/d.py:12", "x"),
        R(15, 1, "term", "wait", "dev_pager_mtx", "models/t.py:40", "block", 35),
        R(20, 0, "alloc", "store", "obj1.ref_count", "models/d.py:13", "1"),
        R(50, 0, "alloc", "release", "dev_pager_mtx", "models/d.py:14", "x"),
        R(50, 1, "term", "acquire", "dev_pager_mtx", "models/t.py:40", "x"),
        R(60, 1, "term", "violation", "use-after-free", "models/t.py:41", "µ \"quoted\"\n"),
    ]


def test_same_records_give_byte_identical_files(tmp_path):
    a = write(tmp_path, sample_records(), name="a.json", cpu_names={1: "term"})
    b = write(tmp_path, sample_records(), name="b.json", cpu_names={1: "term"})
    buf = io.StringIO()
    write_chrome_trace(sample_records(), buf, cpu_names={1: "term"})
    assert a.read_bytes() == b.read_bytes() == buf.getvalue().encode("utf-8")
    check_nesting(load(a))


def test_byte_identical_across_processes_with_different_hash_seeds(tmp_path):
    script = (
        "import sys\n"
        "from tests.test_chrome import sample_records\n"
        "from smpvm.report.chrome import write_chrome_trace\n"
        "write_chrome_trace(sample_records(), sys.argv[1], cpu_names={1: 'term', 0: 'a'})\n")
    outs = []
    for seed in ("1", "2"):
        out = tmp_path / f"p{seed}.json"
        env = dict(os.environ, PYTHONHASHSEED=seed,
                   PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
        subprocess.run([sys.executable, "-c", script, str(out)], check=True, cwd=ROOT, env=env)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]


def test_a_given_file_object_is_left_open(tmp_path):
    buf = io.StringIO()
    sink = ChromeTraceSink(buf)
    sink.add(R(0, 0, "t", "note", "", "", "hello"))
    sink.close()
    sink.close()  # closing twice is harmless
    assert not buf.closed
    assert json.loads(buf.getvalue())["traceEvents"][-1]["name"] == "hello"


def _deep_len(obj, depth=0):
    """Total number of items held in containers reachable from ``obj``."""
    if depth > 4 or isinstance(obj, (str, bytes, int, float, bool, type(None))):
        return 0
    if isinstance(obj, dict):
        return len(obj) + sum(_deep_len(v, depth + 1) for v in obj.values())
    if isinstance(obj, (list, tuple, set, frozenset)):
        return len(obj) + sum(_deep_len(v, depth + 1) for v in obj)
    return 0


def _stream(n):
    """A long run on 4 CPUs, made lazily: nested locks, waits, work, accesses."""
    for i in range(n // 8):
        t = i * 1000
        cpu = i % 4
        lock = f"page lock[{i % 16}]"
        yield R(t, cpu, "t", "wait", "pq", "m.py:1", "spin", 10)
        yield R(t + 10, cpu, "t", "acquire", "pq", "m.py:1", "x")
        yield R(t + 20, cpu, "t", "acquire", lock, "m.py:2", "x")
        yield R(t + 30, cpu, "t", "load", "page.flags", "m.py:3", "0")
        yield R(t + 40, cpu, "t", "release", "pq", "m.py:4", "x")
        yield R(t + 50, cpu, "t", "work", "", "m.py:5", "", 100)
        yield R(t + 150, cpu, "t", "store", "page.flags", "m.py:6", "1")
        yield R(t + 160, cpu, "t", "release", lock, "m.py:7", "x")


def test_a_long_stream_is_written_without_keeping_records(tmp_path):
    path = tmp_path / "long.json"
    sink = ChromeTraceSink(str(path))
    stream = _stream(200_000)

    def feed(n):
        for _ in range(n):
            sink.add(next(stream))

    feed(8_000)
    held_early = _deep_len(vars(sink))
    feed(100_000)
    # measure allocations over a window of the run: nothing may accumulate
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        feed(24_000)
        grown, peak = (m - base for m in tracemalloc.get_traced_memory())
    finally:
        tracemalloc.stop()
    for rec in stream:
        sink.add(rec)
    held_late = _deep_len(vars(sink))
    sink.close()
    # the sink's state is per CPU (open slices, times), not per record
    assert held_late == held_early < 100
    assert grown < 16 * 1024 and peak < 256 * 1024, (grown, peak)
    assert not any(isinstance(v, list) and len(v) > 10 for v in vars(sink).values())
    with open(path, encoding="utf-8") as f:
        trace = json.load(f)
    assert sum(1 for e in trace["traceEvents"] if e["ph"] in "BEX") > 150_000


def test_a_release_with_a_waiter_starts_an_arrow_the_waiter_ends(tmp_path):
    trace = load(write(tmp_path, [
        R(0, 0, "a", "acquire", "vm object[o1]", "m.py:1", "x"),
        R(10, 1, "b", "wait", "vm object[o1]", "m.py:2", "block"),
        R(20, 2, "c", "wait", "vm object[o2]", "m.py:3", "spin"),
        R(50, 0, "a", "release", "vm object[o1]", "m.py:4", "x"),
        R(60, 1, "b", "acquire", "vm object[o1]", "m.py:2", "x"),
        R(70, 1, "b", "release", "vm object[o1]", "m.py:5", "x"),
    ]))
    check_nesting(trace)
    start, = events(trace, "s")
    end, = events(trace, "f")
    # from the releasing CPU's track at the release to the waiter's at its acquisition
    assert start["id"] == end["id"]
    assert (start["tid"], ns(start["ts"])) == (TID_BASE + 0, 50)
    assert (end["tid"], ns(end["ts"]), end["bp"]) == (TID_BASE + 1, 60, "e")
    # the arrow starts before its slice closes and ends after the new one opens
    evs = events(trace)
    assert evs.index(start) < next(i for i, e in enumerate(evs)
                                   if e["ph"] == "E" and e["tid"] == TID_BASE)
    b = next(i for i, e in enumerate(evs) if e["ph"] == "B" and e["tid"] == TID_BASE + 1
             and e["name"] == "vm object[o1]")
    assert evs.index(end) > b
    # the waiter count of the class, both instances together
    waiters = [(ns(e["ts"]), e["args"]["waiters"]) for e in events(trace, "C")
               if e["name"] == "vm object"]
    assert waiters == [(10, 1), (20, 2), (60, 1)]


def test_a_release_without_waiters_draws_no_arrow(tmp_path):
    trace = load(write(tmp_path, [
        R(0, 0, "a", "acquire", "L", "m.py:1", "x"),
        R(50, 0, "a", "release", "L", "m.py:4", "x"),
        R(60, 1, "b", "acquire", "L", "m.py:2", "x"),
        R(70, 1, "b", "release", "L", "m.py:5", "x"),
    ]))
    assert not events(trace, "s") and not events(trace, "f")


def test_spl_counter_follows_spl_changes_and_interrupt_handlers(tmp_path):
    trace = load(write(tmp_path, [
        R(0, 0, "t", "spl", "", "m.py:1", "spl0->splvm"),
        R(10, 0, "irq:clock", "irq-begin", "clock", "", "5"),
        R(20, 0, "irq:clock", "acquire", "sched", "m.py:9", "x"),
        R(25, 0, "irq:clock", "release", "sched", "m.py:9", "x"),
        R(30, 0, "irq:clock", "irq-end", "clock", "", ""),
        R(40, 0, "t", "spl", "", "m.py:2", "splvm->spl0"),
    ]))
    slices = check_nesting(trace)
    # the handler's lock nests inside the handler on the CPU's own track
    assert (0, "irq clock", 10, 30) in slices and (0, "sched", 20, 25) in slices
    spl = [(ns(e["ts"]), e["args"]["spl"]) for e in events(trace, "C") if e["name"] == "CPU0"]
    assert spl == [(0, 0), (0, 4), (10, 5), (30, 4), (40, 0)]


def test_each_run_is_its_own_process(tmp_path):
    a, b = run_pid("m.py::s", "buggy", 1), run_pid("m.py::s", "buggy", 2)
    assert a != b and a == run_pid("m.py::s", "buggy", 1)
    assert min(a, b) >= 1000 and max(a, b) < 2**31
    trace = load(write(tmp_path, [R(0, 0, "t", "note", "", "", "hi")], pid=a, process="run a"))
    assert {e["pid"] for e in events(trace)} == {a}
    meta, = [e for e in events(trace, "M") if e["name"] == "process_name"]
    assert meta["args"]["name"] == "run a"


def test_a_real_run_has_one_named_track_per_cpu(tmp_path):
    out = tmp_path / "t.json"
    proc = subprocess.run(
        [sys.executable, "-m", "smpvm", "run", "models/freebsd/device_pager.py::doomed_object",
         "--variant", "buggy", "--seed", "3", "--trace", str(out)],
        cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode in (0, 1), proc.stderr
    trace = load(out)
    slices = check_nesting(trace)
    assert {cpu for cpu, *_ in slices} == {0, 1}
    names = {e["tid"]: e["args"]["name"] for e in events(trace, "M")
             if e["name"] == "thread_name"}
    assert sorted(names) == [TID_BASE, TID_BASE + 1]
    assert all(n.startswith(f"CPU{tid - TID_BASE}") for tid, n in names.items())
    # every arrow's end has its start
    starts = {e["id"] for e in events(trace, "s")}
    assert {e["id"] for e in events(trace, "f")} <= starts


def capped(path, records, cap) -> ChromeTraceSink:
    sink = ChromeTraceSink(str(path), max_events=cap, cut_note="replay it for the rest")
    for rec in records:
        sink.add(rec)
    sink.close()
    return sink


def test_a_trace_given_max_events_stops_there_whole(tmp_path):
    # a report's trace of a million-step run would be 200 MB: it keeps its start
    for seed in range(20):
        recs = random_records(seed)
        whole = write(tmp_path, recs, name="whole.json")
        n_whole = len(events(load(whole)))
        # a bound the run stays under changes nothing
        same = capped(tmp_path / "same.json", recs, n_whole)
        assert same.left_out is None
        assert (tmp_path / "same.json").read_bytes() == whole.read_bytes()
        cap = 40 + 7 * seed
        sink = capped(tmp_path / "cut.json", recs, cap)
        trace = load(tmp_path / "cut.json")
        check_nesting(trace)  # what was open at the cut ends there
        times = [ns(e["ts"]) for e in events(trace) if "ts" in e]
        assert times == sorted(times)
        *body, last = events(trace)
        assert last["name"] == "trace cut" and sink.left_out > 0
        assert last["args"]["message"] == (f"the trace stops after {cap:,} events; "
                                           f"{sink.left_out:,} later records left out. "
                                           f"replay it for the rest")
        # the kept events are the whole trace's first ones, but for the ends at the cut
        kept = [e for e in body if e["ph"] != "E"]
        assert kept == [e for e in events(load(whole)) if e["ph"] != "E"][:len(kept)]
        # past the cap: the last record's few events, then only the ends at the cut
        assert len(body) >= cap and all(e["ph"] == "E" for e in body[cap + 8:])
