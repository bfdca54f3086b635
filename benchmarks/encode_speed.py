"""Cold-encode speed of the offline default model against the fp32 bound of the machine.

Usage: python benchmarks/encode_speed.py --data-dir ../shared/datasets [--sample 1500] [--rounds 3]
       python benchmarks/encode_speed.py --data-dir ../shared/datasets --map-check de,en
Writes benchmarks/results/encode_speed_xquad-r.{json,md} (or encode_map_check_xquad-r.{json,md}),
with the command that produced them.

**The bound.** Nearly all of an encoder's arithmetic is in its linear layers: a token costs
2 x (weights in linear layers) FLOPs there (one multiply and one add per weight), so N tokens need
at least 2 * P_linear * N FLOPs. Divided by the machine's fp32 peak (cores x clock x FLOPs per cycle;
AVX2 with two 256-bit FMA units: 2 x 8 lanes x 2 = 32 fp32 FLOPs per cycle) this is the shortest
possible encode time. Attention scores, softmax, GELU, layer norms, embeddings and tokenisation are
left out, so the bound is optimistic and 100 % is out of reach; padded tokens count as waste.

**What is compared**, interleaved in one process (rounds in shuffled order) because the 2 cores are
shared with other work:

- ``today``: what the dense retriever did before it batched by tokens (``EmbeddingStore.ensure`` +
  ``SentenceTransformerEncoder`` until 2026-11-28): texts sorted by characters, longest first, in
  shards of 2,048, each shard handed to ``SentenceTransformer.encode(batch_size=64)`` (which sorts by
  characters again). The store now orders texts by the encoder's token counts
  (``SentenceTransformerEncoder.lengths``) before cutting shards and batches, which is ``tokens-b64``
  over the whole task (the task padding of that column).
- ``tokens-bN``: :func:`hybrid_plugin.models.encode.encode_texts`: batches of N sorted by token
  count.
- ``tokens-b64-1thread``: the same with ``torch.set_num_threads(1)``.
- ``tokens-b64-2workers``: the same batches two at a time, each on one torch thread
  (:func:`hybrid_plugin.models.encode.encode_on_threads`, the dense retriever's CPU path).
- ``tokens-b64-eager``: the model loaded with the eager attention instead of SDPA (the default).
- ``int8-b64``: ``torch.ao.quantization.quantize_dynamic`` int8 linear layers (not exact; listed
  for its speed and its embedding error only).

``--profile`` encodes the sample once more (token batches of 64) under ``torch.profiler`` and splits the
time by operator: how fast the linear layers' GEMMs (``aten::addmm``) ran, what share of the time
the work outside the bound (attention, GELU, bias copies, norms) takes, and so what the machine
allows at best: the floor = the linear FLOPs at the best GEMM rate measured on these cores plus the
time of the attention kernel, as a multiple of the bound.

``--map-check LANGS`` encodes the task restricted to LANGS both ways (``today`` vs
``encode_texts`` per shard) and compares every setting's exact mAP.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from hybrid_plugin.atomic import write_text
from hybrid_plugin.data.build import build_pool
from hybrid_plugin.data.files import resolve_files
from hybrid_plugin.data.pool import unique_texts
from hybrid_plugin.data.spec import get_spec, select_languages
from hybrid_plugin.evaluation.evaluator import EvalConfig, evaluate
from hybrid_plugin.models.encode import encode_on_threads, encode_texts, length_batches, token_lengths
from hybrid_plugin.models.ref import ModelRef, resolve_model
from hybrid_plugin.provenance import portable_command
from hybrid_plugin.scoring.dense import Role, SentenceTransformerEncoder

SHARD = 2048  # EmbeddingStore.ensure's shard size
FLOPS_PER_CYCLE = 32  # AVX2, 2 FMA units x 8 fp32 lanes x 2 FLOPs

Encoder = Callable[[Sequence[str], str], np.ndarray]


def today(model, texts: Sequence[str], prompt: str, batch_size: int = 64) -> np.ndarray:
    """The current path: char-sorted shards of 2,048, each through ``SentenceTransformer.encode``."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
    out = np.empty((len(texts), model.get_embedding_dimension()), dtype=np.float32)
    for start in range(0, len(order), SHARD):
        rows = order[start : start + SHARD]
        out[rows] = model.encode(
            [texts[i] for i in rows],
            prompt=prompt or None,
            batch_size=batch_size,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
    return out


def on_threads(model, texts: Sequence[str], prompt: str, batch_size: int = 64) -> np.ndarray:
    """``encode_texts``'s batches, two at a time on one torch thread each (the dense retriever's CPU path)."""
    rows_of = length_batches(token_lengths(model, texts, prompt), batch_size)

    def encode(rows: np.ndarray) -> np.ndarray:
        batch = [texts[i] for i in rows]
        return model.encode(
            batch, prompt=prompt or None, batch_size=len(rows), convert_to_numpy=True, show_progress_bar=False
        )

    out = np.empty((len(texts), model.get_embedding_dimension()), dtype=np.float32)
    for rows, emb in zip(rows_of, encode_on_threads(encode, rows_of)):
        out[rows] = emb
    return out


def padded_tokens_today(lengths: np.ndarray, texts: Sequence[str], batch_size: int = 64) -> int:
    """Tokens the model processes on the current path (each batch padded to its longest text)."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
    total = 0
    for start in range(0, len(order), SHARD):
        shard = order[start : start + SHARD]
        inner = np.argsort([-len(texts[i]) for i in shard])  # as SentenceTransformer.encode sorts
        rows = np.asarray(shard)[inner]
        for b in range(0, len(rows), batch_size):
            batch = lengths[rows[b : b + batch_size]]
            total += int(batch.max()) * len(batch)
    return total


def padded_tokens_sorted(lengths: np.ndarray, batch_size: int) -> int:
    return sum(int(lengths[rows].max()) * len(rows) for rows in length_batches(lengths, batch_size))


def padded_tokens_sharded(lengths: np.ndarray, texts: Sequence[str], batch_size: int) -> int:
    """Tokens processed when ``encode_texts`` gets the store's shards (char-sorted, 2,048 each)."""
    order = np.asarray(sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True))
    return sum(
        padded_tokens_sorted(lengths[order[start : start + SHARD]], batch_size)
        for start in range(0, len(order), SHARD)
    )


