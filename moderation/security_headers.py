"""Security headers on every response, set by flask-talisman.

* ``Content-Security-Policy``: scripts, styles, images, audio and form targets only
  from our own origin; no inline script or style (so an injected ``<script>`` or
  ``onerror=`` attribute does not run even if escaping ever failed), no plugins, no
  ``<base>`` rewriting; ``frame-ancestors`` from ``FRAME_ANCESTORS`` (default
  ``'none'``: no site may frame our pages, against clickjacking).
* ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: strict-origin-when-cross-origin``,
  and ``X-Frame-Options`` matching ``frame-ancestors`` for old browsers.

HTTPS redirects and HSTS are left to the TLS-terminating proxy (``force_https`` off);
Talisman's cookie settings are fed from our own configuration so it changes nothing
there.
"""

from __future__ import annotations

from flask import Flask
from flask_talisman import Talisman


def content_security_policy(frame_ancestors: str) -> dict[str, str]:
    return {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": "'self'",
        "media-src": "'self'",
        "connect-src": "'self'",
        "font-src": "'self'",
        "form-action": "'self'",
        "object-src": "'none'",
        "base-uri": "'none'",
        "frame-ancestors": frame_ancestors,
    }


def _legacy_frame_options(frame_ancestors: str) -> str | None:
    """X-Frame-Options for browsers without frame-ancestors (None when it cannot express it)."""
    value = frame_ancestors.strip()
    if value == "'none'":
        return "DENY"
    if value == "'self'":
        return "SAMEORIGIN"
    return None


def init_app(app: Flask) -> None:
    frame_ancestors = app.config["FRAME_ANCESTORS"]
    talisman = Talisman()
    talisman.init_app(
        app,
        force_https=False,
        strict_transport_security=False,
        content_security_policy=content_security_policy(frame_ancestors),
        frame_options=_legacy_frame_options(frame_ancestors),
        referrer_policy="strict-origin-when-cross-origin",
        x_content_type_options=True,
        session_cookie_secure=app.config["SESSION_COOKIE_SECURE"],
        session_cookie_http_only=app.config["SESSION_COOKIE_HTTPONLY"],
        session_cookie_samesite=app.config["SESSION_COOKIE_SAMESITE"],
    )
    app.extensions["talisman"] = talisman
