"""Training data readers → one internal form → pairs with conflict groups."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from hybrid_plugin.errors import UserError
from hybrid_plugin.training.data import (
    build_pairs,
    parse_source,
    read_jsonl,
    read_mlqa,
    read_sources,
    select_languages,
)

MLQA_TRAIN = Path("train") / "mlqa-test"


def _mlqa_file(folder: Path, c: str, q: str, rows: list[tuple[str, str, str, str]]) -> Path:
    """rows: (id, question, context, answer text); the answer starts at its first occurrence."""
    paragraphs = []
    for item_id, question, context, answer in rows:
        start = context.find(answer) if answer else 0
        paragraphs.append(
            {
                "context": context,
                "qas": [
                    {
                        "id": item_id,
                        "question": question,
                        "answers": [{"answer_start": start, "text": answer}],
                    }
                ],
            }
        )
    path = folder / f"test-context-{c}-question-{q}.json"
    path.write_text(json.dumps({"version": "1.0", "data": [{"paragraphs": paragraphs}]}), encoding="utf-8")
    return path


DE_CTX = "Berlin ist groß. Die Stadt hat 3,7 Millionen Einwohner. Sie liegt an der Spree."
ES_CTX = "Berlín es grande. La ciudad tiene 3,7 millones de habitantes. Está junto al Spree."


def _tiny_mlqa(folder: Path, answers: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    a_de = "3,7 Millionen" if answers else ""
    a_es = "3,7 millones" if answers else ""
    _mlqa_file(folder, "de", "es", [("id1", "¿Cuántos habitantes?", DE_CTX, a_de)])
    _mlqa_file(folder, "es", "de", [("id1", "Wie viele Einwohner?", ES_CTX, a_es)])
    _mlqa_file(
        folder, "es", "ar", [("id1", "كم عدد السكان؟", ES_CTX, a_es), ("id2", "ما هو؟", "Otra cosa.", "")]
    )
    (folder / "notes.json").write_text("{}", encoding="utf-8")  # not an MLQA name: ignored
    return folder


def _split_on_periods(text: str, lang: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for i, ch in enumerate(text):
        if ch == ".":
            spans.append((start, i + 1))
            start = i + 1
    return spans


def test_mlqa_joins_items_across_files_by_id(tmp_path: Path) -> None:
    items = read_mlqa(_tiny_mlqa(tmp_path / "m"), passage_unit="context", progress=False)
    assert items.ids == ["id1", "id2"]
    i = items.ids.index("id1")
    assert items.questions[i] == {
        "es": "¿Cuántos habitantes?",
        "de": "Wie viele Einwohner?",
        "ar": "كم عدد السكان؟",
    }
    assert items.passages[i] == {"de": DE_CTX, "es": ES_CTX}
    assert items.languages() == ("ar", "de", "es")
    assert items.counts()["es"] == {"questions": 1, "passages": 2}
    assert [s["format"] for s in items.sources] == ["mlqa"]
    assert len(items.sources[0]["files"]) == 3


def test_mlqa_sentence_unit_takes_the_answer_sentence(tmp_path: Path) -> None:
    folder = tmp_path / "full"
    folder.mkdir()
    _mlqa_file(folder, "de", "es", [("id1", "¿Cuántos?", DE_CTX, "3,7 Millionen")])
    _mlqa_file(folder, "es", "de", [("id1", "Wie viele?", ES_CTX, "Spree")])
    items = read_mlqa(folder, passage_unit="auto", segmenter=_split_on_periods, progress=False)
    assert items.passage_unit == "sentence"
    assert items.passages[0] == {"de": "Die Stadt hat 3,7 Millionen Einwohner.", "es": "Está junto al Spree."}


def test_mlqa_blank_answers_mean_context_or_a_clear_error(tmp_path: Path) -> None:
    folder = _tiny_mlqa(tmp_path / "m", answers=False)
    assert read_mlqa(folder, passage_unit="auto", progress=False).passage_unit == "context"
    with pytest.raises(
        UserError, match=r"test-context-de-question-es\.json: data\[0\]\.paragraphs\[0\]\.qas\[0\]"
    ):
        read_mlqa(folder, passage_unit="sentence", segmenter=_split_on_periods, progress=False)


def test_pysbd_segmenter_finds_the_answer_sentence(tmp_path: Path) -> None:
    pytest.importorskip("pysbd")
    folder = tmp_path / "m"
    folder.mkdir()
    _mlqa_file(
        folder, "de", "es", [("x", "¿Dónde?", "Er lebte z. B. in Berlin. Dort blieb er bis 1990.", "1990")]
    )
    items = read_mlqa(folder, passage_unit="sentence", progress=False)
    assert items.passages[0] == {"de": "Dort blieb er bis 1990."}


def test_mlqa_bad_input_names_file_and_field(tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    bad = folder / "test-context-de-question-es.json"
    bad.write_text(
        '{"data": [{"paragraphs": [{"context": "x", "qas": [{"question": "q", "answers": []}]}]}]}',
        encoding="utf-8",
    )
    with pytest.raises(
        UserError, match=r"question-es\.json: data\[0\]\.paragraphs\[0\]\.qas\[0\] has no field 'id'"
    ):
        read_mlqa(folder, progress=False)
    bad.write_text('{"data": [', encoding="utf-8")
    with pytest.raises(UserError, match=r"question-es\.json: malformed json at line 1"):
        read_mlqa(folder, progress=False)
    with pytest.raises(UserError, match="no MLQA files"):
        read_mlqa(tmp_path, progress=False)


def test_jsonl_reader_and_its_errors(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    rows = [
        {"id": "a", "lang": "de", "query": "Wo?", "passage": "Hier."},
        {"id": "a", "lang": "fr", "query": "Où ?", "passage": None},
        {"id": 7, "lang": "de", "passage": "Dort."},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    items = read_jsonl(path, progress=False)
    assert items.ids == ["a", "7"]
    assert items.questions == [{"de": "Wo?", "fr": "Où ?"}, {}]
    assert items.passages == [{"de": "Hier."}, {"de": "Dort."}]

    path.write_text(
        json.dumps(rows[0]) + "\n" + json.dumps({"id": "b", "query": "x"}) + "\n", encoding="utf-8"
    )
    with pytest.raises(UserError, match=r"pairs\.jsonl: line 2: field 'lang'"):
        read_jsonl(path, progress=False)
    path.write_text(json.dumps({"id": "b", "lang": "de"}), encoding="utf-8")
    with pytest.raises(UserError, match=r"line 1: neither 'query' nor 'passage'"):
        read_jsonl(path, progress=False)
    path.write_text(
        json.dumps(rows[0]) + "\n" + json.dumps({**rows[0], "passage": "Anders."}), encoding="utf-8"
    )
    with pytest.raises(UserError, match=r"line 2: passage of id a in de differs"):
        read_jsonl(path, progress=False)


def test_pairs_and_conflict_groups(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    rows = [
        {"id": "a", "lang": "de", "query": "qa-de", "passage": "shared paragraph"},
        {"id": "a", "lang": "es", "query": "qa-es", "passage": "pa-es"},
        {"id": "b", "lang": "de", "query": "qb-de", "passage": "shared paragraph"},  # same text as a
        {"id": "c", "lang": "de", "query": "qc-de", "passage": "pc-de"},
        {"id": "d", "lang": "es", "query": "qd-es"},  # no passage: no pairs
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    pairs = build_pairs(read_jsonl(path, progress=False))
    assert pairs.languages == ("de", "es")
    got = sorted(zip(pairs.query, pairs.passage))
    assert got == sorted(
        [
            ("qa-de", "shared paragraph"),
            ("qa-de", "pa-es"),
            ("qa-es", "shared paragraph"),
            ("qa-es", "pa-es"),
            ("qb-de", "shared paragraph"),
            ("qc-de", "pc-de"),
        ]
    )
    group_of = {pairs.item_ids[i]: int(g) for i, g in zip(pairs.item, pairs.group)}
    assert group_of["a"] == group_of["b"] != group_of["c"]
    assert len(pairs.group) == len(pairs.query_lang) == len(pairs.passage_lang) == 6
    ds = pairs.to_dataset()
    assert ds.column_names == ["query", "passage"] and len(ds) == 6


def test_select_languages(tmp_path: Path) -> None:
    items = read_mlqa(_tiny_mlqa(tmp_path / "m"), passage_unit="context", progress=False)
    de_es = select_languages(items, ["de", "es"])
    assert de_es.ids == ["id1"]
    assert de_es.questions[0] == {"es": "¿Cuántos habitantes?", "de": "Wie viele Einwohner?"}
    with pytest.raises(UserError, match="--languages: fr not in the training data"):
        select_languages(items, ["de", "fr"])


def test_sources_are_parsed_and_evaluation_files_refused(tmp_path: Path, datasets: Path) -> None:
    with pytest.raises(UserError, match="expected FORMAT:PATH"):
        parse_source("squad:/x")
    with pytest.raises(UserError, match="no such file or folder"):
        parse_source(f"mlqa:{tmp_path / 'missing'}")
    folder = tmp_path / "sneaky"
    folder.mkdir()
    shutil.copy(datasets / "xquad-r" / "de.json", folder / "test-context-de-question-de.json")
    with pytest.raises(UserError, match=r"is the evaluation file xquad-r/de\.json; never train on it"):
        read_sources([f"mlqa:{folder}"], progress=False)


def test_offline_mlqa_training_data(datasets: Path) -> None:
    """The shared MLQA test copy: answers are blank, so passages are the paragraphs."""
    folder = datasets / MLQA_TRAIN
    if not folder.is_dir():
        pytest.skip(f"{folder} not present")
    items = read_sources([f"mlqa:{folder}"], progress=False)
    assert len(items) == 9677
    assert items.passage_unit == "context"
    assert items.languages() == ("ar", "de", "es", "hi", "vi", "zh")
    assert items.counts()["vi"] == {"questions": 4365, "passages": 1675}
    pairs = build_pairs(items)
    assert len(pairs) == 41904
    mono = pairs.query_lang == pairs.passage_lang
    assert int(mono.sum()) == 3821 + 3283 + 3128 + 1675
    assert int(pairs.group.max()) + 1 == 8491
