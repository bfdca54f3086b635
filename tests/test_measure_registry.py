"""One definition per measure: the registry is the one place a measure is added, and every report follows.

A toy measure (share of pool queries whose first relevant candidate is in the top 3), registered in
one place for the test, reaches the results (``Scores`` / ``LanguageScores``), the per-query file, the
MTEB scores and ``compare``; and the results and per-query layouts the registry generates stay the
published ones, key for key and column for column.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_stats import scores, synthetic_pool, write_run

from hybrid_plugin.data.spec import SETTING_KINDS, SettingKind
from hybrid_plugin.evaluation.measures import MEASURES, MULTI_MAP, Measure
from hybrid_plugin.evaluation.results import LanguageScores, Results, Scores
from hybrid_plugin.stats import compare


def _top3(columns) -> np.ndarray:
    """1 where the first relevant candidate is ranked 1 to 3 (an unretrieved one: inf or null, 0)."""
    first = np.asarray(columns["first_rank"], dtype=np.float64)
    return (np.nan_to_num(first, nan=np.inf) <= 3).astype(np.float64)


TOP3 = Measure(
    "first_relevant_top3",
    "hit@3",
    "Multilingual pool: share of queries whose first relevant candidate is among the first 3.",
    True,
    "a test of the registry",
    column="first_relevant_top3",
    needs=("first_rank",),
    derive=_top3,
    stored=True,
)


def test_a_measure_registered_in_one_place_reaches_results_per_query_file_and_compare(tmp_path):
    pool = synthetic_pool(missing={(1, "yy"), (4, "zz")})
    with MEASURES.registered(TOP3):
        paths = [
            write_run(pool, scores(pool, seed, 2.0), tmp_path / name, name)
            for seed, name in ((1, "a"), (2, "b"))
        ]
        results = Results.load(paths[0])
        table = pq.read_table(paths[0].with_name(results.per_query.file))
        cmp = compare(*paths)
    # the per-query file: the measure's own column, last, float64; its values by hand from first_rank
    assert table.column_names[-1] == "first_relevant_top3"
    assert table.schema.field("first_relevant_top3").type == pa.float64()
    rows = table.to_pandas()
    pool_rows = rows[rows["kind"] == "multi"]
    by_hand = (pool_rows["first_rank"] <= 3).astype(float)
    assert rows["first_relevant_top3"].tolist() == ((rows["first_rank"] <= 3).astype(float)).tolist()
    # the results: per language the pool queries' share, macro over languages, after the built-in keys
    per_lang = by_hand.groupby(pool_rows["query_lang"].astype(str)).mean()
    for lang in pool.languages:
        assert results.per_language[lang].get("first_relevant_top3") == pytest.approx(
            per_lang[lang], abs=1e-15
        )
    assert results.scores.get("first_relevant_top3") == pytest.approx(per_lang.mean(), abs=1e-15)
    raw = json.loads(paths[0].read_text(encoding="utf-8"))
    assert list(raw["scores"])[-1] == "first_relevant_top3"
    assert list(raw["per_language"]["xx"])[-1] == "first_relevant_top3"
    # compare tests it, in its registered direction, from the per-query file
    measure = cmp.pairs[0].measure("first_relevant_top3")
    assert measure is not None and measure.higher_is_better is True and measure.label == "hit@3"
    assert measure.macro.baseline.value == pytest.approx(per_lang.mean(), abs=1e-12)
    # removed again: the built-in results models know nothing of it, and refuse it in a file
    assert "first_relevant_top3" not in MEASURES and "first_relevant_top3" not in Scores.model_fields
    with pytest.raises(ValueError, match="first_relevant_top3: not a measure"):
        Results.load(paths[0])


def test_a_registered_measure_reaches_the_mteb_scores(tmp_path, monkeypatch):
    pytest.importorskip("mteb")
    from test_mteb import HashModel, evaluate_subsets, parallel_pool

    from hybrid_plugin.evaluation.engine import TaskContext
    from hybrid_plugin.integrations.mteb_tasks import XQuADR

    monkeypatch.setenv("HYBRID_PLUGIN_CACHE", str(tmp_path))
    with MEASURES.registered(TOP3):
        task = XQuADR().filter_languages(None, hf_subsets=["deu-pool", "deu-eng"])
        pool = parallel_pool()
        task._pool, task._context = pool, TaskContext("xquad-r", "toy")
        task.dataset = task._subsets(pool)
        task.data_loaded = True
        model = HashModel()
        entries = evaluate_subsets(task, model, ("deu-pool", "deu-eng"))
        typed = next(iter(task._scored.values())).evaluation.results
    assert entries["deu-pool"]["first_relevant_top3"] == typed.per_language["de"].get("first_relevant_top3")
    assert "first_relevant_top3" not in entries["deu-eng"]  # a pool measure: only the pool subsets


def test_registry_refuses_clashes_and_keeps_built_ins():
    with pytest.raises(ValueError, match="already registered"):
        MEASURES.register(MULTI_MAP)
    clash = Measure("other", "o", "d", True, "r", column="rank_corr", derive=_top3, stored=True)
    with pytest.raises(ValueError, match="column 'rank_corr' is taken"):
        MEASURES.register(clash)
    with pytest.raises(ValueError, match="built in"):
        MEASURES.unregister("multi_map")
    assert len(MEASURES) == 12


# --- the generated layouts are the published ones -----------------------------------------------------

SCORES = [
    "mono_map",
    "cross_map",
    "multi_map",
    "max_rank_distance",
    "same_language_top_share",
    "lang_ndcg_10",
    "top1_correct_query_lang",
    "top1_correct_other_lang",
    "top1_wrong_query_lang",
    "top1_wrong_other_lang",
    "top10_query_lang_share",
    "mean_rank_correlation",
]
PER_QUERY = [  # (name, arrow type) of a results file's per-query columns, standard measures after n_relevant
    ("setting", pa.dictionary(pa.int32(), pa.string())),
    ("kind", pa.dictionary(pa.int32(), pa.string())),
    ("query_lang", pa.dictionary(pa.int32(), pa.string())),
    ("target", pa.dictionary(pa.int32(), pa.string())),
    ("query_id", pa.string()),
    ("group", pa.string()),
    ("ap", pa.float64()),
    ("rr", pa.float64()),
    ("first_rank", pa.int32()),
    ("n_relevant", pa.int32()),
    *((name, pa.float64()) for name in ("nDCG@10", "R@100", "RR", "P@1", "AP@20")),
    ("rank_distance", pa.float64()),
    ("best_lang", pa.dictionary(pa.int32(), pa.string())),
    ("n_rel_langs", pa.int32()),
    ("lang_ndcg_10", pa.float64()),
    ("top1_lang", pa.dictionary(pa.int32(), pa.string())),
    ("top10_query_lang", pa.float64()),
    ("rank_corr", pa.float64()),
]


def test_results_and_per_query_layouts_are_the_published_ones(tmp_path):
    """Generated from the registry, the JSON keys and Parquet columns stay in the order and types that
    results files and per-query files have had since schema 2 (readers and the leaderboard rely on them)."""
    assert list(Scores.model_fields) == SCORES
    assert list(LanguageScores.model_fields) == [*SCORES[:5], "rank_distance_queries", *SCORES[5:]]
    path = write_run(synthetic_pool(), scores(synthetic_pool(), 1, 2.0), tmp_path, "a")
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert list(raw["scores"]) == SCORES
    table = pq.read_table(path.with_name(raw["per_query"]["file"]))
    assert [(f.name, f.type) for f in table.schema] == PER_QUERY
    assert (
        raw["setting_kinds"] == ["mono", "cross", "multi"] and raw["settings"]["xx-pool"]["kind"] == "multi"
    )


def test_setting_kinds_read_and_write_as_plain_words():
    assert [str(k) for k in SETTING_KINDS] == ["mono", "cross", "multi"]
    assert f"{SettingKind.MULTI}_map" == "multi_map" and SettingKind("cross") is SettingKind.CROSS
    assert json.dumps({SettingKind.MONO: [SettingKind.MULTI]}) == '{"mono": ["multi"]}'
    assert [m.key for m in MEASURES.of_kind(SettingKind.MONO)] == ["mono_map"]
