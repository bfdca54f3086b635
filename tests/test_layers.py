"""The package's import graph: no circles, and every import points down the layers of DESIGN.md §7.

One layer per folder. The graph (stdlib ``ast``) also covers the interpreter-start hook
``_hybrid_plugin_mteb.py`` beside the package. ``benchmarks/import_graph.py`` prints the same graph's
size, circles and upward arrows from these functions and this ``LAYERS``: one definition of both.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "hybrid_plugin"
HOOK = "_hybrid_plugin_mteb"  # run from hybrid_plugin_mteb.pth at interpreter start: stdlib + the plugin

# lowest first; a module may import its own layer or lower ones (longest prefix decides the layer)
LAYERS: list[tuple[str, ...]] = [
    ("hybrid_plugin", "errors", "escape", "atomic", "paths", "provenance", "progress"),
    ("data", "outputs"),  # outputs: where a command may write, what proves a folder ours
    ("models",),
    ("scoring",),  # retrievers, score matrices, the exact ranking kernel, the embedding store, BM25
    ("evaluation",),  # engine, measures, per-query table, typed results, API, report
    ("stats", "integrations", "leaderboard", "training"),
    ("cli", "__main__", "api", HOOK),  # api: the public functions hybrid_plugin re-exports lazily
]
FORBIDDEN = [
    ("leaderboard", "training"),
    ("training", "leaderboard"),
    ("leaderboard", "integrations"),
    # statistics read results (evaluation) and data only
    *(("stats", other) for other in ("integrations", "leaderboard", "training")),
]


def modules(root: Path = REPO) -> dict[str, Path]:
    """Dotted name -> file of every module of the package, and the hook module if ``root`` has one."""
    out = {}
    for path in (root / PACKAGE).rglob("*.py"):
        parts = path.relative_to(root).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    if (root / f"{HOOK}.py").is_file():
        out[HOOK] = root / f"{HOOK}.py"
    return out


def imported_names(name: str, path: Path) -> set[str]:
    """Every absolute name ``path`` imports, deferred imports included (``from a import b``: a and a.b)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            names.update([base, *(f"{base}.{a.name}" for a in node.names)])
    return names


def import_graph(root: Path = REPO) -> dict[str, set[str]]:
    """Module -> the modules of the graph it imports (a name resolves to its longest known prefix)."""
    mods = modules(root)
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        for target in imported_names(name, path):
            while target and target not in mods:
                target = target.rpartition(".")[0]
            if target and target != name:
                graph[name].add(target)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan), each sorted, largest first."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found, key=lambda c: (-len(c), c))


def layer(module: str, layers: list[tuple[str, ...]] = LAYERS) -> int | None:
    """Index in ``layers`` of the longest prefix naming ``module``; None if no layer names it."""
    short = module if module in (PACKAGE, HOOK) else module.removeprefix(f"{PACKAGE}.")
    best, depth = None, -1
    for i, prefixes in enumerate(layers):
        for prefix in prefixes:
            if (short == prefix or short.startswith(prefix + ".")) and len(prefix) > depth:
                best, depth = i, len(prefix)
    return best


def upward(graph: dict[str, set[str]], place=layer) -> list[str]:
    """Arrows ``a -> b`` into a higher layer than ``a``'s, or between layers FORBIDDEN to meet."""

    def forbidden(a: str, b: str) -> bool:
        return any(a.startswith(f"{PACKAGE}.{x}") and b.startswith(f"{PACKAGE}.{y}") for x, y in FORBIDDEN)

    out = []
    for a, targets in sorted(graph.items()):
        for b in sorted(targets):
            la, lb = place(a), place(b)
            if (la is not None and lb is not None and lb > la) or forbidden(a, b):
                out.append(f"{a} -> {b}")
    return out


def test_every_module_has_a_layer():
    assert [m for m in sorted(import_graph()) if layer(m) is None] == []


def test_no_import_circles():
    assert circles(import_graph()) == []


def test_imports_point_down():
    assert upward(import_graph()) == []


def test_the_hook_imports_only_the_standard_library_and_the_plugin():
    names = imported_names(HOOK, REPO / f"{HOOK}.py")
    tops = {n.partition(".")[0] for n in names}
    assert tops - set(sys.stdlib_module_names) == {PACKAGE}


def test_nothing_in_the_package_imports_the_hook():
    assert sorted(m for m, targets in import_graph().items() if HOOK in targets) == []


def test_the_checker_sees_an_upward_import_and_a_circle():
    """The layer map is not vacuous: the engine importing the CLI, or a circle, would be flagged."""
    cli, beir = "hybrid_plugin.cli", "hybrid_plugin.integrations.beir"
    assert layer(cli) > layer(beir) > layer("hybrid_plugin.evaluation.engine")
    assert layer("hybrid_plugin.evaluation.engine") > layer("hybrid_plugin.scoring.ranking")
    assert layer("hybrid_plugin.data.settings") < layer("hybrid_plugin.models.ref")
    assert layer("hybrid_plugin.scoring.dense") > layer("hybrid_plugin.models.encode")
    assert layer("hybrid_plugin.nowhere") is None
    graph = {"hybrid_plugin.scoring.dense": {"hybrid_plugin.evaluation.engine"}}
    assert upward(graph) == ["hybrid_plugin.scoring.dense -> hybrid_plugin.evaluation.engine"]
    assert upward({"hybrid_plugin.stats.load": {"hybrid_plugin.training.config"}}) != []
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []
