"""The Java side of the BM25 baseline: Anserini (pyserini 0.22.1's jar) indexes and searches in-process.

Everything Java is imported lazily, inside functions: ``import hybrid_plugin`` and the CLI never
start a JVM. Nothing here touches the network: indexes are built by Anserini's ``IndexCollection``
from a JSON collection in a temporary folder and searched with Anserini's ``SimpleSearcher``
(the class pyserini's ``LuceneSearcher`` wraps), both called directly through pyjnius.

Analyzers, per candidate language L (the index of L and every query searched in it use the same one):

- languages Anserini maps (``AnalyzerMap``: ar de es hi ru th tr zh …): Anserini's
  ``IndexCollection -language L``, i.e. Lucene's analyzer for L (zh: ``CJKAnalyzer``, bigrams;
  th: ``ThaiAnalyzer``, dictionary word segmentation).
- en and vi: Anserini's ``DefaultEnglishAnalyzer`` (Porter stemmer, Lucene's English stopwords).
  For en that is Anserini's choice; vi has no analyzer in Anserini or Lucene, and
  ``IndexCollection`` falls back to this one. It splits Vietnamese on spaces into syllables and
  lowercases them; the Porter stemmer rarely changes a Vietnamese syllable, but it does some
  (``hay`` "or" becomes ``hai`` "two").
- el: Anserini maps no analyzer (it would fall back to English), so texts and queries are
  pre-tokenised with Lucene's ``GreekAnalyzer`` (lowercasing, accent folding, stopwords, Greek
  stemmer) and the tokens are indexed and searched with a whitespace analyzer
  (``IndexCollection -pretokenized``).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path

import numpy as np

from hybrid_plugin.errors import UserError

PYSERINI_VERSION = "0.22.1"
PYJNIUS_VERSION = "1.9.0"
INSTALL_COMMAND = "make bm25"
INSTALL_HINT = (
    f"run `{INSTALL_COMMAND}` (Java 17 from Debian if `java` is missing, then "
    f"pip install --no-deps pyserini=={PYSERINI_VERSION} pyjnius=={PYJNIUS_VERSION})"
)

# candidate language -> (how the text is analysed, Lucene analyzer class for pre-tokenising)
PRETOKENISED = {"el": "org.apache.lucene.analysis.el.GreekAnalyzer"}
SUPPORTED = ("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh")

_LOG4J_CONFIG = Path(__file__).with_name("log4j2.xml")  # Anserini's own logs DEBUG lines to stdout


def jar_dir() -> Path | None:
    spec = find_spec("pyserini")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "resources" / "jars"


def anserini_jar() -> Path | None:
    """The Anserini fat jar shipped inside the installed pyserini wheel (or ``$ANSERINI_CLASSPATH``)."""
    folder = Path(os.environ["ANSERINI_CLASSPATH"]) if os.environ.get("ANSERINI_CLASSPATH") else jar_dir()
    if folder is None:
        return None
    jars = sorted(folder.glob("anserini-*-fatjar.jar"))
    return jars[-1] if jars else None


def _java_found() -> bool:
    if any(os.environ.get(v) for v in ("JAVA_HOME", "JDK_HOME", "JRE_HOME", "JVM_PATH")):
        return True
    return shutil.which("java") is not None


def stack_problem() -> str | None:
    """Why the BM25 stack cannot run here (one line), or None when pyserini, pyjnius and Java are there."""
    missing = []
    if find_spec("pyserini") is None:
        missing.append(f"pyserini=={PYSERINI_VERSION}")
    elif anserini_jar() is None:
        missing.append("Anserini's jar inside pyserini (pyserini/resources/jars/anserini-*-fatjar.jar)")
    if find_spec("jnius") is None:
        missing.append("pyjnius")
    if not _java_found():
        missing.append("Java 17 (no `java` on PATH and no JAVA_HOME)")
    if not missing:
        return None
    return f"the BM25 baseline needs {', '.join(missing)}: {INSTALL_HINT}"


@contextmanager
def _quiet_output():
    """Silence file descriptors 1 and 2 (the JVM writes there directly, past Python's sys.stdout/err)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


@dataclass(frozen=True)
class Java:
    """The Java classes the baseline uses, after the JVM is up."""

    autoclass: object
    ArrayList: object
    Args: object
    IndexCollection: object
    SimpleSearcher: object
    AnalyzerUtils: object
    AnalyzerMap: object
    DefaultEnglishAnalyzer: object
    WhitespaceAnalyzer: object
    lucene_version: str
    java_version: str


def require() -> Java:
    """The Java classes, after checking the stack afresh: a one-line UserError naming the install command."""
    problem = stack_problem()
    if problem:
        raise UserError(problem)
    return java()


@cache
def java() -> Java:
    """Start the JVM once per process with Anserini's jar (the stack is checked on the first call)."""
    problem = stack_problem()
    if problem:
        raise UserError(problem)
    import jnius_config

    if not jnius_config.vm_running:
        jnius_config.add_options(f"-Dlog4j2.configurationFile={_LOG4J_CONFIG}")
        jnius_config.add_classpath(str(anserini_jar()))
    try:
        with _quiet_output():  # log4j's one-time "getCallerClass is not supported" warning (on stdout)
            from jnius import autoclass

            autoclass("org.apache.logging.log4j.LogManager").getLogger("hybrid_plugin")
            version = autoclass("org.apache.lucene.util.Version").LATEST.toString()
    except Exception as err:  # noqa: BLE001 - no JVM library, a broken jar: one message
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UserError(f"cannot start Java for the BM25 baseline ({first}): {INSTALL_HINT}") from None
    return Java(
        autoclass=autoclass,
        ArrayList=autoclass("java.util.ArrayList"),
        Args=autoclass("io.anserini.index.IndexCollection$Args"),
        IndexCollection=autoclass("io.anserini.index.IndexCollection"),
        SimpleSearcher=autoclass("io.anserini.search.SimpleSearcher"),
        AnalyzerUtils=autoclass("io.anserini.analysis.AnalyzerUtils"),
        AnalyzerMap=autoclass("io.anserini.analysis.AnalyzerMap"),
        DefaultEnglishAnalyzer=autoclass("io.anserini.analysis.DefaultEnglishAnalyzer"),
        WhitespaceAnalyzer=autoclass("org.apache.lucene.analysis.core.WhitespaceAnalyzer"),
        lucene_version=version,
        java_version=autoclass("java.lang.System").getProperty("java.version"),
    )


def _check_language(lang: str) -> None:
    if lang not in SUPPORTED:
        raise UserError(f"no BM25 analyzer is configured for language {lang!r} (have: {' '.join(SUPPORTED)})")


def language_analyzer(lang: str):
    """The Lucene analyzer that defines lang's terms, built exactly as ``IndexCollection`` builds it."""
    _check_language(lang)
    j = java()
    if lang in PRETOKENISED:
        return j.autoclass(PRETOKENISED[lang])()
    if j.AnalyzerMap.analyzerMap.containsKey(lang):
        return j.AnalyzerMap.getLanguageSpecificAnalyzer(lang)
    args = j.Args()  # IndexCollection's defaults: Porter stemmer, default stopwords
    return j.DefaultEnglishAnalyzer.fromArguments(args.stemmer, args.keepStopwords, args.stopwords)


def describe_analyzer(lang: str) -> dict[str, str]:
    """What analyses lang's texts: the Java class and how it is applied (recorded in the results)."""
    name = language_analyzer(lang).getClass().getName()
    if lang in PRETOKENISED:
        how = "pre-tokenised with this analyzer; tokens indexed and searched with a whitespace analyzer"
    else:
        how = f"Anserini IndexCollection -language {lang}"
        if lang != "en" and not java().AnalyzerMap.analyzerMap.containsKey(lang):
            how += " (no analyzer mapped for it: Anserini's English default, Porter stemmer)"
    return {"analyzer": name, "how": how}


def analyze(lang: str, text: str) -> list[str]:
    """The terms lang's index holds for ``text``."""
    return list(java().AnalyzerUtils.analyze(language_analyzer(lang), text).toArray())


def library_versions() -> dict[str, str | None]:
    """pyserini, pyjnius, Lucene and Java versions of the running stack."""
    j = java()
    out: dict[str, str | None] = {}
    for lib in ("pyserini", "pyjnius"):
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            out[lib] = None
    jar = anserini_jar()
    out |= {"anserini_jar": jar.name if jar else None, "lucene": j.lucene_version, "java": j.java_version}
    return out


@dataclass
class Hits:
    """Search results, long format: query row, document position in the index's input order, score."""

    query: np.ndarray  # int64
    doc: np.ndarray  # int64
    score: np.ndarray  # float32, Lucene's own float


class LanguageIndex:
    """A Lucene index over one language's texts, and BM25 search of any queries in it."""

    def __init__(self, lang: str, ids: list[str], texts: list[str], folder: Path):
        _check_language(lang)
        self.lang = lang
        self.ids = list(ids)
        self.folder = Path(folder)
        j = java()
        if lang in PRETOKENISED:
            texts = [" ".join(analyze(lang, t)) for t in texts]
        docs = self.folder / "docs"
        docs.mkdir(parents=True, exist_ok=True)
        with open(docs / "docs.jsonl", "w", encoding="utf-8") as fh:
            for i, t in zip(self.ids, texts):
                fh.write(json.dumps({"id": i, "contents": t}, ensure_ascii=False) + "\n")
        args = j.Args()
        args.input = str(docs)
        args.collectionClass = "JsonCollection"
        args.generatorClass = "DefaultLuceneDocumentGenerator"
        args.index = str(self.folder / "index")
        args.threads = 1
        args.quiet = True
        if lang in PRETOKENISED:
            args.pretokenized = True
        else:
            args.language = lang
        counters = j.IndexCollection(args).run()
        indexed, empty = counters.indexed.get(), counters.empty.get()
        if indexed + empty != len(self.ids) or counters.errors.get() or counters.unindexable.get():
            raise RuntimeError(
                f"Anserini indexed {indexed} of {len(self.ids)} {lang} texts "
                f"({empty} empty, {counters.errors.get()} errors, {counters.unindexable.get()} unindexable)"
            )
        self.indexed = indexed
        self.empty = empty
        analyzer = j.WhitespaceAnalyzer() if lang in PRETOKENISED else language_analyzer(lang)
        self.searcher = j.SimpleSearcher(args.index, analyzer)
        position = {doc_id: k for k, doc_id in enumerate(self.ids)}
        n = self.searcher.get_total_num_docs()
        # Lucene's internal doc number -> position in ``ids``, read once from the stored id field
        self._position = np.array([position[self.searcher.doc(d).get("id")] for d in range(n)], np.int64)

    def search(
        self,
        queries: list[str],
        k1: float,
        b: float,
        threads: int = 1,
        batch: int = 500,
        on_batch: Callable[[int], None] | None = None,
    ) -> Hits:
        """BM25 (Anserini's bag-of-words query, ``k1``, ``b``) of every query against every text.

        The depth is the number of indexed texts, so every text sharing a term with the query is
        returned with its score; texts sharing none are not retrieved. Queries go to Lucene in batches
        of ``batch`` (about a second each; the scores do not depend on it); ``on_batch(n)`` is called
        after each with the number of queries searched, for a progress bar.
        """
        j = java()
        if self.lang in PRETOKENISED:
            queries = [" ".join(analyze(self.lang, q)) for q in queries]
        self.searcher.set_bm25(float(k1), float(b))
        depth = max(1, self.indexed)
        rows: list[int] = []
        docs: list[int] = []
        scores: list[float] = []
        for start in range(0, len(queries), batch):
            texts, qids = j.ArrayList(), j.ArrayList()
            for i, q in enumerate(queries[start : start + batch], start=start):
                texts.add(q)
                qids.add(str(i))
            results = self.searcher.batch_search(texts, qids, depth, threads)
            for i in range(start, min(start + batch, len(queries))):
                found = results.get(str(i))
                for hit in found:
                    docs.append(hit.lucene_docid)
                    scores.append(hit.score)
                rows.extend([i] * len(found))
            if on_batch is not None:
                on_batch(min(batch, len(queries) - start))
        return Hits(
            query=np.asarray(rows, dtype=np.int64),
            doc=self._position[np.asarray(docs, dtype=np.int64)],
            score=np.asarray(scores, dtype=np.float32),
        )

    def close(self) -> None:
        self.searcher.close()
