"""De-biasing maps (center, LSAR, LEACE) fitted in or out of sample: hand-computed values, agreement
with ``concept_erasure``, artifacts, and the results' labels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_cli import assert_one_line_error
from test_plugins import BiasedEncoder, biased_vector, parallel_pool

from hybrid_plugin.errors import UserError
from hybrid_plugin.evaluation.engine import TaskContext, evaluate_pool
from hybrid_plugin.scoring.debias import (
    Debiaser,
    DebiasSpec,
    FitTexts,
    parse_debias,
    pool_fit_texts,
    resolve_fit,
)
from hybrid_plugin.scoring.resolve import resolve_retriever

TOY = FitTexts(["a", "b", "c", "d"], ["de", "de", "en", "en"], "toy")


def fitted(
    method: str, emb: np.ndarray, langs: list[str], rank: int | None = None, normalize=False
) -> Debiaser:
    fit = FitTexts([str(i) for i in range(len(langs))], langs, "toy")
    return Debiaser.fit_embeddings(DebiasSpec(method, rank), emb, langs, fit, normalize, "base")


def test_parse_debias_and_its_refusals() -> None:
    assert parse_debias("none") is None and parse_debias(None) is None
    assert parse_debias("lsar:3") == DebiasSpec("lsar", 3) and parse_debias("leace") == DebiasSpec("leace")
    for bad in ("whiten", "center:2", "lsar:0", "lsar:x", "LSAR"):
        with pytest.raises(UserError, match="--debias"):
            parse_debias(bad)


def test_center_by_hand_and_identical_to_the_old_pool_centering() -> None:
    emb = np.array([[1.0, 0, 2], [3, 0, 2], [0, 1, -1], [0, 3, -1]])
    langs = ["de", "de", "en", "en"]
    center = fitted("center", emb, langs)
    np.testing.assert_array_equal(center.means, [[2, 0, 2], [0, 2, -1]])
    np.testing.assert_array_equal(center.apply(np.array([[5.0, 5, 5]]), ["en"]), [[5, 3, 6]])
    with pytest.raises(UserError, match="no fitted mean for fr"):
        center.apply(np.ones((1, 3)), ["fr"])

    # the pool-fitted map reproduces the former implementation bit for bit (published numbers)
    pool = parallel_pool()
    q = np.stack([biased_vector(t) for t in pool.query_text]).astype(np.float32)
    c = np.stack([biased_vector(t) for t in pool.cand_text]).astype(np.float32)
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    old_means = np.stack([unit(c[:4].astype(np.float64)).mean(0), unit(c[4:].astype(np.float64)).mean(0)])
    old_query = (unit(q.astype(np.float64)) - old_means[pool.query_lang]).astype(np.float32)
    fit = pool_fit_texts(pool)
    new = Debiaser.fit_embeddings(DebiasSpec("center"), c, fit.langs, fit, True, "base")
    assert np.array_equal(new.apply(q, [pool.languages[i] for i in pool.query_lang]), old_query)


def test_lsar_projects_out_the_language_mean_differences_by_hand() -> None:
    # language means (1, 0, 0) and (0, 1, 0): their difference spans (1, -1, 0) / sqrt(2)
    emb = np.array([[1.0, 0, 1], [1, 0, -1], [0, 1, 2], [0, 1, -2]])
    lsar = fitted("lsar", emb, ["de", "de", "en", "en"])
    assert lsar.params == {"rank": 1}
    np.testing.assert_allclose(np.abs(lsar.basis), [[2**-0.5, 2**-0.5, 0]], atol=1e-15)
    np.testing.assert_allclose(lsar.apply(np.array([[1.0, 2, 3]])), [[1.5, 1.5, 3]], atol=1e-6)
    # three languages span two directions; after the full projection every language mean is equal
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(30, 6)) + np.repeat(rng.normal(size=(3, 6)) * 3, 10, axis=0)
    langs = ["ar"] * 10 + ["de"] * 10 + ["zh"] * 10
    out = fitted("lsar", emb, langs).apply(emb).astype(np.float64)
    means = np.stack([out[i : i + 10].mean(0) for i in (0, 10, 20)])
    np.testing.assert_allclose(means - means[0], 0, atol=1e-5)
    assert fitted("lsar", emb, langs, rank=1).basis.shape == (1, 6)
    with pytest.raises(UserError, match="span only 2 directions"):
        fitted("lsar", emb, langs, rank=3)


def test_leace_equals_concept_erasure_and_leaves_no_linear_language_signal() -> None:
    torch = pytest.importorskip("torch")
    concept_erasure = pytest.importorskip("concept_erasure")
    rng = np.random.default_rng(1)
    n, d, langs = 600, 12, ["ar", "de", "en", "zh"]
    lang_index = rng.integers(0, len(langs), size=n)
    emb = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) + rng.normal(size=(len(langs), d))[lang_index] * 2
    names = [langs[i] for i in lang_index]
    ours = fitted("leace", emb, names)

    fitter = concept_erasure.LeaceFitter(
        d, len(langs), shrinkage=False, constrain_cov_trace=False, dtype=torch.float64
    )
    fitter.update(
        torch.from_numpy(emb), torch.nn.functional.one_hot(torch.from_numpy(lang_index), len(langs))
    )
    theirs = fitter.eraser(torch.from_numpy(emb)).numpy()
    erased = ours.apply(emb).astype(np.float64)
    np.testing.assert_allclose(erased, theirs, rtol=1e-5, atol=1e-5)  # ours is returned as float32
    # guardedness: no covariance left between the erased embeddings and the language one-hot
    onehot = np.eye(len(langs))[lang_index]
    cross = (erased - erased.mean(0)).T @ (onehot - onehot.mean(0)) / (n - 1)
    assert np.abs(cross).max() < 1e-5 < np.abs((emb - emb.mean(0)).T @ (onehot - onehot.mean(0))).max() / n


def test_artifact_round_trip_without_pickle(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    emb, langs = rng.normal(size=(40, 5)), ["de"] * 20 + ["en"] * 20
    for method in ("center", "lsar", "leace"):
        made = fitted(method, emb, langs, normalize=True)
        made.save(tmp_path / f"{method}.npz")
        loaded = resolve_fit(tmp_path / f"{method}.npz")
        assert isinstance(loaded, Debiaser) and loaded.fingerprint() == made.fingerprint()
        assert np.array_equal(loaded.apply(emb, langs), made.apply(emb, langs))
    assert len({fitted(m, emb, langs).fingerprint() for m in ("center", "lsar", "leace")}) == 3
    np.save(tmp_path / "evil.npy", np.array([object()], dtype=object), allow_pickle=True)
    np.savez(tmp_path / "evil.npz", metadata=np.array([{"version": 1}], dtype=object))
    with pytest.raises(UserError, match="not a de-biasing artifact"):
        resolve_fit(tmp_path / "evil.npz")


def test_fit_jsonl_is_checked_line_by_line(tmp_path: Path) -> None:
    good = tmp_path / "fit.jsonl"
    good.write_text('{"lang": "de", "text": "Hallo"}\n\n{"lang": "en", "text": "Hello"}\n', encoding="utf-8")
    fit = resolve_fit(good)
    assert isinstance(fit, FitTexts) and fit.langs == ["de", "en"] and fit.texts == ["Hallo", "Hello"]
    assert fit.record()["per_language"] == {"de": 1, "en": 1} and not fit.transductive
    for content, expected in (
        ('{"lang": "de", "text": "x"}\nnot json\n', r"fit.jsonl:2: not a JSON object"),
        ('{"lang": "German", "text": "x"}\n', r"fit.jsonl:1: 'lang' must be a language code"),
        ('{"lang": "de", "text": ""}\n', r"fit.jsonl:1: expected"),
        ('{"lang": "de", "text": "x"}\n', "at least 2 languages"),
    ):
        good.write_text(content, encoding="utf-8")
        with pytest.raises(UserError, match=expected):
            resolve_fit(good)
    with pytest.raises(UserError, match="expected pool, an existing .jsonl"):
        resolve_fit(tmp_path / "missing.jsonl")


def fit_file(tmp_path: Path) -> Path:
    """Out-of-sample texts: other groups (5..7) than the pool's (0..3), same languages."""
    path = tmp_path / "fit.jsonl"
    rows = [{"lang": lang, "text": f"{lang} text {g}"} for lang in ("de", "en") for g in (5, 6, 7)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize("method", ["center", "lsar", "leace"])
def test_out_of_sample_fits_remove_the_offset_and_are_labelled(tmp_path: Path, method: str) -> None:
    pool = parallel_pool()
    context = TaskContext("toy", "toy")
    plain = evaluate_pool(pool, resolve_retriever(BiasedEncoder(), cache_root=tmp_path / "emb"), context)
    retriever = resolve_retriever(
        BiasedEncoder(), cache_root=tmp_path / "emb", debias=method, debias_fit=fit_file(tmp_path)
    )
    evaluation = evaluate_pool(pool, retriever, context, run_depth=0)
    after, model = evaluation.results, evaluation.results.model
    assert after.scores.max_rank_distance < plain.results.scores.max_rank_distance
    assert after.settings["de-pool"].map > plain.results.settings["de-pool"].map
    debias = model["debias"]
    assert debias["method"] == method and debias["transductive"] is False
    assert debias["fit"]["source"] == "fit.jsonl" and debias["fit"]["texts"] == 6
    assert model["name"].endswith(f"+ {method}" + (" r=1" if method == "lsar" else ""))
    assert model["fingerprint"] != plain.results.model["fingerprint"]
    ((name, data),) = evaluation.scored.artifacts.items()
    assert name == debias["artifact"] and name.startswith(f"debias-{method}-")
    (tmp_path / name).write_bytes(data)
    again = resolve_retriever(
        BiasedEncoder(), cache_root=tmp_path / "emb", debias=method, debias_fit=tmp_path / name
    )
    reused = evaluate_pool(pool, again, context, run_depth=0).results
    assert reused.model["fingerprint"] == model["fingerprint"] and reused.scores == after.scores


def test_pool_fits_are_labelled_transductive(tmp_path: Path) -> None:
    retriever = resolve_retriever(BiasedEncoder(), cache_root=tmp_path / "emb", debias="leace")
    model = evaluate_pool(parallel_pool(), retriever, TaskContext("toy", "toy"), run_depth=0).results.model
    assert model["debias"]["transductive"] is True and model["debias"]["fit"]["source"] == "pool"
    assert model["name"].endswith("+ leace (pool-fitted)")


def test_fit_texts_from_a_training_source_are_capped_and_seeded(tmp_path: Path) -> None:
    from hybrid_plugin.training.fit_texts import fit_texts_from_sources

    path = tmp_path / "train.jsonl"
    rows = [
        {"id": f"i{i}", "lang": lang, "query": f"{lang} question {i}", "passage": f"{lang} passage {i}"}
        for i in range(10)
        for lang in ("de", "es")
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    fit = fit_texts_from_sources(f"jsonl:{path}", per_language=5, seed=3, data_dir=tmp_path / "none")
    assert fit.langs == ["de"] * 5 + ["es"] * 5 and len(set(fit.texts)) == 10
    assert fit == fit_texts_from_sources(f"jsonl:{path}", per_language=5, seed=3, data_dir=tmp_path / "none")
    full = fit_texts_from_sources(f"jsonl:{path}", per_language=100, data_dir=tmp_path / "none")
    assert len(full.texts) == 40 and "≤ 100 texts per language" in full.source


def test_cli_refuses_bad_debias_options_in_one_line(tmp_path: Path, capsys) -> None:
    """Refused before any task or model is read (a missing data folder would be the next error)."""
    from hybrid_plugin.cli import main

    for args, expected in (
        (["--debias", "whiten"], "--debias whiten: expected none, center"),
        (["--debias-fit", "x.jsonl"], "--debias-fit needs --debias"),
        (["--debias", "lsar", "--debias-fit", str(tmp_path / "no.jsonl")], "--debias-fit"),
        (["--debias", "lsar:0"], "must be at least 1"),
    ):
        data = ["--data-dir", str(tmp_path / "no-data")]
        code = main(["evaluate", "--task", "xquad-r", "--out", str(tmp_path / "o"), *data, *args])
        assert_one_line_error(code, capsys.readouterr().err, expected)
        assert not (tmp_path / "o").exists()
