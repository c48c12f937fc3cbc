"""The import graph of ``promedical/`` has no cycles and no upward imports.

The graph is read from the source with ``ast``, not by importing: every ``import promedical...`` and
``from promedical... import ...`` counts, at module level, inside functions and under ``TYPE_CHECKING`` alike (a late
import hides a dependency from the import machinery, not from a reader). ``from pkg import name`` is an edge to the
module ``pkg.name`` when that is a module, else to ``pkg``. The implicit import of a parent package's
``__init__`` is not counted.

"Upward" follows the data flow of ARCHITECTURE.md, lowest layer first; a module may import from its own layer and
the layers below it, never from a layer above:

0. foundation: the package root (version), ``files`` (JSONL, atomic writes, ``UserError``), ``hashing``,
   ``interrupt``, ``stats``, ``config``, ``runs``, ``models``, ``report_to``, ``machine``: no record type of the
   project;
1. records, the one scoring path and the edge where files become records: ``rubrics/``, ``io`` (reads rubrics,
   responses and verdicts), ``samples/``, ``unscored``;
2. model access and expert labels: ``llm/``, ``labels/``;
3. judging: ``judge/`` (prompts, parsing, LLM judges, the lexical baseline, the ``Judge`` protocol);
4. data curation: ``data/`` (sources, dedup, drafting, preferences, exports, splits, the blind list);
5. the reward model: ``reward/`` (it trains on ``data/``'s splits and reports like ``judge/``);
6. runs, which compose the layers below: ``judge.protocol`` (``load_judge`` knows every backend, the reward model
   included), ``judge.run`` (the runs behind ``judge run`` and ``judge pairwise``), the data pipeline
   (``data.pipeline``, ``data.stages``: its ``label`` stage runs any judge),
   ``rl/``, ``bench/``, ``review/``;
7. the front: ``quickstart``, ``cli/``, ``__main__``.

A module's layer is that of the longest entry below that prefixes its name (the root's entry is the root's alone).
Run this file directly to print the cycles and upward imports found.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "promedical"

LAYERS: dict[str, int] = {
    "promedical": 0, "promedical.files": 0, "promedical.hashing": 0, "promedical.interrupt": 0, "promedical.stats": 0,
    "promedical.config": 0, "promedical.runs": 0, "promedical.models": 0, "promedical.report_to": 0,
    "promedical.machine": 0,
    "promedical.rubrics": 1, "promedical.io": 1, "promedical.samples": 1, "promedical.unscored": 1,
    "promedical.llm": 2, "promedical.labels": 2,
    "promedical.judge": 3,
    "promedical.data": 4,
    "promedical.reward": 5,
    "promedical.judge.protocol": 6, "promedical.judge.run": 6, "promedical.data.pipeline": 6,
    "promedical.data.stages": 6,
    "promedical.rl": 6, "promedical.bench": 6, "promedical.review": 6,
    "promedical.quickstart": 7, "promedical.cli": 7, "promedical.__main__": 7,
}


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name -> source file, for every module of the package."""
    out = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _owner(name: str, known: dict[str, Path]) -> str | None:
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the package modules it imports anywhere in its source (see the module docstring)."""
    known = modules(root)
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        targets: set[str | None] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets.update(_owner(a.name, known) for a in node.names if a.name.split(".")[0] == PACKAGE)
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: resolved against the importing module's package
                    base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                    base = base[: len(base) - node.level + 1]
                    source = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    source = node.module or ""
                if source.split(".")[0] != PACKAGE:
                    continue
                for alias in node.names:
                    full = f"{source}.{alias.name}"
                    targets.add(full if full in known else _owner(source, known))
        graph[name] = {t for t in targets if t is not None and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (each one is at least one import cycle)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan; the graph is a few hundred modules, recursion depth stays small
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def layer(module: str) -> int:
    if module == PACKAGE:
        return LAYERS[PACKAGE]
    # The root's entry covers the root alone: a new top-level module must be given its layer.
    owner = _owner(module, {name: Path() for name in LAYERS if name != PACKAGE})
    if owner is None:
        raise KeyError(f"{module}: no layer declared in LAYERS")
    return LAYERS[owner]


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} (layer {layer(a)}) -> {b} (layer {layer(b)})"
                  for a, targets in graph.items() for b in targets if layer(b) > layer(a))


def _describe(graph: dict[str, set[str]], component: list[str]) -> str:
    members = set(component)
    return "; ".join(f"{a} -> {b}" for a in component for b in sorted(graph[a] & members))


def test_the_graph_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    pkg = tmp_path / PACKAGE
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "a.py").write_text("def f():\n    from promedical.sub import b\n    return b\n")
    (pkg / "sub" / "b.py").write_text("from . import a\nimport promedical.io\n")
    (pkg / "io.py").write_text("")
    graph = import_graph(tmp_path)
    assert graph["promedical.sub.a"] == {"promedical.sub.b"}
    assert graph["promedical.sub.b"] == {"promedical.sub.a", "promedical.io"}
    assert cycles(graph) == [["promedical.sub.a", "promedical.sub.b"]]


def test_every_module_has_a_layer() -> None:
    for name in modules():
        layer(name)


def test_no_import_cycles() -> None:
    graph = import_graph()
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(_describe(graph, c) for c in found)


def test_no_upward_imports() -> None:
    found = upward_imports(import_graph())
    assert not found, "upward imports:\n" + "\n".join(found)


if __name__ == "__main__":
    g = import_graph()
    for c in cycles(g):
        print("cycle:", _describe(g, c))
    for u in upward_imports(g):
        print("upward:", u)
    sys.exit(1 if cycles(g) or upward_imports(g) else 0)
