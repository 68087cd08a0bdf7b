"""The lock-order graph of many runs: merging, cycles, DOT and PNG.

One run's witness sees only the orders that run happened to take.  WITNESS
in a kernel that stays up for days sees them all, so ``smpvm lor`` runs a
scenario many times and merges what each run learned into one graph:
edges add up their counts and keep the sites of the first run that took
them.  A reversal whose two orders were learned in different runs shows up
only here, so the merged graph is searched for strong cycles (the same
search witness does on each new edge) and for interrupt-level conflicts.

Findings are counted across runs: a reversal reported by witness in 37 of 50
runs has count 37; one that exists only in the merged graph has count 0 and
says so.  Rendering imports networkx, pydot and matplotlib, so nothing here
is loaded by a plain ``smpvm run``.
"""

from __future__ import annotations

import shutil

from ..lockorder import (EN, ER, SN, SR, TAKEN_RECURSIVE, spl_conflicts, spl_name, strong_path,
                      type_bits, type_names)

#: Violation kinds that are witness's business: any of them makes ``lor`` exit 1.
LOCK_KINDS = ("lock-order-reversal", "spl-violation", "sleep-with-spinlock", "sleep-in-atomic", "recursion",
              "unlock-not-held", "held-lock-freed")


class MergedEdge:
    """One edge a -> b of the merged graph."""

    __slots__ = ("a", "b", "first_site", "second_site", "cpu", "ctx", "origin", "count",
                 "runs", "declared", "types", "blessed", "reversal")

    def __init__(self, a, b, d, origin):
        self.a = a
        self.b = b
        #: Sites of the held and the taken lock where the edge was first seen.
        self.first_site = d.get("first_site", "")
        self.second_site = d.get("second_site", "")
        #: CPU and context that first took this order.
        self.cpu = d.get("cpu", -1)
        self.ctx = d.get("ctx", "")
        #: The run that first took it: {"target", "run", "seed"}.
        self.origin = dict(origin)
        #: Acquisitions in this order, over all runs.
        self.count = 0
        #: Runs that took it at least once.
        self.runs = 0
        self.declared = bool(d.get("declared", False))
        #: Dependency type bits (witness's EN, ER, SN, SR), over all runs.
        self.types = 0
        self.blessed = bool(d.get("blessed", False))
        #: Part of a reported cycle (drawn so that it stands out).
        self.reversal = False

    def as_dict(self) -> dict:
        return {"from": self.a, "to": self.b, "first_site": self.first_site,
                "second_site": self.second_site, "cpu": self.cpu, "ctx": self.ctx,
                "first_run": self.origin, "count": self.count, "runs": self.runs,
                "declared": self.declared, "types": type_names(self.types),
                "blessed": self.blessed, "reversal": self.reversal}


class Finding:
    """One distinct finding (a reversal, an spl or sleep violation...), over all runs."""

    def __init__(self, kind, key, message, first, extra):
        self.kind = kind
        self.key = key
        #: The message of the first report.
        self.message = message
        #: Where it was first reported: origin plus CPU, context, location, choices.
        self.first = first
        #: Kind-specific data of the first report (cycle, sites, ...).
        self.extra = extra
        #: Runs in which witness reported it.
        self.count = 0
        #: Of those, how many per target (in first-seen order), when runs name one.
        self.by_target: dict[str, int] = {}
        #: Found only by searching the merged graph (its orders came from different runs).
        self.merged_only = False

    def as_dict(self) -> dict:
        d = {"kind": self.kind, "message": self.message, "count": self.count,
             "merged_only": self.merged_only, "first": self.first}
        if self.by_target:
            d["by_target"] = dict(self.by_target)
        if self.extra.get("report"):
            d["report"] = self.extra["report"]
        if self.kind == "lock-order-reversal":
            d["cycle"] = list(self.extra.get("cycle", []))
            d["sites"] = list(self.extra.get("sites", []))
            if "types" in self.extra:
                d["types"] = self.extra["types"]
        else:
            d["extra"] = self.extra
        return d


