"""Standard TREC qrels and run files, one pair per setting, from our exact (trec_eval-ordered) runs."""

from __future__ import annotations

from pathlib import Path

from hybrid_plugin.atomic import atomic_path
from hybrid_plugin.data.pool import Pool
from hybrid_plugin.data.settings import relevant_in
from hybrid_plugin.evaluation.runs import SettingRun, check_trec_ids


def write_trec(pool: Pool, runs: list[SettingRun], out: Path, tag: str = "hybrid_plugin") -> list[Path]:
    """``{setting}.qrels`` (qid 0 docid 1) and ``{setting}.run`` (qid Q0 docid rank score tag) per setting.

    Scores are written with 9 significant digits, which round-trips float32 exactly, so trec_eval
    and ir-measures rank the files exactly as the evaluator did.
    """
    check_trec_ids(pool)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for sr in runs:
        with atomic_path(out / f"{sr.key}.qrels") as tmp, open(tmp, "w", encoding="utf-8") as fh:
            for q in sr.queries:
                for c in relevant_in(pool, q, sr.setting):
                    fh.write(f"{pool.query_ids[q]} 0 {pool.cand_ids[c]} 1\n")
        with atomic_path(out / f"{sr.key}.run") as tmp, open(tmp, "w", encoding="utf-8") as fh:
            lengths = sr.lengths()  # unretrieved candidates (score -inf) are not part of a run
            for row, q in enumerate(sr.queries):
                qid = pool.query_ids[q]
                n = lengths[row]
                for rank, (d, s) in enumerate(zip(sr.docs[row][:n], sr.scores[row][:n]), start=1):
                    fh.write(f"{qid} Q0 {pool.cand_ids[d]} {rank} {float(s):.9g} {tag}\n")
        written += [out / f"{sr.key}.qrels", out / f"{sr.key}.run"]
    return written
