"""A leaderboard folder: ``<task>.csv`` per task, ``results/<task>/<sha256[:16]>.json`` per row.

``submit`` turns a results JSON into a row (validated like any other), refuses a duplicate key
unless told to replace it, copies the results file in as the row's provenance and rewrites the
CSV atomically, best ``multi_map`` first. ``remove`` takes rows out by name or fingerprint.
``validate`` checks a CSV file against the schema, its keys and order, and every row against its
committed results file.
"""

from __future__ import annotations

import getpass
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from hybrid_plugin.atomic import check_writable, write_bytes, writing_to
from hybrid_plugin.data.jsonfile import read_limited
from hybrid_plugin.data.spec import get_spec
from hybrid_plugin.errors import UserError
from hybrid_plugin.evaluation.results import per_query_path
from hybrid_plugin.leaderboard.csvfile import CsvTable, read_csv, write_csv
from hybrid_plugin.leaderboard.rows import (
    RESULTS_MAX_BYTES,
    build_cells,
    derived_cells,
    load_results,
    sha256_bytes,
)
from hybrid_plugin.leaderboard.schema import FREE_TEXT, RowBase, header, parse_row, row_key
from hybrid_plugin.leaderboard.tasks import (
    keep_spec_copy,
    ranked_specs,
    register_board_tasks,
    register_folder_task,
)
from hybrid_plugin.leaderboard.uncertainty import UNCERTAINTY, uncertainty_cells

RESULTS_DIR = "results"
CHECKSUM_PREFIX = 16
LOCK_FILE = ".leaderboard.lock"
LOCK_TIMEOUT_S = 300
# optional columns added to the schema since the first boards: a CSV without them is still read
ADDED_COLUMNS = ("parameters", "embedding_dim")


@contextmanager
def board_lock(board: Path) -> Iterator[None]:
    """Hold the folder's lock file: one read–modify–write (submit, render) at a time, across processes."""
    board = Path(board)
    check_writable(board, "--dir")
    with writing_to(board / LOCK_FILE):
        board.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(board / LOCK_FILE, timeout=LOCK_TIMEOUT_S):
            yield
    except Timeout:
        raise UserError(
            f"{board / LOCK_FILE}: another submit or render has held it for {LOCK_TIMEOUT_S} s; try again"
        ) from None


def csv_path(board: Path, task: str) -> Path:
    return Path(board) / f"{task}.csv"


def results_relpath(task: str, sha256: str) -> str:
    """Where a row's results JSON is committed, relative to the leaderboard folder."""
    return f"{RESULTS_DIR}/{task}/{_results_name(sha256)}"


def sort_key(row: RowBase) -> tuple:
    """Best multi mAP first; ties by mono, cross, then the row key (a total, stable order)."""
    return (-row.multi_map, -row.mono_map, -row.cross_map, row.model_id, *row_key(row))


@dataclass
class Row:
    """A validated row with the cells it was read from (written back unchanged) and its line."""

    model: RowBase
    cells: dict[str, str]
    line: int = 0


@dataclass
class Problem:
    path: Path
    message: str
    line: int | None = None
    column: str | None = None

    def __str__(self) -> str:
        where = [f"row {self.line}"] if self.line else []
        where += [f"column {self.column}"] if self.column else []
        return f"{self.path}: {', '.join(where) + ': ' if where else ''}{self.message}"


@dataclass
class Checked:
    """A CSV file's task, its valid rows (in file order) and every problem found."""

    path: Path
    task: str | None
    rows: list[Row]
    problems: list[Problem]


def _task_of(table: CsvTable) -> str | None:
    specs = ranked_specs()
    if table.path.stem in specs:
        return table.path.stem
    if "task" not in table.header:
        return None
    column = table.header.index("task")
    tasks = {r.values[column] for r in table.records if len(r.values) == len(table.header)}
    return next(iter(tasks)) if len(tasks) == 1 and next(iter(tasks)) in specs else None


