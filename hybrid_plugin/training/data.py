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
- ``jsonl:PATH`` one item-language per line: ``{"id", "lang", "query", "passage"}``; ``query`` or
  ``passage`` may be absent or null (a language with only a question, or only a passage).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hybrid_plugin.data.jsonfile import load_json, need
from hybrid_plugin.errors import UserError

PASSAGE_UNITS = ("auto", "context", "sentence")
MLQA_NAME = re.compile(
    r"^(?P<split>[A-Za-z0-9_]+)-context-(?P<c>[a-z]{2,3})-question-(?P<q>[a-z]{2,3})\.json$"
)


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

    def __str__(self) -> str:
        return f"{self.format}:{self.path}"


def parse_source(text: str) -> Source:
    """``mlqa:/data/mlqa`` → Source; UserError naming the problem otherwise."""
    fmt, sep, path = text.partition(":")
    if not sep or fmt not in READERS or not path:
        raise UserError(
            f"--train-data {text!r}: expected FORMAT:PATH with FORMAT one of {', '.join(READERS)}"
        )
    p = Path(path).expanduser()
    if not p.exists():
        raise UserError(f"--train-data {text}: no such file or folder")
    return Source(fmt, p)


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
class _MlqaRecord:
    item_id: str
    question: str
    context: str
    answer_start: int
    answer_text: str
    where: str


def _mlqa_files(path: Path) -> list[tuple[Path, str, str]]:
    files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.suffix == ".json")
    out = []
    for f in files:
        m = MLQA_NAME.match(f.name)
        if m is None:
            if path.is_file():
                raise UserError(f"{f}: MLQA files are named <split>-context-<C>-question-<Q>.json")
            continue
        out.append((f, m["c"], m["q"]))
    if not out:
        raise UserError(f"{path}: no MLQA files (<split>-context-<C>-question-<Q>.json) found")
    return out


def _mlqa_records(path: Path) -> list[_MlqaRecord]:
    raw = load_json(path)
    records = []
    for a, article in enumerate(need(raw, "data", list, "top level", path)):
        for p, para in enumerate(need(article, "paragraphs", list, f"data[{a}]", path)):
            where = f"data[{a}].paragraphs[{p}]"
            context = need(para, "context", str, where, path)
            for k, qa in enumerate(need(para, "qas", list, where, path)):
                qwhere = f"{where}.qas[{k}]"
                answers = need(qa, "answers", list, qwhere, path)
                start, text = -1, ""
                if answers:
                    start = need(answers[0], "answer_start", int, f"{qwhere}.answers[0]", path)
                    text = need(answers[0], "text", str, f"{qwhere}.answers[0]", path)
                records.append(
                    _MlqaRecord(
                        item_id=need(qa, "id", str, qwhere, path),
                        question=need(qa, "question", str, qwhere, path),
                        context=context,
                        answer_start=start,
                        answer_text=text,
                        where=f"{path}: {qwhere}",
                    )
                )
    return records


def read_mlqa(
    path: Path,
    passage_unit: str = "auto",
    segmenter: Callable[[str, str], list[tuple[int, int]]] | None = None,
    progress: bool = True,
) -> ParallelItems:
    """Read MLQA files. ``passage_unit``: ``context`` (the paragraph), ``sentence`` (the sentence that
    holds the answer) or ``auto`` (sentence when every answer has its text, else context)."""
    from tqdm.auto import tqdm

    if passage_unit not in PASSAGE_UNITS:
        raise UserError(f"passage unit {passage_unit!r}: expected one of {', '.join(PASSAGE_UNITS)}")
    files = _mlqa_files(path)
    parsed = [
        (f, c, q, _mlqa_records(f))
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
    out.sources.append(_source_record("mlqa", path, [f for f, *_ in files], passage_unit))
    return out


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


def read_jsonl(path: Path, progress: bool = True) -> ParallelItems:
    """Read ``{"id", "lang", "query", "passage"}`` lines (query or passage may be missing)."""
    if path.is_dir():
        raise UserError(f"{path}: jsonl source must be a file")
    out = ParallelItems(passage_unit="given")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}: line {n}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise UserError(f"{where}: malformed json ({err.msg})") from None
        if not isinstance(row, dict):
            raise UserError(f"{where}: expected a json object")
        item_id, lang = row.get("id"), row.get("lang")
        if not isinstance(item_id, (str, int)) or isinstance(item_id, bool) or item_id == "":
            raise UserError(f"{where}: field 'id' should be a non-empty string or integer")
        if not isinstance(lang, str) or not lang:
            raise UserError(f"{where}: field 'lang' should be a language code such as 'de'")
        texts = {}
        for key in ("query", "passage"):
            value = row.get(key)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise UserError(f"{where}: field {key!r} should be a non-empty string or null")
            texts[key] = value
        if texts["query"] is None and texts["passage"] is None:
            raise UserError(f"{where}: neither 'query' nor 'passage' is given")
        idx = out.item(str(item_id))
        if texts["query"] is not None:
            _set_text(out.questions[idx], lang, texts["query"], "query", str(item_id), where)
        if texts["passage"] is not None:
            _set_text(out.passages[idx], lang, texts["passage"], "passage", str(item_id), where)
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


READERS: dict[str, str] = {
    "mlqa": "MLQA json files <split>-context-<C>-question-<Q>.json (a folder or one file)",
    "jsonl": 'one item-language per line: {"id", "lang", "query", "passage"}',
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
    sources: Sequence[Source | str], passage_unit: str = "auto", progress: bool = True
) -> ParallelItems:
    """Read and merge every source (items with equal ids across sources are the same item)."""
    merged = ParallelItems()
    units = set()
    for src in sources:
        src = parse_source(src) if isinstance(src, str) else src
        if src.format == "mlqa":
            part = read_mlqa(src.path, passage_unit, progress=progress)
        else:
            part = read_jsonl(src.path, progress=progress)
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
