"""Faults on ``compare`` and ``train`` (issue 25): each is refused in one line with exit code 2, no
traceback, nothing else written, and never reported as a wrong number.

``compare`` runs on synthetic results written as ``evaluate`` writes them (no model); ``train`` on the
tiny model built in the test session (a few steps each).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from test_faults import cli_error, tree
from test_stats import scores, synthetic_pool, write_run

from hybrid_plugin.cli import main
from hybrid_plugin.stats.paired import MAX_BOOTSTRAPS, MAX_PERMUTATIONS, MAX_SEED

# ---------------------------------------------------------------------------------------------
# compare


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two systems' results JSON (each beside its per-query file) on a small synthetic pool."""
    pool = synthetic_pool()
    out = tmp_path_factory.mktemp("compare")
    a, b = (
        write_run(pool, scores(pool, seed, signal), out / name, name)
        for name, seed, signal in (("a", 1, 2.0), ("b", 2, 4.0))
    )
    return a, b


def _edited_copy(results: Path, folder: Path, value: float) -> Path:
    """A copy of ``results`` whose first monolingual ``ap`` is ``value``, with the JSON made to agree
    (its sha256 and mono_map recomputed), as a hand-edited pair of files would."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    shutil.copytree(results.parent, folder)
    path = folder / results.name
    data = json.loads(path.read_text(encoding="utf-8"))
    per_query = folder / data["per_query"]["file"]
    table = pq.read_table(per_query)
    ap = table.column("ap").to_numpy().copy()
    mono = np.flatnonzero(table.column("kind").cast(pa.string()).to_numpy(zero_copy_only=False) == "mono")
    ap[mono[0]] = value
    table = table.set_column(table.column_names.index("ap"), "ap", pa.array(ap, pa.float64()))
    pq.write_table(table, per_query)
    data["per_query"]["sha256"] = hashlib.sha256(per_query.read_bytes()).hexdigest()
    if not np.isnan(value):  # what the edited rows give (nan rows are left out, as nulls are)
        data["scores"]["mono_map"] = value
    path.write_text(json.dumps(data), encoding="utf-8")  # Python writes inf as bare Infinity
    return path


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
def test_compare_refuses_non_finite_per_query_values(value, pair, tmp_path, capsys):
    edited = _edited_copy(pair[1], tmp_path / "edited", value)
    before = tree(tmp_path)
    line = cli_error(capsys, ["compare", str(pair[0]), str(edited), "--format", "json"])
    per_query = edited.parent / f"{edited.stem}.queries.parquet"
    assert line == (
        f"hybrid-plugin: error: {per_query}: column ap holds {value} (row 0); per-query values must be "
        "finite numbers (null where undefined)"
    )
    assert capsys.readouterr().out == ""  # no Infinity, no difference of −inf reported
    assert tree(tmp_path) == before


def test_compare_json_is_strict_json(pair, capsys):
    def refuse(constant: str) -> None:
        raise AssertionError(f"non-standard JSON constant {constant}")

    assert main(["compare", *map(str, pair), "--format", "json", "--bootstraps", "50"]) == 0
    out = json.loads(capsys.readouterr().out, parse_constant=refuse)
    mono = out["pairs"][0]["measures"][0]
    assert mono["key"] == "mono_map" and np.isfinite(mono["macro"]["difference"]["value"])


@pytest.mark.parametrize(
    "option, value, expected",
    [
        ("--bootstraps", "200000", f"from 1 to {MAX_BOOTSTRAPS:,}"),
        ("--bootstraps", str(10**9), f"from 1 to {MAX_BOOTSTRAPS:,}"),
        ("--bootstraps", "0", f"from 1 to {MAX_BOOTSTRAPS:,}"),
        ("--permutations", str(10**12), f"from 1 to {MAX_PERMUTATIONS:,}"),
        ("--seed", "-1", f"from 0 to {MAX_SEED} (2**32 − 1)"),
        ("--seed", str(2**32), f"from 0 to {MAX_SEED} (2**32 − 1)"),
    ],
)
def test_compare_bounds_its_resampling_options(option, value, expected, pair, capsys):
    line = cli_error(capsys, ["compare", *map(str, pair), option, value])
    assert line == f"hybrid-plugin: error: {option} {value}: expected a whole number {expected}"


def test_compare_accepts_the_bounds_themselves(pair, capsys):
    assert main(["compare", *map(str, pair), "--seed", str(MAX_SEED), "--bootstraps", "20"]) == 0
    assert "seed 4294967295" in capsys.readouterr().out


def test_bootstraps_drawn_in_blocks_are_the_same_draws():
    from hybrid_plugin.stats.paired import BLOCK, draw_counts, drawn_blocks

    whole = draw_counts(37, 2 * BLOCK + 123, np.random.default_rng(3))
    blocks = list(drawn_blocks(37, 2 * BLOCK + 123, np.random.default_rng(3)))
    assert [len(b) for b in blocks] == [BLOCK, BLOCK, 123]
    np.testing.assert_array_equal(np.vstack(blocks), whole)


def test_compare_refuses_a_deeply_nested_results_json(pair, tmp_path, capsys):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    line = cli_error(capsys, ["compare", str(pair[0]), str(deep)])
    assert line == f"hybrid-plugin: error: {deep}: not a hybrid-plugin results JSON (nested too deeply)"


def test_compare_hashes_a_huge_per_query_file_in_bounded_memory(pair, tmp_path, capsys):
    """A sparse 256 MB file in the per-query file's place: refused by its sha256, read in blocks (the
    whole file in memory would be 256 MB; a 20 GB one would not fit)."""
    folder = tmp_path / "huge"
    shutil.copytree(pair[1].parent, folder)
    per_query = folder / f"{pair[1].stem}.queries.parquet"
    with open(per_query, "r+b") as fh:
        fh.truncate(256 * 2**20)
    tracemalloc.start()
    try:
        line = cli_error(capsys, ["compare", str(pair[0]), str(folder / pair[1].name)])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert line == (
        f"hybrid-plugin: error: {folder / pair[1].name}: per-query file {per_query.name} does not have the "
        "sha256 the results record (changed after evaluation?)"
    )
    assert peak < 32 * 2**20, peak


# ---------------------------------------------------------------------------------------------
# train (the tiny model, a few steps each)


def _train_argv(train_jsonl: Path, tiny_model: Path, out: Path, *extra: str) -> list[str]:
    return [
        "train",
        "--train-data", f"jsonl:{train_jsonl}",
        "--output", str(out),
        "--base-model", str(tiny_model),
        "--batch-size", "8",
        "--max-seq-length", "32",
        "--no-progress",
        *extra,
    ]  # fmt: skip


def _all_finite(folder: Path) -> bool:
    from safetensors.numpy import load_file

    return all(np.isfinite(v).all() for v in load_file(str(folder / "model.safetensors")).values())


@pytest.mark.parametrize("seed", ["-1", str(2**32)])
def test_train_refuses_a_seed_numpy_cannot_take(seed, tmp_path, tiny_model, train_jsonl, capsys):
    out = tmp_path / "model"
    for extra in ((), ("--dry-run",)):
        line = cli_error(capsys, _train_argv(train_jsonl, tiny_model, out, "--seed", seed, *extra))
        expected = f"expected a whole number from 0 to {MAX_SEED} (2**32 − 1)"
        assert line == f"hybrid-plugin: error: --seed {seed}: {expected}"
    assert list(tmp_path.iterdir()) == []


def test_diverging_training_writes_no_model_and_keeps_the_last_finite_checkpoint(
    tmp_path, tiny_model, train_jsonl, capsys
):
    """lr 1e6: step 2 (the first after warm-up) makes the weights huge, step 3's loss is nan. Before:
    exit 0 and a model with 117,376 nan weights (transformers' logged loss hid the nan steps)."""
    out = tmp_path / "model"
    base = tree(tiny_model)
    argv = _train_argv(
        train_jsonl, tiny_model, out, "--learning-rate", "1e6", "--max-steps", "4", "--save-steps", "1"
    )
    line = cli_error(capsys, argv)
    checkpoints = tmp_path / "model.checkpoints"
    assert line == (
        "hybrid-plugin: error: training diverged at step 3: its loss is not finite (--learning-rate 1e+06 "
        f"too high?); no model was written to {out}, the last finite checkpoint is "
        f"{checkpoints / 'checkpoint-2'}"
    )
    assert not out.exists()
    kept = sorted(p.name for p in checkpoints.iterdir())
    assert kept == ["checkpoint-1", "checkpoint-2"]  # none of the diverged step
    assert all(_all_finite(checkpoints / name) for name in kept)
    assert tree(tiny_model) == base


def test_a_sane_learning_rate_is_not_called_divergent(tmp_path, tiny_model, train_jsonl, capsys):
    out = tmp_path / "model"
    assert main(_train_argv(train_jsonl, tiny_model, out, "--learning-rate", "1e-3", "--max-steps", "3")) == 0
    assert _all_finite(out) and json.loads((out / "training.json").read_text(encoding="utf-8"))["steps"] == 3


@pytest.fixture(scope="module")
def crashed(tmp_path_factory, tiny_model, train_jsonl) -> Path:
    """``run.checkpoints/`` (checkpoints 2 and 3, lr 1e-3, hybrid) of a run that crashed while saving."""
    from hybrid_plugin.training import trainer

    def crash(*args, **kwargs):
        raise RuntimeError("simulated crash after training")

    folder = tmp_path_factory.mktemp("crashed")
    argv = _train_argv(train_jsonl, tiny_model, folder / "run", "--learning-rate", "1e-3", "--max-steps", "3")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trainer, "keep_base_files", crash)
        with pytest.raises(RuntimeError, match="simulated crash"):
            main([*argv, "--save-steps", "2"])
    assert sorted(p.name for p in (folder / "run.checkpoints").iterdir()) == ["checkpoint-2", "checkpoint-3"]
    return folder / "run.checkpoints"


