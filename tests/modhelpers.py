"""Helpers shared by the moderation tests: held comments and logged-in moderators.

Held comments are stored the way submission stores them (``comments.save``), so
queue tests need no CAPTCHA round-trip.
"""

from __future__ import annotations

import re

from moderation import comments, keys

PASSWORD = "correct horse battery"


def held(
    redis_client,
    body: str = "Buy cheap pills now",
    *,
    score: float = 0.5,
    article: str = "some-article",
    now: float | None = None,
    author: str = "Reader",
    reason: str = "score between the thresholds",
    explanation: list[dict] | None = None,
):
    """Store one held comment and return it."""
    comment = comments.make_comment(
        article=article,
        author=author,
        body=body,
        user_agent="test",
        ip_hash="iphash",
        score=score,
        model_version="v-test",
        verdict="hold",
        reason=reason,
        explanation=[{"feature": "cheap", "kind": "term", "weight": 1.2}]
        if explanation is None
        else explanation,
        now=now,
    )
    comments.save(redis_client, comment)
    return comment


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def log_in(client, name: str, password: str = PASSWORD):
    page = client.get("/login").get_data(as_text=True)
    return client.post(
        "/login", data={"name": name, "password": password, "csrf_token": csrf_token(page)}
    )


_HASHES: dict[str, str] = {}


def reuse_password_hashes(monkeypatch) -> None:
    """Compute each test password's real scrypt hash once per session (0.3 s each).

    The hash is werkzeug's real one, only memoized, so login still checks a real
    scrypt hash; tests of the account module itself do not use this.
    """
    from moderation import users

    real = users.generate_password_hash

    def memoized(password: str, *args, **kwargs) -> str:
        if password not in _HASHES:
            _HASHES[password] = real(password, *args, **kwargs)
        return _HASHES[password]

    monkeypatch.setattr(users, "generate_password_hash", memoized)


def snapshot(redis_client) -> dict:
    """Every key and its content, to prove a refused request wrote nothing."""
    state = {}
    for key in sorted(redis_client.keys("*")):
        kind = redis_client.type(key)
        if kind == "hash":
            state[key] = redis_client.hgetall(key)
        elif kind == "zset":
            state[key] = redis_client.zrange(key, 0, -1, withscores=True)
        elif kind == "list":
            state[key] = redis_client.lrange(key, 0, -1)
        elif kind == "stream":
            state[key] = redis_client.xrange(key)
        elif kind == "string":
            state[key] = (redis_client.get(key), redis_client.ttl(key) > 0)
        else:
            state[key] = redis_client.smembers(key)
    return state


def snapshot_unstamped(redis_client) -> dict:
    """:func:`snapshot`, but for when a token or session was last used: an
    authenticated request stamps that (at most once a minute), refused or not."""
    state = snapshot(redis_client)
    for key, value in state.items():
        if key.startswith((keys.token(""), keys.session(""))):
            state[key] = {k: v for k, v in value.items() if k not in ("last_used", "seen")}
    return state
