"""What MTEB needs to know about the LAReQA tasks before any data is loaded (imports mteb).

Language codes as MTEB writes them (ISO 639-3 + ISO 15924 script), the subset names of the settings
and back, the tasks' :class:`TaskMetadata`, and where their descriptive statistics ship. A subset is
the MTEB name of a :class:`~hybrid_plugin.data.settings.Setting`: ``deu-deu`` (X→X), ``deu-eng``
(X→Y), ``deu-pool`` (X→pool of all the task's languages). Both directions of that mapping live here.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from mteb.abstasks.task_metadata import TaskMetadata

from hybrid_plugin.data.settings import POOL, Setting
from hybrid_plugin.data.spec import TaskSpec, all_specs, get_spec

SPLIT = "test"
STATS_DIR = Path(__file__).resolve().parent / "mteb_stats"

# ISO 639-1 (the specs' codes) -> ISO 639-3 + ISO 15924 script, as MTEB writes languages
LANGUAGE_SCRIPTS = {
    "ar": "ara-Arab",
    "de": "deu-Latn",
    "el": "ell-Grek",
    "en": "eng-Latn",
    "es": "spa-Latn",
    "hi": "hin-Deva",
    "ru": "rus-Cyrl",
    "th": "tha-Thai",
    "tr": "tur-Latn",
    "vi": "vie-Latn",
    "zh": "zho-Hans",
}


@dataclass(frozen=True)
class MTEBTaskInfo:
    """What MTEB's metadata needs beyond the task spec (dates, provenance categories)."""

    spec: str
    name: str
    date: tuple[str, str]
    sample_creation: str
    adapted_from: tuple[str, ...]


TASKS = (
    # dates and source tasks as mteb records them for XQuADRetrieval / MLQARetrieval
    MTEBTaskInfo("xquad-r", "XQuADR", ("2019-05-21", "2019-11-21"), "human-translated", ("XQuADRetrieval",)),
    MTEBTaskInfo("mlqa-r", "MLQAR", ("2019-01-01", "2020-12-31"), "found", ("MLQARetrieval",)),
)


# what MTEB's dataset-quality checks flag in these tasks, and why it stays (also in the export's card)
QUALITY_NOTE = (
    "Known dataset-quality findings, inherent to LAReQA: a few candidate sentences are 1-3 characters "
    "long (fragments the published sentence split left at initials and abbreviations, e.g. 'I.'); they "
    "are kept because answers are identified by sentence. Texts repeat across subsets by design: every "
    "'-pool' subset holds the candidates of all languages and every 'x-y' subset shares y's candidates "
    "and x's questions; within a subset they are unique up to the few identical sentences of the source."
)


def language_script(lang: str) -> str:
    """``de`` -> ``deu-Latn``; a code the built-in tasks do not use (a task folder's ``yue``) through
    ``langcodes``: its ISO 639-3 code and likely script (``yue-Hant``)."""
    if lang in LANGUAGE_SCRIPTS:
        return LANGUAGE_SCRIPTS[lang]
    import langcodes

    if not langcodes.tag_is_valid(lang):
        raise ValueError(f"no ISO 639-3/script code known for language {lang!r}; add it to LANGUAGE_SCRIPTS")
    code = langcodes.Language.get(lang)
    return f"{code.to_alpha3()}-{code.maximize().script or 'Zyyy'}"


def iso3(lang: str) -> str:
    """``de`` -> ``deu``."""
    return language_script(lang).split("-")[0]


def iso1(code: str) -> str:
    """``deu`` -> ``de`` (inverse of :func:`iso3`)."""
    for lang in LANGUAGE_SCRIPTS:
        if iso3(lang) == code:
            return lang
    raise ValueError(f"no ISO 639-1 code known for {code!r}; add it to LANGUAGE_SCRIPTS")


def subset_of(setting: Setting) -> str:
    """The MTEB subset of a setting: ``deu-eng``, ``deu-pool``."""
    return f"{iso3(setting.query_lang)}-{POOL if setting.is_pool else iso3(setting.target)}"


def subset_name(x: str, y: str | None) -> str:
    """Subset of setting X→Y (``y=None``: X→pool), e.g. ``deu-eng``, ``deu-pool``."""
    return subset_of(Setting(x, y))


def spec_settings(spec: TaskSpec) -> list[Setting]:
    """Every setting a task offers as a subset, in MTEB's listing order: X→each Y, then X→pool."""
    return [
        setting
        for x in spec.languages
        for setting in (*(Setting(x, y) for y in spec.languages), Setting(x, None))
        if setting.kind in spec.settings  # a monolingual-only task folder: X→X only
    ]


