"""Rate limits on posting comments: Flask-Limiter on the app's Redis.

Two limits guard each comment endpoint (HTML form and JSON API), both checked
before the request body is even parsed, so a refused request changes nothing:

* per client: the key is the keyed hash of the client IP (never the raw address),
  and the IP is ``request.remote_addr`` as corrected by ProxyFix for exactly
  ``TRUSTED_PROXIES`` proxies, so a forged ``X-Forwarded-For`` cannot pick it;
* per article: all clients together, against floods spread over many addresses.

Issuing CAPTCHA challenges through the API has its own per-client limit, and so do
failed moderator logins (a successful login costs nothing). A refused request gets
429 with ``Retry-After``: the JSON error shape on the API, the form re-rendered with
the reader's text kept on the article page, and the login form with its message.
"""

from __future__ import annotations

import logging
import math
import time

from flask import Flask, current_app, request
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded

from . import keys, metrics
from .comments import hash_ip
from .errors import ApiError, error_response

log = logging.getLogger(__name__)

#: endpoint -> the config keys of the limits applied to it
LIMITED_ENDPOINTS = {
    "articles.post_comment": ("RATE_LIMIT_PER_IP", "RATE_LIMIT_PER_ARTICLE"),
    "api.post_comment": ("RATE_LIMIT_PER_IP", "RATE_LIMIT_PER_ARTICLE"),
    "api.new_challenge": ("RATE_LIMIT_CHALLENGES",),
    "auth.login_post": ("RATE_LIMIT_LOGIN_FAILURES",),
}

#: Limits that count only some answers: config key -> which responses are deducted.
DEDUCT_WHEN = {
    # A wrong name or password (401); a login, a CSRF failure or an empty form is free.
    "RATE_LIMIT_LOGIN_FAILURES": lambda response: response.status_code == 401,
}

RATE_LIMITED_MESSAGE = (
    "You are posting too often. Please wait {wait} and try again; "
    "your text has been kept."  # the form is shown again with it
)
API_RATE_LIMITED_MESSAGE = (
    "Too many requests from your address. Nothing was saved: send the same request "
    "again in {seconds} seconds."
)
LOGIN_LIMITED_MESSAGE = (
    "Too many failed logins from your address. Please wait {seconds} seconds and try again."
)


def storage_uri(redis_url: str) -> str:
    """The limits-library URI for a redis-py URL.

    redis-py spells a socket ``unix:///path``; the ``limits`` library wants
    ``redis+unix:///path`` (and turns it back into ``unix://`` for redis-py).
    """
    if redis_url.startswith("unix://"):
        return "redis+" + redis_url
    return redis_url


def client_key() -> str:
    """The per-client bucket: keyed hash of the (ProxyFix-corrected) client IP."""
    ip = request.remote_addr or "unknown"
    return "ip:" + hash_ip(ip, current_app.config["IP_HASH_KEY"])


def article_key() -> str:
    slug = (request.view_args or {}).get("slug", "")
    return "article:" + str(slug)[:200]


def wait_in_words(seconds: int) -> str:
    """A wait as a reader reads it: "45 seconds", "3 minutes", "about 24 hours"."""
    def count(number: int, unit: str) -> str:
        return f"{number} {unit}{'' if number == 1 else 's'}"

    if seconds < 60:
        return count(seconds, "second")
    if seconds < 3600:
        return count(round(seconds / 60), "minute")
    return "about " + count(round(seconds / 3600), "hour")


def retry_after_seconds(limiter: Limiter) -> int:
    current = limiter.current_limit
    if current is None:
        return 60
    return max(1, math.ceil(current.reset_at - time.time()))


def init_app(app: Flask) -> None:
    """Create this app's limiter and wrap the comment endpoints (call after blueprints)."""
    app.config.setdefault("RATELIMIT_STORAGE_URI", storage_uri(app.config["REDIS_URL"]))
    # The limits library's own prefix ("LIMITS") replaced by ours: every key under mod:.
    app.config.setdefault("RATELIMIT_STORAGE_OPTIONS", {"key_prefix": keys.LIMITS_PREFIX})
    # RATELIMIT_STRATEGY comes from config.py (RATE_LIMIT_STRATEGY): by default the
    # sliding-window counter, two counters per limit and one script call per hit. The
    # moving window logged every hit in a list and cost most of a POST's time (bench).
    app.config.setdefault("RATELIMIT_STRATEGY", "sliding-window-counter")
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", False)
    limiter = Limiter(key_func=client_key, app=app)
    # Its INFO line on every breach names the bucket key (the client's IP hash): keep
    # that out of the logs; ours below says which endpoint, not who.
    logging.getLogger("flask-limiter").setLevel(logging.WARNING)
    app.extensions["rate_limiter"] = limiter

    for endpoint, config_keys in LIMITED_ENDPOINTS.items():
        view = app.view_functions[endpoint]
        for config_key in config_keys:
            key_func = article_key if config_key == "RATE_LIMIT_PER_ARTICLE" else client_key
            # Shared: the HTML form and the API draw from the same buckets. The limit
            # is the string itself, not a callable reading app.config on each request:
            # settings are fixed when the app is created. (Flask-Limiter still parses
            # the string on every request, ~3.5 us a limit: its Limit.__iter__.)
            view = limiter.shared_limit(
                app.config[config_key], scope=config_key.lower(), key_func=key_func,
                deduct_when=DEDUCT_WHEN.get(config_key),
            )(view)
        app.view_functions[endpoint] = view

    # Flask-Limiter's before_request hook enforces default and application-wide
    # limits; the decorated limits above are checked by their own wrappers. With no
    # default limits configured the hook finds nothing to do, at ~0.08 ms per request
    # (10% of a JSON listing in make bench): unhook it then.
    if not (app.config.get("RATELIMIT_DEFAULT") or app.config.get("RATELIMIT_APPLICATION")):
        hooks = app.before_request_funcs.get(None, [])
        if limiter._check_request_limit in hooks:
            hooks.remove(limiter._check_request_limit)
    else:
        # Only the endpoints above have limits of ours: with the hook kept, every other
        # request -- page views, the listing, images -- skips the limiter's limit
        # resolution (~0.1 ms a request on the bench machine). Without the hook the
        # filter would only ever be asked on the limited endpoints, on every POST, to
        # answer no.
        limiter.request_filter(lambda: request.endpoint not in LIMITED_ENDPOINTS)

    @app.errorhandler(RateLimitExceeded)
    def rate_limited(exc: RateLimitExceeded):
        seconds = retry_after_seconds(limiter)
        log.info("rate limited %s %s", request.method, request.endpoint)
        metrics.RATE_LIMITED.labels(endpoint=request.endpoint or "unmatched").inc()
        form = request.endpoint == "articles.post_comment"
        message = RATE_LIMITED_MESSAGE if form else API_RATE_LIMITED_MESSAGE
        error = ApiError(429, "rate_limited",
                         message.format(seconds=seconds, wait=wait_in_words(seconds)), None)
        if form:
            from .views.articles import rerender_after_error

            response = rerender_after_error(error)
        elif request.endpoint == "auth.login_post":
            from .views.auth import rerender_login

            response = rerender_login(LOGIN_LIMITED_MESSAGE.format(seconds=seconds), 429)
        else:
            response = current_app.make_response(error_response(error))
        response.headers["Retry-After"] = str(seconds)
        return response
