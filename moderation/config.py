"""Every setting of the service: its environment variable, its default, and why.

This is the only module that reads the environment. The app factory calls
:func:`from_environment` once; everything else reads ``app.config``.
"""

from __future__ import annotations

import math
import os
import secrets
from pathlib import Path
from typing import Any

from .guards import HOLD, REJECT
from .policies import ALWAYS, POLICIES
from .users import MAX_TOKEN_DAYS

PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: Where ``python -m training`` writes evaluation reports (one folder per model
#: version) unless REPORTS_DIR says otherwise; the training CLI reads this default
#: too, so the models page looks where the reports were written.
DEFAULT_REPORTS_DIR = PROJECT_ROOT / "reports"


def var_dir() -> Path:
    """MODERATION_VAR_DIR: the embedded Redis's data, generated secrets, backups."""
    # Blank is unset, as for every other setting (Path("") would be the working folder).
    return Path(os.environ.get("MODERATION_VAR_DIR") or PROJECT_ROOT / "var")


def _persistent_secret(name: str) -> str:
    """A random secret kept under var/ so every worker and every restart shares it.

    Used only when the operator has not set one: never a hard-coded fallback.
    """
    path = var_dir() / name
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32)
    # O_EXCL so two workers starting together agree on one value.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


class ConfigError(ValueError):
    """A setting the service cannot run with; the message names the variable."""


def _raw(name: str) -> str | None:
    raw = os.environ.get(name)
    return None if raw is None or raw.strip() == "" else raw.strip()


def _number(name: str, default: float, kind: type, low: float | None, high: float | None):
    raw = _raw(name)
    if raw is None:
        return default
    what = "a whole number" if kind is int else "a number"
    bounds = (f" from {low} to {high}" if low is not None and high is not None
              else f" of at least {low}" if low is not None else "")
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected {what}{bounds}") from None
    if not math.isfinite(value) or (low is not None and value < low) \
            or (high is not None and value > high):
        raise ConfigError(f"{name}={raw!r}: expected {what}{bounds}")
    return value


def _int(name: str, default: int, low: int | None = 0, high: int | None = None) -> int:
    return _number(name, default, int, low, high)


def _float(name: str, default: float, low: float | None = 0.0,
           high: float | None = None) -> float:
    return _number(name, default, float, low, high)


def _optional_float(name: str, low: float, high: float) -> float | None:
    return None if _raw(name) is None else _float(name, 0.0, low, high)


def _flag(name: str) -> bool:
    raw = (_raw(name) or "0").lower()
    if raw not in ("0", "1", "true", "false", "yes", "no"):
        raise ConfigError(f"{name}={raw!r}: expected 1 or 0 (true/false and yes/no work too)")
    return raw in ("1", "true", "yes")


