"""Comment moderation service: the application factory."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import click
from flask import Flask
from flask.cli import ScriptInfo
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from . import (
    articles,
    backup,
    captcha_audio,
    config,
    errors,
    metrics,
    policies,
    ratelimit,
    redis_store,
    retention,
    scoring,
    security_headers,
    sessions,
    templating,
    text,
)
from .captcha import ChallengeStore, TextSource, random_text
from .comments import PageCache

csrf = CSRFProtect()


def create_app(
    test_config: Mapping[str, Any] | None = None,
    *,
    challenge_text: TextSource | None = None,
) -> Flask:
    """Build the app: settings from the environment (or ``test_config``), Redis, model, views.

    ``challenge_text`` replaces the CAPTCHA's random text source. It is a Python
    argument on purpose: tests and benchmarks can pass one, but no environment
    variable, header or URL of a running service can.
    """
    app = Flask(__name__)
    try:
        app.config.from_mapping(config.from_environment())
    except config.ConfigError as exc:
        if _in_flask_command():  # `flask users ...`: one line, as gunicorn says it
            raise click.ClickException(f"configuration error: {exc}") from None
        raise
    if test_config is not None:
        app.config.update(test_config)
    _configure_logging(app)

    if app.config.get("TRUSTED_PROXIES", 0):
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["TRUSTED_PROXIES"])

    articles.init_app(app)
    redis_store.init_app(app)
    app.extensions["page_cache"] = PageCache()
    app.extensions["captcha"] = ChallengeStore.from_config(
        app.extensions["redis"],
        app.config,
        text_source=challenge_text or random_text,
        audio=captcha_audio.init_app(app),
    )
    scoring.init_app(app)
    sessions.init_app(app)
    # Each comment is normalized a few times in its own request, never again.
    text.set_cache_size(text.SERVING_CACHE_SIZE)
    errors.init_app(app)  # before CSRF: its hook reads (and times out) every body first
    csrf.init_app(app)
    templating.init_app(app)
    policies.init_app(app)

    from . import users
    from .queue import ReviewQueue
    from .views import api, auth, icons, models, moderate, moderate_api, ops
    from .views import articles as article_views

    users.init_app(app)
    app.extensions["review_queue"] = ReviewQueue(
        app.extensions["redis"], lease_seconds=app.config["LEASE_SECONDS"]
    )
    csrf.exempt(api.bp)  # JSON clients are not browsers carrying our session cookie
    csrf.exempt(moderate_api.bp)  # bearer tokens only; it never reads the session cookie
    app.register_blueprint(article_views.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(moderate.bp)
    app.register_blueprint(moderate_api.bp)
    app.register_blueprint(models.bp)
    app.register_blueprint(ops.bp)
    app.register_blueprint(icons.bp)
    app.register_error_handler(CSRFError, article_views.handle_csrf_error)
    ratelimit.init_app(app)  # wraps the comment endpoints: after the blueprints
    security_headers.init_app(app)
    retention.init_app(app)
    backup.init_app(app)
    metrics.init_app(app)
    return app


def _configure_logging(app: Flask) -> None:
    """Log at LOG_LEVEL; left unset, INFO for the service and WARNING for a `flask`
    command such as `users create`, whose operator wants its answer, not start-up news."""
    default = "WARNING" if _in_flask_command() else "INFO"
    name = str(app.config.get("LOG_LEVEL") or default).upper()
    level = getattr(logging, name, logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("moderation").setLevel(level)


def _in_flask_command() -> bool:
    """Whether the `flask` CLI is building the app for a command other than `flask run`.

    Asked of click's current context, not of the environment: gunicorn and tests
    build the app outside any click command, and `flask run` (a server, whose logs
    matter) loads the app inside its own "run" context.
    """
    ctx = click.get_current_context(silent=True)
    return ctx is not None and ctx.find_object(ScriptInfo) is not None and ctx.info_name != "run"
