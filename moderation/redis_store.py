"""The Redis connection: the configured server, or a private embedded one.

Domain modules take a ``redis.Redis`` as an argument; only views call
:func:`get_redis` to fetch the app's client.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

import click
import redis
from flask import Flask, current_app

from .embedded_redis import EmbeddedRedis


def connect(url: str) -> redis.Redis:
    """A client that returns ``str``; one pool per process, a connection per greenlet
    waiting on Redis at the same moment (gevent workers)."""
    return redis.Redis.from_url(url, decode_responses=True, health_check_interval=30)


def init_app(app: Flask) -> None:
    """Connect the app to Redis, starting the embedded server if no URL is configured."""
    url = app.config.get("REDIS_URL")
    if not url:
        server = EmbeddedRedis(Path(app.config["VAR_DIR"]) / "redis")
        url = server.start()
        app.extensions["embedded_redis"] = server
        # Child processes (gunicorn workers, CLI subprocesses) reuse this server.
        os.environ["REDIS_URL"] = url
        app.config["REDIS_URL"] = url
    client = app.config.get("REDIS_CLIENT") or connect(url)
    app.extensions["redis"] = client


def get_redis() -> redis.Redis:
    return current_app.extensions["redis"]


def cli_redis_errors(command):
    """A `flask` CLI command whose Redis does not answer ends with one line naming the
    server (its password hidden), exit status 1, instead of redis-py's traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except redis.RedisError as exc:
            url = shown_url(current_app.config.get("REDIS_URL") or "")
            raise click.ClickException(f"cannot reach Redis at {url}: {exc}") from None

    return wrapper


def shown_url(url: str) -> str:
    """A Redis URL fit for a log line or a message: its password hidden."""
    return re.sub(r"//[^/@]*@", "//***@", url)
