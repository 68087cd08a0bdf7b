"""Timeline plots: who held what, and when, on every CPU.

One horizontal row per CPU, time in microseconds running to the right.  On a
row:

- each lock hold is a bar from ``acquire`` to ``release``, coloured by lock
  class (the lock name before any ``[instance]``), so the same class has the
  same colour on every CPU and in every plot of the same set of classes;
  holds nested inside other holds are drawn thinner, on top;
- each wait is a grey hatched bar, ending where the hold it waited for
  begins;
- each interrupt handler is a thin outlined bar along the bottom of the row;
- each violation is a red vertical line across all rows, labelled with its
  kind.

Slices still open when the records end are drawn up to the last time seen.
Rows are named "CPU<n>" plus the CPU's role: the one given by the caller, or
else the first thread the CPU begins.  :func:`plot_timeline` imports
matplotlib only when called and draws with the Agg renderer, so importing
this module costs nothing and never touches the caller's pyplot state.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from smpvm.trace import TraceRecord

#: Colours handed to lock classes in sorted-name order (then reused).
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
    "#e377c2", "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a",
    "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5",
)
#: Face colour of wait bars.
WAIT_COLOUR = "#bbbbbb"
#: Edge colour of interrupt bars.
IRQ_COLOUR = "#6a3d9a"
#: Colour of violation lines and labels.
VIOLATION_COLOUR = "#e31a1c"


class _Bar(NamedTuple):
    """One interval to draw on a CPU row."""

    #: "hold", "wait" or "irq".
    kind: str
    #: CPU number (its row).
    cpu: int
    #: Start and end, ns.
    start_ns: int
    end_ns: int
    #: Lock class for holds; lock or source name otherwise.
    label: str
    #: Nesting depth among holds on that CPU when it began (0 = outermost).
    depth: int


def lock_class(lock: str) -> str:
    """The class of a lock name: ``"vm object[obj1]"`` -> ``"vm object"``."""
    return lock.split("[", 1)[0]


def plot_timeline(records: Iterable[TraceRecord], path,
                  cpu_names: dict[int, str] | None = None,
                  title: str | None = None) -> None:
    """Draw ``records`` as a per-CPU timeline and write it to ``path`` as PNG.

    ``cpu_names`` maps CPU numbers to the role shown in the row name;
    ``title`` goes above the plot.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    bars, violations, roles = _intervals(records)
    roles.update(cpu_names or {})
    cpus = sorted(roles) or [0]
    row = {cpu: i for i, cpu in enumerate(cpus)}
    classes = sorted({b.label for b in bars if b.kind == "hold"})
    colour = {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(classes)}

    fig = Figure(figsize=(11, 1.6 + 0.8 * len(cpus)))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    # draw outer holds first so nested (thinner) ones land on top
    for b in sorted(bars, key=lambda b: (b.kind != "wait", b.depth, b.start_ns,
                                          b.cpu, b.kind, b.label)):
        y, x, w = row[b.cpu], b.start_ns / 1000, (b.end_ns - b.start_ns) / 1000
        if b.kind == "hold":
            h = max(0.6 - 0.15 * b.depth, 0.15)
            ax.barh(y, w, left=x, height=h, color=colour[b.label],
                    edgecolor="black", linewidth=0.4)
        elif b.kind == "wait":
            ax.barh(y, w, left=x, height=0.6, color=WAIT_COLOUR,
                    hatch="///", edgecolor="#666666", linewidth=0.4)
        else:
            ax.barh(y + 0.36, w, left=x, height=0.1, color="none",
                    edgecolor=IRQ_COLOUR, linewidth=1.0)
    for time_ns, kind in violations:
        ax.axvline(time_ns / 1000, color=VIOLATION_COLOUR, linewidth=1.2)
        ax.text(time_ns / 1000, -0.55, " " + kind, color=VIOLATION_COLOUR,
                fontsize=8, va="bottom", ha="left", rotation=0)

    ax.set_yticks(range(len(cpus)))
    ax.set_yticklabels([f"CPU{c} {roles[c]}" if roles.get(c) else f"CPU{c}"
                        for c in cpus])
    ax.set_xlim(left=0)
    ax.set_ylim(len(cpus) - 0.5, -0.8)
    ax.set_xlabel("simulated time (µs)")
    ax.grid(axis="x", linewidth=0.3, alpha=0.5)
    if title:
        ax.set_title(title)
    handles = [Patch(facecolor=colour[c], edgecolor="black", label=c)
               for c in classes]
    if any(b.kind == "wait" for b in bars):
        handles.append(Patch(facecolor=WAIT_COLOUR, hatch="///",
                             edgecolor="#666666", label="wait"))
    if any(b.kind == "irq" for b in bars):
        handles.append(Patch(facecolor="none", edgecolor=IRQ_COLOUR, label="irq"))
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  fontsize=8, frameon=False, title="lock class", title_fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110, metadata={"Software": None})


def _intervals(records: Iterable[TraceRecord]):
    """Bars, violations (time, kind) and CPU roles, from the records.

    A CPU's role is the first thread it begins ("" if none).
    """
    bars: list[_Bar] = []
    violations: list[tuple[int, str]] = []
    # per CPU: open holds and irqs as (kind, name, start_ns, depth)
    open_: dict[int, list[tuple[str, str, int, int]]] = {}
    last_ns: dict[int, int] = {}
    roles: dict[int, str] = {}
    for rec in records:
        if not roles.get(rec.cpu):
            roles[rec.cpu] = rec.target if rec.action == "thread-begin" else ""
        stack = open_.setdefault(rec.cpu, [])
        end = rec.time_ns + (rec.dur_ns if rec.action in ("wait", "work") else 0)
        last_ns[rec.cpu] = max(last_ns.get(rec.cpu, 0), end)
        a = rec.action
        if a in ("acquire", "irq-begin"):
            kind = "hold" if a == "acquire" else "irq"
            depth = sum(1 for s in stack if s[0] == "hold")
            stack.append((kind, rec.target, rec.time_ns, depth))
        elif a in ("release", "irq-end"):
            kind = "hold" if a == "release" else "irq"
            for i in range(len(stack) - 1, -1, -1):
                if stack[i][0] == kind and stack[i][1] == rec.target:
                    k, name, start, depth = stack.pop(i)
                    bars.append(_bar(k, rec.cpu, start, rec.time_ns, name, depth))
                    break
        elif a == "wait":
            bars.append(_Bar("wait", rec.cpu, rec.time_ns, end, rec.target, 0))
        elif a == "violation":
            violations.append((rec.time_ns, rec.target))
    # close what is still open at the last time seen on that CPU
    for cpu in sorted(open_):
        for k, name, start, depth in open_[cpu]:
            bars.append(_bar(k, cpu, start, last_ns[cpu], name, depth))
    return bars, violations, roles


def _bar(kind: str, cpu: int, start: int, end: int, name: str, depth: int) -> _Bar:
    label = lock_class(name) if kind == "hold" else name
    return _Bar(kind, cpu, start, max(start, end), label, depth)
