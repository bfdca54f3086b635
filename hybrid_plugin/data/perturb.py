"""Seeded query perturbations: how much of a retriever's quality survives typos, a Latin-script rewrite
or code-switching (issue: robustness of hybrid training on adversarial and low-resource inputs).

Only queries change; candidates, relevance and query ids stay, so a perturbed evaluation pairs row by
row with the clean one and ``compare`` gives paired intervals of the drop. Every perturbation draws
from a generator seeded by ``(seed, query id)``: the same query gets the same edit whatever the
language selection, the order or the machine.

What each one is, and is not:

- ``typo[:RATE]`` (default 0.05): each letter is edited with probability RATE: deleted, doubled,
  replaced by another letter of the same question, or swapped with the next letter (equally likely).
  Letters are drawn from the question itself, so the script never changes. Not modelled: keyboard
  neighbourhoods, phonetic misspellings, OCR confusions, edits to digits or punctuation.
- ``translit``: the question rewritten in Latin script by ``uroman`` (the universal romanizer;
  ``pip install 'hybrid-plugin[perturb]'``), as users type on a Latin keyboard. On a Latin-script
  language it only folds diacritics (``Tên`` → ``Ten``); English is unchanged. Not modelled: the
  informal romanizations people actually use (Arabizi digits, Hinglish spellings).
- ``codeswitch[:RATE]`` (default 0.3; parallel tasks only): one contiguous span holding RATE of the
  question's words is replaced by the position-matched span of the parallel question in
  ``switch_language`` (default English). Words are whitespace tokens, characters for questions written
  without spaces (Chinese, Japanese, Thai). The spans are matched by relative position, not by word
  alignment, so a swapped phrase may not translate the words it replaces. Questions in the switch
  language, or without a parallel question in it, stay clean (they are counted).
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, replace
from functools import cache

import numpy as np

from hybrid_plugin.data.pool import Pool
from hybrid_plugin.errors import UserError

KINDS = ("typo", "translit", "codeswitch")
DEFAULT_RATES = {"typo": 0.05, "codeswitch": 0.3}


@dataclass(frozen=True)
class Perturbation:
    """One query perturbation: its kind, its rate where it has one, and for code-switching the language
    whose parallel question is swapped in."""

    kind: str
    rate: float | None = None
    switch_language: str = "en"

    @property
    def name(self) -> str:
        """The spec's canonical text (``typo:0.05``), used for folder names and result labels."""
        return self.kind if self.rate is None else f"{self.kind}:{self.rate:g}"

    @property
    def slug(self) -> str:
        """File-name form of :attr:`name` (``typo-0.05``)."""
        return self.name.replace(":", "-")


def parse_perturbation(text: str, switch_language: str = "en") -> Perturbation:
    """``typo``, ``typo:0.1``, ``translit``, ``codeswitch:0.5`` → :class:`Perturbation` (one line if not)."""
    kind, _, rate_text = text.strip().partition(":")
    if kind not in KINDS:
        raise UserError(f"perturbation {text!r}: expected one of {', '.join(KINDS)} (e.g. typo:0.05)")
    if kind == "translit":
        if rate_text:
            raise UserError(f"perturbation {text!r}: translit takes no rate")
        return Perturbation(kind)
    try:
        rate = float(rate_text) if rate_text else DEFAULT_RATES[kind]
    except ValueError:
        raise UserError(f"perturbation {text!r}: the rate must be a number in (0, 1]") from None
    if not 0 < rate <= 1 or math.isnan(rate):
        raise UserError(f"perturbation {text!r}: the rate must be in (0, 1], got {rate:g}")
    return Perturbation(kind, rate, switch_language if kind == "codeswitch" else "en")


