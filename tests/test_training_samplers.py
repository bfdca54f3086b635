"""Batch samplers: batch kinds, alpha, language choice, no group twice in a batch, determinism."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from hybrid_plugin.errors import UserError
from hybrid_plugin.training.samplers import HybridBatchSampler, PairLabels, batch_kind, make_batch_sampler
from hybrid_plugin.training.strategies import resolve_alpha

LANGS = ("de", "es", "vi", "zh")


def _labels(n_groups: int = 300, items_per_group: int = 2) -> PairLabels:
    """Every item has a question and a passage in every language: all 16 (q, p) pairs per item."""
    group, q_lang, p_lang = [], [], []
    for g in range(n_groups):
        for _ in range(items_per_group):
            for q in range(len(LANGS)):
                for p in range(len(LANGS)):
                    group.append(g)
                    q_lang.append(q)
                    p_lang.append(p)
    return PairLabels(
        np.array(group, dtype=np.int64),
        np.array(q_lang, dtype=np.int16),
        np.array(p_lang, dtype=np.int16),
        LANGS,
    )


def _sampler(
    labels: PairLabels, batch_size: int = 16, seed: int = 0, world_size: int = 1, **kw
) -> HybridBatchSampler:
    dataset = range(len(labels.group))
    factory = make_batch_sampler(labels, **kw)
    return factory(dataset, batch_size=batch_size, drop_last=False, seed=seed, world_size=world_size)


def _epochs(sampler: HybridBatchSampler, n: int) -> list[list[int]]:
    batches = []
    for epoch in range(n):
        sampler.set_epoch(epoch)
        batches += list(sampler)
    return batches


def test_hybrid_batches_are_pure_and_follow_alpha() -> None:
    labels = _labels()
    sampler = _sampler(labels, strategy="hybrid", alpha=0.3)
    assert len(sampler) == 300 // 16
    batches = _epochs(sampler, 100)
    assert len(batches) == 100 * len(sampler)
    kinds = Counter(batch_kind(b, labels) for b in batches)
    assert set(k for k, _ in kinds) == {"mono", "cross"}  # never same-language-mixed, never mixed
    mono_share = sum(n for (k, _), n in kinds.items() if k == "mono") / len(batches)
    assert abs(mono_share - 0.3) < 0.04  # 1800 batches: 4 sigma ≈ 0.043
    per_lang = [kinds[("mono", lang)] for lang in LANGS]
    assert min(per_lang) > 0.6 * max(per_lang)  # uniform over languages
    for b in batches:
        assert len(b) == 16
        assert len(set(labels.group[b].tolist())) == 16  # no parallel answer as a negative
    cross = [b for b in batches if batch_kind(b, labels)[0] == "cross"]
    pairs_seen = Counter((int(labels.query_lang[i]), int(labels.passage_lang[i])) for b in cross for i in b)
    assert len(pairs_seen) == 12  # every ordered language pair X != Y occurs


@pytest.mark.parametrize(("strategy", "expected"), [("mono", {"mono"}), ("cross", {"cross"})])
def test_baseline_strategies_make_one_kind(strategy: str, expected: set[str]) -> None:
    labels = _labels()
    batches = _epochs(_sampler(labels, strategy=strategy), 5)
    assert {batch_kind(b, labels)[0] for b in batches} == expected


@pytest.mark.parametrize("name", ["mixed", "same-language", "X-X"])
def test_mixed_strategy_mixes_languages_inside_a_batch(name: str) -> None:
    labels = _labels()
    batches = _epochs(_sampler(labels, strategy=name), 3)
    assert {batch_kind(b, labels) for b in batches} == {("mixed", "")}
    assert all(np.all(labels.query_lang[b] == labels.passage_lang[b]) for b in batches)


def test_groups_are_visited_once_before_any_repeats() -> None:
    labels = _labels(n_groups=64)
    sampler = _sampler(labels, batch_size=16, strategy="cross")
    batches = list(sampler)
    assert len(batches) == 4
    assert sorted(labels.group[np.concatenate(batches)].tolist()) == list(range(64))


def test_pass_boundary_inside_a_batch_keeps_groups_distinct() -> None:
    labels = _labels(n_groups=20)  # 20 groups, batches of 16: passes end mid-batch
    sampler = _sampler(labels, batch_size=16, strategy="cross")
    for b in _epochs(sampler, 30):
        assert len(set(labels.group[b].tolist())) == 16


def test_order_depends_only_on_seed_and_epoch() -> None:
    labels = _labels()
    a, b, c = (_sampler(labels, seed=s, strategy="hybrid") for s in (1, 1, 2))
    assert list(a) == list(b)
    assert list(a) != list(c)
    a.set_epoch(1)
    assert list(a) != list(b)


def test_hybrid_alpha_one_and_zero_draw_the_mono_and_cross_batches() -> None:
    """The study's α sweep reuses the X-X-mono and X-Y runs as α = 1 and α = 0: same batches."""
    labels = _labels()
    for alpha, strategy in ((1.0, "mono"), (0.0, "cross")):
        hybrid = _epochs(_sampler(labels, seed=3, strategy="hybrid", alpha=alpha), 2)
        baseline = _epochs(_sampler(labels, seed=3, strategy=strategy), 2)
        assert hybrid == baseline and len(hybrid) > 10


