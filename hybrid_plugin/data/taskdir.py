"""User task folders (``--task PATH``): ``task.toml`` and BEIR-layout files whose records name a language.

A folder holds::

    task.toml         name, title, description, languages, license, citation, candidate_unit
                      (optional: reference, in_domain_training)
    corpus.jsonl      {"_id", "text", "language", optional "title"}       one candidate per line
    queries.jsonl     {"_id", "text", "language", optional "group"}       one query per line
    qrels/test.tsv    query-id <TAB> corpus-id <TAB> score (> 0: relevant; a BEIR header line is allowed)

It becomes the same :class:`~hybrid_plugin.data.pool.Pool` a built-in task does, so every setting,
measure and bias value is computed by the same engine. Relevance comes from the qrels alone: a query
is asked X→Y when it has a relevant candidate in Y; a folder with no relevant pair across languages
is monolingual-only (like ``tydi-goldp``). The pool's groups are the queries' ``group`` values (the
parallel question group used by per-query files and ``compare``; a query without one is its own
group, named by its id); queries of one group with different relevant candidates are kept apart for
relevance under the same group name. Every problem is one :class:`UserError` naming file and line.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import langcodes
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json

from hybrid_plugin.data.files import ResolvedFiles, sha256_file
from hybrid_plugin.data.jsonfile import MiB
from hybrid_plugin.data.pool import Pool, relevance_csr
from hybrid_plugin.data.spec import (
    CANDIDATE_UNITS,
    SETTING_KINDS,
    SettingKind,
    TaskSpec,
    all_specs,
    select_languages,
)
from hybrid_plugin.errors import UserError

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

TASK_FILE = "task.toml"
CORPUS = "corpus.jsonl"
QUERIES = "queries.jsonl"
QRELS = "qrels/test.tsv"
LAYOUT = (TASK_FILE, CORPUS, QUERIES, QRELS)
QRELS_HEADER = ("query-id", "corpus-id", "score")
TASK_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
TEXT_FIELDS = ("name", "title", "description", "license", "citation", "candidate_unit")
DATA_ORIGIN = "task-folder"
#: a data file of a folder is read streaming (pyarrow, or line by line for a precise message), never
#: whole into one Python string, so the bound is far above 10^7 candidates rather than below the RAM
TASK_DATA_MAX_BYTES = 64 * 1024 * MiB
BOM = b"\xef\xbb\xbf"
#: every character ``str.strip()`` removes (``str.isspace``): a value of only these is "empty"
PY_SPACE = "".join(chr(c) for c in range(0x3001) if chr(c).isspace())
BLANK_VALUE = "^[" + "".join(f"\\x{{{ord(c):x}}}" for c in PY_SPACE) + "]*$"
#: bytes that may fill a line pyarrow's JSON reader skips (JSON white space; a subset of str.isspace)
_BLANK_BYTE = np.zeros(256, dtype=bool)
_BLANK_BYTE[[9, 10, 13, 32]] = True


def looks_like_folder(task: str | Path) -> bool:
    """True if ``--task`` names a folder rather than a built-in task (a built-in name always wins;
    write ``./xquad-r`` for a folder of that name)."""
    text = str(task)
    if text.lower() in all_specs():
        return False
    return (
        isinstance(task, Path) or "/" in text or "\\" in text or text.startswith(".") or Path(text).is_dir()
    )


def valid_language(code: object) -> bool:
    """An ISO 639-1 (``de``) or ISO 639-3 (``deu``, ``yue``) code in lower case, known to the IANA
    language-subtag registry (through ``langcodes``); ``und``, ``mul``, ``zxx`` and private use are not."""
    if not isinstance(code, str) or re.fullmatch(r"[a-z]{2,3}", code) is None:
        return False
    if code in ("und", "mul", "mis", "zxx") or "qaa" <= code <= "qtz":
        return False
    return bool(langcodes.tag_is_valid(code))


def read_task_toml(folder: Path) -> dict:
    """``task.toml`` checked field by field (one line per problem)."""
    return read_toml_fields(folder / TASK_FILE)


def read_toml_fields(path: Path) -> dict:
    """A task TOML file (a folder's ``task.toml`` or a leaderboard's copy) checked field by field."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except tomllib.TOMLDecodeError as err:
        raise UserError(f"{path}: not valid TOML: {err}") from None
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    for key in TEXT_FIELDS:
        value = raw.get(key)
        if not isinstance(value, str) or not value.strip():
            raise UserError(f"{path}: field {key!r} must be a non-empty string")
    if TASK_NAME.fullmatch(raw["name"]) is None:
        raise UserError(
            f"{path}: name {raw['name']!r} must be lower-case letters, digits, '.', '_' or '-' (≤ 64)"
        )
    if raw["name"] in all_specs():
        raise UserError(f"{path}: name {raw['name']!r} is a built-in task; choose another name")
    if raw["candidate_unit"] not in CANDIDATE_UNITS:
        raise UserError(f"{path}: candidate_unit must be one of {', '.join(CANDIDATE_UNITS)}")
    languages = raw.get("languages")
    if not isinstance(languages, list) or not languages:
        raise UserError(f"{path}: field 'languages' must be a non-empty list of ISO 639-1/-3 codes")
    for code in languages:
        if not valid_language(code):
            raise UserError(f"{path}: languages: {code!r} is not an ISO 639-1 or ISO 639-3 language code")
    if len({langcodes.Language.get(code).to_alpha3() for code in languages}) != len(languages):
        raise UserError(f"{path}: languages lists a language twice (e.g. as 'de' and 'deu')")
    training = raw.get("in_domain_training", [])
    if not isinstance(training, list) or not all(isinstance(t, str) and t for t in training):
        raise UserError(f"{path}: in_domain_training must be a list of training-data names")
    if not isinstance(raw.get("reference", ""), str):
        raise UserError(f"{path}: field 'reference' must be a string (a URL)")
    return raw


