"""Fault scan (issue 25): run each fault scenario as a fresh CLI process and count the outcomes.

Every scenario runs ``python -m hybrid_plugin ...`` in a temporary folder of its own (its own
embedding cache, data folder, home and plug-in modules), and its outcome is judged from the outside
only, so the same script measures the code before and after the fixes:

- ``clean``: exit code 2, exactly one non-empty stderr line (progress bars aside), no traceback;
- ``traceback``: a ``Traceback`` in stderr or exit code 1;
- ``silent_wrong``: exit code 0 but the scenario's check finds the result wrong (or, for a few
  scenarios, a failing command left its output in a wrong state);
- ``data_loss``: a file or folder that existed before the command and lies outside its output is
  gone or changed;
- ``correct``: exit code 0 and the check passes;
- ``timeout``: still running after ``--timeout`` seconds (killed with its process group);
- ``messy_error``: any other failure (exit code 2 with several lines, a signal, another code);
- ``skipped`` (something the scenario needs is not installed) and ``setup_error`` (its setup failed;
  the scan goes on).

A scenario may run several commands (``leaderboard submit`` then ``render``): the first one that fails
is judged, else the last. Nothing here reads error wording: only exit codes, line counts, tracebacks,
files and numbers. No real model is used: plug-ins wrap ``benchmarks.hash_encoder``; the few
scenarios that need a model folder (training, the fingerprint memo, ``mteb run``) share a tiny random
BERT built once per scan with the test suite's ``build_tiny_model``.

    python benchmarks/fault_scan.py [--only ID ...] [--out results.json] [--timeout 90]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import importlib.util
import json
import math
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ISSUE_CLASSES = ("data_loss", "silent_wrong", "traceback", "security")
OUTCOMES = (
    "clean", "correct", "traceback", "silent_wrong", "data_loss", "timeout", "messy_error",
    "setup_error", "skipped",
)  # fmt: skip
#: a tqdm progress bar line ("encoding queries:  40%|####  | 4/10 [...]"): not an error line
PROGRESS = re.compile(r"\d+%\|.*\|\s*\d+/\d+|\|\s*\d+/\d+ \[")
LANGS = ("de", "en")


class SetupError(Exception):
    """A scenario's setup failed: recorded as ``setup_error``, the scan goes on."""


@dataclass(frozen=True)
class Run:
    """One finished (or killed) command."""

    argv: list[str]
    code: int | None
    stdout: str
    stderr: str
    timed_out: bool = False

    @property
    def error_lines(self) -> list[str]:
        return [ln for ln in self.stderr.splitlines() if ln.strip() and not PROGRESS.search(ln)]


# ---------------------------------------------------------------------------------------------
# running commands


def _preexec(memory_gb: float | None) -> Callable[[], None] | None:
    if memory_gb is None:
        return None
    limit = int(memory_gb * 2**30)
    return lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def run_command(
    cmd: list[str],
    cwd: Path,
    env: dict[str, str],
    timeout: float,
    memory_gb: float | None = None,
) -> Run:
    """Run ``cmd`` in its own process group; on timeout kill the whole group (recursive plug-ins)."""
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=True,
        preexec_fn=_preexec(memory_gb),
    )
    try:
        out, err = proc.communicate(timeout=timeout)
        return Run(cmd, proc.returncode, out, err)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return Run(cmd, None, out, err, timed_out=True)


def base_env(root: Path) -> dict[str, str]:
    """A hermetic environment: this checkout and the scenario's plug-ins importable, its own cache,
    data folder and home (no user cache, no network)."""
    for sub in ("plugins", "cache", "data", "home"):
        (root / sub).mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HYBRID_PLUGIN", "PYTHON"))}
    env.update(
        PYTHONPATH=os.pathsep.join([str(root / "plugins"), str(REPO)]),
        HYBRID_PLUGIN_CACHE=str(root / "cache"),
        HYBRID_PLUGIN_DATA=str(root / "data"),
        HOME=str(root / "home"),
        MPLCONFIGDIR=str(root / "home" / "mpl"),
        MTEB_CACHE=str(root / "home" / "mteb"),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        MPLBACKEND="Agg",
        TOKENIZERS_PARALLELISM="false",
        TRANSFORMERS_VERBOSITY="error",  # transformers' load reports about the tiny model are not ours
    )
    return env


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "hybrid_plugin", *args]


# ---------------------------------------------------------------------------------------------
# scenario context: the temporary folder, shared fixtures, setup helpers


@dataclass
class Shared:
    """Fixtures built once per scan, on first use: the tiny model, reference results."""

    root: Path
    datasets: Path | None
    timeout: float
    _built: dict[str, Path] = field(default_factory=dict)

    def _build(self, name: str, make: Callable[[Path], None]) -> Path:
        if name not in self._built:
            folder = self.root / name
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            try:
                make(folder)
            except SetupError:
                self._built[name] = Path("/nonexistent")  # fail once, not per scenario
                raise
            self._built[name] = folder
        if not self._built[name].exists():
            raise SetupError(f"shared fixture {name} could not be built")
        return self._built[name]

    def reference(self) -> Path:
        """Results JSON of the hash encoder on the standard tiny folder (what a correct run gives)."""

        def make(folder: Path) -> None:
            write_task_folder(folder / "tiny")
            setup_cli(folder, self.timeout, "evaluate", "--task", "tiny", "--model", HASH, "--out", "res")

        return results_json(self._build("reference", make) / "res")

    def pair(self) -> Path:
        """Two results (hash encoder, 384-d and 64-d) on a 60-group, 3-language folder: compare's input."""

        def make(folder: Path) -> None:
            write_task_folder(folder / "mid", groups=60, langs=("de", "en", "zh"), name="mid")
            write_plugin(folder, "hash64", HASH64)
            for out, model in (("a", HASH), ("b", "hash64:factory")):
                setup_cli(folder, self.timeout, "evaluate", "--task", "mid", "--model", model, "--out", out)

        return self._build("pair", make)

    def tiny_model(self) -> Path:
        """A 2-layer random BERT (tokenizer trained on the tiny folders' and training texts)."""

        def make(folder: Path) -> None:
            texts = [t for rows in tiny_rows(60, LANGS + ("zh",)) for t in (r["text"] for r in rows)]
            texts += [r["query"] for r in train_rows()] + [r["passage"] for r in train_rows()]
            (folder / "texts.json").write_text(json.dumps(texts), encoding="utf-8")
            code = f"""
                import json, sys
                from pathlib import Path
                sys.path.insert(0, {str(REPO / "tests")!r})
                from conftest import build_tiny_model
                texts = json.loads(Path("texts.json").read_text(encoding="utf-8"))
                build_tiny_model(Path("built"), texts)
            """
            setup_python(folder, code, 600)

        return self._build("tiny-model", make) / "built" / "model"

    def data(self) -> Path:
        if self.datasets is None or not (self.datasets / "xquad-r").is_dir():
            raise SetupError("no datasets folder with xquad-r (set HYBRID_PLUGIN_DATA or --datasets)")
        return self.datasets


