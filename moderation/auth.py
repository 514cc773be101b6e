"""Who is asking: the session user (UI) or the bearer-token user (JSON API).

``login_required(role)`` protects UI views: no session sends the browser to the
login page, a wrong role answers 403. ``token_required(role)`` protects API
views: no or an unknown token answers 401 JSON, a wrong role 403. The API never
looks at the session cookie, which is why it can be exempt from CSRF.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import current_app, g, redirect, request, session, url_for

from .errors import ApiError
from .users import MODERATOR, User, get_users

#: The session cookie's key for the login's session id (``UserStore.start_session``).
#: It used to hold the account name itself, which no logout could take back.
SESSION_KEY = "moderator_session"


def current_user() -> User | None:
    """The logged-in account of this request, looked up once (it may have been
    deleted, or the session ended by logout or ``users end-sessions``)."""
    if "user" not in g:
        session_id = session.get(SESSION_KEY)
        g.user = get_users().by_session(session_id) if isinstance(session_id, str) else None
    return g.user


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
                target = request.full_path if request.method == "GET" else request.path
                return redirect(url_for("auth.login", next=target.rstrip("?")))
            if not user.can(role):
                raise _forbidden(user, role)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def token_user() -> User | None:
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
            user = token_user()
            if user is None:
                raise ApiError(
                    401,
                    "unauthorized",
                    "Send a valid API token: 'Authorization: Bearer <token>' "
                    "(create one with `flask users token NAME`).",
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
