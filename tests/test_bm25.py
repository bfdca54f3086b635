"""BM25 through pyserini/Lucene: analyzers, top hits in three scripts, unretrieved = 0, AP parity.

These tests need the BM25 stack (`make bm25`). Without it they skip, except in CI (``$CI`` set),
where a missing stack fails them. The missing-stack error path is tested everywhere.
"""

from __future__ import annotations

import json
import os

import ir_measures
import numpy as np
import pytest

from hybrid_plugin.cli import main
from hybrid_plugin.data.pool import LanguageFile, pool_from_files
from hybrid_plugin.scoring import lucene

PROBLEM = lucene.stack_problem()


@pytest.fixture(scope="module")
def stack():
    if PROBLEM:
        if os.environ.get("CI"):
            pytest.fail(f"CI installs the BM25 stack (make bm25), but: {PROBLEM}")
        pytest.skip(PROBLEM)
    return lucene.require()


def top_hit(lang: str, docs: list[str], query: str, tmp_path) -> tuple[int, lucene.Hits]:
    index = lucene.LanguageIndex(lang, [f"{lang}-{i}" for i in range(len(docs))], docs, tmp_path / lang)
    hits = index.search([query], k1=0.9, b=0.4)
    index.close()
    assert len(hits.score), f"nothing retrieved for {query!r}"
    return int(hits.doc[np.argmax(hits.score)]), hits


TINY = {
    "en": (
        ["The cat sat on the mat.", "Dogs are running in the park.", "Stock markets fell sharply today."],
        "Where do dogs run?",  # running/run, dogs/dog: Porter stemming
        1,
    ),
    "ar": (
        ["القاهرة هي عاصمة مصر", "الرياض عاصمة المملكة العربية السعودية", "كرة القدم رياضة شعبية"],
        "ما هي عاصمة مصر؟",
        0,
    ),
    "th": (  # no spaces: matching needs Thai word segmentation
        ["แมวชอบนอนบนเสื่อ", "ตลาดหุ้นตกลงอย่างมากในวันนี้", "กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย"],
        "เมืองหลวงของประเทศไทยคืออะไร",
        2,
    ),
}


def test_search_reports_each_batch_and_batches_do_not_change_hits(stack, tmp_path):
    docs, query, _ = TINY["en"]
    index = lucene.LanguageIndex("en", [f"en-{i}" for i in range(len(docs))], docs, tmp_path / "en")
    queries = [query, "cat mat", "stock markets", "park", "nothing matches xyz"]
    seen: list[int] = []
    small = index.search(queries, k1=0.9, b=0.4, batch=2, on_batch=seen.append)
    whole = index.search(queries, k1=0.9, b=0.4)
    index.close()
    assert seen == [2, 2, 1]  # a progress bar advances per batch, to the number of queries
    for field in ("query", "doc", "score"):
        assert np.array_equal(getattr(small, field), getattr(whole, field))


@pytest.mark.parametrize("lang", sorted(TINY))
def test_tiny_corpus_top_hit_latin_arabic_thai(stack, lang, tmp_path):
    docs, query, expected = TINY[lang]
    best, hits = top_hit(lang, docs, query, tmp_path)
    assert best == expected
    assert hits.score.dtype == np.float32 and (hits.score > 0).all()


def test_thai_is_segmented_into_words(stack):
    tokens = lucene.analyze("th", "เมืองหลวงของประเทศไทย")
    assert len(tokens) >= 3 and "ไทย" in tokens and "เมืองหลวงของประเทศไทย" not in tokens
    assert lucene.describe_analyzer("th")["analyzer"].endswith("ThaiAnalyzer")


def test_greek_goes_through_greek_analyzer(stack, tmp_path):
    """Case and accents fold (GreekAnalyzer), and the pre-tokenised index matches a query in capitals."""
    assert lucene.describe_analyzer("el")["analyzer"] == "org.apache.lucene.analysis.el.GreekAnalyzer"
    assert lucene.analyze("el", "Αθήνα") == lucene.analyze("el", "ΑΘΗΝΑ") == lucene.analyze("el", "αθηνα")
    docs = [
        "Η Αθήνα είναι η πρωτεύουσα της Ελλάδας.",
        "Η γάτα κάθεται στο χαλί.",
        "Οι μετοχές έπεσαν σήμερα.",
    ]
    best, _ = top_hit("el", docs, "ΠΡΩΤΕΥΟΥΣΑ ΑΘΗΝΑ", tmp_path)
    assert best == 0


def test_vietnamese_uses_anserinis_english_fallback(stack):
    described = lucene.describe_analyzer("vi")
    assert described["analyzer"] == "io.anserini.analysis.DefaultEnglishAnalyzer"
    assert "English default" in described["how"]
    assert lucene.analyze("vi", "Hà Nội") == ["hà", "nội"]
    assert lucene.analyze("vi", "hay") == ["hai"]  # the Porter stemmer's one visible harm (README)


