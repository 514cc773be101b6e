"""Score one comment: load the model once, score fast, explain, reload on promotion.

The model is loaded at start-up (:func:`init_app`) and swapped when an operator
promotes another version: each worker checks the Redis record
``keys.MODEL_CURRENT`` at most every ``MODEL_RELOAD_SECONDS`` with one cheap GET,
and loads the new version only when it differs.

The service loads the model's serving export (:mod:`moderation.serving_model`:
vocabulary lookups, idf weights, coefficients, calibration as numpy arrays), never
the scikit-learn objects, so a worker does not import scikit-learn or SciPy.
:class:`Scorer` does the arithmetic for one document by hand, which is also far
cheaper per call than ``predict_proba``. :meth:`Scorer.score_batch` is the
scikit-learn path (it loads ``model.skops`` on first use: training, evaluation and
the tests, which pin the fast path equal to it to 1e-9).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import redis
from flask import Flask, current_app

from . import metrics, model_registry
from .model_registry import ArtifactError, ModelNotFound
from .serving_model import HashBlock, ServingModel, SignalBlock, VocabularyBlock

__all__ = [
    "ArtifactError",
    "ModelNotFound",
    "Score",
    "Scorer",
    "get_scorer",
    "init_app",
    "load_scorer",
]

log = logging.getLogger(__name__)

#: How many feature contributions an explanation lists.
EXPLAIN_TOP = 8

#: (contribution, feature, kind, direction): ``direction`` says whether a signal's value
#: is above or below the average training text's (None for terms).
Contribution = tuple[float, str, str, str | None]


@dataclass(frozen=True)
class Score:
    """The model's opinion of one comment."""

    spam_probability: float  # 0..1, calibrated
    verdict: str  # "publish" | "hold" | "reject"
    model_version: str
    explanation: list[dict]  # largest |contribution| first: feature, kind, weight[, compared]
    reason: str  # human-readable, e.g. "score 0.93 >= reject threshold 0.90"


def _top(contributions: np.ndarray, k: int = EXPLAIN_TOP) -> np.ndarray:
    """Indices of the ``k`` largest absolute contributions (unordered)."""
    if contributions.size <= k:
        return np.arange(contributions.size)
    return np.argpartition(np.abs(contributions), -k)[-k:]


def _weighed(
    coef: np.ndarray,
    index: np.ndarray,
    values: np.ndarray,
    name_of: Callable[[int], str],
    kind: str,
    parts: list[Contribution] | None,
) -> float:
    """A block's share of the decision value; its top contributions go into ``parts``."""
    contrib = values * coef[index]
    if parts is not None:
        # Only a block's own top contributions can be among the overall top ones.
        parts.extend((float(contrib[k]), name_of(int(index[k])), kind, None)
                     for k in _top(contrib).tolist())
    return float(contrib.sum())


def _vocabulary_part(
    block: VocabularyBlock, text: str, explain: bool, parts: list[Contribution]
) -> float:
    """This block's share of the decision value (TfidfTransformer's arithmetic)."""
    # Counted in C, then the out-of-vocabulary terms (None) dropped: a generator that
    # skipped them was a Python step per term. The order of the rest is unchanged.
    counts = Counter(map(block.vocabulary.get, block.analyzer(text)))
    counts.pop(None, None)
    if not counts:
        return 0.0
    index = np.fromiter(counts.keys(), dtype=np.intp, count=len(counts))
    values = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
    if block.binary:
        values[:] = 1.0
    if block.sublinear:
        values = np.log(values) + 1.0
    if block.idf is not None:
        values *= block.idf[index]
    if block.norm == "l2":
        values /= math.sqrt(float(values @ values))
    return _weighed(block.coef, index, values, block.terms.__getitem__, block.analyzer.kind,
                    parts if explain else None)


def _hash_part(block: HashBlock, text: str, explain: bool, parts: list[Contribution]) -> float:
    """This block's share of the decision value (HashingVectorizer, l2-normalized counts)."""
    terms: dict[int, str] = {}
    counter: Counter[int] = Counter()
    for term in block.analyzer(text):
        bucket = block.index(term)
        counter[bucket] += 1
        terms.setdefault(bucket, term)
    if not counter:
        return 0.0
    index = np.fromiter(counter.keys(), dtype=np.intp, count=len(counter))
    values = np.fromiter(counter.values(), dtype=np.float64, count=len(counter))
    values /= math.sqrt(float(values @ values))
    return _weighed(block.coef, index, values, terms.__getitem__, block.analyzer.kind,
                    parts if explain else None)


