"""Request helpers shared by the reader-facing blueprints."""

from __future__ import annotations

from flask import current_app, g, request

from ..captcha import ChallengeStore
from ..comments import PageCache, hash_ip
from ..policies import PASS_COOKIE
from ..redis_store import get_redis
from ..schemas import MAX_PAGE, parse_submission
from ..scoring import get_scorer
from ..submission import Client, Outcome, Protections, submit


def get_challenges() -> ChallengeStore:
    return current_app.extensions["captcha"]


def get_protections() -> Protections:
    return current_app.extensions["protections"]


def get_page_cache() -> PageCache:
    """This process's rendered listing pages (see comments.PageCache)."""
    return current_app.extensions["page_cache"]


def set_pass_cookie(response, cookie_value: str | None):
    """Give the browser its "remember" CAPTCHA pass (signed, HttpOnly), if one was earned."""
    if cookie_value:
        response.set_cookie(
            PASS_COOKIE,
            cookie_value,
            max_age=current_app.config["REMEMBER_SECONDS"],
            httponly=True,
            secure=current_app.config["SESSION_COOKIE_SECURE"],
            samesite="Lax",
        )
    return response


def current_client() -> Client:
    """The requesting client: a keyed hash of its IP and its user agent.

    ``remote_addr`` is already corrected by ProxyFix for the configured number of
    trusted proxies, so a forged X-Forwarded-For cannot choose the address.
    """
    ip = request.remote_addr or "unknown"
    return Client(
        ip_hash=hash_ip(ip, current_app.config["IP_HASH_KEY"]),
        user_agent=(request.user_agent.string or "")[:300],
        captcha_pass=request.cookies.get(PASS_COOKIE),
    )


def submit_comment(slug: str, fields: object) -> Outcome:
    """Validate a reader's fields (form or JSON) and take the comment through
    submission with this app's parts; refusals raise ApiError."""
    submission = parse_submission(
        fields,
        max_body=current_app.config["MAX_COMMENT_CHARS"],
        max_name=current_app.config["MAX_NAME_CHARS"],
    )
    outcome = submit(
        get_redis(),
        get_challenges(),
        get_scorer(),
        article=slug,
        submission=submission,
        client=current_client(),
        protections=get_protections(),
    )
    # Stored: should Redis fail later in this request (the form's page reads it), the
    # 503 must not say that nothing was saved (errors.handle_store_down).
    g.saved_comment = (outcome.comment.id, outcome.comment.status, outcome.reader_message)
    return outcome


def page_number(raw: str | None) -> int:
    """A 1-based page number from a query string; junk means the first page."""
    try:
        return max(1, min(int(raw or 1), MAX_PAGE))
    except ValueError:
        return 1


def no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response