LOG_LEVELS = ("", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _choice(name: str, default: str, choices: tuple[str, ...], fold=str) -> str:
    value = fold(_raw(name) or default)
    if value not in choices:
        named = ", ".join(choice for choice in choices if choice)
        raise ConfigError(f"{name}={value!r}: expected one of {named}")
    return value


REDIS_SCHEMES = ("redis", "rediss", "unix")


def _redis_url(name: str) -> str | None:
    """A URL redis-py can connect with (it refuses other schemes only when each worker
    connects). The value is not repeated in the error: it may hold a password."""
    value = _raw(name)
    if value is None:
        return None
    scheme, separator, _ = value.partition("://")
    if not separator or scheme.lower() not in REDIS_SCHEMES:
        shown = f"{name}={scheme + '://...'!r}" if separator else name
        expected = ", ".join(f"{known}://" for known in REDIS_SCHEMES)
        hidden = "" if separator else " (its value is not shown: it may hold a password)"
        raise ConfigError(f"{shown}: expected a URL starting {expected}{hidden}")
    return value


def redis_url() -> str | None:
    """``REDIS_URL`` checked as the service checks it (None: unset, use the embedded one);
    for commands that need Redis without the app's whole configuration."""
    return _redis_url("REDIS_URL")


def _rate_limit(name: str, default: str) -> str:
    from limits import parse_many

    value = _raw(name) or default
    try:
        parse_many(value)
    except ValueError:
        raise ConfigError(
            f"{name}={value!r}: expected limits such as '5 per minute;60 per day'"
        ) from None
    return value


def _check_ranges(settings: dict[str, Any]) -> None:
    """Settings that only make sense together."""
    for low, high in (("CAPTCHA_LENGTH_MIN", "CAPTCHA_LENGTH_MAX"),
                      ("CAPTCHA_FONT_SIZE_MIN", "CAPTCHA_FONT_SIZE_MAX"),
                      ("PUBLISH_BELOW", "REJECT_AT")):
        if settings[low] is not None and settings[high] is not None \
                and settings[low] > settings[high]:
            raise ConfigError(f"{low} ({settings[low]}) is above {high} ({settings[high]})")


def server_settings() -> dict[str, Any]:
    """gunicorn's own settings from the environment (gunicorn.conf.py reads them raw,
    before the app's package may be imported; its start-up check calls this)."""
    return {
        "BIND": _raw("BIND") or "127.0.0.1:8000",
        # gunicorn itself reads WEB_CONCURRENCY when imported; `make run` and the Docker
        # image run this check before that (see README, Configuration).
        "WEB_CONCURRENCY": _worker_count(),
    }


def _worker_count() -> int:
    """WEB_CONCURRENCY, which gunicorn reads with ``int()`` before any hook of ours:
    to it a blank value is not "unset" but a crash, so it is refused here too."""
    raw = os.environ.get("WEB_CONCURRENCY")
    if raw is not None and raw.strip() == "":
        raise ConfigError(f"WEB_CONCURRENCY={raw!r}: expected a "
                          "whole number of at least 1 (unset it for the default, 2)")
    return _int("WEB_CONCURRENCY", 2, 1)


def from_environment() -> dict[str, Any]:
    """Read every setting from the environment (documented in the README).

    Raises :class:`ConfigError` naming the variable when a value is not one the
    service can run with: a typo should stop it at start, not answer 500 later.
    """
    settings = {
        # Redis: unset means "start a private redis-server with its data under var/redis".
        "REDIS_URL": _redis_url("REDIS_URL"),
        # Serve even when that Redis may evict keys (a maxmemory-policy other than
        # noeviction): off, since eviction deletes stored comments without a word.
        "REDIS_ALLOW_EVICTION": _flag("REDIS_ALLOW_EVICTION"),
        "VAR_DIR": str(var_dir()),
        # Flask session/CSRF signing key and the key for hashing client IPs.
        "SECRET_KEY": os.environ.get("SECRET_KEY") or _persistent_secret("secret_key"),
        "IP_HASH_KEY": os.environ.get("IP_HASH_KEY") or _persistent_secret("ip_hash_key"),
        # Where trained models live (one folder per version).
        "MODELS_DIR": os.environ.get("MODELS_DIR", str(PROJECT_ROOT / "models")),
        # Evaluation reports (report.md and its plots, one folder per version), shown
        # to operators on /moderate/models; written by `python -m training`.
        "REPORTS_DIR": _raw("REPORTS_DIR") or str(DEFAULT_REPORTS_DIR),
        # Optional overrides of the thresholds stored with the model.
        "PUBLISH_BELOW": _optional_float("PUBLISH_BELOW", 0.0, 1.0),
        "REJECT_AT": _optional_float("REJECT_AT", 0.0, 1.0),
        # CAPTCHA.
        "CAPTCHA_TTL_SECONDS": _int("CAPTCHA_TTL_SECONDS", 600, 10),
        # Characters per challenge: a random length in [MIN, MAX] for each one.
        "CAPTCHA_LENGTH_MIN": _int("CAPTCHA_LENGTH_MIN", 5, 1, 20),
        "CAPTCHA_LENGTH_MAX": _int("CAPTCHA_LENGTH_MAX", 7, 1, 20),
        # Wrong answers a challenge survives before it is gone (then a new image).
        "CAPTCHA_MAX_ATTEMPTS": _int("CAPTCHA_MAX_ATTEMPTS", 3, 1),
        # Image difficulty (see moderation/captcha_image.py and the README's
        # "CAPTCHA strength"): fonts (comma-separated TTF paths; empty = the ones
        # shipped in moderation/fonts), font size range in px, and how much
        # same-colour interference is drawn.
        "CAPTCHA_FONTS": [p for p in os.environ.get("CAPTCHA_FONTS", "").split(",") if p.strip()],
        "CAPTCHA_FONT_SIZE_MIN": _int("CAPTCHA_FONT_SIZE_MIN", 50, 8),
        "CAPTCHA_FONT_SIZE_MAX": _int("CAPTCHA_FONT_SIZE_MAX", 62, 8),
        "CAPTCHA_NOISE_LINES": _int("CAPTCHA_NOISE_LINES", 3),
        "CAPTCHA_NOISE_STROKES": _int("CAPTCHA_NOISE_STROKES", 5),
        "CAPTCHA_NOISE_DOTS": _int("CAPTCHA_NOISE_DOTS", 50),
        "CAPTCHA_WIDTH": _int("CAPTCHA_WIDTH", 240, 60, 2000),
        "CAPTCHA_HEIGHT": _int("CAPTCHA_HEIGHT", 80, 20, 1000),
        # Audio CAPTCHA: the espeak-ng voice library (built by `flask --app moderation
        # captcha build-voices`; empty = VAR_DIR/captcha-voices) and its white-noise level.
        "CAPTCHA_VOICES_DIR": os.environ.get("CAPTCHA_VOICES_DIR", ""),
        "CAPTCHA_AUDIO_NOISE": _int("CAPTCHA_AUDIO_NOISE", 24, 0, 255),
        # Input limits.
        "MAX_COMMENT_CHARS": _int("MAX_COMMENT_CHARS", 5000, 1),
        "MAX_NAME_CHARS": _int("MAX_NAME_CHARS", 60, 1),
        "MAX_CONTENT_LENGTH": _int("MAX_CONTENT_LENGTH", 64 * 1024, 1024),
        # Under gunicorn: seconds a request body may stop arriving before a 408 frees
        # the worker (below gunicorn's 30 s timeout, which kills it with a bare 500).
        "BODY_TIMEOUT_SECONDS": _float("BODY_TIMEOUT_SECONDS", 10.0, 0.1),
        "COMMENTS_PER_PAGE": _int("COMMENTS_PER_PAGE", 20, 1, 1000),
        # A folder of the site's own articles (.txt, the shipped article's format).
        "ARTICLES_DIR": os.environ.get("ARTICLES_DIR", ""),
        # Unset: INFO for the service, WARNING for `flask` CLI commands (see _configure_logging).
        "LOG_LEVEL": _choice("LOG_LEVEL", "", LOG_LEVELS, fold=str.upper),
        # Bearer token a Prometheus scraper sends for GET /metrics; unset, only clients
        # on this machine (loopback) may read the metrics.
        "METRICS_TOKEN": os.environ.get("METRICS_TOKEN", ""),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": _flag("SESSION_COOKIE_SECURE"),
        # Hours a moderator's browser login lasts at most, however active (Flask's own
        # 31 days by default; sessions.init_app makes it the session lifetime).
        "SESSION_MAX_HOURS": _int("SESSION_MAX_HOURS", 31 * 24, 1, 366 * 24),
        # Minutes a moderator's browser session may go unused before it ends (0 = no
        # limit; SESSION_MAX_HOURS applies either way). An hour: a
        # moderator who walks away from a shared computer is not logged in all day,
        # and one who works the queue, reading and deciding, never notices it.
        "SESSION_IDLE_MINUTES": _int("SESSION_IDLE_MINUTES", 60, 0, 31 * 24 * 60),
        # Days a new API token lives unless `users token --expires-days` says otherwise
        # (0 = never). 90: a token that leaks (a CI log, a laptop) stops working within
        # a quarter, and renewing one a quarter is little work for its owner.
        "API_TOKEN_DAYS": _int("API_TOKEN_DAYS", 90, 0, MAX_TOKEN_DAYS),
        # How many reverse proxies in front of us may set X-Forwarded-For (0 = none).
        "TRUSTED_PROXIES": _int("TRUSTED_PROXIES", 0),
        "MODEL_RELOAD_SECONDS": _float("MODEL_RELOAD_SECONDS", 1.0, 0.1),
        # Review queue: how long a moderator's claim on an item lasts before it returns.
        "LEASE_SECONDS": _float("LEASE_SECONDS", 600.0, 1.0),
        # Groups of held comments per page of the moderator UI (and API default).
        "MODERATE_PER_PAGE": _int("MODERATE_PER_PAGE", 100, 1, 1000),
        # The public API's answer to a comment carries its spam score, model version and
        # the model's reason only when this is on: to a sender they are an oracle for
        # rewording spam until it passes (moderators always see them).
        "PUBLIC_SCORES": _flag("PUBLIC_SCORES"),
        # --- Abuse defenses (guards run before scoring; see moderation/guards.py) ---
        # Minimum seconds between rendering the form and posting it; faster is a bot.
        "MIN_FILL_SECONDS": _float("MIN_FILL_SECONDS", 3.0),
        # What a too-fast (or unstamped) submission gets: "hold" or "reject".
        "FILL_TIME_ACTION": _choice("FILL_TIME_ACTION", HOLD, (HOLD, REJECT)),
        # Oldest form stamp accepted (seconds); older forms count as unstamped.
        "FORM_STAMP_MAX_AGE": _int("FORM_STAMP_MAX_AGE", 24 * 3600, 1),
        # Rate limits (Flask-Limiter syntax, on the Redis storage backend).
        "RATE_LIMIT_PER_IP": _rate_limit("RATE_LIMIT_PER_IP", "5 per minute;60 per day"),
        "RATE_LIMIT_PER_ARTICLE": _rate_limit("RATE_LIMIT_PER_ARTICLE", "60 per minute"),
        "RATE_LIMIT_CHALLENGES": _rate_limit("RATE_LIMIT_CHALLENGES", "30 per minute"),
        # Failed moderator logins per client (only a wrong name or password counts), so
        # passwords cannot be guessed at speed; per client, so nobody can lock a
        # moderator out by failing on their name.
        "RATE_LIMIT_LOGIN_FAILURES": _rate_limit(
            "RATE_LIMIT_LOGIN_FAILURES", "5 per minute;30 per hour"
        ),
        # Flask-Limiter's counting strategy. The sliding-window counter weighs the last
        # window's count, so a client gets no 2x burst across a window boundary, at two
        # counters per limit (the "moving-window" log keeps one entry per hit: slow).
        "RATELIMIT_STRATEGY": _choice(
            "RATE_LIMIT_STRATEGY", "sliding-window-counter",
            ("sliding-window-counter", "fixed-window", "moving-window"),
        ),
        # X-RateLimit-* headers on every limited response. Off by default: Flask-Limiter
        # reads the window back from Redis for them, one more round trip per POST
        # (Retry-After on a 429 does not depend on this).
        "RATELIMIT_HEADERS_ENABLED": _flag("RATE_LIMIT_HEADERS"),
        # Same normalized text again within this many seconds is a repeat post.
        "REPEAT_WINDOW_SECONDS": _int("REPEAT_WINDOW_SECONDS", 3600),
        # Operator-editable banned/suspect word lists (re-read when the file changes).
        "WORD_LIST_PATH": os.environ.get(
            "WORD_LIST_PATH", str(PROJECT_ROOT / "moderation" / "lists" / "words.txt")
        ),
        # More links than this in a comment holds it for review.
        "MAX_LINKS": _int("MAX_LINKS", 2),
        # CAPTCHA policy: "always", "remember" (signed cookie skips it for a while) or
        # "adaptive" (score first; ask only when the comment is in the unsure band).
        "CHALLENGE_POLICY": _choice("CHALLENGE_POLICY", ALWAYS, POLICIES),
        "REMEMBER_SECONDS": _int("REMEMBER_SECONDS", 24 * 3600, 1),
        "REMEMBER_COMMENTS": _int("REMEMBER_COMMENTS", 5),
        # Security headers: who may frame our pages (CSP frame-ancestors).
        "FRAME_ANCESTORS": os.environ.get("FRAME_ANCESTORS", "'none'"),
        # Retention in days for comments never published (0 = keep forever).
        "RETENTION_REJECTED_DAYS": _int("RETENTION_REJECTED_DAYS", 30),
        "RETENTION_HELD_DAYS": _int("RETENTION_HELD_DAYS", 0),
        # The decision log (training data, moderators' history) holds comment texts too.
        "RETENTION_DECISIONS_DAYS": _int("RETENTION_DECISIONS_DAYS", 0),
    }
    _check_ranges(settings)
    return settings
