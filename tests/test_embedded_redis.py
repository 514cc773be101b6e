"""Without REDIS_URL the service runs its own redis-server under var/."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import redis

from moderation.embedded_redis import EmbeddedRedis


def test_embedded_server_persists_with_aof_and_stops(tmp_path):
    server = EmbeddedRedis(tmp_path / "redis")
    url = server.start()
    assert url.startswith("unix://")
    client = redis.Redis.from_url(url, decode_responses=True)
    assert client.config_get("appendonly")["appendonly"] == "yes"
    assert client.config_get("port")["port"] == "0"  # no TCP listener at all
    # Never deletes a comment to free memory (moderation/eviction.py).
    assert client.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
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


STARTER = """
import sys, time
from pathlib import Path
from moderation.embedded_redis import EmbeddedRedis
server = EmbeddedRedis(Path(sys.argv[1]))
server.start()
print(server.process.pid, flush=True)
time.sleep(600)
"""


def test_server_stops_when_its_starter_is_killed(tmp_path):
    # kill -9 skips atexit: the server must not outlive its starter (and keep the data).
    starter = subprocess.Popen([sys.executable, "-c", STARTER, str(tmp_path / "redis")],
                               stdout=subprocess.PIPE, text=True)
    redis_pid = int(starter.stdout.readline())
    client = redis.Redis(unix_socket_path=str(tmp_path / "redis" / "redis.sock"))
    client.set("kept", "yes")
    client.close()

    starter.kill()
    starter.wait(timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _running(redis_pid):
        time.sleep(0.1)
    assert not _running(redis_pid), "redis-server outlived the process that started it"

    again = EmbeddedRedis(tmp_path / "redis")
    client = redis.Redis.from_url(again.start(), decode_responses=True)
    assert again.process is not None  # a new server, not an orphan adopted
    assert client.get("kept") == "yes"  # SIGTERM let redis flush its AOF
    client.close()
    again.stop()


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's wait is missing


def test_the_data_dir_is_private_to_the_service(tmp_path):
    # The AOF holds moderators' password hashes and every comment; under the usual
    # umask 022 it was world-readable, unlike var/secret_key (0600) and the socket (700).
    data_dir = tmp_path / "redis"
    data_dir.mkdir(mode=0o755)  # as an earlier version left it
    server = EmbeddedRedis(data_dir)
    client = redis.Redis.from_url(server.start())
    client.set("written", "yes")
    client.close()
    server.stop()
    assert data_dir.stat().st_mode & 0o777 == 0o700
    fresh = EmbeddedRedis(tmp_path / "new" / "redis")
    fresh.start()
    fresh.stop()
    assert (tmp_path / "new" / "redis").stat().st_mode & 0o777 == 0o700
