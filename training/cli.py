"""The operator CLI: ``python -m training COMMAND --help`` explains each command.

Every expected failure (bad data, unknown version, corrupt artifact, Redis down)
ends with one line on stderr naming the file, row or version, and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from moderation.config import DEFAULT_REPORTS_DIR, PROJECT_ROOT
from moderation.model_registry import ArtifactError, ModelNotFound

from .datasets import DataError

EXIT_ERROR = 2

#: What `--data` reads, for the help of every command that takes it.
DATA_FORMATS = ("JSONL (text, label[, source]) or CSV with those columns in any case, "
                "delimited by ',', ';' or tab (Excel's CSV works), UTF-8 with or without a "
                "BOM; label spam/ham, 1/0 (1.0/0.0 too) or true/false; a YouTube Spam "
                "Collection CSV (CONTENT, CLASS) works as downloaded; a pipe such as "
                "<(zcat f.csv.gz) too")


class CLIError(RuntimeError):
    """An expected operator error: printed as one line, exit status 2."""


def default_models_dir() -> Path:
    return Path(os.environ.get("MODELS_DIR") or PROJECT_ROOT / "models")


def default_reports_dir() -> Path:
    # The service's default and blank-means-unset rule (moderation/config.py), so its
    # models page looks where the reports were written.
    return Path((os.environ.get("REPORTS_DIR") or "").strip() or DEFAULT_REPORTS_DIR)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def make_folder(path: Path, option: str) -> None:
    """Create ``path`` (and its parents) if missing; CLIError naming ``option`` if it cannot
    be. Called before the work, so a mistyped folder is said before a training, not after."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # a file (or a dangling link) of that name
        raise CLIError(f"{option} {path} is not a folder") from None
    except OSError as exc:
        raise CLIError(f"cannot create {option} {path}: {exc.strerror or exc}") from None


def _int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``minimum``; anything else is
    argparse's one-line error naming the option, exit status 2."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"{value} is not at least {minimum}")
        return number

    return parse


#: `--chunk-size 0` ended a streaming run in a traceback from range(); `--last 0` scored
#: no decision.
positive_int = _int_at_least(1)
#: `shadow --show -2` listed every disagreement but the last 2 (a slice from the end).
non_negative_int = _int_at_least(0)


# -- commands --------------------------------------------------------------------


def _progress_bar(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="step", file=sys.stderr, leave=False,
                disable=None)  # None: no bar when stderr is not a terminal


def _evaluate_into(models_dir: Path, reports_dir: Path, version: str, model, corpus) -> dict:
    """Run the protocols for ``version``'s settings, write its report, record the result."""
    from moderation import model_registry

    from . import evaluate, registry, train

    bar = _progress_bar(evaluate.PROTOCOL_STEPS, "evaluating protocols")
    results = evaluate.run_protocols(params=model.params, progress=lambda m: (
        bar.set_postfix_str(m), bar.update(1)))
    bar.close()
    summary = evaluate.summarize(results)
    cv = train.cv_summary(model, corpus.y, train.media(corpus))
    thresholds = {"publish_below": model.publish_below, "reject_at": model.reject_at}
    warnings = registry.threshold_warnings(model_registry.read_metadata(models_dir, version))
    out = evaluate.write_report(reports_dir, version, summary, cv, thresholds, corpus.y,
                                model.cv["oof_proba"], results, warnings)
    registry.update_metadata(models_dir, version, {
        "evaluation": {"key": evaluate.key_score(summary), "protocols": summary,
                       "report": str(out)}})
    return {"summary": summary, "report": out}


def _short_by(row: dict) -> str:
    """'' for a pass; else '!' and, on a small test set, how many errors it missed by."""
    if row["pass"]:
        return ""
    needed = row["errors_to_pass"]  # None: no number of corrections would pass
    return "!" if needed is None else f"! ({needed} error{'s' if needed > 1 else ''} short)"


