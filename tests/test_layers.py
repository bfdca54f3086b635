"""The package's import graph: no cycles, and every import points down the layers of DESIGN.md §7."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "hybrid_plugin"

# lowest first; a module may import its own layer or lower ones (longest prefix decides the layer)
LAYERS: list[tuple[str, ...]] = [
    ("hybrid_plugin", "errors", "escape", "atomic", "paths", "provenance", "progress"),
    ("data", "outputs"),  # outputs: where a command may write, what proves a folder ours
    ("models",),
    ("evaluation.ranking", "evaluation.tiles", "evaluation.store", "evaluation.measures"),  # kernel, cache
    ("retrievers", "baselines"),
    ("evaluation",),  # engine, per-query table, typed results, API, report
    ("stats", "integrations", "leaderboard", "training"),
    ("cli", "__main__", "api"),  # api: the public functions hybrid_plugin re-exports lazily
]
FORBIDDEN = [
    ("leaderboard", "training"),
    ("training", "leaderboard"),
    ("leaderboard", "integrations"),
    # statistics read results (evaluation) and data only
    *(("stats", other) for other in ("integrations", "leaderboard", "training")),
]


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                targets = [base, *(f"{base}.{a.name}" for a in node.names)]
            else:
                continue
            for target in targets:
                while target and target not in mods:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def layer(module: str) -> int:
    short = module.removeprefix("hybrid_plugin.") if module != "hybrid_plugin" else "hybrid_plugin"
    best, depth = None, -1
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (short == prefix or short.startswith(prefix + ".")) and len(prefix) > depth:
                best, depth = i, len(prefix)
    assert best is not None, f"{module} is in no layer: add it to LAYERS"
    return best


def test_no_import_cycles():
    graph = import_graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_imports_point_down():
    upward = [
        f"{a} -> {b}"
        for a, targets in import_graph().items()
        for b in sorted(targets)
        if layer(b) > layer(a)
        or any(
            a.startswith(f"hybrid_plugin.{x}") and b.startswith(f"hybrid_plugin.{y}") for x, y in FORBIDDEN
        )
    ]
    assert upward == []


def test_the_checker_sees_an_upward_import():
    """The layer map is not vacuous: the evaluator importing the CLI would be flagged."""
    assert layer("hybrid_plugin.evaluation.engine") > layer("hybrid_plugin.evaluation.ranking")
    assert (
        layer("hybrid_plugin.cli")
        > layer("hybrid_plugin.integrations.beir")
        > layer("hybrid_plugin.evaluation")
    )
    assert layer("hybrid_plugin.data.settings") < layer("hybrid_plugin.models.ref")
