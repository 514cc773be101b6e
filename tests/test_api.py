"""The JSON API: challenges, posting (201/202/422/400) and listing comments."""

from __future__ import annotations

import json

import pytest

from moderation import comments, keys
from tests.conftest import CAPTCHA_TEXT
from tests.test_article_form import HAM, SPAM


def new_challenge(client) -> dict:
    response = client.post("/api/v1/challenges")
    assert response.status_code == 201
    return response.get_json()


def post(client, slug, body, answer=CAPTCHA_TEXT, **extra):
    challenge = new_challenge(client)
    payload = {"body": body, "challenge_id": challenge["id"], "captcha_answer": answer, **extra}
    return client.post(f"/api/v1/articles/{slug}/comments", json=payload)


def test_challenge_has_id_image_and_expiry_but_not_the_answer(client):
    challenge = new_challenge(client)
    assert set(challenge) == {"id", "image_url", "audio_url", "expires_at"}
    assert CAPTCHA_TEXT not in str(challenge)
    image = client.get(challenge["image_url"])
    assert image.status_code == 200 and image.mimetype == "image/png"
    assert image.data[:8] == b"\x89PNG\r\n\x1a\n"
    assert image.headers["Cache-Control"] == "no-store"


def test_challenge_image_of_unknown_id_is_404_json_for_api_clients(client):
    response = client.get("/captcha/nope.png")  # JSON whatever the client accepts
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "unknown_challenge"


def test_ham_is_created_and_listed(client, article_slug):
    response = post(client, article_slug, HAM, author="Ana")
    assert response.status_code == 201
    body = response.get_json()
    assert body["status"] == "published"
    assert body["message"] == "Thank you! Your comment has been published."
    listing = client.get(f"/api/v1/articles/{article_slug}/comments").get_json()
    assert listing["total"] == 1
    assert listing["comments"][0]["body"] == HAM
    assert listing["comments"][0]["author"] == "Ana"
    assert "ip_hash" not in listing["comments"][0]


def test_spam_is_held_202_or_rejected_422_with_reason(client, article_slug, redis_client):
    response = post(client, article_slug, SPAM)
    assert response.status_code in (202, 422)
    body = response.get_json()
    if response.status_code == 422:
        assert body["status"] == "rejected" and body["error"]["message"]
    else:
        assert body["status"] == "held"
    # Either way the comment is stored and findable.
    status = client.get(f"/api/v1/comments/{body['id']}").get_json()
    assert status["status"] == body["status"]
    assert "body" not in status


def test_held_comment_is_202_and_in_review_queue(make_app, article_slug, redis_client):
    client = make_app(PUBLISH_BELOW=0.0, REJECT_AT=1.0).test_client()
    response = post(client, article_slug, HAM)
    assert response.status_code == 202
    assert redis_client.zscore(keys.REVIEW_QUEUE, response.get_json()["id"]) is not None


def test_rejected_comment_is_422_with_reason_and_kept(make_app, article_slug, redis_client):
    client = make_app(PUBLISH_BELOW=0.0, REJECT_AT=0.0).test_client()
    response = post(client, article_slug, HAM)
    assert response.status_code == 422
    body = response.get_json()
    assert body["error"]["code"] == "rejected_as_spam" and body["error"]["message"]
    assert redis_client.zscore(keys.REJECTED, body["id"]) is not None
    assert comments.get(redis_client, body["id"]).reason


def test_answer_tells_the_sender_no_score_threshold_or_matched_word(
    make_app, article_slug, redis_client
):
    """The score, threshold and matched word would tell a spammer how far to reword."""
    client = make_app(PUBLISH_BELOW=0.0, REJECT_AT=0.0).test_client()
    rejected = post(client, article_slug, HAM).get_json()
    assert set(rejected) == {"id", "status", "error"}
    assert rejected["error"]["message"] == (
        "Your comment was not published: it looks like spam to our filter."
    )
    assert "threshold" in comments.get(redis_client, rejected["id"]).reason  # moderators'

    # "cialis" is on the shipped banned list; the guard's own reason names it.
    banned = post(client, article_slug, "Where can I buy Cialis cheaply?").get_json()
    assert banned["error"]["code"] == "banned_word"
    assert "cialis" in comments.get(redis_client, banned["id"]).reason.lower()
    assert "cialis" not in json.dumps(banned).lower()


