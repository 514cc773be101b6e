"""Who is asking: the session user (UI) or the bearer-token user (JSON API).

``login_required(role)`` protects UI views: no session sends the browser to the
login page, a wrong role answers 403. A session left unused for
``SESSION_IDLE_MINUTES`` ends; the login page then says so, and after logging in
the browser goes back to where it was. ``token_required(role)`` protects API
views: no, an unknown or an expired token answers 401 JSON, a wrong role 403. The
API never looks at the session cookie, which is why it can be exempt from CSRF.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import current_app, flash, g, redirect, request, session, url_for

from .errors import ApiError
from .users import MODERATOR, SessionIdle, TokenExpired, User, get_users

#: The session cookie's key for the login's session id (``UserStore.start_session``).
#: It used to hold the account name itself, which no logout could take back.
SESSION_KEY = "moderator_session"


#: Flash category of the notice that a session ended after inactivity.
IDLE_FLASH = "idle"


def current_user() -> User | None:
    """The logged-in account of this request, looked up once (it may have been
    deleted, the session ended by logout or ``users end-sessions``, or left idle)."""
    if "user" not in g:
        g.user = None
        session_id = session.get(SESSION_KEY)
        if isinstance(session_id, str):
            try:
                g.user = get_users().by_session(session_id)
            except SessionIdle:
                session.pop(SESSION_KEY)
                flash(_idle_message(), IDLE_FLASH)
    return g.user


def _idle_message() -> str:
    minutes = current_app.config["SESSION_IDLE_MINUTES"]
    count, unit = (minutes // 60, "hour") if minutes % 60 == 0 else (minutes, "minute")
    span = f"{count} {unit}{'' if count == 1 else 's'}"
    message = f"You were logged out after {span} without activity. Log in to continue."
    if request.method != "GET":
        message += " What you last sent was not carried out."
    return message


def login(user: User) -> None:
    session.clear()  # a fresh session on login: nothing carried over from before
    lifetime = int(current_app.permanent_session_lifetime.total_seconds())
    session[SESSION_KEY] = get_users().start_session(user.name, lifetime)
    g.user = user


def logout() -> None:
    """End the session in Redis too: a copy of the cookie is worth nothing after this."""
    session_id = session.get(SESSION_KEY)
    if isinstance(session_id, str):
        get_users().end_session(session_id)
    session.clear()
    g.user = None


def _forbidden(user: User, role: str) -> ApiError:
    return ApiError(
        403, "forbidden", f"This needs the {role} role; '{user.name}' is a {user.role}."
    )


def login_required(role: str = MODERATOR) -> Callable:
    """UI views: redirect to the login page without a session, 403 without the role."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any):
            user = current_user()
            if user is None:
                return redirect(url_for("auth.login", next=_return_to()))
            if not user.can(role):
                raise _forbidden(user, role)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def _return_to() -> str | None:
    """Where the login page sends the browser back to: the page asked for, or for a
    form posted (the session ended meanwhile) the page it was posted from, if ours.

    A POST-only path is no place to go back to: a GET there is a 405.
    """
    if request.method == "GET":
        return safe_next(request.full_path.rstrip("?"))
    referrer = urlsplit(request.referrer or "")
    if referrer.netloc != request.host:
        return None
    return safe_next(referrer.path + (f"?{referrer.query}" if referrer.query else ""))


def token_user() -> User | None:
    """The account of the request's bearer token; raises ``TokenExpired``."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return get_users().by_token(token.strip())


def token_required(role: str = MODERATOR) -> Callable:
    """API views: 401 without a valid bearer token, 403 without the role."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any):
            try:
                user = token_user()
            except TokenExpired as exc:
                expired = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(exc.token.expires))
                raise ApiError(
                    401,
                    "token_expired",
                    f"This API token (id {exc.token.id}) expired on {expired}; ask whoever "
                    "runs the service for a new one (`flask --app moderation users token "
                    "NAME`).",
                ) from None
            if user is None:
                raise ApiError(
                    401,
                    "unauthorized",
                    "Send a valid API token: 'Authorization: Bearer <token>' "
                    "(create one with `flask --app moderation users token NAME`).",
                )
            if not user.can(role):
                raise _forbidden(user, role)
            g.user = user
            return view(*args, **kwargs)

        return wrapped

    return decorator


def safe_next(target: str | None) -> str | None:
    """A redirect target after login, only if it is a path on this site.

    Control characters are refused too: a CR or LF cannot go into a Location header
    (werkzeug raises, which would be a 500) and has no business in a path.
    """
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in target):
        return None
    return target
