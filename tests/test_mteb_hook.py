"""The .pth hook for ``mteb run -t XQuADR``: cheap, switchable off, and never breaking ``import mteb``.

Each case runs a fresh interpreter that starts with the hook off (so the venv's own installed .pth
does nothing), then processes a copy of the plugin's .pth like an install does, with the switch as
the case wants it.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mteb")

REPO = Path(__file__).resolve().parents[1]
PTH = REPO / "hybrid_plugin_mteb.pth"
HOOK = REPO / "_hybrid_plugin_mteb.py"
SWITCH = "HYBRID_PLUGIN_MTEB_AUTOREGISTER"


def pythonpath(*first: Path) -> str:
    """``first``, then the caller's PYTHONPATH (e.g. another mteb version under test)."""
    kept = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return os.pathsep.join([*map(str, first), *kept])


PROBE = """
import os, site, sys
os.environ[{switch!r}] = {value!r}
{before}
meta_path = list(sys.meta_path)
site.addsitedir({site!r})
print("hook", "_hybrid_plugin_mteb" in sys.modules, len(sys.meta_path) - len(meta_path))
import mteb
registry = getattr(sys.modules["mteb.get_tasks"], "_TASKS_REGISTRY", None) or {{}}
print("tasks", "XQuADR" in registry, "MLQAR" in registry)
print("builtin", mteb.get_task("NFCorpus").metadata.name, mteb.get_benchmark("MTEB(eng, v2)").name)
names = [b.name for b in mteb.get_benchmarks()]
print("benchmark", "LAReQA" in names)
print("torch", "torch" in sys.modules)
print("after", sum(type(f).__name__ == "MTEBImportHook" for f in sys.meta_path))
"""


def site_dir(tmp_path: Path) -> Path:
    """A folder holding the .pth line and the hook module, as an install writes them."""
    folder = tmp_path / "site"
    folder.mkdir(exist_ok=True)
    for source in (PTH, HOOK):
        (folder / source.name).write_text(source.read_text())
    return folder


def probe(tmp_path: Path, value: str = "1", before: str = "", env: dict | None = None) -> tuple[dict, str]:
    code = PROBE.format(switch=SWITCH, value=value, before=before, site=str(site_dir(tmp_path)))
    run_env = os.environ | {SWITCH: "0", "PYTHONPATH": pythonpath(REPO)} | (env or {})
    proc = subprocess.run(
        [sys.executable, "-c", code], env=run_env, capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    ours = [line for line in proc.stderr.splitlines() if "hybrid-plugin" in line or "Traceback" in line]
    return lines, "\n".join(ours)


def test_pth_line_reads_the_switch_before_any_import():
    """With the switch off, the .pth line imports nothing: it only reads the environment."""
    line = PTH.read_text().strip()
    assert line.startswith("import os;") and line.count("\n") == 0
    switch_at, import_at = line.index(SWITCH), line.index("__import__")
    assert switch_at < import_at and " or " in line[switch_at:import_at]


def test_hook_is_stdlib_only_and_never_imported_back():
    """The hook imports the standard library, and the plugin only inside its one call; no plugin
    module imports the hook, and nothing relies on the interpreter's private import state."""
    imports = {
        (node.col_offset == 0, alias.name if isinstance(node, ast.Import) else node.module)
        for node in ast.walk(ast.parse(HOOK.read_text()))
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }
    assert {name for top, name in imports if top} <= {"__future__", "os", "sys"}
    assert {name for top, name in imports if not top} == {"hybrid_plugin.integrations.mteb"}
    for path in (REPO / "hybrid_plugin").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module] if isinstance(node, ast.ImportFrom) else []
            assert "_hybrid_plugin_mteb" not in names, path
            private = getattr(node, "attr", None) or getattr(node, "value", None)
            assert private != "_initializing", path


@pytest.mark.slow  # each case starts an interpreter that imports mteb (seconds)
def test_hook_registers_tasks_and_benchmark_without_torch(tmp_path):
    lines, stderr = probe(tmp_path)
    assert lines["hook"] == "True 1" and lines["tasks"] == "True True" and lines["benchmark"] == "True"
    assert lines["torch"] == "False", "registering must not import torch"
    assert lines["after"] == "0", "the hook leaves sys.meta_path once it has called the plugin"
    assert stderr == ""


@pytest.mark.slow
def test_switched_off_costs_nothing(tmp_path):
    lines, stderr = probe(tmp_path, value="0")
    assert lines["hook"] == "False 0"  # not even the hook module was imported
    assert lines["tasks"] == "False False" and lines["benchmark"] == "False" and stderr == ""


@pytest.mark.slow
def test_broken_data_path_changes_nothing(tmp_path):
    """Registering reads no data: a wrong $HYBRID_PLUGIN_DATA matters only when a task is evaluated."""
    lines, stderr = probe(tmp_path, env={"HYBRID_PLUGIN_DATA": str(tmp_path / "no" / "such")})
    assert lines["tasks"] == "True True" and stderr == ""


@pytest.mark.slow
def test_missing_dependency_is_one_line(tmp_path):
    """A module the tasks need (and mteb does not) is missing: one line, mteb works on."""
    lines, stderr = probe(tmp_path, before="sys.modules['tomllib'] = sys.modules['tomli'] = None")
    assert lines["tasks"] == "False False" and lines["builtin"] == "NFCorpus MTEB(eng, v2)"
    assert stderr.count("\n") == 0 and stderr.startswith(
        "hybrid-plugin: XQuADR/MLQAR not registered with mteb"
    )
    assert "cannot import tomllib" in stderr and f"{SWITCH}=0 silences this" in stderr


@pytest.mark.slow
def test_unimportable_hybrid_plugin_is_one_line(tmp_path):
    """A moved editable checkout: hybrid_plugin cannot be imported; one line when mteb is, not at start."""
    lines, stderr = probe(tmp_path, before="sys.modules['hybrid_plugin'] = None")
    assert lines["hook"] == "True 1"
    assert lines["tasks"] == "False False" and lines["builtin"] == "NFCorpus MTEB(eng, v2)"
    assert stderr.count("\n") == 0 and "hybrid-plugin: XQuADR/MLQAR not registered with mteb" in stderr
    assert "hybrid_plugin" in stderr.split("(", 1)[1]


@pytest.mark.slow
def test_changed_mteb_registry_is_one_line(tmp_path):
    """An mteb whose task registry moved (here a stand-in package): one line naming the supported versions."""
    fake = tmp_path / "fake" / "mteb"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        "from . import get_tasks\n"
        "def get_task(name):\n    return type('T', (), {'metadata': type('M', (), {'name': name})})()\n"
        "def get_benchmark(name):\n    return type('B', (), {'name': name})()\n"
        "def get_benchmarks():\n    return []\n"
    )
    (fake / "get_tasks.py").write_text("TASK_REGISTRY = {}  # renamed\n_TASKS_REGISTRY = None\n")
    env = {"PYTHONPATH": pythonpath(fake.parent, REPO)}
    lines, stderr = probe(tmp_path, env=env)
    assert lines["tasks"] == "False False" and lines["builtin"] == "NFCorpus MTEB(eng, v2)"
    assert stderr.count("\n") == 0
    assert stderr.startswith("hybrid-plugin: cannot register XQuADR, MLQAR with mteb ")
    assert "no _TASKS_REGISTRY dict" in stderr and "supported: mteb>=2.26,<3" in stderr