def _print_protocols(summary: dict) -> None:
    if "tubespam" in summary:
        t = summary["tubespam"]
        cells = "  ".join(f"{n} {v['mcc']:.3f}/{v['published_mcc']:.3f}{_short_by(v)}"
                          for n, v in t["videos"].items())
        print(f"  TubeSpam MCC (ours/published): {cells}  -> {'PASS' if t['pass'] else 'FAIL'}")
    if "sms" in summary:
        s = summary["sms"]
        print(f"  SMS: MCC {s['mcc']:.3f}/0.893, blocked ham {s['blocked_ham']:.2%}/0.18%, "
              f"spam caught {s['spam_caught']:.1%}/83.1%  -> {'PASS' if s['pass'] else 'FAIL'}")
    if "lovo" in summary:
        lo = summary["lovo"]
        cells = "  ".join(f"{n} {v['mcc']:.3f}" for n, v in lo["videos"].items())
        print(f"  leave-one-video-out MCC: {cells}  mean {lo['mean_mcc']:.3f} (target >= "
              f"{lo['target_mean_mcc']})  -> {'PASS' if lo['pass'] else 'FAIL'}")


def cmd_train(args: argparse.Namespace) -> int:
    from moderation import model_registry

    from . import datasets, train

    started = time.perf_counter()
    make_folder(args.models_dir, "--models-dir")
    # Said now, not after the training: its summary (and a first model) reads CURRENT.
    model_registry.current_from_file(args.models_dir)
    if not (args.no_report or args.streaming):
        make_folder(args.reports_dir, "--reports-dir")
    if args.streaming:
        from . import streaming

        files = args.data or []
        if not files:
            raise CLIError("--streaming needs at least one --data FILE (JSONL or CSV)")
        version, metadata = streaming.train_streaming(
            args.models_dir, files, chunk_size=args.chunk_size, progress=_say
        )
        thresholds = metadata["thresholds"]
        print("\n".join([
            f"trained streaming model {version} in {metadata['training_seconds']:.1f}s on "
            f"{metadata['data']['n_texts']} texts ({metadata['data']['n_spam']} spam)",
            f"  thresholds (from {metadata['holdout']['n']} held-out texts): publish < "
            f"{thresholds['publish_below']:.3f}, reject >= {thresholds['reject_at']:.3f}",
            *_threshold_lines(metadata),
            f"  saved to {Path(args.models_dir) / version}",
        ]))
        _say_where_it_stands(args.models_dir, version, metadata)
        print(f"  total {time.perf_counter() - started:.1f}s")
        return 0
    added = train.load_extra(args.data or ())
    bar = _progress_bar(3, "training")
    version, model, metadata = train.train_model(
        args.models_dir, extra=added, quick=args.quick,
        progress=lambda m: (bar.set_postfix_str(m[:40]), bar.update(1)),
    )
    bar.update(1)
    bar.close()
    cv = metadata["cv"]["metrics"]
    lines = [
        f"trained model {version} in {metadata['training_seconds']:.1f}s "
        f"on {metadata['data']['n_texts']} texts ({metadata['data']['n_spam']} spam)",
        f"  C={model.params['C']}  thresholds: publish < {model.publish_below:.3f}, "
        f"reject >= {model.reject_at:.3f}",
        f"  grouped CV: MCC {cv['mcc']:.3f}  ROC AUC {cv['roc_auc']:.4f}  "
        f"ham rejected {cv['ham_rejected']:.2%}  spam published {cv['spam_published']:.2%}  "
        f"queued {cv['queue_share']:.1%}",
        # The comments' figures are the ones `list` shows for the version.
        *([_medium_line("comments", cv["comments"]) + "  (all but SMS; as in `list`)"]
          if "comments" in cv else []),
        *(_medium_line(name, m) for name, m in cv.get("by_medium", {}).items()),
        *(f"  warning: {w}" for w in _too_small_to_judge(cv.get("by_medium", {}))),
        *_threshold_lines(metadata),
        f"  saved to {Path(args.models_dir) / version}",
    ]
    print("\n".join(lines))
    if not args.no_report:
        corpus = datasets.load_shipped().extend(added)
        try:
            done = _evaluate_into(args.models_dir, args.reports_dir, version, model, corpus)
        except KeyboardInterrupt:
            # The version is whole (saved atomically); only its evaluation is missing.
            raise KeyboardInterrupt(
                f"interrupted: {version} is saved without its evaluation; `python -m "
                f"training evaluate --version {version}` runs it") from None
        _print_protocols(done["summary"])
        print(f"  report: {done['report'] / 'report.md'}")
    _say_where_it_stands(args.models_dir, version, metadata)
    print(f"  total {time.perf_counter() - started:.1f}s")
    return 0


