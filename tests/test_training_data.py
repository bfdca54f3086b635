"""Training data readers → one internal form → pairs with conflict groups."""

from __future__ import annotations

import json
import re
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
    read_squad,
    select_languages,
    split_dev,
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


def test_jsonl_reader_pair_lines_and_item_language_lines(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    rows = [
        {"id": "a", "query_lang": "de", "query": "Wo?", "passage_lang": "es", "passage": "Aquí."},
        {"id": "a", "query_lang": "fr", "query": "Où ?", "passage_lang": "de", "passage": "Hier."},
        {"id": 7, "lang": "de", "passage": "Dort."},
        {"id": 7, "lang": "fil", "query": "Saan?", "passage": None},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    items = read_jsonl(path, progress=False)
    assert items.ids == ["a", "7"]
    assert items.questions == [{"de": "Wo?", "fr": "Où ?"}, {"fil": "Saan?"}]
    assert items.passages == [{"es": "Aquí.", "de": "Hier."}, {"de": "Dort."}]
    pairs = build_pairs(items)
    assert pairs.counts() == {"de-de": 1, "de-es": 1, "fil-de": 1, "fr-de": 1, "fr-es": 1}


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"id": "b", "query": "x", "passage": "y"}, "line 2: no field 'query_lang' (or 'lang')"),
        (
            {"id": "b", "query_lang": "xx", "query": "x", "passage_lang": "de", "passage": "y"},
            "line 2: field 'query_lang': 'xx' is not an ISO 639 language code",
        ),
        (
            {"id": "b", "query_lang": "de", "query": "x", "passage_lang": "English", "passage": "y"},
            "line 2: field 'passage_lang': 'English' is not an ISO 639",
        ),
        (
            {"id": "b", "query_lang": "de", "query": "  ", "passage_lang": "de", "passage": "y"},
            "line 2: field 'query' should be a non-empty string",
        ),
        (
            {"id": "b", "query_lang": "de", "query": "x", "passage_lang": "de"},
            "line 2: field 'passage' should be a non-empty string",
        ),
        ({"id": "", "lang": "de", "query": "x"}, "line 2: field 'id' should be a non-empty string"),
        ({"id": "b", "lang": "de"}, "line 2: neither 'query' nor 'passage'"),
        ({"id": "b", "lang": "und", "query": "x"}, "line 2: field 'lang': 'und' is not an ISO 639"),
        (
            {"id": "a", "lang": "de", "query": "Wo?", "passage": "Anders."},
            "line 2: passage of id a in de differs",
        ),
        ([1, 2], "line 2: expected a json object"),
    ],
)
def test_jsonl_bad_rows_name_file_and_line(tmp_path: Path, row: object, message: str) -> None:
    path = tmp_path / "pairs.jsonl"
    first = {"id": "a", "lang": "de", "query": "Wo?", "passage": "Hier."}
    path.write_text(json.dumps(first) + "\n" + json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"pairs\.jsonl: " + re.escape(message)):
        read_jsonl(path, progress=False)


def test_jsonl_file_level_errors(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"id": "a", "lang": "de", "query": "x"}\n{"id": ', encoding="utf-8")
    with pytest.raises(UserError, match=r"pairs\.jsonl: line 2: malformed json"):
        read_jsonl(path, progress=False)
    path.write_bytes(b'{"id": "a", "lang": "de", "query": "\xff"}')
    with pytest.raises(UserError, match=r"pairs\.jsonl: not UTF-8 text"):
        read_jsonl(path, progress=False)
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"pairs\.jsonl: no rows"):
        read_jsonl(path, progress=False)


def _squad_file(path: Path, rows: list[tuple[str, str, str, str]]) -> Path:
    """A SQuAD-format file; rows: (id, question, context, answer text)."""
    paragraphs = [
        {
            "context": context,
            "qas": [
                {
                    "id": item_id,
                    "question": question,
                    "answers": [{"answer_start": context.find(answer), "text": answer}],
                }
            ],
        }
        for item_id, question, context, answer in rows
    ]
    path.write_text(json.dumps({"version": "1.1", "data": [{"paragraphs": paragraphs}]}), encoding="utf-8")
    return path