def check_csv(path: Path, check_results: bool = True) -> Checked:
    """Every problem of one leaderboard CSV: reading, header, cells, keys, order, provenance files."""
    path = Path(path)
    table = read_csv(path)
    problems = [Problem(path, msg, line) for line, msg in table.problems]
    task = _task_of(table)
    rows: list[Row] = []
    if not table.header:
        return Checked(path, task, rows, problems)
    if task is None:
        known = ", ".join(f"{t}.csv" for t in ranked_specs())
        problems.append(
            Problem(path, f"cannot tell the task: name the file {known} (or fill the task column)")
        )
        return Checked(path, task, rows, problems)
    expected = header(task)
    columns = expected
    if table.header == [c for c in expected if c not in ADDED_COLUMNS]:  # the previous schema: readable
        columns = table.header
        if check_results:  # validate reports it; submit and remove read it and write the current header
            added = ", ".join(ADDED_COLUMNS)
            message = f"header lacks {added} (added since): any leaderboard submit or remove rewrites it"
            problems.append(Problem(path, message, 1))
    elif table.header != expected:
        missing = [c for c in expected if c not in table.header]
        unknown = [c for c in table.header if c not in expected]
        detail = "; ".join(
            part
            for part in (
                f"missing {', '.join(missing)}" if missing else "",
                f"unknown {', '.join(ascii(c)[1:-1][:40] for c in unknown[:5])}" if unknown else "",
                "columns out of order" if not missing and not unknown else "",
            )
            if part
        )
        problems.append(Problem(path, f"header does not match the {task} schema: {detail}", 1))
        return Checked(path, task, rows, problems)
    names = set()  # results files named by any row, valid or not: one problem per bad row, no orphans
    sha_column = columns.index("results_sha256")
    for record in table.records:
        if sha_column < len(record.values):
            names.add(_results_name(record.values[sha_column]))
            names.add(per_query_relpath(_results_name(record.values[sha_column])))
        if len(record.values) != len(columns):
            count = f"{len(record.values)} cells, expected {len(columns)} (one per column)"
            problems.append(Problem(path, count, record.line))
            continue
        cells = {c: "" for c in expected} | dict(zip(columns, record.values))
        row, row_problems = parse_row(task, cells)
        problems += [Problem(path, msg, record.line, col) for col, msg in row_problems]
        if row is not None and not row_problems:
            rows.append(Row(row, cells, record.line))
    seen: dict[tuple, int] = {}
    for row in rows:
        key = row_key(row.model)
        if key in seen:
            problems.append(
                Problem(
                    path,
                    f"duplicate key (fingerprint, task, candidate format, languages) of row {seen[key]}",
                    row.line,
                )
            )
        seen.setdefault(key, row.line)
    ordered = sorted(rows, key=lambda r: sort_key(r.model))
    if not problems and [r.line for r in ordered] != [r.line for r in rows]:
        first = next(r for r, o in zip(rows, ordered) if r.line != o.line)
        problems.append(
            Problem(path, "rows are not sorted best multi_map first (submit rewrites the order)", first.line)
        )
    if check_results:
        problems += _check_results_files(path, task, rows, names)
        if not problems:
            problems += _check_uncertainty(path, task, rows)
    return Checked(path, task, rows, problems)


def board_uncertainty(board: Path, task: str, rows: list[Row]) -> dict[str, dict[str, str]]:
    """The uncertainty cells of every row, rebuilt from the committed results and per-query files."""
    paths = {
        r.model.results_sha256: Path(board) / results_relpath(task, r.model.results_sha256) for r in rows
    }
    return uncertainty_cells([r.model for r in rows], paths)


def _check_uncertainty(path: Path, task: str, rows: list[Row]) -> list[Problem]:
    """Each row's interval and test against the best row equal what the committed per-query files give."""
    try:
        expected = board_uncertainty(path.parent, task, rows)
    except UserError as err:
        return [Problem(path, f"cannot rebuild the intervals and tests: {err}")]
    problems = []
    for row in rows:
        for column in UNCERTAINTY:
            value = expected[row.model.results_sha256][column]
            if row.cells.get(column) != value:
                shown = value or "empty: no per-query file to test"
                message = (
                    f"{ascii(row.cells.get(column))} differs from the committed per-query files ({shown})"
                )
                problems.append(Problem(path, message, row.line, column))
    return problems


def _results_name(sha256: str) -> str:
    return f"{sha256[:CHECKSUM_PREFIX]}.json"


def per_query_relpath(results_rel: str) -> str:
    """The committed per-query file of a committed results file (``<sha256[:16]>.queries.parquet``)."""
    return results_rel.removesuffix(".json") + ".queries.parquet"


def _check_results_files(path: Path, task: str, rows: list[Row], referenced: set[str]) -> list[Problem]:
    """Each row's committed results file exists, has the row's checksum and gives the row's cells."""
    problems = []
    board = path.parent
    for row in rows:
        rel = results_relpath(task, row.model.results_sha256)
        file = board / rel
        if not file.is_file():
            problems.append(Problem(path, f"no committed results file {rel}", row.line, "results_sha256"))
            continue
        try:
            raw = read_limited(file, RESULTS_MAX_BYTES, "results JSON")
        except (UserError, OSError) as err:
            problems.append(Problem(path, f"{rel}: {err}", row.line, "results_sha256"))
            continue
        if sha256_bytes(raw) != row.model.results_sha256:
            problems.append(Problem(path, f"{rel} does not have this sha256", row.line, "results_sha256"))
            continue
        try:
            results = load_results(raw, rel)
        except UserError as err:
            problems.append(Problem(path, str(err), row.line, "results_sha256"))
            continue
        if results.per_query is not None and per_query_path(file, results) is None:
            problems.append(
                Problem(
                    path,
                    f"no committed per-query file {per_query_relpath(rel)} with the sha256 {rel} records",
                    row.line,
                    "results_sha256",
                )
            )
        for column, value in derived_cells(results, row.model.results_sha256).items():
            if row.cells.get(column) != value:
                problems.append(
                    Problem(
                        path,
                        f"{ascii(row.cells.get(column))} differs from {rel} ({value!r})",
                        row.line,
                        column,
                    )
                )
    folder = board / RESULTS_DIR / task
    if folder.is_dir():
        for orphan in sorted(folder.iterdir()):
            if orphan.name not in referenced:
                problems.append(Problem(orphan, f"not referenced by any row of {path.name}"))
    return problems


