"""Without REDIS_URL the service runs its own redis-server under var/."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import redis

from moderation.articles import default_article
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


def test_a_killed_server_is_seen_and_started_again_on_its_data(tmp_path):
    server = EmbeddedRedis(tmp_path / "redis")
    client = redis.Redis.from_url(server.start(), decode_responses=True)
    client.set("kept", "yes")  # acknowledged, then the server is killed at once
    first = server.process.pid
    assert not server.exited()
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while not server.exited() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.exited()
    server.restart()
    try:
        assert server.process.pid != first and not server.exited()
        # The reply went out after redis wrote the AOF (appendfsync everysec fsyncs
        # later, but a killed process loses nothing the kernel already holds).
        assert client.get("kept") == "yes"
    finally:
        client.close()
        server.stop()


def test_an_adopted_server_is_not_ours_to_restart(tmp_path):
    first = EmbeddedRedis(tmp_path / "redis")
    first.start()
    second = EmbeddedRedis(tmp_path / "redis")
    second.start()
    first.stop()
    assert not second.exited()  # it started nothing; the master that did restarts it
    assert first.exited()


def get_json(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def post_json(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, method="POST", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


@pytest.mark.slow
def test_under_gunicorn_a_killed_embedded_redis_is_restarted_and_keeps_comments(models_dir):
    """`make run`: kill -9 the redis-server just after a comment was answered; the
    master starts it again on its AOF, the comment is still there, service resumes."""
    from bench.bench_app import BENCH_CAPTCHA_TEXT
    from bench.common import Gunicorn

    slug = default_article().slug
    with Gunicorn("bench.bench_app:make_app()", env={"MODELS_DIR": str(models_dir)}) as web:
        base = web.base_url

        def comment(text: str) -> tuple[int, dict]:
            _, challenge = post_json(base + "/api/v1/challenges", {})
            return post_json(base + f"/api/v1/articles/{slug}/comments",
                             {"body": text, "challenge_id": challenge["id"],
                              "captcha_answer": BENCH_CAPTCHA_TEXT})

        status, stored = comment("Thanks for the article, a clear account of the visit.")
        assert status in (201, 202, 422), stored
        client = web.redis()
        first = int(client.info("server")["process_id"])
        client.close()
        os.kill(first, signal.SIGKILL)

        deadline = time.monotonic() + 30
        while get_json(base + "/readyz")[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert get_json(base + "/readyz")[0] == 200, web.log_tail()
        client = web.redis()
        assert int(client.info("server")["process_id"]) != first
        client.close()
        found_status, found = get_json(base + f"/api/v1/comments/{stored['id']}")
        assert found_status == 200 and found["status"] == stored["status"]
        assert comment("A second comment, after the restart.")[0] in (201, 202, 422)
        # The master logs "running again" once its start() returns, which may be after
        # the workers already reach the server (seen missing in one full run of three).
        deadline = time.monotonic() + 10
        while ("is running again" not in web.log_path.read_text()
               and time.monotonic() < deadline):
            time.sleep(0.1)
        log = web.log_path.read_text()
        assert f"embedded redis-server (pid {first}) has exited: starting it again" in log
        assert "embedded redis-server is running again" in log


def test_a_stale_socket_is_tried_once_before_the_server_is_started_again(tmp_path):
    """After a kill -9 the socket file stays: it was asked 11 times over ~4 s (redis-py's
    retries) before a new server could take its place, so the outage lasted that long."""
    server = EmbeddedRedis(tmp_path / "redis")
    server.socket.parent.mkdir(parents=True)
    tries = 0
    with socket.socket(socket.AF_UNIX) as stale:  # accepts, then hangs up: no Redis there
        stale.bind(str(server.socket))
        stale.listen(32)
        stale.settimeout(0.2)

        def hang_up() -> None:
            nonlocal tries
            while True:
                try:
                    connection, _ = stale.accept()
                except OSError:
                    return
                tries += 1
                connection.close()

        watcher = threading.Thread(target=hang_up)
        watcher.start()
        assert server._alive() is False
        watcher.join()
    assert tries == 1