def _check_size(path: Path, what: str) -> int:
    size = path.stat().st_size
    if size > TASK_DATA_MAX_BYTES:
        raise UserError(
            f"{path}: {size / MiB:.0f} MiB, larger than the {TASK_DATA_MAX_BYTES // MiB} MiB a {what} may be"
        )
    return size


def _decoded(path: Path) -> Iterator[str]:
    """Each line of a file as text without its newline, read streaming; an invalid byte is reported
    as a whole-file ``decode("utf-8-sig")`` reports it (a line is decoded with its newline, so the
    reason is the same, and the position counts from the start of the file, after a byte-order mark)."""
    offset = 0
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh):
            if number == 0 and raw.startswith(BOM):  # a leading byte-order mark is not data
                raw = raw[len(BOM) :]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise UserError(
                    f"{path}: not UTF-8 text ({err.reason} at byte {offset + err.start})"
                ) from None
            offset += len(raw)
            yield text[:-1] if text.endswith("\n") else text


def _lines(path: Path, what: str) -> Iterator[tuple[int, str]]:
    """(line number, line) of a UTF-8 text file as ``enumerate(text.split("\\n"), 1)`` over the whole
    decoded file would give them, in bounded memory: the file is checked to be UTF-8 first (as a
    whole-file decode would), then read again line by line."""
    _check_size(path, what)
    for _ in _decoded(path):
        pass
    yield from enumerate(_decoded(path), 1)


def _records(path: Path, fields: dict[str, bool], languages: tuple[str, ...]):
    """Each record of a JSON-lines file as (line number, record); ``fields`` maps a string field to
    whether it is required. Blank lines are skipped; every other problem names the line."""
    seen: dict[str, int] = {}
    for number, line in _lines(path, "task file"):
        if not line.strip():
            continue
        where = f"{path}: line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise UserError(f"{where}: malformed json at column {err.colno}: {err.msg}") from None
        except RecursionError:
            raise UserError(f"{where}: json nested too deeply") from None
        if not isinstance(record, dict):
            raise UserError(f"{where}: expected a json object, got {type(record).__name__}")
        for key, required in fields.items():
            if key not in record:
                if required:
                    raise UserError(f"{where}: no field {key!r}")
                continue
            value = record[key]
            if not isinstance(value, str):
                raise UserError(f"{where}: field {key!r} should be a string, got {type(value).__name__}")
            if required and not value.strip():
                raise UserError(f"{where}: field {key!r} is empty")
        rid, lang = record["_id"], record["language"]
        if rid in seen:
            raise UserError(f"{where}: duplicate _id {rid!r} (first on line {seen[rid]})")
        seen[rid] = number
        if lang not in languages:
            if not valid_language(lang):
                raise UserError(f"{where}: unknown language {lang!r} (expected an ISO 639-1/-3 code)")
            raise UserError(
                f"{where}: language {lang!r} is not among task.toml's languages ({', '.join(languages)})"
            )
        yield number, record