class Scorer:
    """A loaded model version with its thresholds; :meth:`score` is the serving path."""

    def __init__(
        self,
        model: ServingModel,
        metadata: dict[str, Any],
        *,
        publish_below: float | None = None,
        reject_at: float | None = None,
        reference: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.model = model
        self.metadata = metadata
        self.version: str = str(metadata["version"])
        thresholds = metadata.get("thresholds", {})
        self.publish_below = float(
            publish_below if publish_below is not None else thresholds["publish_below"]
        )
        self.reject_at = float(reject_at if reject_at is not None else thresholds["reject_at"])
        if not 0.0 <= self.publish_below <= self.reject_at <= 1.0:
            raise ValueError(
                f"thresholds must satisfy 0 <= publish_below ({self.publish_below}) "
                f"<= reject_at ({self.reject_at}) <= 1"
            )
        self._reference = reference
        self._objects: dict[str, Any] | None = None
        n_signals = sum(b.width for b in model.blocks if isinstance(b, SignalBlock))
        means = metadata.get("signal_means") or [0.0] * n_signals
        self._signal_means = [float(m) for m in means]

    # -- fast single-document path -------------------------------------------------

    def _contributions(self, text: str, explain: bool = True) -> tuple[float, list[Contribution]]:
        """(decision value, [(contribution, feature, kind), ...]) for one raw text."""
        decision = self.model.intercept
        parts: list[Contribution] = []
        means = iter(self._signal_means)
        for block in self.model.blocks:
            if isinstance(block, VocabularyBlock):
                decision += _vocabulary_part(block, text, explain, parts)
            elif isinstance(block, HashBlock):
                decision += _hash_part(block, text, explain, parts)
            else:
                for value, weight, name in zip(
                    block.values(text), block.coef.tolist(), block.names, strict=True
                ):
                    decision += value * weight
                    # Explained relative to the average comment: a typical length explains
                    # nothing, and a missing link can push towards ham. Which of the two
                    # it was goes with the entry, or "links -0.35" would read as if the
                    # comment had links.
                    difference = value - next(means, 0.0)
                    if difference * weight:
                        parts.append((difference * weight, name, "signal",
                                      "above average" if difference > 0 else "below average"))
        return decision, parts

    def _probability(self, decision: float) -> float:
        # The Platt calibrator is a 1-D logistic regression: sigmoid(a * d + b).
        z = self.model.calibration_coef * decision + self.model.calibration_intercept
        if z >= 0:
            return 1.0 / (1.0 + math.exp(-z))
        e = math.exp(z)
        return e / (1.0 + e)

    def probability(self, text: str) -> float:
        """Calibrated spam probability of one text (fast path)."""
        return self._probability(self._contributions(text, explain=False)[0])

    def verdict(self, probability: float) -> tuple[str, str]:
        """(verdict, reason) for a probability under this scorer's thresholds."""
        if probability >= self.reject_at:
            return "reject", f"score {probability:.3f} >= reject threshold {self.reject_at:.3f}"
        if probability < self.publish_below:
            return "publish", (
                f"score {probability:.3f} < publish threshold {self.publish_below:.3f}"
            )
        return "hold", (
            f"score {probability:.3f} between publish threshold {self.publish_below:.3f} "
            f"and reject threshold {self.reject_at:.3f}"
        )

    def score(self, text: str) -> Score:
        """Score one comment with explanation (the serving path)."""
        decision, parts = self._contributions(text)
        probability = self._probability(decision)
        verdict, reason = self.verdict(probability)
        parts.sort(key=lambda part: abs(part[0]), reverse=True)
        explanation = [
            {"feature": feature, "kind": kind, "weight": round(weight, 4)}
            | ({"compared": direction} if direction else {})
            for weight, feature, kind, direction in parts[:EXPLAIN_TOP]
        ]
        return Score(probability, verdict, self.version, explanation, reason)

    # -- batched scikit-learn path (reference and bulk evaluation) ----------------

    def _sklearn_objects(self) -> dict[str, Any]:
        """The version's fitted scikit-learn objects, loaded (and sklearn imported) once."""
        if self._objects is None:
            if self._reference is None:
                raise ArtifactError(f"model {self.version}: no scikit-learn artifact to load")
            self._objects = self._reference()
        return self._objects

    @property
    def pipeline(self) -> Any:
        """The fitted scikit-learn pipeline (loads ``model.skops``: not for serving)."""
        return self._sklearn_objects()["pipeline"]

    @property
    def calibrator(self) -> Any:
        """The fitted Platt calibrator (loads ``model.skops``: not for serving)."""
        return self._sklearn_objects()["calibrator"]

    def score_batch(self, texts: list[str]) -> np.ndarray:
        """Calibrated spam probabilities of many texts through scikit-learn."""
        decisions = self.pipeline.decision_function(list(texts))
        return self.calibrator.predict_proba(np.asarray(decisions).reshape(-1, 1))[:, 1]


def load_scorer(
    models_dir: str | Path,
    version: str | None = None,
    *,
    publish_below: float | None = None,
    reject_at: float | None = None,
    client: Any = None,
) -> Scorer:
    """Load one version (``None``: the current one, from Redis ``client`` or ``CURRENT``).

    Raises :class:`ModelNotFound` when there is no such model and :class:`ArtifactError`
    when the artifact cannot be trusted or used.
    """
    if version is None:
        version = model_registry.current_version(models_dir, client)
    model, metadata = model_registry.load_serving(models_dir, version)

    def reference() -> dict[str, Any]:
        return model_registry.load_artifact(models_dir, version)[0]

    return Scorer(model, metadata, publish_below=publish_below, reject_at=reject_at,
                  reference=reference)


# -- Flask integration ---------------------------------------------------------


class _Reloader:
    """Checks the Redis record at most every ``interval`` seconds; swaps the scorer."""

    def __init__(self, app: Flask, interval: float, failing: bool = False) -> None:
        self.app = app
        self.interval = interval
        self.next_check = time.monotonic() + interval
        self.lock = threading.Lock()
        # Redis did not answer the last check: warn once per outage, not every check.
        self.failing = failing

    def _load(self, version: str) -> Scorer:
        return load_scorer(
            self.app.config["MODELS_DIR"],
            version,
            publish_below=self.app.config.get("PUBLISH_BELOW"),
            reject_at=self.app.config.get("REJECT_AT"),
        )

    def check(self) -> None:
        now = time.monotonic()
        if now < self.next_check or not self.lock.acquire(blocking=False):
            return
        try:
            self.next_check = now + self.interval
            client = self.app.extensions.get("redis")
            try:
                wanted = model_registry.current_from_redis(client)
            except Exception as exc:  # Redis down: keep serving the loaded model
                if not self.failing:
                    log.warning("model reload check failed (not repeated until Redis "
                                "answers again): %s", exc)
                self.failing = True
                return
            if self.failing:
                self.failing = False
                log.info("model reload check: Redis answers again")
            current: Scorer = self.app.extensions["scorer"]
            if not wanted or wanted == current.version:
                return
            try:
                scorer = self._load(wanted)
            except (ModelNotFound, ArtifactError, ValueError) as exc:
                log.error("cannot switch to model %s, keeping %s: %s", wanted, current.version, exc)
                return
            self.app.extensions["scorer"] = scorer
            metrics.model_switched(current.version, scorer.version)
            log.info("switched model %s -> %s", current.version, scorer.version)
        finally:
            self.lock.release()

    def watch(self) -> threading.Thread:
        """Also check from a background thread, so a worker that serves no request
        switches on time too (its metrics then name the promoted version, and the
        load is not paid inside a reader's request). Started by gunicorn's
        post_worker_init, after the fork: a thread does not survive a fork."""

        def loop() -> None:
            while True:
                time.sleep(self.interval)
                try:
                    self.check()
                except Exception:  # keep watching; requests still check as well
                    log.exception("background model reload check failed")

        thread = threading.Thread(target=loop, name="model-reloader", daemon=True)
        thread.start()
        return thread


def init_app(app: Flask) -> None:
    """Load the current model once and check for promotions before requests."""
    client = app.extensions.get("redis")
    thresholds = {"publish_below": app.config.get("PUBLISH_BELOW"),
                  "reject_at": app.config.get("REJECT_AT")}
    redis_down = False
    try:
        scorer = load_scorer(app.config["MODELS_DIR"], client=client, **thresholds)
    except redis.RedisError as exc:
        # Start anyway (requests answer 503 until Redis is back): the models folder's
        # current version now, the Redis record once the reloader can read it.
        log.warning("Redis does not answer at start (%s): serving the models folder's "
                    "current version until it does", exc)
        scorer = load_scorer(app.config["MODELS_DIR"], **thresholds)
        redis_down = True
    app.extensions["scorer"] = scorer
    metrics.model_switched(None, app.extensions["scorer"].version)
    reloader = _Reloader(app, float(app.config.get("MODEL_RELOAD_SECONDS") or 1.0),
                         failing=redis_down)
    app.extensions["scorer_reloader"] = reloader
    app.before_request(reloader.check)


def get_scorer() -> Scorer:
    """The app's current scorer."""
    return current_app.extensions["scorer"]
