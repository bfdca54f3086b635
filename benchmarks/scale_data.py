"""Synthetic task folders for the scaling benchmark (DESIGN §12, issue 24), written streaming.

Usage: python benchmarks/scale_data.py --candidates 100000 [--queries 4000] [--out ../scale_data]
Writes OUT/scale-<candidates>/ (task.toml, corpus.jsonl, queries.jsonl, qrels/test.tsv), never the
whole folder in memory: records go to disk in chunks of ``--chunk`` lines, each file through a temp
file renamed into place when complete
(``hybrid_plugin.atomic.atomic_path``).

The pool: ``--queries`` queries in 4 languages (de, en, es, zh), as parallel groups of one question
per language; every group has one relevant candidate per language, so each query has 4 relevant
candidates (1 monolingual, 3 cross-lingual). The remaining candidates are distractors; candidate i
is in language i mod 4, so every language holds a quarter. Texts are pseudo-random words from a fixed
synthetic vocabulary (seeded), each unique (it starts with its own id), 12–24 words long, about as
long as an XQuAD-R sentence. The same arguments give byte-identical files.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from hybrid_plugin.atomic import atomic_path, write_text

LANGS = ("de", "en", "es", "zh")
VOCAB = 20_000


def vocabulary(seed: int) -> np.ndarray:
    """Synthetic words of 2–10 lowercase letters (fixed by ``seed``)."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    lengths = rng.integers(2, 11, size=VOCAB)
    return np.array(["".join(rng.choice(letters, size=n)) for n in lengths], dtype=object)


def texts(rng: np.random.Generator, words: np.ndarray, prefixes: list[str]) -> list[str]:
    """One text per prefix: the prefix, then 12–24 random words."""
    n = len(prefixes)
    lengths = rng.integers(12, 25, size=n)
    picks = rng.integers(0, VOCAB, size=int(lengths.sum()))
    ends = np.cumsum(lengths)
    flat = words[picks]
    return [f"{p} {' '.join(flat[e - k : e])}" for p, k, e in zip(prefixes, lengths, ends)]


def generate(out: Path, candidates: int, queries: int, seed: int = 0, chunk: int = 200_000) -> Path:
    """Write the folder ``out/scale-<candidates>`` and return it."""
    n_lang = len(LANGS)
    if queries % n_lang or queries <= 0:
        raise SystemExit(f"--queries must be a positive multiple of {n_lang}")
    groups = queries // n_lang
    if candidates < groups * n_lang:
        raise SystemExit(f"--candidates must be at least {groups * n_lang} (one per query)")
    folder = out / f"scale-{candidates}"
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    words = vocabulary(seed)
    rng = np.random.default_rng(seed + 1)
    made_by = f"benchmarks/scale_data.py --candidates {candidates} --queries {queries} --seed {seed}"
    toml = [
        f'name = "scale-{candidates}"',
        f'title = "Synthetic scaling pool, {candidates:,} candidates"',
        f'description = "{made_by}"',
        f"languages = [{', '.join(json.dumps(x) for x in LANGS)}]",
        'license = "CC0-1.0"',
        'citation = "none"',
        'candidate_unit = "sentence"',
    ]
    write_text(folder / "task.toml", "\n".join(toml) + "\n")
    with atomic_path(folder / "corpus.jsonl") as tmp, open(tmp, "w", encoding="utf-8") as corpus:
        for start in range(0, candidates, chunk):
            ids = range(start, min(start + chunk, candidates))
            body = texts(rng, words, [f"d{i}" for i in ids])
            rows = ({"_id": f"d{i}", "text": t, "language": LANGS[i % n_lang]} for i, t in zip(ids, body))
            corpus.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    # group g's relevant candidate in language k is candidate g * n_lang + k (in language k)
    with (
        atomic_path(folder / "queries.jsonl") as q_tmp,
        open(q_tmp, "w", encoding="utf-8") as query_file,
        atomic_path(folder / "qrels" / "test.tsv") as r_tmp,
        open(r_tmp, "w", encoding="utf-8") as qrels,
    ):
        qrels.write("query-id\tcorpus-id\tscore\n")
        for start in range(0, groups, chunk):
            gs = range(start, min(start + chunk, groups))
            body = iter(texts(rng, words, [f"q{g}-{lang}" for g in gs for lang in LANGS]))
            for g in gs:
                for lang in LANGS:
                    q = f"q{g}-{lang}"
                    row = {"_id": q, "text": next(body), "language": lang, "group": f"g{g}"}
                    query_file.write(json.dumps(row) + "\n")
                    qrels.write("".join(f"{q}\td{g * n_lang + k}\t1\n" for k in range(n_lang)))
    return folder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--candidates", type=int, nargs="+", required=True)
    parser.add_argument("--queries", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chunk", type=int, default=200_000, help="lines per write")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[2] / "scale_data")
    args = parser.parse_args(argv)
    for c in args.candidates:
        folder = generate(args.out, c, args.queries, args.seed, args.chunk)
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        print(f"{folder}: {size / 1e6:,.1f} MB", file=sys.stderr)


if __name__ == "__main__":
    main()
