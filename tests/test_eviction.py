"""A Redis that may evict keys is refused (or, when allowed, warned about), never trusted
silently: under allkeys-lru a full server deletes stored comments without an error."""

from __future__ import annotations

import pytest

from moderation import create_app
from tests.conftest import CAPTCHA_TEXT, app_config, redis_server
from tests.test_config import start_gunicorn
from tests.test_ops import scrape, value


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