def _threshold_lines(metadata: dict[str, Any]) -> list[str]:
    """The summary's warnings about a new version's thresholds (none when they are sound)."""
    from . import registry

    return [f"  warning: {w}" for w in registry.threshold_warnings(metadata)]


def _say_where_it_stands(models_dir: Path, version: str, metadata: dict[str, Any]) -> None:
    """Whether the new version is current, and what it takes to make it so."""
    from moderation import model_registry

    from . import registry

    current = model_registry.current_from_file(models_dir)
    doubtful = registry.threshold_warnings(metadata)
    if current == version:
        print("  this is the first model: it is now current"
              + (" despite the threshold warnings above; train on more data and promote "
                 "the new version" if doubtful else ""))
    elif doubtful:
        print(f"  current is still {current}; its thresholds cannot be trusted (warnings "
              f"above), so `python -m training promote {version}` needs --force")
    else:
        print(f"  current is still {current}; `python -m training promote {version}` to switch")


def _medium_line(name: str, m: dict[str, Any]) -> str:
    return (f"    {name:<9} MCC {_cell(m, 'mcc', 5)}  ham rejected {m['ham_rejected']:.2%}  "
            f"spam published {m['spam_published']:.2%}  queued {m['queue_share']:.1%}")


#: A medium with fewer texts, or fewer of either class, has cross-validation figures
#: that are noise (3 decisions gave "MCC 0.000, 66.7% queued").
MIN_MEDIUM_TEXTS = 50
MIN_MEDIUM_CLASS = 5


def _too_small_to_judge(by_medium: dict[str, dict[str, Any]]) -> list[str]:
    """One warning per medium of the training data too small for its own CV figures."""
    warnings = []
    for name, m in by_medium.items():
        n, spam = m["n"], m["n_spam"]
        if n < MIN_MEDIUM_TEXTS or min(spam, n - spam) < MIN_MEDIUM_CLASS:
            warnings.append(
                f"the {name} part of the training data has only {n} texts ({spam} spam, "
                f"{n - spam} ham): too few "
                f"for its cross-validation figures above to mean anything (that needs "
                f"{MIN_MEDIUM_TEXTS} texts and {MIN_MEDIUM_CLASS} of each class); it is "
                "still trained on")
    return warnings


def cmd_ensure_model(args: argparse.Namespace) -> int:
    from . import train

    make_folder(args.models_dir, "--models-dir")
    version = train.ensure_model(args.models_dir)
    if version is None:
        print(f"a model already exists in {args.models_dir}")
    else:
        print(f"trained first model {version} in {args.models_dir}")
    return 0


def cmd_export_serving(args: argparse.Namespace) -> int:
    from moderation import model_registry

    from . import registry

    versions = [args.version] if args.version else model_registry.list_versions(args.models_dir)
    for version in versions:
        wrote = registry.export_serving(args.models_dir, version)
        print(f"{version}: {'wrote' if wrote else 'already has'} {model_registry.SERVING}")
    return 0


def _redis():
    """REDIS_URL, else the service's embedded server under var/redis (started if needed)."""
    return _redis_and_where()[0]


def _redis_and_where():
    """(client, which Redis it is, in words with no password) for messages."""
    from moderation.config import ConfigError, redis_url, var_dir
    from moderation.redis_store import connect, shown_url

    try:
        url = redis_url()
    except ConfigError as exc:
        raise CLIError(f"configuration error: {exc}") from None
    if url:
        where = f"Redis at {shown_url(url)} (REDIS_URL)"
    else:
        from moderation.embedded_redis import EmbeddedRedis

        where = f"the embedded Redis under {var_dir() / 'redis'} (REDIS_URL is unset)"
        try:
            url = EmbeddedRedis(var_dir() / "redis").start()
        except (OSError, RuntimeError) as exc:
            raise CLIError(f"cannot start {where}: {exc}") from None
    client = connect(url)
    try:
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any connection failure is one clear line
        raise CLIError(f"cannot reach {where}: {exc}") from None
    return client, where


def _current(models_dir: Path, client=None) -> str | None:
    from moderation import model_registry

    return model_registry.current_from_redis(client) or model_registry.current_from_file(models_dir)


