"""The audio CAPTCHA: reachable from the form and the API, WAV, no-store, right text."""

from __future__ import annotations

import io
import re
import shutil
import wave

import pytest

from moderation.captcha import ALPHABET
from moderation.captcha_audio import (
    VOICES,
    AudioChallenges,
    build_voice_library,
    library_complete,
)
from tests.conftest import CAPTCHA_TEXT

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None,
    reason="espeak-ng is not installed (apt-get install espeak-ng)",
)


@pytest.fixture(scope="session")
def voice_library(tmp_path_factory):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    directory = tmp_path_factory.mktemp("voices") / "captcha-voices"
    counts = build_voice_library(directory)
    return directory, counts


def test_audio_endpoint_returns_a_wav_that_must_not_be_stored(client):
    challenge = client.post("/api/v1/challenges").get_json()
    response = client.get(challenge["audio_url"])
    assert response.status_code == 200
    assert response.mimetype == "audio/wav"
    assert response.headers["Cache-Control"] == "no-store"
    with wave.open(io.BytesIO(response.data)) as audio:
        assert audio.getnchannels() == 1 and audio.getframerate() == 8000
        assert audio.getnframes() > 8000 * len(CAPTCHA_TEXT)  # at least a second a character
    headers = str(response.headers)
    assert CAPTCHA_TEXT not in headers and CAPTCHA_TEXT.lower() not in headers


def test_audio_of_unknown_challenge_is_404(client):
    response = client.get("/captcha/nope.wav")  # JSON for clients and media elements
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "unknown_challenge"
    assert "POST /api/v1/challenges" in response.get_json()["error"]["message"]


@pytest.mark.parametrize("browser", [
    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",  # Firefox
    # Chromium: werkzeug's accept_mimetypes.best is the signed exchange here (an entry
    # with parameters ranks first), so Chromium still showed the raw JSON.
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7",
])
def test_an_expired_audio_link_opened_in_a_tab_is_a_page(client, browser):
    # "Listen to the characters" opens a tab; after the challenge's TTL a reader got
    # raw JSON there. A browser's navigation asks for text/html first.
    for path in ("/captcha/nope.wav", "/captcha/nope.wav?lang=es", "/captcha/nope.png"):
        response = client.get(path, headers={"Accept": browser})
        assert response.status_code == 404 and response.mimetype == "text/html", path
        page = response.get_data(as_text=True)
        assert "Get a new image" in page and "new challenge" not in page  # no API hint


def test_audio_in_a_language_it_does_not_speak_is_400_naming_lang(client):
    challenge = client.post("/api/v1/challenges").get_json()
    response = client.get(challenge["audio_url"] + "?lang=fr")
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == "lang"
    assert "en, es" in response.get_json()["error"]["message"]
    assert client.get(challenge["audio_url"] + "?lang=es").status_code == 200


def test_audio_of_a_used_challenge_is_404(client, article_slug):
    challenge = client.post("/api/v1/challenges").get_json()
    client.post(
        f"/api/v1/articles/{article_slug}/comments",
        json={
            "body": "Nice article",
            "challenge_id": challenge["id"],
            "captcha_answer": CAPTCHA_TEXT,
        },
    )
    assert client.get(challenge["audio_url"]).status_code == 404


def test_form_links_to_the_audio_of_its_own_challenge(reader):
    html = reader.open_article().get_data(as_text=True)
    challenge_id = reader.form_fields(html)["challenge_id"]
    link = re.search(r'<a href="([^"]+)"[^>]*>Listen to the characters</a>', html)
    assert link and link.group(1) == f"/captcha/{challenge_id}.wav"
    response = reader.client.get(link.group(1))
    assert response.status_code == 200 and response.mimetype == "audio/wav"


def test_each_audio_request_is_a_fresh_recording(client):
    challenge = client.post("/api/v1/challenges").get_json()
    assert client.get(challenge["audio_url"]).data != client.get(challenge["audio_url"]).data


def test_without_a_library_the_shipped_voice_is_used(tmp_path):
    audio = AudioChallenges(tmp_path / "missing")
    assert audio.fallback and audio.languages == ["en"]
    assert audio.render("K7PX")[:4] == b"RIFF"