@dataclass
class Ctx:
    """What a scenario's setup and checks see: its folder and the shared fixtures."""

    root: Path
    shared: Shared
    timeout: float
    notes: dict = field(default_factory=dict)

    def cli(self, *args: str, env: dict[str, str] | None = None) -> Run:
        return setup_cli(self.root, self.timeout, *args, env=env)


def setup_cli(root: Path, timeout: float, *args: str, env: dict[str, str] | None = None) -> Run:
    """A setup command: must exit 0, else the scenario is a ``setup_error``."""
    run = run_command(cli(*args), root, env or base_env(root), max(timeout, 300))
    if run.code != 0:
        last = (run.error_lines or ["(no stderr)"])[-1][:200]
        raise SetupError(f"setup command {' '.join(args[:3])} exited {run.code}: {last}")
    return run


def setup_python(root: Path, code: str, timeout: float) -> Run:
    run = run_command([sys.executable, "-c", textwrap.dedent(code)], root, base_env(root), timeout)
    if run.code != 0:
        raise SetupError(f"setup script exited {run.code}: {(run.error_lines or [''])[-1][:200]}")
    return run


# ---------------------------------------------------------------------------------------------
# tiny inputs


HASH = "benchmarks.hash_encoder:factory"
HASH64 = """
from benchmarks.hash_encoder import HashEncoder, hash_embed

class Hash64(HashEncoder):
    name = "hash-encoder-64"
    fingerprint = "fault scan hash 64"

    def encode(self, texts, prompt_name=None, **_):
        return hash_embed(list(texts), 64)

def factory():
    return Hash64()
"""


def plugin_source(encode_body: str, name: str = "scan-plugin", extra: str = "") -> str:
    """A plug-in module whose encoder runs ``encode_body`` (``texts`` given, ``hash_embed`` at hand)."""
    body = textwrap.indent(textwrap.dedent(encode_body).strip(), " " * 8)
    return (
        "import numpy as np\nfrom benchmarks.hash_encoder import hash_embed\n\n"
        f"class Encoder:\n    name = {name!r}\n    similarity = 'cosine'\n\n"
        "    def __init__(self):\n        self.buffer = None\n\n"
        f"    def encode(self, texts, prompt_name=None, **_):\n        texts = list(texts)\n{body}\n\n"
        f"def factory():\n    return Encoder()\n{extra}"
    )


def write_plugin(root: Path, module: str, source: str) -> None:
    (root / "plugins").mkdir(exist_ok=True)
    (root / "plugins" / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")


def tiny_rows(groups: int, langs: tuple[str, ...], ids: Callable[[str], str] = str) -> list[list[dict]]:
    """Corpus and query rows of a parallel pool: one answer and one question per group and language."""
    corpus = [
        {
            "_id": ids(f"d{lang}{g}"),
            "text": f"{lang} answer {g} about topic {g * 7 % 11} and more",
            "language": lang,
        }
        for g in range(groups)
        for lang in langs
    ]
    queries = [
        {"_id": ids(f"q{lang}{g}"), "text": f"{lang} question {g} on topic {g * 7 % 11}?", "language": lang,
         "group": f"g{g}"}
        for g in range(groups)
        for lang in langs
    ]  # fmt: skip
    return [corpus, queries]


def write_task_folder(
    folder: Path,
    groups: int = 6,
    langs: tuple[str, ...] = LANGS,
    name: str = "tiny",
    title: str = "Tiny",
    description: str = "Parallel questions.",
    ids: Callable[[str], str] = str,
    codes: dict[str, str] | None = None,
) -> Path:
    """A task folder (docs/task-folders.md): every question relevant to its group's answer in every
    language. ``codes`` renames language codes (ISO 639-3); ``ids`` rewrites every id."""
    codes = codes or {}
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    toml_langs = ", ".join(json.dumps(codes.get(lang, lang)) for lang in langs)
    (folder / "task.toml").write_text(
        f"name = {json.dumps(name)}\ntitle = {json.dumps(title)}\ndescription = {json.dumps(description)}\n"
        f'languages = [{toml_langs}]\nlicense = "CC0-1.0"\ncitation = "none"\ncandidate_unit = "sentence"\n',
        encoding="utf-8",
    )
    corpus, queries = tiny_rows(groups, langs, ids)
    for row in corpus + queries:
        row["language"] = codes.get(row["language"], row["language"])
    for file, rows in (("corpus.jsonl", corpus), ("queries.jsonl", queries)):
        (folder / file).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    qrels = [f"{ids(f'q{a}{g}')}\t{ids(f'd{b}{g}')}\t1" for g in range(groups) for a in langs for b in langs]
    (folder / "qrels" / "test.tsv").write_text("\n".join(qrels) + "\n", encoding="utf-8")
    return folder


def train_rows() -> list[dict]:
    """40 parallel items in de and en, four pairs each (the jsonl training format)."""
    return [
        {"id": f"i{i}", "query_lang": a, "query": f"{a} training question {i} about {i % 5}",
         "passage_lang": b, "passage": f"{b} training passage {i} says {i % 5} things"}
        for i in range(40)
        for a in LANGS
        for b in LANGS
    ]  # fmt: skip


def write_train(root: Path) -> str:
    (root / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train_rows()), encoding="utf-8")
    return "jsonl:train.jsonl"


def train_args(ctx: Ctx, output: str, *extra: str) -> list[str]:
    model = ctx.shared.tiny_model()
    return [
        "train", "--train-data", write_train(ctx.root), "--output", output, "--base-model", str(model),
        "--batch-size", "4", "--max-steps", "2", "--max-seq-length", "32", "--no-progress", *extra,
    ]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# checks (exit code 0 given): None = correct, else why the result is wrong


