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
from dataclasses import dataclass
from pathlib import Path

import langcodes
import numpy as np

from hybrid_plugin.data.files import ResolvedFiles, sha256_file
from hybrid_plugin.data.jsonfile import JSON_MAX_BYTES, read_limited
from hybrid_plugin.data.pool import Pool, relevance_csr
from hybrid_plugin.data.spec import CANDIDATE_UNITS, SETTING_KINDS, TaskSpec, all_specs, select_languages
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


def _records(path: Path, fields: dict[str, bool], languages: tuple[str, ...]):
    """Each record of a JSON-lines file as (line number, record); ``fields`` maps a string field to
    whether it is required. Blank lines are skipped; every other problem names the line."""
    data = read_limited(path, JSON_MAX_BYTES, "task file")
    try:
        text = data.decode("utf-8-sig")  # a leading byte-order mark is not data
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    seen: dict[str, int] = {}
    for number, line in enumerate(text.split("\n"), 1):
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
    """A folder's records as read, before the language selection."""

    cand_ids: list[str]
    cand_text: list[str]
    cand_lang: list[str]
    query_ids: list[str]
    query_text: list[str]
    query_lang: list[str]
    query_group: list[str]
    query_line: list[int]
    grouped: bool  # True if any query has a ``group``
    qrels: list[tuple[int, int]]  # (query index, candidate index), score > 0, in file order


def candidate_text(record: dict) -> str:
    """What is encoded for a corpus record: BEIR's and MTEB's ``title + " " + text`` (the text alone
    when there is no title)."""
    title = record.get("title", "")
    return f"{title} {record['text']}".strip() if title.strip() else record["text"]


def _read_qrels(path: Path, queries: dict[str, int], cands: dict[str, int]) -> list[tuple[int, int]]:
    data = read_limited(path, JSON_MAX_BYTES, "qrels file")
    try:
        text = data.decode("utf-8-sig")  # a leading byte-order mark is not data
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    pairs: list[tuple[int, int]] = []
    seen: dict[tuple[str, str], int] = {}
    for number, line in enumerate(text.split("\n"), 1):
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
    """Every record of the folder's three data files, checked."""
    cand_ids, cand_text, cand_lang = [], [], []
    for _, rec in _records(
        folder / CORPUS, {"_id": True, "text": True, "language": True, "title": False}, languages
    ):
        cand_ids.append(rec["_id"])
        cand_text.append(candidate_text(rec))
        cand_lang.append(rec["language"])
    q_ids, q_text, q_lang, q_group, q_line = [], [], [], [], []
    grouped = False
    query_fields = {"_id": True, "text": True, "language": True, "group": False}
    for number, rec in _records(folder / QUERIES, query_fields, languages):
        if "group" in rec and not rec["group"].strip():
            raise UserError(f"{folder / QUERIES}: line {number}: field 'group' is empty")
        grouped |= "group" in rec
        q_ids.append(rec["_id"])
        q_text.append(rec["text"])
        q_lang.append(rec["language"])
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
    has_relevant = np.zeros(len(q_ids), dtype=bool)
    has_relevant[[q for q, _ in qrels]] = True
    if not has_relevant.all():
        q = int(np.flatnonzero(~has_relevant)[0])
        raise UserError(
            f"{folder / QUERIES}: line {q_line[q]}: query {q_ids[q]!r} has no relevant document "
            f"(score > 0) in {QRELS}"
        )
    return FolderRecords(
        cand_ids, cand_text, cand_lang, q_ids, q_text, q_lang, q_group, q_line, grouped, qrels
    )


def setting_kinds(records: FolderRecords) -> tuple[str, ...]:
    """All three kinds if some relevant pair crosses languages, else monolingual-only."""
    crossing = any(records.query_lang[q] != records.cand_lang[c] for q, c in records.qrels)
    return SETTING_KINDS if crossing else ("mono",)


def build_folder_pool(
    name: str,
    records: FolderRecords,
    languages: tuple[str, ...],
    settings: tuple[str, ...],
    candidate_format: str = "sentence",
) -> tuple[Pool, int]:
    """The pool of the selected ``languages`` (in task.toml order), and how many queries were left out
    because none of their relevant documents is in the selection.

    Candidates and queries are grouped by language (stable: file order within a language). A pool
    group is (group name, relevant set): parallel queries sharing their relevant documents are one.
    """
    lang_index = {lang: i for i, lang in enumerate(languages)}
    cands = sorted(
        (i for i, lang in enumerate(records.cand_lang) if lang in lang_index),
        key=lambda i: lang_index[records.cand_lang[i]],
    )
    new_cand = {old: new for new, old in enumerate(cands)}
    relevant: dict[int, list[int]] = {}
    for q, c in records.qrels:
        if c in new_cand:
            relevant.setdefault(q, []).append(new_cand[c])
    selected = [i for i, lang in enumerate(records.query_lang) if lang in lang_index]
    queries = sorted((q for q in selected if q in relevant), key=lambda q: lang_index[records.query_lang[q]])
    group_index: dict[tuple[str, tuple[int, ...]], int] = {}
    query_group, answers = [], []
    for q in queries:
        rel = tuple(sorted(set(relevant[q])))
        g = group_index.setdefault((records.query_group[q], rel), len(group_index))
        query_group.append(g)
        answers += [(g, c) for c in rel]
    group_ptr, group_cands = relevance_csr(answers, len(group_index))
    pool = Pool(
        task=name,
        languages=languages,
        candidate_format=candidate_format,
        cand_ids=[records.cand_ids[i] for i in cands],
        cand_lang=np.asarray([lang_index[records.cand_lang[i]] for i in cands], dtype=np.int64),
        cand_sentence=[records.cand_text[i] for i in cands],
        cand_context=[records.cand_text[i] for i in cands],
        query_ids=[records.query_ids[q] for q in queries],
        query_lang=np.asarray([lang_index[records.query_lang[q]] for q in queries], dtype=np.int64),
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
        what: {lang: sum(1 for x in langs if x == lang) for lang in all_langs}
        for what, langs in (("questions", records.query_lang), ("candidates", records.cand_lang))
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
    pool, left_out = build_folder_pool(spec.name, records, selected, settings, default)
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
