"""The rules ``validate`` checks, in words: the leaderboard README's list under "Rules checked by".

Each rule's wording is here, and every bound, length, character and column name in it is filled in
from the checks' own constants and the row schema's field constraints (:mod:`.schema`), so the text
cannot say other than what is checked. Line breaks are where the README wraps them.
"""

from __future__ import annotations

from hybrid_plugin.leaderboard.schema import (
    BOOLEANS,
    CELL_MAX,
    DATE_FORM,
    FIXED_ALPHA,
    FORMULA_START,
    FREE_ALPHA,
    FREE_TEXT,
    MARKUP,
    MIN_LANGUAGES,
    MODEL_ID,
    NOT_A_PATH,
    PER_LANGUAGE_PREFIX,
    Map,
    RowBase,
)

# what RowBase and consistency() check, cell by cell and across a row's columns
ROW_RULES = (
    "every cell is UTF-8 text without control, bidi-override or line-break characters and without\n"
    "leading or trailing spaces; no cell holds {markup}; no cell starts with {formula}\n"
    "(spreadsheet formulas) unless it is a number in a numeric column; no cell is longer than\n"
    "{cell_max} characters ({free_text_max});",
    "mAPs and shares {map_range}, `max_rank_distance` {max_rank_distance}, `alpha` {alpha}, "
    "`batch_size` {batch_size}; numbers\n"
    "are plain decimals; booleans are {booleans}; dates `{date}`;",
    "{model_id_columns}: a hub id `org/name` or a folder name; {not_a_path} must not\n"
    "look like a path or URL;",
    "`languages`: at least {min_languages} of the task's, in its order; `{per_language}<lang>` filled "
    "exactly for\n"
    "them. Rows on fewer languages than the task has are accepted and listed apart, under\n"
    '"partial language sets", not ranked with the full rows;',
    "a zero-shot row has no training columns; a trained row names its base model, batch size and\n"
    "data (and α: {alpha_by_strategy}); `in_domain_training` is true exactly when the\n"
    "training data's format is in-domain for the task (MLQA data on MLQA-R);",
)
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five")


def _code_list(items: tuple[str, ...] | list[str], last: str = "or") -> str:
    """``a``, ``b`` or ``c`` (each item in backticks)."""
    quoted = [f"`{item}`" for item in items]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} {last} {quoted[-1]}"


def _bounds(metadata: list, upper: bool = True) -> str:
    """``in [0, 1]`` or ``≥ 0`` from a field's ``Ge``/``Le`` constraints (``upper=False``: the lower only)."""
    ge = next(m.ge for m in metadata if hasattr(m, "ge"))
    le = next((m.le for m in metadata if hasattr(m, "le")), None) if upper else None
    return f"≥ {ge:g}" if le is None else f"in [{ge:g}, {le:g}]"


def row_rules() -> list[str]:
    """The rules :class:`RowBase` and :func:`consistency` check, in words (lines joined by ``\\n``)."""
    fields = RowBase.model_fields
    facts = {
        "markup": _code_list(MARKUP),
        "formula": _code_list(FORMULA_START),
        "cell_max": CELL_MAX,
        "free_text_max": ", ".join(
            f"`{name}` {next(m.max_length for m in fields[name].metadata if hasattr(m, 'max_length'))}"
            for name in FREE_TEXT
        ),
        "map_range": _bounds(Map.__metadata__[0].metadata),
        "max_rank_distance": _bounds(fields["max_rank_distance"].metadata),
        "alpha": _bounds(fields["alpha"].metadata),
        "batch_size": _bounds(fields["batch_size"].metadata, upper=False),
        "booleans": "/".join(f"`{b}`" for b in BOOLEANS),
        "date": DATE_FORM,
        "model_id_columns": ", ".join(
            f"`{name}`"
            for name, f in fields.items()
            if any(getattr(m, "pattern", None) == MODEL_ID for m in f.metadata)
        ),
        "not_a_path": _code_list(NOT_A_PATH, last="and"),
        "min_languages": NUMBER_WORDS[MIN_LANGUAGES],
        "per_language": PER_LANGUAGE_PREFIX,
        "alpha_by_strategy": ", ".join(
            [f"{FREE_ALPHA} any", *(f"{s} {a:g}" for s, a in FIXED_ALPHA.items())]
        ),
    }
    return [rule.format(**facts) for rule in ROW_RULES]


# what board.check_csv checks across rows and files (keys, order, results and per-query files)
BOARD_RULES = (
    "one row per key; rows sorted best `multi_map` first (ties: mono, cross, model id);",
    "each row's results file exists, has the row's sha256, is a consistent results document (macro\n"
    "scores follow from its settings; data verified), and gives exactly the row's cells (all but\n"
    "{free_text}); no results file is left without a row;",
    "a results file that records a per-query file has it committed beside it with that sha256, and the\n"
    "interval and `vs_best` cells are exactly what those per-query files give (empty without them).",
)


def board_rules() -> list[str]:
    """:data:`BOARD_RULES` with the columns a results file does not give (the free text) filled in."""
    return [rule.format(free_text=", ".join(f"`{c}`" for c in FREE_TEXT)) for rule in BOARD_RULES]


def rules() -> list[str]:
    """Every rule, the row's first."""
    return [*row_rules(), *board_rules()]