def cmd_list(args: argparse.Namespace) -> int:
    from moderation import model_registry

    from . import registry

    versions = model_registry.list_versions(args.models_dir)
    if not versions:
        raise ModelNotFound(f"no trained model in {args.models_dir}: run `make train`")
    client = _redis() if os.environ.get("REDIS_URL") else None
    try:
        current, unusable = _current(args.models_dir, client), None
    except (ArtifactError, ModelNotFound) as exc:
        # The versions are still listed: they are what the operator may write in it.
        current, unusable = None, exc
    # The flag column sits where the version column's padding was: rows keep their width.
    print(f"{'':2}{'version':<22} {'':1} {'created':<26} {'comments MCC':>12} {'queue':>7} "
          f"{'TubeSpam':>9} {'SMS':>6} {'LOVO':>6}")
    unevaluated = mixed = doubtful = False
    for version in versions:
        meta = model_registry.read_metadata(args.models_dir, version)
        metrics = meta.get("cv", {}).get("metrics", {})
        # The comments' figures where recorded: the mix's move with how SMS is scored.
        cv = metrics.get("comments", metrics)
        tilde = "~" if metrics and "comments" not in metrics else " "
        mixed = mixed or tilde == "~"
        key = meta.get("evaluation", {}).get("key", {})
        unevaluated = unevaluated or not key
        mark = "* " if version == current else "  "
        flag = "!" if registry.threshold_warnings(meta) else " "
        doubtful = doubtful or flag == "!"
        print(f"{mark}{version:<22} {flag} {meta.get('created', '?'):<26} "
              f"{_cell(cv, 'mcc', 12)}{tilde}"
              f"{_cell(cv, 'queue_share', 7, '.1%')} {_cell(key, 'tubespam_mean_mcc', 9)} "
              f"{_cell(key, 'sms_mcc', 6)} {_cell(key, 'lovo_mean_mcc', 6)}")
    print("comments MCC and queue: cross-validated, every text but the SMS ones (`train` "
          "prints them as `comments`)"
          + ("; ~ : of all texts, for versions saved before they were recorded apart"
             if mixed else ""))
    if unevaluated:
        print("- : protocols not run for that version (quick first model, or --no-report); "
              "`python -m training evaluate --version V` runs them")
    if doubtful:
        print("! : its thresholds cannot be trusted (train warned: they meet, too few "
              "examples chose them, or a budget is not met); `promote` refuses it without "
              "--force")
    if unusable:
        raise CLIError(str(unusable))
    return 0


def _cell(values: dict[str, Any], name: str, width: int, spec: str = ".3f") -> str:
    """One right-aligned figure of the version list, or "-" where it was never measured."""
    value = values.get(name)
    return f"{value:>{width}{spec}}" if isinstance(value, int | float) else f"{'-':>{width}}"


def cmd_promote(args: argparse.Namespace) -> int:
    from moderation import model_registry

    from . import registry

    registry.require_version(args.models_dir, args.version)
    client, where = _redis_and_where()
    current = _current(args.models_dir, client)
    if current == args.version:
        # Nothing to switch; registry.promote would not touch the history either, so
        # rollback still returns to the version before this one.
        print(f"{args.version} is already the current version; nothing changed")
        return 0
    doubtful = registry.threshold_warnings(model_registry.read_metadata(args.models_dir,
                                                                        args.version))
    if doubtful and not args.force:
        raise CLIError(f"refusing to promote {args.version}: its thresholds cannot be trusted "
                       f"({'; '.join(doubtful)}); use --force to promote anyway")
    if current and not args.force:
        if not registry.has_evaluation(args.models_dir, args.version):
            how = (f"`python -m training shadow {args.version}` or `evaluate --data FILE "
                   f"--version {args.version}` compares a streaming model, then use --force"
                   if _is_streaming(args.models_dir, args.version) else
                   f"`python -m training evaluate --version {args.version}` runs the "
                   "protocols, or use --force")
            raise CLIError(f"refusing to promote {args.version}: cannot compare it with current "
                           f"{current}, it has no evaluation; {how}")
        worse = registry.compare(args.models_dir, args.version, current)
        if worse:
            raise CLIError(f"refusing to promote {args.version}: worse than current {current} "
                           f"({'; '.join(worse)}); use --force to promote anyway")
    previous = registry.promote(args.models_dir, args.version, client)
    meta = model_registry.read_metadata(args.models_dir, args.version)
    print(f"promoted {args.version} (was {previous or 'none'}); running workers switch within "
          f"MODEL_RELOAD_SECONDS. thresholds: publish < {meta['thresholds']['publish_below']:.3f}, "
          f"reject >= {meta['thresholds']['reject_at']:.3f}")
    print(f"  recorded in {where} and {Path(args.models_dir) / 'CURRENT'}")
    return 0


