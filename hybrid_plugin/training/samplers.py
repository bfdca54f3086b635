"""Batch samplers that decide the language make-up of every batch (they know nothing of models).

A sampler sees, per dataset row, three integers: the row's conflict group, its query language and
its passage language. Rows of one group (parallel answers of one item, or items sharing a text)
never share a batch, so no pair is another's false negative. Strategies (Elmahdy et al. 2024; Roy
et al. 2020):

- ``hybrid``: each batch is monolingual with probability ``alpha`` (one language for the whole
  batch, drawn uniformly over the languages that have monolingual pairs, or in proportion to
  their number of items), else cross-lingual (every pair's query and passage languages differ;
  the languages vary from pair to pair).
- ``mono``  (X-X-mono): every batch monolingual, i.e. hybrid with ``alpha = 1``.
- ``cross`` (X-Y): every batch cross-lingual, i.e. hybrid with ``alpha = 0``.
- ``mixed`` (X-X): every pair monolingual, languages mixed inside a batch.
- ``english`` (En-En): every batch English-English.

Every batch is full. Within a kind of batch, groups are visited in a random order, each once
before any repeats; an epoch is as many batches as there are eligible groups divided by the batch
size. The order depends only on ``seed`` and the epoch, so a resumed run sees the same batches.

Distributed training (``world_size`` > 1): every process runs the same sampler and the data
loader hands batch ``i`` to process ``i % world_size`` (accelerate's ``BatchSamplerShard``). The
sampler therefore draws one *step* at a time: ``world_size`` consecutive batches of one kind (and
one language for a monolingual step) whose items are all distinct, so at every step all
processes train on the same kind of batch and never share an item.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from sentence_transformers.base.sampler import DefaultBatchSampler

from hybrid_plugin.errors import UserError
from hybrid_plugin.training.strategies import MONO_WEIGHTS, canonical_strategy, resolve_alpha

MONO, CROSS, SAME = "mono", "cross", "mixed"


@dataclass(frozen=True)
class PairLabels:
    """What a sampler knows of each dataset row: conflict group, query and passage language."""

    group: np.ndarray
    query_lang: np.ndarray
    passage_lang: np.ndarray
    languages: tuple[str, ...]

    def __post_init__(self) -> None:
        n = len(self.group)
        if len(self.query_lang) != n or len(self.passage_lang) != n:
            raise ValueError("group, query_lang and passage_lang must have one entry per row")


class _Pool:
    """The groups eligible for one kind of batch, and per group its eligible rows (CSR)."""

    def __init__(self, name: str, rows: np.ndarray, group: np.ndarray) -> None:
        order = rows[np.argsort(group[rows], kind="stable")]
        groups, starts, counts = np.unique(group[order], return_index=True, return_counts=True)
        self.name = name
        self.rows = order
        self.groups = groups
        self.starts = starts
        self.counts = counts

    def __len__(self) -> int:
        return len(self.groups)


class _Queue:
    """Positions into a pool's groups, reshuffled after each full pass."""

    def __init__(self, pool: _Pool, rng: np.random.Generator) -> None:
        self.pool, self.rng = pool, rng
        self.order = rng.permutation(len(pool))
        self.pos = 0

    def take(self, n: int) -> list[int]:
        """``n`` rows of ``n`` distinct groups, one random eligible row per group."""
        pool, taken, seen = self.pool, [], set()
        while len(taken) < n:
            if self.pos == len(self.order):
                order = self.rng.permutation(len(pool))
                if seen:  # a pass ended mid-batch: this batch's groups come last in the next pass
                    clash = np.isin(order, list(seen))
                    order = np.concatenate([order[~clash], order[clash]])
                self.order, self.pos = order, 0
            k = int(self.order[self.pos])
            self.pos += 1
            assert k not in seen, "pool smaller than the batch size"
            seen.add(k)
            pick = int(self.rng.integers(pool.counts[k])) if pool.counts[k] > 1 else 0
            taken.append(int(pool.rows[pool.starts[k] + pick]))
        return taken