def results_json(folder: Path) -> Path:
    found = sorted(folder.glob("*.json"))
    if len(found) != 1:
        raise SetupError(f"expected one results JSON in {folder.name}, found {len(found)}")
    return found[0]


def numbers(path: Path) -> dict[str, float]:
    """Every number of the results' measure sections, by its path."""
    data = json.loads(path.read_text(encoding="utf-8"))
    flat: dict[str, float] = {}

    def walk(prefix: str, x: object) -> None:
        if isinstance(x, dict):
            for k, v in x.items():
                walk(f"{prefix}.{k}", v)
        elif isinstance(x, (int, float)) and not isinstance(x, bool):
            flat[prefix] = float(x)

    for key in ("scores", "per_language", "settings", "standard_measures", "bias"):
        walk(key, data.get(key))
    return flat


def differs(got: Path, want: Path, tol: float = 1e-6) -> str | None:
    a, b = numbers(got), numbers(want)
    if a.keys() != b.keys():
        return f"results have other fields than the reference ({len(a)} vs {len(b)} numbers)"
    bad = [k for k in a if not (math.isclose(a[k], b[k], rel_tol=tol, abs_tol=tol))]
    if bad:
        k = bad[0]
        return f"{len(bad)} of {len(a)} numbers differ from the reference, e.g. {k} {a[k]:.6g} vs {b[k]:.6g}"
    return None


def matches_reference(out: str) -> Callable[[Ctx, Run], str | None]:
    def check(ctx: Ctx, run: Run) -> str | None:
        return differs(results_json(ctx.root / out), ctx.shared.reference())

    return check


def refused(ctx: Ctx, run: Run) -> str | None:
    """For inputs that have no right answer: exit 0 is wrong."""
    return "accepted (exit 0) an input that must be refused"


def nothing_new_under(*folders: str) -> Callable[[Ctx, Run], str | None]:
    """Exit 0 is right only if nothing was written inside these folders (e.g. the data folder)."""

    def check(ctx: Ctx, run: Run) -> str | None:
        before = ctx.notes.get("before", set())
        new = [p for f in folders for p in paths_under(ctx.root / f) if p not in before]
        return f"wrote {len(new)} path(s) inside {'/'.join(folders)}" if new else None

    return check


def paths_under(folder: Path) -> set[Path]:
    return set(folder.rglob("*")) if folder.is_dir() else set()


# ---------------------------------------------------------------------------------------------
# scenarios


@dataclass(frozen=True)
class Scenario:
    """One fault case: how to set it up, the commands, and what a right answer is."""

    id: str
    issue_class: str  # the class the issue files it under
    steps: Callable[[Ctx], list[list[str]]]  # CLI argv lists, run in order
    setup: Callable[[Ctx], None] | None = None
    check: Callable[[Ctx, Run], str | None] = refused  # judged on exit 0
    after: Callable[[Ctx, Run], str | None] | None = None  # judged on any exit (the output's state)
    guard: tuple[str, ...] = ()  # folders (relative) whose existing files must survive
    skip: Callable[[], str | None] | None = None
    cleanup: Callable[[Path], None] | None = None  # after judging, e.g. make files removable again
    memory_gb: float | None = None
    timeout: float | None = None
    note: str = ""


def fixed(*steps: list[str]) -> Callable[[Ctx], list[list[str]]]:
    return lambda ctx: [list(s) for s in steps]


def evaluate(module: str, *extra: str, out: str = "res", task: str = "tiny") -> list[str]:
    return ["evaluate", "--task", task, "--model", module, "--out", out, *extra]


def plugin_setup(module: str, source: str, folder: Callable[[Path], Path] = write_task_folder):
    def setup(ctx: Ctx) -> None:
        folder(ctx.root / "tiny")
        write_plugin(ctx.root, module, source)

    return setup


def needs_module(name: str) -> Callable[[], str | None]:
    return lambda: None if importlib.util.find_spec(name) else f"needs {name} (not installed)"


# -- data loss ------------------------------------------------------------------------------------


def two_models_cached(ctx: Ctx) -> None:
    write_task_folder(ctx.root / "tiny")
    write_plugin(ctx.root, "hash64", HASH64)
    ctx.cli(*evaluate(HASH, out="r1"))
    ctx.cli(*evaluate("hash64:factory", out="r2"))


def hex_user_folder(ctx: Ctx) -> None:
    """A user's folder whose sub-folders merely have hex names (like a cache's), none of our files."""
    for i, name in enumerate(("0123456789abcdef0123456789abcdef", "deadbeefdeadbeefdeadbeefdeadbeef")):
        sub = ctx.root / "mine" / name / "a1b2c3d4e5f6"
        sub.mkdir(parents=True)
        (sub / "notes.txt").write_text(f"my notes {i}\n", encoding="utf-8")
        (sub / "photo.npz").write_bytes(b"not an npz of ours")


def hand_task_folder(comment_only: bool) -> Callable[[Ctx], None]:
    """A hand-written task folder whose task.toml merely mentions [exported_from]."""

    def setup(ctx: Ctx) -> None:
        write_task_folder(ctx.root / "src")
        hand = write_task_folder(ctx.root / "hand", name="hand", title="My hand-made pool")
        text = (hand / "task.toml").read_text(encoding="utf-8")
        if comment_only:
            text += "# unlike [exported_from] tables, this folder was written by hand\n"
        else:
            text += '\n[exported_from]\nnote = "my own notes, not an export"\n'
        (hand / "task.toml").write_text(text, encoding="utf-8")

    return setup