@dataclass
class FolderRecords:
    """A folder's records as read, before the language selection.

    Candidates live in arrays, not per-record Python objects (a pool may hold 10^7): ids and texts as
    pyarrow string arrays (or lists, from the line-by-line reader), languages as indices into
    task.toml's ``languages``. Queries are few and stay lists.
    """

    cand_ids: pa.ChunkedArray | pa.Array | list[str]
    cand_text: pa.ChunkedArray | pa.Array | list[str]
    cand_lang: np.ndarray  # int64 index into task.toml's languages
    query_ids: list[str]
    query_text: list[str]
    query_lang: np.ndarray  # int64 index into task.toml's languages
    query_group: list[str]
    grouped: bool  # True if any query has a ``group``
    qrel_query: np.ndarray  # (query index, candidate index) of each pair with score > 0, in file order
    qrel_cand: np.ndarray


def candidate_text(record: dict) -> str:
    """What is encoded for a corpus record: BEIR's and MTEB's ``title + " " + text`` (the text alone
    when there is no title)."""
    title = record.get("title", "")
    return f"{title} {record['text']}".strip() if title.strip() else record["text"]


def _read_qrels(path: Path, queries: dict[str, int], cands: dict[str, int]) -> list[tuple[int, int]]:
    pairs: list[tuple[int, int]] = []
    seen: dict[tuple[str, str], int] = {}
    for number, line in _lines(path, "qrels file"):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        where = f"{path}: line {number}"
        fields = line.split("\t")
        if number == 1 and tuple(f.strip() for f in fields) == QRELS_HEADER:
            continue
        if len(fields) != 3:
            raise UserError(f"{where}: expected query-id<TAB>corpus-id<TAB>score, got {len(fields)} field(s)")
        qid, cid, score_text = fields
        try:
            score = int(score_text)
        except ValueError:
            raise UserError(f"{where}: score {score_text!r} is not an integer") from None
        if qid not in queries:
            raise UserError(f"{where}: query-id {qid!r} names no query of {QUERIES}")
        if cid not in cands:
            raise UserError(f"{where}: corpus-id {cid!r} names no document of {CORPUS}")
        if (qid, cid) in seen:
            raise UserError(f"{where}: pair {qid} {cid} appears twice (first on line {seen[qid, cid]})")
        seen[qid, cid] = number
        if score > 0:
            pairs.append((queries[qid], cands[cid]))
    return pairs


def read_records(folder: Path, languages: tuple[str, ...]) -> FolderRecords:
    """Every record of the folder's three data files, checked: by pyarrow when the files are clean
    (vectorised checks, no Python object per record), else line by line, which names the first
    problem's file and line (the two give identical records wherever both succeed)."""
    try:
        fast = read_records_fast(folder, languages)
    except (pa.ArrowException, OverflowError):  # e.g. a column beyond pyarrow's 2 GiB string offsets
        fast = None
    return fast if fast is not None else read_records_precise(folder, languages)


