"""Narratives: one aligned column per CPU, readable steps, locations, violations."""

import pytest

from smpvm.report.narrative import SEP, narrate, step_text
from smpvm.trace import TraceRecord as R

WIDTH = 30

RECORDS = [
    R(0, 0, "alloc", "thread-begin", "alloc", ""),
    R(0, 1, "term", "thread-begin", "term", ""),
    R(10, 0, "alloc", "acquire", "dev_pager_mtx", "models/freebsd/device_pager.py:123", "x"),
    R(40, 1, "term", "wait", "vm object[obj1]", "models/freebsd/vm_object.py:77", "block", 410),
    R(450, 1, "term", "acquire", "vm object[obj1]", "models/freebsd/vm_object.py:77", "x"),
    R(500, 0, "alloc", "load", "obj1.ref_count", "models/freebsd/device_pager.py:130", "0"),
    R(600, 1, "term", "work", "", "", "", 120),
    R(720, 1, "term", "free", "obj_zone#0", "models/freebsd/vm_object.py:90"),
    R(730, 1, "term", "release", "vm object[obj1]", "models/freebsd/vm_object.py:91", "x"),
    R(800, 0, "alloc", "store", "obj1.ref_count", "models/freebsd/device_pager.py:131", "1"),
    R(800, 0, "alloc", "violation", "use-after-free", "models/freebsd/device_pager.py:131",
      "write to obj_zone#0 (obj1.ref_count) after it was freed at vm_object.py:90"),
    R(1234567, 0, "alloc", "note", "", "", "a long note that needs more than one line of its "
      "column to be shown in full"),
]


def column_offsets(header, n_cpus, width=WIDTH):
    first = header.index(SEP) + len(SEP)
    return [first + i * (width + len(SEP)) for i in range(n_cpus)]


def rows(text):
    """(time text, line) for each data line (after the header and rule)."""
    lines = text.rstrip("\n").split("\n")
    time_w = lines[0].index(SEP)
    return [(line[:time_w].strip(), line) for line in lines[2:]]


def test_header_names_cpus_by_role_or_first_thread():
    text = narrate(RECORDS, cpu_names={1: "terminator"}, width=WIDTH)
    header = text.split("\n")[0]
    offs = column_offsets(header, 2)
    assert header[offs[0]:].startswith("CPU0 alloc")
    assert header[offs[1]:].startswith("CPU1 terminator")


def test_each_step_sits_in_its_cpus_column():
    text = narrate(RECORDS, width=WIDTH)
    header = text.split("\n")[0]
    offs = column_offsets(header, 2)
    record_rows, in_violation = [], False
    for time_text, line in rows(text):
        # a violation's lines (the first has ">>>") span the columns: skip them
        in_violation = ">>>" in line or (in_violation and not time_text)
        if in_violation:
            continue
        cells = [line[o:o + WIDTH] for o in offs]
        filled = [i for i, c in enumerate(cells) if c.strip()]
        assert len(filled) == 1, line
        i = filled[0]
        assert cells[i][0] != " ", f"text must start at the column: {line!r}"
        assert len(cells[i].rstrip()) <= WIDTH
        # separators stay where the header put them
        for o in offs[1:]:
            if len(line) > o:
                assert line[o - len(SEP):o] == SEP, line
        if time_text:
            record_rows.append((time_text, i))
    expected = [(f"{r.time_ns // 1000}.{r.time_ns % 1000:03d}", r.cpu)
                for r in RECORDS if r.action != "violation"]
    assert record_rows == expected


def test_steps_read_like_kernel_code():
    text = narrate(RECORDS, width=60)
    for phrase in ["lock dev_pager_mtx", "unlock vm object[obj1]",
                   "wait vm object[obj1] (block, 410 ns)", "work 120 ns",
                   "load obj1.ref_count = 0", "store obj1.ref_count = 1",
                   "free obj_zone#0", "thread alloc begins"]:
        assert phrase in text, phrase
    assert step_text(R(0, 0, "t", "acquire", "proc", "", "s")) == "lock proc (s)"
    assert step_text(R(0, 0, "t", "trylock-fail", "m", "", "x")) == "trylock m failed"


def test_locations_are_shown_as_basename_and_line():
    text = narrate(RECORDS, width=60)
    assert "lock dev_pager_mtx @ device_pager.py:123" in text
    assert "@ vm_object.py:90" in text
    assert "models/freebsd" not in text


def test_violation_stands_out_across_the_columns():
    text = narrate(RECORDS, width=WIDTH)
    lines = text.split("\n")
    offs = column_offsets(lines[0], 2)
    start = next(i for i, line in enumerate(lines) if ">>>" in line)
    assert lines[start][offs[0]:].startswith(">>> CPU0 use-after-free: write to")
    assert lines[start].split(SEP)[0].strip() == "0.800"
    # the message runs across both columns, wrapping to full-width lines
    body = " ".join(line[offs[0]:] for line in lines[start:start + 4])
    assert "after it was freed at vm_object.py:90" in body
    assert "@ device_pager.py:131" in body
    assert max(len(line) for line in lines) <= offs[1] + WIDTH


def test_long_text_wraps_within_its_column():
    text = narrate(RECORDS, width=WIDTH)
    note_rows = [line for t, line in rows(text)
                 if "note" in line or "column" in line or "full" in line]
    assert len(note_rows) >= 2
    # (an empty column to the right leaves only its separator behind)
    end = column_offsets(text.split("\n")[0], 2)[0] + WIDTH
    assert all(len(line.rstrip(" |")) <= end for line in note_rows)


def test_max_rows_and_action_filter():
    text = narrate(RECORDS, max_rows=3, width=WIDTH)
    assert text.rstrip().endswith(f"... {len(RECORDS) - 3} more records not shown")
    assert "dev_pager_mtx" in text and "wait" not in text
    only = narrate(RECORDS, actions={"acquire", "release"}, width=60)
    assert "lock dev_pager_mtx" in only and "load" not in only and ">>>" not in only


def test_same_records_same_text_and_narrow_width_refused():
    assert narrate(RECORDS) == narrate(list(RECORDS))
    with pytest.raises(ValueError, match="too narrow"):
        narrate(RECORDS, width=3)
