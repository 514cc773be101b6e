"""The serving scorer: contract, fast path == scikit-learn, artifact safety, hot reload."""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio

from moderation import keys, model_registry
from moderation.model_registry import ArtifactError, ModelNotFound
from moderation.scoring import Score, Scorer, load_scorer
from training import registry
from training.datasets import load_shipped

TRICKY = [
    "",
    " ",
    "!!!",
    "ＦＲＥＥ ｍｏｎｅｙ ａｔ ｈｔｔｐ：／／ｂｉｔ．ｌｙ／ｘ",
    "fr\u200bee v1agra 4 u",
    "a" * 3000,
    "Check out my channel http://www.youtube.com/user/x and SUBSCRIBE!!!",
    "I love this song so much <3",
    "Call 0871-872-9758 NOW to claim your £2000 prize",
    "\x00\x01 control \u202e bidi",
    "ελληνικά и русский 中文 العربية",
]


@pytest.fixture(scope="module")
def scorer(models_dir) -> Scorer:
    return load_scorer(models_dir)


def copy_version(models_dir: Path, version: str, dest: Path, new_version: str) -> str:
    """A second version for registry tests: same artifact, new id (metadata rewritten)."""
    target = dest / new_version
    shutil.copytree(models_dir / version, target)
    meta = json.loads((target / "metadata.json").read_text())
    meta["version"] = new_version
    (target / "metadata.json").write_text(json.dumps(meta))
    return new_version


def test_scorer_loads_the_current_version_with_its_thresholds(models_dir, scorer):
    assert scorer.version == (models_dir / "CURRENT").read_text().strip()
    meta = model_registry.read_metadata(models_dir, scorer.version)
    assert scorer.publish_below == meta["thresholds"]["publish_below"]
    assert scorer.reject_at == meta["thresholds"]["reject_at"]
    assert 0 < scorer.publish_below <= 0.5 <= scorer.reject_at < 1


def test_score_follows_the_contract(scorer):
    spam = scorer.score("Check out my channel http://bit.ly/free and SUBSCRIBE!!! free iPhone")
    ham = scorer.score("I remember hearing this song at my cousin's wedding in 2012")
    assert isinstance(spam, Score)
    assert spam.verdict == "reject" and spam.spam_probability >= scorer.reject_at
    assert "reject threshold" in spam.reason
    assert ham.verdict == "publish" and ham.spam_probability < scorer.publish_below
    assert spam.model_version == scorer.version
    for result in (spam, ham):
        assert result.explanation
        weights = [abs(e["weight"]) for e in result.explanation]
        assert weights == sorted(weights, reverse=True)
        assert {e["kind"] for e in result.explanation} <= {"term", "chars", "signal"}
    # The spam comment's strongest reasons push towards spam and name what it contains.
    spam_features = {e["feature"] for e in spam.explanation if e["weight"] > 0}
    assert spam_features & {"subscribe", "check out", "my channel", "links", "urltoken",
                            "urldomain_bit_ly", "channel", "check"}


def test_signal_entries_say_whether_the_comment_is_above_or_below_average(scorer):
    def links(text: str) -> dict:
        entries = {e["feature"]: e for e in scorer.score(text).explanation}
        return entries["links"]

    with_links = links("Check out my channel http://bit.ly/free and http://spam.example/x")
    without = links("Muy buen artículo")
    assert with_links["compared"] == "above average" and with_links["weight"] > 0
    assert without["compared"] == "below average" and without["weight"] < 0
    # Terms and character n-grams are present or not: nothing to compare.
    assert all("compared" not in e
               for e in scorer.score("Muy buen artículo").explanation if e["kind"] != "signal")


@pytest.mark.parametrize("probability", [0.0, 0.5, 1.0])
def test_verdict_boundaries(scorer, probability):
    verdict, reason = scorer.verdict(probability)
    if probability >= scorer.reject_at:
        assert verdict == "reject"
    elif probability < scorer.publish_below:
        assert verdict == "publish"
    else:
        assert verdict == "hold"
    assert f"{probability:.3f}" in reason