def query_rng(seed: int, query_id: str) -> np.random.Generator:
    """A generator of its own for each query (stable across processes, unlike ``hash``)."""
    digest = hashlib.sha256(f"{seed}\0{query_id}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def typo(text: str, rate: float, rng: np.random.Generator) -> str:
    """Edit each letter with probability ``rate``: delete, double, replace or swap with the next one."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return text
    chars = list(text)
    out: list[str] = []
    i = 0
    while i < len(chars):
        c = chars[i]
        if not c.isalpha() or rng.random() >= rate:
            out.append(c)
            i += 1
            continue
        edit = int(rng.integers(4))
        if edit == 0:  # delete
            pass
        elif edit == 1:  # double
            out += [c, c]
        elif edit == 2:  # replace by another letter of the question
            others = [x for x in letters if x != c] or [c]
            out.append(others[int(rng.integers(len(others)))])
        elif i + 1 < len(chars) and chars[i + 1].isalpha():  # swap with the next letter
            out += [chars[i + 1], c]
            i += 1
        else:
            out.append(c)
        i += 1
    return "".join(out)


def check_available(perturbations: list[Perturbation]) -> None:
    """Refuse (one line) before any evaluation what this install cannot do."""
    import importlib.util

    if any(p.kind == "translit" for p in perturbations) and importlib.util.find_spec("uroman") is None:
        raise UserError("the translit perturbation needs uroman: pip install 'hybrid-plugin[perturb]'")


@cache
def _romanizer():
    try:
        import uroman
    except ImportError:
        raise UserError(
            "the translit perturbation needs uroman: pip install 'hybrid-plugin[perturb]'"
        ) from None
    return uroman.Uroman()


def transliterate(text: str, lang: str | None = None) -> str:
    """``text`` in Latin script (uroman; ``lang`` is its ISO 639 code, which uroman may use)."""
    romanized = _romanizer().romanize_string(text, lcode=_iso639_3(lang))
    return re.sub(r"\s+", " ", romanized).strip()


def _iso639_3(lang: str | None) -> str | None:
    """uroman's language codes are ISO 639-3; the tasks' are mostly ISO 639-1."""
    if not lang:
        return None
    import langcodes

    try:
        return langcodes.Language.get(lang).to_alpha3()
    except (LookupError, ValueError):
        return None


def _words(text: str) -> tuple[list[str], bool]:
    """Whitespace tokens, or characters for text written without spaces; and which of the two."""
    tokens = text.split()
    if len(tokens) == 1 and len(text) > 8:
        return [c for c in text if not c.isspace()], True
    return tokens, False


def code_switch(text: str, other: str, rate: float, rng: np.random.Generator) -> str:
    """Replace one span holding ``rate`` of ``text``'s words by the position-matched span of ``other``."""
    words, by_char = _words(text)
    other_words, other_by_char = _words(other)
    n, m = len(words), len(other_words)
    if not n or not m:
        return text
    width = max(1, round(rate * n))
    start = int(rng.integers(n - width + 1))
    lo, hi = math.floor(start * m / n), max(math.floor(start * m / n) + 1, math.ceil((start + width) * m / n))
    swapped = ("" if other_by_char else " ").join(other_words[lo:hi])
    if by_char:
        left, right = "".join(words[:start]), "".join(words[start + width :])
        return " ".join(part for part in (left, swapped, right) if part)
    return " ".join([*words[:start], swapped, *words[start + width :]])


@dataclass(frozen=True)
class Perturbed:
    """A pool with perturbed queries, and how many queries the perturbation changed."""

    pool: Pool
    changed: int
    unchanged: int


def perturb_pool(pool: Pool, perturbation: Perturbation, seed: int = 0) -> Perturbed:
    """The pool with every query perturbed; candidates and relevance are the same objects."""
    texts = list(pool.query_text)
    langs = [pool.languages[i] for i in pool.query_lang]
    if perturbation.kind == "typo":
        new = [typo(t, perturbation.rate or 0.0, query_rng(seed, q)) for t, q in zip(texts, pool.query_ids)]
    elif perturbation.kind == "translit":
        new = [transliterate(t, lang) for t, lang in zip(texts, langs)]
    else:
        new = _code_switched(pool, perturbation, seed)
    changed = sum(a != b for a, b in zip(texts, new))
    return Perturbed(replace(pool, query_text=new), changed, len(texts) - changed)


def _code_switched(pool: Pool, perturbation: Perturbation, seed: int) -> list[str]:
    if pool.settings == ("mono",):
        raise UserError(
            f"codeswitch needs parallel questions; {pool.task} has none (its settings: mono only)"
        )
    target = perturbation.switch_language
    if target not in pool.languages:
        raise UserError(
            f"codeswitch: switch language {target!r} is not among the evaluated languages "
            f"({','.join(pool.languages)})"
        )
    li = pool.languages.index(target)
    by_group = {
        int(g): pool.query_text[q] for q, g in enumerate(pool.query_group) if pool.query_lang[q] == li
    }
    out = []
    for q, text in enumerate(pool.query_text):
        other = by_group.get(int(pool.query_group[q]))
        if pool.query_lang[q] == li or other is None:
            out.append(text)
        else:
            out.append(code_switch(text, other, perturbation.rate or 0.0, query_rng(seed, pool.query_ids[q])))
    return out
