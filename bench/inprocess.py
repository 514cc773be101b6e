"""Helpers for benchmarks that run inside this process: the app on a private Redis."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from .bench_app import BENCH_CONFIG
from .common import redis_server


@contextmanager
def service_app(models_dir: str, config: dict | None = None, **factory_kwargs) -> Iterator:
    """The real app from the real factory on a private redis-server (default CAPTCHA).

    ``config`` overrides settings the way an operator's environment would.
    """
    from moderation import create_app

    with redis_server() as url:
        settings = {
            **BENCH_CONFIG,
            "REDIS_URL": url,
            "MODELS_DIR": models_dir,
            "SECRET_KEY": "bench-secret",
            "IP_HASH_KEY": "bench-ip-key",
            "LOG_LEVEL": "WARNING",
            **(config or {}),
        }
        app = create_app(settings, **factory_kwargs)
        try:
            yield app
        finally:
            app.extensions["redis"].close()
