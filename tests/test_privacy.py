"""Privacy: IPs only as keyed hashes, nothing personal in logs, retention limits."""

from __future__ import annotations

import logging
import time

from moderation import comments, keys
from moderation.comments import hash_ip
from moderation.retention import DAY, purge
from tests.conftest import CAPTCHA_TEXT, Reader

IP = "203.0.113.45"
AUTHOR = "Zebulon Quixote"
BODY = "Marmalade ptarmigan xylophone: a remark nobody else would write."
AGENT = "PrivacyProbe/9.9 (unique-agent-string)"


def test_nothing_personal_in_logs(make_app, article_slug, redis_client, caplog):
    """Capture every log record of several submissions; none names the person or the text."""
    app = make_app(RATE_LIMIT_PER_IP="3 per minute", PUBLISH_BELOW=0.0, REJECT_AT=1.0)
    client = app.test_client()
    environ = {"REMOTE_ADDR": IP, "HTTP_USER_AGENT": AGENT}
    with caplog.at_level(logging.DEBUG):
        # the form: a held comment, then a wrong CAPTCHA
        page = client.get(f"/articles/{article_slug}", environ_base=environ).get_data(as_text=True)
        data = {**Reader.form_fields(page), "author": AUTHOR, "body": BODY,
                "captcha_answer": CAPTCHA_TEXT, "action": "save"}
        assert client.post(f"/articles/{article_slug}/comments", data=data,
                           environ_base=environ).status_code == 303
        data["captcha_answer"] = "WRONG9"
        client.post(f"/articles/{article_slug}/comments", data=data, environ_base=environ)
        # the API: a honeypot reject, then rate limited
        for extra in ({"website": "x"}, {}):
            challenge = client.post("/api/v1/challenges", environ_base=environ).get_json()
            client.post(f"/api/v1/articles/{article_slug}/comments", environ_base=environ,
                        json={"body": BODY + " again", "author": AUTHOR, **extra,
                              "challenge_id": challenge["id"], "captcha_answer": CAPTCHA_TEXT})
    text = caplog.text
    assert "comment " in text and "guard honeypot" in text and "rate limited" in text
    ip_hash = hash_ip(IP, app.config["IP_HASH_KEY"])
    for secret in (IP, BODY, "Marmalade", AUTHOR, AGENT, CAPTCHA_TEXT, "WRONG9", ip_hash):
        assert secret not in text, f"{secret!r} leaked into the logs"


def test_ip_is_stored_only_as_a_keyed_hash(make_app, article_slug, redis_client):
    app = make_app(PUBLISH_BELOW=1.0, REJECT_AT=1.0)
    client = app.test_client()
    challenge = client.post("/api/v1/challenges", environ_base={"REMOTE_ADDR": IP}).get_json()
    client.post(f"/api/v1/articles/{article_slug}/comments", environ_base={"REMOTE_ADDR": IP},
                json={"body": BODY, "challenge_id": challenge["id"],
                      "captcha_answer": CAPTCHA_TEXT})
    [comment_id] = redis_client.zrange(keys.ALL_COMMENTS, 0, -1)
    stored = comments.get(redis_client, comment_id)
    assert stored.ip_hash == hash_ip(IP, "test-ip-key") != hash_ip(IP, "another-key")
    for key in redis_client.keys("*"):  # no key name and no string/hash value has the IP
        assert IP not in key
        kind = redis_client.type(key)
        if kind == "string":
            assert IP not in (redis_client.get(key) or "")
        elif kind == "hash":
            assert IP not in " ".join(redis_client.hvals(key))


def _old_comment(redis_client, status: str, age_days: float, now: float, body="x"):
    verdict = {"published": "publish", "held": "hold", "rejected": "reject"}[status]
    comment = comments.make_comment(
        article="a", author="", body=body, user_agent="", ip_hash="h", score=0.5,
        model_version="m", verdict=verdict, reason="r", explanation=[],
        now=now - age_days * DAY,
    )
    comments.save(redis_client, comment)
    redis_client.rpush(keys.history(comment.id), "{}")
    return comment.id