class LorGraph:
    """Lock-order graph merged over runs; see the module docstring."""

    def __init__(self) -> None:
        #: class -> {successor -> MergedEdge}, in first-seen order.
        self.edges: dict[str, dict[str, MergedEdge]] = {}
        #: class -> kind ("?" for classes known only from a declared order).
        self.classes: dict[str, str] = {}
        #: class -> [two marks] as in Witness.safe / Witness.unsafe, merged.
        self.safe: dict[str, list] = {}
        self.unsafe: dict[str, list] = {}
        #: key -> Finding, in first-seen order.
        self.findings: dict[tuple, Finding] = {}
        #: Runs merged.
        self.runs = 0
        #: Runs merged per target, for runs whose origin names one.
        self.runs_by_target: dict[str, int] = {}

    # -- merging ----------------------------------------------------------------------

    def add_witness(self, w, origin=None, violations=None) -> None:
        """Merge one run from its Witness (the full graph, with types and usage)."""
        if violations is None:
            violations = w.m.violations
        self.add_run(w.edge_list(), w.classes, violations, w.usage_list(), origin)

    def add_result(self, r, origin=None) -> None:
        """Merge one run from its RunResult (edges without types count as strong)."""
        self.add_run(r.witness_edges, r.witness_classes, r.violations,
                     getattr(r, "witness_usage", None), origin)

    def add_run(self, edges, classes, violations, usage=None, origin=None) -> None:
        origin = dict(origin or {"run": self.runs})
        self.runs += 1
        if "target" in origin:
            t = origin["target"]
            self.runs_by_target[t] = self.runs_by_target.get(t, 0) + 1
        for cls, kind in classes.items():
            if self.classes.get(cls, "?") == "?":
                self.classes[cls] = kind
        for d in edges:
            self._merge_edge(d, origin)
        for cls, marks in (usage or {}).items():
            self._merge_usage(cls, marks)
        seen = set()
        for v in violations:
            self._merge_violation(v, origin, seen)

    def _merge_edge(self, d, origin) -> None:
        a, b = d["from"], d["to"]
        for cls in (a, b):
            self.classes.setdefault(cls, "?")
            self.edges.setdefault(cls, {})
        e = self.edges[a].get(b)
        if e is None:
            e = self.edges[a][b] = MergedEdge(a, b, d, origin)
        elif e.first_site == "declared" and d.get("first_site", "declared") != "declared":
            # A declared edge first seen taken in this run: remember where.
            e.first_site, e.second_site = d.get("first_site", ""), d.get("second_site", "")
            e.cpu, e.ctx, e.origin = d.get("cpu", -1), d.get("ctx", ""), dict(origin)
        count = int(d.get("count", 0))
        e.count += count
        e.runs += 1 if count else 0
        e.types |= type_bits(d.get("types"))
        e.blessed = e.blessed or bool(d.get("blessed", False))
        e.reversal = e.reversal or bool(d.get("reversal", False))

    def _merge_usage(self, cls, marks) -> None:
        for mark in marks.get("safe", ()):
            self._keep(self.safe, cls, mark["read"], (mark["level"], mark["site"], mark["ctx"]),
                       lambda new, old: new[0] > old[0])
        for mark in marks.get("unsafe", ()):
            self._keep(self.unsafe, cls, mark["read"], (mark["spl"], mark["site"], mark["ctx"]),
                       lambda new, old: new[0] < old[0])

    @staticmethod
    def _keep(table, cls, read, mark, better) -> None:
        marks = table.setdefault(cls, [None, None])
        old = marks[int(read)]
        if old is None or better(mark, old):
            marks[int(read)] = mark

    def _merge_violation(self, v, origin, seen) -> None:
        extra = v.extra or {}
        if extra.get("key"):
            key = tuple(extra["key"])
        else:
            key = (v.kind, v.location)
        f = self.findings.get(key)
        if f is None:
            first = dict(origin)
            first.update({"cpu": v.cpu, "ctx": v.ctx, "location": v.location,
                          "time_ns": v.time_ns, "choices": list(v.choices)})
            f = self.findings[key] = Finding(v.kind, key, v.message, first, dict(extra))
        if key not in seen:
            seen.add(key)
            f.count += 1
            if "target" in origin:
                t = origin["target"]
                f.by_target[t] = f.by_target.get(t, 0) + 1

    # -- searching the merged graph -------------------------------------------------------

    def search(self) -> None:
        """Add the cycles and interrupt-level conflicts that only the merged graph shows."""
        for a, succ in self.edges.items():
            for b, e in succ.items():
                if not e.blessed:
                    self._search_cycle(a, b, e)
        for a, safe, b, unsafe, chain in spl_conflicts(self.edges, self.safe, self.unsafe):
            key = ("spl", a, b)
            if key not in self.findings:
                self._add_merged_spl(key, a, safe, b, unsafe, chain)
        self._mark_reversal_edges()

    def _search_cycle(self, a, b, e) -> None:
        for bit in (EN, ER, SN, SR):
            if not e.types & bit:
                continue
            found = strong_path(self.edges, b, a, bool(bit & TAKEN_RECURSIVE),
                                bool(bit & (SN | SR)))
            if found is None:
                continue
            path, _ = found
            cycle = [a] + path
            key = ("lor",) + tuple(sorted(set(cycle)))
            if key in self.findings:
                return
            sites = []
            for x, y in zip(cycle, cycle[1:]):
                m = self.edges[x][y]
                sites.append({"edge": [x, y], "first": m.first_site, "second": m.second_site,
                              "cpu": m.cpu, "ctx": m.ctx, "declared": m.declared,
                              "run": m.origin})
            runs = sorted({_run_label(s["run"]) for s in sites})
            msg = (f"lock order reversal across runs: cycle {' -> '.join(cycle)}; "
                   + "; ".join(f"{s['edge'][0]} @ {s['first'] or '?'} -> {s['edge'][1]} @ "
                               f"{s['second'] or '?'} ({_run_label(s['run'])})" for s in sites))
            f = Finding("lock-order-reversal", key, msg, sites[0]["run"],
                        {"cycle": cycle, "sites": sites, "runs": runs})
            f.merged_only = True
            self.findings[key] = f
            return

    def _add_merged_spl(self, key, a, safe, b, unsafe, chain) -> None:
        msg = (f"{a} is taken in interrupt handler {safe[2]} at {spl_name(safe[0])} @ "
               f"{safe[1] or '?'}, reaches {' -> '.join(chain[1:]) or a}, and {b} is taken "
               f"with {spl_name(safe[0])} unmasked ({spl_name(unsafe[0])}) @ {unsafe[1] or '?'}"
               f" (learned in different runs)")
        f = Finding("spl-violation", key, msg, {}, {
            "chain": chain, "safe": {"class": a, "level": safe[0], "site": safe[1]},
            "unsafe": {"class": b, "spl": unsafe[0], "site": unsafe[1]}})
        f.merged_only = True
        self.findings[key] = f

    def _mark_reversal_edges(self) -> None:
        for f in self.reversals():
            cycle = f.extra.get("cycle", [])
            for x, y in zip(cycle, cycle[1:]):
                e = self.edges.get(x, {}).get(y)
                if e is not None:
                    e.reversal = True

    # -- views ----------------------------------------------------------------------------

    def reversals(self) -> list[Finding]:
        return [f for f in self.findings.values() if f.kind == "lock-order-reversal"]

    def lock_findings(self) -> list[Finding]:
        """Everything witness found (reversals first): what makes ``lor`` exit 1."""
        rest = [f for f in self.findings.values()
                if f.kind in LOCK_KINDS and f.kind != "lock-order-reversal"]
        return self.reversals() + rest

    def other_findings(self) -> list[Finding]:
        return [f for f in self.findings.values() if f.kind not in LOCK_KINDS]

    def edge_objects(self) -> list[MergedEdge]:
        return [e for succ in self.edges.values() for e in succ.values()]

    def to_json(self) -> dict:
        return {
            "classes": [{"name": cls, "kind": kind} for cls, kind in self.classes.items()],
            "edges": [e.as_dict() for e in self.edge_objects()],
            "reversals": [f.as_dict() for f in self.reversals()],
            "violations": [f.as_dict() for f in self.lock_findings()
                           if f.kind != "lock-order-reversal"],
            "other_violations": [f.as_dict() for f in self.other_findings()],
        }

    def to_networkx(self):
        """A networkx DiGraph: nodes carry their kind, edges their first sites and counts."""
        import networkx as nx
        g = nx.DiGraph()
        for cls, kind in self.classes.items():
            g.add_node(cls, kind=kind, label=cls if kind == "?" else f"{cls}\n({kind})")
        for e in self.edge_objects():
            g.add_edge(e.a, e.b, first_site=e.first_site, second_site=e.second_site,
                       count=e.count, runs=e.runs, types=",".join(type_names(e.types)),
                       declared=e.declared, reversal=e.reversal,
                       label=f"{_where(e)}\n\u00d7{e.count}",
                       color="red" if e.reversal else ("#666666" if e.declared else "black"),
                       penwidth=2.5 if e.reversal else 1.0,
                       style="dashed" if e.declared and not e.count else "solid")
        return g

    # -- files ------------------------------------------------------------------------------

    def write_dot(self, path: str) -> None:
        """Graphviz DOT through networkx and pydot; reversal edges are red and thick."""
        import networkx as nx
        nx.nx_pydot.write_dot(self._dot_graph(), path)

    def write_png(self, path: str) -> str:
        """A PNG: graphviz ``dot`` when installed, else matplotlib.  Returns which."""
        if shutil.which("dot"):
            import networkx as nx
            nx.nx_pydot.to_pydot(self._dot_graph()).write_png(path)
            return "graphviz"
        _draw_matplotlib(self.to_networkx(), path)
        return "matplotlib"

    def _dot_graph(self):
        """``to_networkx`` with every name and text quoted for DOT (pydot would not)."""
        import networkx as nx
        g = self.to_networkx()
        d = nx.DiGraph()
        d.graph["graph"] = {"rankdir": "LR",
                            "label": _dot_str("lock order: first sites and count per edge")}
        d.graph["node"] = {"shape": "box", "fontname": "Helvetica"}
        d.graph["edge"] = {"fontname": "Helvetica", "fontsize": "9"}
        for n, attrs in g.nodes(data=True):
            d.add_node(_dot_str(n), **{k: _dot_value(v) for k, v in attrs.items()})
        for u, v, attrs in g.edges(data=True):
            d.add_edge(_dot_str(u), _dot_str(v), **{k: _dot_value(x) for k, x in attrs.items()})
        return d