class HybridBatchSampler(DefaultBatchSampler):
    """Yields full batches of row indices whose language make-up follows ``strategy``."""

    def __init__(
        self,
        dataset: Sequence,
        batch_size: int,
        drop_last: bool = True,
        valid_label_columns: list[str] | None = None,
        generator=None,
        seed: int = 0,
        *,
        labels: PairLabels,
        strategy: str = "hybrid",
        alpha: float | None = None,
        mono_weights: str = "uniform",
        world_size: int = 1,
        skip_small_languages: bool = False,
    ) -> None:
        super().__init__(
            dataset,
            batch_size=batch_size,
            drop_last=drop_last,
            valid_label_columns=valid_label_columns,
            generator=generator,
            seed=seed,
        )
        if len(dataset) != len(labels.group):
            raise ValueError(f"dataset has {len(dataset)} rows but labels describe {len(labels.group)}")
        if mono_weights not in MONO_WEIGHTS:
            raise UserError(f"--mono-weights {mono_weights!r}: expected one of {', '.join(MONO_WEIGHTS)}")
        if world_size < 1:
            raise ValueError(f"world_size must be ≥ 1, got {world_size}")
        self.labels = labels
        self.strategy = canonical_strategy(strategy)
        self.alpha = resolve_alpha(strategy, alpha)
        self.world_size = world_size
        self.step_size = batch_size * world_size  # distinct items per optimizer step, all processes
        self.skipped: list[str] = []  # languages left out of monolingual batches (too few items)
        self.pools = self._build_pools(skip_small_languages)
        eligible = np.unique(np.concatenate([pool.groups for pool in self.pools.values()]))
        self.num_batches = max(1, len(eligible) // self.step_size) * world_size
        self.mono_languages = [key[1] for key in self.pools if key[0] == MONO]
        sizes = np.array([len(self.pools[(MONO, lang)]) for lang in self.mono_languages], dtype=float)
        self.mono_weights = mono_weights
        self.mono_probs = (
            sizes / sizes.sum()
            if mono_weights == "size" and len(sizes)
            else np.full(len(sizes), 1 / max(1, len(sizes)))
        )
        self.batch_counts: Counter = Counter()  # (kind, language or "") -> batches yielded so far

    def _build_pools(self, skip_small_languages: bool) -> dict[tuple[str, str], _Pool]:
        lab = self.labels
        same = lab.query_lang == lab.passage_lang
        pools: dict[tuple[str, str], _Pool] = {}
        if self.strategy == SAME:
            pools[(SAME, "")] = _Pool(SAME, np.flatnonzero(same), lab.group)
        if self.alpha is not None and self.alpha > 0:
            for code, lang in enumerate(lab.languages):
                if self.strategy == "english" and lang != "en":
                    continue
                rows = np.flatnonzero(same & (lab.query_lang == code))
                if len(rows):
                    pools[(MONO, lang)] = _Pool(f"{MONO} {lang}", rows, lab.group)
            if not any(key[0] == MONO for key in pools):
                what = (
                    "English has no question/passage pairs"
                    if self.strategy == "english"
                    else ("no language has both questions and passages")
                )
                raise UserError(
                    f"strategy {self.strategy}: {what} in the training data (languages: "
                    f"{', '.join(lab.languages)}), so no monolingual batch can be made"
                )
        if self.alpha is not None and self.alpha < 1:
            pools[(CROSS, "")] = _Pool(CROSS, np.flatnonzero(~same), lab.group)
        if skip_small_languages:  # e.g. a small dev set: leave out the languages that cannot fill a batch
            small = [key for key, pool in pools.items() if key[0] == MONO and len(pool) < self.step_size]
            if len(small) < sum(key[0] == MONO for key in pools):
                self.skipped = [key[1] for key in small]
                pools = {key: pool for key, pool in pools.items() if key not in small}
        for key, pool in pools.items():
            if len(pool) < self.step_size:
                hint = f"; leave {key[1]} out with --languages" if key[1] else ""
                size = f"batch size {self.batch_size}" + (
                    f" × {self.world_size} processes" if self.world_size > 1 else ""
                )
                raise UserError(
                    f"{pool.name} batches: only {len(pool)} independent items for {size}; "
                    f"lower --batch-size{hint}"
                )
        return pools

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        queues = {key: _Queue(pool, rng) for key, pool in self.pools.items()}
        for _ in range(self.num_batches // self.world_size):
            key = self._next_kind(rng)
            rows = queues[key].take(self.step_size)
            for start in range(0, self.step_size, self.batch_size):
                self.batch_counts[key] += 1
                yield rows[start : start + self.batch_size]

    def _next_kind(self, rng: np.random.Generator) -> tuple[str, str]:
        if self.strategy == SAME:
            return (SAME, "")
        assert self.alpha is not None
        if self.alpha >= 1 or (self.alpha > 0 and rng.random() < self.alpha):
            if len(self.mono_languages) == 1:
                return (MONO, self.mono_languages[0])
            if self.mono_weights == "uniform":
                return (MONO, self.mono_languages[int(rng.integers(len(self.mono_languages)))])
            return (MONO, self.mono_languages[int(rng.choice(len(self.mono_languages), p=self.mono_probs))])
        return (CROSS, "")

    def describe(self) -> dict:
        """Strategy, alpha, pool sizes and the batches yielded so far by kind (for records)."""
        return {
            "strategy": self.strategy,
            "alpha": self.alpha,
            "batch_size": self.batch_size,
            "world_size": self.world_size,
            "batches_per_epoch": self.num_batches,
            "mono_languages": list(self.mono_languages),
            "mono_weights": self.mono_weights,
            "mono_language_probabilities": {
                lang: round(float(p), 6) for lang, p in zip(self.mono_languages, self.mono_probs)
            },
            "independent_items": {pool.name: len(pool) for pool in self.pools.values()},
            "languages_skipped": list(self.skipped),
            "batches_drawn": {
                (f"{kind} {lang}" if lang else kind): n
                for (kind, lang), n in sorted(self.batch_counts.items())
            },
        }


def batch_kind(indices: Sequence[int], labels: PairLabels) -> tuple[str, str]:
    """What a batch is: ("mono", lang), ("cross", ""), ("mixed", "") (all pairs monolingual, several
    languages) or ("impure", "") (monolingual and cross-lingual pairs together)."""
    idx = np.asarray(indices)
    q, p = labels.query_lang[idx], labels.passage_lang[idx]
    if np.all(q == p):
        langs = np.unique(q)
        return (MONO, labels.languages[int(langs[0])]) if len(langs) == 1 else (SAME, "")
    if np.all(q != p):
        return (CROSS, "")
    return ("impure", "")


def world_size() -> int:
    """Number of training processes: torch.distributed's when initialised, else ``$WORLD_SIZE`` (torchrun)."""
    import os

    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return int(os.environ.get("WORLD_SIZE", "1"))


class BatchSamplerFactory:
    """The callable for ``SentenceTransformerTrainingArguments(batch_sampler=...)``.

    The trainer calls it as ``fn(dataset, batch_size=, drop_last=, valid_label_columns=,
    generator=, seed=)`` for the training set and for the dev set; the labels, which the collator
    would otherwise tokenize, are bound here, one set per dataset (told apart by their row count).
    It keeps the samplers it made (for their statistics) and pickles without them (checkpoints
    save the training arguments).
    """

    def __init__(
        self,
        labels: PairLabels,
        strategy: str = "hybrid",
        alpha: float | None = None,
        mono_weights: str = "uniform",
        dev_labels: PairLabels | None = None,
    ) -> None:
        resolve_alpha(strategy, alpha)  # fail early, before the trainer is built
        if dev_labels is not None and len(dev_labels.group) == len(labels.group):
            raise ValueError("training and dev sets must differ in size (labels are bound by row count)")
        self.labels, self.dev_labels = labels, dev_labels
        self.strategy, self.alpha, self.mono_weights = strategy, alpha, mono_weights
        self.created: list[HybridBatchSampler] = []

    def __call__(self, dataset: Sequence, **kwargs) -> HybridBatchSampler:
        labels = self.labels
        if self.dev_labels is not None and len(dataset) == len(self.dev_labels.group):
            labels = self.dev_labels
            kwargs.setdefault("skip_small_languages", True)
        sampler = HybridBatchSampler(
            dataset,
            labels=labels,
            strategy=self.strategy,
            alpha=self.alpha,
            mono_weights=self.mono_weights,
            world_size=kwargs.pop("world_size", None) or world_size(),
            **kwargs,
        )
        if labels is self.labels:
            self.created.append(sampler)
        return sampler

    def __getstate__(self) -> dict:
        return {**self.__dict__, "created": []}


def make_batch_sampler(
    labels: PairLabels,
    strategy: str = "hybrid",
    alpha: float | None = None,
    mono_weights: str = "uniform",
    dev_labels: PairLabels | None = None,
) -> BatchSamplerFactory:
    """A batch-sampler factory for the sentence-transformers trainer (see :class:`BatchSamplerFactory`)."""
    return BatchSamplerFactory(labels, strategy, alpha, mono_weights, dev_labels)