def _resume_argv(crashed: Path, folder: Path, train_jsonl: Path, tiny_model: Path, *extra: str) -> list[str]:
    shutil.copytree(crashed, folder / crashed.name)
    return _train_argv(train_jsonl, tiny_model, folder / "run", "--max-steps", "3", "--resume", *extra)


def test_resume_refuses_changed_settings_unless_resume_anyway(
    crashed, tmp_path, tiny_model, train_jsonl, capsys
):
    other_data = tmp_path / "other.jsonl"
    other_data.write_text(train_jsonl.read_text(encoding="utf-8").replace('"de"', '"de" '), encoding="utf-8")
    argv = _resume_argv(
        crashed, tmp_path, other_data, tiny_model, "--learning-rate", "2e-3", "--strategy", "X-Y"
    )
    before = tree(tmp_path)
    line = cli_error(capsys, argv)
    checkpoint = tmp_path / "run.checkpoints" / "checkpoint-3"
    assert line == (
        f"hybrid-plugin: error: --resume: {checkpoint} was trained with other settings (strategy hybrid → "
        "cross; alpha 0.5 → 0.0; learning_rate 0.001 → 0.002; training data changed); resume with the same "
        "options, or add --resume-anyway to continue with the new ones (training.json records both)"
    )
    assert tree(tmp_path) == before and not (tmp_path / "run").exists()

    assert main([*argv, "--resume-anyway"]) == 0
    resumed = json.loads((tmp_path / "run" / "training.json").read_text(encoding="utf-8"))["resumed"]
    assert resumed["checkpoint"] == "checkpoint-3"
    assert resumed["changed"]["learning_rate"] == {"checkpoint": 0.001, "now": 0.002}
    assert resumed["changed"]["strategy"] == {"checkpoint": "hybrid", "now": "cross"}
    assert list(resumed["changed"]) == ["strategy", "alpha", "learning_rate", "training data"]