def linear_params(model) -> int:
    """Weights in the encoder's linear layers (the pooler excluded: E5 does not use it)."""
    return sum(
        m.weight.numel()
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and "pooler" not in name
    )


def cpu_ghz() -> float:
    """The clock /proc/cpuinfo reports (a VM shows the nominal clock; boost is invisible)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("cpu MHz"):
                return float(line.split(":")[1]) / 1000
    except OSError:
        pass
    return float("nan")


def gemm_gflops(repeats: int = 10) -> float:
    """Best achieved fp32 GEMM rate on an FFN-shaped product (a reference for the peak)."""
    a, w = torch.randn(2048, 384), torch.randn(1536, 384)
    torch.nn.functional.linear(a, w)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        torch.nn.functional.linear(a, w)
        best = min(best, time.perf_counter() - t)
    return 2 * 2048 * 384 * 1536 / best / 1e9


def sample_texts(q: list[str], c: list[str], n: int, seed: int) -> tuple[list[str], list[str]]:
    """n/2 queries and n/2 candidates drawn without replacement (a fixed sample for a seed)."""
    rng = np.random.default_rng(seed)
    qi = np.sort(rng.choice(len(q), size=min(n // 2, len(q)), replace=False))
    ci = np.sort(rng.choice(len(c), size=min(n - n // 2, len(c)), replace=False))
    return [q[i] for i in qi], [c[i] for i in ci]


def load_task(task: str, data_dir: str, languages: str | None):
    spec = get_spec(task)
    langs = select_languages(spec, languages)
    return build_pool(spec, resolve_files(spec, langs, data_dir).paths)


def load_sample(args: argparse.Namespace):
    """The default model, the task's distinct texts, the fixed sample and its token counts."""
    pool = load_task(args.task, args.data_dir, None)
    ref = resolve_model(args.model)
    model = ref.load()
    q_all, _ = unique_texts(pool.query_text)
    c_all, _ = unique_texts(pool.cand_text)
    qs, cs = sample_texts(q_all, c_all, args.sample, args.seed)
    jobs = [(qs, ref.query_prompt), (cs, ref.document_prompt)]
    lengths = [token_lengths(model, t, p) for t, p in jobs]
    tokens = int(sum(x.sum() for x in lengths))
    return ref, model, (q_all, c_all), (qs, cs), jobs, lengths, tokens


