"""``hybrid-plugin export mteb``: a task in MTEB's Hugging Face dataset layout, for the Hub or an upstream PR.

MTEB's retrieval tasks load their data from a dataset repository with three configs per subset:
``{subset}-corpus`` (``id``, ``text``), ``{subset}-queries`` (``id``, ``text``) and ``{subset}-qrels``
(``query-id``, ``corpus-id``, ``score``), one Parquet file per config and split, listed in the
dataset card's YAML (what ``AbsTaskRetrieval.push_dataset_to_hub`` uploads). This writes that layout
into a local folder, so ``datasets.load_dataset(DIR, "deu-pool-corpus")`` works offline and
``huggingface-cli upload`` (or ``git push``) publishes it unchanged. The card is MTEB's own
(``TaskMetadata.generate_dataset_card``: license, languages, citation, statistics) plus a section on
how the export was made and what MTEB's dataset-quality checks flag in LAReQA pools.

The rows are exactly what the built-in task evaluates (same pool builder, same subsets), so a plain
MTEB task reading the folder back (:func:`task_from_export`) gives MTEB's standard scores equal to
the built-in task's; only the plugin's extra values (exact full-rank ``map``, language bias) need
the plugin.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hybrid_plugin import __version__
from hybrid_plugin.errors import UserError

MANIFEST = "hybrid_plugin_export.json"
SPLIT = "test"
EXPORT_MAIN_SCORE = "map_at_1000"  # MTEB's standard measures have no exact full-rank MAP


@dataclass(frozen=True)
class ExportSummary:
    """What an export wrote: where, which subsets, how many rows and bytes."""

    out: Path
    mteb_task: str
    subsets: tuple[str, ...]
    rows: int
    bytes: int


def export_subsets(task_name: str, languages: Sequence[str] | None) -> list[str]:
    """Subsets exported for a language selection: x-y for x, y in it, and x-pool (of all the languages)."""
    from hybrid_plugin.data.spec import get_spec, select_languages
    from hybrid_plugin.integrations.mteb_metadata import iso3, subsets

    spec_name = _spec_name(task_name)
    spec = get_spec(spec_name)
    chosen = {iso3(x) for x in select_languages(spec, list(languages) if languages else None)}
    out = []
    for subset in subsets(spec_name):
        x, y = subset.split("-")
        if x in chosen and (y == "pool" or y in chosen):
            out.append(subset)
    return out


def _spec_name(task_name: str) -> str:
    from hybrid_plugin.integrations.mteb import TASK_NAMES

    by_name = {v.lower(): k for k, v in TASK_NAMES.items()} | {k: k for k in TASK_NAMES}
    if task_name.lower() not in by_name:
        raise UserError(f"--task {task_name}: MTEB exports exist for {', '.join(TASK_NAMES)}")
    return by_name[task_name.lower()]


def _check_out(out: Path, data_dir: str | None) -> None:
    """A new or empty folder, nowhere near the data, the cache or the package (real paths)."""
    from hybrid_plugin.outputs import data_folders, refuse_protected

    if str(out).strip() in ("", "."):
        raise UserError("--out must name a new folder for the export")
    refuse_protected(out, "--out", data_folders(data_dir))
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"--out {out}: exists and is not an empty folder; name a new one")


def export_mteb(
    task_name: str, out: str | Path, languages: Sequence[str] | None = None, data_dir: str | None = None
) -> ExportSummary:
    """Write ``task_name`` (XQuADR / MLQAR, xquad-r / mlqa-r) in MTEB's layout into the new folder ``out``."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from tqdm.auto import tqdm

    from hybrid_plugin.atomic import atomic_dir, check_writable
    from hybrid_plugin.integrations.mteb import TASK_NAMES
    from hybrid_plugin.integrations.mteb_tasks import TASK_CLASSES

    out = Path(out)
    _check_out(out, data_dir)
    check_writable(out.parent if out.parent != Path("") else Path("."), "--out")
    spec_name = _spec_name(task_name)
    name = TASK_NAMES[spec_name]
    selected = export_subsets(spec_name, languages)
    task = TASK_CLASSES[name]().filter_languages(None, hf_subsets=selected)
    task.data_dir = data_dir
    task.load_data()
    rows = 0
    with atomic_dir(out) as staging:
        for subset in tqdm(selected, desc=f"{name} → MTEB layout", unit="subset"):
            data = task.dataset[subset][SPLIT]
            qrels = data["relevant_docs"]
            queries = arrow(data["queries"])  # keep the queries with an answer in the subset, as MTEB does
            keep = pa.array([qid in qrels for qid in queries.column("id").to_pylist()])
            tables = {
                "corpus": arrow(data["corpus"]),
                "queries": queries.filter(keep),
                "qrels": pa.table(
                    {
                        "query-id": [q for q, docs in qrels.items() for _ in docs],
                        "corpus-id": [d for docs in qrels.values() for d in docs],
                        "score": pa.array([s for docs in qrels.values() for s in docs.values()], pa.int64()),
                    }
                ),
            }
            for part, table in tables.items():
                folder = staging / f"{subset}-{part}"
                folder.mkdir()
                pq.write_table(table, folder / f"{SPLIT}-00000-of-00001.parquet")
                rows += table.num_rows
        (staging / "README.md").write_text(dataset_card(task, selected), encoding="utf-8")
        manifest = {
            "mteb_task": name,
            "task": spec_name,
            "subsets": selected,
            "split": SPLIT,
            "main_score": EXPORT_MAIN_SCORE,
            "data_sha256": task._context.provenance.get("data_sha256") if task._context else None,
            "hybrid_plugin": __version__,
            "load": f'datasets.load_dataset(OUT, "{selected[0]}-corpus", split="{SPLIT}")',
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    task.unload_data()
    return ExportSummary(out, name, tuple(selected), rows, size)


def arrow(dataset: Any) -> Any:
    """The ``id`` and ``text`` columns of a ``datasets.Dataset`` as a pyarrow Table (no row-wise copy)."""
    table = dataset.data.table if dataset._indices is None else dataset.flatten_indices().data.table
    return table.select(["id", "text"])


def dataset_card(task: Any, selected: Sequence[str]) -> str:
    """MTEB's dataset card for the task, with the configs of the export and a section of ours."""
    from huggingface_hub import DatasetCard, DatasetCardData

    from hybrid_plugin.integrations.mteb_metadata import QUALITY_NOTE

    configs = [
        {
            "config_name": f"{subset}-{part}",
            "data_files": [{"split": SPLIT, "path": f"{subset}-{part}/*.parquet"}],
        }
        for subset in selected
        for part in ("corpus", "queries", "qrels")
    ]
    existing = DatasetCard(f"---\npretty_name: {task.metadata.name}\n---\n")
    existing.data = DatasetCardData(configs=configs, pretty_name=task.metadata.name)
    card = task.metadata.generate_dataset_card(existing)
    ours = f"""
## This export

Written by `hybrid-plugin export mteb` (hybrid_plugin {__version__}) from the LAReQA files
(checked against their published sha256), with the same pool builder as the built-in `{task.metadata.name}`
task. {len(selected)} subsets: '{{x}}-{{y}}' (queries in x with an answer in y, candidates in y) and
'{{x}}-pool' (queries in x, the candidates of all the task's languages; every parallel answer is
relevant). Each has the configs `{{subset}}-corpus`, `{{subset}}-queries` and `{{subset}}-qrels`.

{QUALITY_NOTE}

MTEB's standard retrieval scores on this data equal those of the built-in task; its main score here
would be `{EXPORT_MAIN_SCORE}` (MTEB has no exact full-rank MAP; hybrid_plugin's task reports it as
`map`, with the language-bias values of the pools).
"""
    return str(card) + "\n" + ours


def task_from_export(folder: str | Path) -> Any:
    """A plain MTEB retrieval task reading an export back (MTEB's own loader and scoring, no plugin code)."""
    from mteb.abstasks.retrieval import AbsTaskRetrieval
    from mteb.abstasks.task_metadata import TaskMetadata

    from hybrid_plugin.integrations.mteb_tasks import TASK_CLASSES

    folder = Path(folder)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise UserError(f"{folder}: no {MANIFEST}; not an export of hybrid-plugin export mteb")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    base = TASK_CLASSES[manifest["mteb_task"]].metadata
    fields = base.model_dump(exclude={"descriptive_stats"})
    fields |= {
        "dataset": {"path": str(folder.resolve()), "revision": "local"},
        "eval_langs": {s: base.eval_langs[s] for s in manifest["subsets"]},
        "main_score": manifest["main_score"],
    }
    fields = {k: v for k, v in fields.items() if k in TaskMetadata.model_fields}
    metadata = TaskMetadata(**fields)
    cls = type(manifest["mteb_task"], (AbsTaskRetrieval,), {"metadata": metadata, "__module__": __name__})
    return cls()
