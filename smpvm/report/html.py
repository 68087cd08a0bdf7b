"""HTML reports: one self-contained file a developer can attach to a bug report.

A failure is spread over several outputs -- the replay command on the
terminal, the failure file, a trace, a graph picture.  :func:`failure_html`
puts it all in one page that opens in any browser, offline: the run's inputs
and the command that replays it; the interleaving as side-by-side CPU
columns with simulated time, ``file:line`` and the model's notes, the step
that went wrong highlighted; each violation with its details; the
lock-order graph drawn as inline SVG with a legend; the lock statistics.
:func:`study_html` does the same for a sweep: its inputs, its table and its
plots (PNG, inlined as ``data:`` URIs).

Everything the page needs is inside it (CSS, a few lines of script, SVG,
images); it never loads anything from the network, so it shows the same
thing on an air-gapped machine as on the author's.
"""

from __future__ import annotations

import base64
import json
import math
from html import escape

from smpvm.report.chrome import us
from smpvm.report.narrative import step_text
from smpvm.trace import Window, window_of

#: Above this many trace records, the interleaving keeps the ones around the
#: first violation (the steps that led to it matter most).
MAX_ROWS = 3000
#: Of those, how many come after the first violation.
ROWS_AFTER = 200

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em 2em;color:#1d2330;background:#fff}
h1{font-size:1.5em;margin:0 0 .3em}h2{font-size:1.2em;margin:1.6em 0 .5em;border-bottom:1px solid #ccd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.4em 0}th,td{border:1px solid #d5d9e2;padding:3px 8px;vertical-align:top;text-align:left}
th{background:#eef1f6}td.num{text-align:right;font-variant-numeric:tabular-nums}
pre,code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:13px}
pre.cmd{background:#1d2330;color:#e8ecf3;padding:.6em .9em;border-radius:4px;overflow-x:auto}
table.steps td{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px;min-width:16em}
table.steps td.time{min-width:6em;text-align:right;color:#556}
table.steps tr.note td.step{font-style:italic;color:#335c99}
table.steps tr.violation td{background:#ffe0e0;color:#900;font-weight:bold}
table.steps td.culprit{background:#fff1b8;outline:2px solid #e0a800}
table.steps .loc{color:#778;font-size:11.5px}
body.quiet table.steps tr.mem,body.quiet table.steps tr.work{display:none}
.violation-box{border-left:4px solid #c00;background:#fff5f5;padding:.4em .9em;margin:.6em 0}
.kind{font-weight:bold;color:#900}.muted{color:#667}
svg text{font-family:system-ui,sans-serif}
"""

_SCRIPT = """
document.getElementById('quiet').addEventListener('change', function (e) {
  document.body.classList.toggle('quiet', e.target.checked);
});
"""


def failure_html(inputs: dict, replay: str, records, violations, lockstat, edges,
                 classes: dict, *, reproduced: bool | None = None,
                 trace_href: str | None = None) -> str:
    """The report of one failing run as a complete HTML document.

    ``inputs`` (label -> value) describes the run; ``replay`` is the command
    that replays it; ``records`` are its trace records (or what a ``WindowSink``
    kept of them, its ``window()``); ``violations`` its
    :class:`~smpvm.violations.Violation` list; ``lockstat`` its class
    summaries; ``edges`` and ``classes`` its witness graph as plain data
    (``RunResult.witness_edges`` / ``witness_classes``).  ``trace_href`` is a
    relative link to its Chrome trace file, when one was written.
    """
    window = records if isinstance(records, Window) else window_of(records, MAX_ROWS, ROWS_AFTER)
    kinds = ", ".join(dict.fromkeys(v.kind for v in violations)) or "no violation"
    title = f"smpvm: {kinds} in {inputs.get('target', '')}"
    parts = [f"<h1>{escape(title)}</h1>"]
    if reproduced is not None:
        parts.append("<p>" + ("The replay reproduced the recorded violation."
                              if reproduced else
                              "<b>The replay did not reproduce the recorded violation.</b>")
                     + "</p>")
    parts.append('<h2 id="inputs">Inputs and replay</h2>')
    parts.append(_kv_table(inputs))
    parts.append(f'<pre class="cmd" id="replay">{escape(replay)}</pre>')
    if trace_href:
        parts.append(f'<p>Trace (Chrome Trace Event JSON, opens in Perfetto UI or '
                     f'chrome://tracing): <a href="{escape(trace_href)}">'
                     f'{escape(trace_href)}</a></p>')
    parts.append('<h2 id="violations">Violations</h2>')
    parts.append(_violations(violations) if violations else "<p>None.</p>")
    parts.append('<h2 id="interleaving">Interleaving</h2>')
    parts.append('<p><label><input type="checkbox" id="quiet"> hide loads, stores and '
                 'work</label> <span class="muted">(time in µs of simulated time; the '
                 'highlighted cell is the step at which a violation was found)</span></p>')
    parts.append(_steps(window))
    parts.append('<h2 id="lock-order">Lock-order graph</h2>')
    parts.append(lock_order_svg(edges, classes))
    parts.append('<h2 id="lockstat">Lock statistics</h2>')
    parts.append(_lockstat(lockstat))
    return _page(title, "\n".join(parts))


def study_html(title: str, inputs: dict, rows: list[dict], images: list[tuple[str, bytes]],
               files: list[str] = ()) -> str:
    """A study's report: its inputs, its summary table and its plots inlined."""
    parts = [f"<h1>{escape(title)}</h1>", '<h2 id="inputs">Inputs</h2>', _kv_table(inputs)]
    parts.append('<h2 id="summary">Summary</h2>')
    parts.append(_rows_table(rows) if rows else "<p>No rows.</p>")
    if images:
        parts.append('<h2 id="plots">Plots</h2>')
    for name, data in images:
        b64 = base64.b64encode(data).decode("ascii")
        parts.append(f'<figure><img alt="{escape(name)}" style="max-width:100%" '
                     f'src="data:image/png;base64,{b64}"><figcaption>{escape(name)}'
                     f'</figcaption></figure>')
    if files:
        parts.append('<h2 id="files">Files</h2><ul>'
                     + "".join(f"<li><code>{escape(f)}</code></li>" for f in files) + "</ul>")
    return _page(title, "\n".join(parts), script=False)


# -- pieces ---------------------------------------------------------------------------


def _page(title: str, body: str, script: bool = True) -> str:
    js = f"<script>{_SCRIPT}</script>" if script else ""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>{_CSS}</style></head>\n"
            f"<body>\n{body}\n{js}</body></html>\n")


def _kv_table(d: dict) -> str:
    rows = "".join(f"<tr><th>{escape(str(k))}</th><td>{escape(_text(v))}</td></tr>"
                   for k, v in d.items())
    return f'<table class="inputs">{rows}</table>'


def _text(v) -> str:
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True)
    return "" if v is None else str(v)


def _violations(violations) -> str:
    out = []
    for i, v in enumerate(violations):
        who = f"CPU{v.cpu} ({escape(v.ctx)})" if v.cpu >= 0 else "at quiescence"
        out.append(f'<div class="violation-box" id="violation-{i}">'
                   f'<span class="kind">{escape(v.kind)}</span>: {escape(v.message)}'
                   f'<br><span class="muted">at <code>{escape(v.location or "?")}</code> on '
                   f'{who} at {us(v.time_ns)} µs</span>')
        if v.extra:
            out.append(_details(v.extra))
        out.append("</div>")
    return "\n".join(out)


def _details(extra: dict) -> str:
    """A violation's kind-specific data: sites, cycles and call chains as nested lists."""
    return "<ul>" + "".join(f"<li><b>{escape(str(k))}</b>: {_value(v)}</li>"
                            for k, v in extra.items()) + "</ul>"


def _value(v) -> str:
    if isinstance(v, dict):
        return _details(v)
    if isinstance(v, list) and any(isinstance(x, (dict, list)) for x in v):
        return "<ol>" + "".join(f"<li>{_value(x)}</li>" for x in v) + "</ol>"
    if isinstance(v, list):
        return "<code>" + escape(" → ".join(str(x) for x in v)) + "</code>"
    return f"<code>{escape(str(v))}</code>"


def _steps(window: Window) -> str:
    cpus, names = window.cpus, window.names
    head = "".join(f"<th>CPU{c} {escape(names.get(c, ''))}</th>" for c in cpus)
    lo = window.start
    hi = lo + len(window.records)
    rows = []
    if lo:
        rows.append(f'<tr><td colspan="{len(cpus) + 1}" class="muted">… {lo} earlier steps '
                    f'left out</td></tr>')
    for i, r in enumerate(window.records, lo):
        if r.action == "violation":
            rows.append(f'<tr class="violation" id="step-{i}"><td class="time">'
                        f'{us(r.time_ns)}</td><td colspan="{len(cpus)}">&gt;&gt;&gt; CPU{r.cpu} '
                        f'{escape(r.target)}: {escape(r.detail)}{_loc(r.loc)}</td></tr>')
            continue
        cls = ("mem" if r.action in ("load", "store") else
               "work" if r.action == "work" else r.action)
        cells = []
        for c in cpus:
            if c != r.cpu:
                cells.append("<td></td>")
                continue
            mark = " culprit" if i in window.culprits else ""
            cells.append(f'<td class="step{mark}">{escape(step_text(r))}{_loc(r.loc)}</td>')
        rows.append(f'<tr class="{escape(cls)}" id="step-{i}"><td class="time">'
                    f'{us(r.time_ns)}</td>{"".join(cells)}</tr>')
    if hi < window.total:
        rows.append(f'<tr><td colspan="{len(cpus) + 1}" class="muted">… {window.total - hi} '
                    f'later steps left out</td></tr>')
    return (f'<table class="steps"><thead><tr><th>time µs</th>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def _loc(loc: str) -> str:
    if not loc:
        return ""
    short = loc.replace("\\", "/").rsplit("/", 1)[-1]
    return f' <span class="loc" title="{escape(loc)}">@ {escape(short)}</span>'


_LOCKSTAT_COLUMNS = [
    ("class", "name", None), ("kind", "kind", None), ("acq", "acquisitions", None),
    ("contended", "contended", None), ("wait mean", "wait_mean_ns", "ns"),
    ("wait max", "wait_max_ns", "ns"), ("wait p99", "wait_p99_ns", "ns"),
    ("hold mean", "hold_mean_ns", "ns"), ("hold max", "hold_max_ns", "ns"),
    ("util", "utilization", "%"),
]


def _lockstat(summaries) -> str:
    if not summaries:
        return "<p>No locks were taken.</p>"
    head = "".join(f"<th>{escape(t)}</th>" for t, _, _ in _LOCKSTAT_COLUMNS)
    rows = []
    for s in summaries:
        cells = []
        for _, attr, unit in _LOCKSTAT_COLUMNS:
            v = getattr(s, attr)
            if unit == "ns":
                cells.append(f'<td class="num">{_ns(v)}</td>')
            elif unit == "%":
                cells.append(f'<td class="num">{100 * v:.1f}%</td>')
            elif isinstance(v, (int, float)):
                cells.append(f'<td class="num">{v}</td>')
            else:
                cells.append(f"<td>{escape(str(v))}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return f'<table class="lockstat"><tr>{head}</tr>{"".join(rows)}</table>'


def _ns(v: float) -> str:
    """A duration with a unit chosen by its size."""
    v = float(v)
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if abs(v) >= scale:
            return f"{v / scale:.3g} {unit}"
    return f"{v:.0f} ns"


def _rows_table(rows: list[dict]) -> str:
    cols = list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{escape(c)}</th>" for c in cols)
    body = []
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c, "")
            num = isinstance(v, (int, float)) and not isinstance(v, bool)
            text = f"{v:.4g}" if isinstance(v, float) else _text(v)
            cells.append(f'<td class="num">{escape(text)}</td>' if num
                         else f"<td>{escape(text)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f'<table class="summary"><tr>{head}</tr>{"".join(body)}</table>'


# -- the lock-order graph -------------------------------------------------------------

_EDGE_STYLES = {
    # name: (stroke colour, width, dash pattern, legend text)
    "taken": ("#222", 1.4, "", "order taken in this run (label: where the second lock was "
                               "taken, and how often)"),
    "declared": ("#888", 1.2, "6 4", "declared order, not taken in this run"),
    "reversal": ("#d00", 2.6, "", "part of a lock-order reversal"),
}


def lock_order_svg(edges, classes: dict) -> str:
    """The witness graph as an inline SVG: a box per lock class, an arrow per order.

    Classes sit on a circle in first-seen order (the same run gives the same
    picture); each arrow bends a little to its left so that a -> b and b -> a
    stay apart, and its label sits on a white backing beside the bend.
    """
    names = list(dict.fromkeys(list(classes) + [e["from"] for e in edges]
                               + [e["to"] for e in edges]))
    if not names:
        return "<p>No locks were taken.</p>"
    reversal = _reversal_pairs(edges)
    n = len(names)
    width = {c: 8 * len(c) + 20 for c in names}
    radius = 0 if n == 1 else max(140, 34 * n, max(width.values()) * 0.9)
    pad = max(width.values()) / 2 + 40
    cx, cy = radius + pad, radius + 60
    pos = {}
    for i, c in enumerate(names):
        a = -math.pi / 2 + 2 * math.pi * i / n
        pos[c] = (cx + radius * math.cos(a), cy + radius * math.sin(a))
    # wide enough for the legend's longest line, tall enough for the boxes
    w_svg, h_svg = max(2 * cx, 640), 2 * radius + 100
    out = [f'<svg id="lock-order-graph" width="{w_svg:.0f}" '
           f'height="{h_svg + 30 * len(_EDGE_STYLES) + 20:.0f}" role="img" '
           f'aria-label="lock-order graph">', "<defs>"]
    for name, (color, *_rest) in _EDGE_STYLES.items():
        out.append(f'<marker id="arrow-{name}" viewBox="0 0 10 10" refX="10" refY="5" '
                   f'markerUnits="userSpaceOnUse" markerWidth="10" markerHeight="10" '
                   f'orient="auto-start-reverse">'
                   f'<path d="M0,0 L10,5 L0,10 z" fill="{color}"/></marker>')
    out.append("</defs>")
    labels = []
    for e in edges:
        a, b = e["from"], e["to"]
        style = ("reversal" if e.get("reversal") or (a, b) in reversal else
                 "declared" if e.get("declared") and not e.get("count") else "taken")
        color, sw, dash, _ = _EDGE_STYLES[style]
        (x1, y1), (x2, y2) = pos[a], pos[b]
        if a == b:  # a class taken while holding another lock of the same class
            x, y = x1, y1 - 14
            path = f"M{x - 12:.1f},{y:.1f} C{x - 40:.1f},{y - 60:.1f} {x + 40:.1f},{y - 60:.1f} {x + 12:.1f},{y:.1f}"
            lx, ly = x, y - 52
        else:
            # bend to the left of a -> b; end at the boxes' edges
            mx, my = (x1 + x2) / 2, (y1 + y2) / 2
            dx, dy = x2 - x1, y2 - y1
            dist = math.hypot(dx, dy) or 1
            qx, qy = mx - dy / dist * 28, my + dx / dist * 28
            sx, sy = _box_exit(x1, y1, qx, qy, width[a] / 2 + 3, 17)
            ex, ey = _box_exit(x2, y2, qx, qy, width[b] / 2 + 3, 17)
            path = f"M{sx:.1f},{sy:.1f} Q{qx:.1f},{qy:.1f} {ex:.1f},{ey:.1f}"
            lx, ly = (sx + 2 * qx + ex) / 4, (sy + 2 * qy + ey) / 4
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<path class="edge edge-{style}" d="{path}" fill="none" stroke="{color}" '
                   f'stroke-width="{sw}"{dash_attr} marker-end="url(#arrow-{style})">'
                   f'<title>{escape(a)} → {escape(b)}: {escape(e.get("first_site") or "?")} → '
                   f'{escape(e.get("second_site") or "?")}</title></path>')
        site = (e.get("second_site") or "").replace("\\", "/").rsplit("/", 1)[-1]
        text = "declared" if style == "declared" else f"{site or '?'} ×{e.get('count', 0)}"
        labels.append(f'<text x="{lx:.1f}" y="{ly + 4:.1f}" text-anchor="middle" font-size="11" '
                      f'fill="{color}" stroke="#fff" stroke-width="4" paint-order="stroke">'
                      f'{escape(text)}</text>')
    for c in names:
        x, y = pos[c]
        kind = classes.get(c, "")
        out.append(f'<g class="node"><rect x="{x - width[c] / 2:.1f}" y="{y - 17:.1f}" '
                   f'width="{width[c]}" height="34" rx="6" fill="#dde8f5" stroke="#345"/>'
                   f'<text x="{x:.1f}" y="{y - 1:.1f}" text-anchor="middle" font-size="13">'
                   f'{escape(c)}</text><text x="{x:.1f}" y="{y + 12:.1f}" text-anchor="middle" '
                   f'font-size="10" fill="#556">{escape(kind if kind != "?" else "")}</text></g>')
    out.extend(labels)  # labels last: drawn over the boxes and arrows, never under them
    # the legend: one line per edge style
    y = h_svg + 4
    for name, (color, sw, dash, text) in _EDGE_STYLES.items():
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<g class="legend"><line x1="20" y1="{y:.0f}" x2="70" y2="{y:.0f}" '
                   f'stroke="{color}" stroke-width="{sw}"{dash_attr} '
                   f'marker-end="url(#arrow-{name})"/><text x="80" y="{y + 4:.0f}" '
                   f'font-size="12">{escape(text)}</text></g>')
        y += 26
    out.append("</svg>")
    return "\n".join(out)


def _reversal_pairs(edges) -> set:
    """Edges on a cycle of two (a -> b and b -> a both taken)."""
    pairs = {(e["from"], e["to"]) for e in edges if e.get("count")}
    return {(a, b) for a, b in pairs if a != b and (b, a) in pairs}


def _box_exit(x, y, tx, ty, hw, hh):
    """Where the segment from a box's centre (x, y) toward (tx, ty) leaves the box."""
    dx, dy = tx - x, ty - y
    if dx == 0 and dy == 0:
        return x, y
    t = min(hw / abs(dx) if dx else math.inf, hh / abs(dy) if dy else math.inf)
    return x + dx * t, y + dy * t
