"""Batch samplers that decide the language make-up of every batch (they know nothing of models).

A sampler sees, per dataset row, three integers: the row's conflict group, its query language and
its passage language. Rows of one group (parallel answers of one item, or items sharing a text)
never share a batch, so no pair is another's false negative. Strategies (Elmahdy et al. 2024; Roy
et al. 2020):

- ``hybrid``: each batch is monolingual with probability ``alpha`` (one language for the whole
  batch, drawn uniformly over the languages that have monolingual pairs), else cross-lingual
  (every pair's query and passage languages differ; the languages vary from pair to pair).
- ``mono``  (X-X-mono): every batch monolingual, i.e. hybrid with ``alpha = 1``.
- ``cross`` (X-Y): every batch cross-lingual, i.e. hybrid with ``alpha = 0``.
- ``same-language`` (X-X): every pair monolingual, languages mixed inside a batch.

Every batch is full. Within a kind of batch, groups are visited in a random order, each once
before any repeats; an epoch is as many batches as there are eligible groups divided by the batch
size. The order depends only on ``seed`` and the epoch, so a resumed run sees the same batches.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from sentence_transformers.base.sampler import DefaultBatchSampler

from hybrid_plugin.errors import UserError
from hybrid_plugin.training.strategies import resolve_alpha

MONO, CROSS, SAME = "mono", "cross", "same-language"


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
        self.labels = labels
        self.strategy = strategy
        self.alpha = resolve_alpha(strategy, alpha)
        self.pools = self._build_pools()
        eligible = np.unique(np.concatenate([pool.groups for pool in self.pools.values()]))
        self.num_batches = max(1, len(eligible) // batch_size)
        self.mono_languages = [key[1] for key in self.pools if key[0] == MONO]
        self.batch_counts: Counter = Counter()  # (kind, language or "") -> batches yielded so far

    def _build_pools(self) -> dict[tuple[str, str], _Pool]:
        lab = self.labels
        same = lab.query_lang == lab.passage_lang
        pools: dict[tuple[str, str], _Pool] = {}
        if self.strategy == SAME:
            pools[(SAME, "")] = _Pool(SAME, np.flatnonzero(same), lab.group)
        if self.alpha is not None and self.alpha > 0:
            for code, lang in enumerate(lab.languages):
                rows = np.flatnonzero(same & (lab.query_lang == code))
                if len(rows):
                    pools[(MONO, lang)] = _Pool(f"{MONO} {lang}", rows, lab.group)
            if not any(key[0] == MONO for key in pools):
                raise UserError(
                    f"strategy {self.strategy}: no language has both questions and passages, "
                    "so no monolingual batch can be made"
                )
        if self.alpha is not None and self.alpha < 1:
            pools[(CROSS, "")] = _Pool(CROSS, np.flatnonzero(~same), lab.group)
        for key, pool in pools.items():
            if len(pool) < self.batch_size:
                hint = f"; leave {key[1]} out with --languages" if key[1] else ""
                raise UserError(
                    f"{pool.name} batches: only {len(pool)} independent items for batch size "
                    f"{self.batch_size}; lower --batch-size{hint}"
                )
        return pools

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        queues = {key: _Queue(pool, rng) for key, pool in self.pools.items()}
        for _ in range(self.num_batches):
            key = self._next_kind(rng)
            self.batch_counts[key] += 1
            yield queues[key].take(self.batch_size)

    def _next_kind(self, rng: np.random.Generator) -> tuple[str, str]:
        if self.strategy == SAME:
            return (SAME, "")
        assert self.alpha is not None
        if self.alpha >= 1 or (self.alpha > 0 and rng.random() < self.alpha):
            return (MONO, self.mono_languages[int(rng.integers(len(self.mono_languages)))])
        return (CROSS, "")

    def describe(self) -> dict:
        """Strategy, alpha, pool sizes and the batches yielded so far by kind (for records)."""
        return {
            "strategy": self.strategy,
            "alpha": self.alpha,
            "batch_size": self.batch_size,
            "batches_per_epoch": self.num_batches,
            "mono_languages": list(self.mono_languages),
            "independent_items": {pool.name: len(pool) for pool in self.pools.values()},
            "batches_drawn": {
                (f"{kind} {lang}" if lang else kind): n
                for (kind, lang), n in sorted(self.batch_counts.items())
            },
        }


def batch_kind(indices: Sequence[int], labels: PairLabels) -> tuple[str, str]:
    """What a batch is: ("mono", lang), ("cross", ""), ("same-language", "") or ("mixed", "")."""
    idx = np.asarray(indices)
    q, p = labels.query_lang[idx], labels.passage_lang[idx]
    if np.all(q == p):
        langs = np.unique(q)
        return (MONO, labels.languages[int(langs[0])]) if len(langs) == 1 else (SAME, "")
    if np.all(q != p):
        return (CROSS, "")
    return ("mixed", "")


class BatchSamplerFactory:
    """The callable for ``SentenceTransformerTrainingArguments(batch_sampler=...)``.

    The trainer calls it as ``fn(dataset, batch_size=, drop_last=, valid_label_columns=,
    generator=, seed=)``; the labels, which the collator would otherwise tokenize, are bound here.
    It keeps the samplers it made (for their statistics) and pickles without them (checkpoints
    save the training arguments).
    """

    def __init__(self, labels: PairLabels, strategy: str = "hybrid", alpha: float | None = None) -> None:
        resolve_alpha(strategy, alpha)  # fail early, before the trainer is built
        self.labels, self.strategy, self.alpha = labels, strategy, alpha
        self.created: list[HybridBatchSampler] = []

    def __call__(self, dataset: Sequence, **kwargs) -> HybridBatchSampler:
        sampler = HybridBatchSampler(
            dataset, labels=self.labels, strategy=self.strategy, alpha=self.alpha, **kwargs
        )
        self.created.append(sampler)
        return sampler

    def __getstate__(self) -> dict:
        return {**self.__dict__, "created": []}


def make_batch_sampler(
    labels: PairLabels, strategy: str = "hybrid", alpha: float | None = None
) -> BatchSamplerFactory:
    """A batch-sampler factory for the sentence-transformers trainer (see :class:`BatchSamplerFactory`)."""
    return BatchSamplerFactory(labels, strategy, alpha)
