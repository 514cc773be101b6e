"""Redis failing in the middle of a submission: the answer tells the truth about what
was stored, and nothing is half-written.

The failure is real, not mocked: the app talks to the session's redis-server as an
ACL user who may not touch some keys, so Redis itself refuses the command that
comes after the comment's own writes (NOPERM), as a dropped connection would.
"""

from __future__ import annotations

import pytest

from moderation import keys
from tests.conftest import app_config
from tests.test_policies import PUBLISH_ALL, api_post, text

USER, PASSWORD = "limited-writer", "limited-writer-password"


@pytest.fixture
def limited_url(redis_url, redis_client):
    """A URL of the test Redis for an ACL user allowed only keys matching ``patterns``."""
    made = []

    def factory(*patterns: str) -> str:
        redis_client.acl_setuser(USER, enabled=True, reset_keys=True, passwords=[f"+{PASSWORD}"],
                                 keys=list(patterns), commands=["+@all"])
        made.append(USER)
        return redis_url.replace("redis://", f"redis://{USER}:{PASSWORD}@")

    yield factory
    for name in made:
        redis_client.acl_deluser(name)


def stored_ids(redis_client) -> list[str]:
    return redis_client.zrange(keys.ALL_COMMENTS, 0, -1)


def test_a_remember_pass_is_stored_with_the_comment_or_neither_is(
        limited_url, redis_url, models_dir, redis_client, article_slug):
    """The pass a solved CAPTCHA earns (CHALLENGE_POLICY=remember) was written after the
    comment, in a second round trip: when that failed the comment was stored, yet the
    answer was 503 "nothing was saved", and a reader who sent it again was refused
    as a repeat post."""
    from moderation import create_app
    from tests.conftest import CAPTCHA_TEXT

    url = limited_url("mod:[^p]*")  # everything but mod:pass:* (the passes)
    app = create_app(app_config(url, models_dir, CHALLENGE_POLICY="remember", **PUBLISH_ALL),
                     challenge_text=lambda length: CAPTCHA_TEXT)
    answer = api_post(app.test_client(), article_slug, text(0))
    if answer.status_code == 503:
        assert "nothing was saved" in answer.get_json()["error"]["message"]
        assert stored_ids(redis_client) == []
        assert redis_client.keys(keys.repeat_by_article(article_slug, "*")) == []
    else:
        assert answer.status_code == 201
        assert stored_ids(redis_client) == [answer.get_json()["id"]]


def test_a_comment_stored_before_redis_failed_is_not_called_unsaved(
        app, limited_url, redis_client, reader):
    """The form re-renders a rejected comment with a fresh CAPTCHA and the listing: when
    Redis failed there, the 503 said "nothing was saved" of a comment stored as rejected."""
    import redis

    page = reader.open_article().get_data(as_text=True)
    fields = reader.form_fields(page)
    # Only the app's own client is limited (no mod:article:* keys, so no listing); the
    # CAPTCHA check and the store itself go through as before.
    app.extensions["redis"] = redis.Redis.from_url(limited_url("mod:[^a]*"),
                                                   decode_responses=True)
    answer = reader.client.post(f"/articles/{reader.slug}/comments", data={
        **fields, "body": "A comment with the honeypot filled in.", "website": "http://x",
        "captcha_answer": "K7PXWM", "action": "save"})
    assert answer.status_code == 503
    (stored,) = stored_ids(redis_client)
    assert redis_client.hget(keys.comment(stored), "status") == "rejected"
    html = answer.get_data(as_text=True)
    assert "nothing was saved" not in html
    assert "was not published" in html and "was saved" in html
    assert "Retry-After" not in answer.headers  # sending it again would only repeat it