def speed(args: argparse.Namespace) -> dict:
    """Interleaved timing of every variant on a fixed sample; embedding differences vs ``today``."""
    from sentence_transformers import SentenceTransformer

    ref, model, (q_all, c_all), (qs, cs), jobs, lengths, tokens = load_sample(args)
    full_jobs = [(q_all, ref.query_prompt), (c_all, ref.document_prompt)]
    full_lengths = [token_lengths(model, t, p) for t, p in full_jobs]
    full_tokens = int(sum(x.sum() for x in full_lengths))

    def full_padded(batch_size: int | None) -> int:
        """Padded tokens of the whole task: today's path (``None``) or encode_texts per store shard."""
        if batch_size is None:
            return sum(padded_tokens_today(n, t) for n, (t, _) in zip(full_lengths, full_jobs))
        return sum(padded_tokens_sharded(n, t, batch_size) for n, (t, _) in zip(full_lengths, full_jobs))

    wanted = set(args.variants or ["tokens-b64-eager", "int8-b64"])
    eager = int8 = None
    if "tokens-b64-eager" in wanted:
        eager = SentenceTransformer(
            str(ref.path), device="cpu", model_kwargs={"attn_implementation": "eager"}
        )
    if "int8-b64" in wanted:
        int8 = torch.ao.quantization.quantize_dynamic(
            copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8
        )

    def one_thread(texts: Sequence[str], prompt: str) -> np.ndarray:
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return encode_texts(model, texts, prompt, 64)
        finally:
            torch.set_num_threads(before)

    # name -> (encode function, padded tokens of the sample, padded tokens of the whole task)
    variants: dict[str, tuple[Encoder, int, int]] = {
        "today": (
            lambda t, p: today(model, t, p),
            sum(padded_tokens_today(n, t) for n, (t, _) in zip(lengths, jobs)),
            full_padded(None),
        ),
    }
    for bs in args.batch_sizes:
        variants[f"tokens-b{bs}"] = (
            lambda t, p, bs=bs: encode_texts(model, t, p, bs),
            sum(padded_tokens_sorted(n, bs) for n in lengths),
            full_padded(bs),
        )
    pad64 = (sum(padded_tokens_sorted(n, 64) for n in lengths), full_padded(64))
    variants["tokens-b64-1thread"] = (one_thread, *pad64)
    variants["tokens-b64-2workers"] = (lambda t, p: on_threads(model, t, p, 64), *pad64)
    variants["tokens-b64-eager"] = (lambda t, p: encode_texts(eager, t, p, 64), *pad64)
    variants["int8-b64"] = (lambda t, p: encode_texts(int8, t, p, 64), *pad64)
    if args.variants:
        unknown = set(args.variants) - set(variants)
        if unknown or "today" not in args.variants:
            raise SystemExit(
                f"--variants: unknown {sorted(unknown)} (and 'today' is required); known: {list(variants)}"
            )
        variants = {k: v for k, v in variants.items() if k in args.variants}

    for fn, _, _ in variants.values():  # warm-up: first calls allocate and load kernels
        fn(qs[:8], ref.query_prompt)

    wall: dict[str, list[float]] = {k: [] for k in variants}
    cpu: dict[str, list[float]] = {k: [] for k in variants}
    embs: dict[str, list[np.ndarray]] = {}
    loads = [os.getloadavg()]
    gemm = [gemm_gflops()]
    rng = random.Random(args.seed)
    for r in range(args.rounds):
        names = list(variants)
        rng.shuffle(names)
        for name in names:
            fn = variants[name][0]
            t, c0 = time.perf_counter(), time.process_time()
            out = [fn(texts, prompt) for texts, prompt in jobs]
            wall[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c0)
            if name not in embs:
                embs[name] = out
            elif name == "today":
                embs["today-again"] = out
            print(f"round {r + 1} {name:20s} {wall[name][-1]:7.2f} s", file=sys.stderr, flush=True)
        loads.append(os.getloadavg())
        gemm.append(gemm_gflops())

    p_lin = linear_params(model)
    ghz, cores = cpu_ghz(), torch.get_num_threads()
    peak = cores * ghz * 1e9 * FLOPS_PER_CYCLE
    flop = 2 * p_lin * tokens
    base = embs["today"]
    rows = {}
    full_bound = 2 * p_lin * full_tokens / peak
    for name, (_, padded, padded_full) in variants.items():
        med = statistics.median(wall[name])
        best = min(wall[name])
        diff = max(float(np.abs(a - b).max()) for a, b in zip(embs[name], base))
        same = sum(int((a == b).all(axis=1).sum()) for a, b in zip(embs[name], base))
        rows[name] = {
            "wall_s": [round(x, 2) for x in wall[name]],
            "cpu_s": [round(x, 2) for x in cpu[name]],
            "median_s": round(med, 2),
            "tokens_per_s_median": round(tokens / med),
            "tokens_per_s_best": round(tokens / best),
            "pct_of_bound_median": round(100 * flop / med / peak, 1),
            "pct_of_bound_best": round(100 * flop / best / peak, 1),
            "padded_tokens": padded,
            "padding_overhead": round(padded / tokens - 1, 4),
            "max_abs_diff_vs_today": diff,
            # the same batches one at a time (only where both ran): 0 means bit-identical
            "max_abs_diff_vs_tokens_b64": (
                max(float(np.abs(a - b).max()) for a, b in zip(embs[name], embs["tokens-b64"]))
                if "tokens-b64" in embs
                else None
            ),
            "texts_bit_identical_to_today": same,
            "tokens_per_cpu_s_best": round(tokens / min(cpu[name])),
            "full_task_padded_tokens": padded_full,
            "full_task_padding_overhead": round(padded_full / full_tokens - 1, 4),
            # the sample's throughput per processed (padded) token, applied to the whole task's batches
            "full_task_projection_s": round(padded_full / (padded / best)),
            "full_task_projection_x_bound": round(padded_full / (padded / best) / full_bound, 2),
        }
    again = None
    if "today-again" in embs:
        again = max(float(np.abs(a - b).max()) for a, b in zip(embs["today-again"], base))
    return {
        "sample": {"queries": len(qs), "candidates": len(cs), "tokens": tokens, "seed": args.seed},
        "full_task_tokens": full_tokens,
        "bound": {
            "linear_params": p_lin,
            "flop_per_token": 2 * p_lin,
            "cores": cores,
            "ghz": ghz,
            "flop_per_cycle": FLOPS_PER_CYCLE,
            "peak_gflops": round(peak / 1e9, 1),
            "sample_bound_s": round(flop / peak, 2),
            "full_task_bound_s": round(full_bound),
            "assumptions": "fp32, linear layers only (attention scores, softmax, GELU, norms, "
            "embedding lookup and tokenisation excluded), peak = cores x reported clock x 32 "
            "FLOP/cycle (AVX2, 2 FMA units); padding counts as waste",
        },
        "gemm_gflops_best_per_round": [round(x, 1) for x in gemm],
        "load_average_per_round": [[round(x, 2) for x in la] for la in loads],
        "today_repeat_max_abs_diff": again,
        "variants": rows,
    }