def test_public_scores_setting_adds_score_version_and_reason(make_app, article_slug):
    client = make_app(PUBLIC_SCORES=True, PUBLISH_BELOW=0.0, REJECT_AT=1.0).test_client()
    body = post(client, article_slug, HAM).get_json()
    assert body["status"] == "held" and 0.0 <= body["score"] <= 1.0
    assert body["model_version"] and "threshold" in body["reason"]
    assert body["message"].startswith("Thank you! Your comment has been received")


def test_a_comment_without_a_challenge_is_told_to_get_one(client, article_slug, redis_client):
    response = client.post(f"/api/v1/articles/{article_slug}/comments", json={"body": HAM})
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert (error["code"], error["field"]) == ("missing_field", "challenge_id")
    assert "POST /api/v1/challenges" in error["message"]
    assert redis_client.zcard(keys.ALL_COMMENTS) == 0


def test_wrong_captcha_is_400_and_stores_nothing(client, article_slug, redis_client):
    response = post(client, article_slug, HAM, answer="WRONG1")
    assert response.status_code == 400
    assert response.get_json()["error"] == {
        "code": "captcha_failed",
        "message": response.get_json()["error"]["message"],
        "field": "captcha_answer",
        "details": {"attempts_left": 2},
    }
    assert redis_client.zcard(keys.ALL_COMMENTS) == 0


def test_a_wrong_answer_says_whether_the_same_challenge_may_be_tried_again(
    client, article_slug
):
    challenge = new_challenge(client)
    payload = {"body": HAM, "challenge_id": challenge["id"], "captcha_answer": "WRONG1"}
    path = f"/api/v1/articles/{article_slug}/comments"
    said = [client.post(path, json=payload).get_json()["error"] for _ in range(3)]
    assert [error["details"]["attempts_left"] for error in said] == [2, 1, 0]
    assert "tried 2 more times" in said[0]["message"]
    assert "tried 1 more time " in said[1]["message"]
    assert "a new image" in said[2]["message"]
    # Only the attempts said to be left are: the right answer is now refused too.
    payload["captcha_answer"] = CAPTCHA_TEXT
    gone = client.post(path, json=payload).get_json()["error"]
    assert (gone["code"], gone["details"]) == ("captcha_failed", {"attempts_left": 0})


def test_a_challenge_that_was_tried_and_failed_once_still_takes_the_right_answer(
    client, article_slug
):
    challenge = new_challenge(client)
    payload = {"body": HAM, "challenge_id": challenge["id"], "captcha_answer": "WRONG1"}
    path = f"/api/v1/articles/{article_slug}/comments"
    assert client.post(path, json=payload).get_json()["error"]["details"]["attempts_left"] == 2
    payload["captcha_answer"] = CAPTCHA_TEXT
    assert client.post(path, json=payload).status_code in (201, 202)


def test_reused_challenge_is_400(client, article_slug):
    challenge = new_challenge(client)
    payload = {"body": HAM, "challenge_id": challenge["id"], "captcha_answer": CAPTCHA_TEXT}
    assert client.post(f"/api/v1/articles/{article_slug}/comments", json=payload).status_code == 201
    again = client.post(f"/api/v1/articles/{article_slug}/comments", json=payload)
    assert again.status_code == 400


def test_expired_challenge_is_400(client, article_slug, redis_client):
    challenge = new_challenge(client)
    redis_client.delete(keys.captcha(challenge["id"]))
    payload = {"body": HAM, "challenge_id": challenge["id"], "captcha_answer": CAPTCHA_TEXT}
    response = client.post(f"/api/v1/articles/{article_slug}/comments", json=payload)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "captcha_failed"


def test_listing_paginates_newest_first(client, article_slug, redis_client):
    for number in range(3):
        comments.save(redis_client, comments.make_comment(
            article=article_slug, author="", body=f"n{number}", user_agent="", ip_hash="",
            score=0.0, model_version="m", verdict="publish", reason="", explanation=[],
            now=100.0 + number,
        ))
    page = client.get(f"/api/v1/articles/{article_slug}/comments?per_page=2&page=1").get_json()
    assert [c["body"] for c in page["comments"]] == ["n2", "n1"]
    assert page["pages"] == 2
    page2 = client.get(f"/api/v1/articles/{article_slug}/comments?per_page=2&page=2").get_json()
    assert [c["body"] for c in page2["comments"]] == ["n0"]


