"""Without REDIS_URL the service runs its own redis-server under var/."""

from __future__ import annotations

import redis

from moderation.embedded_redis import EmbeddedRedis


def test_embedded_server_persists_with_aof_and_stops(tmp_path):
    server = EmbeddedRedis(tmp_path / "redis")
    url = server.start()
    assert url.startswith("unix://")
    client = redis.Redis.from_url(url, decode_responses=True)
    assert client.config_get("appendonly")["appendonly"] == "yes"
    assert client.config_get("port")["port"] == "0"  # no TCP listener at all
    client.set("kept", "yes")
    client.close()
    server.stop()
    assert server.process.poll() is not None

    again = EmbeddedRedis(tmp_path / "redis")
    client = redis.Redis.from_url(again.start(), decode_responses=True)
    assert client.get("kept") == "yes"  # replayed from the AOF under var/
    client.close()
    again.stop()


def test_second_starter_adopts_the_running_server(tmp_path):
    first = EmbeddedRedis(tmp_path / "redis")
    first.start()
    second = EmbeddedRedis(tmp_path / "redis")
    assert second.start() == first.url
    assert second.process is None  # it did not start a second server
    first.stop()


def test_app_without_redis_url_starts_embedded_server(tmp_path, models_dir, monkeypatch):
    from moderation import create_app

    # The factory exports the embedded server's URL to child processes; undo that after.
    monkeypatch.setenv("REDIS_URL", "")

    app = create_app({
        "REDIS_URL": None, "VAR_DIR": str(tmp_path), "MODELS_DIR": str(models_dir),
        "SECRET_KEY": "x", "IP_HASH_KEY": "y",
    })
    server = app.extensions["embedded_redis"]
    assert app.extensions["redis"].ping()
    assert (tmp_path / "redis" / "redis.sock").exists()
    server.stop()
