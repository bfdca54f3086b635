"""Leaderboard CSV files: strict reading (UTF-8, one record per line) and atomic, sorted writing."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from hybrid_plugin.atomic import write_with
from hybrid_plugin.data.jsonfile import read_limited
from hybrid_plugin.errors import UserError

CSV_MAX_BYTES = 5 * 1024 * 1024
BOM = b"\xef\xbb\xbf"


@dataclass
class Record:
    """One data row as read: its line in the file (the header is line 1) and its cells."""

    line: int
    values: list[str]


@dataclass
class CsvTable:
    """A CSV file as read: header, records, and the problems met while reading (line, message)."""

    path: Path
    header: list[str] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    problems: list[tuple[int | None, str]] = field(default_factory=list)


def read_csv(path: Path) -> CsvTable:
    """Read a leaderboard CSV without trusting it: size, encoding, BOM, quoting, cell counts."""
    table = CsvTable(Path(path))
    try:
        raw = read_limited(table.path, CSV_MAX_BYTES, "leaderboard CSV")  # refused before it is read
    except UserError:
        table.problems.append((None, f"larger than {CSV_MAX_BYTES // 2**20} MiB"))
        return table
    except OSError as err:
        table.problems.append((None, f"cannot read: {err.strerror or err}"))
        return table
    if raw.startswith(BOM):
        table.problems.append((1, "starts with a UTF-8 byte-order mark: save as UTF-8 without BOM"))
        raw = raw[len(BOM) :]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        table.problems.append((line, f"not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start})"))
        return table
    if "\0" in text:
        table.problems.append((text[: text.index("\0")].count("\n") + 1, "NUL byte in the file"))
        return table
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    start = 1
    try:
        for cells in reader:
            line, start = start, reader.line_num + 1
            if not table.header:
                table.header = cells
                continue
            if not cells:
                table.problems.append((line, "empty line"))
            else:
                table.records.append(Record(line, cells))
    except csv.Error as err:
        table.problems.append((start, f"malformed CSV: {err}"))
    if not table.header:
        table.problems.append((None, "empty file: expected the header line"))
    return table


def _write_rows(out: TextIO, header: list[str], rows: Iterable[dict[str, str]]) -> None:
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(header)
    for row in rows:
        cells = [row.get(column, "") for column in header]
        if any("\r" in cell for cell in cells):  # csv quotes "\n" but not a lone "\r" with "\n" line ends
            raise ValueError("a cell holds a carriage return: rows are validated before writing")
        writer.writerow(cells)


def to_csv_text(header: list[str], rows: Iterable[dict[str, str]]) -> str:
    """CSV text: the header, then one line per row, minimal quoting, ``\\n`` line ends."""
    out = io.StringIO()
    _write_rows(out, header, rows)
    return out.getvalue()


def write_csv(path: Path, header: list[str], rows: Iterable[dict[str, str]]) -> None:
    """Stream the rows into a temp file beside ``path``, then rename it over ``path``.

    A failure part-way (a bad row, a full disk, a kill) leaves the old file as it was.
    """

    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8", newline="") as out:
            _write_rows(out, header, rows)

    write_with(Path(path), write)