def test_without_spanish_voices_the_form_offers_no_spanish_audio(make_app, tmp_path):
    """The shipped voice is English only: "escuchar en español" played English letters
    (under docker compose too, whose image has no espeak-ng)."""
    app = make_app(CAPTCHA_VOICES_DIR=str(tmp_path / "missing"))
    assert app.extensions["captcha"].audio.fallback
    html = app.test_client().get("/").get_data(as_text=True)
    assert "Listen to the characters" in html
    assert "lang=es" not in html and "escuchar" not in html
    # The API may still ask for Spanish: the answer says it is English.
    challenge = app.test_client().post("/api/v1/challenges").get_json()
    spoken = app.test_client().get(challenge["audio_url"] + "?lang=es")
    assert spoken.status_code == 200 and spoken.headers["Content-Language"] == "en"


@needs_espeak
def test_voice_library_has_several_voices_per_character_in_two_languages(voice_library):
    directory, counts = voice_library
    assert set(counts) == {"en", "es"}
    for language in ("en", "es"):
        assert library_complete(directory / language)
        for char in ALPHABET:
            recordings = list((directory / language / char).glob("*.wav"))
            voices = {path.name.split("-s")[0] for path in recordings}
            assert len(voices) == len(VOICES[language]) >= 4
            assert len(recordings) >= 16
            with wave.open(str(recordings[0])) as handle:
                assert handle.getframerate() == 8000 and handle.getsampwidth() == 1
                assert handle.getnframes() > 800  # a spoken character, not silence
    # Different voices really sound different: the recordings are not copies.
    sizes = {path.stat().st_size for path in (directory / "en" / "A").glob("*.wav")}
    assert len(sizes) > 8


@needs_espeak
def test_app_uses_the_built_library_in_both_languages(voice_library, make_app):
    directory, _ = voice_library
    app = make_app(CAPTCHA_VOICES_DIR=str(directory))
    assert not app.extensions["captcha"].audio.fallback
    client = app.test_client()
    challenge = client.post("/api/v1/challenges").get_json()
    english = client.get(challenge["audio_url"])
    spanish = client.get(challenge["audio_url"] + "?lang=es")
    assert english.status_code == spanish.status_code == 200
    assert english.data != spanish.data
    assert (english.headers["Content-Language"], spanish.headers["Content-Language"]) == \
        ("en", "es")
    assert "?lang=es" in client.get("/").get_data(as_text=True)  # the form offers it


@needs_espeak
def test_build_voices_cli_command(make_app, tmp_path, monkeypatch):
    from moderation import captcha_audio

    # One voice per language keeps this test quick; the fixture above builds the full set.
    monkeypatch.setattr(captcha_audio, "VOICES", {"en": ["en-us+m1"], "es": ["es+f2"]})
    monkeypatch.setattr(captcha_audio, "SPEEDS", (150,))
    monkeypatch.setattr(captcha_audio, "PITCHES", (50,))
    app = make_app()
    result = app.test_cli_runner().invoke(
        args=["captcha", "build-voices", "--dir", str(tmp_path / "v")]
    )
    assert result.exit_code == 0, result.output
    n = len(ALPHABET)
    assert f"en {n} recordings, es {n} recordings" in result.output
    assert library_complete(tmp_path / "v" / "en") and library_complete(tmp_path / "v" / "es")


def test_audio_speaks_the_same_answer_as_the_image(redis_client):
    """render_wav reads the challenge's own answer from Redis, like render_png."""
    from moderation.captcha import ChallengeStore

    spoken = []

    class RecordingVoice:  # stands in for the speaker only; the store is real
        def render(self, chars, language="en"):
            spoken.append((chars, language))
            return b"RIFF"

    drawn = []

    class RecordingImage:
        def generate(self, chars, format="png"):
            drawn.append(chars)
            return io.BytesIO(b"\x89PNG")

    store = ChallengeStore(
        redis_client, text_source=lambda n: "K7PXWM", image=RecordingImage(), audio=RecordingVoice()
    )
    challenge = store.issue()
    store.render_png(challenge.id)
    store.render_wav(challenge.id, "es")
    assert drawn == ["K7PXWM"] and spoken == [("K7PXWM", "es")]
