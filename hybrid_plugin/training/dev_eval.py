"""Retrieval on held-out training items while training: a sentence-transformers evaluator on our engine.

The dev items (``--dev-fraction``: whole conflict groups, never trained on) become a LAReQA-style
pool: every question of a dev item is a query in its language, every distinct passage a candidate in
its language, and a query's relevant candidates are its item's passages in every language. The
evaluator scores the model being trained on that pool with :func:`evaluate_pool` (the same engine as
``hybrid-plugin evaluate``), without the on-disk embedding cache since the weights change every step,
and reports exact mono / cross / multi mAP and max rank distance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hybrid_plugin.data.pool import Pool, relevance_csr
from hybrid_plugin.data.spec import SETTING_KINDS, SettingKind
from hybrid_plugin.evaluation.engine import TaskContext, evaluate_pool
from hybrid_plugin.retrievers.dense import DenseRetriever, Role
from hybrid_plugin.training.config import DEV_METRICS, DEV_NAME
from hybrid_plugin.training.data import PairTable, ParallelItems

DEV_TASK = "training-dev"


def dev_pool(items: ParallelItems, dev: PairTable) -> Pool:
    """The pool of the dev pairs' items: each question a query in its language, each distinct passage a
    candidate in its language, and a query's relevant candidates its item's passages in every language.

    Candidates are deduplicated per language by text (items asking about one paragraph share it), so
    an identical text is never both relevant and a negative.
    """
    chosen = [int(i) for i in np.unique(dev.item)]
    present = set(dev.languages[k] for k in np.unique(np.concatenate([dev.query_lang, dev.passage_lang])))
    languages = tuple(lang for lang in dev.languages if lang in present)
    cand_ids: list[str] = []
    cand_lang: list[int] = []
    cand_text: list[str] = []
    cand_of: dict[tuple[int, str], int] = {}
    item_cands: dict[int, list[int]] = {i: [] for i in chosen}
    for x, lang in enumerate(languages):
        first = len(cand_ids)
        for i in chosen:
            passage = items.passages[i].get(lang)
            if passage is None:
                continue
            key = (x, passage)
            if key not in cand_of:
                cand_of[key] = len(cand_ids)
                cand_ids.append(f"{lang}-c-{len(cand_ids) - first}")
                cand_lang.append(x)
                cand_text.append(passage)
            item_cands[i].append(cand_of[key])
    groups = [i for i in chosen if item_cands[i]]
    group_index = {i: g for g, i in enumerate(groups)}
    query_ids, query_lang, query_text, query_group = [], [], [], []
    for x, lang in enumerate(languages):
        for i in groups:
            question = items.questions[i].get(lang)
            if question is not None:
                query_ids.append(f"{lang}-q-{items.ids[i]}")
                query_lang.append(x)
                query_text.append(question)
                query_group.append(group_index[i])
    group_ptr, group_cands = relevance_csr(
        [(g, c) for g, i in enumerate(groups) for c in item_cands[i]], len(groups)
    )
    return Pool(
        task=DEV_TASK,
        languages=languages,
        candidate_format="passage",
        cand_ids=cand_ids,
        cand_lang=np.asarray(cand_lang, dtype=np.int64),
        cand_sentence=cand_text,
        cand_context=cand_text,
        query_ids=query_ids,
        query_lang=np.asarray(query_lang, dtype=np.int64),
        query_text=query_text,
        query_group=np.asarray(query_group, dtype=np.int64),
        group_names=[items.ids[i] for i in groups],
        group_ptr=group_ptr,
        group_cands=group_cands,
        settings=SETTING_KINDS if len(languages) > 1 else (SettingKind.MONO,),
    )


@dataclass
class TrainingModelEncoder:
    """The model being trained, as the dense retriever's encoder: no fingerprint, so nothing is cached."""

    model: Any  # SentenceTransformer
    name: str
    query_prompt: str = ""
    document_prompt: str = ""
    similarity: str = "cosine"
    fingerprint: str | None = None

    def prompt(self, role: Role) -> str:
        return self.query_prompt if role == "query" else self.document_prompt

    def encode(self, texts: list[str], role: Role, batch_size: int) -> np.ndarray:
        return self.model.encode(
            texts,
            prompt=self.prompt(role) or None,
            batch_size=batch_size,
            convert_to_numpy=True,
            show_progress_bar=False,
        )

    def provenance(self) -> dict[str, Any]:
        return {"name": self.name, "fingerprint": None, "similarity": self.similarity}

    def device(self) -> str:
        return str(self.model.device)


def dev_evaluator(pool: Pool, name: str, prompts: dict[str, str], similarity: str, **options):
    """A sentence-transformers evaluator of the dev pool (built lazily: sentence-transformers is optional)."""
    from sentence_transformers.sentence_transformer.evaluation import SentenceEvaluator

    class DevRetrievalEvaluator(SentenceEvaluator):
        """Exact mono / cross / multi mAP and max rank distance of the model on the dev pool."""

        def __init__(self, primary: str = "multi_map", batch_size: int = 64) -> None:
            super().__init__()
            self.pool = pool
            self.name = DEV_NAME
            self.model_name = name
            self.batch_size = batch_size
            self.primary_metric = primary
            self.greater_is_better = DEV_METRICS[primary]

        def __call__(self, model, output_path=None, epoch: int = -1, steps: int = -1) -> dict[str, float]:
            encoder = TrainingModelEncoder(
                model,
                name=f"{self.model_name} (training, step {steps})",
                query_prompt=prompts.get("query", ""),
                document_prompt=prompts.get("passage", ""),
                similarity=similarity,
            )
            retriever = DenseRetriever(encoder, batch_size=self.batch_size, cache_root=None)
            context = TaskContext(task=DEV_TASK, title="held-out training items")
            scores = evaluate_pool(self.pool, retriever, context, measures=(), run_depth=None).results.scores
            metrics = {key: getattr(scores, key) for key in DEV_METRICS if getattr(scores, key) is not None}
            metrics = self.prefix_name_to_metrics(metrics, self.name)
            self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
            return metrics

        def store_metrics_in_model_card_data(self, model, metrics, epoch=0, step=0) -> None:
            """As sentence-transformers does, and every dev metric in the card's training log (not
            only the primary one)."""
            super().store_metrics_in_model_card_data(model, metrics, epoch, step)
            logs = model.model_card_data.training_logs
            if logs and logs[-1].get("Step") == step:
                logs[-1].update(metrics)

        def get_config_dict(self) -> dict[str, Any]:
            return {
                "queries": len(self.pool.query_ids),
                "candidates": len(self.pool.cand_ids),
                "languages": list(self.pool.languages),
                "engine": "hybrid_plugin.evaluation.engine.evaluate_pool",
            }

    return DevRetrievalEvaluator(**options)


def dev_curve(log_history: list[dict]) -> list[dict]:
    """The dev retrieval metrics the trainer logged, one entry per evaluation: step, epoch, metrics."""
    prefix = f"eval_{DEV_NAME}_"
    out = []
    for entry in log_history:
        found = {key[len(prefix) :]: entry[key] for key in entry if key.startswith(prefix)}
        if found:
            out.append({"step": entry["step"], "epoch": entry.get("epoch"), **found})
    return out
