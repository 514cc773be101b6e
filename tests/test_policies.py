"""CHALLENGE_POLICY end to end: always, remember, adaptive; HTML form (no JS) and API."""

from __future__ import annotations

import re

import pytest

from moderation import keys
from moderation.policies import PASS_COOKIE
from tests.conftest import CAPTCHA_TEXT, Reader
from tests.test_guards import HAM, OTHER_HAM, WORDS, stored

PUBLISH_ALL = {"PUBLISH_BELOW": 1.0, "REJECT_AT": 1.0}
HOLD_ALL = {"PUBLISH_BELOW": 0.0, "REJECT_AT": 1.0}
REJECT_ALL = {"PUBLISH_BELOW": 0.0, "REJECT_AT": 0.0}


def text(n: int) -> str:
    return f"{HAM} {WORDS[n]}"


def open_form(client, slug) -> tuple[str, dict]:
    html = client.get(f"/articles/{slug}").get_data(as_text=True)
    fields = dict(re.findall(r'name="(csrf_token|challenge_id|form_token)" value="([^"]*)"', html))
    return html, fields


def has_captcha(html: str) -> bool:
    return 'name="captcha_answer"' in html and "captcha-image" in html


def save(client, slug, fields, body, answer=None):
    data = {**fields, "body": body, "action": "save"}
    if answer is not None:
        data["captcha_answer"] = answer
    return client.post(f"/articles/{slug}/comments", data=data)


def api_post(client, slug, body, *, with_captcha=True, answer=CAPTCHA_TEXT):
    payload = {"body": body}
    if with_captcha:
        payload["challenge_id"] = client.post("/api/v1/challenges").get_json()["id"]
        payload["captcha_answer"] = answer
    return client.post(f"/api/v1/articles/{slug}/comments", json=payload)


def pass_cookie(client):
    return client.get_cookie(PASS_COOKIE)


# ---------------------------------------------------------------------------
# always
# ---------------------------------------------------------------------------


def test_always_is_the_default_and_asks_every_time(make_app, article_slug, redis_client):
    app = make_app(**PUBLISH_ALL)
    assert app.config["CHALLENGE_POLICY"] == "always"
    client = app.test_client()
    html, fields = open_form(client, article_slug)
    assert has_captcha(html)
    assert save(client, article_slug, fields, text(0), CAPTCHA_TEXT).status_code == 303
    assert pass_cookie(client) is None
    html, fields = open_form(client, article_slug)
    assert has_captcha(html)
    assert save(client, article_slug, fields, text(1)).status_code == 400  # no answer
    response = api_post(client, article_slug, text(2), with_captcha=False)
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == "challenge_id"  # get one first
    assert len(stored(redis_client)) == 1


def test_unknown_policy_fails_at_startup(make_app):
    with pytest.raises(ValueError, match="CHALLENGE_POLICY"):
        make_app(CHALLENGE_POLICY="sometimes")


# ---------------------------------------------------------------------------
# remember
# ---------------------------------------------------------------------------


def test_remember_form_skips_the_captcha_for_n_comments(make_app, article_slug, redis_client):
    client = make_app(CHALLENGE_POLICY="remember", REMEMBER_COMMENTS=2, **PUBLISH_ALL).test_client()
    html, fields = open_form(client, article_slug)
    assert has_captcha(html)
    response = save(client, article_slug, fields, text(0), CAPTCHA_TEXT)
    assert response.status_code == 303
    cookie_header = response.headers["Set-Cookie"]
    assert cookie_header.startswith(f"{PASS_COOKIE}=") and "HttpOnly" in cookie_header
    assert "SameSite=Lax" in cookie_header and "Max-Age=" in cookie_header
    assert CAPTCHA_TEXT not in cookie_header

    for n in (1, 2):  # two comments on the pass, no CAPTCHA shown or answered
        html, fields = open_form(client, article_slug)
        assert not has_captcha(html) and "challenge_id" not in fields
        assert save(client, article_slug, fields, text(n)).status_code == 303

    html, fields = open_form(client, article_slug)  # pass used up
    assert has_captcha(html)
    refused = save(client, article_slug, fields, text(3))
    assert refused.status_code == 400
    assert text(3) in refused.get_data(as_text=True)
    assert [c.status for c in stored(redis_client)] == ["published"] * 3


def test_remember_api_uses_the_same_pass(make_app, article_slug, redis_client):
    client = make_app(CHALLENGE_POLICY="remember", REMEMBER_COMMENTS=1, **PUBLISH_ALL).test_client()
    assert api_post(client, article_slug, text(0)).status_code == 201
    assert pass_cookie(client) is not None
    assert api_post(client, article_slug, text(1), with_captcha=False).status_code == 201
    again = api_post(client, article_slug, text(2), with_captcha=False)
    assert again.status_code == 400  # the pass is spent: a challenge is needed again
    assert again.get_json()["error"]["field"] == "challenge_id"


