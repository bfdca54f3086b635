"""Alignment diagnostics on hand-made pools: parallel vs non-parallel cosine, language-ID probe."""

from __future__ import annotations

import numpy as np
import pytest

from hybrid_plugin.data.pool import Pool
from hybrid_plugin.evaluation.alignment import (
    alignment,
    candidate_components,
    cosine_gap,
    language_probe,
    parallel_pairs,
)

pytest.importorskip("sklearn")


def _pool(n_groups: int, langs: tuple[str, ...] = ("de", "en", "zh"), extra: int = 0) -> Pool:
    """One answer per group and language (candidate g*L + l), plus ``extra`` unanswered candidates
    per language; one query per group in the first language."""
    n_lang = len(langs)
    cand_lang = np.array(
        [g % n_lang for g in range(n_groups * n_lang)] + [lang for lang in range(n_lang)] * extra
    )
    order = np.argsort(cand_lang, kind="stable")  # candidates grouped by language, as pools are
    old_to_new = np.empty_like(order)
    old_to_new[order] = np.arange(len(order))
    group_cands = old_to_new[np.arange(n_groups * n_lang)]
    n = len(cand_lang)
    return Pool(
        task="t",
        languages=langs,
        candidate_format="sentence",
        cand_ids=[f"c{i}" for i in range(n)],
        cand_lang=cand_lang[order],
        cand_sentence=[f"s{i}" for i in range(n)],
        cand_context=[""] * n,
        query_ids=[f"q{g}" for g in range(n_groups)],
        query_lang=np.zeros(n_groups, dtype=int),
        query_text=[f"q{g}" for g in range(n_groups)],
        query_group=np.arange(n_groups),
        group_names=[f"g{g}" for g in range(n_groups)],
        group_ptr=np.arange(0, n_groups * n_lang + 1, n_lang),
        group_cands=group_cands,
    ), old_to_new


def test_parallel_pairs_and_components_by_hand() -> None:
    pool, new = _pool(2, extra=1)
    a, b = parallel_pairs(pool)
    got = {tuple(sorted((int(x), int(y)))) for x, y in zip(a, b)}
    expected = set()
    for g in range(2):
        members = [int(new[g * 3 + lang]) for lang in range(3)]
        expected |= {tuple(sorted((members[i], members[j]))) for i in range(3) for j in range(i + 1, 3)}
    assert got == expected  # 3 language pairs per group
    comp = candidate_components(pool)
    assert len(np.unique(comp)) == 2 + 3  # two answer groups + three unanswered candidates
    assert comp[new[0]] == comp[new[1]] == comp[new[2]] != comp[new[3]]


def test_language_agnostic_embeddings_vs_language_coded_ones() -> None:
    pool, new = _pool(60, extra=20)
    rng = np.random.default_rng(0)
    meaning = rng.normal(size=(60 + 20 * 3, 32))
    # agnostic: a candidate's vector is its group's meaning, whatever its language
    agnostic = np.empty((len(pool.cand_ids), 32))
    for g in range(60):
        for lang in range(3):
            agnostic[new[g * 3 + lang]] = meaning[g]
    for k in range(20 * 3):
        agnostic[new[60 * 3 + k]] = meaning[60 + k]
    gap = cosine_gap(pool, agnostic, samples=5000)
    assert gap["parallel_cosine"] == pytest.approx(1.0, abs=1e-6)
    assert abs(gap["non_parallel_cosine"]) < 0.1 and gap["gap"] > 0.9
    assert gap["parallel_pairs"] == 60 * 3
    probe = language_probe(pool, agnostic)
    assert probe["accuracy"] < 0.6  # near chance: nothing tells the languages apart
    assert probe["chance"] == pytest.approx(1 / 3)

    # language-coded: a strong per-language direction added to every vector
    coded = agnostic + 10.0 * np.eye(32)[pool.cand_lang]
    assert language_probe(pool, coded)["accuracy"] > 0.99
    both = alignment(pool, coded)
    assert both["gap"] < gap["gap"] and both["language_id"]["accuracy"] > 0.99
