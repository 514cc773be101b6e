"""Moderator login and logout with the session cookie (HttpOnly, SameSite=Lax)."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError

from .. import auth
from ..users import MAX_PASSWORD, get_users
from .common import no_store

bp = Blueprint("auth", __name__)


def _render(error: str = "", name: str = "", status: int = 200):
    html = render_template(
        "login.html", error=error, name=name, next=auth.safe_next(request.values.get("next")) or ""
    )
    return no_store(current_app.make_response((html, status)))


def rerender_login(error: str, status: int):
    """The login form again with ``error`` and the name typed kept (e.g. rate limited)."""
    return _render(error, request.form.get("name", "").strip().lower()[:100], status)


@bp.get("/login")
def login():
    if auth.current_user() is not None:
        return redirect(url_for("moderate.queue"))
    return _render()


@bp.post("/login")
def login_post():
    name = request.form.get("name", "").strip().lower()[:100]
    password = request.form.get("password", "")[:MAX_PASSWORD]
    if not name or not password:
        return _render("Enter your name and password.", name, 400)
    user = get_users().authenticate(name, password)
    if user is None:
        return _render("Wrong name or password.", name, 401)
    auth.login(user)
    return redirect(auth.safe_next(request.form.get("next")) or url_for("moderate.queue"), code=303)


@bp.post("/logout")
def logout():
    auth.logout()
    return redirect(url_for("auth.login"), code=303)


@bp.errorhandler(CSRFError)
def csrf_failed(error: CSRFError):
    """Login or logout posted without a valid token: show the login form again (400)."""
    return rerender_login(
        f"The form's security token is missing or wrong ({error.description}). Please try again.",
        400,
    )