def profile(args: argparse.Namespace) -> dict:
    """Per-operator time of a token-batched encode of the sample; the floor the profile implies."""
    ref, model, _, (qs, cs), jobs, lengths, tokens = load_sample(args)
    padded = sum(padded_tokens_sorted(n, 64) for n in lengths)
    p_lin = linear_params(model)
    peak = torch.get_num_threads() * cpu_ghz() * 1e9 * FLOPS_PER_CYCLE
    encode_texts(model, qs[:8], ref.query_prompt, 64)  # warm-up
    best: dict | None = None
    gemm = [gemm_gflops()]
    for _ in range(args.rounds):
        with (
            torch.inference_mode(),
            torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof,
        ):
            t = time.perf_counter()
            for texts, prompt in jobs:
                encode_texts(model, texts, prompt, 64)
            wall = time.perf_counter() - t
        gemm.append(gemm_gflops())
        ops = {e.key: e.self_cpu_time_total / 1e6 for e in prof.key_averages()}
        if best is None or wall < best["wall_s"]:
            best = {"wall_s": wall, "ops": ops}
    assert best is not None
    ops, wall = best["ops"], best["wall_s"]
    total = sum(ops.values())
    top = dict(sorted(ops.items(), key=lambda kv: -kv[1])[:10])
    attention = sum(v for k, v in ops.items() if "scaled_dot_product" in k)
    # attention work grows with the square of the (padded) length: its share on the real tokens
    squares = sum(int((n**2).sum()) for n in lengths)
    padded_squares = sum(
        len(rows) * int(n[rows].max()) ** 2 for n in lengths for rows in length_batches(n, 64)
    )
    linear_flop = 2 * p_lin * padded
    best_gemm = max(gemm) * 1e9
    floor_s = 2 * p_lin * tokens / best_gemm + attention * squares / padded_squares
    bound_s = 2 * p_lin * tokens / peak
    return {
        "sample": {"queries": len(qs), "candidates": len(cs), "tokens": tokens, "padded_tokens": padded},
        "peak_gflops": round(peak / 1e9, 1),
        "gemm_gflops_per_round": [round(x, 1) for x in gemm],
        "wall_s": round(wall, 2),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "bound_s": round(bound_s, 2),
        "wall_x_bound": round(wall / bound_s, 2),
        "profiled_op_seconds": round(total, 2),
        "share_of_op_time": {k: round(v / total, 4) for k, v in top.items()},
        "addmm_gflops": round(linear_flop / ops.get("aten::addmm", float("nan")) / 1e9, 1),
        "floor_s": round(floor_s, 2),
        "floor_x_bound": round(floor_s / bound_s, 2),
        "floor": "linear FLOPs on the real tokens at the best GEMM rate measured in this run, plus the "
        "attention kernel's measured time scaled to the real tokens (by the sum of squared lengths); "
        "padding, GELU, bias copies, norms and the rest counted as free",
    }


