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
