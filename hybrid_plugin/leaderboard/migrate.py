"""Results JSON of the first model fingerprint (``files-v1``) → the current one (``content-v2``).

``files-v1`` hashed every file of the model folder, library version stamps included, so one model had
one fingerprint per library version. A results document is migrated by mapping its fingerprints
(the model's, its training base's, a de-biased model's base) through a table made by fingerprinting
the models again; the old value is kept under ``model.fingerprint_migration``. A model that cannot be
fingerprinted again (its folder is gone) keeps its fingerprint, marked ``fingerprint_scheme: files-v1``.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hybrid_plugin.models.ref import FINGERPRINT_SCHEME
from hybrid_plugin.scoring.debias import debiased_fingerprint

FILES_V1 = "files-v1"


def migrate_results(
    doc: dict[str, Any],
    fingerprints: Mapping[str, str],
    *,
    folder_model: bool = True,
    size: Mapping[str, int | None] | None = None,
    note: str = "",
) -> dict[str, Any]:
    """A copy of ``doc`` with its fingerprints mapped old → new by ``fingerprints``.

    ``folder_model``: the fingerprint is a model folder's (not BM25's or mUSE's own scheme), so an
    unmapped one is marked ``files-v1``. ``size``: ``parameters`` / ``embedding_dim`` to record where
    the results have none (``None`` values are left out).
    """
    out = copy.deepcopy(doc)
    model = out["model"]
    old = model["fingerprint"]
    debias = model.get("debias") or {}
    if debias.get("base_fingerprint") in fingerprints:
        debias["base_fingerprint"] = fingerprints[debias["base_fingerprint"]]
        new = debiased_fingerprint(debias["base_fingerprint"], debias["method"])
    else:
        new = fingerprints.get(old)
    base = (model.get("training") or {}).get("base_model") or {}
    if base.get("fingerprint") in fingerprints:
        base["fingerprint"] = fingerprints[base["fingerprint"]]
    if new is not None and new != old:
        model["fingerprint"] = new
        model["fingerprint_migration"] = {"from": old, "from_scheme": FILES_V1, "note": note}
    if folder_model:
        model["fingerprint_scheme"] = FINGERPRINT_SCHEME if new is not None else FILES_V1
    for key, value in (size or {}).items():
        if value is not None and model.get(key) is None:
            model[key] = value
    return out


def with_version_stamps(folder: Path, dst: Path, sentence_transformers: str, transformers: str) -> Path:
    """``folder`` as another library version saves it: the JSON configs copied with other version stamps,
    every other file a symlink (a 470 MB model is read, never copied). Reproduces a ``files-v1``
    fingerprint of another install, so an old fingerprint is mapped by computation, not by assumption."""
    for f in folder.rglob("*"):
        if f.is_file():
            target = dst / f.relative_to(folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            if f.suffix == ".json":
                shutil.copyfile(f, target)
            else:
                target.symlink_to(f.resolve())
    cfg = json.loads((dst / "config_sentence_transformers.json").read_text(encoding="utf-8"))
    cfg["__version__"].update(sentence_transformers=sentence_transformers, transformers=transformers)
    (dst / "config_sentence_transformers.json").write_text(json.dumps(cfg, indent=2), encoding="utf-8")
    text = (dst / "config.json").read_text(encoding="utf-8")  # edited in place: key order kept
    text = re.sub(r'"transformers_version": "[^"]+"', f'"transformers_version": "{transformers}"', text)
    (dst / "config.json").write_text(text, encoding="utf-8")
    return dst
