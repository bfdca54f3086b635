"""The import graph of the package and its interpreter-start hook: size, circles, upward arrows.

Usage: python benchmarks/import_graph.py [--root CHECKOUT] [--place OLD=NEW ...] [--json OUT]

Prints the number of modules and import arrows, the circles (strongly connected components of more
than one module, and of more than one folder when modules are merged into their top folder), the arrows
pointing up the layers, and the 10 largest modules in lines. The graph and the layers are the ones
tests/test_layers.py checks (loaded from this checkout, one definition); ``--root`` reads another
checkout's code with them, and ``--place retrievers=scoring`` puts a folder that layer map does not
know into a known folder's layer (for code from before a move).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def load_layers():
    """tests/test_layers.py of this checkout, as a module (its graph functions and LAYERS)."""
    spec = importlib.util.spec_from_file_location("test_layers", REPO / "tests" / "test_layers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def folder_graph(graph: dict[str, set[str]], package: str) -> dict[str, set[str]]:
    """Modules merged into their top folder (``hybrid_plugin.scoring.dense`` -> ``hybrid_plugin.scoring``)."""

    def folder(m: str) -> str:
        parts = m.split(".")
        return ".".join(parts[:2]) if parts[0] == package and len(parts) > 2 else m

    out: dict[str, set[str]] = {}
    for a, targets in graph.items():
        out.setdefault(folder(a), set()).update(folder(b) for b in targets if folder(b) != folder(a))
    return out


def measure(root: Path, places: dict[str, str]) -> dict:
    tl = load_layers()
    graph = tl.import_graph(root)
    mods = tl.modules(root)

    def place(module: str) -> int | None:
        for old, new in places.items():
            prefix = f"{tl.PACKAGE}.{old}"
            if module == prefix or module.startswith(prefix + "."):
                module = f"{tl.PACKAGE}.{new}" + module[len(prefix) :]
        return tl.layer(module)

    lines = {m: len(p.read_text(encoding="utf-8").splitlines()) for m, p in mods.items()}
    largest = sorted(lines.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    return {
        "modules": len(graph),
        "arrows": sum(len(t) for t in graph.values()),
        "circles": tl.circles(graph),
        "folder_circles": tl.circles(folder_graph(graph, tl.PACKAGE)),
        "upward": tl.upward(graph, place),
        "unplaced": sorted(m for m in graph if place(m) is None),
        "largest": [{"module": m, "lines": n} for m, n in largest],
        "lines": sum(lines.values()),
    }


def show(report: dict) -> str:
    out = [
        f"modules: {report['modules']} ({report['lines']} lines), import arrows: {report['arrows']}",
        f"circles (modules): {len(report['circles'])}",
        *(f"  {len(c)}: {', '.join(c)}" for c in report["circles"]),
        f"circles (top folders): {len(report['folder_circles'])}",
        *(f"  {len(c)}: {', '.join(c)}" for c in report["folder_circles"]),
        f"arrows up the layers: {len(report['upward'])}",
        *(f"  {a}" for a in report["upward"]),
    ]
    if report["unplaced"]:
        out.append(f"in no layer (not checked): {', '.join(report['unplaced'])}")
    out.append("largest modules (lines):")
    out.extend(f"  {r['lines']:5d} {r['module']}" for r in report["largest"])
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=REPO, help="checkout to read (default: this one)")
    parser.add_argument(
        "--place", action="append", default=[], metavar="OLD=NEW", help="folder OLD in NEW's layer"
    )
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    places = dict(p.split("=", 1) for p in args.place)
    report = measure(args.root.resolve(), places)
    print(show(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