def test_unknown_language_is_refused(stack):
    from hybrid_plugin.errors import UserError

    with pytest.raises(UserError, match="no BM25 analyzer"):
        lucene.analyze("xx", "text")


def two_language_pool():
    """en and de, one parallel item: the English query shares terms only with English texts."""
    en = LanguageFile(
        "en",
        cand_ids=["en-s0", "en-s1"],
        sentences=["The cat sat on the mat.", "Dogs are running in the park."],
        contexts=["p", "p"],
        question_ids=["g1"],
        questions=["Where do dogs run?"],
        answer_cand=[1],
    )
    de = LanguageFile(
        "de",
        cand_ids=["de-s0", "de-s1"],
        sentences=["Die Katze sitzt auf der Matte.", "Hunde laufen im Park."],
        contexts=["p", "p"],
        question_ids=["g1"],
        questions=["Wo laufen Hunde?"],
        answer_cand=[1],
    )
    return pool_from_files("hand", ("en", "de"), [en, de], "sentence")


def test_unretrieved_relevant_counts_zero_by_hand(stack):
    """en query: retrieves en-s1 only; its relevant German answer de-s1 is unretrieved.

    Pool AP = (1/1 + 0) / 2 = 0.5 (ranking the unretrieved candidate would give (1 + 2/3) / 2).
    Rank metrics: unretrieved below every retrieved candidate, id descending: en-s0, de-s1, de-s0
    take ranks 2, 3, 4, so the rank distance is 3 - 1 = 2.
    """
    from hybrid_plugin.evaluation.engine import TaskContext, evaluate_pool
    from hybrid_plugin.scoring.bm25 import BM25Retriever
    from hybrid_plugin.scoring.ranking import relevant_ranks

    pool = two_language_pool()
    ev = evaluate_pool(pool, BM25Retriever(), TaskContext("hand", "hand"))
    scores = ev.scored.matrix.scores(np.array([0])).numpy()[0]  # the English query
    assert np.isfinite(scores).tolist() == [False, True, False, False]
    ranks = relevant_ranks(pool, ev.scored.matrix)
    res = ev.results
    assert res.settings["en-pool"].map == pytest.approx(0.5)
    assert res.settings["en-en"].map == pytest.approx(1.0)
    assert res.settings["en-de"].map == 0.0
    assert res.per_language["en"].max_rank_distance == 2
    assert res.mean_rank["en"] == {"en": 1.0, "de": 3.0}
    # standard measures see the unretrieved relevant candidate as ir-measures does: never reached
    assert res.settings["en-pool"].measures["R@100"] == 0.5
    assert res.settings["en-de"].measures["RR"] == 0.0
    q = ranks.query == 0
    assert sorted(zip(ranks.cand[q].tolist(), ranks.retrieved[q].tolist())) == [(1, True), (3, False)]


@pytest.fixture(scope="module")
def xquad_bm25(stack, datasets):
    """Real data, three scripts (Latin, Greek, Thai): the pool scored by BM25 and our per-query AP."""
    from hybrid_plugin.data.build import build_pool
    from hybrid_plugin.data.files import resolve_files
    from hybrid_plugin.data.spec import get_spec
    from hybrid_plugin.evaluation.perquery import query_table
    from hybrid_plugin.scoring.bm25 import BM25Params, score_pool
    from hybrid_plugin.scoring.ranking import relevant_ranks

    spec = get_spec("xquad-r")
    pool = build_pool(spec, resolve_files(spec, ("de", "el", "th"), datasets).paths)
    scored = score_pool(pool, BM25Params())
    ranks = relevant_ranks(pool, scored.matrix)
    return pool, scored, ranks, query_table(pool, ranks)


