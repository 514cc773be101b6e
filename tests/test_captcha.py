"""CAPTCHA challenges: random text, answers only in Redis, attempts, single use, expiry,
the hardened image, and the answer never leaving the server."""

from __future__ import annotations

import base64
import io
import logging
import threading
import time
import zlib

import pytest
from PIL import Image

from moderation import keys
from moderation.captcha import ALPHABET, ChallengeStore, random_text
from moderation.captcha_image import Difficulty, HardenedImageCaptcha, shipped_fonts
from tests.conftest import CAPTCHA_TEXT


def fixed(text):
    return lambda n: text


def test_alphabet_has_no_ambiguous_characters():
    assert not set("0O1Il") & set(ALPHABET)


def test_random_text_uses_alphabet_and_length():
    texts = {random_text(6) for _ in range(200)}
    assert all(len(t) == 6 and set(t) <= set(ALPHABET) for t in texts)
    assert len(texts) > 190  # random, not a fixed sequence


def test_lengths_vary_within_the_configured_range(redis_client):
    store = ChallengeStore(redis_client, length=(5, 7))
    lengths = {len(redis_client.hget(keys.captcha(store.issue().id), "answer")) for _ in range(120)}
    assert lengths == {5, 6, 7}


def test_answer_lives_in_redis_with_ttl(redis_client):
    store = ChallengeStore(redis_client, ttl_seconds=600, text_source=fixed("ABCDEF"))
    challenge = store.issue()
    assert redis_client.hget(keys.captcha(challenge.id), "answer") == "ABCDEF"
    assert 590 <= redis_client.ttl(keys.captcha(challenge.id)) <= 600
    assert challenge.expires_at > time.time() + 590
    assert "ABCDEF" not in challenge.id


def test_issue_on_the_callers_transaction_exists_once_it_runs(redis_client):
    # The article page sends the challenge with its listing read in one round trip.
    store = ChallengeStore(redis_client, ttl_seconds=600, text_source=fixed("ABCDEF"))
    with redis_client.pipeline(transaction=True) as pipe:
        challenge = store.issue(pipe=pipe)
        assert not redis_client.exists(keys.captcha(challenge.id))
        pipe.execute()
    assert redis_client.hget(keys.captcha(challenge.id), "answer") == "ABCDEF"
    assert 590 <= redis_client.ttl(keys.captcha(challenge.id)) <= 600
    assert store.verify(challenge.id, "abcdef")


def test_issue_is_one_atomic_command_on_any_pipeline(redis_client):
    # The article page reads its listing and issues the challenge on a plain pipeline
    # (no MULTI/EXEC): the answer and its TTL must still be one command, so the
    # answer can never be stored without the TTL.
    store = ChallengeStore(redis_client, ttl_seconds=600, text_source=fixed("ABCDEF"))
    with redis_client.pipeline(transaction=False) as pipe:
        challenge = store.issue(pipe=pipe)
        assert len(pipe) == 1
        pipe.execute()
    assert redis_client.hgetall(keys.captcha(challenge.id)) == {"answer": "ABCDEF",
                                                                "attempts": "0"}
    assert 590 <= redis_client.ttl(keys.captcha(challenge.id)) <= 600


def test_verify_is_case_and_space_insensitive_and_single_use(redis_client):
    store = ChallengeStore(redis_client, text_source=fixed("ABCDEF"))
    challenge = store.issue()
    assert store.verify(challenge.id, " abc def ")
    assert not store.verify(challenge.id, "ABCDEF")
    assert not redis_client.exists(keys.captcha(challenge.id))


def test_wrong_answers_use_up_the_attempts(redis_client):
    store = ChallengeStore(redis_client, max_attempts=3, text_source=fixed("ABCDEF"))
    challenge = store.issue()
    assert store.check(challenge.id, "ABCDEG").attempts_left == 2
    assert store.check(challenge.id, "ABCDEH").attempts_left == 1
    assert store.live(challenge.id) is not None
    assert not store.verify(challenge.id, "ABCDEJ")  # the third wrong answer ends it
    assert store.live(challenge.id) is None
    assert not redis_client.exists(keys.captcha(challenge.id))
    assert not store.verify(challenge.id, "ABCDEF")  # too late, even when right