def test_fast_path_equals_scikit_learn_on_all_shipped_texts(scorer):
    texts = load_shipped().texts + TRICKY
    batched = scorer.score_batch(texts)
    single = np.array([scorer.score(t).spam_probability for t in texts])
    np.testing.assert_allclose(single, batched, rtol=0, atol=1e-9)


def test_fast_path_is_not_much_slower_than_batched(scorer):
    from moderation.text import clear_cache

    texts = load_shipped().texts[:2000]
    clear_cache()
    started = time.perf_counter()
    scorer.score_batch(texts)
    batched = (time.perf_counter() - started) / len(texts)
    clear_cache()
    started = time.perf_counter()
    for text in texts:
        scorer.probability(text)
    single = (time.perf_counter() - started) / len(texts)
    # Issue target is 2x; the bound here leaves room for a loaded CI machine.
    assert single <= 3 * batched, (single, batched)


def test_thresholds_can_be_overridden_and_are_validated(models_dir):
    scorer = load_scorer(models_dir, publish_below=0.2, reject_at=0.8)
    assert (scorer.publish_below, scorer.reject_at) == (0.2, 0.8)
    assert scorer.score("hello").verdict in ("publish", "hold")
    with pytest.raises(ValueError, match="publish_below"):
        load_scorer(models_dir, publish_below=0.9, reject_at=0.8)


def test_no_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelNotFound, match=r"no trained model in .*: run `make train`"):
        load_scorer(tmp_path)
    assert issubclass(ModelNotFound, RuntimeError)


def test_unknown_version_is_a_clear_error(models_dir):
    with pytest.raises(ModelNotFound, match="no model version 'nope'"):
        load_scorer(models_dir, "nope")
    with pytest.raises(ModelNotFound, match="invalid model version"):
        load_scorer(models_dir, "../etc")


@pytest.mark.parametrize("name", ["serving.npz", "model.skops"])
def test_tampered_file_is_refused(models_dir, scorer, tmp_path, name):
    """The service loads serving.npz, training and promotion model.skops: both are checked."""
    copy_version(models_dir, scorer.version, tmp_path, "tampered")
    path = tmp_path / "tampered" / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=f"{name}: checksum does not match"):
        if name == "serving.npz":
            load_scorer(tmp_path, "tampered")
        else:
            model_registry.load_artifact(tmp_path, "tampered")


def test_recorded_serving_export_that_is_missing_is_refused(models_dir, scorer, tmp_path):
    copy_version(models_dir, scorer.version, tmp_path, "gone")
    (tmp_path / "gone" / "serving.npz").unlink()
    with pytest.raises(ArtifactError, match="serving.npz: missing"):
        load_scorer(tmp_path, "gone")


def test_resealed_serving_export_that_is_not_one_is_refused(models_dir, scorer, tmp_path):
    copy_version(models_dir, scorer.version, tmp_path, "junk")
    path = tmp_path / "junk" / "serving.npz"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    reseal(path, key="serving_sha256")
    with pytest.raises(ArtifactError, match="serving.npz: not a serving export"):
        load_scorer(tmp_path, "junk")


def test_foreign_artifact_with_untrusted_types_is_refused(models_dir, scorer, tmp_path):
    # A well-formed skops file whose metadata checksum matches, but holding a type we
    # never trust (a stand-in for a malicious model).
    copy_version(models_dir, scorer.version, tmp_path, "foreign")
    artifact = tmp_path / "foreign" / "model.skops"
    sio.dump({"pipeline": shutil.rmtree, "calibrator": None}, artifact)
    reseal(artifact)
    with pytest.raises(ArtifactError, match="untrusted types .*shutil.rmtree"):
        model_registry.load_artifact(tmp_path, "foreign")


def reseal(path, key="artifact_sha256"):
    """Make the metadata's checksum match a replaced file, as a careful attacker would."""
    meta_path = path.parent / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta[key] = model_registry.sha256_file(path)
    meta_path.write_text(json.dumps(meta))


def test_corrupt_artifact_is_refused(models_dir, scorer, tmp_path):
    copy_version(models_dir, scorer.version, tmp_path, "corrupt")
    artifact = tmp_path / "corrupt" / "model.skops"
    artifact.write_bytes(b"not a zip file at all")
    reseal(artifact)
    with pytest.raises(ArtifactError, match="corrupt model artifact"):
        model_registry.load_artifact(tmp_path, "corrupt")


