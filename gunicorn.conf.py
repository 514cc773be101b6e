"""gunicorn settings for `make run` and the Docker image.

When REDIS_URL is unset the master starts one private redis-server before forking
workers, so every worker shares it, and stops it on exit.
"""

import ctypes
import gc
import os
from pathlib import Path

bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "sync"
timeout = 30
accesslog = "-"
errorlog = "-"
# Client IPs are hashed in the app; keep raw addresses out of the access log too.
access_log_format = '"%(r)s" %(s)s %(b)s %(M)sms'

_embedded = None


def on_starting(server):
    global _embedded
    if not os.environ.get("REDIS_URL"):
        from moderation.embedded_redis import EmbeddedRedis

        var_dir = Path(os.environ.get("MODERATION_VAR_DIR", Path(__file__).parent / "var"))
        _embedded = EmbeddedRedis(var_dir / "redis")
        os.environ["REDIS_URL"] = _embedded.start()
        server.log.info("embedded redis at %s (data in %s)", _embedded.url, _embedded.data_dir)
    _import_libraries()


def _import_libraries():
    """Import the heavy libraries once in the master, before it forks the workers.

    Only imports: no app, no Redis connection, no model (each worker builds its own
    app). The libraries' code and data pages (scikit-learn, SciPy, NumPy: ~90 MB) are
    then shared by all workers copy-on-write instead of loaded by each; every worker
    still counts them in its RSS, its PSS counts a share (see bench/memory.py).
    """
    import flask  # noqa: F401
    import sklearn.feature_extraction.text  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    import sklearn.pipeline  # noqa: F401

    import moderation  # noqa: F401
    import moderation.scoring  # noqa: F401

    try:
        import skops.io  # noqa: F401  (the model file's loader)
    except ImportError:
        pass


def post_worker_init(worker):
    """After the app (and its model) loaded: hand the loader's freed heap back to the OS.

    Reading model.skops allocates tens of MB of temporaries that are freed at once;
    glibc keeps such memory in the process unless asked to trim.
    """
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:  # not glibc
        pass


def when_ready(server):
    server.log.info("Serving the article page at http://%s/", bind)


def on_exit(server):
    if _embedded is not None:
        _embedded.stop()
