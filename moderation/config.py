"""Every setting of the service: its environment variable, its default, and why.

This is the only module that reads the environment. The app factory calls
:func:`from_environment` once; everything else reads ``app.config``.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _var_dir() -> Path:
    return Path(os.environ.get("MODERATION_VAR_DIR", PROJECT_ROOT / "var"))


def _persistent_secret(name: str) -> str:
    """A random secret kept under var/ so every worker and every restart shares it.

    Used only when the operator has not set one: never a hard-coded fallback.
    """
    path = _var_dir() / name
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


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return default if raw in (None, "") else int(raw)


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return default if raw in (None, "") else float(raw)


def _optional_float(name: str) -> float | None:
    raw = os.environ.get(name)
    return None if raw in (None, "") else float(raw)


def from_environment() -> dict[str, Any]:
    """Read every setting from the environment (documented in the README)."""
    var_dir = _var_dir()
    return {
        # Redis: unset means "start a private redis-server with its data under var/redis".
        "REDIS_URL": os.environ.get("REDIS_URL") or None,
        "VAR_DIR": str(var_dir),
        # Flask session/CSRF signing key and the key for hashing client IPs.
        "SECRET_KEY": os.environ.get("SECRET_KEY") or _persistent_secret("secret_key"),
        "IP_HASH_KEY": os.environ.get("IP_HASH_KEY") or _persistent_secret("ip_hash_key"),
        # Where trained models live (one folder per version).
        "MODELS_DIR": os.environ.get("MODELS_DIR", str(PROJECT_ROOT / "models")),
        # Optional overrides of the thresholds stored with the model.
        "PUBLISH_BELOW": _optional_float("PUBLISH_BELOW"),
        "REJECT_AT": _optional_float("REJECT_AT"),
        # CAPTCHA.
        "CAPTCHA_TTL_SECONDS": _int("CAPTCHA_TTL_SECONDS", 600),
        # Characters per challenge: a random length in [MIN, MAX] for each one.
        "CAPTCHA_LENGTH_MIN": _int("CAPTCHA_LENGTH_MIN", 5),
        "CAPTCHA_LENGTH_MAX": _int("CAPTCHA_LENGTH_MAX", 7),
        # Wrong answers a challenge survives before it is gone (then a new image).
        "CAPTCHA_MAX_ATTEMPTS": _int("CAPTCHA_MAX_ATTEMPTS", 3),
        # Image difficulty (see moderation/captcha_image.py and the README's
        # "CAPTCHA strength"): fonts (comma-separated TTF paths; empty = the ones
        # shipped in moderation/fonts), font size range in px, and how much
        # same-colour interference is drawn.
        "CAPTCHA_FONTS": [p for p in os.environ.get("CAPTCHA_FONTS", "").split(",") if p.strip()],
        "CAPTCHA_FONT_SIZE_MIN": _int("CAPTCHA_FONT_SIZE_MIN", 50),
        "CAPTCHA_FONT_SIZE_MAX": _int("CAPTCHA_FONT_SIZE_MAX", 62),
        "CAPTCHA_NOISE_LINES": _int("CAPTCHA_NOISE_LINES", 3),
        "CAPTCHA_NOISE_STROKES": _int("CAPTCHA_NOISE_STROKES", 5),
        "CAPTCHA_NOISE_DOTS": _int("CAPTCHA_NOISE_DOTS", 50),
        "CAPTCHA_WIDTH": _int("CAPTCHA_WIDTH", 240),
        "CAPTCHA_HEIGHT": _int("CAPTCHA_HEIGHT", 80),
        # Audio CAPTCHA: the espeak-ng voice library (built by `flask --app moderation
        # captcha build-voices`; empty = VAR_DIR/captcha-voices) and its white-noise level.
        "CAPTCHA_VOICES_DIR": os.environ.get("CAPTCHA_VOICES_DIR", ""),
        "CAPTCHA_AUDIO_NOISE": _int("CAPTCHA_AUDIO_NOISE", 24),
        # Input limits.
        "MAX_COMMENT_CHARS": _int("MAX_COMMENT_CHARS", 5000),
        "MAX_NAME_CHARS": _int("MAX_NAME_CHARS", 60),
        "MAX_CONTENT_LENGTH": _int("MAX_CONTENT_LENGTH", 64 * 1024),
        # Under gunicorn: seconds a request body may stop arriving before a 408 frees
        # the worker (below gunicorn's 30 s timeout, which kills it with a bare 500).
        "BODY_TIMEOUT_SECONDS": _float("BODY_TIMEOUT_SECONDS", 10.0),
        "COMMENTS_PER_PAGE": _int("COMMENTS_PER_PAGE", 20),
        # A folder of the site's own articles (.txt, the shipped article's format).
        "ARTICLES_DIR": os.environ.get("ARTICLES_DIR", ""),
        # Unset: INFO for the service, WARNING for `flask` CLI commands (see _configure_logging).
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", ""),
        # Bearer token a Prometheus scraper sends for GET /metrics; unset, only clients
        # on this machine (loopback) may read the metrics.
        "METRICS_TOKEN": os.environ.get("METRICS_TOKEN", ""),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": os.environ.get("SESSION_COOKIE_SECURE", "0") == "1",
        # How many reverse proxies in front of us may set X-Forwarded-For (0 = none).
        "TRUSTED_PROXIES": _int("TRUSTED_PROXIES", 0),
        "MODEL_RELOAD_SECONDS": _float("MODEL_RELOAD_SECONDS", 1.0),
        # Review queue: how long a moderator's claim on an item lasts before it returns.
        "LEASE_SECONDS": _float("LEASE_SECONDS", 600.0),
        # Groups of held comments per page of the moderator UI (and API default).
        "MODERATE_PER_PAGE": _int("MODERATE_PER_PAGE", 100),
        # --- Abuse defenses (guards run before scoring; see moderation/guards.py) ---
        # Minimum seconds between rendering the form and posting it; faster is a bot.
        "MIN_FILL_SECONDS": _float("MIN_FILL_SECONDS", 3.0),
        # What a too-fast (or unstamped) submission gets: "hold" or "reject".
        "FILL_TIME_ACTION": os.environ.get("FILL_TIME_ACTION", "hold"),
        # Oldest form stamp accepted (seconds); older forms count as unstamped.
        "FORM_STAMP_MAX_AGE": _int("FORM_STAMP_MAX_AGE", 24 * 3600),
        # Rate limits (Flask-Limiter syntax, on the Redis storage backend).
        "RATE_LIMIT_PER_IP": os.environ.get("RATE_LIMIT_PER_IP", "5 per minute;60 per day"),
        "RATE_LIMIT_PER_ARTICLE": os.environ.get("RATE_LIMIT_PER_ARTICLE", "60 per minute"),
        "RATE_LIMIT_CHALLENGES": os.environ.get("RATE_LIMIT_CHALLENGES", "30 per minute"),
        # Failed moderator logins per client (only a wrong name or password counts), so
        # passwords cannot be guessed at speed; per client, so nobody can lock a
        # moderator out by failing on their name.
        "RATE_LIMIT_LOGIN_FAILURES": os.environ.get(
            "RATE_LIMIT_LOGIN_FAILURES", "5 per minute;30 per hour"
        ),
        # Flask-Limiter's counting strategy. The sliding-window counter weighs the last
        # window's count, so a client gets no 2x burst across a window boundary, at two
        # counters per limit (the "moving-window" log keeps one entry per hit: slow).
        "RATELIMIT_STRATEGY": os.environ.get("RATE_LIMIT_STRATEGY", "sliding-window-counter"),
        # X-RateLimit-* headers on every limited response. Off by default: Flask-Limiter
        # reads the window back from Redis for them, one more round trip per POST
        # (Retry-After on a 429 does not depend on this).
        "RATELIMIT_HEADERS_ENABLED": os.environ.get("RATE_LIMIT_HEADERS", "0") == "1",
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
        "CHALLENGE_POLICY": os.environ.get("CHALLENGE_POLICY", "always"),
        "REMEMBER_SECONDS": _int("REMEMBER_SECONDS", 24 * 3600),
        "REMEMBER_COMMENTS": _int("REMEMBER_COMMENTS", 5),
        # Security headers: who may frame our pages (CSP frame-ancestors).
        "FRAME_ANCESTORS": os.environ.get("FRAME_ANCESTORS", "'none'"),
        # Retention in days for comments never published (0 = keep forever).
        "RETENTION_REJECTED_DAYS": _int("RETENTION_REJECTED_DAYS", 30),
        "RETENTION_HELD_DAYS": _int("RETENTION_HELD_DAYS", 0),
    }