def test_incompatible_scikit_learn_is_a_clear_error_but_serving_needs_none(
    models_dir, scorer, tmp_path
):
    copy_version(models_dir, scorer.version, tmp_path, "old")
    meta_path = tmp_path / "old" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["sklearn_version"] = "0.24.2"
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match=r"trained with scikit-learn 0\.24\.2.*retrain"):
        model_registry.load_artifact(tmp_path, "old")
    # The serving export is plain arrays: any scikit-learn (or none) serves it.
    assert load_scorer(tmp_path, "old").probability("hello") == scorer.probability("hello")


def without_export(models_dir: Path, version: str, dest: Path, new_version: str) -> str:
    """A copy of ``version`` as saved before serving.npz existed (no recorded checksum)."""
    copy_version(models_dir, version, dest, new_version)
    meta_path = dest / new_version / "metadata.json"
    meta = json.loads(meta_path.read_text())
    del meta["serving_sha256"]
    meta_path.write_text(json.dumps(meta))
    return new_version


def test_version_without_serving_export_is_converted_and_logged(
    models_dir, scorer, tmp_path, caplog
):
    without_export(models_dir, scorer.version, tmp_path, "older")
    # A file nobody recorded a checksum for is never read, not even a broken one.
    (tmp_path / "older" / "serving.npz").write_bytes(b"planted")
    texts = load_shipped().texts[:200] + TRICKY
    with caplog.at_level("WARNING", logger="moderation.model_registry"):
        older = load_scorer(tmp_path, "older")
    assert "model older has no serving export" in caplog.text
    assert "python -m training export-serving" in caplog.text
    assert [older.score(t) for t in texts] == [
        dataclasses.replace(scorer.score(t), model_version="older") for t in texts
    ]


def test_export_serving_writes_the_export_once(models_dir, scorer, tmp_path, caplog):
    without_export(models_dir, scorer.version, tmp_path, "older")
    (tmp_path / "older" / "serving.npz").unlink()
    assert registry.export_serving(tmp_path, "older") is True
    assert registry.export_serving(tmp_path, "older") is False
    meta = model_registry.read_metadata(tmp_path, "older")
    assert meta["serving_sha256"] == model_registry.sha256_file(tmp_path / "older/serving.npz")
    with caplog.at_level("WARNING", logger="moderation.model_registry"):
        older = load_scorer(tmp_path, "older")
    assert "no serving export" not in caplog.text
    assert older.probability("free money") == scorer.probability("free money")


def test_app_loads_the_scorer_once_at_start(app, models_dir):
    from moderation.scoring import get_scorer

    with app.app_context():
        first = get_scorer()
        assert first.version == (models_dir / "CURRENT").read_text().strip()
    with app.test_request_context("/"):
        assert get_scorer() is first


def two_versions(models_dir, tmp_path):
    """A models folder holding two copies of the session's model; the older is current."""
    models = tmp_path / "models"
    models.mkdir()
    base = model_registry.current_from_file(models_dir)
    old = copy_version(models_dir, base, models, "20000101-000000-aaaaaa")
    new = copy_version(models_dir, base, models, "20000101-000001-bbbbbb")
    registry.write_current_file(models, old)
    return models, old, new


def test_promote_and_rollback_switch_two_running_apps_within_two_seconds(
    make_app, models_dir, redis_client, tmp_path
):
    """Two app instances share one real Redis; neither is restarted."""
    models, old, new = two_versions(models_dir, tmp_path)
    workers = [make_app(MODELS_DIR=str(models), MODEL_RELOAD_SECONDS=0.2) for _ in range(2)]
    clients = [w.test_client() for w in workers]
    assert {w.extensions["scorer"].version for w in workers} == {old}

    def versions_after_requests() -> set[str]:
        for c in clients:
            c.get("/healthz")  # any request runs the cheap reload check
        return {w.extensions["scorer"].version for w in workers}

    def wait_for(version: str) -> float:
        started = time.monotonic()
        while time.monotonic() - started < 2.0:
            if versions_after_requests() == {version}:
                return time.monotonic() - started
            time.sleep(0.05)
        raise AssertionError(f"workers did not switch to {version}: {versions_after_requests()}")

    assert registry.promote(models, new, redis_client) == old
    assert redis_client.get(keys.MODEL_CURRENT) == new
    assert (models / "CURRENT").read_text().strip() == new
    assert wait_for(new) < 2.0

    assert registry.rollback(models, redis_client) == (new, old)
    assert wait_for(old) < 2.0
    assert redis_client.get(keys.MODEL_CURRENT) == old


