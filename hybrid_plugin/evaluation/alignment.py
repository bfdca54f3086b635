"""How language-agnostic a pool's candidate embeddings are: parallel vs non-parallel cosine, and a
language-identification probe (lower probe accuracy = less language information in the embeddings).

Both read the embeddings the evaluation already computed; nothing is encoded again.
"""

from __future__ import annotations

import numpy as np

from hybrid_plugin.data.pool import Pool
from hybrid_plugin.scoring.ranking import in_safe_range


def _unit(x: np.ndarray) -> np.ndarray:
    x = in_safe_range(np.asarray(x, dtype=np.float32))  # no overflow of the norm (dot models)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def candidate_components(pool: Pool) -> np.ndarray:
    """Per candidate, a component id: candidates relevant to one query group are connected (and so
    are groups sharing a candidate); a candidate relevant to nothing is its own component."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(pool.cand_ids)
    sizes = np.diff(pool.group_ptr)
    first = np.repeat(pool.group_cands[pool.group_ptr[:-1]], sizes) if len(sizes) else np.empty(0, int)
    graph = coo_matrix((np.ones(len(first)), (first, pool.group_cands)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels


def parallel_pairs(pool: Pool) -> tuple[np.ndarray, np.ndarray]:
    """Every pair (a, b), a < b, of relevant candidates of one group that are in different languages."""
    left, right = [], []
    for g in range(len(pool.group_ptr) - 1):
        cands = np.unique(pool.group_cands[pool.group_ptr[g] : pool.group_ptr[g + 1]])
        if len(cands) < 2:
            continue
        a, b = np.triu_indices(len(cands), k=1)
        a, b = cands[a], cands[b]
        keep = pool.cand_lang[a] != pool.cand_lang[b]
        left.append(a[keep])
        right.append(b[keep])
    if not left:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    pairs = np.unique(np.stack([np.concatenate(left), np.concatenate(right)], axis=1), axis=0)
    return pairs[:, 0], pairs[:, 1]


def cosine_gap(pool: Pool, cand_emb: np.ndarray, samples: int = 50_000, seed: int = 0) -> dict:
    """Mean cosine of parallel candidates (answers to one question, different languages) vs random
    candidate pairs of different languages from different components (``samples`` of them)."""
    emb = _unit(cand_emb)
    a, b = parallel_pairs(pool)
    if len(a) == 0:
        return {"parallel_cosine": None, "non_parallel_cosine": None, "gap": None, "parallel_pairs": 0}
    parallel = float(np.mean(np.sum(emb[a] * emb[b], axis=1)))
    comp = candidate_components(pool)
    rng = np.random.default_rng(seed)
    x = rng.integers(len(emb), size=samples * 2)
    y = rng.integers(len(emb), size=samples * 2)
    ok = (pool.cand_lang[x] != pool.cand_lang[y]) & (comp[x] != comp[y])
    x, y = x[ok][:samples], y[ok][:samples]
    other = float(np.mean(np.sum(emb[x] * emb[y], axis=1)))
    return {
        "parallel_cosine": parallel,
        "non_parallel_cosine": other,
        "gap": parallel - other,
        "parallel_pairs": int(len(a)),
        "non_parallel_pairs": int(len(x)),
    }


def language_probe(pool: Pool, cand_emb: np.ndarray, folds: int = 3, seed: int = 0) -> dict:
    """Accuracy of a logistic-regression language identifier on the candidate embeddings, with
    folds split by component, so parallel answers never sit on both sides of a split."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    emb = _unit(cand_emb)
    labels = np.asarray(pool.cand_lang)
    if len(np.unique(labels)) < 2:
        return {"accuracy": None, "chance": None, "folds": 0}
    groups = candidate_components(pool)
    correct = 0
    splitter = GroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(emb, labels, groups):
        probe = LogisticRegression(max_iter=2000)
        probe.fit(emb[train], labels[train])
        correct += int(np.sum(probe.predict(emb[test]) == labels[test]))
    chance = float(np.bincount(labels).max() / len(labels))
    return {"accuracy": correct / len(labels), "chance": chance, "folds": folds}


def alignment(pool: Pool, cand_emb: np.ndarray, seed: int = 0) -> dict:
    """Both diagnostics for one pool's candidate embeddings (one row per candidate)."""
    return {**cosine_gap(pool, cand_emb, seed=seed), "language_id": language_probe(pool, cand_emb, seed=seed)}
