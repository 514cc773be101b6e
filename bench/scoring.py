"""Scoring: one comment at a time through the service's scorer vs the model batched.

Ours: ``Scorer.score(text)`` -- the serving path, with its explanation -- called once
per comment. Baseline, same run, same loaded model: the scikit-learn pipeline's
``decision_function`` on the whole batch plus the Platt calibrator, divided by the
batch size (the cheapest per-document cost the model has). Texts: a fixed sample of
the shipped comments. Each figure is the best of a few repeats. Each timed pass starts
from an empty normalization cache of the size its path runs with: the service's small
one for the serving path (a comment reaching the service is new), training's large
one for the batch, which then normalizes each text once for both TF-IDF blocks. Left
to chance, the figure depended on the cache an earlier section had left: 1.25x and
1.10x in full runs (the batch normalizing every text twice), 1.8x with
``--only scoring`` (every text cached from the pass before).
"""

from __future__ import annotations

import random
import time

import numpy as np

from .common import Row, Section, percentile


def _texts(count: int) -> list[str]:
    from training.datasets import load_shipped

    texts = list(load_shipped().texts)
    random.Random(0).shuffle(texts)
    return texts[:count]


def run(models_dir: str, *, quick: bool) -> Section:
    from moderation import text as normalizer
    from moderation.scoring import load_scorer

    section = Section("scoring")
    started = time.perf_counter()
    scorer = load_scorer(models_dir)
    texts = _texts(100 if quick else 2000)
    repeats = 1 if quick else 3

    def batched() -> np.ndarray:
        decisions = scorer.pipeline.decision_function(texts)
        return scorer.calibrator.predict_proba(np.asarray(decisions).reshape(-1, 1))[:, 1]

    for text in texts[:50]:
        scorer.score(text)
    batched()
    # Interleaved repeats, best of each: another process stealing the CPU for a
    # moment then hurts both paths alike instead of one.
    single_best = batch_best = float("inf")
    latencies: list[float] = []
    previous = normalizer.cache_size()
    for _ in range(repeats):
        normalizer.set_cache_size(normalizer.SERVING_CACHE_SIZE)
        begin = time.perf_counter()
        for text in texts:
            t0 = time.perf_counter()
            scorer.score(text)
            latencies.append(time.perf_counter() - t0)
        single_best = min(single_best, time.perf_counter() - begin)
        normalizer.set_cache_size(normalizer.TRAINING_CACHE_SIZE)
        begin = time.perf_counter()
        batched()
        batch_best = min(batch_best, time.perf_counter() - begin)

    normalizer.set_cache_size(previous)
    n = len(texts)
    single_us = single_best / n * 1e6
    batch_us = batch_best / n * 1e6
    ratio = single_us / batch_us
    section.raw = {
        "documents": n, "repeats": repeats, "model_version": scorer.version,
        "single_us_per_doc": single_us, "batch_us_per_doc": batch_us,
        "single_p50_us": percentile(latencies, 50) * 1e6,
        "single_p99_us": percentile(latencies, 99) * 1e6,
    }
    section.rows = [
        Row("scoring: one at a time vs batched, per doc", single_us, "us", "ratio <= 2",
            ratio <= 2.0, baseline=batch_us, ratio=ratio,
            notes=f"Scorer.score (with explanation) vs pipeline.decision_function + "
                  f"calibrator on {n} shipped texts / {n}"),
    ]
    section.seconds = time.perf_counter() - started
    return section
