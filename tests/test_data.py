"""Task specs, LAReQA parsing and settings against the published counts (SOURCES.md)."""

from __future__ import annotations

import numpy as np
import pytest

from hybrid_plugin.data.build import build_pool
from hybrid_plugin.data.files import resolve_files
from hybrid_plugin.data.settings import pool_settings
from hybrid_plugin.data.spec import all_specs, get_spec, select_languages
from hybrid_plugin.errors import UserError

# published with XQuAD-R (LAReQA), and the sentence / question counts in the MLQA-R files
XQUAD_R_CANDIDATES = dict(
    ar=1222, de=1276, el=1234, en=1180, es=1215, hi=1244, ru=1219, th=852, tr=1167, vi=1209, zh=1196
)
MLQA_R_SENTENCES = dict(ar=2545, de=2362, en=6264, es=1787, hi=2426, vi=2828, zh=2322)
MLQA_R_QUESTIONS = dict(ar=517, de=512, en=1148, es=500, hi=507, vi=511, zh=504)


def load(datasets, task, languages=None, fmt="sentence"):
    spec = get_spec(task)
    langs = select_languages(spec, languages)
    return build_pool(spec, resolve_files(spec, langs, datasets).paths, fmt)


@pytest.fixture(scope="module")
def xquad(datasets):
    return load(datasets, "xquad-r")


@pytest.fixture(scope="module")
def mlqa(datasets):
    return load(datasets, "mlqa-r")


def test_specs_ship_both_tasks():
    specs = all_specs()
    assert set(specs) >= {"xquad-r", "mlqa-r"}
    assert specs["xquad-r"].expected_candidates == XQUAD_R_CANDIDATES
    assert specs["mlqa-r"].expected_candidates == MLQA_R_SENTENCES
    assert specs["mlqa-r"].expected_questions == MLQA_R_QUESTIONS


def test_xquad_r_counts_are_the_published_ones(xquad):
    counts = xquad.counts()
    assert {k: v["candidates"] for k, v in counts.items()} == XQUAD_R_CANDIDATES
    assert {v["questions"] for v in counts.values()} == {1190}
    assert len(xquad.group_names) == 1190
    # every query is 11-way parallel: 11 relevant candidates, one per language
    assert set(np.diff(xquad.group_ptr)) == {11}
    # duplicates are real (so ties are real): 13,000 distinct sentences, 13,021 distinct questions
    assert len(set(xquad.cand_sentence)) == 13000
    assert len(set(xquad.query_text)) == 13021


def test_mlqa_r_partial_parallelism(mlqa):
    counts = mlqa.counts()
    assert {k: v["candidates"] for k, v in counts.items()} == MLQA_R_SENTENCES
    assert {k: v["questions"] for k, v in counts.items()} == MLQA_R_QUESTIONS
    sizes = np.bincount(np.diff(mlqa.group_ptr))
    assert len(mlqa.group_names) == 1148
    assert (sizes[2], sizes[3], sizes[4]) == (65, 263, 820)
    members = pool_settings(mlqa)
    # a query with relevant candidates in exactly 2 languages is in exactly 2 mono/cross settings
    for q in range(len(mlqa.query_ids)):
        n_rel_langs = len(set(mlqa.cand_lang[mlqa.relevant(q)]))
        in_settings = sum(q in qs for s, qs in members.items() if not s.is_pool)
        assert in_settings == n_rel_langs
        if q > 400:
            break
    two_way = next(q for q in range(len(mlqa.query_ids)) if len(mlqa.relevant(q)) == 2)
    assert sum(two_way in qs for s, qs in members.items() if not s.is_pool) == 2


@pytest.mark.parametrize(("task", "n"), [("xquad-r", 11), ("mlqa-r", 7)])
def test_settings_counts(datasets, task, n, request):
    pool = request.getfixturevalue("xquad" if task == "xquad-r" else "mlqa")
    members = pool_settings(pool)
    mono = sum(1 for s in members if s.kind == "mono")
    cross = sum(1 for s in members if s.kind == "cross")
    multi = sum(1 for s in members if s.kind == "multi")
    assert (mono, cross, multi) == (n, n * (n - 1), n)


def test_language_restriction(datasets):
    pool = load(datasets, "mlqa-r", "zh,de,en")
    assert pool.languages == ("de", "en", "zh")  # spec order
    members = pool_settings(pool)
    assert len(members) == 3 + 6 + 3
    # relevance restricted to the selected languages
    assert set(pool.cand_lang[pool.group_cands]) <= {0, 1, 2}


def test_answer_sentence_contains_the_answer(xquad):
    en = xquad.languages.index("en")
    q = int(np.flatnonzero(xquad.query_lang == en)[0])
    (c,) = [c for c in xquad.relevant(q) if xquad.cand_lang[c] == en]
    assert "308" in xquad.cand_sentence[c]  # "How many points did the Panthers defense surrender?"


def test_sentence_plus_context_format(datasets):
    pool = load(datasets, "xquad-r", "en", fmt="sentence+context")
    text = pool.cand_text[0]
    assert text.startswith(pool.cand_sentence[0]) and pool.cand_context[0] in text


def test_select_languages_errors():
    spec = get_spec("xquad-r")
    with pytest.raises(UserError, match="unknown language.*xx"):
        select_languages(spec, "de,xx")
    with pytest.raises(UserError, match="empty language selection"):
        select_languages(spec, ",")
    with pytest.raises(UserError, match="unknown task 'nope'"):
        get_spec("nope")


def test_counts_are_checked_against_the_spec(datasets, tmp_path):
    import json

    raw = json.loads((datasets / "xquad-r" / "de.json").read_text(encoding="utf-8"))
    raw["data"][0]["paragraphs"][0]["qas"].pop()
    (tmp_path / "de.json").write_text(json.dumps(raw), encoding="utf-8")
    spec = get_spec("xquad-r")
    with pytest.raises(UserError, match="1189 questions for de, the xquad-r spec expects 1190"):
        build_pool(spec, {"de": tmp_path / "de.json"})
    assert len(build_pool(spec, {"de": tmp_path / "de.json"}, check=False).query_ids) == 1189
