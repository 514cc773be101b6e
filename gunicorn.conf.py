"""gunicorn settings for `make run` and the Docker image.

When REDIS_URL is unset the master starts one private redis-server before forking
workers, so every worker shares it, and stops it on exit.
"""

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


def when_ready(server):
    server.log.info("Serving the article page at http://%s/", bind)


def on_exit(server):
    if _embedded is not None:
        _embedded.stop()
