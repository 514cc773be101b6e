"""A Redis that may evict keys is refused (or, when allowed, warned about), never trusted
silently: under allkeys-lru a full server deletes stored comments without an error."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis

from moderation import create_app
from moderation.embedded_redis import redis_server_binary
from tests.conftest import CAPTCHA_TEXT, app_config, free_port
from tests.test_config import start_gunicorn
from tests.test_ops import scrape, value


@contextmanager
def redis_server(tmp_path, *args: str) -> Iterator[str]:
    """A real redis-server on a free loopback port, started with ``args``; its URL."""
    port = free_port()
    process = subprocess.Popen(
        [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path), *args],
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
        client.close()
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def app_on(url: str, models_dir, **overrides):
    return create_app(app_config(url, models_dir, **overrides),
                      challenge_text=lambda length: CAPTCHA_TEXT)


@pytest.mark.parametrize("policy", ["allkeys-lru", "volatile-lru"])
def test_readiness_refuses_a_redis_that_may_evict(tmp_path, models_dir, policy):
    with redis_server(tmp_path, "--maxmemory", "50mb", "--maxmemory-policy", policy) as url:
        client = app_on(url, models_dir).test_client()
        answer = client.get("/readyz")
        assert answer.status_code == 503
        reason = answer.get_json()["reason"]
        assert f"maxmemory-policy {policy}" in reason
        assert "noeviction" in reason and "REDIS_ALLOW_EVICTION=1" in reason
        metrics = scrape(client)
        assert value(metrics, "moderation_redis_may_evict", policy=policy) == 1


def test_allowed_eviction_serves_with_a_warning(tmp_path, models_dir):
    with redis_server(tmp_path, "--maxmemory", "50mb", "--maxmemory-policy",
                      "allkeys-lru") as url:
        answer = app_on(url, models_dir, REDIS_ALLOW_EVICTION=True).test_client().get("/readyz")
        assert answer.status_code == 200
        (warning,) = answer.get_json()["warnings"]
        assert "maxmemory-policy allkeys-lru" in warning


def test_the_policy_is_read_where_config_is_disabled(tmp_path, models_dir):
    """Managed Redis services often rename or disable CONFIG; INFO still says the policy."""
    with redis_server(tmp_path, "--maxmemory-policy", "allkeys-lfu",
                      "--rename-command", "CONFIG", "") as url:
        answer = app_on(url, models_dir).test_client().get("/readyz")
        assert answer.status_code == 503
        assert "maxmemory-policy allkeys-lfu" in answer.get_json()["reason"]


def test_a_redis_that_will_not_tell_is_served_with_a_warning(tmp_path, models_dir):
    with redis_server(tmp_path, "--rename-command", "CONFIG", "",
                      "--rename-command", "INFO", "") as url:
        client = app_on(url, models_dir).test_client()
        answer = client.get("/readyz")
        assert answer.status_code == 200
        (warning,) = answer.get_json()["warnings"]
        assert "would not tell its maxmemory-policy" in warning
        metrics = scrape(client)  # no crash, and no guess either
        assert not any(name == "moderation_redis_may_evict" for name, _ in metrics)


def test_a_noeviction_redis_is_ready_without_warnings(client):
    answer = client.get("/readyz")
    assert answer.status_code == 200 and "warnings" not in answer.get_json()
    assert scrape(client)[("moderation_redis_may_evict", (("policy", "noeviction"),))] == 0


def test_gunicorn_will_not_start_on_a_redis_that_may_evict(tmp_path):
    with redis_server(tmp_path, "--maxmemory", "50mb",
                      "--maxmemory-policy", "allkeys-lru") as url:
        done = start_gunicorn({"REDIS_URL": url}, tmp_path)
    assert done.returncode == 2, done.stderr
    assert "Redis at redis://127.0.0.1" in done.stderr
    assert "maxmemory-policy allkeys-lru" in done.stderr
    assert "REDIS_ALLOW_EVICTION=1" in done.stderr
    assert "Traceback" not in done.stderr and "Booting worker" not in done.stderr
