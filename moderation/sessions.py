"""Flask's signed-cookie sessions, with the signing serializer built once.

Flask builds a new ``URLSafeTimedSerializer`` on every request, even one that sends
no session cookie (the article page and the listing, most of our traffic). The
serializer holds nothing but its keys and settings, so one per key set serves every
request; a changed ``SECRET_KEY`` or ``SECRET_KEY_FALLBACKS`` gets a new one.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer


class SessionCookies(SecureCookieSessionInterface):
    """Same cookies, same signatures as Flask's own interface."""

    def __init__(self) -> None:
        self._serializers: dict[tuple, URLSafeTimedSerializer | None] = {}

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        key = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        if key not in self._serializers:
            self._serializers.clear()  # keys rotated: the old serializer is dead weight
            self._serializers[key] = super().get_signing_serializer(app)
        return self._serializers[key]


def init_app(app: Flask) -> None:
    app.session_interface = SessionCookies()
    # A login's record in Redis lives this long (auth.login), and Flask refuses a
    # cookie signed longer ago.
    app.permanent_session_lifetime = timedelta(hours=app.config["SESSION_MAX_HOURS"])
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", csrf_time_limit(app.config))


def csrf_time_limit(config) -> int:
    """Seconds a form's CSRF token stays good: Flask-WTF's hour, or as long as a
    moderator's session may sit idle when that is longer. A queue page left open for
    two hours under SESSION_IDLE_MINUTES=480 was still logged in, yet its next
    decision was refused as "The security token has expired"."""
    idle = config["SESSION_IDLE_MINUTES"] * 60 or config["SESSION_MAX_HOURS"] * 3600
    return max(3600, idle)