def test_remember_pass_cannot_be_forged_or_replayed(make_app, article_slug, redis_client):
    app = make_app(CHALLENGE_POLICY="remember", REMEMBER_COMMENTS=1, **PUBLISH_ALL)
    client = app.test_client()
    assert api_post(client, article_slug, text(0)).status_code == 201
    value = pass_cookie(client).value
    assert api_post(client, article_slug, text(1), with_captcha=False).status_code == 201
    # Replaying the same cookie: its uses are counted server-side, so it is spent.
    client.set_cookie(PASS_COOKIE, value)
    assert api_post(client, article_slug, text(2), with_captcha=False).status_code == 400
    # A cookie signed with another key is worthless.
    other = make_app(CHALLENGE_POLICY="remember", SECRET_KEY="someone-else", **PUBLISH_ALL)
    forged = other.extensions["protections"].passes.issue()
    client.set_cookie(PASS_COOKIE, forged)
    assert api_post(client, article_slug, text(3), with_captcha=False).status_code == 400
    client.set_cookie(PASS_COOKIE, "garbage")
    assert api_post(client, article_slug, text(4), with_captcha=False).status_code == 400


def test_remember_pass_expires(make_app, article_slug, redis_client):
    client = make_app(CHALLENGE_POLICY="remember", REMEMBER_SECONDS=300,
                      **PUBLISH_ALL).test_client()
    api_post(client, article_slug, text(0))
    [key] = redis_client.keys(f"{keys.PREFIX}pass:*")
    assert 0 < redis_client.ttl(key) <= 300
    redis_client.delete(key)  # what the TTL does
    assert api_post(client, article_slug, text(1), with_captcha=False).status_code == 400


def test_remember_gives_no_pass_for_a_rejected_comment(make_app, article_slug, redis_client):
    client = make_app(CHALLENGE_POLICY="remember", **REJECT_ALL).test_client()
    assert api_post(client, article_slug, text(0)).status_code == 422
    assert pass_cookie(client) is None


# ---------------------------------------------------------------------------
# adaptive
# ---------------------------------------------------------------------------


def test_adaptive_form_clear_ham_publishes_without_captcha(make_app, article_slug, redis_client):
    client = make_app(CHALLENGE_POLICY="adaptive", **PUBLISH_ALL).test_client()
    html, fields = open_form(client, article_slug)
    assert not has_captcha(html) and "challenge_id" not in fields
    response = save(client, article_slug, fields, HAM)
    assert response.status_code == 303
    assert [c.status for c in stored(redis_client)] == ["published"]


def test_adaptive_form_clear_spam_is_rejected_without_captcha(make_app, article_slug,
                                                             redis_client):
    client = make_app(CHALLENGE_POLICY="adaptive", **REJECT_ALL).test_client()
    _, fields = open_form(client, article_slug)
    answer = save(client, article_slug, fields, HAM)
    assert answer.status_code == 422 and f">{HAM}</textarea>" in answer.get_data(as_text=True)
    assert [c.status for c in stored(redis_client)] == ["rejected"]


def test_adaptive_form_unsure_comes_back_with_text_and_captcha(make_app, article_slug,
                                                               redis_client):
    client = make_app(CHALLENGE_POLICY="adaptive", **HOLD_ALL).test_client()
    _, fields = open_form(client, article_slug)
    first = save(client, article_slug, fields, OTHER_HAM)
    html = first.get_data(as_text=True)
    assert first.status_code == 400
    assert has_captcha(html) and f">{OTHER_HAM}</textarea>" in html
    assert "please enter the characters shown in the image" in html
    assert "Your text has been kept." in html
    assert stored(redis_client) == []  # nothing stored until the CAPTCHA is solved

    fields = Reader.form_fields(html)
    wrong = save(client, article_slug, fields, OTHER_HAM, "WRONG1")
    assert wrong.status_code == 400 and has_captcha(wrong.get_data(as_text=True))
    fields = Reader.form_fields(wrong.get_data(as_text=True))
    done = save(client, article_slug, fields, OTHER_HAM, CAPTCHA_TEXT)
    assert done.status_code == 303
    assert [c.status for c in stored(redis_client)] == ["held"]


def test_adaptive_guard_hold_also_asks_for_captcha(make_app, article_slug, redis_client):
    client = make_app(CHALLENGE_POLICY="adaptive", **PUBLISH_ALL).test_client()
    response = api_post(client, article_slug, "Click here for the full report, friends.",
                        with_captcha=False)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "captcha_required"


def test_adaptive_api(make_app, article_slug, redis_client):
    client = make_app(CHALLENGE_POLICY="adaptive", **HOLD_ALL).test_client()
    response = api_post(client, article_slug, HAM, with_captcha=False)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "captcha_required" and error["field"] == "captcha_answer"
    assert "kept" not in error["message"]  # an API client keeps its own text
    assert stored(redis_client) == []
    assert api_post(client, article_slug, HAM).status_code == 202

    ham_client = make_app(CHALLENGE_POLICY="adaptive", **PUBLISH_ALL).test_client()
    assert api_post(ham_client, article_slug, OTHER_HAM, with_captcha=False).status_code == 201