def validate(paths: list[Path]) -> tuple[list[Checked], list[Problem]]:
    """Check each CSV file; every problem of every file (task folders' specs: beside each CSV)."""
    register_board_tasks(*sorted({Path(p).parent for p in paths}))
    checked = [check_csv(p) for p in paths]
    problems = [p for c in checked for p in c.problems]
    return checked, problems


def default_submitter() -> str:
    """``git config user.name`` where set, else the login name."""
    try:
        name = subprocess.run(
            ["git", "config", "user.name"], capture_output=True, text=True, timeout=10, check=False
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        name = ""
    if name:
        return name
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


@dataclass
class Submitted:
    csv: Path
    results_copy: Path
    row: RowBase
    position: int  # among the rows with the same languages and candidate format
    replaced: bool
    total: int  # those rows, this one included


def submit(
    results_file: Path,
    board: Path,
    *,
    name: str | None = None,
    notes: str | None = None,
    submitter: str | None = None,
    replace: bool = False,
    task_folder: Path | None = None,
) -> Submitted:
    """Add the row of ``results_file`` to ``board/<task>.csv``; a :class:`UserError` on anything wrong.

    Results of a task folder need ``task_folder`` (the folder they were computed on, checked by the
    sha256 of its files): its spec is then kept as ``board/tasks/NAME.toml`` beside its own CSV.
    """
    results_file, board = Path(results_file), Path(board)
    register_board_tasks(board)
    folder_spec = None
    if task_folder is not None:
        folder_spec, folder_sha256 = register_folder_task(Path(task_folder))
    try:
        raw = read_limited(results_file, RESULTS_MAX_BYTES, "results JSON")
    except OSError as err:
        raise UserError(f"{results_file}: cannot read ({err.strerror or err})") from None
    results = load_results(raw, str(results_file))
    if folder_spec is not None and (
        results.task != folder_spec.name or results.provenance.get("data_sha256") != folder_sha256
    ):
        raise UserError(
            f"{results_file}: not computed on the task folder {task_folder} (another task or other files: "
            "their sha256 differ)"
        )
    sha = sha256_bytes(raw)
    per_query = per_query_path(results_file, results)
    if results.per_query is not None and per_query is None:
        raise UserError(
            f"{results_file}: its per-query file {results.per_query.file} is missing beside it or has "
            "another sha256"
        )
    cells = build_cells(results, sha, name=name, submitter=submitter or default_submitter(), notes=notes)
    row, problems = parse_row(results.task, cells)
    if problems or row is None:
        column, message = problems[0]
        where = f"--{column}" if column in FREE_TEXT else f"{results_file}: column {column}"
        raise UserError(f"{where}: {message}")
    with board_lock(board):  # concurrent submits: each reads the rows the one before wrote
        if folder_spec is not None:
            keep_spec_copy(board, folder_spec)
        return _submit_row(board, raw, sha, row, cells, replace, per_query)


def _submit_row(
    board: Path, raw: bytes, sha: str, row: RowBase, cells: dict, replace: bool, per_query: Path | None
) -> Submitted:
    """Read the CSV, add or replace the row, write the results copy and the CSV (under the lock)."""
    spec = get_spec(row.task)
    target = csv_path(board, spec.name)
    existing: list[Row] = []
    if target.exists():
        checked = check_csv(target, check_results=False)
        if checked.problems:
            raise UserError(
                f"{target} has {len(checked.problems)} problem(s), first: {checked.problems[0]}; "
                "fix it (hybrid-plugin leaderboard validate) before submitting"
            )
        existing = checked.rows
    same = [r for r in existing if row_key(r.model) == row_key(row)]
    if same and not replace:
        raise UserError(
            f"{target}: row {same[0].line} already holds model {row.model_fingerprint[:12]} on {spec.name} "
            f"({row.candidate_format}, {row.languages}); --replace to replace it"
        )
    kept = [r for r in existing if row_key(r.model) != row_key(row)]
    rows = sorted([*kept, Row(row, cells)], key=lambda r: sort_key(r.model))
    copy = board / results_relpath(spec.name, sha)
    new_copy = not copy.is_file() or sha256_bytes(copy.read_bytes()) != sha
    per_query_copy = board / per_query_relpath(results_relpath(spec.name, sha))
    if new_copy:
        write_bytes(copy, raw)
        if per_query is not None:
            write_bytes(per_query_copy, per_query.read_bytes())
    try:
        for r, cells in zip(rows, _uncertainty_in_order(board, spec.name, rows)):
            r.cells |= cells
        write_csv(target, header(spec.name), (r.cells for r in rows))
    except BaseException:
        if new_copy:  # the CSV is unchanged: leave no results file without a row
            copy.unlink(missing_ok=True)
            per_query_copy.unlink(missing_ok=True)
        raise
    _drop_unused_copies(board, spec.name, rows, same)
    # ranked among the rows it is comparable with: same languages and candidate format
    peers = [
        r.model
        for r in rows
        if r.model.languages == row.languages and r.model.candidate_format == row.candidate_format
    ]
    position = next(i for i, r in enumerate(peers, 1) if r is row)
    return Submitted(target, copy, row, position, bool(same), len(peers))


def remove(
    board: Path,
    task: str,
    *,
    name: str | None = None,
    fingerprint: str | None = None,
    missing_ok: bool = False,
) -> list[RowBase]:
    """Remove the rows of ``task`` with this display ``name`` or whose model fingerprint starts with
    ``fingerprint`` (at least 8 hex digits); the intervals of the rows left are recomputed (the best
    row may change), results copies no row uses are deleted. A :class:`UserError` if none matches,
    unless ``missing_ok``."""
    if (name is None) == (fingerprint is None):
        raise UserError("leaderboard remove: give exactly one of --name or --fingerprint")
    if fingerprint is not None and len(fingerprint) < 8:
        raise UserError(
            f"--fingerprint {fingerprint}: give at least 8 hex digits (a prefix that short is ambiguous)"
        )
    board = Path(board)
    register_board_tasks(board)
    spec = get_spec(task)
    target = csv_path(board, spec.name)
    with board_lock(board):
        if not target.exists():
            if missing_ok:
                return []
            raise UserError(f"{target}: no such leaderboard CSV")
        checked = check_csv(target, check_results=False)
        if checked.problems:
            raise UserError(
                f"{target} has {len(checked.problems)} problem(s), first: {checked.problems[0]}; "
                "fix it (hybrid-plugin leaderboard validate) before removing rows"
            )

        def matches(row: RowBase) -> bool:
            if name is not None:
                return row.name == name
            return row.model_fingerprint.startswith(fingerprint.lower())

        gone = [r for r in checked.rows if matches(r.model)]
        if not gone:
            if missing_ok:
                return []
            what = f"named {name!r}" if name is not None else f"with fingerprint {fingerprint}…"
            raise UserError(f"{target}: no row {what}")
        rows = [r for r in checked.rows if not matches(r.model)]
        for r, cells in zip(rows, _uncertainty_in_order(board, spec.name, rows)):
            r.cells |= cells
        write_csv(target, header(spec.name), (r.cells for r in rows))
        _drop_unused_copies(board, spec.name, rows, gone)
    return [r.model for r in gone]


def _drop_unused_copies(board: Path, task: str, rows: list[Row], gone: list[Row]) -> None:
    """Delete the results copies (and per-query files) of ``gone`` rows that no row in ``rows`` uses."""
    still_used = {results_relpath(task, r.model.results_sha256) for r in rows}
    for old in gone:
        rel = results_relpath(task, old.model.results_sha256)
        if rel not in still_used:
            (board / rel).unlink(missing_ok=True)
            (board / per_query_relpath(rel)).unlink(missing_ok=True)


def _uncertainty_in_order(board: Path, task: str, rows: list[Row]) -> list[dict[str, str]]:
    cells = board_uncertainty(board, task, rows)
    return [cells[r.model.results_sha256] for r in rows]


def read_board(board: Path) -> dict[str, list[Row]]:
    """Every task's valid rows (best first) from a folder that validates; a :class:`UserError` otherwise."""
    board = Path(board)
    register_board_tasks(board)
    paths = [csv_path(board, task) for task in ranked_specs() if csv_path(board, task).exists()]
    checked, problems = validate(paths)
    if problems:
        raise UserError(
            f"{board}: {len(problems)} problem(s), first: {problems[0]} (hybrid-plugin leaderboard validate)"
        )
    return {c.task: c.rows for c in checked if c.task} | {
        t: [] for t in ranked_specs() if t not in {c.task for c in checked}
    }
