"""The public API (``import hybrid_plugin as hp``): its names, ``evaluate`` + ``save`` writing exactly the
CLI's files, ``load`` round-tripping them with the per-query file, ``compare`` and the task registry."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_taskdir import write_task

import hybrid_plugin as hp
from hybrid_plugin.cli import main
from hybrid_plugin.errors import UserError
from hybrid_plugin.evaluation.results import PerQueryNotFound

PLUGIN = """
import numpy as np

class Encoder:
    def __init__(self, width):
        self.width = width

    def encode(self, texts, prompt_name=None, batch_size=32):
        out = np.zeros((len(texts), self.width), dtype=np.float32)
        for i, t in enumerate(texts):
            for ch in t:
                out[i, ord(ch) % self.width] += 1.0
        return out

def make():
    return Encoder(16)

def other():
    return Encoder(5)
"""


@pytest.fixture
def task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The hand-made two-language task folder and a ``module:factory`` model the CLI can name too."""
    (tmp_path / "hp_api_plugin.py").write_text(PLUGIN, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("hp_api_plugin", None)
    importlib.invalidate_caches()
    yield write_task(tmp_path / "task")
    sys.modules.pop("hp_api_plugin", None)


def test_the_public_names_resolve_lazily():
    import hybrid_plugin.api as api

    assert set(hp.__all__) == {*api.__all__, "__version__"}
    for name in api.__all__:
        assert getattr(hp, name) is getattr(api, name), name
    assert set(api.__all__) <= set(dir(hp))
    with pytest.raises(AttributeError, match="no_such_name"):
        hp.no_such_name  # noqa: B018
    assert {"xquad-r", "mlqa-r", "tydi-goldp"} <= set(hp.tasks())
    assert hp.tasks()["xquad-r"].languages[:2] == ("ar", "de")


def test_import_hybrid_plugin_loads_no_submodule():
    """``import hybrid_plugin`` (the CLI's and the MTEB hook's first import) loads nothing else."""
    probe = (
        "import sys, hybrid_plugin; print(sorted(m for m in sys.modules if m.startswith('hybrid_plugin')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "['hybrid_plugin']"


def _comparable(path: Path) -> dict:
    """A results JSON without what differs between two runs of the same evaluation (times, start time)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    data.pop("timings")
    provenance = data.pop("provenance")
    provenance.pop("started")
    provenance["config"].pop("trec_out", None)  # the CLI records its --trec-out option
    return {**data, "provenance": provenance}


def test_evaluate_and_save_write_the_files_the_cli_writes(task: Path, tmp_path: Path, capsys) -> None:
    cli, cli_trec = tmp_path / "cli", tmp_path / "cli-trec"
    args = ["evaluate", "--task", str(task), "--model", "hp_api_plugin:make", "--no-cache"]
    assert main([*args, "--run-depth", "full", "--out", str(cli), "--trec-out", str(cli_trec)]) == 0
    wrote = capsys.readouterr().out.splitlines()[-1]

    ev = hp.evaluate(task, model="hp_api_plugin:make", use_cache=False, run_depth=None)
    assert isinstance(ev, hp.Evaluation) and ev.results.task == "tiny-pool"
    api, api_trec = tmp_path / "api", tmp_path / "api-trec"
    saved = ev.save(api, trec_out=api_trec)

    names = sorted(p.name for p in cli.iterdir())
    assert names == sorted(p.name for p in api.iterdir())
    assert [p.suffix for p in (saved.per_query, saved.results)] == [".parquet", ".json"]
    assert sorted(saved.plots) == ["heatmap", "rank_distance"]
    assert names == sorted(p.name for p in (saved.per_query, saved.results, *saved.plots.values()))
    assert (api / saved.per_query.name).read_bytes() == (cli / saved.per_query.name).read_bytes()
    for name in names:
        if name.endswith(".png"):
            assert (api / name).read_bytes() == (cli / name).read_bytes(), name
    assert _comparable(saved.results) == _comparable(cli / saved.results.name)
    assert sorted(p.name for p in saved.trec) == sorted(p.name for p in cli_trec.iterdir())
    assert len(saved.trec) == 12  # 6 settings: qrels and run each
    for path in saved.trec:
        assert path.read_bytes() == (cli_trec / path.name).read_bytes(), path.name
    # the CLI's last line is the saved files' summary, with its own folders
    assert wrote == saved.summary().replace(str(api_trec), str(cli_trec)).replace(str(api), str(cli))
    assert wrote.endswith(f"{cli_trec / '(12 files)'}")


def test_save_options_and_load_round_trip(task: Path, tmp_path: Path) -> None:
    ev = hp.evaluate(str(task), model="hp_api_plugin:make", use_cache=False, run_depth=0)
    bare = ev.save(tmp_path / "bare", per_query=False, plots=False, name="run1", extra={"note": "x"})
    assert sorted(p.name for p in (tmp_path / "bare").iterdir()) == ["run1.json"]
    assert bare.per_query is None and bare.plots == {} and bare.trec == []
    loaded = hp.load(bare.results)
    assert loaded.per_query is None and loaded.model_extra["note"] == "x"
    with pytest.raises(PerQueryNotFound, match="no per-query file recorded"):
        loaded.per_query_table()
    with pytest.raises(UserError, match="run depth"):
        ev.save(tmp_path / "t", trec_out=tmp_path / "trec")  # run depth 0: no runs for TREC files

    saved = ev.save(tmp_path / "full")
    loaded = hp.load(saved.results)
    assert isinstance(loaded, hp.Results) and loaded.source == saved.results
    written = ev.results.model_copy(update={"per_query": loaded.per_query})
    assert loaded == hp.Results.from_json(json.loads(written.dumps()))  # JSON has lists, not tuples
    assert loaded.per_query.file == saved.per_query.name
    table = loaded.per_query_table()
    assert table.num_rows == loaded.per_query.rows == sum(s.queries for s in ev.results.settings.values())
    assert set(table.column("query_id").to_pylist()) == {"qd", "qe"}
    saved.per_query.write_bytes(saved.per_query.read_bytes() + b"\0")  # changed after evaluation
    with pytest.raises(PerQueryNotFound, match="does not have the sha256") as err:
        hp.load(saved.results)
    assert err.value.reason == "changed"
    saved.per_query.unlink()
    with pytest.raises(PerQueryNotFound, match="is missing beside it"):
        hp.load(saved.results)


def test_compare_takes_files_and_loaded_results(task: Path, tmp_path: Path) -> None:
    a = hp.evaluate(task, model="hp_api_plugin:make", use_cache=False, run_depth=0).save(tmp_path / "a")
    b = hp.evaluate(task, model="hp_api_plugin:other", use_cache=False, run_depth=0).save(tmp_path / "b")
    options = {"permutations": 64, "bootstraps": 64}
    by_file = hp.compare(a.results, b.results, **options)
    by_object = hp.compare(hp.load(a.results), str(b.results), **options)
    assert isinstance(by_file, hp.Comparison)
    assert by_file.to_json() == by_object.to_json()
    (pair,) = by_file.pairs
    assert [m.key for m in pair.measures][:3] == ["mono_map", "cross_map", "multi_map"]
    with pytest.raises(UserError, match="save these results"):
        hp.compare(hp.evaluate(task, model="hp_api_plugin:make", use_cache=False).results, a.results)


def test_evaluate_refuses_an_unknown_option(task: Path) -> None:
    with pytest.raises(TypeError, match="langauges"):
        hp.evaluate(task, model="hp_api_plugin:make", langauges="de")