def profile_markdown(rec: dict) -> list[str]:
    p = rec["profile"]
    shares = ", ".join(f"`{k}` {v:.1%}" for k, v in p["share_of_op_time"].items() if v >= 0.005)
    return [
        f"# Where a cold encode's time goes — {rec['task']}, default model",
        "",
        f"Command: `{rec['command']}` ({rec['date']}; {rec['environment']['processor']}, "
        f"{rec['environment']['torch_threads']} torch threads, no GPU).",
        "",
        f"Sample: {p['sample']['queries']} queries + {p['sample']['candidates']} candidates, "
        f"{p['sample']['tokens']:,} tokens ({p['sample']['padded_tokens']:,} with padding), "
        "token batches of 64, "
        f"best of the profiled rounds: **{p['wall_s']} s = {p['wall_x_bound']}× the fp32 bound** "
        f"({p['bound_s']} s at {p['peak_gflops']} GFLOP/s; see `encode_speed_*.md` for the bound).",
        "",
        f"- Share of operator time: {shares}.",
        f"- The linear layers' GEMMs (`aten::addmm`) ran at **{p['addmm_gflops']} GFLOP/s**; the best "
        f"fp32 GEMM measured on these cores in the same run (2048×384 · 384×1536): "
        f"{', '.join(str(x) for x in p['gemm_gflops_per_round'])} GFLOP/s, against a nominal peak of "
        f"{p['peak_gflops']}.",
        f"- At the rate the GEMMs reached inside the model, the linear layers alone on the real tokens "
        f"take **{p['peak_gflops'] / p['addmm_gflops']:.2f}× the bound**, before any other operator.",
        f"- **Floor: {p['floor_s']} s = {p['floor_x_bound']}× the bound** ({p['floor']}).",
        "",
        f"Load: {rec.get('note') or 'not recorded'}"
        + (f"; load average {p['load_average']}." if p.get("load_average") else "."),
    ]


@dataclass
class ShardedEncoder(SentenceTransformerEncoder):
    """The default model's encoder with the encode path swapped (the store's 2,048-text shards kept)."""

    ref: ModelRef
    path: Callable[..., np.ndarray] = today
    batch_size: int = 64

    def encode(self, texts: list[str], role: Role, batch_size: int) -> np.ndarray:
        return self.path(self.ref.load(), texts, self.prompt(role), self.batch_size)


