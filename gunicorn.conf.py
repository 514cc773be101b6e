"""gunicorn settings for `make run` and the Docker image.

When REDIS_URL is unset the master starts one private redis-server before forking
workers, so every worker shares it, starts it again if it dies, and stops it on exit.
"""

import ctypes
import gc
import json
import logging
import os
import re
import resource
import sys
import time
from pathlib import Path

from gunicorn.util import close_graceful, parse_address
from gunicorn.workers.ggevent import GeventWorker


def _bind_problem(value: str) -> str | None:
    """What is wrong with BIND, checked here: gunicorn refuses a bad port before any
    hook runs without naming the setting, and one out of range in a traceback."""
    try:
        address = parse_address(value)
    except RuntimeError as exc:
        return str(exc)
    if isinstance(address, tuple) and not 0 <= address[1] <= 65535:
        return "expected a port from 0 to 65535"
    if not address:
        return "expected a socket path after unix:"
    return None


bind = os.environ.get("BIND", "127.0.0.1:8000")
if (_problem := _bind_problem(bind)) is not None:
    print(f"configuration error: BIND={bind!r}: {_problem}", file=sys.stderr)
    raise SystemExit(2)

# gunicorn reads WEB_CONCURRENCY itself when imported, before this file: a value that is
# not a whole number of at least 0 ends there in its traceback (`make run` checks for
# that first). 0 reaches the start-up check in on_starting, which names it.
workers = max(1, int(os.environ.get("WEB_CONCURRENCY") or 2))


class LingeringGeventWorker(GeventWorker):
    """gunicorn's gevent worker, closing a connection after its answer as its sync and
    threaded workers do: FIN first, then read what the client still sends (up to 2 s
    and 64 KiB, ``gunicorn.util.close_graceful``), then close.

    Its gevent worker closes at once, and closing a socket with unread bytes makes the
    kernel reset the connection: a client still uploading (a body over
    MAX_CONTENT_LENGTH answered 413, a request line refused as too long) lost the
    answer it had not read yet. Under gevent the wait holds a greenlet, not the worker.
    """

    def handle_request(self, listener_name, req, sock, addr):
        try:
            return super().handle_request(listener_name, req, sock, addr)
        except StopIteration:  # the answer was sent and the connection is to close
            close_graceful(sock)
            raise


# gevent workers serve many connections each, so a client that stalls mid-request
# holds one greenlet, not one of the two workers (two such clients took the whole
# service down under sync workers). Requests are still handled one at a time per
# worker when they use the CPU; what they overlap is the wait on Redis and the network.
worker_class = LingeringGeventWorker


