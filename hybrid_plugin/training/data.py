"""Training data: readers of parallel question/answer files → one internal form → (query, passage) pairs.

The internal form is :class:`ParallelItems`: one *item* is one question/answer across languages, with
its question and its passage in each language it has. Items sharing an id across files or languages
are parallel. :func:`build_pairs` expands items into every (query language, passage language) pair
and gives each pair a *conflict group*: items linked by a shared text (the same paragraph asked
about twice, a repeated question) share a group, and a sampler must never put two pairs of one
group in a batch, where one would be the other's false negative.

Sources are named ``FORMAT:PATH``:

- ``mlqa:PATH``  MLQA json (SQuAD format) named ``<split>-context-<C>-question-<Q>.json``; PATH is a
  folder of such files or one file. The question is in language Q, the passage in C.
- ``squad:PATH`` SQuAD-format json, question and context in one language (e.g. translate-train
  files): the language is the last two-letter language code in the file name
  (``squad.translate.train.en-de.json`` → de), or given as ``squad[de]:PATH``. Question ids shared
  across files make parallel items; ids found in one file only make monolingual items.
- ``jsonl:PATH`` one pair per line, ``{"id", "query_lang", "query", "passage_lang", "passage"}``,
  or one item-language per line, ``{"id", "lang", "query", "passage"}`` (``query`` or ``passage``
  may then be null). Lines with the same ``id`` are one item.

Language codes must be ISO 639 codes (``de``, ``zh``, ``fil``); anything else is refused.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hybrid_plugin.data.jsonfile import need, squad_paragraphs, squad_questions
from hybrid_plugin.errors import UserError

PASSAGE_UNITS = ("auto", "context", "sentence")
MLQA_NAME = re.compile(
    r"^(?P<split>[A-Za-z0-9_]+)-context-(?P<c>[a-z]{2,3})-question-(?P<q>[a-z]{2,3})\.json$"
)
SOURCE_FORMAT = re.compile(r"^(?P<format>[a-z]+)(?:\[(?P<lang>[^\]]*)\])?$")


def language_code(code: object, where: str) -> str:
    """``code`` if it is a plain ISO 639 language code (``de``, ``fil``), else a UserError at ``where``."""
    import langcodes

    if (
        not isinstance(code, str)
        or re.fullmatch(r"[a-z]{2,3}", code) is None
        or code in ("und", "mul", "zxx", "mis")
        or not langcodes.tag_is_valid(code)
    ):
        raise UserError(f"{where}: {code!r} is not an ISO 639 language code such as 'de' or 'zh'")
    return code


@dataclass
class ParallelItems:
    """Items (one question/answer each) with their question and passage per language."""

    ids: list[str] = field(default_factory=list)
    questions: list[dict[str, str]] = field(default_factory=list)  # per item: language -> question
    passages: list[dict[str, str]] = field(default_factory=list)  # per item: language -> passage
    sources: list[dict] = field(default_factory=list)  # what was read: format, path, files, sha256
    passage_unit: str = "context"  # "context", "sentence" or "given" (jsonl)
    _index: dict[str, int] = field(default_factory=dict, repr=False)

    def item(self, item_id: str) -> int:
        """Index of ``item_id``, created empty on first use."""
        idx = self._index.get(item_id)
        if idx is None:
            idx = self._index[item_id] = len(self.ids)
            self.ids.append(item_id)
            self.questions.append({})
            self.passages.append({})
        return idx

    def __len__(self) -> int:
        return len(self.ids)

    def languages(self) -> tuple[str, ...]:
        """Every language with a question or a passage, sorted."""
        langs = {lang for q in self.questions for lang in q} | {lang for p in self.passages for lang in p}
        return tuple(sorted(langs))

    def counts(self) -> dict[str, dict[str, int]]:
        """Questions and passages per language."""
        out = {lang: {"questions": 0, "passages": 0} for lang in self.languages()}
        for q, p in zip(self.questions, self.passages):
            for lang in q:
                out[lang]["questions"] += 1
            for lang in p:
                out[lang]["passages"] += 1
        return out


@dataclass
class PairTable:
    """Every (query, passage) training pair with what a sampler needs to know about it."""

    languages: tuple[str, ...]
    query: list[str]
    passage: list[str]
    item: np.ndarray  # int64, index into item_ids
    group: np.ndarray  # int64, conflict group: pairs of one group never share a batch
    query_lang: np.ndarray  # int16, index into languages
    passage_lang: np.ndarray  # int16
    item_ids: list[str]

    def __len__(self) -> int:
        return len(self.query)

    def select(self, rows: Sequence[int] | np.ndarray) -> PairTable:
        """The pairs at ``rows`` (in that order), same languages and items."""
        idx = np.asarray(rows, dtype=np.int64)
        return PairTable(
            languages=self.languages,
            query=[self.query[i] for i in idx],
            passage=[self.passage[i] for i in idx],
            item=self.item[idx],
            group=self.group[idx],
            query_lang=self.query_lang[idx],
            passage_lang=self.passage_lang[idx],
            item_ids=self.item_ids,
        )

    def counts(self) -> dict[str, int]:
        """Pairs per (query language, passage language), as ``"de-es"`` (query de, passage es)."""
        n = len(self.languages)
        flat = np.bincount(self.query_lang.astype(np.int64) * n + self.passage_lang, minlength=n * n)
        return {
            f"{self.languages[k // n]}-{self.languages[k % n]}": int(flat[k]) for k in np.flatnonzero(flat)
        }

    def to_dataset(self):
        """A ``datasets.Dataset`` with the two text columns the loss reads: ``query``, ``passage``."""
        from datasets import Dataset

        return Dataset.from_dict({"query": self.query, "passage": self.passage})


# ----------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class Source:
    """One ``FORMAT:PATH`` training source."""

    format: str
    path: Path
    language: str | None = None  # squad[LANG]: the language of every file

    def __str__(self) -> str:
        lang = f"[{self.language}]" if self.language else ""
        return f"{self.format}{lang}:{self.path}"


def parse_source(text: str) -> Source:
    """``mlqa:/data/mlqa`` or ``squad[de]:train.json`` → Source; UserError naming the problem otherwise."""
    head, sep, path = text.partition(":")
    m = SOURCE_FORMAT.match(head)
    if not sep or m is None or m["format"] not in READERS or not path:
        raise UserError(
            f"--train-data {text!r}: expected FORMAT:PATH with FORMAT one of {', '.join(READERS)}"
        )
    lang = m["lang"]
    if lang is not None:
        if m["format"] != "squad":
            raise UserError(f"--train-data {text!r}: only squad takes a language, as squad[de]:PATH")
        language_code(lang, f"--train-data {text}")
    p = Path(path).expanduser()
    if not p.exists():
        raise UserError(f"--train-data {text}: no such file or folder")
    return Source(m["format"], p, lang)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _set_text(table: dict[str, str], lang: str, text: str, what: str, item_id: str, where: str) -> None:
    """Record a question/passage; the same item and language must always carry the same text."""
    old = table.get(lang)
    if old is not None and old != text:
        raise UserError(f"{where}: {what} of id {item_id} in {lang} differs from the one read before")
    table[lang] = text


@dataclass
class _SquadRecord:
    item_id: str
    question: str
    context: str
    answer_start: int
    answer_text: str
    where: str


def _json_files(path: Path) -> list[Path]:
    return [path] if path.is_file() else sorted(p for p in path.iterdir() if p.suffix == ".json")


def _mlqa_files(path: Path) -> list[tuple[Path, str, str]]:
    out = []
    for f in _json_files(path):
        m = MLQA_NAME.match(f.name)
        if m is None:
            if path.is_file():
                raise UserError(f"{f}: MLQA files are named <split>-context-<C>-question-<Q>.json")
            continue
        c = language_code(m["c"], f"{f}: context language in the file name")
        q = language_code(m["q"], f"{f}: question language in the file name")
        out.append((f, c, q))
    if not out:
        raise UserError(f"{path}: no MLQA files (<split>-context-<C>-question-<Q>.json) found")
    return out


def _language_from_name(f: Path) -> str | None:
    """The last two-letter language code among the parts of the file name (``train.en-de.json`` → de)."""
    import langcodes

    parts = re.split(r"[-._\s]+", f.stem.lower())
    codes = [p for p in parts if re.fullmatch(r"[a-z]{2}", p) and langcodes.tag_is_valid(p)]
    return codes[-1] if codes else None


def _squad_files(path: Path, language: str | None) -> list[tuple[Path, str, str]]:
    files = _json_files(path)
    if not files:
        raise UserError(f"{path}: no .json files found")
    out = []
    for f in files:
        lang = language or _language_from_name(f)
        if lang is None:
            raise UserError(
                f"{f}: the file name gives no language (e.g. train.de.json); rename it or pass squad[de]:PATH"
            )
        out.append((f, lang, lang))
    return out


def _squad_records(path: Path) -> list[_SquadRecord]:
    """Every question of a SQuAD-format file, with its context and first answer (if any)."""
    records = []
    for _, _, where, para, context in squad_paragraphs(path):
        for qwhere, qa, item_id, question in squad_questions(para, where, path):
            answers = need(qa, "answers", list, qwhere, path)
            start, text = -1, ""
            if answers:
                start = need(answers[0], "answer_start", int, f"{qwhere}.answers[0]", path)
                text = need(answers[0], "text", str, f"{qwhere}.answers[0]", path)
            records.append(_SquadRecord(item_id, question, context, start, text, f"{path}: {qwhere}"))
    return records


def _read_squad_family(
    fmt: str,
    path: Path,
    files: list[tuple[Path, str, str]],
    passage_unit: str,
    segmenter: Callable[[str, str], list[tuple[int, int]]] | None,
    progress: bool,
) -> ParallelItems:
    """Read SQuAD-format ``files`` given as (file, context language, question language)."""
    from tqdm.auto import tqdm

    if passage_unit not in PASSAGE_UNITS:
        raise UserError(f"passage unit {passage_unit!r}: expected one of {', '.join(PASSAGE_UNITS)}")
    parsed = [
        (f, c, q, _squad_records(f))
        for f, c, q in tqdm(files, desc=f"reading {path.name}", unit="file", disable=not progress)
    ]
    blank = next((r for *_, recs in parsed for r in recs if not r.answer_text), None)
    if passage_unit == "auto":
        passage_unit = "context" if blank is not None else "sentence"
    elif passage_unit == "sentence" and blank is not None:
        raise UserError(
            f"{blank.where}: answer text is empty, so its sentence is unknown; use passage unit 'context'"
        )
    if passage_unit == "sentence" and segmenter is None:
        segmenter = default_segmenter()

    out = ParallelItems(passage_unit=passage_unit)
    spans: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for _file, c_lang, q_lang, records in parsed:
        for r in records:
            idx = out.item(r.item_id)
            _set_text(out.questions[idx], q_lang, r.question, "question", r.item_id, r.where)
            if passage_unit == "context":
                passage = r.context
            else:
                assert segmenter is not None
                end = r.answer_start + len(r.answer_text)
                if r.context[r.answer_start : end] != r.answer_text:
                    raise UserError(f"{r.where}: answer text is not at answer_start {r.answer_start}")
                key = (c_lang, r.context)
                if key not in spans:
                    spans[key] = segmenter(r.context, c_lang)
                passage = _sentence_at(r.context, spans[key], r.answer_start, r.where)
            _set_text(out.passages[idx], c_lang, passage, "passage", r.item_id, r.where)
    out.sources.append(_source_record(fmt, path, [f for f, *_ in files], passage_unit))
    return out


def read_mlqa(
    path: Path,
    passage_unit: str = "auto",
    segmenter: Callable[[str, str], list[tuple[int, int]]] | None = None,
    progress: bool = True,
) -> ParallelItems:
    """Read MLQA files. ``passage_unit``: ``context`` (the paragraph), ``sentence`` (the sentence that
    holds the answer) or ``auto`` (sentence when every answer has its text, else context)."""
    return _read_squad_family("mlqa", path, _mlqa_files(path), passage_unit, segmenter, progress)


def read_squad(
    path: Path,
    language: str | None = None,
    passage_unit: str = "auto",
    segmenter: Callable[[str, str], list[tuple[int, int]]] | None = None,
    progress: bool = True,
) -> ParallelItems:
    """Read SQuAD-format files, one language each (``language``, else from each file's name)."""
    files = _squad_files(path, language)
    return _read_squad_family("squad", path, files, passage_unit, segmenter, progress)


def _sentence_at(context: str, spans: Sequence[tuple[int, int]], start: int, where: str) -> str:
    for a, b in spans:
        if a <= start < b:
            return context[a:b].strip()
    raise UserError(f"{where}: answer_start {start} is in no sentence of its context")


def default_segmenter() -> Callable[[str, str], list[tuple[int, int]]]:
    """pysbd sentence spans (language rules where pysbd has them, English rules otherwise)."""
    try:
        import pysbd
        from pysbd.languages import LANGUAGE_CODES
    except ImportError:
        raise UserError(
            "passage unit 'sentence' needs the sentence segmenter pysbd: pip install 'hybrid-plugin[train]'"
        ) from None
    cache: dict[str, object] = {}

    def segment(text: str, lang: str) -> list[tuple[int, int]]:
        if lang not in cache:
            code = lang if lang in LANGUAGE_CODES else "en"
            cache[lang] = pysbd.Segmenter(language=code, clean=False, char_span=True)
        return [(s.start, s.end) for s in cache[lang].segment(text)]

    return segment


def _jsonl_text(row: dict, key: str, where: str, required: bool) -> str | None:
    value = row.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        need_what = "a non-empty string" if required else "a non-empty string or null"
        raise UserError(f"{where}: field {key!r} should be {need_what}")
    return value


def read_jsonl(path: Path, progress: bool = True) -> ParallelItems:
    """Read pair lines ``{"id", "query_lang", "query", "passage_lang", "passage"}`` or item-language
    lines ``{"id", "lang", "query", "passage"}`` (query or passage may be null there)."""
    from tqdm.auto import tqdm

    if path.is_dir():
        raise UserError(f"{path}: jsonl source must be a file")
    out = ParallelItems(passage_unit="given")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    for n, line in enumerate(tqdm(lines, desc=f"reading {path.name}", unit="line", disable=not progress), 1):
        if not line.strip():
            continue
        where = f"{path}: line {n}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise UserError(f"{where}: malformed json ({err.msg})") from None
        except RecursionError:
            raise UserError(f"{where}: json nested too deeply (thousands of levels)") from None
        if not isinstance(row, dict):
            raise UserError(f"{where}: expected a json object")
        item_id = row.get("id")
        if not isinstance(item_id, (str, int)) or isinstance(item_id, bool) or str(item_id).strip() == "":
            raise UserError(f"{where}: field 'id' should be a non-empty string or integer")
        item_id = str(item_id)
        if "lang" in row:  # one item-language: its question and/or its passage
            lang = language_code(row["lang"], f"{where}: field 'lang'")
            query = _jsonl_text(row, "query", where, required=False)
            passage = _jsonl_text(row, "passage", where, required=False)
            if query is None and passage is None:
                raise UserError(f"{where}: neither 'query' nor 'passage' is given")
            q_lang = p_lang = lang
        else:  # one pair
            for key in ("query_lang", "passage_lang"):
                if key not in row:
                    raise UserError(f"{where}: no field {key!r} (or 'lang'); expected {JSONL_FIELDS}")
            q_lang = language_code(row["query_lang"], f"{where}: field 'query_lang'")
            p_lang = language_code(row["passage_lang"], f"{where}: field 'passage_lang'")
            query = _jsonl_text(row, "query", where, required=True)
            passage = _jsonl_text(row, "passage", where, required=True)
        idx = out.item(item_id)
        if query is not None:
            _set_text(out.questions[idx], q_lang, query, "query", item_id, where)
        if passage is not None:
            _set_text(out.passages[idx], p_lang, passage, "passage", item_id, where)
    if not out.ids:
        raise UserError(f"{path}: no rows")
    out.sources.append(_source_record("jsonl", path, [path], "given"))
    return out


def _source_record(fmt: str, path: Path, files: Iterable[Path], unit: str) -> dict:
    return {
        "format": fmt,
        "path": str(path),
        "passage_unit": unit,
        "files": {f.name: _sha256(f) for f in files},
    }


JSONL_FIELDS = '{"id", "query_lang", "query", "passage_lang", "passage"}'
READERS: dict[str, str] = {
    "mlqa": "MLQA json files <split>-context-<C>-question-<Q>.json (a folder or one file)",
    "squad": "SQuAD-format json, one language per file (from the file name, or squad[de]:PATH)",
    "jsonl": f"one pair per line, {JSONL_FIELDS}",
}


def check_not_evaluation_data(items: ParallelItems) -> None:
    """Refuse files that are a benchmark's evaluation files (by sha256 against every task spec)."""
    from hybrid_plugin.data.spec import all_specs

    known = {sha: (spec.name, name) for spec in all_specs().values() for name, sha in spec.files.items()}
    for source in items.sources:
        for name, sha in source["files"].items():
            if sha in known:
                task, file = known[sha]
                raise UserError(
                    f"{source['path']}: {name} is the evaluation file {task}/{file}; never train on it"
                )


def read_sources(
    sources: Sequence[Source | str],
    passage_unit: str = "auto",
    progress: bool = True,
    data_dir: str | Path | None = None,
) -> ParallelItems:
    """Read and merge every source (items with equal ids across sources are the same item).

    Each source is refused if it is evaluation data: an evaluation file (sha256), or questions of
    an evaluation task found under ``data_dir`` (see :mod:`hybrid_plugin.training.guard`).
    """
    from hybrid_plugin.training.guard import check_content, evaluation_questions

    merged = ParallelItems()
    units = set()
    eval_tasks, skipped = evaluation_questions(data_dir)
    for src in sources:
        src = parse_source(src) if isinstance(src, str) else src
        if src.format == "mlqa":
            part = read_mlqa(src.path, passage_unit, progress=progress)
        elif src.format == "squad":
            part = read_squad(src.path, src.language, passage_unit, progress=progress)
        else:
            part = read_jsonl(src.path, progress=progress)
        check_not_evaluation_data(part)
        checked = check_content(f"--train-data {src}", part.ids, part.questions, eval_tasks, skipped)
        for record in part.sources:
            record["evaluation_check"] = checked
        units.add(part.passage_unit)
        for item_id, qs, ps in zip(part.ids, part.questions, part.passages):
            idx = merged.item(item_id)
            for lang, text in qs.items():
                _set_text(merged.questions[idx], lang, text, "question", item_id, str(src))
            for lang, text in ps.items():
                _set_text(merged.passages[idx], lang, text, "passage", item_id, str(src))
        merged.sources += part.sources
    if not merged.ids:
        raise UserError("no training data: pass --train-data FORMAT:PATH")
    merged.passage_unit = "+".join(sorted(units))
    check_not_evaluation_data(merged)
    return merged


def select_languages(items: ParallelItems, languages: Sequence[str] | None) -> ParallelItems:
    """Keep only the given languages' questions and passages (all when ``languages`` is None)."""
    if not languages:
        return items
    have = set(items.languages())
    unknown = [lang for lang in languages if lang not in have]
    if unknown:
        raise UserError(
            f"--languages: {', '.join(unknown)} not in the training data (it has {', '.join(sorted(have))})"
        )
    keep = set(languages)
    out = ParallelItems(sources=items.sources, passage_unit=items.passage_unit)
    for item_id, qs, ps in zip(items.ids, items.questions, items.passages):
        q = {k: v for k, v in qs.items() if k in keep}
        p = {k: v for k, v in ps.items() if k in keep}
        if q and p:
            idx = out.item(item_id)
            out.questions[idx], out.passages[idx] = q, p
    return out


# ----------------------------------------------------------------------------- pairs


def _conflict_groups(items: ParallelItems) -> np.ndarray:
    """Union-find over items: two items sharing any question or passage text share a group."""
    parent = list(range(len(items)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    owner: dict[tuple[str, str], int] = {}
    for i, (qs, ps) in enumerate(zip(items.questions, items.passages)):
        for kind, table in (("q", qs), ("p", ps)):
            for text in table.values():
                j = owner.setdefault((kind, text), i)
                if j != i:
                    a, b = find(i), find(j)
                    if a != b:
                        parent[max(a, b)] = min(a, b)
    roots = np.array([find(i) for i in range(len(items))], dtype=np.int64)
    _, groups = np.unique(roots, return_inverse=True)
    return groups.astype(np.int64)


def build_pairs(items: ParallelItems) -> PairTable:
    """Every (question in X, passage in Y) of every item, for all X and Y it has."""
    languages = items.languages()
    code = {lang: i for i, lang in enumerate(languages)}
    groups = _conflict_groups(items)
    query, passage, item, group, q_lang, p_lang = [], [], [], [], [], []
    for i, (qs, ps) in enumerate(zip(items.questions, items.passages)):
        for ql, qt in sorted(qs.items()):
            for pl, pt in sorted(ps.items()):
                query.append(qt)
                passage.append(pt)
                item.append(i)
                group.append(groups[i])
                q_lang.append(code[ql])
                p_lang.append(code[pl])
    if not query:
        raise UserError("the training data has no item with both a question and a passage")
    return PairTable(
        languages=languages,
        query=query,
        passage=passage,
        item=np.asarray(item, dtype=np.int64),
        group=np.asarray(group, dtype=np.int64),
        query_lang=np.asarray(q_lang, dtype=np.int16),
        passage_lang=np.asarray(p_lang, dtype=np.int16),
        item_ids=list(items.ids),
    )


def split_dev(pairs: PairTable, fraction: float, seed: int) -> tuple[PairTable, PairTable | None]:
    """Hold out ``fraction`` of the conflict groups (with all their pairs) as a dev set.

    Whole groups go to one side, so no dev pair shares a question or passage with a training pair.
    """
    if fraction <= 0:
        return pairs, None
    groups = np.unique(pairs.group)
    n_dev = int(round(fraction * len(groups)))
    if n_dev < 1 or n_dev >= len(groups):
        raise UserError(f"--dev-fraction {fraction}: {len(groups)} independent items cannot be split so")
    chosen = np.random.default_rng([seed, 0xDE5]).choice(groups, size=n_dev, replace=False)
    dev = np.isin(pairs.group, chosen)
    return pairs.select(np.flatnonzero(~dev)), pairs.select(np.flatnonzero(dev))
