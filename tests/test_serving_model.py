"""The serving export: scikit-learn's arithmetic without scikit-learn in the worker."""

from __future__ import annotations

import json

import mmh3
import numpy as np
import pytest
from servinghelpers import serve_one_comment
from sklearn.feature_extraction.text import CountVectorizer, HashingVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils import murmurhash3_32

from moderation import model_registry, serving_model
from moderation.model_registry import ArtifactError
from moderation.scoring import Scorer
from moderation.serving_model import Analyzer, UnsupportedModel
from moderation.text import normalize, promotion_matrix, signal_matrix
from training import pipeline, registry
from training.datasets import load_shipped

TRICKY = [
    "", " ", "\t\n  ", "a", "ab cd", "x  y\t\tz\n\nw", "ＦＲＥＥ ｍｏｎｅｙ", "fr\u200bee v1agra",
    "ελληνικά и русский 中文 العربية", "😀 emoji 🎉🎉", "The the THE a an", "a" * 300,
]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return load_shipped().texts + TRICKY


@pytest.mark.parametrize(
    "vectorizer",
    [
        TfidfVectorizer(preprocessor=normalize, lowercase=False, token_pattern=r"[^ ]+",
                        ngram_range=(1, 2)),
        TfidfVectorizer(preprocessor=normalize, lowercase=False, analyzer="char_wb",
                        ngram_range=(2, 5)),
        CountVectorizer(ngram_range=(1, 3), stop_words="english"),
        CountVectorizer(ngram_range=(2, 3), lowercase=False, token_pattern=r"(\w)\w*"),
        TfidfVectorizer(analyzer="char", ngram_range=(1, 4)),
        HashingVectorizer(analyzer="char_wb", ngram_range=(1, 1), lowercase=False),
    ],
    ids=["word-normalized", "char_wb-normalized", "word-stop-words", "word-group-pattern",
         "char-lowercase", "char_wb-unigrams"],
)
def test_analyzer_cuts_every_text_as_scikit_learn_does(vectorizer, texts):
    ours, theirs = Analyzer.of(vectorizer), vectorizer.build_analyzer()
    assert Analyzer.from_json(json.loads(json.dumps(ours.to_json()))) == ours
    mismatches = [t for t in texts if ours(t) != theirs(t)]
    assert not mismatches, mismatches[:3]


def test_mmh3_hashes_every_term_as_scikit_learn_does(texts):
    analyzers = [Analyzer("word", (1, 2), "moderation.text.normalize", token_pattern=r"[^ ]+"),
                 Analyzer("char_wb", (2, 5), "moderation.text.normalize"),
                 Analyzer("char", (1, 3), lowercase=False)]  # raw text: emoji, CJK, controls
    terms = {term for analyzer in analyzers for t in texts for term in analyzer(t)}
    assert len(terms) > 100_000
    assert all(mmh3.hash(term, 0) == murmurhash3_32(term, seed=0) for term in terms)


def fitted(features: FeatureUnion, texts: list[str], y: np.ndarray):
    """A pipeline and calibrator fitted the way training fits them (small and quick)."""
    model = Pipeline([("features", features),
                      ("clf", LogisticRegression(C=10.0, solver="liblinear"))])
    model.fit(texts, y)
    calibrator = pipeline.fit_calibrator(model.decision_function(texts), y)
    return {"pipeline": model, "calibrator": calibrator}


def test_any_supported_feature_set_exports_and_scores_as_scikit_learn_does(tmp_path):
    """Blocks in any order and number, weights, a dropped step: the export follows."""
    corpus = load_shipped()
    texts, y = corpus.texts[:1500], corpus.y[:1500]
    features = FeatureUnion(
        [
            ("signals", FunctionTransformer(signal_matrix, validate=False)),
            ("words", CountVectorizer(ngram_range=(1, 2), stop_words="english", binary=True)),
            ("unused", "drop"),
            ("chars", TfidfVectorizer(analyzer="char", ngram_range=(1, 3), norm=None,
                                      sublinear_tf=True, min_df=3)),
            ("hashed", HashingVectorizer(preprocessor=normalize, n_features=2**12,
                                         alternate_sign=False)),
            ("promotion", FunctionTransformer(promotion_matrix, validate=False)),
        ],
        transformer_weights={"chars": 0.5, "hashed": 2.0, "promotion": 0.3},
    )
    objects = fitted(features, texts, y)
    path = tmp_path / "serving.npz"
    serving_model.save(serving_model.from_pipeline(objects), path)
    scorer = Scorer(serving_model.load(path), {"version": "v", "thresholds": {
        "publish_below": 0.3, "reject_at": 0.7}}, reference=lambda: objects)
    sample = corpus.texts[1500:2500] + TRICKY
    single = [scorer.probability(t) for t in sample]
    np.testing.assert_allclose(single, scorer.score_batch(sample), rtol=0, atol=1e-9)
    kinds = {e["kind"] for t in sample[:50] for e in scorer.score(t).explanation}
    assert kinds == {"term", "chars", "signal"}


def lengths(texts) -> np.ndarray:  # noqa: ANN001 - what FunctionTransformer passes
    """A feature function the serving export does not know."""
    return np.array([[len(t)] for t in texts], dtype=np.float64)


def test_a_feature_step_it_cannot_reproduce_is_refused_before_anything_is_written(tmp_path):
    corpus = load_shipped()
    features = FeatureUnion([
        ("word", TfidfVectorizer()),
        ("custom", FunctionTransformer(lengths, validate=False)),
    ])
    objects = fitted(features, corpus.texts[:300], corpus.y[:300])
    with pytest.raises(UnsupportedModel, match=r"'custom': function .*\.lengths"):
        serving_model.from_pipeline(objects)
    with pytest.raises(ArtifactError, match="cannot be served without scikit-learn: feature "
                                            "step 'custom'"):
        registry.save_version(tmp_path, objects, {"thresholds": {}})
    assert list(tmp_path.iterdir()) == []


def test_a_worker_serves_without_importing_scikit_learn_or_scipy(
    models_dir, redis_url, redis_client, tmp_path
):
    seen = serve_one_comment(redis_url, models_dir, tmp_path)
    assert seen["status"] in (201, 202, 422)
    assert seen["verdict"] == "publish" and seen["explained"] > 0
    assert seen["heavy"] == []


def test_a_worker_given_an_older_version_converts_it_with_scikit_learn(
    models_dir, redis_url, redis_client, tmp_path
):
    """The control for the test above: the same check does see the conversion's imports."""
    import shutil

    version = model_registry.current_from_file(models_dir)
    shutil.copytree(models_dir / version, tmp_path / "models" / version)
    meta_path = tmp_path / "models" / version / "metadata.json"
    meta = json.loads(meta_path.read_text())
    del meta["serving_sha256"]
    meta_path.write_text(json.dumps(meta))
    seen = serve_one_comment(redis_url, tmp_path / "models", tmp_path)
    assert seen["verdict"] == "publish"
    assert seen["heavy"] == ["scipy", "sklearn", "skops"]
