"""What the scaling scripts (scale_run, taskdir_load, store_memory) share: the record they write."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from hybrid_plugin.atomic import write_text

HERE = Path(__file__).resolve().parents[1]


def git_head(folder: Path) -> str:
    """The checkout's commit, with ``+dirty`` if its ``hybrid_plugin`` has uncommitted changes."""
    head = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(
        ["git", "-C", str(folder), "status", "--porcelain", "hybrid_plugin"], capture_output=True, text=True
    )
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def write_record(
    name: str,
    script: str,
    argv: list[str] | None,
    code: Path,
    meta: dict,
    title: str,
    columns: list[str],
    cells: list[list[object]],
    note: str = "",
) -> None:
    """``benchmarks/results/NAME.json`` (``meta`` plus the command, commit, date, machine and load)
    and ``NAME.md`` (a title, the same facts, ``note`` and a table of ``cells``)."""
    command = "python " + " ".join([script, *(argv if argv is not None else sys.argv[1:])])
    with open("/proc/loadavg") as fh:
        load = " ".join(fh.read().split()[:3])
    facts = {
        "command": command,
        "code_commit": git_head(code),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_average_at_end": load,
    }
    out = HERE / "benchmarks" / "results" / name
    write_text(out.with_suffix(".json"), json.dumps({**facts, **meta}, indent=1) + "\n")
    lines = [
        f"# {title}",
        "",
        f"`{command}` (code {facts['code_commit']}, {facts['date']}, {facts['machine']}, load average at "
        f"the end {load})",
        "",
        *([note, ""] if note else []),
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
        *("| " + " | ".join(str(c) for c in row) + " |" for row in cells),
    ]
    write_text(out.with_suffix(".md"), "\n".join(lines) + "\n")


def run_child(code: Path, source: str, *args: str) -> dict:
    """Run ``python -c source args`` in a fresh process importing ``code``'s hybrid_plugin (and this
    checkout's benchmarks), from ``/`` so that the working folder does not shadow ``code``; return
    the JSON object its last output line holds."""
    env = {**os.environ, "PYTHONPATH": f"{Path(code).resolve()}{os.pathsep}{HERE}"}
    proc = subprocess.run(
        [sys.executable, "-c", source, *args], env=env, capture_output=True, text=True, cwd="/"
    )
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    row = json.loads(proc.stdout.splitlines()[-1])
    print(json.dumps(row), file=sys.stderr)
    return row