def _connections_per_worker(wanted: int = 1000) -> int:
    """``wanted``, but at most half the open-file limit (``ulimit -n``).

    Past the limit every accept fails with EMFILE, which gevent logs as a traceback
    per refused client (22 in a few seconds under ``ulimit -n 200``), while a full
    pool leaves the next clients waiting in the listen backlog. Half leaves room for
    Redis connections, the model's files and the logs.
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft // 2))


worker_connections = _connections_per_worker()
# Under gevent workers, keepalive is also the deadline for a request's line and headers
# (gunicorn's AsyncWorker reads them inside ``timeout_ctx``): a client that has not
# sent them within 5 s of connecting, or of its previous response, is disconnected.
# nginx allows 60 s by default; 5 s is ample for a browser's one-packet headers.
keepalive = 5
timeout = 30
accesslog = "-"
errorlog = "-"
# Client IPs are hashed in the app; keep raw addresses out of the access log too.
access_log_format = '"%(r)s" %(s)s %(b)s %(M)sms'

_VAR_DIR = Path(os.environ.get("MODERATION_VAR_DIR") or Path(__file__).parent / "var")
# gunicorn's control socket (for `gunicornc`) defaults to ~/.gunicorn/gunicorn.ctl,
# shared by every gunicorn of the user: a second instance silently took it over from
# the first. Each instance keeps its own under var/, unless that path is too long
# for a Unix socket (108 bytes), where it is switched off rather than shared.
control_socket = str(_VAR_DIR / "gunicorn.ctl")
control_socket_disable = len(os.fsencode(control_socket)) > 100

_embedded = None


class _HideClientAddress(logging.Filter):
    """gunicorn's "Invalid request from ip=...: ..." names the client. The app logs no
    client address (README, Privacy), and neither does the access log format above."""

    _ADDRESS = re.compile(r"\bip=\S*?: ")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and "ip=" in record.msg:
            record.msg = self._ADDRESS.sub("ip=(hidden): ", record.msg)
        return True


def _json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's answer to a request it refused before the app ran (a request line
    or headers too long or unreadable, a broken chunk), in the app's JSON error shape
    (moderation/errors.py) instead of gunicorn's small HTML page. The path may be
    unreadable, so every client gets JSON; forms never reach this far broken."""
    from gunicorn.util import write_nonblock

    if status_int == 501:  # gunicorn's "Bad Request" for a Transfer-Encoding it lacks
        status_int = 400
    if status_int >= 500:
        code, message = "internal_error", "Something went wrong on our side."
    else:
        code = reason.lower().replace(" ", "_")
        message = f"{reason}: {mesg}" if mesg else reason
    body = json.dumps({"error": {"code": code, "message": message, "field": None}}).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        "Content-Type: application/json\r\nX-Content-Type-Options: nosniff\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    write_nonblock(sock, head.encode("latin-1") + body)
    close_graceful(sock)  # the rest of the refused request is still arriving


def on_starting(server):
    global _embedded
    server.log.error_log.addFilter(_HideClientAddress())
    # Workers fork from this process, so they inherit the replacement.
    import gunicorn.util

    gunicorn.util.write_error = _json_error
    if worker_connections < 1000:
        server.log.warning("%d connections per worker, not 1000: the open-file limit "
                           "(ulimit -n) is %d", worker_connections,
                           resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    _VAR_DIR.mkdir(parents=True, exist_ok=True)
    _metrics_dir(_VAR_DIR / "metrics")
    settings = _check_configuration(server)  # imports the app's package: after _metrics_dir
    if os.environ.get("REDIS_URL"):
        _check_eviction(server, os.environ["REDIS_URL"], settings["REDIS_ALLOW_EVICTION"])
    else:
        from moderation.embedded_redis import EmbeddedRedis

        _embedded = EmbeddedRedis(_VAR_DIR / "redis")
        os.environ["REDIS_URL"] = _embedded.start()
        server.log.info("embedded redis at %s (data in %s)", _embedded.url, _embedded.data_dir)
        _watch_embedded_redis(server)
    _import_libraries()


#: Seconds between two attempts to start the embedded redis-server again when one failed.
EMBEDDED_RETRY_SECONDS = 5.0
_next_embedded_try = 0.0


def _watch_embedded_redis(server) -> None:
    """Have the master start the embedded redis-server again whenever it dies.

    Until it is back every request answers 503 storage_unavailable ("nothing was
    saved"); its data is in its AOF under var/redis, so a restart loses nothing it
    acknowledged (README, "Redis: what keeps a comment"). gunicorn has no periodic
    hook: its main loop calls ``manage_workers`` at least once a second (after
    reaping children on SIGCHLD), so the check rides on that call.
    """
    manage_workers = server.manage_workers

    def manage_workers_and_redis() -> None:
        _restart_embedded_redis(server)
        manage_workers()

    server.manage_workers = manage_workers_and_redis


def _restart_embedded_redis(server) -> None:
    global _next_embedded_try
    if _embedded is None or not _embedded.exited() or time.monotonic() < _next_embedded_try:
        return
    server.log.error("embedded redis-server (pid %s) has exited: starting it again on its "
                     "data in %s; requests answer 503 until it is back",
                     _embedded.process.pid, _embedded.data_dir)
    try:
        _embedded.restart()
    except (RuntimeError, OSError) as exc:  # never out of gunicorn's loop: it would stop
        _next_embedded_try = time.monotonic() + EMBEDDED_RETRY_SECONDS
        server.log.error("embedded redis-server did not start again (%s); next try in %g s",
                         exc, EMBEDDED_RETRY_SECONDS)
        return
    server.log.warning("embedded redis-server is running again (pid %s)", _embedded.process.pid)


def _check_configuration(server) -> dict:
    """Stop at once, in one line, on a setting the app cannot run with: each worker
    would otherwise fail to boot with a traceback (see moderation/preflight.py)."""
    from moderation.config import ConfigError
    from moderation.preflight import check

    try:
        return check()
    except ConfigError as exc:
        server.log.error("configuration error: %s", exc)
        raise SystemExit(2) from None


def _check_eviction(server, url: str, allowed: bool) -> None:
    """Refuse to serve on the operator's Redis when it may evict (delete) stored comments
    to free memory, unless REDIS_ALLOW_EVICTION=1 (moderation/eviction.py). A Redis that
    does not answer yet is no reason to stop (the service serves once it does); /readyz
    checks the policy then."""
    import redis

    from moderation import eviction
    from moderation.redis_store import shown_url

    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5,
                                  retry=redis.retry.Retry(redis.backoff.NoBackoff(), 0))
    try:
        found = eviction.read_policy(client)
    except redis.RedisError as exc:
        server.log.warning("Redis at %s does not answer (%s): its maxmemory-policy is "
                           "checked by /readyz once it does", shown_url(url), exc)
        return
    finally:
        client.close()
    refusal = eviction.problem(found, allowed=allowed)
    if refusal is not None:
        server.log.error("Redis at %s: %s", shown_url(url), refusal)
        raise SystemExit(2)
    message = eviction.warning(found)
    if message is not None:
        server.log.warning("Redis at %s: %s", shown_url(url), message)


