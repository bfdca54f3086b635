"""De-biasing fit sets from training sources: ``--debias-fit mlqa:PATH`` (any ``--train-data`` form).

The trainer's readers (and their evaluation-data guard) read the source; every distinct question and
passage becomes a fit text of its language, and each language keeps at most ``per_language`` of them
(a seeded sample), so the fit costs a bounded encode whatever the corpus size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hybrid_plugin.scoring.debias import FitTexts
from hybrid_plugin.training.data import read_sources

DEFAULT_PER_LANGUAGE = 2000


def fit_texts_from_sources(
    sources: str,
    per_language: int = DEFAULT_PER_LANGUAGE,
    seed: int = 0,
    data_dir: str | Path | None = None,
) -> FitTexts:
    """Fit texts of ``sources`` (comma-separated ``FORMAT:PATH``): the questions, and the passages as
    the trainer reads them by default (the answer sentence where every answer has its text, else the
    paragraph: MLQA's test files hold unanswerable questions)."""
    items = read_sources(sources.split(","), passage_unit="auto", progress=False, data_dir=data_dir)
    by_language: dict[str, set[str]] = {}
    for table in (*items.questions, *items.passages):
        for lang, text in table.items():
            by_language.setdefault(lang, set()).add(text)
    rng = np.random.default_rng(seed)
    texts: list[str] = []
    langs: list[str] = []
    for lang in sorted(by_language):
        distinct = sorted(by_language[lang])
        if len(distinct) > per_language:
            keep = np.sort(rng.choice(len(distinct), size=per_language, replace=False))
            distinct = [distinct[i] for i in keep]
        texts += distinct
        langs += [lang] * len(distinct)
    source = f"{sources} (≤ {per_language} texts per language, seed {seed})"
    return FitTexts(texts, langs, source)