def test_promote_refuses_unknown_or_broken_versions_and_changes_nothing(
    models_dir, redis_client, tmp_path
):
    models = tmp_path / "models"
    models.mkdir()
    base = model_registry.current_from_file(models_dir)
    good = copy_version(models_dir, base, models, "20000101-000000-aaaaaa")
    broken = copy_version(models_dir, base, models, "20000101-000001-bbbbbb")
    (models / broken / "model.skops").write_bytes(b"garbage")
    registry.promote(models, good, redis_client)
    with pytest.raises(ModelNotFound, match="unknown model version 'nope'"):
        registry.promote(models, "nope", redis_client)
    with pytest.raises(ArtifactError):
        registry.promote(models, broken, redis_client)
    assert redis_client.get(keys.MODEL_CURRENT) == good
    assert (models / "CURRENT").read_text().strip() == good
    with pytest.raises(ModelNotFound, match="no previous model version"):
        registry.rollback(models, redis_client)


def test_promote_writes_the_serving_export_of_an_older_version(models_dir, redis_client, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    version = without_export(models_dir, model_registry.current_from_file(models_dir), models,
                             "20000101-000000-aaaaaa")
    (models / version / "serving.npz").unlink()
    registry.promote(models, version, redis_client)
    meta = model_registry.read_metadata(models, version)
    assert meta["serving_sha256"] == model_registry.sha256_file(models / version / "serving.npz")


WORKER = """
import sys, time
from moderation import create_app
app = create_app({"TESTING": True, "REDIS_URL": sys.argv[1], "MODELS_DIR": sys.argv[2],
                  "SECRET_KEY": "k", "IP_HASH_KEY": "k", "MODEL_RELOAD_SECONDS": 0.5})
client = app.test_client()
seen = app.extensions["scorer"].version
print("ready", seen, flush=True)
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    client.get("/healthz")  # traffic: each request may run the cheap reload check
    version = app.extensions["scorer"].version
    if version != seen:
        seen = version
        print("switched", version, time.time(), flush=True)
    time.sleep(0.02)
"""


def test_promotion_reaches_two_worker_processes_within_two_seconds(
    models_dir, redis_url, redis_client, tmp_path
):
    """Two separate processes, one real Redis, no restart."""
    import subprocess
    import sys

    models, old, new = two_versions(models_dir, tmp_path)
    env = {**__import__("os").environ, "MODERATION_VAR_DIR": str(tmp_path / "var")}
    workers = [
        subprocess.Popen([sys.executable, "-c", WORKER, redis_url, str(models)], env=env,
                         stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    try:
        for worker in workers:
            assert worker.stdout.readline().split() == ["ready", old]
        promoted_at = time.time()
        registry.promote(models, new, redis_client)
        for worker in workers:
            word, version, switched_at = worker.stdout.readline().split()
            assert (word, version) == ("switched", new)
            assert float(switched_at) - promoted_at < 2.0
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()
            worker.stdout.close()


@pytest.mark.slow
def test_under_gunicorn_an_idle_worker_switches_too(models_dir, tmp_path):
    """A worker that serves no request still switches within two seconds: after a
    promotion and a quiet pause, one scrape (served by one worker) finds both workers
    on the new version."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    from bench.common import Gunicorn

    models, old, new = two_versions(models_dir, tmp_path)

    def versions_by_worker() -> dict[str, str]:
        with urllib.request.urlopen(server.base_url + "/metrics", timeout=10) as answer:
            text = answer.read().decode()
        return {sample.labels["pid"]: sample.labels["version"]
                for family in text_string_to_metric_families(text)
                for sample in family.samples
                if sample.name == "moderation_model_info" and sample.value == 1}

    with Gunicorn("moderation.wsgi:app", env={"MODELS_DIR": str(models)}) as server:
        workers = {str(pid) for pid in server.worker_pids()}
        deadline = time.monotonic() + 60
        while set(versions_by_worker()) != workers and time.monotonic() < deadline:
            time.sleep(0.2)  # the second worker may still be loading its model
        assert versions_by_worker() == dict.fromkeys(workers, old)
        registry.promote(models, new, server.redis())
        time.sleep(2.0)  # no requests meanwhile
        assert versions_by_worker() == dict.fromkeys(workers, new)


@pytest.mark.parametrize("text", TRICKY[3:] + ["Subscribe to my channel for FREE gift cards!!!"])
def test_explanation_is_the_largest_contributions_computed_by_scikit_learn(scorer, text):
    from moderation.text import PROMOTION_MATRICES, PROMOTION_NAMES, SIGNAL_NAMES, signal_matrix

    features = scorer.pipeline.named_steps["features"]
    coef = scorer.pipeline.named_steps["clf"].coef_.ravel()
    row = features.transform([text]).tocsr()
    names = []
    for name, block in features.transformer_list[:2]:
        kind = "term" if name == "word" else "chars"
        names += [(n, kind) for n in block.get_feature_names_out()]
    parts = [(row.data[k] * coef[j], *names[j]) for k, j in enumerate(row.indices)
             if j < len(names)]
    # Dense blocks (signals, promotion cues): raw values relative to the training mean,
    # times the coefficient and the block's transformer weight.
    dense_names = {signal_matrix: SIGNAL_NAMES,
                   **dict.fromkeys(PROMOTION_MATRICES.values(), PROMOTION_NAMES)}
    values, weights, labels = [], [], []
    for name, block in features.transformer_list[2:]:
        values += block.func([text])[0].tolist()
        labels += dense_names[block.func]
        weights += [(features.transformer_weights or {}).get(name, 1.0)] * len(
            dense_names[block.func])
    means = scorer.metadata["signal_means"]
    for value, weight, scale, mean, name in zip(values, coef[len(names):], weights, means,
                                                labels, strict=True):
        if (value - mean) * weight * scale:
            compared = "above average" if value > mean else "below average"
            parts.append(((value - mean) * weight * scale, name, "signal", compared))
    parts = [part if len(part) == 4 else (*part, None) for part in parts]
    parts.sort(key=lambda p: abs(p[0]), reverse=True)
    expected = [(round(w, 4), f, k, c) for w, f, k, c in parts[:8]]
    got = [(e["weight"], e["feature"], e["kind"], e.get("compared"))
           for e in scorer.score(text).explanation]
    assert [g[0] for g in got] == pytest.approx([e[0] for e in expected], abs=1e-4)
    # Features with equal contributions (e.g. a domain and its bigram) may swap places.
    everything = {(round(w, 4), f, k, c) for w, f, k, c in parts}
    assert set(got) <= everything


@pytest.mark.parametrize(("content", "error", "words"), [
    (b"\xff\xfe2026\n", ArtifactError, "not UTF-8 text"),
    (b"", ArtifactError, "empty"),
    (b"not a version\n", ArtifactError, "'not a version' is not a model version id"),
    (b"20990101-000000-ffffff\n", ModelNotFound, "names model version '20990101-000000-ffffff'"),
])
def test_a_current_file_naming_no_usable_version_stops_the_app_naming_it(
    make_app, models_dir, tmp_path, content, error, words
):
    """Redis has no record, so CURRENT is read at start: the app refuses it as it refuses
    a corrupt model (the worker does not boot), naming the file. It was a
    UnicodeDecodeError, the newest version served in silence, or a bare version id."""
    models = tmp_path / "models"
    shutil.copytree(models_dir, models)
    (models / model_registry.CURRENT_FILE).write_bytes(content)
    with pytest.raises(error, match=f"^{models / 'CURRENT'}: {words}"):
        make_app(MODELS_DIR=str(models))