def fake_beir_export(ctx: Ctx) -> None:
    """A user's folder shaped like a BEIR export (manifest naming its folders) with the user's files."""
    write_task_folder(ctx.root / "src")
    folder = ctx.root / "mine" / "de"
    (folder / "de-qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text('{"_id": "x", "text": "my own corpus"}\n', encoding="utf-8")
    (folder / "de-qrels" / "test.tsv").write_text("q\tx\t1\n", encoding="utf-8")
    manifest = {"task": "mine", "hybrid_plugin": "0", "settings": {"de": {"folder": "de"}}}
    (ctx.root / "mine" / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


DATA_LOSS = [
    Scenario("cache-clear-model-empty", "data_loss", fixed(["cache", "clear", "--model", ""]),
             two_models_cached, check=lambda c, r: None, guard=("cache",),
             note="`cache clear --model ''` must clear no model (or refuse)"),
    Scenario("cache-clear-model-blank", "data_loss", fixed(["cache", "clear", "--model", " "]),
             two_models_cached, check=lambda c, r: None, guard=("cache",), note="sibling: a blank name"),
    Scenario("cache-clear-hex-user-folder", "data_loss", fixed(["cache", "clear", "--cache-dir", "mine"]),
             hex_user_folder, check=lambda c, r: None, guard=("mine",)),
    Scenario("cache-prune-hex-user-folder", "data_loss", fixed(["cache", "prune", "--cache-dir", "mine"]),
             hex_user_folder, check=lambda c, r: None, guard=("mine",), note="sibling: prune"),
    Scenario("export-task-force-hand-written", "data_loss",
             fixed(["export", "task", "--task", "src", "--out", "hand", "--force"]),
             hand_task_folder(False), guard=("hand",)),
    Scenario("export-task-force-comment-mention", "data_loss",
             fixed(["export", "task", "--task", "src", "--out", "hand", "--force"]),
             hand_task_folder(True), guard=("hand",), note="sibling: [exported_from] only in a comment"),
    Scenario("export-beir-force-look-alike", "data_loss",
             fixed(["export", "beir", "--task", "src", "--out", "mine", "--force"]),
             fake_beir_export, guard=("mine",), note="sibling: a hand-made manifest.json"),
]  # fmt: skip


# -- silent wrong ---------------------------------------------------------------------------------


def reorder_shards(ctx: Ctx) -> None:
    """Evaluate once (fills the cache), then reverse the rows of every shard's embeddings."""
    write_task_folder(ctx.root / "tiny")
    ctx.cli(*evaluate(HASH, out="first"))
    code = """
        import numpy as np
        from pathlib import Path
        for shard in sorted(Path("cache").rglob("*.npz")):
            with np.load(shard) as z:
                arrays = {k: z[k] for k in z.files}
            arrays["emb"] = arrays["emb"][::-1].copy()
            with open(shard, "wb") as fh:
                np.savez(fh, **arrays)
    """
    setup_python(ctx.root, code, 120)


def inf_per_query(ctx: Ctx) -> None:
    """b's per-query file holds inf in one AP; its JSON agrees (score and sha256 updated)."""
    pair = ctx.shared.pair()
    for side in ("a", "b"):
        shutil.copytree(pair / side, ctx.root / side)
    code = """
        import hashlib, json
        from pathlib import Path
        import pyarrow as pa, pyarrow.parquet as pq
        res = next(Path("b").glob("*.json"))
        data = json.loads(res.read_text())
        pq_path = Path("b") / data["per_query"]["file"]
        table = pq.read_table(pq_path)
        ap = table.column("ap").to_pylist()
        ap[0] = float("inf")
        kind = table.column("kind").to_pylist()[0]
        table = table.set_column(table.column_names.index("ap"), "ap", pa.array(ap, pa.float64()))
        pq.write_table(table, pq_path)
        data["scores"][f"{kind}_map"] = float("inf")
        data["per_query"]["sha256"] = hashlib.sha256(pq_path.read_bytes()).hexdigest()
        res.write_text(json.dumps(data))
    """
    setup_python(ctx.root, code, 120)


def strict_finite_json(ctx: Ctx, run: Run) -> str | None:
    def bad(token: str) -> float:
        raise ValueError(token)

    try:
        json.loads(run.stdout, parse_constant=bad)
    except ValueError as err:
        return f"accepted inf: output is not strict JSON ({str(err)[:60]})"
    return "accepted a per-query file holding inf"


def trec_fields(ctx: Ctx, run: Run) -> str | None:
    """Every TREC qrels line has 4 whitespace-separated fields, every run line 6."""
    files = sorted(p for p in (ctx.root / "trec").rglob("*") if p.is_file())
    if not files:
        return "no TREC files written"
    for path in files:
        want = 4 if "qrel" in path.name else 6
        for n, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
            if line and len(line.split()) != want:
                return f"{path.name} line {n}: {len(line.split())} fields, not {want}"
    return None


def copy_xquad(ctx: Ctx) -> None:
    shutil.copytree(ctx.shared.data() / "xquad-r", ctx.root / "data" / "xquad-r")
    (ctx.root / "datalink").symlink_to("data")
    ctx.notes["before"] = paths_under(ctx.root / "data")


EXPORT_ARGS = {
    "beir": ["--languages", "de"],
    "task": ["--languages", "de"],
    "mteb": ["--languages", "de,en"],
}
OUT_IN_DATA = {"direct": "data/export", "dotdot": "data/xquad-r/../export", "symlink": "datalink/export"}


def export_in_data(kind: str, how: str) -> Scenario:
    argv = ["export", kind, "--task", "xquad-r", *EXPORT_ARGS[kind], "--data-dir", "data"]
    return Scenario(
        f"export-{kind}-out-in-data-{how}", "silent_wrong", fixed([*argv, "--out", OUT_IN_DATA[how]]),
        copy_xquad, check=nothing_new_under("data"), guard=("data",),
    )  # fmt: skip


def train_in_data(ctx: Ctx) -> None:
    copy_xquad(ctx)
    ctx.notes["steps"] = [train_args(ctx, "data/model")]


def readonly_export(ctx: Ctx) -> None:
    """A previous BEIR export (de) whose contents cannot be removed: read-only permissions, or for
    root (whom permissions do not stop) the immutable attribute."""
    write_task_folder(ctx.root / "src")
    ctx.cli("export", "beir", "--task", "src", "--languages", "de", "--out", "exp")
    ctx.notes["old"] = tree(ctx.root / "exp")
    inside = sorted((ctx.root / "exp").rglob("*"), reverse=True)
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", *map(str, inside)], check=True, capture_output=True)
    else:
        for path in [*inside, ctx.root / "exp"]:
            path.chmod(0o555 if path.is_dir() else 0o444)


def writable_again(root: Path) -> None:
    """Undo :func:`readonly_export` wherever the export ended up (so the scan folder can be removed)."""
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-R", "-i", str(root)], capture_output=True)
    subprocess.run(["chmod", "-R", "u+w", str(root)], capture_output=True)


def readonly_export_state(ctx: Ctx, run: Run) -> str | None:
    leftovers = [p.name for p in ctx.root.iterdir() if p.name.startswith(".exp.")]
    if leftovers:
        return f"left {', '.join(leftovers)} beside the export"
    if run.code != 0 and tree(ctx.root / "exp") != ctx.notes["old"]:
        return f"exit {run.code}, yet the export at --out was replaced"
    return None


def muse_iso3(ctx: Ctx) -> None:
    write_task_folder(ctx.root / "tiny", codes={"de": "deu", "en": "eng"})


def memo_setup(ctx: Ctx) -> None:
    """Evaluate a model folder, rewrite its weights in place with the mtime put back, and evaluate the
    rewritten model in a fresh cache (the reference)."""
    write_task_folder(ctx.root / "tiny")
    shutil.copytree(ctx.shared.tiny_model(), ctx.root / "model")
    ctx.cli(*evaluate("./model", out="first"))
    code = """
        import json, os, struct
        from pathlib import Path
        import numpy as np
        path = next(Path("model").rglob("model.safetensors"))
        st = os.stat(path)
        with open(path, "r+b") as fh:  # in place: same inode, same size
            (n,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(n))
            name = max((k for k in header if k != "__metadata__"),
                       key=lambda k: header[k]["data_offsets"][1] - header[k]["data_offsets"][0])
            assert header[name]["dtype"] == "F32"
            start, end = header[name]["data_offsets"]
            fh.seek(8 + n + start)
            values = np.frombuffer(fh.read(end - start), dtype="<f4")
            fh.seek(8 + n + start)
            fh.write(values[::-1].tobytes())  # the largest tensor's values reversed: other weights
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert os.stat(path).st_ino == st.st_ino and os.stat(path).st_size == st.st_size
    """
    setup_python(ctx.root, code, 120)
    env = base_env(ctx.root)
    env["HYBRID_PLUGIN_CACHE"] = str(ctx.root / "fresh-cache")
    ctx.cli(*evaluate("./model", out="reference"), env=env)


def memo_check(ctx: Ctx, run: Run) -> str | None:
    return differs(results_json(ctx.root / "res"), results_json(ctx.root / "reference"))


def finite_weights(ctx: Ctx, run: Run) -> str | None:
    code = """
        import numpy as np
        from pathlib import Path
        from safetensors.numpy import load_file
        n = sum(int((~np.isfinite(v)).sum()) for p in Path("model").rglob("*.safetensors")
                for v in load_file(str(p)).values())
        print(n)
    """
    n = int(setup_python(ctx.root, code, 120).stdout.split()[-1])
    return f"saved a model with {n} non-finite weights" if n else None


SCALE = "return hash_embed(texts) * np.float32({})"
BUFFER = """
emb = hash_embed(texts)
if self.buffer is None or len(self.buffer) < len(emb):
    self.buffer = np.empty((max(len(emb), 64), emb.shape[1]), dtype=np.float32)
self.buffer[: len(emb)] = emb
return self.buffer[: len(emb)]
"""


def whitespace_ids(sep: str) -> Callable[[Path], Path]:
    """The tiny folder plus one unjudged candidate per language whose id holds ``sep`` (a qrels line
    cannot hold a tab or newline id, a corpus record can)."""

    def write(folder: Path) -> Path:
        write_task_folder(folder)
        rows = [{"_id": f"x{sep}{lang}", "text": f"{lang} distractor", "language": lang} for lang in LANGS]
        with open(folder / "corpus.jsonl", "a", encoding="utf-8") as fh:
            fh.write("".join(json.dumps(r) + "\n" for r in rows))
        return folder

    return write


SILENT_WRONG = [
    Scenario("encoder-reuses-buffer", "silent_wrong", fixed(evaluate("buf:factory", "--batch-size", "4")),
             plugin_setup("buf", plugin_source(BUFFER)), check=matches_reference("res")),
    Scenario("embeddings-scaled-1e25", "silent_wrong", fixed(evaluate("big:factory")),
             plugin_setup("big", plugin_source(SCALE.format("1e25"))), check=matches_reference("res")),
    Scenario("embeddings-scaled-1e-30", "silent_wrong", fixed(evaluate("small:factory")),
             plugin_setup("small", plugin_source(SCALE.format("1e-30"))), check=matches_reference("res")),
    Scenario("embeddings-scaled-1e20", "silent_wrong", fixed(evaluate("mid:factory")),
             plugin_setup("mid", plugin_source(SCALE.format("1e20"))), check=matches_reference("res"),
             note="sibling: squares overflow float32 at 1e20"),
    Scenario("embeddings-n-by-0", "silent_wrong", fixed(evaluate("empty:factory")),
             plugin_setup("empty", plugin_source("return np.zeros((len(texts), 0), np.float32)"))),
    Scenario("cache-shard-rows-reordered", "silent_wrong", fixed(evaluate(HASH)), reorder_shards,
             check=matches_reference("res")),
    Scenario("compare-inf-per-query", "silent_wrong",
             fixed(["compare", "a/mid__hash-encoder-384__sentence.json",
                    "b/mid__hash-encoder-64__sentence.json", "--format", "json"]),
             inf_per_query, check=strict_finite_json),
    *(Scenario(f"trec-out-id-with-{name}", "silent_wrong",
               fixed(evaluate(HASH, "--trec-out", "trec", "--run-depth", "full")),
               plugin_setup("unused", "", whitespace_ids(sep)), check=trec_fields)
      for name, sep in (("space", " "), ("tab", "\t"), ("newline", "\n"))),
    *(export_in_data(kind, how) for kind in ("beir", "task", "mteb") for how in OUT_IN_DATA),
    Scenario("train-output-in-data", "silent_wrong", lambda ctx: ctx.notes["steps"], train_in_data,
             check=nothing_new_under("data"), guard=("data",)),
    Scenario("export-beir-force-read-only", "silent_wrong",
             fixed(["export", "beir", "--task", "src", "--languages", "de,en", "--out", "exp", "--force"]),
             readonly_export, check=lambda c, r: None, after=readonly_export_state, cleanup=writable_again,
             note="root runs it with the immutable attribute, as permissions do not stop root"),
    Scenario("muse-iso-639-3-folder", "silent_wrong", fixed(evaluate("muse")), muse_iso3,
             check=lambda c, r: None, skip=needs_module("tensorflow_hub")),
    Scenario("train-diverges-huge-learning-rate", "silent_wrong",
             lambda ctx: [train_args(ctx, "model", "--learning-rate", "1e12", "--max-steps", "3")],
             check=finite_weights),
    Scenario("fingerprint-memo-mtime-restored", "silent_wrong", fixed(evaluate("./model")), memo_setup,
             check=memo_check),
]  # fmt: skip


# -- tracebacks -----------------------------------------------------------------------------------

BAD_PLUGINS = {
    "factory-raises": "def factory():\n    raise RuntimeError('model weights not found')\n",
    "factory-returns-string": "def factory():\n    return 'an encoder'\n",
    "factory-returns-none": "def factory():\n    return None\n",
    "factory-needs-argument": "def factory(path):\n    return path\n",
    "module-syntax-error": "def factory(:\n    pass\n",
    "module-import-error": "import hp_no_such_dependency_xyz\n\ndef factory():\n    return None\n",
    "encode-raises": plugin_source("raise ValueError('tokenizer failed')"),
    "encode-generator": plugin_source("return (row for row in hash_embed(texts))"),
    "encode-ragged": plugin_source("return [[0.5] * (i % 3 + 1) for i in range(len(texts))]"),
    "encode-strings": plugin_source("return ['vector' for _ in texts]"),
    "encode-one-row-short": plugin_source("return hash_embed(texts)[:-1]"),
    "encode-1d": plugin_source("return hash_embed(texts)[:, 0]"),
    "factory-calls-cli": (
        "from hybrid_plugin.cli import main\n\ndef factory():\n"
        "    return main(['evaluate', '--task', 'tiny', '--model', 'plug:factory', '--out', 'inner'])\n"
    ),
}
#: a plug-in that yields the right vectors may be accepted; the others have no right answer
PLUGIN_CHECKS = {"encode-generator": matches_reference("res")}


def deep_json(ctx: Ctx) -> None:
    pair = ctx.shared.pair()
    shutil.copytree(pair / "a", ctx.root / "a")
    (ctx.root / "deep.json").write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")


def pair_copy(ctx: Ctx) -> None:
    pair = ctx.shared.pair()
    for side in ("a", "b"):
        shutil.copytree(pair / side, ctx.root / side)


def sparse_per_query(ctx: Ctx) -> None:
    """b's per-query file replaced by a 20 GB sparse file (no disk used)."""
    pair_copy(ctx)
    target = next((ctx.root / "b").glob("*.parquet"))
    target.unlink()
    with open(target, "wb") as fh:
        fh.truncate(20 * 10**9)


def checkpoint_rng(ctx: Ctx) -> None:
    """Checkpoints of a 4-step run whose rng_state.pth holds an object weights_only will not load."""
    args = train_args(ctx, "first", "--max-steps", "4", "--save-steps", "2")
    code = f"""
        import json, random, shutil, sys
        from fractions import Fraction
        from pathlib import Path
        import numpy as np, torch
        import hybrid_plugin.training.trainer as trainer
        from hybrid_plugin.cli import main
        trainer.shutil.rmtree = lambda *a, **kw: None  # keep the checkpoints, as a killed run would
        code = main({args!r})
        assert code == 0, code
        shutil.copytree("first.checkpoints", "model.checkpoints")
        for rng in Path("model.checkpoints").rglob("rng_state*.pth"):
            torch.save({{"python": random.getstate(), "numpy": np.random.get_state(),
                        "cpu": torch.get_rng_state(), "extra": Fraction(1, 3)}}, rng)
            marker = rng.parent / "hybrid-plugin-checkpoint.json"  # consistent, as a copied checkpoint's
            record = json.loads(marker.read_text())
            record["files"][rng.name] = rng.stat().st_size
            marker.write_text(json.dumps(record))
    """
    setup_python(ctx.root, code, 900)
    if not list((ctx.root / "model.checkpoints").rglob("rng_state*.pth")):
        raise SetupError("the training run saved no rng_state.pth")
    ctx.notes["steps"] = [train_args(ctx, "model", "--max-steps", "4", "--save-steps", "2", "--resume")]


def board_setup(title: str = "Tiny", description: str = "Parallel questions.") -> Callable[[Ctx], None]:
    """A task folder with the given text fields (evaluated, submitted and rendered by the steps)."""
    return plugin_setup(
        "named", plugin_source("return hash_embed(texts)"),
        lambda folder: write_task_folder(folder, title=title, description=description),
    )  # fmt: skip


def submit_render(ctx: Ctx) -> list[list[str]]:
    """Evaluate, submit the results with the folder, render: the first failing command is judged."""
    return [
        evaluate("named:factory"),
        ["leaderboard", "submit", "res/tiny__scan-plugin__sentence.json", "--task", "tiny", "--dir", "lb",
         "--submitter", "scan"],
        ["leaderboard", "render", "--dir", "lb"],
    ]  # fmt: skip


COMPARE = ["compare", "a/mid__hash-encoder-384__sentence.json", "b/mid__hash-encoder-64__sentence.json"]


def compare_ok(ctx: Ctx, run: Run) -> str | None:
    """Resource options: a run that finishes with output is right (bounds may also refuse)."""
    return None if run.stdout.strip() else "exit 0 without output"


TRACEBACK = [
    *(Scenario(f"plugin-{name}", "traceback", fixed(evaluate("plug:factory")), plugin_setup("plug", src),
               check=PLUGIN_CHECKS.get(name, refused), timeout=None)
      for name, src in BAD_PLUGINS.items()),
    Scenario("plugin-name-mathtext", "traceback", fixed(evaluate("named:factory")),
             plugin_setup("named", plugin_source("return hash_embed(texts)", name=r"$\frac{$")),
             check=lambda c, r: None),
    Scenario("compare-bootstraps-200000", "traceback", fixed([*COMPARE, "--bootstraps", "200000"]), pair_copy,
             check=compare_ok, memory_gb=6),
    Scenario("compare-bootstraps-1e9", "traceback", fixed([*COMPARE, "--bootstraps", str(10**9)]), pair_copy,
             check=compare_ok, memory_gb=6),
    Scenario("compare-permutations-1e12", "traceback", fixed([*COMPARE, "--permutations", str(10**12)]),
             pair_copy, check=compare_ok, memory_gb=6),
    Scenario("compare-seed-negative", "traceback", fixed([*COMPARE, "--seed", "-1"]), pair_copy,
             check=compare_ok),
    Scenario("compare-seed-2-64", "traceback", fixed([*COMPARE, "--seed", str(2**64)]), pair_copy,
             check=compare_ok, note="sibling: a seed numpy cannot take"),
    Scenario("compare-deep-json", "traceback",
             fixed(["compare", "deep.json", "a/mid__hash-encoder-384__sentence.json"]), deep_json),
    Scenario("compare-sparse-20gb-per-query", "traceback", fixed(COMPARE), sparse_per_query, memory_gb=6,
             note="the run's address space is capped at 6 GiB so reading it whole fails fast"),
    Scenario("train-seed-negative", "traceback", lambda ctx: [train_args(ctx, "model", "--seed", "-1")],
             check=lambda c, r: None),
    Scenario("train-resume-rng-not-weights-only", "traceback", lambda ctx: ctx.notes["steps"],
             checkpoint_rng),
    Scenario("leaderboard-title-mathtext", "traceback", submit_render, board_setup(title=r"$\frac{$"),
             check=lambda c, r: None),
    Scenario("leaderboard-description-mathtext", "traceback", submit_render,
             board_setup(description=r"$\frac{$"), check=lambda c, r: None, note="sibling: description"),
]  # fmt: skip


# -- security -------------------------------------------------------------------------------------

UNSAFE = {
    "script": (r"<script", "<script>alert(1)</script>"),
    # a link or image forms only where its brackets are not backslash-escaped (CommonMark)
    "javascript-link": (r"(?<!\\)\]\(javascript:", "[click](javascript:alert(1))"),
    "tracking-image": (r"(?<!\\)!\[(?:\\.|[^\]\\])*\]\(https?://", "![](https://tracker.example/p.gif)"),
    "html-img": (r"<img", '<img src="https://tracker.example/p.gif">'),
}


def markdown_clean(pattern: str) -> Callable[[Ctx, Run], str | None]:
    def check(ctx: Ctx, run: Run) -> str | None:
        texts = [p.read_text(encoding="utf-8") for p in (ctx.root / "lb").rglob("*.md")] or [run.stdout]
        hits = sum(len(re.findall(pattern, t)) for t in texts)
        return f"user text passed raw into Markdown ({hits} time(s))" if hits else None

    return check


def renamed_pair(ctx: Ctx) -> None:
    pair_copy(ctx)
    res = ctx.root / "b" / "mid__hash-encoder-64__sentence.json"
    data = json.loads(res.read_text(encoding="utf-8"))
    data["model"]["name"] = "<script>alert(1)</script>"
    res.write_text(json.dumps(data), encoding="utf-8")


def mteb_setup(ctx: Ctx) -> None:
    shutil.copytree(ctx.shared.data() / "xquad-r", ctx.root / "data" / "xquad-r")
    ctx.notes["model"] = str(ctx.shared.tiny_model())
    ctx.notes["before"] = {p for p in ctx.root.rglob("*")}


def mteb_steps(*extra: str) -> Callable[[Ctx], list[list[str]]]:
    return lambda ctx: [
        ["mteb", "run", "-m", ctx.notes["model"], "-t", "XQuADR", "--subsets", "deu-eng",
         "--data-dir", "data", "--output-folder", "mteb-out/inner", "--device", "cpu", *extra]
    ]  # fmt: skip


def nothing_outside_mteb(ctx: Ctx, run: Run) -> str | None:
    allowed = ("mteb-out", "cache", "home", "data")
    new = [p for p in ctx.root.rglob("*") if p not in ctx.notes["before"]]
    outside = [p for p in new if p.relative_to(ctx.root).parts[0] not in allowed]
    inner = ctx.root / "mteb-out" / "inner"
    escaped = [p for p in new if p.relative_to(ctx.root).parts[0] == "mteb-out"
               and inner not in [p, *p.parents] and p not in inner.parents]  # fmt: skip
    bad = outside + escaped
    return f"wrote {len(bad)} path(s) outside --output-folder, e.g. {bad[0].name}" if bad else None


SECURITY = [
    *(Scenario(f"leaderboard-title-{kind}", "security", submit_render, board_setup(title=text),
               check=markdown_clean(pattern)) for kind, (pattern, text) in UNSAFE.items()),
    Scenario("leaderboard-description-script", "security", submit_render,
             board_setup(description=UNSAFE["script"][1]), check=markdown_clean(UNSAFE["script"][0]),
             note="sibling: another text field"),
    Scenario("compare-markdown-model-name-script", "security", fixed([*COMPARE, "--format", "markdown"]),
             renamed_pair, check=markdown_clean(UNSAFE["script"][0])),
    Scenario("mteb-run-revision-dotdot", "security", mteb_steps("--revision", "../../../../X"), mteb_setup,
             check=nothing_outside_mteb, timeout=300),
    Scenario("mteb-run-model-name-dotdot", "security", mteb_steps("--model-name", "../../../../Y"),
             mteb_setup, check=nothing_outside_mteb, timeout=300, note="sibling: --model-name"),
]  # fmt: skip

SCENARIOS: list[Scenario] = DATA_LOSS + SILENT_WRONG + TRACEBACK + SECURITY


# ---------------------------------------------------------------------------------------------
# judging


def tree(folder: Path) -> dict[str, str]:
    """Every path under ``folder`` (relative) → sha256 of a file's bytes, or 'dir'."""
    out: dict[str, str] = {}
    if not folder.exists():
        return out
    for p in sorted(folder.rglob("*")):
        key = str(p.relative_to(folder))
        out[key] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
    return out


def lost(before: dict[str, dict[str, str]], root: Path) -> list[str]:
    """Guarded paths that existed before and are now gone or changed (new paths do not count)."""
    gone = []
    for folder, entries in before.items():
        after = tree(root / folder)
        gone += [f"{folder}/{k}" for k, v in entries.items() if after.get(k) != v]
    return gone


def judge(s: Scenario, ctx: Ctx, run: Run, missing: list[str]) -> tuple[str, str]:
    """(outcome, detail) of the judged command."""
    if run.timed_out:
        return "timeout", ""
    if missing:
        return "data_loss", f"{len(missing)} path(s) gone or changed, e.g. {missing[0]}"
    if "Traceback" in run.stderr or run.code == 1:
        return "traceback", f"{len(run.stderr.splitlines())} stderr lines"
    why = s.after(ctx, run) if s.after else None
    if why is None and run.code == 0:
        why = s.check(ctx, run)
        if why is None:
            return "correct", ""
    if why is not None:
        return "silent_wrong", why
    if run.code == 2 and len(run.error_lines) == 1:
        return "clean", ""
    return "messy_error", f"exit {run.code}, {len(run.error_lines)} stderr lines"


def first_line(run: Run) -> str:
    lines = run.error_lines
    if "Traceback" in run.stderr and lines:  # the exception, not "Traceback (most recent call last):"
        raised = [ln for ln in lines if re.match(r"[\w.]+(Error|Exception|Interrupt)\b", ln)]
        return (raised or lines)[-1].strip()[:200]
    return lines[0].strip()[:200] if lines else ""


def scan_one(s: Scenario, shared: Shared, timeout: float) -> dict:
    record: dict = {"id": s.id, "issue_class": s.issue_class, "note": s.note}
    reason = s.skip() if s.skip else None
    if reason:
        return {**record, "outcome": "skipped", "detail": reason}
    root = Path(tempfile.mkdtemp(prefix=f"scan-{s.id[:20]}-", dir=shared.root.parent))
    ctx = Ctx(root, shared, timeout)
    env = base_env(root)
    try:
        if s.setup:
            s.setup(ctx)
        steps = s.steps(ctx)
        before = {g: tree(root / g) for g in s.guard}
    except Exception as err:  # any setup failure is this scenario's, never the scan's
        return {**record, "outcome": "setup_error", "detail": str(err)[:300]}
    runs = []
    try:
        for argv in steps:
            run = run_command(cli(*argv), root, env, s.timeout or timeout, s.memory_gb)
            runs.append(run)
            if run.code != 0:
                break
        run = runs[-1]
        outcome, detail = judge(s, ctx, run, lost(before, root))
    except Exception as err:  # a check that cannot read the output: recorded, the scan goes on
        if not runs:
            return {**record, "outcome": "setup_error", "detail": f"cannot run: {err}"[:300]}
        run = runs[-1]
        outcome, detail = "setup_error", f"check failed: {err}"[:300]
    finally:
        if s.cleanup:
            s.cleanup(root)
    return {
        **record,
        "outcome": outcome,
        "detail": detail,
        "exit_code": run.code,
        "judged_step": len(runs),
        "command": "hybrid-plugin " + " ".join(argv_display(run.argv[3:])),
        "stderr_lines": len(run.error_lines),
        "first_stderr_line": first_line(run),
        "stderr_tail": "\n".join(run.error_lines[-3:])[-400:],
    }


def argv_display(argv: list[str]) -> list[str]:
    """Arguments as a reader types them (the tiny model's path shortened, odd characters escaped)."""
    shown = [re.sub(r".*/(tiny-model/)", r"\1", a) if "tiny-model/" in a else a for a in argv]
    return [a if a and re.fullmatch(r"[\w./:,=@+-]+", a) else repr(a) for a in shown]


def portable(record: dict, work: Path) -> dict:
    """The record without this machine's paths (scan folder → WORK, checkout → ., environments)."""
    out = {}
    for key, value in record.items():
        if isinstance(value, str):
            places = (
                (str(work), "WORK"),
                (str(REPO), "."),
                (sys.prefix, "VENV"),
                (sys.base_prefix, "PYTHON"),
            )
            for path, name in (*places, (str(Path.home()), "~")):
                value = value.replace(path, name)
        out[key] = value
    return out


def counts(records: list[dict]) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {}
    for cls in (*ISSUE_CLASSES, "all"):
        got = Counter(r["outcome"] for r in records if cls in ("all", r["issue_class"]))
        table[cls] = {"scenarios": sum(got.values()), **{o: got[o] for o in OUTCOMES}}
    return table


def markdown(table: dict[str, dict[str, int]]) -> str:
    cols = ["scenarios", *OUTCOMES]
    lines = ["| issue class | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    lines += [f"| {cls} | " + " | ".join(str(row[c]) for c in cols) + " |" for cls, row in table.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", metavar="ID", help="run these scenarios only")
    parser.add_argument("--out", type=Path, help="write the outcomes and counts as JSON here")
    parser.add_argument("--timeout", type=float, default=90, help="seconds per command (default 90)")
    parser.add_argument("--datasets", type=Path, help="datasets folder (default $HYBRID_PLUGIN_DATA)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders (printed)")
    parser.add_argument("--list", action="store_true", help="list the scenario ids and exit")
    args = parser.parse_args(argv)
    if args.list:
        for s in SCENARIOS:
            print(f"{s.id:45} {s.issue_class}")
        return 0
    chosen = SCENARIOS
    if args.only:
        unknown = set(args.only) - {s.id for s in SCENARIOS}
        if unknown:
            parser.error(f"unknown scenario id(s): {', '.join(sorted(unknown))} (see --list)")
        chosen = [s for s in SCENARIOS if s.id in args.only]
    datasets = args.datasets or (
        Path(os.environ["HYBRID_PLUGIN_DATA"]) if "HYBRID_PLUGIN_DATA" in os.environ else None
    )
    work = Path(tempfile.mkdtemp(prefix="fault-scan-"))
    (work / "shared").mkdir()
    shared = Shared(work / "shared", datasets.resolve() if datasets else None, args.timeout)
    started = datetime.datetime.now(datetime.timezone.utc)
    records = []
    try:
        for s in chosen:
            t0 = datetime.datetime.now()
            record = portable(scan_one(s, shared, args.timeout), work)
            record["seconds"] = round((datetime.datetime.now() - t0).total_seconds(), 1)
            records.append(record)
            shown = record["detail"] if record["outcome"] != "clean" else ""
            shown = shown or record.get("first_stderr_line", "")
            print(f"{s.id:45} {record['outcome']:13} {shown}"[:200], flush=True)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    table = counts(records)
    if args.out:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        )
        report = {
            "command": "python benchmarks/fault_scan.py "
            + " ".join(argv if argv is not None else sys.argv[1:]),
            "date": started.isoformat(timespec="seconds"),
            "commit": commit.stdout.strip() or None,
            "timeout_s": args.timeout,
            "counts": table,
            "scenarios": records,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print()
    print(markdown(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