def test_squad_translate_train_files_share_ids_across_languages(tmp_path: Path) -> None:
    folder = tmp_path / "translate-train"
    folder.mkdir()
    _squad_file(
        folder / "squad.translate.train.en-de.json",
        [("q1", "Wie viele Einwohner?", DE_CTX, "3,7 Millionen"), ("q2", "Welcher Fluss?", DE_CTX, "Spree")],
    )
    _squad_file(
        folder / "squad.translate.train.en-es.json", [("q1", "¿Cuántos habitantes?", ES_CTX, "3,7 millones")]
    )
    items = read_squad(folder, segmenter=_split_on_periods, progress=False)
    assert items.passage_unit == "sentence"
    assert items.ids == ["q1", "q2"]
    assert items.questions[0] == {"de": "Wie viele Einwohner?", "es": "¿Cuántos habitantes?"}
    assert items.passages[0] == {
        "de": "Die Stadt hat 3,7 Millionen Einwohner.",
        "es": "La ciudad tiene 3,7 millones de habitantes.",
    }
    assert items.passages[1] == {"de": "Sie liegt an der Spree."}  # only in German: monolingual item
    pairs = build_pairs(items)
    assert pairs.counts() == {"de-de": 2, "de-es": 1, "es-de": 1, "es-es": 1}
    assert [s["format"] for s in items.sources] == ["squad"]


def test_squad_language_from_the_source_spec_and_naming_errors(tmp_path: Path) -> None:
    plain = _squad_file(tmp_path / "train-v1.1.json", [("q1", "How many?", "It has 3 million people.", "3")])
    with pytest.raises(UserError, match=r"train-v1\.1\.json: the file name gives no language.*squad\[de\]"):
        read_sources([f"squad:{plain}"], passage_unit="context", progress=False)
    items = read_sources([f"squad[en]:{plain}"], passage_unit="context", progress=False)
    assert items.questions == [{"en": "How many?"}] and items.passages == [{"en": "It has 3 million people."}]
    with pytest.raises(UserError, match=r"--train-data squad\[english\]:.*'english' is not an ISO 639"):
        parse_source(f"squad[english]:{plain}")
    with pytest.raises(UserError, match=r"only squad takes a language"):
        parse_source(f"mlqa[de]:{plain}")


@pytest.mark.parametrize(
    ("qa", "context", "message"),
    [
        ({"question": "q", "answers": []}, "c", "paragraphs[0].qas[0] has no field 'id'"),
        ({"id": "a", "question": " ", "answers": []}, "c", "paragraphs[0].qas[0]: field 'question' is empty"),
        ({"id": "a", "question": "q", "answers": []}, "", "paragraphs[0]: field 'context' is empty"),
        (
            {"id": "a", "question": "q", "answers": [{"text": "x"}]},
            "c",
            "paragraphs[0].qas[0].answers[0] has no field 'answer_start'",
        ),
    ],
)
def test_squad_bad_rows_name_file_and_field(tmp_path: Path, qa: dict, context: str, message: str) -> None:
    path = tmp_path / "train.de.json"
    path.write_text(
        json.dumps({"data": [{"paragraphs": [{"context": context, "qas": [qa]}]}]}), encoding="utf-8"
    )
    with pytest.raises(UserError, match=r"train\.de\.json: data\[0\]\." + re.escape(message)):
        read_squad(path, progress=False)


def test_mlqa_file_names_need_real_language_codes(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    _mlqa_file(folder, "de", "xq", [("id1", "?", DE_CTX, "")])
    with pytest.raises(UserError, match=r"question-xq\.json: question language in the file name: 'xq'"):
        read_mlqa(folder, progress=False)


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
        parse_source("tsv:/x")
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


def test_dev_split_keeps_conflict_groups_whole(datasets: Path) -> None:
    folder = datasets / MLQA_TRAIN
    if not folder.is_dir():
        pytest.skip(f"{folder} not present")
    pairs = build_pairs(read_sources([f"mlqa:{folder}"], progress=False))
    train, dev = split_dev(pairs, 0.1, seed=0)
    assert dev is not None and len(train) + len(dev) == len(pairs)
    assert not set(train.group.tolist()) & set(dev.group.tolist())
    assert len(set(dev.group.tolist())) == round(0.1 * 8491)
    texts = set(train.query) | set(train.passage)
    assert not texts & (set(dev.query) | set(dev.passage))  # nothing of the dev set is trained on
    again, dev_again = split_dev(pairs, 0.1, seed=0)
    assert dev_again is not None and dev_again.query == dev.query  # seeded
    assert split_dev(pairs, 0.0, seed=0) == (pairs, None)
