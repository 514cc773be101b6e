"""Score one comment: load the model once, score fast, explain, reload on promotion.

The model is loaded at start-up (:func:`init_app`) and swapped when an operator
promotes another version: each worker checks the Redis record
``keys.MODEL_CURRENT`` at most every ``MODEL_RELOAD_SECONDS`` with one cheap GET,
and loads the new version only when it differs.

Scoring one comment through scikit-learn's ``predict_proba`` costs far more in
per-call overhead than the arithmetic; :class:`Scorer` therefore precomputes the
vocabulary lookups, idf weights and coefficients once and does the linear algebra
for a single document by hand. :meth:`Scorer.score_batch` is the scikit-learn path
the fast path is tested against (equal to 1e-9).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from flask import Flask, current_app
from sklearn.utils import murmurhash3_32

from . import model_registry
from .model_registry import ArtifactError, ModelNotFound
from .text import SIGNAL_NAMES, signals

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
#: Hashed terms remembered per block by streaming models' fast path (bounded memory).
HASH_CACHE_SIZE = 200_000


@dataclass(frozen=True)
class Score:
    """The model's opinion of one comment."""

    spam_probability: float  # 0..1, calibrated
    verdict: str  # "publish" | "hold" | "reject"
    model_version: str
    explanation: list[dict]  # largest |contribution| first: feature, kind, weight
    reason: str  # human-readable, e.g. "score 0.93 >= reject threshold 0.90"


def _top(contributions: np.ndarray, k: int = EXPLAIN_TOP) -> np.ndarray:
    """Indices of the ``k`` largest absolute contributions (unordered)."""
    if contributions.size <= k:
        return np.arange(contributions.size)
    return np.argpartition(np.abs(contributions), -k)[-k:]


@dataclass(frozen=True)
class _TfidfBlock:
    """One fitted TfidfVectorizer reduced to what scoring one document needs."""

    kind: str  # "term" or "chars" (used in explanations)
    analyzer: Any  # the vectorizer's own analyzer: normalize + tokens/n-grams
    vocabulary: dict[str, int]
    idf: np.ndarray
    coef: np.ndarray  # this block's slice of the classifier's coefficients
    sublinear: bool
    names: np.ndarray


def _tfidf_block(kind: str, vectorizer: Any, coef: np.ndarray) -> _TfidfBlock:
    if vectorizer.norm != "l2" or not vectorizer.use_idf or vectorizer.binary:
        raise ArtifactError("unsupported TF-IDF settings for the fast scorer")
    return _TfidfBlock(
        kind=kind,
        analyzer=vectorizer.build_analyzer(),
        vocabulary=vectorizer.vocabulary_,
        idf=np.asarray(vectorizer.idf_, dtype=np.float64),
        coef=coef,
        sublinear=bool(vectorizer.sublinear_tf),
        names=vectorizer.get_feature_names_out(),
    )


@dataclass(frozen=True)
class _HashBlock:
    """One fitted HashingVectorizer (streaming models) reduced to the per-document math."""

    kind: str
    analyzer: Any
    n_features: int
    coef: np.ndarray
    cache: dict[str, int]  # term -> bucket; n-grams repeat across comments

    def index(self, term: str) -> int:
        bucket = self.cache.get(term)
        if bucket is None:
            # The bucket scikit-learn's _hashing_fast.transform computes (incl. abs(-2**31)).
            h = murmurhash3_32(term, seed=0)
            if h == -2147483648:
                bucket = (2147483647 - (self.n_features - 1)) % self.n_features
            else:
                bucket = abs(h) % self.n_features
            if len(self.cache) >= HASH_CACHE_SIZE:
                self.cache.clear()
            self.cache[term] = bucket
        return bucket


def _hash_block(kind: str, vectorizer: Any, coef: np.ndarray) -> _HashBlock:
    if vectorizer.alternate_sign or vectorizer.binary or vectorizer.norm != "l2":
        raise ArtifactError("unsupported hashing settings for the fast scorer")
    return _HashBlock(kind, vectorizer.build_analyzer(), int(vectorizer.n_features), coef, {})