def test_resume_with_the_same_settings_records_nothing_changed(crashed, tmp_path, tiny_model, train_jsonl):
    argv = _resume_argv(crashed, tmp_path, train_jsonl, tiny_model, "--learning-rate", "1e-3")
    assert main(argv) == 0
    record = json.loads((tmp_path / "run" / "training.json").read_text(encoding="utf-8"))
    assert record["resumed"] == {"checkpoint": "checkpoint-3", "changed": {}}


class _NotPlainData:
    """An object a weights-only load refuses (as any pickled code object would be)."""


def test_resume_refuses_an_rng_state_that_is_not_plain_data(
    crashed, tmp_path, tiny_model, train_jsonl, capsys
):
    import torch

    from hybrid_plugin.training.checkpoints import MARKER, write_marker

    argv = _resume_argv(crashed, tmp_path, train_jsonl, tiny_model, "--learning-rate", "1e-3")
    checkpoint = tmp_path / "run.checkpoints" / "checkpoint-3"
    torch.save({"python": _NotPlainData()}, checkpoint / "rng_state.pth")
    marker = json.loads((checkpoint / MARKER).read_text(encoding="utf-8"))
    write_marker(checkpoint, 3, marker["settings"])  # a complete checkpoint, but for that file
    before = tree(tmp_path)
    line = cli_error(capsys, argv)
    assert line == (
        f"hybrid-plugin: error: --resume: {checkpoint / 'rng_state.pth'} holds objects other than tensors "
        "and plain data, which a safe (weights-only) load refuses; delete checkpoint-3 to resume from an "
        "earlier checkpoint (or its whole folder to start again)"
    )
    assert tree(tmp_path) == before and not (tmp_path / "run").exists()
