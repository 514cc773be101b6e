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