def read_records_precise(folder: Path, languages: tuple[str, ...]) -> FolderRecords:
    """The line-by-line reader: every problem is one :class:`UserError` naming file and line."""
    lang_code = {lang: i for i, lang in enumerate(languages)}
    cand_ids, cand_text, cand_lang = [], [], []
    for _, rec in _records(
        folder / CORPUS, {"_id": True, "text": True, "language": True, "title": False}, languages
    ):
        cand_ids.append(rec["_id"])
        cand_text.append(candidate_text(rec))
        cand_lang.append(lang_code[rec["language"]])
    q_ids, q_text, q_lang, q_group, q_line = [], [], [], [], []
    grouped = False
    query_fields = {"_id": True, "text": True, "language": True, "group": False}
    for number, rec in _records(folder / QUERIES, query_fields, languages):
        if "group" in rec and not rec["group"].strip():
            raise UserError(f"{folder / QUERIES}: line {number}: field 'group' is empty")
        grouped |= "group" in rec
        q_ids.append(rec["_id"])
        q_text.append(rec["text"])
        q_lang.append(lang_code[rec["language"]])
        q_group.append(rec.get("group", rec["_id"]))
        q_line.append(number)
    for path, ids in ((folder / CORPUS, cand_ids), (folder / QUERIES, q_ids)):
        if not ids:
            raise UserError(f"{path}: no records")
    cand_index = {c: i for i, c in enumerate(cand_ids)}
    both = next((q for q in q_ids if q in cand_index), None)
    if both is not None:
        raise UserError(
            f"{folder / QUERIES}: line {q_line[q_ids.index(both)]}: _id {both!r} is also a document id in "
            f"{CORPUS} (BEIR tools drop such hits); give queries and documents distinct ids"
        )
    qrels = _read_qrels(folder / QRELS, {q: i for i, q in enumerate(q_ids)}, cand_index)
    pairs = np.asarray(qrels, dtype=np.int64).reshape(-1, 2)
    has_relevant = np.zeros(len(q_ids), dtype=bool)
    has_relevant[pairs[:, 0]] = True
    if not has_relevant.all():
        q = int(np.flatnonzero(~has_relevant)[0])
        raise UserError(
            f"{folder / QUERIES}: line {q_line[q]}: query {q_ids[q]!r} has no relevant document "
            f"(score > 0) in {QRELS}"
        )
    return FolderRecords(
        cand_ids,
        cand_text,
        np.asarray(cand_lang, dtype=np.int64),
        q_ids,
        q_text,
        np.asarray(q_lang, dtype=np.int64),
        q_group,
        grouped,
        pairs[:, 0].copy(),
        pairs[:, 1].copy(),
    )


# --- the pyarrow reader: None on anything the precise reader would refuse or might read otherwise ----


def _content_lines(path: Path, block: int = 1 << 24) -> int:
    """How many lines hold something besides JSON white space (the records pyarrow should find)."""
    count, pending = 0, False  # pending: the unfinished last line of the blocks so far has content
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            a = np.frombuffer(chunk, dtype=np.uint8)
            content = ~_BLANK_BYTE[a]
            ends = np.flatnonzero(a == 10)
            if len(ends) == 0:
                pending |= bool(content.any())
                continue
            starts = np.concatenate([[0], ends[ends + 1 < len(a)] + 1])
            has = np.logical_or.reduceat(content, starts)  # per line (the first one joins `pending`)
            count += int(bool(has[0]) or pending) + int(np.count_nonzero(has[1 : len(ends)]))
            pending = bool(has[len(ends)]) if len(has) > len(ends) else False
    return count + int(pending)


def _explicit_null(path: Path, key: str, block: int = 1 << 24) -> bool:
    """Whether ``"key": null`` may stand in the file (pyarrow reads it as an absent field; the precise
    reader refuses it). A false alarm only costs the fast path."""
    pattern = re.compile(rb'"' + re.escape(key.encode()) + rb'"\s*:\s*null')
    tail = b""
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            if pattern.search(tail + chunk):
                return True
            tail = chunk[-64:]
    return False


def _blank(column: pa.ChunkedArray) -> bool:
    """True if a value is empty or white space only (``not value.strip()``)."""
    return bool(pc.any(pc.match_substring_regex(column, BLANK_VALUE)).as_py())