def test_ap_equals_ir_measures_on_the_bm25_run(xquad_bm25):
    """Runs written straight from Lucene's hits (only retrieved candidates, no ranking code of ours)."""
    pool, scored, ranks, qs = xquad_bm25
    sc = scored.matrix
    sample = np.sort(np.random.default_rng(0).choice(len(pool.query_ids), 300, replace=False))
    slices = pool.lang_slices()
    qrels, run = {}, {}
    for q in sample:
        row = sc.query_row[q]
        cands, scores = sc.cand[sc.ptr[row] : sc.ptr[row + 1]], sc.score[sc.ptr[row] : sc.ptr[row + 1]]
        rel = pool.relevant(q)
        targets = [("pool", slice(0, len(pool.cand_ids)), rel)]
        targets += [(pool.languages[y], sl, rel[pool.cand_lang[rel] == y]) for y, sl in enumerate(slices)]
        for target, sl, rel_t in targets:
            qid = f"{target}/{q}"
            qrels[qid] = {pool.cand_ids[c]: 1 for c in rel_t}
            inside = (cands >= sl.start) & (cands < sl.stop)
            run[qid] = {pool.cand_ids[c]: float(s) for c, s in zip(cands[inside], scores[inside])}
    ref = {m.query_id: m.value for m in ir_measures.iter_calc([ir_measures.AP], qrels, run)}
    ours = {}
    in_sample = set(sample.tolist())
    for q, y, ap in zip(qs.query, qs.target_index, qs.ap):
        if q in in_sample:
            ours[f"{'pool' if y < 0 else pool.languages[y]}/{q}"] = ap
    assert set(ours) == set(qrels)
    diff = max(abs(ours[k] - ref.get(k, 0.0)) for k in ours)  # a query with an empty run: AP 0
    assert diff < 1e-9
    # meaningful only with unretrieved relevant candidates, ties and empty runs in the sample
    sampled = np.isin(ranks.query, sample)
    assert (~ranks.retrieved[sampled]).sum() > 100 and ranks.retrieved[sampled].sum() > 300
    assert sum(len(set(r.values())) < len(r) for r in run.values()) > 0
    assert sum(not r for r in run.values()) > 0


def test_scorer_is_dense_float32_with_minus_inf(xquad_bm25):
    pool, scored, _, _ = xquad_bm25
    block = scored.matrix.scores(np.arange(5)).numpy()
    assert block.shape == (5, len(pool.cand_ids)) and block.dtype == np.float32
    assert np.isneginf(block).any() and (block[np.isfinite(block)] > 0).all()
    el = pool.languages.index("el")
    assert scored.per_language["el"]["indexed"] + scored.per_language["el"]["empty"] == int(
        (pool.cand_lang == el).sum()
    )


def test_cli_bm25_trec_files_reproduce_map(stack, capsys, datasets, tmp_path):
    """`evaluate --model bm25 --run-depth full --trec-out`: runs hold only retrieved candidates and
    ir-measures' AP on them equals each setting's map."""
    trec = tmp_path / "trec"
    code = main(
        [
            "evaluate", "--task", "mlqa-r", "--model", "bm25", "--languages", "de,zh",
            "--data-dir", str(datasets), "--out", str(tmp_path), "--run-depth", "full",
            "--trec-out", str(trec),
        ]
    )  # fmt: skip
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "BM25 index" in out.out and "lucene" not in out.out.lower()
    res = json.loads((tmp_path / "mlqa-r__bm25__sentence.json").read_text())
    assert res["model"]["name"] == "bm25" and len(res["model"]["fingerprint"]) == 64
    assert res["model"]["bm25"]["analyzers"]["zh"]["analyzer"].endswith("CJKAnalyzer")
    assert res["model"]["bm25"]["k1"] == 0.9 and res["model"]["bm25"]["b"] == 0.4
    missed = res["provenance"]["unretrieved"]["pairs"]
    assert 0 < missed["cross"]["unretrieved"] <= missed["cross"]["relevant"]
    for key, entry in res["settings"].items():
        qrels = list(ir_measures.read_trec_qrels(str(trec / f"{key}.qrels")))
        run_text = (trec / f"{key}.run").read_text()
        assert "inf" not in run_text
        run = list(ir_measures.read_trec_run(str(trec / f"{key}.run")))
        aps = [m.value for m in ir_measures.iter_calc([ir_measures.AP], qrels, run)]
        assert sum(aps) / entry["queries"] == pytest.approx(entry["map"], abs=1e-9), key


def test_missing_stack_is_one_line_naming_the_install_command(capsys, datasets, monkeypatch):
    real_find_spec = lucene.find_spec
    monkeypatch.setattr(
        lucene, "find_spec", lambda name: None if name == "pyserini" else real_find_spec(name)
    )
    monkeypatch.setattr(lucene.shutil, "which", lambda name: None)
    for var in ("JAVA_HOME", "JDK_HOME", "JRE_HOME", "JVM_PATH"):
        monkeypatch.delenv(var, raising=False)
    code = main(
        ["evaluate", "--task", "xquad-r", "--model", "bm25", "--languages", "de", "--data-dir", str(datasets)]
    )
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, err
    assert "pyserini==0.22.1" in lines[0] and "Java 17" in lines[0] and "make bm25" in lines[0]


def test_core_imports_load_no_java():
    """`import hybrid_plugin` and the CLI's parser load neither pyjnius nor pyserini (nor start a JVM)."""
    import subprocess
    import sys

    code = (
        "import sys, hybrid_plugin, hybrid_plugin.cli; hybrid_plugin.cli.build_parser(); "
        "import hybrid_plugin.scoring.bm25; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('jnius', 'jnius_config', 'pyserini')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
