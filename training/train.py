"""Train a model version from the shipped data (and optional labelled files) and save it."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import f1_score, matthews_corrcoef, roc_auc_score
from sklearn.preprocessing import FunctionTransformer

from moderation import model_registry

from . import datasets, pipeline, registry
from .datasets import Corpus


def _cv_metrics(proba: np.ndarray, y: np.ndarray, publish_below: float,
                reject_at: float) -> dict[str, Any]:
    ham, spam = proba[y == 0], proba[y == 1]
    both = len(np.unique(y)) == 2
    return {  # MCC, F1 and ROC AUC are undefined on one class: JSON null, not NaN
        "n": int(len(y)),
        "n_spam": int(y.sum()),
        "mcc": round(float(matthews_corrcoef(y, proba >= 0.5)), 4) if both else None,
        "f1": round(float(f1_score(y, proba >= 0.5)), 4) if both else None,
        "roc_auc": round(float(roc_auc_score(y, proba)), 4) if both else None,
        "ham_rejected": round(float(np.mean(ham >= reject_at)), 4) if ham.size else 0.0,
        "spam_published": round(float(np.mean(spam < publish_below)), 4) if spam.size else 0.0,
        "queue_share": round(float(np.mean((proba >= publish_below) & (proba < reject_at))), 4),
    }


def cv_summary(
    model: pipeline.TrainedModel, y: np.ndarray, media: Sequence[str] | None = None
) -> dict[str, Any]:
    """Cross-validated metrics of the chosen configuration (from out-of-fold scores).

    With ``media`` (one per text) also ``by_medium`` and ``comments`` (every medium but
    the foreign ones): the comments are what the service scores, and the mix's figures
    hide them behind the SMS texts, which are scored with the shared weights only (see
    ``foreign_copy_weight``).
    """
    proba, y = model.cv["oof_proba"], np.asarray(y)
    summary = _cv_metrics(proba, y, model.publish_below, model.reject_at)
    if media is not None and len(set(media)) > 1:
        labels = np.asarray(media)
        comments = ~pipeline.foreign_rows(media)
        if comments.any() and not comments.all():
            # What `training list` compares versions by: the texts the service scores.
            summary["comments"] = _cv_metrics(proba[comments], y[comments],
                                              model.publish_below, model.reject_at)
        summary["by_medium"] = {
            name: _cv_metrics(proba[labels == name], y[labels == name],
                              model.publish_below, model.reject_at)
            for name in sorted(set(media))
        }
    return summary


def fit(
    corpus: Corpus,
    *,
    quick: bool = False,
    params: dict[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
    n_jobs: int = 2,
) -> pipeline.TrainedModel:
    """Fit on ``corpus``; ``quick`` skips the C search (for tests and first start)."""
    datasets.check_both_classes(corpus, "training data")
    full = {**pipeline.DEFAULT_PARAMS, **(params or {})}
    return pipeline.train(
        corpus.texts,
        corpus.labels,
        corpus.groups(),
        params=full,
        c_grid=None if quick else pipeline.C_GRID,
        sample_weight=pipeline.source_weights(corpus.sources, full),
        media=media(corpus),
        sources=corpus.sources,
        progress=progress,
        n_jobs=n_jobs,
    )


def media(corpus: Corpus) -> list[str]:
    """The medium of every text (``youtube``, ``sms``, or a labelled file's source)."""
    return [pipeline.medium(s) for s in corpus.sources]


def signal_means(model: pipeline.TrainedModel, texts: Sequence[str]) -> list[float]:
    """Mean of every dense feature (signals, promotion cues) over ``texts``, in block order."""
    features = model.pipeline.named_steps["features"]
    means: list[float] = []
    for _name, step in features.transformer_list:
        if isinstance(step, FunctionTransformer):
            means.extend(round(float(m), 6) for m in step.func(list(texts)).mean(axis=0))
    return means


def train_model(
    models_dir: str | Path,
    *,
    extra: Sequence[str | Path] | Corpus = (),
    quick: bool = False,
    make_current_if_none: bool = True,
    progress: Callable[[str], None] | None = None,
) -> tuple[str, pipeline.TrainedModel, dict[str, Any]]:
    """Train on the shipped data plus ``extra`` (labelled files, or what :func:`load_extra`
    read from them); save; return (version, model, metadata)."""
    started = time.perf_counter()
    corpus = datasets.load_shipped()
    added = extra if isinstance(extra, Corpus) else load_extra(extra)
    corpus.extend(added)
    model = fit(corpus, quick=quick, progress=progress)
    seconds = round(time.perf_counter() - started, 2)
    metadata = {
        "data": {
            "files": {Path(p).name: sha for p, sha in corpus.files.items()},
            "n_texts": len(corpus),
            "n_spam": int(sum(corpus.labels)),
            "sources": sorted(set(s.split(":")[0] for s in corpus.sources)),
            # Fingerprints of the --data texts (moderators' decisions, mostly): `shadow`
            # tells from them which of the decisions it scores this version learnt from.
            "extra_text_digests": sorted({datasets.text_digest(t) for t in added.texts}),
        },
        "params": model.params,
        # Average signal values: explanations show signals relative to a typical text.
        "signal_means": signal_means(model, corpus.texts),
        "thresholds": {"publish_below": model.publish_below, "reject_at": model.reject_at},
        # Why the thresholds cannot be trusted, if they cannot: `promote` asks for --force.
        "threshold_warnings": pipeline.threshold_warnings(
            model.cv["oof_proba"], corpus.y, model.publish_below, model.reject_at,
            media(corpus)),
        "cv": {
            "n_splits": model.cv["n_splits"],
            "grid": model.cv["grid"],
            "calibrated_on": model.cv["calibrated_on"],
            "metrics": cv_summary(model, corpus.y, media(corpus)),
        },
        "training_seconds": seconds,
        "quick": quick,
    }
    version = registry.save_version(models_dir, model.artifact(), metadata)
    if make_current_if_none:
        registry.ensure_current(models_dir, version)
    return version, model, metadata


def load_extra(paths: Sequence[str | Path]) -> Corpus:
    """The ``--data`` files, each read once (a pipe cannot be read again for the report)."""
    added = Corpus()
    for path in paths:
        # One class is enough in a file added to the shipped data (an export of a
        # day's approvals): the corpus as a whole has both.
        added.extend(datasets.load_labelled(Path(path), require_both_classes=False))
    return added


def train_first_model(models_dir: Path) -> str:
    """A real model trained quickly on all shipped data (tests, first start); returns version."""
    version, _, _ = train_model(models_dir, quick=True)
    return version


def ensure_model(models_dir: str | Path) -> str | None:
    """Train a quick model only if ``models_dir`` has none; the new version, else None.

    An existing current version saved before the serving export existed gets its
    ``serving.npz`` now, so the service's workers need not import scikit-learn.
    """
    if model_registry.list_versions(models_dir):
        registry.export_serving(models_dir, model_registry.current_version(models_dir))
        return None
    return train_first_model(Path(models_dir))
