"""Haystack: XQuAD-R's queries against its own candidates plus unjudged multilingual distractors.

Usage (from the repository root; WORK is a folder outside the repository for the generated data)::

    python benchmarks/haystack.py build    --work WORK [--sizes 1,2,5,10,all] [--seed 0]
    python benchmarks/haystack.py encode   --work WORK            # fill the embedding cache (largest pool)
    python benchmarks/haystack.py evaluate --work WORK --sizes 1,2,5   # hybrid-plugin evaluate per size
    python benchmarks/haystack.py check    --work WORK --sizes 1,2,5   # false-negative check per size
    python benchmarks/haystack.py report   --work WORK [--notes FILE]  # results/haystack_xquad-r.*

``build`` writes one task folder per pool size under WORK/tasks/: XQuAD-R exactly as ``hybrid-plugin
export task`` writes it (same pool, same numbers) plus distractor candidates without qrels. Size m
means m × XQuAD-R's 13,014 candidates in all (1 = XQuAD-R alone); ``all`` is every distractor.
Distractors are every sentence of MLQA-R's seven files, every TyDi QA GoldP passage (nine languages)
and every sentence of the MLQA test contexts under ``train/mlqa-test`` (split with the project's
training segmenter, pysbd), exact duplicates of an XQuAD-R candidate or of an earlier distractor
dropped. One seeded permutation orders them, and size m takes its first (m − 1) × 13,014, so every
pool contains the smaller ones. Languages without XQuAD-R queries (TyDi's bn fi id ko sw te) are
candidate-only languages of the folder: they have no setting of their own and enter only the
multilingual pool.

``evaluate`` runs ``hybrid-plugin evaluate --task FOLDER`` per size under ``/usr/bin/time -v`` and
records wall time and peak memory. ``check`` looks for false negatives: a distractor whose embedding
is as close to one of a question's relevant candidates as parallel translations are (cosine ≥ the
5th percentile of XQuAD-R's parallel answer pairs) is *flagged* for that question group; it counts
the flagged distractors ranked above each pool query's first relevant candidate and recomputes
multilingual and monolingual mAP with the flagged distractors removed (the mAP they can cost at most,
if every flagged one really answered the question). It also prints examples to read by hand.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from hybrid_plugin.atomic import write_text
from hybrid_plugin.data.build import load_pool
from hybrid_plugin.data.jsonfile import squad_paragraphs
from hybrid_plugin.data.taskdir import write_folder
from hybrid_plugin.provenance import display_path, portable_command

TASK = "xquad-r"
SOURCES = ("mlqa-r", "tydi-goldp", "mlqa-test")
MLQA_TEST = Path("train") / "mlqa-test"
MLQA_FILE = re.compile(r"^test-context-(?P<c>[a-z]{2})-question-(?P<q>[a-z]{2})\.json$")
RESULTS = Path(__file__).parent / "results"
NAME = "haystack_xquad-r"
LICENSES = "CC BY-SA 4.0 (XQuAD-R), CC BY-NC 4.0 (MLQA-R), Apache-2.0 (TyDi QA), CC BY-SA 3.0 (MLQA)"
FN_HEADER = (
    "| pool | centred-cosine threshold | flagged (group, distractor) pairs: cosine / answer / either | "
    "queries with a distractor above their first relevant | of them, with a flagged one above: cosine / "
    "answer / either | multi mAP (recomputed → without flagged) | mono mAP (recomputed → without flagged) |"
)


def data_dir(args) -> Path:
    return Path(args.data_dir or os.environ.get("HYBRID_PLUGIN_DATA") or "../shared/datasets")


def label(size: str) -> str:
    return size if size == "all" else f"{int(size)}x"


def folder_name(size: str) -> str:
    return f"xquad-r-haystack-{label(size)}"


# --- build ---------------------------------------------------------------------------------------------


def mlqa_test_sentences(root: Path) -> list[tuple[str, str, str]]:
    """(id, language, sentence) of every distinct context of the MLQA test files, in file order."""
    from hybrid_plugin.training.data import default_segmenter

    segment = default_segmenter()
    contexts: dict[str, str] = {}  # context -> language, first seen
    for path in sorted(root.glob("*.json")):
        match = MLQA_FILE.match(path.name)
        if match is None:
            continue
        for _, _, _, _, context in squad_paragraphs(path):
            contexts.setdefault(context, match["c"])
    out, count = [], Counter()
    for context, lang in contexts.items():
        for a, b in segment(context, lang):
            text = context[a:b].strip()
            if text:
                out.append((f"hs-mlqatest-{lang}-{count[lang]:06d}", lang, text))
                count[lang] += 1
    return out


def distractor_candidates(root: Path) -> dict[str, list[tuple[str, str, str]]]:
    """(id, language, text) of every candidate of each distractor source."""
    out = {}
    for task in SOURCES[:2]:
        pool = load_pool(task, data_dir=root).pool
        tag = task.replace("-", "").replace("goldp", "")
        out[task] = [
            (f"hs-{tag}-{cid}", pool.languages[li], text)
            for cid, li, text in zip(pool.cand_ids, pool.cand_lang, pool.cand_text)
        ]
    out["mlqa-test"] = mlqa_test_sentences(root / MLQA_TEST)
    return out


def build(args) -> None:
    root, work = data_dir(args), Path(args.work)
    loaded = load_pool(TASK, data_dir=root)
    pool, spec = loaded.pool, loaded.spec
    base = len(pool.cand_ids)
    t0 = time.perf_counter()
    sources = distractor_candidates(root)
    read_s = time.perf_counter() - t0
    seen = set(pool.cand_text)
    kept: list[tuple[str, str, str, str]] = []  # (id, language, text, source)
    dropped = {s: {"duplicate_of_xquad_r": 0, "duplicate_of_distractor": 0} for s in SOURCES}
    own = set()
    for source, cands in sources.items():
        for cid, lang, text in cands:
            if text in seen:
                dropped[source]["duplicate_of_distractor" if text in own else "duplicate_of_xquad_r"] += 1
                continue
            seen.add(text)
            own.add(text)
            kept.append((cid, lang, text, source))
    order = np.random.default_rng(args.seed).permutation(len(kept))
    kept = [kept[i] for i in order]
    extra = sorted({lang for _, lang, _, _ in kept} - set(pool.languages))
    sizes, manifest_sizes = [s.strip() for s in args.sizes.split(",")], {}
    for size in sizes:
        n = len(kept) if size == "all" else (int(size) - 1) * base
        if n > len(kept):
            print(f"size {label(size)}: needs {n:,} distractors, only {len(kept):,} exist; skipped")
            manifest_sizes[label(size)] = {"skipped": f"needs {n} distractors, {len(kept)} exist"}
            continue
        chosen = kept[:n]
        langs = pool.languages + tuple(x for x in extra if any(c[1] == x for c in chosen))
        index = {x: i for i, x in enumerate(langs)}
        grown = dataclasses.replace(
            pool,
            languages=langs,
            cand_ids=pool.cand_ids + [c[0] for c in chosen],
            cand_lang=np.concatenate([pool.cand_lang, [index[c[1]] for c in chosen]]).astype(np.int64),
            cand_sentence=pool.cand_text + [c[2] for c in chosen],
            cand_context=pool.cand_text + [c[2] for c in chosen],
        )
        name = folder_name(size)
        described = dataclasses.replace(
            spec,
            title=f"XQuAD-R haystack ({label(size)}: {len(grown.cand_ids):,} candidates)",
            description=(
                f"XQuAD-R's queries, qrels and candidates plus {n:,} unjudged distractor candidates "
                "(MLQA-R sentences, TyDi QA GoldP passages, MLQA test sentences; seed "
                f"{args.seed}), built by benchmarks/haystack.py"
            ),
            license=LICENSES,
        )
        out = work / "tasks" / name
        if out.exists():  # a folder this script wrote before
            shutil.rmtree(out)
        out.mkdir(parents=True)
        write_folder(grown, described, name, out, {"task": TASK, "seed": args.seed, "distractors": n})
        by = Counter((c[3], c[1]) for c in chosen)
        manifest_sizes[label(size)] = {
            "folder": f"tasks/{name}",
            "candidates": len(grown.cand_ids),
            "multiple": round(len(grown.cand_ids) / base, 3),
            "distractors": n,
            "languages": list(langs),
            "distractors_by_language": dict(sorted(Counter(c[1] for c in chosen).items())),
            "distractors_by_source": {s: sum(v for (src, _), v in by.items() if src == s) for s in SOURCES},
        }
        print(f"wrote {display_path(out)}: {len(grown.cand_ids):,} candidates ({label(size)})")
    manifest = {
        "command": portable_command(["python", *sys.argv]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seed": args.seed,
        "xquad_r_candidates": base,
        "xquad_r_queries": len(pool.query_ids),
        "read_s": round(read_s, 1),
        "source_candidates": {s: dict(sorted(Counter(c[1] for c in v).items())) for s, v in sources.items()},
        "dropped": dropped,
        "distractors_available": len(kept),
        "candidate_only_languages": extra,
        "sizes": manifest_sizes,
    }
    write_text(work / "tasks" / "manifest.json", json.dumps(manifest, indent=1) + "\n")
    print(json.dumps({k: v for k, v in manifest.items() if k != "sizes"}, indent=1))


def manifest(work: Path) -> dict:
    return json.loads((work / "tasks" / "manifest.json").read_text(encoding="utf-8"))


def built_sizes(work: Path, wanted: str | None) -> list[str]:
    sizes = [k for k, v in manifest(work)["sizes"].items() if "skipped" not in v]
    if wanted:
        keep = {label(s.strip()) for s in wanted.split(",")}
        sizes = [s for s in sizes if s in keep]
    return sizes


# --- encode --------------------------------------------------------------------------------------------


def retriever(args):
    from hybrid_plugin.evaluation.evaluator import EvalConfig
    from hybrid_plugin.scoring.resolve import resolve_retriever

    return resolve_retriever(args.model, cache_root=EvalConfig(task=TASK).embedding_cache())


def load_folder_pool(work: Path, size_label: str):
    from hybrid_plugin.data.taskdir import load_folder

    return load_folder(work / "tasks" / f"xquad-r-haystack-{size_label}").pool


def encode(args) -> None:
    """Every distractor text into the embedding cache, size by size (the 2× pool's first, then the
    rest of the 5× pool's, ...), so the smaller pools are ready first; then the rest of the largest
    pool (queries, XQuAD-R's candidates). The store writes shards of 2,048 texts: an interrupted run
    keeps what it finished."""
    work = Path(args.work)
    info = manifest(work)["sizes"]
    sizes = sorted(built_sizes(work, args.sizes), key=lambda s: info[s]["candidates"])
    corpus = work / "tasks" / f"xquad-r-haystack-{sizes[-1]}" / "corpus.jsonl"
    with open(corpus, encoding="utf-8") as fh:
        texts = [r["text"] for r in map(json.loads, fh) if r["_id"].startswith("hs-")]
    ret, done = retriever(args), 0
    for size in sizes:
        n = info[size]["distractors"]
        if n <= done:
            continue
        t0 = time.perf_counter()
        _, encoded = ret.embed(list(dict.fromkeys(texts[done:n])), "document", f"distractors {done}:{n}")
        print(f"{size}: distractors {done:,}–{n:,}: {encoded:,} encoded in {time.perf_counter() - t0:.0f} s")
        done = n
    emb = ret.embed_pool(load_folder_pool(work, sizes[-1]))
    print(f"{sizes[-1]}: {emb.unique_texts:,} unique texts, {emb.encoded:,} more encoded", flush=True)


# --- evaluate ------------------------------------------------------------------------------------------

TIME_FIELDS = {
    "Maximum resident set size (kbytes)": "max_rss_kb",
    "Elapsed (wall clock) time (h:mm:ss or m:ss)": "wall",
}


def evaluate(args) -> None:
    work = Path(args.work)
    for size in built_sizes(work, args.sizes):
        folder = work / "tasks" / f"xquad-r-haystack-{size}"
        out = work / "results" / size
        cmd = [sys.executable, "-m", "hybrid_plugin", "evaluate", "--task", str(folder), "--out", str(out)]
        if args.model:
            cmd += ["--model", args.model]
        print("$", portable_command(cmd[2:]), flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True)
        wall = time.perf_counter() - t0
        log = proc.stdout + proc.stderr
        write_text(out.with_suffix(".log"), log)
        measured = {
            key: line.split(": ", 1)[1].strip()
            for line in log.splitlines()
            for field, key in TIME_FIELDS.items()
            if line.strip().startswith(field)
        }
        record = {
            "size": size,
            "command": "hybrid-plugin " + portable_command(cmd[3:]),
            "returncode": proc.returncode,
            "wall_s": round(wall, 1),
            "max_rss_gb": round(int(measured.get("max_rss_kb", 0)) / 1024**2, 2),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        write_text(work / "results" / f"{size}.run.json", json.dumps(record, indent=1) + "\n")
        print(json.dumps(record), flush=True)
        if proc.returncode != 0:
            print(log[-3000:])


def results_file(work: Path, size: str) -> Path | None:
    found = sorted((work / "results" / size).glob("xquad-r-haystack-*__sentence.json"))
    return found[0] if found else None


# --- false-negative check ------------------------------------------------------------------------------


def normalized(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def average_precision(ranks: np.ndarray) -> float:
    """AP of a query from the 1-based ranks of all its relevant candidates."""
    r = np.sort(ranks)
    return float(np.mean(np.arange(1, len(r) + 1) / r))


def check(args) -> None:
    """False negatives: distractors as close to a question's answer as its translations are."""
    work = Path(args.work)
    ret = retriever(args)
    path = work / "results" / "fn_check.json"
    checks = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    for size in built_sizes(work, args.sizes):
        pool = load_folder_pool(work, size)
        emb = ret.embed_pool(pool)
        if emb.encoded:
            print(f"{size}: encoded {emb.encoded} texts that were not cached")
        q = normalized(emb.query[emb.query_row])
        c = normalized(emb.cand[emb.cand_row])
        is_distractor = np.array([cid.startswith("hs-") for cid in pool.cand_ids])
        t0 = time.perf_counter()
        checks[size] = check_size(pool, q, c, is_distractor, args, size == args.examples_size)
        checks[size]["command"] = portable_command(["python", *sys.argv])
        checks[size]["seconds"] = round(time.perf_counter() - t0, 1)
        write_text(path, json.dumps(checks, indent=1, ensure_ascii=False) + "\n")
        print(json.dumps({size: {k: v for k, v in checks[size].items() if k != "examples"}}), flush=True)


def group_relevant(pool) -> list[np.ndarray]:
    return [pool.group_cands[pool.group_ptr[g] : pool.group_ptr[g + 1]] for g in range(len(pool.group_names))]


def parallel_threshold(pool, c: np.ndarray, quantile: float) -> tuple[float, dict]:
    """The cosine that all but ``quantile`` of XQuAD-R's parallel answer pairs reach, and the
    distributions of parallel and of random XQuAD-R candidate pairs (how often a random pair passes)."""
    sims, unrelated = [], []
    rng = np.random.default_rng(0)
    xq = np.flatnonzero([not cid.startswith("hs-") for cid in pool.cand_ids])
    for rel in group_relevant(pool):
        block = c[rel] @ c[rel].T
        a, b = np.triu_indices(len(rel), 1)
        sims.append(block[a, b])
        other = rng.choice(xq, size=(len(rel), 20))
        unrelated.append(np.einsum("ij,ikj->ik", c[rel], c[other]).ravel())
    sims, unrelated = np.concatenate(sims), np.concatenate(unrelated)
    t = float(np.quantile(sims, quantile))
    stats = {
        "parallel_pairs": len(sims),
        "parallel_cosine_quantiles": {
            str(p): round(float(np.quantile(sims, p)), 4) for p in (0.01, 0.05, 0.25, 0.5)
        },
        "random_pairs": len(unrelated),
        "random_pair_cosine_quantiles": {
            str(p): round(float(np.quantile(unrelated, p)), 4) for p in (0.5, 0.95, 0.99, 0.999)
        },
        "random_pairs_above_threshold": float(np.mean(unrelated >= t)),
    }
    return t, stats


def centered(pool, c: np.ndarray) -> np.ndarray:
    """Language-mean centering (each language's mean candidate embedding subtracted), renormalised:
    the shared direction of all e5 embeddings and the language directions go, so parallel pairs stand
    out from unrelated ones far more than in raw cosine."""
    out = c.copy()
    for li in range(len(pool.languages)):
        sel = pool.cand_lang == li
        if sel.any():
            out[sel] -= c[sel].mean(axis=0)
    return normalized(out)


def xquad_answers(root: Path) -> dict[tuple[str, str], list[str]]:
    """Answer texts (lower case) of each XQuAD-R question id in each language."""
    out: dict[tuple[str, str], list[str]] = {}
    for path in sorted((root / TASK).glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        for article in data["data"]:
            for para in article["paragraphs"]:
                for qa in para["qas"]:
                    texts = {a["text"].strip().lower() for a in qa["answers"] if a["text"].strip()}
                    out[(qa["id"], path.stem)] = sorted(texts)
    return out


def flag_distractors(pool, c, rels, dist, answers, quantile) -> tuple[dict, dict, dict]:
    """Per question group, the distractors that may answer it: (1) ``cosine``: language-centred cosine
    to one of the group's relevant candidates at least that of all but ``quantile`` of the parallel
    answer pairs (translations, near-duplicates); (2) ``answer``: the distractor's text holds the
    question's answer text in the distractor's language (lower case; XQuAD-R languages only).
    Returns the sets per method as {group: array}, the best centred cosine per (group, distractor), and
    the calibration."""
    cc = centered(pool, c)
    t, stats = parallel_threshold(pool, cc, quantile)
    by_cos: dict[int, set] = {}
    best_sim: dict[tuple[int, int], float] = {}
    if len(dist):
        rel_all = np.concatenate(rels)
        owner = np.repeat(np.arange(len(rels)), [len(r) for r in rels])
        for s in range(0, len(dist), 8192):
            d = dist[s : s + 8192]
            sim = cc[rel_all] @ cc[d].T
            i, j = np.nonzero(sim >= t)
            for gi, dj, v in zip(owner[i].tolist(), d[j].tolist(), sim[i, j].tolist()):
                by_cos.setdefault(gi, set()).add(dj)
                best_sim[gi, dj] = max(best_sim.get((gi, dj), -1.0), v)
    by_ans: dict[int, set] = {}
    lower = {int(d): pool.cand_text[d].lower() for d in dist}
    for li, lang in enumerate(pool.languages):
        in_lang = [int(d) for d in dist if pool.cand_lang[d] == li]
        if not in_lang:
            continue
        for g, name in enumerate(pool.group_names):
            for a in answers.get((name, lang), ()):
                hits = [d for d in in_lang if a in lower[d]]
                if hits:
                    by_ans.setdefault(g, set()).update(hits)
    stats["threshold_cosine_centered"] = round(t, 4)
    methods = {"cosine": by_cos, "answer": by_ans}
    flagged = {
        m: {g: np.array(sorted(v), dtype=np.int64) for g, v in sets.items()} for m, sets in methods.items()
    }
    union = {
        g: np.union1d(flagged["cosine"].get(g, []), flagged["answer"].get(g, [])) for g in range(len(rels))
    }
    flagged["union"] = {g: v.astype(np.int64) for g, v in union.items() if len(v)}
    return flagged, best_sim, stats


def check_size(pool, q, c, is_distractor, args, want_examples) -> dict:
    dist = np.flatnonzero(is_distractor)
    rels = group_relevant(pool)
    answers = xquad_answers(data_dir(args))
    by_method, best_sim, stats = flag_distractors(pool, c, rels, dist, answers, args.quantile)
    empty = np.zeros(0, dtype=np.int64)
    flagged = [by_method["union"].get(g, empty) for g in range(len(rels))]
    flag_cos = [by_method["cosine"].get(g, empty) for g in range(len(rels))]
    flag_ans = [by_method["answer"].get(g, empty) for g in range(len(rels))]
    query_langs = sorted(set(pool.query_lang.tolist()))
    ap = {k: np.zeros(len(pool.query_ids)) for k in ("multi", "multi_clean", "mono", "mono_clean")}
    above_first = np.zeros(len(pool.query_ids), dtype=np.int64)  # distractors above first relevant
    flagged_above = np.zeros(len(pool.query_ids), dtype=np.int64)
    above_by = {m: np.zeros(len(pool.query_ids), dtype=np.int64) for m in ("cosine", "answer")}
    examples = []
    rng = np.random.default_rng(args.seed)
    for s in range(0, len(pool.query_ids), 512):
        qs = np.arange(s, min(s + 512, len(pool.query_ids)))
        scores = q[qs] @ c.T
        for row, qi in enumerate(qs):
            sc = scores[row]
            g = pool.query_group[qi]
            rel = rels[g]
            fl = flagged[g]
            lang = pool.query_lang[qi]
            for kind, mask_rel in (("multi", np.ones(len(rel), bool)), ("mono", pool.cand_lang[rel] == lang)):
                r = rel[mask_rel]
                if not len(r):
                    continue
                rs = sc[r]
                if kind == "multi":
                    ranks = 1 + (sc[None, :] > rs[:, None]).sum(axis=1)
                    fl_k = fl
                else:
                    same = pool.cand_lang == lang
                    ranks = 1 + ((sc[None, :] > rs[:, None]) & same[None, :]).sum(axis=1)
                    fl_k = fl[pool.cand_lang[fl] == lang]
                ap[kind][qi] = average_precision(ranks)
                removed = (sc[fl_k][None, :] > rs[:, None]).sum(axis=1) if len(fl_k) else 0
                ap[kind + "_clean"][qi] = average_precision(ranks - removed)
                if kind == "multi":
                    first = rs.max()
                    above = np.flatnonzero((sc > first) & is_distractor)
                    above_first[qi] = len(above)
                    flagged_above[qi] = int(np.isin(above, fl).sum())
                    above_by["cosine"][qi] = int(np.isin(above, flag_cos[g]).sum())
                    above_by["answer"][qi] = int(np.isin(above, flag_ans[g]).sum())
                    if want_examples and len(above):
                        hit = above[np.isin(above, fl)] if flagged_above[qi] else above
                        top = hit[np.argmax(sc[hit])]
                        examples.append((qi, int(top), int(r[np.argmax(rs)]), bool(flagged_above[qi])))

    def macro(values: np.ndarray, kind: str) -> float:
        per = []
        for x in query_langs:
            sel = pool.query_lang == x
            if kind == "mono":
                sel &= np.array([np.any(pool.cand_lang[rels[g]] == x) for g in pool.query_group])
            per.append(values[sel].mean())
        return round(float(np.mean(per)), 4)

    out = {"threshold_quantile": args.quantile, **stats, "pool_queries": len(pool.query_ids)}
    for method, sets in (("cosine", flag_cos), ("answer", flag_ans), ("union", flagged)):
        pairs = int(sum(len(f) for f in sets))
        out[f"{method}_flagged_pairs"] = pairs
        out[f"{method}_groups_with_flagged"] = int(sum(1 for f in sets if len(f)))
        out[f"{method}_distinct_flagged"] = len(set(np.concatenate(sets).tolist())) if pairs else 0
    out |= {
        "mean_distractors_above_first_relevant": round(float(above_first.mean()), 3),
        "queries_with_distractor_above_first_relevant": int((above_first > 0).sum()),
        "distractors_above_first_relevant": int(above_first.sum()),
        "cosine_flagged_above_first_relevant": int(above_by["cosine"].sum()),
        "answer_flagged_above_first_relevant": int(above_by["answer"].sum()),
        "union_flagged_above_first_relevant": int(flagged_above.sum()),
        "queries_with_cosine_flagged_above_first_relevant": int((above_by["cosine"] > 0).sum()),
        "queries_with_answer_flagged_above_first_relevant": int((above_by["answer"] > 0).sum()),
        "queries_with_flagged_above_first_relevant": int((flagged_above > 0).sum()),
        "multi_map_recomputed": macro(ap["multi"], "multi"),
        "multi_map_without_flagged": macro(ap["multi_clean"], "multi"),
        "mono_map_recomputed": macro(ap["mono"], "mono"),
        "mono_map_without_flagged": macro(ap["mono_clean"], "mono"),
    }
    if want_examples and examples:
        out["examples"] = {
            kind: [describe(pool, rels, best_sim, by_method, *examples[k][:3]) for k in picks]
            for kind, picks in sample_examples(examples, args.examples, rng).items()
        }
    return out


def sample_examples(examples: list, n: int, rng) -> dict[str, list[int]]:
    """``n`` flagged and ``n`` unflagged cases (the best distractor above a query's first relevant)."""
    out = {}
    for kind, flag in (("flagged", True), ("unflagged", False)):
        idx = [i for i, e in enumerate(examples) if e[3] == flag]
        out[kind] = sorted(rng.choice(idx, size=min(n, len(idx)), replace=False).tolist()) if idx else []
    return out


def describe(pool, rels, best_sim, by_method, qi: int, d: int, r: int) -> dict:
    """One case in words: the question (and its English version), the distractor, the best relevant."""
    lang = pool.languages
    g = int(pool.query_group[qi])
    en = lang.index("en")
    english_q = next(
        (pool.query_text[i] for i in np.flatnonzero(pool.query_group == g) if pool.query_lang[i] == en), ""
    )
    english_a = next((pool.cand_text[c] for c in rels[g] if pool.cand_lang[c] == en), "")
    return {
        "query": f"[{lang[pool.query_lang[qi]]}] {pool.query_text[qi]}",
        "query_en": english_q,
        "distractor": f"[{lang[pool.cand_lang[d]]}] {pool.cand_ids[d]}: {pool.cand_text[d][:500]}",
        "best_relevant": f"[{lang[pool.cand_lang[r]]}] {pool.cand_text[r][:400]}",
        "answer_en": english_a[:400],
        "centered_cosine_to_relevant": round(best_sim[g, d], 4) if (g, d) in best_sim else None,
        "flagged_by": [m for m in ("cosine", "answer") if d in by_method[m].get(g, ())],
    }


# --- report --------------------------------------------------------------------------------------------

COLUMNS = (
    ("mono_map", "mono mAP"),
    ("cross_map", "cross mAP"),
    ("multi_map", "multi mAP"),
    ("max_rank_distance", "rank dist"),
    ("same_language_top_share", "same-lang top"),
    ("lang_ndcg_10", "Lang-nDCG@10"),
    ("top1_correct_query_lang", "top1 ✓ same"),
    ("top1_correct_other_lang", "top1 ✓ other"),
    ("top1_wrong_query_lang", "top1 ✗ same"),
    ("top1_wrong_other_lang", "top1 ✗ other"),
    ("top10_query_lang_share", "top-10 same-lang"),
    ("mean_rank_correlation", "MRC"),
)


def report(args) -> None:
    """Collect the manifest, each size's results and the check into benchmarks/results/haystack_xquad-r.*
    (``--notes FILE``: a hand-written reading appended to the .md under its own heading)."""
    work = Path(args.work)
    man = manifest(work)
    rows = {}
    for size, info in man["sizes"].items():
        if "skipped" in info:
            continue
        row = {k: info[k] for k in ("candidates", "multiple", "distractors", "distractors_by_language")}
        run = work / "results" / f"{size}.run.json"
        if run.exists():
            row["run"] = json.loads(run.read_text(encoding="utf-8"))
        found = results_file(work, size)
        if found is not None:
            res = json.loads(found.read_text(encoding="utf-8"))
            row["scores"] = res["scores"]
            row["standard_measures"] = res["standard_measures"]["by_kind"]
            row["per_language"] = {
                x: {k: v for k, v in vals.items() if k in ("mono_map", "cross_map", "multi_map")}
                for x, vals in res["per_language"].items()
                if vals.get("mono_map") is not None
            }
            row["timings"] = res["timings"]
            row["counts"] = res["counts"]
        rows[size] = row
    fn_path = work / "results" / "fn_check.json"
    fn = json.loads(fn_path.read_text(encoding="utf-8")) if fn_path.exists() else {}
    for size in fn.values():  # the committed record names the cases; their data texts stay in WORK
        for cases in size.get("examples", {}).values():
            for case in cases:
                case["distractor"] = case["distractor"].split(":", 1)[0]
                del case["best_relevant"], case["answer_en"]
    record = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "build": {k: v for k, v in man.items() if k != "sizes"},
        "sizes": man["sizes"],
        "results": rows,
        "false_negative_check": fn,
        "report_command": portable_command(["python", *sys.argv]),
    }
    write_text(RESULTS / f"{NAME}.json", json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    lines = report_lines(man, rows, fn)
    if args.notes:
        lines += [
            "",
            "## Reading (written by hand)",
            "",
            Path(args.notes).read_text(encoding="utf-8").strip(),
        ]
    write_text(RESULTS / f"{NAME}.md", "\n".join(lines) + "\n")
    plot(rows, fn, RESULTS / f"{NAME}.png")
    print("\n".join(lines))


def plot(rows: dict, fn: dict, path: Path) -> None:
    """mAP per kind, and the pool's bias shares and normalised rank distance, against pool size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [(row["candidates"], row["scores"]) for row in rows.values() if "scores" in row]
    if not done:
        return
    x = [n for n, _ in done]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 3.8))
    for key, name in (("mono_map", "mono"), ("cross_map", "cross"), ("multi_map", "multi")):
        left.plot(x, [s[key] for _, s in done], marker="o", label=f"{name} mAP")
    clean = [(rows[k]["candidates"], v["multi_map_without_flagged"]) for k, v in fn.items() if k in rows]
    if clean:
        left.plot(*zip(*sorted(clean)), marker="x", linestyle=":", label="multi mAP without flagged")
    left.set_xlabel("candidates in the pool")
    left.set_ylabel("mAP")
    left.set_ylim(0, 1.15)
    left.legend(fontsize=8, loc="upper right", ncol=2)
    for key, name in (
        ("same_language_top_share", "same-lang top share"),
        ("top10_query_lang_share", "top-10 same-lang share"),
        ("top1_correct_query_lang", "top-1 relevant, same lang"),
        ("top1_wrong_query_lang", "top-1 wrong, same lang"),
        ("top1_wrong_other_lang", "top-1 wrong, other lang"),
        ("mean_rank_correlation", "MRC"),
    ):
        right.plot(x, [s[key] for _, s in done], marker="o", label=name)
    right.plot(
        x, [s["max_rank_distance"] / n for n, s in done], marker="s", label="rank distance / candidates"
    )
    right.set_xlabel("candidates in the pool")
    right.set_ylabel("share")
    right.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.suptitle("XQuAD-R queries, default model, growing unjudged distractor pool")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fmt(key: str, value) -> str:
    if value is None:
        return "–"
    return f"{value:.1f}" if key == "max_rank_distance" else f"{value:.3f}"


def report_lines(man: dict, rows: dict, fn: dict) -> list[str]:
    build = man
    lines = [
        "# Haystack: XQuAD-R against growing multilingual distractor pools",
        "",
        f"Default model, XQuAD-R's {build['xquad_r_queries']:,} queries and {build['xquad_r_candidates']:,} "
        "candidates plus unjudged distractors (seeded, nested samples). Pool size = all candidates; "
        "1× is XQuAD-R alone.",
        "",
        "## Commands",
        "",
        "```",
        build["command"],
    ]
    lines += [row["run"]["command"] for row in rows.values() if "run" in row]
    lines += sorted({v["command"] for v in fn.values() if "command" in v})
    lines += [
        "```",
        "",
        "`python benchmarks/haystack.py encode --work ../haystack` filled the embedding cache first; each "
        "`hybrid-plugin evaluate` line ran as `python benchmarks/haystack.py evaluate --work ../haystack "
        "--sizes N` (under `/usr/bin/time -v`, for the peak RSS); `report --work ../haystack --notes FILE` "
        "wrote this file.",
        "",
        "## Distractors",
        "",
    ]
    lines.append("| source | " + " | ".join(SOURCES) + " |")
    lines.append("|---|" + "---|" * len(SOURCES))
    src = build["source_candidates"]
    lines.append("| candidates read | " + " | ".join(f"{sum(src[s].values()):,}" for s in SOURCES) + " |")
    for why in ("duplicate_of_xquad_r", "duplicate_of_distractor"):
        lines.append(
            f"| dropped: {why.replace('_', ' ').replace('xquad r', 'an XQuAD-R candidate')} | "
            + " | ".join(str(build["dropped"][s][why]) for s in SOURCES)
            + " |"
        )
    lines += [
        "",
        f"{build['distractors_available']:,} distractors in all; candidate-only languages (no XQuAD-R "
        f"queries, multilingual pool only): {', '.join(build['candidate_only_languages'])}.",
        "",
        "| pool | distractors by language |",
        "|---|---|",
    ]
    for size, info in build["sizes"].items():
        if "skipped" in info:
            lines.append(f"| {size} | skipped: {info['skipped']} |")
        else:
            by = ", ".join(f"{k} {v:,}" for k, v in info["distractors_by_language"].items()) or "none"
            lines.append(f"| {size} ({info['candidates']:,}) | {by} |")
    lines += ["", "## Results", ""]
    header = (
        "| pool | candidates | "
        + " | ".join(h for _, h in COLUMNS)
        + " | rank dist / candidates | wall s | peak RSS GB |"
    )
    lines += [header, "|" + "---|" * (header.count("|") - 1)]
    for size, row in rows.items():
        run = row.get("run", {})
        scores = row.get("scores", {})
        cells = [fmt(k, scores.get(k)) for k, _ in COLUMNS]
        cells.append(f"{scores['max_rank_distance'] / row['candidates']:.3f}" if scores else "–")
        lines.append(
            f"| {size} ({row['multiple']}×) | {row['candidates']:,} | "
            + " | ".join(cells)
            + f" | {run.get('wall_s', '')} | {run.get('max_rss_gb', '')} |"
        )
    if fn:
        lines += ["", "## False-negative check", ""]
        lines += [
            FN_HEADER,
            "|---|---|---|---|---|---|---|",
        ]
        for size, c in fn.items():
            lines.append(
                f"| {size} | {c['threshold_cosine_centered']} ({c['random_pairs_above_threshold']:.2%} of "
                f"random pairs) | {c['cosine_flagged_pairs']:,} / {c['answer_flagged_pairs']:,} / "
                f"{c['union_flagged_pairs']:,} | {c['queries_with_distractor_above_first_relevant']:,} of "
                f"{c['pool_queries']:,} ({c['distractors_above_first_relevant']:,} distractors) | "
                f"{c['queries_with_cosine_flagged_above_first_relevant']:,} / "
                f"{c['queries_with_answer_flagged_above_first_relevant']:,} / "
                f"{c['queries_with_flagged_above_first_relevant']:,} | "
                f"{c['multi_map_recomputed']} → {c['multi_map_without_flagged']} | "
                f"{c['mono_map_recomputed']} → {c['mono_map_without_flagged']} |"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("build", "encode", "evaluate", "check", "report"))
    parser.add_argument(
        "--work", required=True, help="folder for task folders and results (outside the repo)"
    )
    parser.add_argument("--data-dir", default=None, help="datasets (default $HYBRID_PLUGIN_DATA)")
    parser.add_argument("--sizes", default=None, help="build: 1,2,5,10,all; other steps: a subset")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default=None, help="as hybrid-plugin evaluate --model (default model)")
    parser.add_argument("--quantile", type=float, default=0.05, help="check: parallel-cosine quantile")
    parser.add_argument("--examples", type=int, default=10, help="check: examples printed for reading")
    parser.add_argument("--examples-size", default="2x", help="check: the size whose examples are kept")
    parser.add_argument("--notes", default=None, help="report: a hand-written reading to append")
    args = parser.parse_args()
    if args.step == "build" and args.sizes is None:
        args.sizes = "1,2,5,10,all"
    {"build": build, "encode": encode, "evaluate": evaluate, "check": check, "report": report}[args.step](
        args
    )


if __name__ == "__main__":
    main()