def read_dot(path: str):
    """A DOT file written by ``write_dot`` back as a DiGraph with the original names and values."""
    import warnings

    import networkx as nx
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the DOT parser's own deprecation notices
        m = nx.nx_pydot.read_dot(path)
    g = nx.DiGraph()
    for n, attrs in m.nodes(data=True):
        g.add_node(_undot(n), **{k: _undot(v) for k, v in attrs.items()})
    for u, v, attrs in m.edges(data=True):
        data = {k: _undot(x) for k, x in attrs.items()}
        for k in ("count", "runs"):
            if k in data:
                data[k] = int(data[k])
        for k in ("declared", "reversal"):
            if k in data:
                data[k] = data[k] == "True"
        g.add_edge(_undot(u), _undot(v), **data)
    return g


def _where(e) -> str:
    if e.declared and not e.count:
        return "declared"
    return _short_sites(e.first_site, e.second_site)


def _short_sites(first: str, second: str) -> str:
    """``file.py:10 / :12`` when both sites are in one file."""
    f1, _, l1 = (first or "?").rpartition(":")
    f2, _, l2 = (second or "?").rpartition(":")
    if f1 and f1 == f2:
        return f"{f1.rsplit('/', 1)[-1]}:{l1} / :{l2}"
    return f"{first or '?'} / {second or '?'}"


