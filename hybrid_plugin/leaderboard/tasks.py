"""Which tasks have leaderboards: those with cross-lingual and multilingual settings (a
monolingual-only task such as tydi-goldp has no multilingual mAP to rank by), built-in or task
folders whose spec a leaderboard folder holds (``DIR/tasks/NAME.toml``, written by ``submit --task``)."""

from __future__ import annotations

from pathlib import Path

from hybrid_plugin.data.spec import SettingKind, TaskSpec, forget_registered, known_specs, register_spec
from hybrid_plugin.errors import UserError

TASKS_DIR = "tasks"


def ranked_specs() -> dict[str, TaskSpec]:
    """Task specs that get a leaderboard, by name (task folders once registered)."""
    return {name: spec for name, spec in known_specs().items() if SettingKind.MULTI in spec.settings}


def spec_copy_path(board: Path, name: str) -> Path:
    return Path(board) / TASKS_DIR / f"{name}.toml"


def register_board_tasks(*boards: Path) -> list[str]:
    """Make the task folders' specs these leaderboard folders hold the registered ones (replacing
    those of any folder before: the rendered tasks are the built-in ones and these); their names."""
    from hybrid_plugin.data.taskdir import read_spec_copy

    forget_registered()
    names = []
    for path in sorted(p for board in boards for p in (Path(board) / TASKS_DIR).glob("*.toml")):
        spec = read_spec_copy(path)
        if spec.name != path.stem:
            raise UserError(f"{path}: holds task {spec.name!r}; the file must be named {spec.name}.toml")
        register_spec(spec)
        names.append(spec.name)
    return names


def register_folder_task(folder: Path) -> tuple[TaskSpec, dict[str, str]]:
    """Read and check a task folder, register its spec; returns it and its files' sha256."""
    from hybrid_plugin.data.taskdir import load_folder

    loaded = load_folder(folder)
    register_spec(loaded.spec)
    return loaded.spec, dict(loaded.files.sha256)


def keep_spec_copy(board: Path, spec: TaskSpec) -> None:
    """Keep a task folder's spec in the leaderboard folder (``tasks/NAME.toml``: task.toml's fields,
    the setting kinds and the files' sha256), so ``validate`` and ``render`` know the task later."""
    from hybrid_plugin.atomic import write_text
    from hybrid_plugin.data.taskdir import spec_copy_text

    target = spec_copy_path(board, spec.name)
    text = spec_copy_text(spec)
    if target.is_file() and target.read_text(encoding="utf-8") != text:
        raise UserError(
            f"{target} holds another version of task {spec.name!r} (other files or fields); "
            "a leaderboard ranks one version of a task: rename the task in task.toml"
        )
    if not target.is_file():
        write_text(target, text)
