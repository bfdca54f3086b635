"""Checkpoints that count only when complete, so ``--resume`` never loads half a save.

The trainer (transformers) writes a checkpoint file by file into ``checkpoint-N/``; a kill part-way
leaves a folder that looks like a checkpoint. After every save we write a marker listing each file
and its size (:data:`MARKER`, written last). A checkpoint is complete when its marker matches the
files, or, without a marker (a kill right after the save, or an older hybrid-plugin), when its
files check out: ``trainer_state.json`` (saved last by transformers) parses, every safetensors file
is as long as its header says, and the optimizer and scheduler archives are whole.
"""

from __future__ import annotations

import json
import re
import struct
import zipfile
from pathlib import Path

from hybrid_plugin.atomic import write_text
from hybrid_plugin.errors import UserError

MARKER = "hybrid-plugin-checkpoint.json"
CHECKPOINT = re.compile(r"checkpoint-(\d+)")
TORCH_ARCHIVES = ("optimizer.pt", "scheduler.pt")


def _files(folder: Path) -> dict[str, int]:
    return {
        str(p.relative_to(folder)): p.stat().st_size
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MARKER
    }


def write_marker(folder: Path, step: int, settings: dict | None = None) -> None:
    """Record that ``folder`` holds a finished save (call after every file is written), and the run's
    settings (:meth:`~hybrid_plugin.training.config.TrainConfig.resume_settings`)."""
    record = {"step": step, "files": _files(folder), "settings": settings}
    write_text(folder / MARKER, json.dumps(record, indent=1, allow_nan=False) + "\n")


def changed_settings(checkpoint: str | Path, settings: dict) -> dict[str, dict]:
    """The settings that differ from those ``checkpoint`` was trained with: name → {checkpoint, now}.
    Empty for a checkpoint without recorded settings (an older hybrid-plugin's: nothing to compare)."""
    try:
        recorded = json.loads((Path(checkpoint) / MARKER).read_text(encoding="utf-8")).get("settings")
    except (OSError, ValueError, AttributeError, RecursionError):
        recorded = None
    if not isinstance(recorded, dict):
        return {}
    return {
        name: {"checkpoint": recorded.get(name), "now": value}
        for name, value in settings.items()
        if recorded.get(name) != value
    }


def safetensors_problem(path: Path) -> str | None:
    """Why a safetensors file is not whole (None if its length matches its header)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                return "truncated"
            (n,) = struct.unpack("<Q", head)
            header = json.loads(fh.read(n)) if n < 100 * 2**20 else None
    except (OSError, ValueError, RecursionError):
        return "unreadable header"
    if not isinstance(header, dict):
        return "unreadable header"
    ends = [t["data_offsets"][1] for k, t in header.items() if k != "__metadata__" and isinstance(t, dict)]
    expected = 8 + n + max(ends, default=0)
    size = path.stat().st_size
    return None if size == expected else f"{size} bytes, its header needs {expected}"


def _verify_files(folder: Path) -> str | None:
    state = folder / "trainer_state.json"
    if not state.is_file():
        return "no trainer_state.json (killed while saving)"
    try:
        json.loads(state.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return "trainer_state.json is unreadable"
    weights = sorted(folder.rglob("*.safetensors"))
    if not weights:
        return "no model weights"
    for path in weights:
        why = safetensors_problem(path)
        if why is not None:
            return f"{path.relative_to(folder)}: {why}"
    for name in TORCH_ARCHIVES:
        if not (folder / name).is_file():
            return f"no {name}"
        if not zipfile.is_zipfile(folder / name):
            return f"{name} is truncated"
    return None


def checkpoint_problem(folder: Path) -> str | None:
    """Why ``folder`` is not a complete checkpoint; None when it is."""
    marker = folder / MARKER
    if not marker.is_file():
        return _verify_files(folder)
    try:
        recorded = json.loads(marker.read_text(encoding="utf-8"))["files"]
        recorded = {str(k): int(v) for k, v in recorded.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return f"{MARKER} is unreadable"
    have = _files(folder)
    for name, size in recorded.items():
        if name not in have:
            return f"{name} is missing"
        if have[name] != size:
            return f"{name} has {have[name]} bytes, {size} when saved"
    return None


def newest_complete(checkpoint_dir: Path) -> tuple[Path | None, list[tuple[Path, str]]]:
    """The newest complete checkpoint (or None) and the newer incomplete ones with the reason."""
    found = sorted(
        (
            (int(m[1]), p)
            for p in Path(checkpoint_dir).iterdir()
            if p.is_dir() and (m := CHECKPOINT.fullmatch(p.name))
        ),
        reverse=True,
    )
    skipped = []
    for _, path in found:
        why = checkpoint_problem(path)
        if why is None:
            return path, skipped
        skipped.append((path, why))
    return None, skipped


def resume_from(checkpoint_dir: Path, report: bool = True) -> str:
    """The checkpoint ``--resume`` continues from, said on the console with any skipped ones."""
    chosen, skipped = newest_complete(checkpoint_dir)
    if chosen is None:
        reasons = "; ".join(f"{p.name}: {why}" for p, why in skipped) or "none found"
        raise UserError(f"--resume: no complete checkpoint in {checkpoint_dir} ({reasons})")
    if report:
        for path, why in skipped:
            print(f"skipping incomplete checkpoint {path.name} ({why})")
        print(f"resuming from {chosen}")
    return str(chosen)


def unloadable_archive(checkpoint: str | Path) -> str | None:
    """Why ``--resume`` cannot load ``checkpoint``'s torch archives (RNG state, optimizer, scheduler),
    naming the first that transformers' weights-only load refuses; None when all load. Called only
    after resuming failed: it reads every archive once more."""
    import pickle

    import torch
    from transformers.trainer_pt_utils import safe_globals

    for path in sorted(Path(checkpoint).glob("*.pt*")):
        try:
            with safe_globals():
                torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            why = "holds objects other than tensors and plain data, which a safe (weights-only) load refuses"
        except Exception as err:  # noqa: BLE001 - truncated or not a torch archive: named, not raised
            why = f"is unreadable ({type(err).__name__})"
        else:
            continue
        return (
            f"--resume: {path} {why}; delete {Path(checkpoint).name} to resume from an earlier checkpoint "
            "(or its whole folder to start again)"
        )
    return None


def completion_marker(settings: dict | None = None):
    """A transformers callback writing :data:`MARKER` (with ``settings``) into each checkpoint once it
    is saved."""
    from transformers import TrainerCallback

    class CompletionMarker(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if state.is_world_process_zero and folder.is_dir():
                write_marker(folder, state.global_step, settings)

    return CompletionMarker()
