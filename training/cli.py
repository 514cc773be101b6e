"""The operator CLI: ``python -m training COMMAND --help`` explains each command.

Every expected failure (bad data, unknown version, corrupt artifact, Redis down)
ends with one line on stderr naming the file, row or version, and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from moderation.config import PROJECT_ROOT
from moderation.model_registry import ArtifactError, ModelNotFound

from .datasets import DataError

EXIT_ERROR = 2


class CLIError(RuntimeError):
    """An expected operator error: printed as one line, exit status 2."""


def default_models_dir() -> Path:
    return Path(os.environ.get("MODELS_DIR") or PROJECT_ROOT / "models")


def default_reports_dir() -> Path:
    return Path(os.environ.get("REPORTS_DIR") or PROJECT_ROOT / "reports")


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- commands --------------------------------------------------------------------


def cmd_train(args: argparse.Namespace) -> int:
    from . import train

    started = time.perf_counter()
    version, model, metadata = train.train_model(
        args.models_dir, extra=args.data or (), quick=args.quick, progress=_say
    )
    cv = metadata["cv"]["metrics"]
    print(f"trained model {version} in {metadata['training_seconds']:.1f}s "
          f"on {metadata['data']['n_texts']} texts ({metadata['data']['n_spam']} spam)")
    print(f"  C={model.params['C']}  thresholds: publish < {model.publish_below:.3f}, "
          f"reject >= {model.reject_at:.3f}")
    print(f"  grouped CV: MCC {cv['mcc']:.3f}  ROC AUC {cv['roc_auc']:.4f}  "
          f"ham rejected {cv['ham_rejected']:.2%}  spam published {cv['spam_published']:.2%}  "
          f"queued {cv['queue_share']:.1%}")
    print(f"  saved to {Path(args.models_dir) / version}")
    print(f"  total {time.perf_counter() - started:.1f}s")
    return 0


def cmd_ensure_model(args: argparse.Namespace) -> int:
    from . import train

    version = train.ensure_model(args.models_dir)
    if version is None:
        print(f"a model already exists in {args.models_dir}")
    else:
        print(f"trained first model {version} in {args.models_dir}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from moderation import model_registry

    versions = model_registry.list_versions(args.models_dir)
    if not versions:
        raise ModelNotFound(f"no trained model in {args.models_dir}: run `make train`")
    current = model_registry.current_from_file(args.models_dir)
    print(f"{'':2}{'version':<24} {'created':<26} {'CV MCC':>7} {'queue':>7} "
          f"{'publish<':>9} {'reject>=':>9}")
    for version in versions:
        meta = model_registry.read_metadata(args.models_dir, version)
        cv = meta.get("cv", {}).get("metrics", {})
        th = meta.get("thresholds", {})
        mark = "* " if version == current else "  "
        print(f"{mark}{version:<24} {meta.get('created', '?'):<26} {cv.get('mcc', float('nan')):>7.3f} "
              f"{cv.get('queue_share', float('nan')):>7.1%} {th.get('publish_below', 0):>9.3f} "
              f"{th.get('reject_at', 0):>9.3f}")
    return 0


# -- parser ----------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description="Train, evaluate and promote the comment spam classifier.",
    )
    parser.add_argument(
        "--models-dir", type=Path, default=default_models_dir(),
        help="folder holding one sub-folder per model version (default: $MODELS_DIR or ./models)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train a new version on the shipped data (+ --data files)",
                       description="Train a new model version on all shipped data (YouTube + SMS) "
                       "plus any labelled files given with --data; choose C by grouped "
                       "cross-validation; save it under MODELS_DIR/<version>/. The first "
                       "model becomes current; later ones need `promote`.")
    p.add_argument("--data", action="append", type=Path, metavar="FILE",
                   help="extra labelled JSONL/CSV file (text, label[, source]); repeatable")
    p.add_argument("--quick", action="store_true",
                   help="skip the hyper-parameter search (a few seconds; for tests)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("ensure-model", help="train a quick first model only if none exists",
                       description="Used by `make run`: does nothing when MODELS_DIR already "
                       "holds a model, else trains a quick one and makes it current.")
    p.set_defaults(func=cmd_ensure_model)

    p = sub.add_parser("list", help="list model versions with their key metrics",
                       description="Versions oldest first; * marks the current one.")
    p.set_defaults(func=cmd_list)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except (DataError, ModelNotFound, ArtifactError, CLIError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