def _read_jsonl_fast(
    path: Path, fields: dict[str, bool], languages: tuple[str, ...]
) -> tuple[pa.Table, np.ndarray] | None:
    """The file's columns and each record's language index, or None where the precise reader must look."""
    _check_size(path, "task file")
    schema = pa.schema([(key, pa.string()) for key in fields])
    try:
        table = pa_json.read_json(
            path,
            read_options=pa_json.ReadOptions(block_size=1 << 24),
            parse_options=pa_json.ParseOptions(
                explicit_schema=schema, unexpected_field_behavior="ignore", newlines_in_values=False
            ),
        )
    except (pa.ArrowException, UnicodeDecodeError, ValueError):
        return None
    if table.num_rows == 0 or table.num_rows != _content_lines(path):
        return None  # no records, two records on a line or one record over several
    for key, required in fields.items():
        column = table[key]
        if required and (column.null_count or _blank(column)):
            return None
        if not required and column.null_count and _explicit_null(path, key):
            return None
    if len(pc.unique(table["_id"])) != table.num_rows:
        return None
    code = pc.index_in(table["language"], value_set=pa.array(languages, pa.string()))
    if code.null_count:
        return None
    return table, code.to_numpy(zero_copy_only=False).astype(np.int64)


def _read_qrels_fast(
    path: Path, query_ids: pa.Array, cand_ids: pa.ChunkedArray | pa.Array
) -> tuple[np.ndarray, np.ndarray] | None:
    """(query index, candidate index) of the pairs with score > 0 in file order, or None."""
    _check_size(path, "qrels file")
    with open(path, "rb") as fh:
        first = fh.readline()
    try:
        first_line = first.decode("utf-8-sig").rstrip("\n").rstrip("\r")
    except UnicodeDecodeError:
        return None
    if not first_line.strip():
        return None  # line 1 blank: the precise reader's header rule counts lines pyarrow skips
    header = tuple(f.strip() for f in first_line.split("\t")) == QRELS_HEADER
    names = ["q", "c", "s"]
    try:
        table = pa_csv.read_csv(
            path,
            read_options=pa_csv.ReadOptions(column_names=names, block_size=1 << 24),
            parse_options=pa_csv.ParseOptions(
                delimiter="\t", quote_char=False, escape_char=False, ignore_empty_lines=True
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowException, UnicodeDecodeError, ValueError):
        return None
    if header:
        table = table.slice(1)
    if table.num_rows and not pc.all(pc.match_substring_regex(table["s"], r"^-?[0-9]{1,18}$")).as_py():
        return None  # a score int() might read otherwise (or refuse)
    q = pc.index_in(table["q"], value_set=query_ids)
    ids = cand_ids if isinstance(cand_ids, pa.Array) else cand_ids.combine_chunks()
    c = pc.index_in(table["c"], value_set=ids)
    if q.null_count or c.null_count:
        return None
    q_idx = q.to_numpy(zero_copy_only=False).astype(np.int64)
    c_idx = c.to_numpy(zero_copy_only=False).astype(np.int64)
    if len(np.unique(q_idx * len(cand_ids) + c_idx)) != len(q_idx):
        return None
    positive = pc.cast(table["s"], pa.int64()).to_numpy() > 0
    return q_idx[positive], c_idx[positive]


def read_records_fast(folder: Path, languages: tuple[str, ...]) -> FolderRecords | None:
    """The folder's records through pyarrow with vectorised checks; None if any check fails."""
    corpus = _read_jsonl_fast(
        folder / CORPUS, {"_id": True, "text": True, "language": True, "title": False}, languages
    )
    queries = _read_jsonl_fast(
        folder / QUERIES, {"_id": True, "text": True, "language": True, "group": False}, languages
    )
    if corpus is None or queries is None:
        return None
    (ctable, cand_lang), (qtable, query_lang) = corpus, queries
    group = qtable["group"]
    if group.null_count < len(group) and _blank(group.drop_null()):
        return None  # a blank group
    q_ids = qtable["_id"].combine_chunks()
    cand_ids = ctable["_id"]
    if pc.any(pc.is_in(q_ids, value_set=cand_ids.combine_chunks())).as_py():
        return None  # a query id that is also a document id
    qrels = _read_qrels_fast(folder / QRELS, q_ids, cand_ids)
    if qrels is None:
        return None
    has_relevant = np.zeros(len(q_ids), dtype=bool)
    has_relevant[qrels[0]] = True
    if not has_relevant.all():
        return None
    text = ctable["text"]
    if ctable["title"].null_count < ctable.num_rows:  # titled records: BEIR's title + " " + text
        texts = text.to_pylist()
        for i, title in enumerate(ctable["title"].to_pylist()):
            if title is not None:
                texts[i] = candidate_text({"title": title, "text": texts[i]})
        text = texts
    q_id_list = q_ids.to_pylist()
    return FolderRecords(
        cand_ids,
        text,
        cand_lang,
        q_id_list,
        qtable["text"].to_pylist(),
        query_lang,
        [g if g is not None else q for g, q in zip(group.to_pylist(), q_id_list)],
        group.null_count < len(group),
        qrels[0],
        qrels[1],
    )


def setting_kinds(records: FolderRecords) -> tuple[str, ...]:
    """All three kinds if some relevant pair crosses languages, else monolingual-only."""
    crossing = bool((records.query_lang[records.qrel_query] != records.cand_lang[records.qrel_cand]).any())
    return SETTING_KINDS if crossing else (SettingKind.MONO,)


def _take(values: pa.ChunkedArray | pa.Array | list[str], rows: np.ndarray) -> list[str]:
    """``[values[i] for i in rows]`` as a list of Python strings (created once, here)."""
    if isinstance(values, list):
        return [values[i] for i in rows.tolist()]
    if len(rows) == len(values) and (rows == np.arange(len(rows))).all():
        return values.to_pylist()
    listed = values.to_pylist()
    return [listed[i] for i in rows.tolist()]


def build_folder_pool(
    name: str,
    records: FolderRecords,
    languages: tuple[str, ...],
    settings: tuple[str, ...],
    candidate_format: str = "sentence",
    all_languages: tuple[str, ...] | None = None,
) -> tuple[Pool, int]:
    """The pool of the selected ``languages`` (in task.toml order), and how many queries were left out
    because none of their relevant documents is in the selection.

    ``all_languages`` are task.toml's (what the records' language indices count; default
    ``languages``). Candidates and queries are grouped by language (stable: file order within a
    language). A pool group is (group name, relevant set): parallel queries sharing their relevant
    documents are one.
    """
    all_languages = all_languages or languages
    lang_index = {lang: i for i, lang in enumerate(languages)}
    to_selected = np.array([lang_index.get(lang, -1) for lang in all_languages], dtype=np.int64)
    cand_sel = to_selected[records.cand_lang]
    kept = np.flatnonzero(cand_sel >= 0)
    cands = kept[np.argsort(cand_sel[kept], kind="stable")]
    new_cand = np.full(len(records.cand_lang), -1, dtype=np.int64)
    new_cand[cands] = np.arange(len(cands))
    q_of, c_of = records.qrel_query, new_cand[records.qrel_cand]
    inside = c_of >= 0
    pairs = np.unique(np.stack([q_of[inside], c_of[inside]], axis=1), axis=0)  # by query, then candidate
    bounds = np.searchsorted(pairs[:, 0], np.arange(len(records.query_ids) + 1))
    query_sel = to_selected[records.query_lang]
    selected = np.flatnonzero(query_sel >= 0)
    with_relevant = selected[bounds[selected + 1] > bounds[selected]]
    queries = with_relevant[np.argsort(query_sel[with_relevant], kind="stable")].tolist()
    group_index: dict[tuple[str, tuple[int, ...]], int] = {}
    query_group, answers = [], []
    for q in queries:
        rel = tuple(pairs[bounds[q] : bounds[q + 1], 1].tolist())
        g = group_index.setdefault((records.query_group[q], rel), len(group_index))
        query_group.append(g)
        answers += [(g, c) for c in rel]
    group_ptr, group_cands = relevance_csr(answers, len(group_index))
    texts = _take(records.cand_text, cands)
    pool = Pool(
        task=name,
        languages=languages,
        candidate_format=candidate_format,
        cand_ids=_take(records.cand_ids, cands),
        cand_lang=cand_sel[cands],
        cand_sentence=texts,
        cand_context=list(texts),
        query_ids=[records.query_ids[q] for q in queries],
        query_lang=query_sel[queries] if queries else np.zeros(0, dtype=np.int64),
        query_text=[records.query_text[q] for q in queries],
        query_group=np.asarray(query_group, dtype=np.int64),
        group_names=[name for name, _ in group_index],
        group_ptr=group_ptr,
        group_cands=group_cands,
        settings=settings,
    )
    return pool, len(selected) - len(queries)


@dataclass(frozen=True)
class FolderTask:
    """A loaded task folder: its spec, the pool of the selected languages, its files and what was left out."""

    spec: TaskSpec
    pool: Pool
    files: ResolvedFiles
    grouped: bool
    queries_without_relevant: int  # queries of selected languages whose relevant documents are all outside

    def notes(self) -> dict:
        """What the results record about the folder beyond the spec."""
        return {
            "group_source": "queries.jsonl 'group'" if self.grouped else "none: each query is its own group",
            "queries_without_relevant_in_selection": self.queries_without_relevant,
        }


def load_folder(
    folder: str | Path, languages: str | list[str] | None = None, candidate_format: str | None = None
) -> FolderTask:
    """Read and check a task folder and build the pool of ``languages`` (``None``: all of task.toml's)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"--task {folder}: no such folder (and not a built-in task; see hybrid-plugin tasks)")
    missing = [f for f in LAYOUT if not (folder / f).is_file()]
    if missing:
        raise UserError(f"{folder}: no {', '.join(missing)} (a task folder holds {', '.join(LAYOUT)})")
    raw = read_task_toml(folder)
    all_langs = tuple(raw["languages"])
    records = read_records(folder, all_langs)
    settings = setting_kinds(records)
    counts = {
        what: dict(zip(all_langs, np.bincount(codes, minlength=len(all_langs)).tolist()))
        for what, codes in (("questions", records.query_lang), ("candidates", records.cand_lang))
    }
    sums = {f: sha256_file(folder / f) for f in LAYOUT}
    spec = TaskSpec(
        name=raw["name"],
        title=raw["title"],
        description=raw["description"].strip(),
        languages=all_langs,
        license=raw["license"],
        reference=raw.get("reference", ""),
        citation=raw["citation"].strip(),
        origin_url="",
        origin_commit="",
        folder=str(folder),
        files=sums,
        expected_questions=counts["questions"],
        expected_candidates=counts["candidates"],
        source=str(folder / TASK_FILE),
        in_domain_training=tuple(raw.get("in_domain_training", ())),
        settings=settings,
        candidate_unit=raw["candidate_unit"],
    )
    default = spec.candidate_formats[0]
    if candidate_format not in (None, default):
        raise UserError(
            f"--candidate-format {candidate_format} does not apply to task folder {folder}: its candidates "
            f"are the texts of {CORPUS} ({default})"
        )
    selected = select_languages(spec, languages)
    pool, left_out = build_folder_pool(spec.name, records, selected, settings, default, all_langs)
    if not pool.query_ids:
        raise UserError(
            f"{folder}: no query of {','.join(selected)} has a relevant document in the selection"
        )
    files = ResolvedFiles({f: folder / f for f in LAYOUT}, DATA_ORIGIN, sums)
    return FolderTask(spec, pool, files, records.grouped, left_out)


def spec_copy_text(spec: TaskSpec) -> str:
    """A spec without its data: task.toml's fields, the setting kinds and each file's sha256 (what a
    leaderboard folder keeps to validate and render a task folder's rows)."""
    lines = [
        task_toml(spec, spec.name).rstrip("\n"),
        f"settings = [{', '.join(_toml_string(k) for k in spec.settings)}]",
        "",
        "[files]",
        *(f"{_toml_string(f)} = {_toml_string(sha)}" for f, sha in spec.files.items()),
    ]
    return "\n".join(lines) + "\n"


def read_spec_copy(path: Path) -> TaskSpec:
    """The spec that :func:`spec_copy_text` wrote."""
    raw = read_toml_fields(path)
    settings, files = raw.get("settings"), raw.get("files")
    if not isinstance(settings, list) or not settings or not set(settings) <= set(SETTING_KINDS):
        raise UserError(f"{path}: settings must be a non-empty list of {', '.join(SETTING_KINDS)}")
    if not isinstance(files, dict) or set(files) != set(LAYOUT):
        raise UserError(f"{path}: [files] must give the sha256 of {', '.join(LAYOUT)}")
    return TaskSpec(
        name=raw["name"],
        title=raw["title"],
        description=raw["description"].strip(),
        languages=tuple(raw["languages"]),
        license=raw["license"],
        reference=raw.get("reference", ""),
        citation=raw["citation"].strip(),
        origin_url="",
        origin_commit="",
        folder="",
        files=dict(files),
        expected_questions={},
        expected_candidates={},
        source=str(path),
        in_domain_training=tuple(raw.get("in_domain_training", ())),
        settings=tuple(k for k in SETTING_KINDS if k in settings),
        candidate_unit=raw["candidate_unit"],
    )


# --- writing -----------------------------------------------------------------------------------------


def _toml_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def task_toml(spec: TaskSpec, name: str, exported_from: dict | None = None) -> str:
    """``task.toml`` text for ``spec`` under ``name`` (with an ``[exported_from]`` table if given)."""
    lines = [
        f"name = {_toml_string(name)}",
        f"title = {_toml_string(spec.title)}",
        f"description = {_toml_string(spec.description)}",
        f"languages = [{', '.join(_toml_string(x) for x in spec.languages)}]",
        f"license = {_toml_string(spec.license)}",
        f"reference = {_toml_string(spec.reference)}",
        f"candidate_unit = {_toml_string(spec.candidate_unit)}",
        f"in_domain_training = [{', '.join(_toml_string(x) for x in spec.in_domain_training)}]",
        f"citation = {_toml_string(spec.citation)}",
    ]
    if exported_from:
        lines += ["", "[exported_from]"]
        for key, value in exported_from.items():
            items = value.items() if isinstance(value, dict) else [(None, value)]
            for sub, v in items:  # a dict becomes dotted keys: sha256."de.json" = "..."
                lines.append(
                    f"{key}{'' if sub is None else '.' + _toml_string(sub)} = {_toml_string(str(v))}"
                )
    return "\n".join(lines) + "\n"


def write_folder(pool: Pool, spec: TaskSpec, name: str, out: Path, exported_from: dict | None = None) -> None:
    """Write ``pool`` as a task folder into ``out`` (an existing empty folder).

    Candidates carry the text the pool encodes (no title), queries their pool group's name as
    ``group``, and the qrels every (query, relevant candidate) pair with score 1, so reading the folder
    back gives the same pool (languages: the pool's, in its order).
    """
    selected = TaskSpec(**{**spec.__dict__, "languages": pool.languages})
    (out / TASK_FILE).write_text(task_toml(selected, name, exported_from), encoding="utf-8")
    langs = pool.languages

    def jsonl(path: Path, rows) -> None:
        with open(path, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")

    texts = pool.cand_text
    jsonl(
        out / CORPUS,
        (
            {"_id": c, "text": t, "language": langs[i]}
            for c, t, i in zip(pool.cand_ids, texts, pool.cand_lang)
        ),
    )
    jsonl(
        out / QUERIES,
        (
            {"_id": q, "text": t, "language": langs[i], "group": pool.group_names[g]}
            for q, t, i, g in zip(pool.query_ids, pool.query_text, pool.query_lang, pool.query_group)
        ),
    )
    (out / "qrels").mkdir()
    queries, cands = pool.relevant_pairs()
    with open(out / QRELS, "w", encoding="utf-8") as fh:
        fh.write("\t".join(QRELS_HEADER) + "\n")
        for q, c in zip(queries, cands):
            fh.write(f"{pool.query_ids[q]}\t{pool.cand_ids[c]}\t1\n")