@pytest.mark.parametrize(
    ("kwargs", "status", "code", "field"),
    [
        ({"data": "{not json", "content_type": "application/json"}, 400, "invalid_json", None),
        ({"data": "body=hi", "content_type": "application/x-www-form-urlencoded"}, 415,
         "unsupported_media_type", None),
        ({"json": ["a", "list"]}, 400, "invalid_body", None),
        ({"json": {"challenge_id": "x", "captcha_answer": "y"}}, 400, "missing_field", "body"),
        ({"json": {"body": "", "challenge_id": "x"}}, 400, "empty_comment", "body"),
        ({"json": {"body": 42, "challenge_id": "x"}}, 400, "invalid_field", "body"),
        ({"json": {"body": "x" * 5001, "challenge_id": "x"}}, 400, "comment_too_long", "body"),
        ({"json": {"body": "hi", "author": "a" * 61}}, 400, "name_too_long", "author"),
        ({"json": {"body": "hi", "author": ["x"]}}, 400, "invalid_field", "author"),
        ({"json": {"body": "hi", "challenge_id": "unknown", "captcha_answer": "AAAAAA"}}, 400,
         "captcha_failed", "captcha_answer"),

        # Hostile JSON that once reached a 500 (helper fuzzing, stop 14):
        ({"data": "[" * 30_000, "content_type": "application/json"}, 400, "invalid_json", None),
        ({"data": '{"body": "hi", "challenge_id": "\\ud800"}',
          "content_type": "application/json"}, 400, "invalid_json", None),
        ({"data": "null", "content_type": "application/json"}, 400, "invalid_body", None),
        ({"data": b'{"body": "\xed\xa0\x80"}', "content_type": "application/json"}, 400,
         "invalid_json", None),  # a surrogate as raw bytes, which json.loads lets through
        ({"json": {"body": "\u200b\u2060\ufeff \u200d"}}, 400, "empty_comment", "body"),
        # 5,001 letters that NFC spells in two code points each: counted as typed.
        ({"json": {"body": "\u0958" * 5001}}, 400, "comment_too_long", "body"),
    ],
)
def test_bad_input_is_a_clear_4xx(client, article_slug, redis_client, kwargs, status, code, field):
    published_before = redis_client.zcard(keys.ALL_COMMENTS)
    response = client.post(f"/api/v1/articles/{article_slug}/comments", **kwargs)
    assert response.status_code == status
    error = response.get_json()["error"]
    assert error["code"] == code and error["field"] == field and error["message"]
    assert redis_client.zcard(keys.ALL_COMMENTS) == published_before


def test_a_limit_counts_the_letters_typed_not_their_normalized_spelling(client, article_slug):
    response = post(client, article_slug, "\u0958" * 5001)
    assert "Comment is 5001 characters long; the limit is 5000." in (
        response.get_json()["error"]["message"])
    typed = "\u0958" * 2600  # 5,200 code points once NFC has spelled them
    assert post(client, article_slug, typed).status_code in (201, 202, 422)


def test_a_number_too_long_to_read_is_named_as_such_not_as_broken_json(client, article_slug):
    response = client.post(f"/api/v1/articles/{article_slug}/comments",
                           data='{"body": ' + "9" * 5000 + "}", content_type="application/json")
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_json"
    assert "A number in the JSON has more digits than we read" in error["message"]


def test_an_invisible_name_is_stored_as_no_name(client, article_slug, redis_client):
    response = post(client, article_slug, HAM, author="\u202e\u200b\u2060")
    stored = comments.get(redis_client, response.get_json()["id"])
    assert stored.author == ""


def test_unknown_article_is_404_json(client):
    response = client.post("/api/v1/articles/nope/comments", json={"body": "hi"})
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "unknown_article"
    assert client.get("/api/v1/articles/nope/comments").status_code == 404


def test_body_over_max_content_length_is_json_413(client, article_slug):
    response = client.post(
        f"/api/v1/articles/{article_slug}/comments",
        data=b"{" + b" " * (70 * 1024) + b"}",
        content_type="application/json",
    )
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "request_entity_too_large"


def test_wrong_method_is_405_json(client, article_slug):
    response = client.delete(f"/api/v1/articles/{article_slug}/comments")
    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "method_not_allowed"


def test_unknown_comment_is_404(client):
    assert client.get("/api/v1/comments/doesnotexist").status_code == 404
