"""Evaluate one exported setting with BEIR's own tools (GenericDataLoader, DRES, EvaluateRetrieval).

    hybrid-plugin export beir --task mlqa-r --languages de,hi --out beir/mlqa-r
    python examples/beir_evaluate.py --export beir/mlqa-r --setting de-hi --model PATH_OR_HF_ID

Prints BEIR's MAP@k (rounded by BEIR to 5 decimals) next to nDCG@k; for the same model and k they
equal hybrid-plugin's AP@k. Note: BEIR's SentenceBERT strips document text before encoding, so
candidates with leading/trailing whitespace (33 of XQuAD-R's 13,014, none in MLQA-R) are encoded
slightly differently from hybrid-plugin, which encodes the sentences exactly as released.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from beir.datasets.data_loader import GenericDataLoader
from beir.retrieval.evaluation import EvaluateRetrieval
from beir.retrieval.models import SentenceBERT
from beir.retrieval.search.dense import DenseRetrievalExactSearch


def evaluate_setting(
    export: Path, setting: str, model: str, k_values: list[int], batch_size: int = 64
) -> dict:
    manifest = json.loads((export / "manifest.json").read_text(encoding="utf-8"))
    where = manifest["settings"][setting]
    corpus, queries, qrels = GenericDataLoader(str(export / where["folder"]), prefix=where["prefix"]).load(
        split="test"
    )
    # the model's own prompts ("query" / "document", e.g. e5's "query: " / "passage: ")
    encoder = SentenceBERT(model, prompt_names={"query": "query", "passage": "document"})
    retriever = EvaluateRetrieval(
        DenseRetrievalExactSearch(encoder, batch_size=batch_size), k_values=k_values
    )
    results = retriever.retrieve(corpus, queries)
    ndcg, _map, recall, precision = retriever.evaluate(qrels, results, retriever.k_values)
    return {"queries": len(queries), "documents": len(corpus), **ndcg, **_map, **recall, **precision}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--export", required=True, type=Path, help="folder written by `hybrid-plugin export beir`"
    )
    ap.add_argument("--setting", required=True, help="e.g. de-hi, de-de or de-pool (see manifest.json)")
    ap.add_argument("--model", required=True, help="SentenceTransformer folder or hub id")
    ap.add_argument("--k", default="1,10,100", help="comma list of cutoffs")
    args = ap.parse_args()
    scores = evaluate_setting(args.export, args.setting, args.model, [int(k) for k in args.k.split(",")])
    print(json.dumps(scores, indent=1))


if __name__ == "__main__":
    main()