class Scorer:
    """A loaded model version with its thresholds; :meth:`score` is the serving path."""

    def __init__(
        self,
        objects: dict[str, Any],
        metadata: dict[str, Any],
        *,
        publish_below: float | None = None,
        reject_at: float | None = None,
    ) -> None:
        self.pipeline = objects["pipeline"]
        self.calibrator = objects["calibrator"]
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
        self._prepare_fast_path()

    # -- fast single-document path -------------------------------------------------

    def _prepare_fast_path(self) -> None:
        features = self.pipeline.named_steps["features"]
        clf = self.pipeline.named_steps["clf"]
        coef = np.asarray(clf.coef_, dtype=np.float64).ravel()
        blocks = dict(features.transformer_list)
        offset = 0
        self._blocks: list[_TfidfBlock] = []
        self._fast = all(hasattr(blocks[name], "vocabulary_") for name in ("word", "char"))
        # Streaming models hash their features (no vocabulary).
        self._hashed = all(hasattr(blocks[name], "n_features") for name in ("word", "char"))
        self._intercept = float(np.ravel(clf.intercept_)[0])
        self._cal_coef = float(np.ravel(self.calibrator.coef_)[0])
        self._cal_intercept = float(np.ravel(self.calibrator.intercept_)[0])
        means = self.metadata.get("signal_means") or [0.0] * len(SIGNAL_NAMES)
        self._signal_means = [float(m) for m in means]
        self._signal_coef = coef[-len(SIGNAL_NAMES):]
        if self._hashed:
            self._hash_blocks = []
            for name, kind in (("word", "term"), ("char", "chars")):
                size = int(blocks[name].n_features)
                self._hash_blocks.append(
                    _hash_block(kind, blocks[name], coef[offset : offset + size])
                )
                offset += size
        if not self._fast:
            return
        for name, kind in (("word", "term"), ("char", "chars")):
            size = len(blocks[name].vocabulary_)
            self._blocks.append(_tfidf_block(kind, blocks[name], coef[offset : offset + size]))
            offset += size
        if offset + len(SIGNAL_NAMES) != coef.size:
            raise ArtifactError("model features do not match this version of moderation.text")

    def _contributions(
        self, text: str, explain: bool = True
    ) -> tuple[float, list[tuple[float, str, str]]]:
        """(decision value, [(contribution, feature, kind), ...]) for one raw text."""
        decision = self._intercept
        parts: list[tuple[float, str, str]] = []
        if self._hashed:
            for hashed in self._hash_blocks:
                terms: dict[int, str] = {}
                counter: Counter[int] = Counter()
                for term in hashed.analyzer(text):
                    bucket = hashed.index(term)
                    counter[bucket] += 1
                    terms.setdefault(bucket, term)
                if not counter:
                    continue
                index = np.fromiter(counter.keys(), dtype=np.intp, count=len(counter))
                values = np.fromiter(counter.values(), dtype=np.float64, count=len(counter))
                values /= math.sqrt(float(values @ values))
                contrib = values * hashed.coef[index]
                decision += float(contrib.sum())
                if explain:
                    top = _top(contrib)
                    names = [terms[i] for i in index[top].tolist()]
                    parts.extend(
                        zip(contrib[top].tolist(), names, [hashed.kind] * len(names), strict=True)
                    )
        elif not self._fast:
            decision = float(self.pipeline.decision_function([text])[0])
            raw = signals(text)
            parts = [((value - mean) * float(weight), name, "signal") for value, weight, mean, name
                     in zip(raw, self._signal_coef, self._signal_means, SIGNAL_NAMES, strict=True)]
            return decision, parts
        for block in self._blocks:
            counts = Counter(
                index
                for index in map(block.vocabulary.get, block.analyzer(text))
                if index is not None
            )
            if not counts:
                continue
            index = np.fromiter(counts.keys(), dtype=np.intp, count=len(counts))
            tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
            if block.sublinear:
                tf = np.log(tf) + 1.0
            values = tf * block.idf[index]
            values /= math.sqrt(float(values @ values))
            contrib = values * block.coef[index]
            decision += float(contrib.sum())
            if not explain:
                continue
            # Only a block's own top contributions can be among the overall top ones.
            top = _top(contrib)
            names = block.names[index[top]].tolist()
            parts.extend(zip(contrib[top].tolist(), names, [block.kind] * len(names), strict=True))
        raw = signals(text)
        for value, weight, mean, name in zip(
            raw, self._signal_coef, self._signal_means, SIGNAL_NAMES, strict=True
        ):
            decision += value * float(weight)
            # Explained relative to the average comment: a typical length explains nothing.
            relative = (value - mean) * float(weight)
            if relative:
                parts.append((relative, name, "signal"))
        return decision, parts

    def _probability(self, decision: float) -> float:
        # The Platt calibrator is a 1-D logistic regression: sigmoid(a * d + b).
        z = self._cal_coef * decision + self._cal_intercept
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
            for weight, feature, kind in parts[:EXPLAIN_TOP]
        ]
        return Score(probability, verdict, self.version, explanation, reason)

    # -- batched scikit-learn path (reference and bulk evaluation) ----------------

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
    objects, metadata = model_registry.load_artifact(models_dir, version)
    return Scorer(objects, metadata, publish_below=publish_below, reject_at=reject_at)


# -- Flask integration ---------------------------------------------------------


class _Reloader:
    """Checks the Redis record at most every ``interval`` seconds; swaps the scorer."""

    def __init__(self, app: Flask, interval: float) -> None:
        self.app = app
        self.interval = interval
        self.next_check = time.monotonic() + interval
        self.lock = threading.Lock()

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
                log.warning("model reload check failed: %s", exc)
                return
            current: Scorer = self.app.extensions["scorer"]
            if not wanted or wanted == current.version:
                return
            try:
                scorer = self._load(wanted)
            except (ModelNotFound, ArtifactError, ValueError) as exc:
                log.error("cannot switch to model %s, keeping %s: %s", wanted, current.version, exc)
                return
            self.app.extensions["scorer"] = scorer
            log.info("switched model %s -> %s", current.version, scorer.version)
        finally:
            self.lock.release()


def init_app(app: Flask) -> None:
    """Load the current model once and check for promotions before requests."""
    client = app.extensions.get("redis")
    app.extensions["scorer"] = load_scorer(
        app.config["MODELS_DIR"],
        publish_below=app.config.get("PUBLISH_BELOW"),
        reject_at=app.config.get("REJECT_AT"),
        client=client,
    )
    reloader = _Reloader(app, float(app.config.get("MODEL_RELOAD_SECONDS") or 1.0))
    app.extensions["scorer_reloader"] = reloader
    app.before_request(reloader.check)


def get_scorer() -> Scorer:
    """The app's current scorer."""
    return current_app.extensions["scorer"]