def _everywhere(redis_client, comment_id) -> list[str]:
    found = []
    if redis_client.exists(keys.comment(comment_id)):
        found.append("hash")
    if redis_client.exists(keys.history(comment_id)):
        found.append("history")
    for index in (keys.ALL_COMMENTS, keys.REJECTED, keys.REVIEW_QUEUE):
        if redis_client.zscore(index, comment_id) is not None:
            found.append(index)
    return found


def test_purge_deletes_old_rejected_and_held_from_every_index(redis_client):
    now = time.time()
    old_rejected = _old_comment(redis_client, "rejected", 40, now)
    new_rejected = _old_comment(redis_client, "rejected", 10, now)
    old_held = _old_comment(redis_client, "held", 100, now)
    new_held = _old_comment(redis_client, "held", 5, now)
    old_published = _old_comment(redis_client, "published", 400, now)

    report = purge(redis_client, rejected_days=30, held_days=60, now=now, batch=2)
    assert (report.rejected, report.held) == (1, 1)
    assert _everywhere(redis_client, old_rejected) == []
    assert _everywhere(redis_client, old_held) == []
    assert "hash" in _everywhere(redis_client, new_rejected)
    assert keys.REVIEW_QUEUE in _everywhere(redis_client, new_held)
    assert redis_client.zscore(keys.article_published("a"), old_published) is not None
    assert "hash" in _everywhere(redis_client, old_published)


def test_held_are_kept_forever_by_default(make_app, redis_client):
    app = make_app()
    assert app.config["RETENTION_HELD_DAYS"] == 0
    now = time.time()
    old_held = _old_comment(redis_client, "held", 1000, now)
    old_rejected = _old_comment(redis_client, "rejected", 1000, now)
    result = app.test_cli_runner().invoke(args=["purge"])
    assert result.exit_code == 0, result.output
    assert "purged 1 rejected and 0 held comments" in result.output
    assert "hash" in _everywhere(redis_client, old_held)
    assert _everywhere(redis_client, old_rejected) == []


def test_purge_cli_overrides(make_app, redis_client):
    app = make_app()
    now = time.time()
    old_held = _old_comment(redis_client, "held", 10, now)
    result = app.test_cli_runner().invoke(args=["purge", "--held-days", "7",
                                                "--rejected-days", "0"])
    assert "purged 0 rejected and 1 held comments" in result.output
    assert _everywhere(redis_client, old_held) == []


def test_purge_skips_a_comment_whose_status_changed(redis_client):
    """The Lua check: a held comment published by a moderator meanwhile is not deleted."""
    now = time.time()
    comment_id = _old_comment(redis_client, "held", 100, now)
    redis_client.hset(keys.comment(comment_id), "status", "published")
    assert purge(redis_client, rejected_days=1, held_days=1, now=now).held == 0
    assert redis_client.exists(keys.comment(comment_id))


def test_decision_log_entries_past_their_retention_are_purged(make_app, redis_client):
    # Rejected comments went after RETENTION_REJECTED_DAYS, but the decision log kept
    # the text of every one a moderator had decided, for ever.
    now = time.time()
    for age_days in (60, 50, 40, 35, 5):  # stream ids are the times, oldest first
        redis_client.xadd(keys.DECISIONS, {"text": f"{age_days} days old", "label": "spam"},
                          id=f"{int((now - age_days * DAY) * 1000)}-0")
    app = make_app()
    assert app.config["RETENTION_DECISIONS_DAYS"] == 0  # kept unless the operator says
    kept = app.test_cli_runner().invoke(args=["purge"])
    assert kept.exit_code == 0 and redis_client.xlen(keys.DECISIONS) == 5

    assert purge(redis_client, rejected_days=0, held_days=0, decisions_days=45,
                 now=now, batch=1).decisions == 2  # in batches of one
    result = app.test_cli_runner().invoke(args=["purge", "--decisions-days", "30"])
    assert result.exit_code == 0, result.output
    assert "2 decision log entries" in result.output
    assert [f["text"] for _, f in redis_client.xrange(keys.DECISIONS)] == ["5 days old"]