def test_sampler_refuses_impossible_batches() -> None:
    labels = _labels(n_groups=10)
    with pytest.raises(UserError, match=r"mono de batches: only 10 independent items for batch size 16"):
        _sampler(labels, batch_size=16, strategy="mono")
    only_cross = PairLabels(
        np.arange(40, dtype=np.int64), np.zeros(40, dtype=np.int16), np.ones(40, dtype=np.int16), ("de", "es")
    )
    with pytest.raises(UserError, match="no language has both questions and passages"):
        _sampler(only_cross, batch_size=4, strategy="hybrid")
    assert len(_sampler(only_cross, batch_size=4, strategy="cross")) == 10


def test_alpha_rules() -> None:
    assert resolve_alpha("hybrid", None) == 0.5
    assert resolve_alpha("mono", None) == 1.0
    assert resolve_alpha("cross", 0.0) == 0.0
    assert resolve_alpha("mixed", None) is None
    assert resolve_alpha("X-Y", None) == 0.0 and resolve_alpha("X-X-mono", None) == 1.0
    with pytest.raises(UserError, match=r"--alpha must be in \[0, 1\], got 1.5"):
        resolve_alpha("hybrid", 1.5)
    with pytest.raises(UserError, match="--alpha applies to --strategy hybrid only"):
        resolve_alpha("cross", 0.5)
    with pytest.raises(UserError, match="--strategy 'xx'"):
        resolve_alpha("xx", None)


def test_describe_counts_batches_by_kind() -> None:
    labels = _labels()
    sampler = _sampler(labels, strategy="hybrid", alpha=0.5)
    batches = list(sampler)
    info = sampler.describe()
    assert info["batches_per_epoch"] == len(batches)
    assert sum(info["batches_drawn"].values()) == len(batches)
    expected = Counter(f"{k} {lang}" if lang else k for k, lang in (batch_kind(b, labels) for b in batches))
    assert info["batches_drawn"] == dict(expected)
    assert info["mono_languages"] == list(LANGS)
    assert info["independent_items"]["cross"] == 300


def _uneven_labels(sizes: dict[str, int], with_cross: bool = True) -> PairLabels:
    """Monolingual pairs, ``sizes[lang]`` items per language, plus one cross pair per item."""
    langs = tuple(sorted(sizes))
    group, q_lang, p_lang = [], [], []
    g = 0
    for code, lang in enumerate(langs):
        for _ in range(sizes[lang]):
            group.append(g)
            q_lang.append(code)
            p_lang.append(code)
            if with_cross:
                group.append(g)
                q_lang.append(code)
                p_lang.append((code + 1) % len(langs))
            g += 1
    return PairLabels(
        np.array(group), np.array(q_lang, dtype=np.int16), np.array(p_lang, dtype=np.int16), langs
    )


def test_mono_language_uniform_or_by_size() -> None:
    labels = _uneven_labels({"de": 600, "es": 200, "zh": 200})
    for weights, expected in (("uniform", [1 / 3, 1 / 3, 1 / 3]), ("size", [0.6, 0.2, 0.2])):
        sampler = _sampler(labels, batch_size=8, strategy="mono", mono_weights=weights)
        kinds = Counter(batch_kind(b, labels)[1] for b in _epochs(sampler, 20))
        total = sum(kinds.values())  # 20 epochs × 125 batches
        for lang, share in zip(("de", "es", "zh"), expected):
            assert abs(kinds[lang] / total - share) < 0.04, (weights, kinds)
        assert sampler.describe()["mono_language_probabilities"]["de"] == pytest.approx(expected[0])
    with pytest.raises(UserError, match="--mono-weights 'big'"):
        _sampler(labels, strategy="mono", mono_weights="big")


def test_english_strategy_uses_english_pairs_only() -> None:
    labels = _uneven_labels({"de": 50, "en": 50})
    batches = _epochs(_sampler(labels, batch_size=8, strategy="english"), 3)
    assert {batch_kind(b, labels) for b in batches} == {("mono", "en")}
    no_english = _uneven_labels({"de": 50, "es": 50})
    with pytest.raises(UserError, match="strategy english: English has no question/passage pairs"):
        _sampler(no_english, batch_size=8, strategy="en-en")


@pytest.mark.parametrize("strategy", ["hybrid", "mono", "cross", "mixed"])
def test_distributed_steps_share_kind_and_never_an_item(strategy: str) -> None:
    """Two processes, as accelerate shards our sampler: every step has one kind (and one language)
    on both ranks, the ranks' items are disjoint, and both see the same number of steps."""
    from accelerate.data_loader import BatchSamplerShard

    labels = _labels(n_groups=300)
    per_rank = []
    for rank in range(2):
        sampler = _sampler(labels, batch_size=8, seed=3, strategy=strategy, world_size=2)
        sampler.set_epoch(1)
        shard = BatchSamplerShard(sampler, num_processes=2, process_index=rank, split_batches=False)
        per_rank.append(list(shard))
    assert len(per_rank[0]) == len(per_rank[1]) == 300 // 16
    for a, b in zip(*per_rank):
        assert len(a) == len(b) == 8
        assert batch_kind(a, labels) == batch_kind(b, labels)
        assert not set(labels.group[a].tolist()) & set(labels.group[b].tolist())
    kinds = {batch_kind(a, labels)[0] for a in per_rank[0]}
    assert kinds == ({"mono", "cross"} if strategy == "hybrid" else {strategy})
    with pytest.raises(UserError, match=r"only 10 independent items for batch size 8 × 2 processes"):
        _sampler(_labels(n_groups=10), batch_size=8, strategy="cross", world_size=2)