def test_right_answer_after_wrong_ones_within_the_limit(redis_client):
    store = ChallengeStore(redis_client, max_attempts=3, text_source=fixed("ABCDEF"))
    challenge = store.issue()
    assert not store.verify(challenge.id, "WRONG")
    assert not store.verify(challenge.id, "ABCDFE")
    assert store.verify(challenge.id, "abcdef")


def test_attempt_limit_is_configurable(redis_client):
    store = ChallengeStore(redis_client, max_attempts=1, text_source=fixed("ABCDEF"))
    challenge = store.issue()
    assert not store.verify(challenge.id, "ABCDEG")
    assert not store.verify(challenge.id, "ABCDEF")


def test_app_reads_the_attempt_limit_from_config(make_app):
    app = make_app(CAPTCHA_MAX_ATTEMPTS=5, CAPTCHA_LENGTH_MIN=6, CAPTCHA_LENGTH_MAX=6)
    store = app.extensions["captcha"]
    assert store.max_attempts == 5 and store.length_range == (6, 6)


def test_only_one_of_many_concurrent_right_answers_wins(redis_client):
    """Twenty threads race the same right answer against the real Redis: one wins."""
    store = ChallengeStore(redis_client, max_attempts=50, text_source=fixed("ABCDEF"))
    for _ in range(5):
        challenge_id = store.issue().id
        barrier = threading.Barrier(20)
        results = []

        def attempt(barrier=barrier, results=results, challenge_id=challenge_id):
            barrier.wait()
            results.append(store.verify(challenge_id, "ABCDEF"))

        threads = [threading.Thread(target=attempt) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert results.count(True) == 1 and len(results) == 20


def test_concurrent_guesses_cannot_exceed_the_attempt_limit(redis_client):
    """Attempts are counted before comparing: 30 parallel guesses get 3 comparisons."""
    store = ChallengeStore(redis_client, max_attempts=3, text_source=fixed("ABCDEF"))
    challenge = store.issue()
    guesses = [f"WRONG{i}" for i in range(29)] + ["ABCDEF"]
    barrier = threading.Barrier(len(guesses))
    compared = []
    original = store._check_script

    def counting_script(*args, **kwargs):
        reply = original(*args, **kwargs)
        if int(reply[0]) != -1:  # -1: nothing was compared
            compared.append(reply)
        return reply

    store._check_script = counting_script

    def attempt(guess):
        barrier.wait()
        store.verify(challenge.id, guess)

    threads = [threading.Thread(target=attempt, args=(g,)) for g in guesses]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(compared) <= 3
    assert not redis_client.exists(keys.captcha(challenge.id))


def test_expired_challenge_fails(redis_client):
    store = ChallengeStore(redis_client, ttl_seconds=1, text_source=fixed("ABCDEF"))
    challenge = store.issue()
    time.sleep(1.2)
    assert store.render_png(challenge.id) is None
    assert store.live(challenge.id) is None
    assert not store.verify(challenge.id, "ABCDEF")


def test_unknown_and_oversized_ids_fail_without_touching_redis(redis_client):
    store = ChallengeStore(redis_client, text_source=fixed("ABCDEF"))
    assert not store.verify("", "ABCDEF")
    assert not store.verify("x" * 65, "ABCDEF")
    assert store.render_png("x" * 65) is None
    assert redis_client.dbsize() == 0  # a failed check never creates a key


def test_each_render_is_a_fresh_png(redis_client):
    store = ChallengeStore(redis_client, text_source=fixed("ABCDEF"))
    challenge = store.issue()
    first, second = store.render_png(challenge.id), store.render_png(challenge.id)
    assert first[:4] == b"\x89PNG" and first != second


def test_running_app_has_no_way_around_random_text(monkeypatch, make_app):
    # Only the factory argument can replace the text source; config and env cannot.
    monkeypatch.setenv("CAPTCHA_TEXT_SOURCE", "fixed")
    app = make_app(challenge_text=None, CAPTCHA_TEXT_SOURCE=lambda n: "AAAAAA")
    assert app.extensions["captcha"].text_source is random_text


# -- the hardened image -----------------------------------------------------------------


def test_several_fonts_are_shipped_with_their_licences():
    fonts = shipped_fonts()
    names = [name.rsplit("/", 1)[-1] for name in fonts]
    for family in (
        "DejaVuSans",
        "DejaVuSerif",
        "LiberationSans",
        "LiberationSerif",
        "FreeSans",
        "FreeSerif",
    ):
        assert any(name.startswith(family) for name in names), family
    folder = fonts[0].rsplit("/", 1)[0]
    import os

    licences = [n for n in os.listdir(folder) if n.startswith("LICENSE")]
    assert any("DejaVu" in n for n in licences) and any("Liberation" in n for n in licences)
    assert any("FreeFont" in n for n in licences)


def test_image_size_and_character_spans_overlap():
    captcha = HardenedImageCaptcha()
    overlaps = 0
    for _ in range(20):
        image, spans = captcha.generate_image_with_spans("ABCDEFG")
        assert image.size == (240, 80) and len(spans) == 7
        overlaps += sum(a[1] > b[0] for a, b in zip(spans, spans[1:], strict=False))
    assert overlaps > 20 * 6 * 0.8  # neighbours overlap: no clean column between them


def test_noise_is_in_the_text_colour_range_so_a_threshold_keeps_it():
    """Ink-coloured pixels (what a threshold keeps) exist far from the text: noise is ink too.

    "Ink-coloured" is measured against each image's own palette (closer to the text's
    ink than to the background), since every image gets a random pair of colours.
    """
    import numpy as np

    captcha = HardenedImageCaptcha(difficulty=Difficulty(noise_dots=200))
    image, spans = captcha.generate_image_with_spans("AB")
    grey = np.asarray(image.convert("L"), dtype=float)
    left = min(a for a, _ in spans)
    right = max(b for _, b in spans)
    columns = np.arange(grey.shape[1])
    outside = (columns < left - 3) | (columns > right + 3)
    background = np.median(grey)
    text = grey[:, ~outside]
    ink = text.flat[np.argmax(np.abs(text - background))]
    far = grey[:, outside]
    dark_outside = int((np.abs(far - ink) < np.abs(far - background)).sum())
    assert dark_outside > 50


def test_difficulty_settings_change_the_drawing():
    quiet = HardenedImageCaptcha(
        difficulty=Difficulty(noise_lines=0, noise_strokes=0, noise_dots=0)
    )
    noisy = HardenedImageCaptcha(
        difficulty=Difficulty(noise_lines=6, noise_strokes=12, noise_dots=300)
    )

    def dark_fraction(captcha):
        import numpy as np

        return float((np.asarray(captcha.generate_image("AB").convert("L")) < 128).mean())

    assert sum(dark_fraction(noisy) for _ in range(5)) > sum(dark_fraction(quiet) for _ in range(5))
    with pytest.raises(ValueError):
        HardenedImageCaptcha(difficulty=Difficulty(font_size_min=40, font_size_max=30))


def test_configured_fonts_are_used(make_app):
    fonts = shipped_fonts()[:1]
    app = make_app(CAPTCHA_FONTS=fonts, CAPTCHA_FONT_SIZE_MIN=30, CAPTCHA_FONT_SIZE_MAX=30)
    image = app.extensions["captcha"].image
    assert image._fonts == fonts and image._font_sizes == (30,)


# -- the answer never leaves the server ------------------------------------------------


def _answer_variants(answer: str) -> list[str]:
    return [answer, answer.lower(), base64.b64encode(answer.encode()).decode().rstrip("=")]


def _decoded_session(cookie_value: str) -> str:
    payload = cookie_value.lstrip(".").split(".")[0]
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    if cookie_value.startswith("."):
        raw = zlib.decompress(raw)
    return raw.decode("utf-8", "replace")


def test_answer_never_in_a_response_header_cookie_or_log(app, client, reader, caplog):
    caplog.set_level(logging.DEBUG)
    seen = []

    def record(response):
        seen.append(response.get_data(as_text=False))
        seen.append(str(response.headers).encode())
        for cookie in response.headers.getlist("Set-Cookie"):
            value = cookie.split(";", 1)[0].split("=", 1)[-1]
            seen.append(cookie.encode())
            try:
                seen.append(_decoded_session(value).encode())
            except Exception:  # not a Flask session cookie
                pass
        return response

    challenge = client.post("/api/v1/challenges")
    record(challenge)
    data = challenge.get_json()
    record(client.get(data["image_url"]))
    record(client.get(data["audio_url"]))
    record(
        client.post(
            f"/api/v1/articles/{reader.slug}/comments",
            json={"body": "Nice article", "challenge_id": data["id"], "captcha_answer": "WRONG1"},
        )
    )
    record(
        client.post(
            f"/api/v1/articles/{reader.slug}/comments",
            json={
                "body": "Nice article",
                "challenge_id": data["id"],
                "captcha_answer": CAPTCHA_TEXT,
            },
        )
    )
    record(reader.open_article())
    record(reader.post("Thanks for the article", answer="WRONG1"))
    record(reader.post("Thanks for the article"))
    logged = "\n".join(r.getMessage() for r in caplog.records).encode()
    for variant in _answer_variants(CAPTCHA_TEXT):
        needle = variant.encode()
        assert not any(needle in blob for blob in seen), variant
        assert needle not in logged, variant


def test_image_endpoint_is_not_cacheable_and_fresh(client):
    data = client.post("/api/v1/challenges").get_json()
    first, second = client.get(data["image_url"]), client.get(data["image_url"])
    assert first.headers["Cache-Control"] == "no-store"
    assert first.data != second.data
    assert Image.open(io.BytesIO(first.data)).size == (240, 80)


def test_a_check_queued_on_a_pipeline_counts_like_a_direct_one(redis_client):
    """The write path checks the CAPTCHA in the same round trip as its other reads."""
    store = ChallengeStore(redis_client, max_attempts=3, text_source=fixed("ABCDEF"))
    challenge = store.issue()
    with redis_client.pipeline(transaction=False) as pipe:
        wrong = store.queue_check(pipe, challenge.id, "ABCDEG")
        right = store.queue_check(pipe, challenge.id, "abc def")
        again = store.queue_check(pipe, challenge.id, "ABCDEF")
        replies = pipe.execute(raise_on_error=False)
    checks = [read(reply) for read, reply in zip((wrong, right, again), replies, strict=True)]
    assert [(check.ok, check.attempts_left) for check in checks] == [
        (False, 2), (True, 0), (False, 0)]
    assert not redis_client.exists(keys.captcha(challenge.id))


def test_a_queued_check_survives_redis_forgetting_its_script(redis_client):
    """After SCRIPT FLUSH (or a Redis restart) the queued check reruns the normal way."""
    store = ChallengeStore(redis_client, text_source=fixed("ABCDEF"))
    challenge = store.issue()
    redis_client.script_flush()
    with redis_client.pipeline(transaction=False) as pipe:
        read = store.queue_check(pipe, challenge.id, "ABCDEF")
        (reply,) = pipe.execute(raise_on_error=False)
    assert read(reply).ok
    assert not store.verify(challenge.id, "ABCDEF")  # consumed exactly once


@pytest.mark.parametrize("malformed", ["x" * 65, "\ud800", "a b", "k:*", "\u0663"])
def test_a_queued_check_of_a_malformed_id_queues_nothing(redis_client, malformed):
    store = ChallengeStore(redis_client, text_source=fixed("ABCDEF"))
    with redis_client.pipeline(transaction=False) as pipe:
        read = store.queue_check(pipe, malformed, "ABCDEF")
        assert len(pipe) == 0
    assert not read(None).ok
