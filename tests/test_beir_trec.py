"""BEIR export loads in BEIR and BEIR's MAP@k equals our AP@k; TREC files reproduce our AP in ir-measures."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import ir_measures
import pytest

from hybrid_plugin.cli import main
from hybrid_plugin.integrations.beir import export_beir

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def export(datasets, tmp_path_factory):
    out = tmp_path_factory.mktemp("beir") / "mlqa-r"
    export_beir("mlqa-r", out, "de,zh", data_dir=str(datasets))
    return out


def test_layout_loads_in_beir(export):
    from beir.datasets.data_loader import GenericDataLoader

    manifest = json.loads((export / "manifest.json").read_text())
    assert sorted(manifest["settings"]) == ["de-de", "de-pool", "de-zh", "zh-de", "zh-pool", "zh-zh"]
    corpus, queries, qrels = GenericDataLoader(str(export / "zh"), prefix="de").load(split="test")
    assert len(corpus) == 2322  # zh sentences
    # only German queries whose item also exists in Chinese are in de→zh
    assert len(queries) == manifest["settings"]["de-zh"]["queries"] < 512
    assert set(qrels) == set(queries)
    assert not set(queries) & set(corpus)  # BEIR drops hits whose id equals the query id
    pool_corpus, pool_queries, pool_qrels = GenericDataLoader(str(export / "pool"), prefix="de").load()
    assert len(pool_corpus) == 2322 + 2362 and len(pool_queries) == 512
    assert {len(v) for v in pool_qrels.values()} <= {1, 2}


def test_beir_map_equals_our_ap_at_k(default_de_en, datasets, tmp_path):
    """BEIR's EvaluateRetrieval + DenseRetrievalExactSearch on exported settings vs our AP@k.

    Real default model (a random tiny model is at chance level and full of ties, where BEIR's
    top-k picks an arbitrary part of a tie). A setting whose corpus is German: no German sentence
    has the leading/trailing whitespace that BEIR's SentenceBERT strips before encoding. One
    cross-lingual setting only: BEIR encodes the corpus again for every setting (about a minute
    each), and a monolingual setting takes the same path through both.
    """
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from examples.beir_evaluate import evaluate_setting

    export = tmp_path / "xquad-r"
    export_beir("xquad-r", export, "de,en", data_dir=str(datasets))
    ours = default_de_en
    for setting in ("en-de",):
        beir = evaluate_setting(export, setting, str(Path(ours.model["path"]).expanduser()), [10, 100])
        assert beir["queries"] == ours.settings[setting].queries
        for k in (10, 100):
            assert beir[f"MAP@{k}"] == pytest.approx(ours.settings[setting].measures[f"AP@{k}"], abs=5e-6)


def test_export_refuses_non_empty_folder(capsys, datasets, tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    code = main(["export", "beir", "--task", "mlqa-r", "--languages", "de", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and "is not empty" in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "x" / "keep.txt").read_text() == "mine"
    # --force replaces only a previous export of ours: a user's folder is never emptied
    code = main(
        ["export", "beir", "--task", "mlqa-r", "--languages", "de", "--out", str(tmp_path / "x"), "--force"]
    )
    err = capsys.readouterr().err
    assert code == 2 and "not a previous BEIR export" in err
    assert (tmp_path / "x" / "keep.txt").read_text() == "mine"
    (tmp_path / "x" / "keep.txt").unlink()
    assert (
        main(["export", "beir", "--task", "mlqa-r", "--languages", "de", "--out", str(tmp_path / "x")]) == 0
    )
    code = main(
        ["export", "beir", "--task", "mlqa-r", "--languages", "de", "--out", str(tmp_path / "x"), "--force"]
    )
    assert code == 0 and (tmp_path / "x" / "manifest.json").is_file()


def test_trec_files_reproduce_our_ap(datasets, tiny_model, tmp_path):
    """Full-depth TREC runs written by --trec-out: ir-measures on the files gives our exact AP.

    XQuAD-R's German and Thai candidates (every one, with the random tiny model's ties) but the
    questions of 60 parallel groups only: the full task's run files take 900 MB of disk, and the
    writer is the same for a built-in task and a folder.
    """
    folder, res_dir, trec_dir = tmp_path / "xquad-de-th", tmp_path / "res", tmp_path / "trec"
    assert main(
        ["export", "task", "--task", "xquad-r", "--languages", "de,th", "--data-dir", str(datasets),
         "--out", str(folder), "--name", "xquad-de-th"]
    ) == 0  # fmt: skip
    queries = [
        json.loads(line) for line in (folder / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    groups = sorted({q["group"] for q in queries})[:60]
    kept = [q for q in queries if q["group"] in groups]
    (folder / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in kept), encoding="utf-8")
    kept_ids = {q["_id"] for q in kept}
    header, *pairs = (folder / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()
    pairs = [p for p in pairs if p.split("\t")[0] in kept_ids]
    (folder / "qrels" / "test.tsv").write_text("\n".join([header, *pairs]) + "\n", encoding="utf-8")
    corpus = (folder / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    per_language = Counter(json.loads(line)["language"] for line in corpus)  # full depth: every candidate
    code = main(
        [
            "evaluate", "--task", str(folder), "--model", str(tiny_model), "--out", str(res_dir),
            "--run-depth", "full", "--trec-out", str(trec_dir),
        ]
    )  # fmt: skip
    assert code == 0
    res = json.loads(next(res_dir.glob("*.json")).read_text())
    assert sorted(res["settings"]) == ["de-de", "de-pool", "de-th", "th-de", "th-pool", "th-th"]
    assert sorted(p.stem for p in trec_dir.glob("*.run")) == sorted(res["settings"])
    for setting, entry in res["settings"].items():
        qrels = list(ir_measures.read_trec_qrels(str(trec_dir / f"{setting}.qrels")))
        run = list(ir_measures.read_trec_run(str(trec_dir / f"{setting}.run")))
        target = setting.split("-")[1]
        assert len(run) == 60 * (sum(per_language.values()) if target == "pool" else per_language[target])
        agg = ir_measures.calc_aggregate([ir_measures.AP, ir_measures.nDCG @ 10], qrels, run)
        assert agg[ir_measures.AP] == pytest.approx(entry["map"], abs=1e-9)
        assert agg[ir_measures.nDCG @ 10] == pytest.approx(entry["measures"]["nDCG@10"], abs=1e-9)
        assert len({r.query_id for r in run}) == entry["queries"] == 60