def _dot_str(s: str) -> str:
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _dot_value(v):
    return _dot_str(v) if isinstance(v, str) else str(v)


def _undot(s):
    if not isinstance(s, str):
        return s
    if len(s) >= 2 and s[0] == s[-1] == '"':
        s = s[1:-1]
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 1 < len(s):
            nxt = s[i + 1]
            out.append("\n" if nxt == "n" else nxt)
            i += 2
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def _run_label(origin) -> str:
    if not origin:
        return "declared"
    return f"run {origin.get('run', '?')} seed {origin.get('seed', '?')}"


def _draw_matplotlib(g, path: str) -> None:
    """Draw with matplotlib's object API (no pyplot state), circular layout for determinism."""
    import networkx as nx
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    n = max(1, g.number_of_nodes())
    fig = Figure(figsize=(4 + 1.6 * n ** 0.5 * 2, 3 + 1.6 * n ** 0.5 * 2), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(111)
    ax.set_axis_off()
    ax.set_title("lock order: first site and count per edge; reversals in red", fontsize=9)
    pos = nx.circular_layout(g) if n > 2 else nx.spring_layout(g, seed=1)
    labels = {v: d.get("label", v) for v, d in g.nodes(data=True)}
    # Class names sit in boxes that fit them; edges stop short of the box.
    nx.draw_networkx_labels(g, pos, labels=labels, ax=ax, font_size=7,
                            bbox={"boxstyle": "round,pad=0.5", "fc": "#dde8f5", "ec": "#345"})
    edges = list(g.edges(data=True))
    style = "arc3,rad=0.18"
    nx.draw_networkx_edges(g, pos, ax=ax, edgelist=[(u, v) for u, v, _ in edges],
                           edge_color=[d["color"] for _, _, d in edges],
                           width=[d["penwidth"] for _, _, d in edges],
                           style=["dashed" if d["style"] == "dashed" else "solid"
                                  for _, _, d in edges],
                           arrows=True, arrowsize=14, node_size=3200, node_shape="s",
                           connectionstyle=style)
    nx.draw_networkx_edge_labels(
        g, pos, ax=ax, font_size=6, connectionstyle=style,
        edge_labels={(u, v): d["label"] for u, v, d in edges},
        font_color="#222", bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none",
                                 "alpha": 0.85})
    # one legend entry per edge style, so solid, dashed and red read without a key elsewhere
    from matplotlib.lines import Line2D
    ax.legend(handles=[
        Line2D([], [], color="black", lw=1.0, label="order taken (first site, count)"),
        Line2D([], [], color="#666666", lw=1.0, ls="--", label="declared, never taken"),
        Line2D([], [], color="red", lw=2.5, label="part of a reversal")],
        loc="lower center", bbox_to_anchor=(0.5, -0.02), ncol=3, fontsize=7, frameon=False)
    fig.tight_layout()
    fig.savefig(path)


def witness_digraph(witness):
    """One run's class graph (a ``Witness``) as a networkx DiGraph."""
    lg = LorGraph()
    lg.add_witness(witness)
    return lg.to_networkx()
