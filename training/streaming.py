"""Out-of-core training for corpora that do not fit in memory (``train --streaming``).

Files are read in chunks; features are hashed (no vocabulary to hold) and a linear
model is fitted incrementally with ``SGDClassifier.partial_fit``, so memory stays
bounded by the chunk size and the (fixed) hashed feature space, and time grows
linearly with the corpus.

About 1 text in 20, chosen by a hash of its normalized form (so duplicates stay
on one side), is held out (up to ``HOLDOUT_MAX``) to fit the Platt calibrator and
choose the thresholds on texts the model never saw.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import SGDClassifier
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer

from moderation.text import TRAINING_CACHE_SIZE, ensure_cache_size, normalize, signal_matrix

from . import datasets, pipeline, registry
from .datasets import DataError, parse_label

HOLDOUT_EVERY = 20
HOLDOUT_MAX = 50_000
N_FEATURES = 2**20


def build_streaming_pipeline(alpha: float = 1e-6) -> Pipeline:
    ensure_cache_size(TRAINING_CACHE_SIZE)  # one chunk's texts, reused by both blocks
    common = {"preprocessor": normalize, "lowercase": False, "alternate_sign": False,
              "n_features": N_FEATURES, "norm": "l2", "dtype": np.float64}
    features = FeatureUnion([
        ("word", HashingVectorizer(token_pattern=r"[^ ]+", ngram_range=(1, 2), **common)),
        ("char", HashingVectorizer(analyzer="char_wb", ngram_range=(2, 5), **common)),
        ("signals", FunctionTransformer(signal_matrix, validate=False)),
    ])
    clf = SGDClassifier(loss="log_loss", alpha=alpha, random_state=0)
    return Pipeline([("features", features), ("clf", clf)])


def _lines(path: Path, handle: BinaryIO, digest: Any) -> Iterator[str]:
    """The lines of ``handle`` as text (line ends kept, a BOM dropped), hashed as read;
    a line that is not UTF-8 is a DataError naming it."""
    for number, raw in enumerate(handle, start=1):
        digest.update(raw)
        try:
            yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise datasets.DataError(f"{path}: line {number}: not UTF-8 text (byte "
                                     f"0x{raw[exc.start]:02x}); {datasets.UTF8_HINT}") from None


def iter_rows(path: Path, digests: dict[str, str] | None = None) -> Iterator[tuple[str, int]]:
    """(text, label) of a JSONL or CSV file, read lazily and once (a pipe works too); bad
    rows raise DataError. Once the file is read whole, its sha256 goes into ``digests``."""
    path = Path(path)
    datasets.check_input_file(path)
    digest = hashlib.sha256()
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below, also when abandoned
    except OSError as exc:
        raise datasets.DataError(f"{path}: cannot read ({exc.strerror})") from None
    with handle:
        lines = _lines(path, handle, digest)
        empty = True
        if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                empty = False
                try:
                    row = json.loads(line)
                    text, label = row["text"], row["label"]
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    raise datasets.DataError(
                        f"{path}: line {number}: not a text/label object ({exc})"
                    ) from None
                where = f"{path}: line {number}"
                yield datasets.check_text(str(text), where), parse_label(label, where)
        else:
            for where, row in datasets.csv_records(path, lines):
                empty = False
                yield datasets.check_text(row["text"], where), parse_label(row["label"], where)
    if empty:
        raise datasets.DataError(f"{path}: no labelled rows")
    if digests is not None:
        digests[str(path)] = digest.hexdigest()


def _held_out(text: str) -> bool:
    digest = hashlib.blake2b(normalize(text).encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") % HOLDOUT_EVERY == 0


def train_streaming(
    models_dir: str | Path,
    files: Sequence[str | Path],
    *,
    chunk_size: int = 20_000,
    epochs: int = 1,
    progress: Callable[[str], None] | None = None,
) -> tuple[str, dict[str, Any]]:
    """Fit incrementally over ``files`` in chunks; save a version; (version, metadata)."""
    report = progress or (lambda message: None)
    started = time.perf_counter()
    model = build_streaming_pipeline()
    features, clf = model.named_steps["features"], model.named_steps["clf"]
    features.fit(["warm-up"])  # stateless: hashing needs no vocabulary
    hold_texts: list[str] = []
    hold_labels: list[int] = []
    n_seen = n_spam = 0
    signal_sums = np.zeros(signal_matrix(["x"]).shape[1])
    classes = np.array([0, 1])
    digests: dict[str, str] = {}  # sha256 of each file as read (a pipe cannot be read twice)
    def flush(chunk_texts: list[str], chunk_labels: list[int], first_epoch: bool) -> None:
        if chunk_texts:
            if first_epoch:
                signal_sums[:] += signal_matrix(chunk_texts).sum(axis=0)
            clf.partial_fit(features.transform(chunk_texts), chunk_labels, classes=classes)
            chunk_texts.clear()
            chunk_labels.clear()

    for epoch in range(epochs):
        chunk_texts: list[str] = []
        chunk_labels: list[int] = []

        for path in files:
            for text, label in iter_rows(Path(path), digests):
                if epoch == 0:
                    n_seen += 1
                    n_spam += label
                if _held_out(text):
                    if epoch == 0 and len(hold_texts) < HOLDOUT_MAX:
                        hold_texts.append(text)
                        hold_labels.append(label)
                    continue
                chunk_texts.append(text)
                chunk_labels.append(label)
                if len(chunk_texts) >= chunk_size:
                    flush(chunk_texts, chunk_labels, epoch == 0)
                    report(f"epoch {epoch + 1}: {n_seen} texts read")
        flush(chunk_texts, chunk_labels, epoch == 0)
    if n_spam in (0, n_seen):
        raise DataError("streaming training data needs both spam and ham")
    y_hold = np.asarray(hold_labels)
    if len(set(hold_labels)) < 2:
        raise DataError("too little data: the held-out sample lacks spam or ham")
    # In chunks: 50k texts at once would build a sparse matrix of several hundred MB.
    decisions = np.concatenate([
        model.decision_function(hold_texts[start : start + chunk_size])
        for start in range(0, len(hold_texts), chunk_size)
    ])
    calibrator = pipeline.fit_calibrator(decisions, y_hold)
    proba = pipeline.calibrate(calibrator, decisions)
    publish_below, reject_at = pipeline.choose_thresholds(proba, y_hold)
    seconds = round(time.perf_counter() - started, 2)
    metadata = {
        "kind": "streaming",
        "data": {"files": {Path(p).name: digests[str(Path(p))] for p in files},
                 "n_texts": n_seen, "n_spam": n_spam},
        "params": {"n_features": N_FEATURES, "alpha": clf.alpha, "chunk_size": chunk_size,
                   "epochs": epochs},
        "thresholds": {"publish_below": publish_below, "reject_at": reject_at},
        # Chosen on the held-out texts only: a small corpus gives too few to choose them.
        "threshold_warnings": pipeline.threshold_warnings(proba, y_hold, publish_below,
                                                          reject_at),
        # Explanations show signals relative to the average training text.
        "signal_means": (signal_sums / max(n_seen - len(hold_texts), 1)).round(6).tolist(),
        "holdout": {"n": len(hold_texts)},
        "training_seconds": seconds,
    }
    version = registry.save_version(models_dir, {"pipeline": model, "calibrator": calibrator},
                                    metadata)
    registry.ensure_current(models_dir, version)
    return version, metadata
