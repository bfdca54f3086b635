"""What a model trained by ``hybrid-plugin train`` carries about its training (``training.json``).

Read by the evaluator (results' ``model.training``) and the leaderboard; written by ``training/``. Kept
here, below both, so neither the models nor the leaderboard import the trainer.
"""

from __future__ import annotations

from pathlib import Path

from hybrid_plugin.data.jsonfile import parse_json
from hybrid_plugin.errors import UserError
from hybrid_plugin.provenance import portable_path

RECORD_FILE = "training.json"
RECORD_FORMAT = 1

# the batch strategies by name (training/strategies.py resolves aliases and alpha)
STRATEGIES: dict[str, str] = {
    "hybrid": "monolingual batch with probability alpha (one language per batch), else cross-lingual",
    "mono": "X-X-mono: every batch monolingual, one language per batch (alpha = 1)",
    "cross": "X-Y: every pair cross-lingual, languages vary from pair to pair (alpha = 0)",
    "mixed": "X-X (LAReQA): every pair monolingual, languages mixed inside a batch",
    "english": "En-En: every batch English question / English passage",
}


def training_summary(path: Path) -> dict | None:
    """What the folder's ``training.json`` (written by ``hybrid-plugin train``) says; None for other models.

    Carried in every results JSON so a leaderboard row can state strategy, alpha, batch size and data.
    """
    record_file = Path(path) / RECORD_FILE
    if not record_file.is_file():
        return None
    record = parse_json(record_file.read_bytes(), record_file)
    if not isinstance(record, dict):
        raise UserError(f"{record_file}: not a training record (expected a json object)")
    cfg = record.get("config") or {}
    data = record.get("data") or {}
    base = dict(record.get("base_model") or {})
    for key in ("name", "path"):  # records written before paths were made portable
        if isinstance(base.get(key), str):
            base[key] = portable_path(base[key])
    return {
        "strategy": cfg.get("strategy"),
        "alpha": (record.get("sampler") or {}).get("alpha"),
        "batch_size": cfg.get("batch_size"),
        "loss": record.get("loss"),
        "steps": record.get("steps"),
        "seed": cfg.get("seed"),
        "base_model": base or None,
        "data": {
            "sources": [
                {
                    "format": s.get("format"),
                    "path": portable_path(s["path"]) if s.get("path") else s.get("path"),
                    "files": s.get("files"),
                }
                for s in data.get("sources") or []
            ],
            "languages": data.get("languages"),
            "passage_unit": data.get("passage_unit"),
            "pairs": data.get("pairs"),
        },
    }