def _metrics_dir(path: Path) -> None:
    """Where each worker keeps its Prometheus values, so a scrape sums all workers.

    Set before anything imports prometheus_client (it reads the variable on import),
    and emptied: values of a previous run's processes would be counted again.
    """
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    path = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()


def _import_libraries():
    """Import the app's modules once in the master, before it forks the workers.

    Only imports: no app, no Redis connection, no model (each worker builds its own
    app). Their code and data pages (Flask, NumPy, Pillow, pydantic, ...) are then
    shared by the workers copy-on-write: each worker's PSS counts a share, its RSS
    still counts them in full (see bench/memory.py). scikit-learn and SciPy are not
    among them: workers load the model's serving export, which needs neither.
    """
    import moderation  # noqa: F401
    import moderation.scoring  # noqa: F401


def pre_fork(server, worker):
    """Move the master's objects out of the garbage collector's reach before forking.

    A collection in a worker otherwise writes to the header of every tracked object
    it walks, copying the master's shared pages into the worker one by one (the
    Python docs' advice for pre-fork servers). `make bench` memory: worker USS 54 ->
    43 MB, PSS 64 -> 55 MB.
    """
    gc.freeze()


def post_worker_init(worker):
    """After the app (and its model) loaded: hand the loader's freed heap back to the OS,
    then start the worker's background check for promoted models.

    Loading the model allocates temporaries (the .npz buffers, the term table's
    decoded text) that are freed at once; glibc keeps such memory in the process
    unless asked to trim.
    """
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:  # not glibc
        pass
    # An idle worker switches to a promoted model on time too (moderation/scoring.py).
    reloader = getattr(worker.wsgi, "extensions", {}).get("scorer_reloader")
    if reloader is not None:
        reloader.watch()


def child_exit(server, worker):
    """A worker is gone: its live gauges (the model it served) stop counting."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def when_ready(server):
    server.log.info("Serving the article page at http://%s/", bind)


def on_exit(server):
    if _embedded is not None:
        _embedded.stop()