def sharded_encode_texts(model, texts: Sequence[str], prompt: str, batch_size: int) -> np.ndarray:
    """``encode_texts`` on the shards ``EmbeddingStore.ensure`` makes (char-sorted, 2,048 each)."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
    out = np.empty((len(texts), model.get_embedding_dimension()), dtype=np.float32)
    for start in range(0, len(order), SHARD):
        rows = order[start : start + SHARD]
        out[rows] = encode_texts(model, [texts[i] for i in rows], prompt, batch_size)
    return out


def map_check(args: argparse.Namespace) -> dict:
    """Every setting's exact mAP with ``today``'s embeddings vs ``encode_texts`` (per 2,048 shard)."""
    ref = resolve_model(args.model)
    cfg = EvalConfig(task=args.task, languages=args.map_check, data_dir=args.data_dir, use_cache=False)
    results, emb, seconds = {}, {}, {}
    for name, path in (("today", today), ("encode_texts", sharded_encode_texts)):
        encoder = ShardedEncoder(ref, path=path, batch_size=args.batch_size)
        captured: list[np.ndarray] = []
        original = encoder.encode

        def capture(texts, role, batch_size, original=original, captured=captured):
            out = original(texts, role, batch_size)
            captured.append(out)
            return out

        encoder.encode = capture  # type: ignore[method-assign]
        t0 = time.perf_counter()
        results[name] = evaluate(cfg, model=encoder)
        seconds[name] = round(time.perf_counter() - t0, 1)
        emb[name] = captured
    a, b = results["today"], results["encode_texts"]
    deltas = {k: abs(a.settings[k].map - b.settings[k].map) for k in a.settings}
    sa, sb = a.scores.model_dump(), b.scores.model_dump()
    score_deltas = {k: abs(sa[k] - sb[k]) for k in sa if sa[k] is not None}
    return {
        "languages": list(a.languages),
        "texts": a.counts["unique_texts"],
        "settings": len(deltas),
        "seconds": seconds,
        "max_abs_diff_embeddings": max(
            float(np.abs(x - y).max()) for x, y in zip(emb["today"], emb["encode_texts"])
        ),
        "max_abs_delta_map": max(deltas.values()),
        "per_setting_delta_map": {k: float(f"{v:.3g}") for k, v in deltas.items()},
        "score_deltas": {k: float(f"{v:.3g}") for k, v in score_deltas.items()},
        "scores_today": sa,
    }


def environment() -> dict:
    versions = {}
    for lib in ("torch", "transformers", "sentence-transformers", "tokenizers", "numpy"):
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            versions[lib] = None
    return {
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "processor": next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.processor(),
        )
        if Path("/proc/cpuinfo").is_file()
        else platform.processor(),
        "versions": versions,
    }


def speed_markdown(rec: dict) -> list[str]:
    b = rec["bound"]
    md = [
        f"# Cold-encode speed — {rec['task']}, default model",
        "",
        f"Command: `{rec['command']}` ({rec['date']}; {rec['environment']['processor']}, "
        f"{b['cores']} torch threads, no GPU).",
        "",
        f"Sample: {rec['sample']['queries']} queries + {rec['sample']['candidates']} candidates "
        f"(seed {rec['sample']['seed']}), {rec['sample']['tokens']:,} tokens with prompts and special "
        f"tokens; the whole task is {rec['full_task_tokens']:,} tokens.",
        "",
        f"**Bound**: {b['linear_params']:,} weights in linear layers → {b['flop_per_token'] / 1e6:.1f} "
        f"MFLOP per token; peak {b['cores']} cores × {b['ghz']:.2f} GHz × {b['flop_per_cycle']} FLOP/cycle "
        f"= {b['peak_gflops']} GFLOP/s; so ≥ {b['sample_bound_s']} s for the sample and "
        f"≥ {b['full_task_bound_s']} s for the whole task. Assumptions: {b['assumptions']}. "
        f"Best fp32 GEMM measured per round (2048×384 · 384×1536): "
        f"{', '.join(str(x) for x in rec['gemm_gflops_best_per_round'])} GFLOP/s.",
        "",
        f"**Load**: {rec.get('note') or 'the 2 cores may be shared'}; load average per round "
        f"(1/5/15 min): {'; '.join(', '.join(str(x) for x in la) for la in rec['load_average_per_round'])}. "
        "Variants ran interleaved in shuffled order each round, so they saw the same contention; the "
        "best round is the least disturbed one.",
        "",
        "Columns: wall seconds per round and process CPU seconds (both threads; with 2 threads it includes "
        "the time a thread waits for the other); tokens/s and % of the bound on the sample, best round; "
        "padding = processed tokens over real ones, on the sample and on the whole task (batches of the "
        "store's 2,048-text shards); **whole task** = the whole task's processed tokens at the sample's "
        "best processed-token rate, in minutes and as a multiple of the bound.",
        "",
        "| variant | wall s | CPU s | tok/s | % of bound | padding (sample / task) | "
        "whole task | max abs Δ vs today | texts bit-identical |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    n = rec["sample"]["queries"] + rec["sample"]["candidates"]
    for name, r in rec["variants"].items():
        md.append(
            f"| `{name}` | {', '.join(f'{x:.0f}' for x in r['wall_s'])} | "
            f"{', '.join(f'{x:.0f}' for x in r['cpu_s'])} | {r['tokens_per_s_best']:,} | "
            f"{r['pct_of_bound_best']} % | +{r['padding_overhead']:.0%} / "
            f"+{r['full_task_padding_overhead']:.0%} | "
            f"{r['full_task_projection_s'] / 60:.1f} min ({r['full_task_projection_x_bound']}×) | "
            f"{r['max_abs_diff_vs_today']:.2g} | {r['texts_bit_identical_to_today']}/{n} |"
        )
    same_batches = {k: r["max_abs_diff_vs_tokens_b64"] for k, r in rec["variants"].items()}
    if same_batches.get("tokens-b64-2workers") is not None:
        md += [
            "",
            "`tokens-b64-2workers` vs `tokens-b64` (the same batches, two at a time): max abs difference "
            f"{same_batches['tokens-b64-2workers']:.2g}.",
        ]
    if rec["today_repeat_max_abs_diff"] is not None:
        md += [
            "",
            f"`today` twice in one process: max abs difference {rec['today_repeat_max_abs_diff']:.2g}.",
        ]
    return md


def map_markdown(rec: dict) -> list[str]:
    m = rec["map_check"]
    return [
        f"# Exact-mAP check of `encode_texts` — {rec['task']} {','.join(m['languages'])}, default model",
        "",
        f"Command: `{rec['command']}` ({rec['date']}).",
        "",
        f"{m['texts']:,} unique texts encoded twice: as the dense retriever does today (char-sorted "
        "shards, `SentenceTransformer.encode(batch_size=64)`) and with `encode_texts` per shard "
        f"(token-sorted batches). Seconds: {m['seconds']} (a shared machine: not a speed comparison, "
        "see `encode_speed_*.md`).",
        "",
        f"- max abs difference of any embedding value: {m['max_abs_diff_embeddings']:.3g}",
        f"- max |Δ mAP| over the {m['settings']} settings: {m['max_abs_delta_map']:.3g}",
        "- |Δ| of the headline scores: " + ", ".join(f"{k} {v:.3g}" for k, v in m["score_deltas"].items()),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="xquad-r")
    ap.add_argument("--data-dir", default=os.environ.get("HYBRID_PLUGIN_DATA", "../shared/datasets"))
    ap.add_argument("--model", default=None, help="default: the offline default model")
    ap.add_argument("--sample", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch-sizes", type=lambda s: [int(x) for x in s.split(",")], default=[16, 32, 64, 128])
    ap.add_argument("--batch-size", type=int, default=64, help="--map-check: batch size of both paths")
    ap.add_argument("--map-check", metavar="LANGS", default=None)
    ap.add_argument("--profile", action="store_true", help="per-operator time and the floor it implies")
    ap.add_argument(
        "--variants", type=lambda s: s.split(","), default=None, help="comma-separated subset (default: all)"
    )
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    ap.add_argument("--note", default="", help="what else the machine was running (written in the record)")
    ap.add_argument("--tag", default="", help="suffix of the output files (encode_speed_<task>__<tag>)")
    args = ap.parse_args()

    rec = {
        "command": "python benchmarks/encode_speed.py " + portable_command(sys.argv[1:]),
        "task": args.task,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "environment": environment(),
        "note": args.note,
    }
    if args.map_check:
        rec["map_check"] = map_check(args)
        stem, md = f"encode_map_check_{args.task}", map_markdown(rec)
    elif args.profile:
        rec["profile"] = profile(args)
        stem, md = f"encode_profile_{args.task}", profile_markdown(rec)
    else:
        rec.update(speed(args))
        stem, md = f"encode_speed_{args.task}", speed_markdown(rec)
    if args.tag:
        stem += f"__{args.tag}"
    out = Path(args.out)
    write_text(out / f"{stem}.json", json.dumps(rec, indent=1) + "\n")
    write_text(out / f"{stem}.md", "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
