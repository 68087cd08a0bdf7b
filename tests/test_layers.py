"""The package by layer: imports point down, never in a circle.

The layer order is written once, here.  Each module of ``smpvm`` belongs to
the layer of its package (or, for top-level modules, its own name); a module
may import from its own layer or any layer below it, never above.  The public
API (``smpvm/__init__.py``) and ``__main__`` sit above everything.
"""

import ast
import os

import networkx as nx

PKG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "smpvm")

#: Highest first.  A name is a top-level module or a subpackage of smpvm.
LAYERS = [
    ["cli", "testing"],
    ["studies"],
    ["search"],
    ["scenario"],
    ["machine"],
    ["locks", "memory", "kernel", "witness", "strategies", "report", "engine"],
    ["ops", "costs", "cpu", "trace", "violations", "lockstat", "current", "lockorder", "seeds"],
]
RANK = {name: i for i, names in enumerate(LAYERS) for name in names}


def modules():
    out = {}
    for dp, _, fs in os.walk(PKG):
        for f in fs:
            if f.endswith(".py"):
                path = os.path.join(dp, f)
                rel = os.path.relpath(path, os.path.dirname(PKG))[:-3].replace(os.sep, ".")
                out[rel.removesuffix(".__init__")] = path
    return out


def imports(mod, path, known):
    tree = ast.parse(open(path, encoding="utf-8").read())
    base = mod.split(".") + (["__init__"] if path.endswith("__init__.py") else [])
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            prefix = node.module or ""
            if node.level:
                prefix = ".".join(base[: len(base) - node.level] + ([prefix] if prefix else []))
            names = [prefix] + [f"{prefix}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            if name in known and name != mod and not mod.startswith(name + "."):
                yield name


def layer(mod):
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else None


def graph():
    mods = modules()
    g = nx.DiGraph()
    for mod, path in sorted(mods.items()):
        g.add_node(mod)
        for dep in imports(mod, path, mods):
            g.add_edge(mod, dep)
    return g


def test_every_module_has_a_layer():
    unplaced = sorted({layer(m) for m in graph() if layer(m) not in RANK
                       and m not in ("smpvm", "smpvm.__main__")})
    assert unplaced == [], f"give these a layer in LAYERS: {unplaced}"


def test_no_import_circle():
    assert list(nx.simple_cycles(graph())) == []


def test_imports_point_down():
    g = graph()
    upward = [(a, b) for a, b in g.edges
              if a not in ("smpvm", "smpvm.__main__") and RANK[layer(a)] > RANK[layer(b)]]
    assert upward == []


def test_no_reach_into_the_machines_private_fields():
    import re
    pattern = re.compile(r"\b(m|machine|self\.m|self\.machine)\._[a-z]")
    found = []
    for mod, path in modules().items():
        if mod == "smpvm.machine":
            continue
        for n, line in enumerate(open(path, encoding="utf-8"), 1):
            if pattern.search(line):
                found.append(f"{os.path.relpath(path, PKG)}:{n}: {line.strip()}")
    assert found == []


def test_the_top_level_stays_small():
    # Past fourteen flat modules a reader cannot tell the layers apart: a new part
    # joins a package (locks/, kernel/, strategies/...) or a module of its layer.
    flat = sorted(f for f in os.listdir(PKG) if f.endswith(".py")
                  and f not in ("__init__.py", "__main__.py"))
    assert len(flat) <= 14, flat
