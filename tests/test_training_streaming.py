"""Out-of-core training: a servable model from chunks, and clear errors on bad files."""

from __future__ import annotations

import numpy as np
import pytest
from servinghelpers import serve_one_comment

from moderation.scoring import load_scorer
from training import datasets, streaming
from training.datasets import DataError


@pytest.fixture(scope="module")
def shipped_jsonl(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "shipped.jsonl"
    datasets.write_jsonl(datasets.load_shipped(), path)
    return path


@pytest.fixture(scope="module")
def streamed(tmp_path_factory, shipped_jsonl):
    """(models folder, version, metadata) of one streaming model for the module."""
    models = tmp_path_factory.mktemp("streamed")
    version, meta = streaming.train_streaming(models, [shipped_jsonl], chunk_size=1500)
    return models, version, meta


def test_streaming_model_is_servable_and_separates_spam(streamed):
    models, version, meta = streamed
    assert meta["data"]["n_texts"] == 7160
    assert 0 < meta["holdout"]["n"] < 7160 * 0.1  # about 1 in 20 held out
    assert meta["threshold_warnings"] == []  # enough of both classes held out
    scorer = load_scorer(models)  # first model becomes current
    assert scorer.version == version
    spam = scorer.score("Check out my channel http://bit.ly/x subscribe for free gift cards!!!")
    ham = scorer.score("The chorus of this song gives me chills every time")
    assert spam.spam_probability > 0.5 > ham.spam_probability
    texts = datasets.load_youtube(videos=["Psy"]).texts[:50]
    np.testing.assert_allclose([scorer.probability(t) for t in texts], scorer.score_batch(texts),
                               atol=1e-9)


def test_streaming_model_is_served_without_scikit_learn(streamed, redis_url, redis_client,
                                                        tmp_path):
    """Hashed features: mmh3 stands in for scikit-learn's murmurhash3_32 in the worker."""
    models, _, _ = streamed
    seen = serve_one_comment(redis_url, models, tmp_path)
    assert seen["status"] in (201, 202, 422) and seen["explained"] > 0
    assert seen["heavy"] == []


def test_held_out_sample_is_decided_by_normalized_text():
    assert streaming._held_out("FREE money") == streaming._held_out("free   MONEY!!")


def write_text(path, content):
    path.write_text(content)
    return path


def test_streaming_reads_csv_with_either_column_names(tmp_path):
    ours = write_text(tmp_path / "ours.csv", "text,label\nbuy now,spam\nnice,0\n")
    theirs = write_text(tmp_path / "theirs.csv",
                        "COMMENT_ID,AUTHOR,DATE,CONTENT,CLASS\nx,a,,buy now,1\ny,b,,nice,0\n")
    expected = [("buy now", 1), ("nice", 0)]
    assert list(streaming.iter_rows(ours)) == list(streaming.iter_rows(theirs)) == expected
    with pytest.raises(DataError, match=r"missing column\(s\) label, text"):
        list(streaming.iter_rows(write_text(tmp_path / "bad.csv", "body,class\nx,1\n")))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"text": "a", "label": "spam"}\n{"text": "b", "label": "bogus"}\n',
         "line 2: unknown label 'bogus'"),
        ('{"text": "a"}\n', "line 1: not a text/label object"),
        ("".join(f'{{"text": "t{i}", "label": "ham"}}\n' for i in range(50)),
         "needs both spam and ham"),
    ],
)
def test_streaming_bad_input(tmp_path, content, message):
    path = tmp_path / "data.jsonl"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        streaming.train_streaming(tmp_path / "models", [path])
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())