def _is_streaming(models_dir: Path, version: str) -> bool:
    from moderation import model_registry

    return model_registry.read_metadata(models_dir, version).get("kind") == "streaming"


def cmd_rollback(args: argparse.Namespace) -> int:
    from . import registry

    client, where = _redis_and_where()
    old, new = registry.rollback(args.models_dir, client)
    print(f"rolled back {old} -> {new}")
    print(f"  recorded in {where} and {Path(args.models_dir) / 'CURRENT'}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import numpy as np

    from moderation import model_registry
    from moderation.scoring import load_scorer

    from . import datasets, evaluate, registry

    if args.data is None:
        return _evaluate_version(args)
    corpus = datasets.load_labelled(args.data)
    client = _redis() if os.environ.get("REDIS_URL") else None
    scorer = load_scorer(args.models_dir, args.version, client=client)
    proba = np.empty(len(corpus))
    bar = _progress_bar(len(corpus), "scoring")
    for start in range(0, len(corpus), 1000):
        chunk = corpus.texts[start : start + 1000]
        proba[start : start + len(chunk)] = scorer.score_batch(chunk)
        bar.update(len(chunk))
    bar.close()
    m = evaluate.metrics(corpus.y, proba, scorer.publish_below, scorer.reject_at)
    # The shares below are only as good as the thresholds: say when those are not.
    doubtful = registry.threshold_warnings(
        model_registry.read_metadata(args.models_dir, scorer.version))
    out = {
        "model_version": scorer.version,
        "data": str(args.data),
        "thresholds": {"publish_below": scorer.publish_below, "reject_at": scorer.reject_at},
        "n": m["n"], "n_spam": m["n_spam"],
        "mcc": m["mcc"], "f1": m["f1"], "accuracy": m["accuracy"], "roc_auc": m["roc_auc"],
        "ham_rejected": m["blocked_ham"], "ham_queued": m["ham_queued"],
        "spam_published": m["spam_published"], "spam_queued": m["spam_queued"],
        "threshold_warnings": doubtful,
    }
    print(f"model {scorer.version} on {args.data} ({m['n']} texts, {m['n_spam']} spam)")
    print(f"  MCC {m['mcc']:.3f}  F1 {m['f1']:.3f}  accuracy {m['accuracy']:.3f}  "
          f"ROC AUC {m['roc_auc']:.4f}")
    print(f"  ham: rejected {m['blocked_ham']:.2%}, queued {m['ham_queued']:.2%}   "
          f"spam: published {m['spam_published']:.2%}, queued {m['spam_queued']:.2%}")
    for warning in doubtful:
        print(f"  warning: the model's thresholds cannot be trusted: {warning}")
    if args.json:
        try:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            registry.write_json_atomically(args.json, out)
        except FileExistsError:  # from mkdir: "File exists" would name the wrong thing
            raise CLIError(f"cannot write --json {args.json}: {args.json.parent} is not a "
                           "folder") from None
        except OSError as exc:  # the metrics are printed above: nothing else is lost
            raise CLIError(f"cannot write --json {args.json}: {exc.strerror or exc}") from None
        print(f"  written to {args.json}")
    return 0


def _evaluate_version(args: argparse.Namespace) -> int:
    """Re-run the protocols with a version's settings and (re)write its report."""
    from moderation import model_registry

    from . import datasets, pipeline, train

    version = args.version or _current(args.models_dir)
    if version is None:
        raise ModelNotFound(f"no trained model in {args.models_dir}: run `make train`")
    meta = model_registry.read_metadata(args.models_dir, version)
    if meta.get("kind") == "streaming":
        raise CLIError(f"{version} is a streaming model: the protocols retrain the standard "
                       "model; score a labelled file with `evaluate --data FILE` instead")
    make_folder(args.reports_dir, "--reports-dir")
    corpus = datasets.load_shipped()
    # The report's CV plots need out-of-fold scores: recompute them with the saved C.
    model = train.fit(corpus, quick=True, params=pipeline.saved_params(meta.get("params")))
    model.publish_below = meta["thresholds"]["publish_below"]
    model.reject_at = meta["thresholds"]["reject_at"]
    done = _evaluate_into(args.models_dir, args.reports_dir, version, model, corpus)
    print(f"evaluated {version}")
    _print_protocols(done["summary"])
    print(f"  report: {done['report'] / 'report.md'}")
    return 0


#: A Redis stream entry id: milliseconds, optionally "-" and a sequence number.
STREAM_ID = re.compile(r"(\d+)(?:-(\d+))?")


def check_stream_id(value: str, option: str) -> str:
    """``value`` if Redis would take it as a stream id ("-" for the start), else CLIError.

    Checked here because Redis answers a bad one with a bare "Invalid stream ID" that
    names neither the option nor what it should look like.
    """
    match = STREAM_ID.fullmatch(value)
    if value == "-" or (match and all(int(part or 0) < 2**64 for part in match.groups())):
        return value
    raise CLIError(f"{option} {value!r} is not a stream entry id: expected <ms> or <ms>-<seq> "
                   "(digits only, e.g. 1700000000000-0, as in the exported entry_id)")


def cmd_export_decisions(args: argparse.Namespace) -> int:
    from . import decisions

    since = check_stream_id(args.since, "--since")
    client = _redis()
    try:
        counts = decisions.export(client, args.out, since=since,
                                  keep_policy_rejections=args.keep_policy_rejections)
    except OSError as exc:  # the only file it touches is --out
        raise CLIError(f"cannot write --out {args.out}: {exc.strerror or exc}") from None
    print(f"exported {counts['written']} decisions ({counts['spam']} spam, {counts['ham']} ham) "
          f"to {args.out}; skipped {counts['skipped']} without a spam/ham label")
    if counts["policy_rejections"]:
        print(f"left out {counts['policy_rejections']} rejections for a policy reason (abusive, "
              f"off topic, ...: not spam); --keep-policy-rejections keeps them")
    return 0


def cmd_shadow(args: argparse.Namespace) -> int:
    from moderation import model_registry

    from . import decisions, registry

    registry.require_version(args.models_dir, args.version)
    client = _redis()
    # Compared with itself, every verdict agrees: a table that looks like a clean bill.
    if args.version == model_registry.current_version(args.models_dir, client):
        raise CLIError(f"{args.version} is the current version: shadow compares another "
                       "version with it; name a candidate (`python -m training list` shows "
                       "them)")
    result = decisions.shadow(args.models_dir, args.version, client, last=args.last)
    print(decisions.render_shadow(result, top=args.show))
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
    parser.add_argument(
        "--reports-dir", type=Path, default=default_reports_dir(),
        help="where evaluation reports go (default: $REPORTS_DIR or ./reports)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train a new version on the shipped data (+ --data files)",
                       description="Train a new model version on all shipped data (YouTube + SMS) "
                       "plus any labelled files given with --data; choose C by grouped "
                       "cross-validation; save it under MODELS_DIR/<version>/. The first "
                       "model becomes current; later ones need `promote`. Thresholds that "
                       "cannot be trusted (they meet, so nothing is held for review; too "
                       "few examples of a class chose them; a budget not met) are warned "
                       "about, recorded, and make `promote` ask for --force.")
    p.add_argument("--data", action="append", type=Path, metavar="FILE",
                   help="extra labelled file, repeatable: " + DATA_FORMATS)
    p.add_argument("--quick", action="store_true",
                   help="skip the search over C (takes the default; about half the time; for "
                   "tests and the first model)")
    p.add_argument("--no-report", action="store_true",
                   help="skip the evaluation protocols and the report (much faster)")
    p.add_argument("--streaming", action="store_true",
                   help="out-of-core training on the --data files only: hashed features and "
                   "an incremental linear model over chunks (bounded memory, for large corpora)")
    p.add_argument("--chunk-size", type=positive_int, default=20000, metavar="N",
                   help="texts per chunk with --streaming (default: %(default)s)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("ensure-model", help="train a quick first model only if none exists",
                       description="Used by `make run`: does nothing when MODELS_DIR already "
                       "holds a model, else trains a quick one and makes it current.")
    p.set_defaults(func=cmd_ensure_model)

    p = sub.add_parser("export-serving", help="write serving.npz for versions saved without it",
                       description="Versions trained before the serving export existed are "
                       "converted from model.skops by every worker at start (importing "
                       "scikit-learn). This writes their serving.npz once (all versions, or "
                       "--version) and records its sha256 in metadata.json.")
    p.add_argument("--version", help="only this version (default: every version)")
    p.set_defaults(func=cmd_export_serving)

    p = sub.add_parser("list", help="list model versions with their key metrics",
                       description="Versions oldest first; * marks the current one, ! one whose "
                       "thresholds cannot be trusted (`promote` needs --force for it).")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("evaluate", help="score a labelled file, or re-run the protocols",
                       description="With --data: score a labelled JSONL/CSV file (text, label; "
                       "label 1/spam for spam; a YouTube Spam Collection CSV with its CONTENT "
                       "and CLASS columns works as downloaded) with the current model (or "
                       "--version) and its "
                       "thresholds; print MCC, F1, accuracy, ROC AUC and the shares of ham "
                       "rejected/queued and spam published/queued. Without --data: re-run the "
                       "three protocols for a version and rewrite reports/<version>/.")
    p.add_argument("--data", type=Path, metavar="FILE", help="labelled file: " + DATA_FORMATS)
    p.add_argument("--json", type=Path, metavar="OUT", help="also write the metrics here")
    p.add_argument("--version", help="model version (default: the current one)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("export-decisions", help="export moderators' decisions as labelled JSONL",
                       description="Read the decision log (Redis stream mod:decisions; REDIS_URL "
                       "or the embedded server under var/redis) and write text/label/source JSONL "
                       "usable with `train --data`.")
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="JSONL file to write")
    p.add_argument("--since", metavar="ENTRY_ID", default="-",
                   help="only entries after this stream entry id: <ms> or <ms>-<seq>, as in "
                   "an exported row's entry_id (default: all)")
    p.add_argument("--keep-policy-rejections", action="store_true",
                   help="also export comments rejected as abusive, off topic, personal data, "
                   "illegal or other, labelled spam (left out by default: they are not spam; "
                   "advertising and duplicate rejections are always kept)")
    p.set_defaults(func=cmd_export_decisions)

    p = sub.add_parser("promote", help="make a version current in every running worker",
                       description="Record VERSION as current in Redis (REDIS_URL, else the "
                       "embedded server under var/redis) and models/CURRENT; workers switch "
                       "within MODEL_RELOAD_SECONDS. Refused, unless --force, when VERSION's "
                       "thresholds cannot be trusted (train's warnings: they meet, or were "
                       "chosen from too few examples), when it is worse than the current "
                       "model on the evaluation protocols, or has no evaluation to compare "
                       "(`evaluate --version VERSION` runs them; a streaming model has none: "
                       "compare it with `shadow` or `evaluate --data`).")
    p.add_argument("version", metavar="VERSION")
    p.add_argument("--force", action="store_true",
                   help="promote even if it looks worse, has no evaluation or its thresholds "
                   "cannot be trusted")
    p.set_defaults(func=cmd_promote)

    p = sub.add_parser("rollback", help="return to the previously current version",
                       description="Make the version that was current before the last promote "
                       "current again (in Redis: REDIS_URL, else the embedded server under "
                       "var/redis; and models/CURRENT).")
    p.set_defaults(func=cmd_rollback)

    p = sub.add_parser("shadow", help="compare a candidate with the current model on decisions",
                       description="Score the last N moderator decisions with the current model "
                       "and VERSION and report where their verdicts disagree and which agrees "
                       "more with the moderators. VERSION must not be the current one (`list` "
                       "shows the versions).")
    p.add_argument("version", metavar="VERSION")
    p.add_argument("--last", type=positive_int, default=500, metavar="N",
                   help="newest decisions to use (default: %(default)s)")
    p.add_argument("--show", type=non_negative_int, default=10, metavar="K",
                   help="disagreements to list, largest score gap first; 0 lists none "
                   "(default: %(default)s)")
    p.set_defaults(func=cmd_shadow)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        code = func(args)
        sys.stdout.flush()  # a reader gone away shows here, not in the exit's flush
        return code
    except (DataError, ModelNotFound, ArtifactError, CLIError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt as exc:
        # Every write is atomic: an interrupted command leaves no half-written file.
        print(f"error: {exc or 'interrupted'}", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of our output went away (`train | head`): whatever was saved is
        # whole (every write is atomic); only the rest of the summary is not shown.
        # Point stdout at /dev/null so the interpreter's final flush stays quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports a command killed by it
