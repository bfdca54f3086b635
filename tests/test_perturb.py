"""Query perturbations (typos, transliteration, code-switching) and ``perturb``'s paired drops: edits by
hand, determinism per query, refusals in one line, and the report's differences equal to the results'."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from test_cli import assert_one_line_error
from test_plugins import parallel_pool

from hybrid_plugin.cli import main
from hybrid_plugin.data.perturb import (
    Perturbation,
    code_switch,
    parse_perturbation,
    perturb_pool,
    query_rng,
    typo,
)
from hybrid_plugin.errors import UserError
from hybrid_plugin.evaluation.evaluator import EvalConfig, evaluate


class FixedDraws:
    """A generator stand-in: ``integers`` returns the given values in turn, ``random`` likewise."""

    def __init__(self, integers=(), randoms=()) -> None:
        self._integers, self._randoms = list(integers), list(randoms)

    def integers(self, high: int) -> int:
        value = self._integers.pop(0)
        assert 0 <= value < high
        return value

    def random(self) -> float:
        return self._randoms.pop(0)


def test_parse_names_defaults_and_refusals() -> None:
    assert parse_perturbation("typo") == Perturbation("typo", 0.05)
    assert parse_perturbation("typo:0.1").name == "typo:0.1"
    assert parse_perturbation("translit") == Perturbation("translit")
    cs = parse_perturbation("codeswitch", switch_language="de")
    assert (cs.rate, cs.switch_language, cs.slug) == (0.3, "de", "codeswitch-0.3")
    for bad, message in (
        ("shout", "expected one of typo, translit, codeswitch"),
        ("typo:0", r"must be in \(0, 1\]"),
        ("typo:1.5", r"must be in \(0, 1\]"),
        ("typo:nan", r"must be in \(0, 1\]"),
        ("typo:x", "must be a number"),
        ("translit:0.2", "takes no rate"),
    ):
        with pytest.raises(UserError, match=message):
            parse_perturbation(bad)


def test_typo_edits_by_hand() -> None:
    # letters of "abc d": a (no edit), b (edit 0: delete), c (edit 1: double), space kept, d (edit 3: swap,
    # but no next letter: kept)
    draws = FixedDraws(integers=[0, 1, 3], randoms=[0.9, 0.0, 0.0, 0.0])
    assert typo("abc d", 0.5, draws) == "acc d"
    # replace: "ab" → b is replaced by a letter of the question other than b (only a)
    assert typo("ab", 0.5, FixedDraws(integers=[2, 0], randoms=[0.9, 0.0])) == "aa"
    # swap with the next letter: "ab!" → "ba!"
    assert typo("ab!", 0.5, FixedDraws(integers=[3], randoms=[0.0])) == "ba!"
    assert typo("2024?", 1.0, query_rng(0, "q")) == "2024?"  # no letters: nothing to edit
    assert typo("what is it", 0.0, query_rng(0, "q")) == "what is it"


def test_typo_keeps_the_script_and_is_seeded_per_query() -> None:
    text = "Wie heißt der längste Fluss Europas?"
    edited = typo(text, 1.0, query_rng(3, "de-q-1"))
    assert edited != text
    assert set(c for c in edited if c.isalpha()) <= set(c for c in text if c.isalpha())
    assert typo(text, 0.2, query_rng(3, "de-q-1")) == typo(text, 0.2, query_rng(3, "de-q-1"))
    assert len({typo(text, 0.2, query_rng(s, "de-q-1")) for s in range(8)}) > 1


def test_code_switch_by_hand() -> None:
    # 10 words, rate 0.3: a span of 3 words from position 2 ↔ the other's words [floor(2·5/10), ceil(5·5/10))
    text, other = "a b c d e f g h i j", "A B C D E"
    assert code_switch(text, other, 0.3, FixedDraws(integers=[2])) == "a b B C f g h i j"
    # a question without spaces is cut into characters; the swapped words keep their spaces
    assert code_switch("河流的名字是什么东西", "what is the river", 0.2, FixedDraws(integers=[0])) == (
        "what 的名字是什么东西"
    )
    assert code_switch("eins zwei", "", 0.5, FixedDraws(integers=[0])) == "eins zwei"


def test_perturb_pool_changes_queries_only_and_counts() -> None:
    pool = parallel_pool(n_groups=3, langs=("de", "en"))
    perturbed = perturb_pool(pool, parse_perturbation("codeswitch:1"), seed=0)
    # rate 1: every de question is replaced by its English parallel; English questions stay
    assert perturbed.pool.query_text == [
        "en question 0",
        "en question 1",
        "en question 2",
        *pool.query_text[3:],
    ]
    assert (perturbed.changed, perturbed.unchanged) == (3, 3)
    assert perturbed.pool.cand_sentence is pool.cand_sentence and perturbed.pool.query_ids == pool.query_ids
    typos = perturb_pool(pool, parse_perturbation("typo:0.5"), seed=1).pool.query_text
    # the same query gets the same edit in a pool of other languages (seeded by query id, not position)
    alone = perturb_pool(parallel_pool(n_groups=3, langs=("en",)), parse_perturbation("typo:0.5"), seed=1)
    assert alone.pool.query_text == typos[3:]


def test_code_switching_refusals() -> None:
    pool = parallel_pool(n_groups=2, langs=("de", "en"))
    with pytest.raises(UserError, match=r"switch language 'fr' is not among the evaluated languages"):
        perturb_pool(pool, parse_perturbation("codeswitch", switch_language="fr"))
    import dataclasses

    mono = dataclasses.replace(pool, settings=("mono",))
    with pytest.raises(UserError, match="codeswitch needs parallel questions"):
        perturb_pool(mono, parse_perturbation("codeswitch"))


def test_transliteration_to_latin_script() -> None:
    pytest.importorskip("uroman")
    from hybrid_plugin.data.perturb import transliterate

    assert transliterate("Tên con sông là gì?", "vi") == "Ten con song la gi?"
    assert transliterate("What is the river?", "en") == "What is the river?"
    # uroman applies its Russian rules (lcode rus): "е" after a vowel is "ye"
    assert transliterate("Как называется река?", "ru") == "Kak nazyvayetsya reka?"
    assert all(ord(c) < 128 for c in transliterate("河流的名字是什么？", "zh"))


# --- perturb end to end, on a task folder and a bag-of-words encoder ---------------------------------

TOPICS = ["river", "castle", "queen", "planet", "violin", "desert", "harbor", "glacier"]
LANGS = ("de", "en", "zh")


def bag_of_words(text: str) -> np.ndarray:
    """Each word adds its own (hashed) axis: a typo in a topic word loses the match."""
    vec = np.zeros(64)
    for word in text.lower().replace("?", " ").split():
        vec[int(hashlib.sha256(word.encode()).hexdigest(), 16) % 64] += 1.0
    return vec / max(np.linalg.norm(vec), 1e-9)


class BagOfWords:
    fingerprint = "bag-of-words-v1"

    def encode(self, texts: list[str], prompt_name: str | None = None) -> np.ndarray:
        return np.stack([bag_of_words(t) for t in texts]).astype(np.float32)


def write_parallel_task(folder: Path, crossing: bool = True) -> Path:
    """Parallel questions in de/en/zh; ``crossing=False``: each relevant only in its language (mono-only)."""
    (folder / "qrels").mkdir(parents=True)
    toml = (
        'name = "toy-parallel"\ntitle = "Toy parallel"\ndescription = "Parallel toy questions."\n'
        'languages = ["de", "en", "zh"]\nlicense = "CC0-1.0"\ncitation = "none"\n'
        'candidate_unit = "sentence"\n'
    )
    (folder / "task.toml").write_text(toml, encoding="utf-8")
    corpus, queries, qrels = [], [], []
    for lang in LANGS:
        for g, topic in enumerate(TOPICS):
            corpus.append({"_id": f"{lang}-c{g}", "text": f"{lang} answer {topic} {g}", "language": lang})
            queries.append(
                {"_id": f"{lang}-q{g}", "text": f"{lang} asks {topic}", "language": lang, "group": f"g{g}"}
            )
    for lang in LANGS:
        for g in range(len(TOPICS)):
            qrels += [(f"{lang}-q{g}", f"{other}-c{g}", 1) for other in LANGS if crossing or other == lang]
    for name, rows in (("corpus.jsonl", corpus), ("queries.jsonl", queries)):
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    lines = ["query-id\tcorpus-id\tscore", *("\t".join(map(str, r)) for r in qrels)]
    (folder / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def test_perturb_reports_paired_drops_equal_to_the_results(tmp_path: Path) -> None:
    from hybrid_plugin.stats.robustness import robustness_markdown, run_robustness, write_robustness

    task = write_parallel_task(tmp_path / "task")
    cfg = EvalConfig(task=str(task), cache_dir=str(tmp_path / "emb"), run_depth=0)
    out = tmp_path / "robustness"
    report = run_robustness(
        cfg, ["typo:0.5", "codeswitch:1"], out, seed=0, model=BagOfWords(), bootstraps=200, permutations=200
    )
    clean = json.loads(report.results["clean"].read_text(encoding="utf-8"))
    plain = evaluate(cfg, BagOfWords())
    assert clean["scores"] == plain.scores.model_dump()  # the clean run is a plain evaluation
    assert "query_perturbation" not in clean["provenance"]["config"]
    for name in ("typo:0.5", "codeswitch:1"):
        perturbed = json.loads(report.results[name].read_text(encoding="utf-8"))
        assert perturbed["provenance"]["config"]["query_perturbation"] == name
        pair = next(p for p in report.comparison.pairs if p.system == name)
        for key in ("mono_map", "multi_map"):
            diff = pair.measure(key).macro.difference.value
            assert diff == pytest.approx(perturbed["scores"][key] - clean["scores"][key], abs=1e-12)
    # code-switching at rate 1 swaps in the English question: English queries stay, the others change
    assert report.changed["codeswitch:1"] == {"changed": 16, "unchanged": 8}
    typo_pair = next(p for p in report.comparison.pairs if p.system == "typo:0.5")
    assert typo_pair.measure("multi_map").macro.difference.value < 0  # typos in topic words hurt
    text = robustness_markdown(report)
    assert "| **macro** |" in text and all(f"| {lang} |" in text for lang in LANGS)
    paths = write_robustness(report, out)
    written = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert written["results"]["clean"] == "clean/" + report.results["clean"].name  # relative, no machine path
    assert [s["files"] for s in written["comparison"]["systems"]] == [
        [written["results"][name]] for name in ("clean", "typo:0.5", "codeswitch:1")
    ]


def test_cli_refuses_a_bad_perturbation_in_one_line(tmp_path: Path, capsys) -> None:
    task = write_parallel_task(tmp_path / "task")
    code = main(["perturb", "--task", str(task), "--perturbations", "shout", "--out", str(tmp_path / "o")])
    assert_one_line_error(
        code, capsys.readouterr().err, "perturbation 'shout': expected one of typo, translit, codeswitch"
    )
    assert not (tmp_path / "o").exists()


def test_monolingual_tasks_get_no_code_switching(tmp_path: Path) -> None:
    from hybrid_plugin.stats.robustness import run_robustness

    task = write_parallel_task(tmp_path / "task", crossing=False)
    cfg = EvalConfig(task=str(task), cache_dir=str(tmp_path / "emb"), run_depth=0)
    with pytest.raises(UserError, match="codeswitch needs parallel questions; toy-parallel has none"):
        run_robustness(cfg, ["typo", "codeswitch"], tmp_path / "asked", model=BagOfWords(), bootstraps=10)
    assert not (tmp_path / "asked" / "typo-0.05").exists()  # refused before any perturbed run
    if not _has_uroman():  # the default includes translit
        with pytest.raises(UserError, match=r"needs uroman: pip install 'hybrid-plugin\[perturb\]'"):
            run_robustness(cfg, None, tmp_path / "default", model=BagOfWords())
        assert not (tmp_path / "default").exists()  # refused before the clean run
        return
    report = run_robustness(
        cfg, None, tmp_path / "default", model=BagOfWords(), bootstraps=50, permutations=50
    )
    assert [p.name for p in report.perturbations] == ["typo:0.05", "translit"]
    assert [pair.measure("mono_map") is not None for pair in report.comparison.pairs] == [True] * len(
        report.perturbations
    )


def _has_uroman() -> bool:
    import importlib.util

    return importlib.util.find_spec("uroman") is not None
