"""Never train on evaluation data: recognise it by content, not only by its file's sha256.

A copy of an evaluation file that was re-serialised, converted to jsonl or mixed into a larger
file has other bytes but the same questions. For every task we hash (8 bytes each) the question
ids and the normalised question texts of its files, found like ``hybrid-plugin evaluate`` finds
them (``--data-dir``, ``$HYBRID_PLUGIN_DATA``, the user cache; never a download), and cache the
hashes per set of file checksums, so after the first run the check costs one sha256 pass over the
files. An item overlaps a task when its id or any of its questions is one of the task's.

MLQA test (a training set) and MLQA dev (MLQA-R) share a couple of short questions by chance, so
a few overlapping items are recorded and warned about; :data:`REFUSE_AT` or more are refused.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from hybrid_plugin.atomic import atomic_path
from hybrid_plugin.data.jsonfile import load_json
from hybrid_plugin.data.spec import TaskSpec, all_specs
from hybrid_plugin.errors import UserError, warn
from hybrid_plugin.paths import cache_root

REFUSE_AT = 10
HASH_BYTES = 8
CACHE_DIR = "eval-questions"
FORMAT = 1


def _hash(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=HASH_BYTES).digest()


def normalise(question: str) -> str:
    """Casefolded NFKC text with runs of whitespace made one space (re-serialising changes neither)."""
    return " ".join(unicodedata.normalize("NFKC", question).casefold().split())


def _questions(path: Path) -> Iterable[tuple[str, str]]:
    """(id, question) of every question in a SQuAD-shaped file (all evaluation tasks are)."""
    raw = load_json(path)
    for article in raw.get("data", []) if isinstance(raw, dict) else []:
        for para in article.get("paragraphs", []) if isinstance(article, dict) else []:
            for qa in para.get("qas", []) if isinstance(para, dict) else []:
                if isinstance(qa, dict):
                    yield str(qa.get("id", "")), str(qa.get("question", ""))


class TaskQuestions:
    """The hashed question ids and texts of one evaluation task (the languages found)."""

    def __init__(self, task: str, languages: tuple[str, ...], ids: set[bytes], texts: set[bytes]) -> None:
        self.task, self.languages, self.ids, self.texts = task, languages, ids, texts

    @classmethod
    def load(cls, spec: TaskSpec, data_dir: str | Path | None) -> TaskQuestions | str:
        """The task's questions, or why they cannot be had (data not found)."""
        from hybrid_plugin.data.files import resolve_files

        found: dict[str, Path] = {}
        sums: dict[str, str] = {}
        for lang in spec.languages:
            try:
                files = resolve_files(spec, (lang,), data_dir, download=False, verify=False)
            except UserError:
                continue
            found.update(files.paths)
            sums.update(files.sha256)
        if not found:
            return "its data was not found (pass --data-dir)"
        key = hashlib.sha256(json.dumps([FORMAT, sorted(sums.items())]).encode()).hexdigest()[:16]
        cached = cache_root() / CACHE_DIR / f"{spec.name}-{key}.npz"
        try:
            with np.load(cached, allow_pickle=False) as data:
                ids, texts = data["ids"], data["texts"]
        except Exception:  # no cache yet or a bad one: read the files (a second or so)
            pairs = [q for path in found.values() for q in _questions(path)]
            ids = _rows(_hash(i) for i, _ in pairs if i)
            texts = _rows(_hash(normalise(q)) for _, q in pairs if q.strip())
            try:
                with atomic_path(cached, suffix=".npz") as tmp, open(tmp, "wb") as fh:
                    np.savez(fh, ids=ids, texts=texts)
            except OSError:
                pass  # a read-only cache only costs the parse next time
        return cls(spec.name, tuple(found), {r.tobytes() for r in ids}, {r.tobytes() for r in texts})

    def overlap(self, item_ids: list[str], questions: list[dict[str, str]]) -> tuple[int, int, int]:
        """(items overlapping, of them by id, by question text)."""
        by_id = by_text = both = 0
        for item_id, qs in zip(item_ids, questions):
            i = _hash(item_id) in self.ids
            t = any(_hash(normalise(q)) in self.texts for q in qs.values())
            by_id, by_text, both = by_id + i, by_text + t, both + (i or t)
        return both, by_id, by_text


def _rows(hashes: Iterable[bytes]) -> np.ndarray:
    data = b"".join(sorted(set(hashes)))
    return np.frombuffer(data, dtype=np.uint8).reshape(-1, HASH_BYTES)


def evaluation_questions(data_dir: str | Path | None) -> tuple[list[TaskQuestions], dict[str, str]]:
    """Every task's questions that can be found, and why the others were skipped."""
    tasks, skipped = [], {}
    for spec in all_specs().values():
        got = TaskQuestions.load(spec, data_dir)
        if isinstance(got, str):
            skipped[spec.name] = got
        else:
            tasks.append(got)
    return tasks, skipped


def check_content(
    source: str,
    item_ids: list[str],
    questions: list[dict[str, str]],
    tasks: list[TaskQuestions],
    skipped: dict[str, str],
) -> dict:
    """Refuse ``source`` if :data:`REFUSE_AT` or more of its items are some task's; returns what
    was checked (for ``training.json``): overlap per task and the tasks that could not be checked."""
    overlaps = {}
    for task in tasks:
        n, by_id, by_text = task.overlap(item_ids, questions)
        overlaps[task.task] = n
        if n >= REFUSE_AT:
            raise UserError(
                f"{source}: {n} of its {len(item_ids)} items are questions of the evaluation task "
                f"{task.task} ({by_id} by question id, {by_text} by question text); never train on "
                "evaluation data"
            )
        if n:
            warn(
                f"{source}: {n} item(s) share a question id or text with the evaluation task {task.task} "
                f"(refused from {REFUSE_AT}; recorded in training.json)"
            )
    return {"overlapping_items": overlaps, "skipped": skipped}