@cache
def subsets(spec_name: str) -> dict[str, Setting]:
    """Subset name -> setting, for every subset of a task."""
    return {subset_of(s): s for s in spec_settings(get_spec(spec_name))}


def subset_setting(spec: TaskSpec, subset: str) -> Setting:
    """Inverse of :func:`subset_of`: ``deu-pool`` -> Setting("de", None); ``KeyError`` if unknown."""
    if spec.name in all_specs():
        return subsets(spec.name)[subset]
    return {subset_of(s): s for s in spec_settings(spec)}[subset]  # a task folder's spec


def eval_langs(spec: TaskSpec) -> dict[str, list[str]]:
    """Subset -> languages in it: X→Y has X and Y; X→pool has X first, then every other language."""
    out: dict[str, list[str]] = {}
    for setting in spec_settings(spec):
        x = setting.query_lang
        if setting.is_pool:
            others = [y for y in spec.languages if y != x]
        else:
            others = [] if setting.kind == "mono" else [setting.target]
        out[subset_of(setting)] = [language_script(lang) for lang in (x, *others)]
    return out


def mteb_license(license: str) -> str:
    """``CC BY-SA 4.0`` -> ``cc-by-sa-4.0`` (MTEB's spelling)."""
    return license.strip().lower().replace(" ", "-")


class LAReQATaskMetadata(TaskMetadata):
    """TaskMetadata whose descriptive statistics ship with hybrid_plugin (mteb looks in its own folder)."""

    @property
    def descriptive_stat_path(self) -> Path:
        return STATS_DIR / f"{self.name}.json"


def build_metadata(info: MTEBTaskInfo) -> LAReQATaskMetadata:
    """MTEB metadata from the task spec (languages, license, citation, reference) plus ``info``."""
    spec = get_spec(info.spec)
    n = len(spec.languages)
    description = (
        f"{spec.description} Sentence-level answer retrieval from LAReQA (Roy et al. 2020), "
        f"one subset per setting: '{{x}}-{{x}}' monolingual, '{{x}}-{{y}}' cross-lingual (queries with an "
        f"answer in y), '{{x}}-pool' multilingual (queries in x against the candidates of all {n} "
        f"languages; every parallel answer is relevant). Main score: exact full-rank MAP. Every subset "
        f"also reports exact standard measures under their ir-measures names (nDCG@10, R@100, RR, ...); "
        f"pools also report language-bias values (max_rank_distance, same_language_top_share, "
        f"mean_rank_<lang>). {QUALITY_NOTE}"
    )
    return LAReQATaskMetadata(
        name=info.name,
        description=description,
        reference=spec.reference,
        dataset={
            "path": f"{spec.reference}/tree/{spec.origin_commit}/{spec.folder}",
            "revision": spec.origin_commit,
        },
        type="Retrieval",
        category="t2t",
        modalities=["text"],
        eval_splits=[SPLIT],
        eval_langs=eval_langs(spec),
        main_score="map",
        date=info.date,
        domains=["Encyclopaedic", "Written"],
        task_subtypes=["Question answering"],
        license=mteb_license(spec.license),
        annotations_creators="human-annotated",
        dialect=[],
        sample_creation=info.sample_creation,
        bibtex_citation=spec.citation,
        adapted_from=list(info.adapted_from),
        prompt={"query": "Given a question, retrieve the sentence that answers it, in any language"},
    )


def folder_metadata(spec: TaskSpec, sha256: dict[str, str], settings: list[Setting]) -> LAReQATaskMetadata:
    """MTEB metadata of a task folder's spec: one subset per setting that has queries (``settings``);
    ``sha256`` of its files gives the revision."""
    import hashlib

    revision = hashlib.sha256("".join(sha256[f] for f in sorted(sha256)).encode()).hexdigest()[:16]
    kinds = {"mono": "'{x}-{x}' monolingual", "cross": "'{x}-{y}' cross-lingual", "multi": "'{x}-pool'"}
    fields = dict(
        name=spec.name,
        description=f"{spec.description} (a task folder; one subset per setting: "
        f"{', '.join(kinds[k] for k in spec.settings)}). Main score: exact full-rank MAP.",
        reference=spec.reference or None,
        dataset={"path": spec.name, "revision": revision},
        type="Retrieval",
        category="t2t",
        modalities=["text"],
        eval_splits=[SPLIT],
        eval_langs={k: v for k, v in eval_langs(spec).items() if k in {subset_of(s) for s in settings}},
        main_score="map",
        bibtex_citation=spec.citation,
    )
    try:
        return LAReQATaskMetadata(**fields, license=mteb_license(spec.license))
    except ValueError:  # a license MTEB does not know: recorded in the task folder, not here
        return LAReQATaskMetadata(**fields, license="not specified")
