"""Standard TREC qrels and run files, one pair per setting, from our exact (trec_eval-ordered) runs."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from hybrid_plugin.atomic import atomic_path
from hybrid_plugin.data.pool import Pool
from hybrid_plugin.data.settings import relevant_in
from hybrid_plugin.errors import UserError
from hybrid_plugin.evaluation.runs import SettingRun

_SPACE = re.compile(r"\s")  # what str.isspace calls white space (str.split splits there)


def _first_spaced(ids: Sequence[str]) -> tuple[str, int] | None:
    """The first id holding white space and how many do, else None (one regex pass over all ids)."""
    if _SPACE.search("\x00".join(ids)) is None:
        return None
    spaced = [i for i in ids if _SPACE.search(i)]
    return spaced[0], len(spaced)


def check_trec_ids(pool: Pool) -> None:
    """Refuse ids that TREC files cannot carry: their fields are separated by white space, so an id with
    a space, tab or newline would shift the fields (trec_eval and ir-measures would misread the run)."""
    for kind, ids in (("query", pool.query_ids), ("candidate", pool.cand_ids)):
        found = _first_spaced(ids)
        if found is not None:
            first, count = found
            more = f" (and {count - 1} more)" if count > 1 else ""
            raise UserError(
                f"--trec-out: {kind} id {first!r} contains white space{more}; TREC qrels and run files "
                "separate fields by white space, so ids must have none"
            )


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
