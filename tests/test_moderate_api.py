"""The moderation JSON API: bearer tokens, list, claim, release, decide, history, undo."""

from __future__ import annotations

import pytest
from modhelpers import PASSWORD, held, reuse_password_hashes, snapshot_unstamped

from moderation import comments, keys
from moderation.users import UserStore

API = "/api/v1/moderation"


@pytest.fixture
def tokens(app, redis_client, monkeypatch):
    reuse_password_hashes(monkeypatch)
    store = UserStore(redis_client)
    found = {}
    for name, role in (("alice", "moderator"), ("bob", "moderator"), ("olga", "operator")):
        store.create(name, PASSWORD, role)
        found[name] = {"Authorization": f"Bearer {store.new_token(name)}"}
    return found


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/queue"),
        ("get", "/stats"),
        ("post", "/claims"),
        ("post", "/releases"),
        ("post", "/decisions"),
        ("get", "/decisions"),
        ("get", "/items/x"),
        ("get", "/items/x/history"),
        ("post", "/items/x/decision"),
        ("post", "/items/x/undo"),
    ],
)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic YWxpY2U6eA=="},
        {"Authorization": "Bearer "},
    ],
)
def test_no_or_bad_token_is_401(client, tokens, method, path, headers):
    response = getattr(client, method)(API + path, headers=headers, json={})
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_session_cookie_is_not_enough(client, tokens, redis_client):
    from modhelpers import log_in

    log_in(client, "alice")
    assert client.get(API + "/queue").status_code == 401


def test_a_token_only_counts_in_the_authorization_header(client, tokens):
    # A token in a URL would land in the access log, proxies' logs and browser history;
    # a form field would make the API a target for cross-site forms.
    token = tokens["alice"]["Authorization"].split()[1]
    for query in ("access_token", "token", "bearer"):
        assert client.get(f"{API}/stats?{query}={token}").status_code == 401
    assert client.post(f"{API}/claims", data={"access_token": token}).status_code == 401
    answer = client.get(f"{API}/stats", headers={**tokens["alice"], "Origin": "https://evil.example"})
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store"
    assert not [h for h in answer.headers.keys() if h.lower().startswith("access-control-")]


def test_list_sorted_filtered_paginated(client, tokens, redis_client, article_slug):
    low = held(redis_client, "low risk words", score=0.2, article=article_slug, now=100)
    high = held(redis_client, "high risk words", score=0.9, article=article_slug, now=200)
    held(redis_client, "Elsewhere", score=0.5, article="other")

    body = client.get(API + "/queue", headers=tokens["alice"]).get_json()
    assert [i["score"] for i in body["items"]] == [0.9, 0.5, 0.2]
    assert body["depth"] == 3 and body["oldest_created"] == 100
    body = client.get(
        API + f"/queue?article={article_slug}&sort=age", headers=tokens["alice"]
    ).get_json()
    assert [i["id"] for i in body["items"]] == [low.id, high.id]
    body = client.get(
        API + "/queue?min_score=0.3&per_page=1&page=2", headers=tokens["alice"]
    ).get_json()
    assert (
        body["total"] == 2 and body["pages"] == 2 and [i["score"] for i in body["items"]] == [0.5]
    )
    assert body["items"][0]["explanation"] == [{"feature": "cheap", "kind": "term", "weight": 1.2}]


def test_list_grouped(client, tokens, redis_client):
    held(redis_client, "Visit my SITE now")
    held(redis_client, "visit my site NOW!!")
    body = client.get(API + "/queue?grouped=1", headers=tokens["alice"]).get_json()
    assert body["total"] == 1 and body["groups"][0]["count"] == 2


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("sort=newest", "sort"),
        ("min_score=abc", "min_score"),
        ("max_score=2", "max_score"),
        ("min_score=nan", "min_score"),
        ("min_score=0.8&max_score=0.2", "min_score"),
        ("article=no-such-article", "article"),
        ("per_page=0", "per_page"),
        ("per_page=x", "per_page"),
        ("per_page=+5", "per_page"),
        ("per_page=%D9%A3", "per_page"),  # an Arabic-Indic 3, which int() reads as 3
        ("page=0", "page"),
        ("page=-1", "page"),
        ("page=10001", "page"),
        ("page=" + "9" * 5000, "page"),  # more digits than int() converts
        ("page=%C2%B2", "page"),  # "²": str.isdigit() says yes, int() says no
        ("page=1.5", "page"),
        ("page=%201", "page"),
        ("grouped=maybe", "grouped"),
        ("grouped=yes", "grouped"),
        ("grouped=TRUE", "grouped"),
        ("min_score=0.2_5", "min_score"),  # float() reads it as 0.25
        ("max_score=%D9%A1", "max_score"),  # an Arabic-Indic 1
    ],
)
def test_bad_list_parameters_are_400(client, tokens, query, field):
    response = client.get(API + "/queue?" + query, headers=tokens["alice"])
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert (error["code"], error["field"]) == ("invalid_field", field)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("page=0", "page must be a whole number from 1 to 10000."),
        ("grouped=maybe", "grouped must be 1, 0, true or false."),
    ],
)
def test_a_refused_list_parameter_says_what_is_allowed(client, tokens, query, message):
    response = client.get(API + "/queue?" + query, headers=tokens["alice"])
    assert response.get_json()["error"]["message"] == message


@pytest.mark.parametrize(
    ("query", "page", "per_page", "grouped"),
    [
        ("", 1, 100, False),  # the documented defaults: MODERATE_PER_PAGE, one by one
        ("page=&per_page=&grouped=", 1, 100, False),  # empty form fields mean the default
        ("page=10000&per_page=1000", 10000, 1000, False),
        ("page=007&per_page=1", 7, 1, False),
        ("grouped=true", 1, 100, True),
        ("grouped=1", 1, 100, True),
        ("grouped=false", 1, 100, False),
        ("grouped=0", 1, 100, False),
        ("min_score=1e-05&max_score=.5", 1, 100, False),
    ],
)
def test_good_list_parameters_are_taken_as_given(
    client, tokens, redis_client, query, page, per_page, grouped
):
    held(redis_client, "Visit my SITE now", score=0.3)
    response = client.get(API + "/queue?" + query, headers=tokens["alice"])
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["page"], body["per_page"], "groups" in body) == (page, per_page, grouped)


def test_claim_release_and_conflicts(client, tokens, redis_client):
    first = held(redis_client, "one", score=0.9)
    second = held(redis_client, "two", score=0.1)
    response = client.post(API + "/claims", json={"count": 1}, headers=tokens["alice"])
    assert response.status_code == 200 and response.get_json()["claimed"] == [first.id]

    before = snapshot_unstamped(redis_client)
    response = client.post(
        API + f"/items/{first.id}/decision", json={"action": "approve"}, headers=tokens["bob"]
    )
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["code"] == "claimed" and "alice" in error["message"]
    assert error["details"][0]["who"] == "alice" and error["details"][0]["lease_left"] > 500
    response = client.post(
        API + "/claims", json={"ids": [first.id, second.id]}, headers=tokens["bob"]
    )
    assert response.status_code == 409
    response = client.post(API + "/releases", json={"ids": [first.id]}, headers=tokens["bob"])
    assert response.status_code == 409
    assert snapshot_unstamped(redis_client) == before

    response = client.post(API + "/releases", json={"ids": [first.id]}, headers=tokens["alice"])
    assert response.status_code == 200
    response = client.post(API + "/claims", json={"ids": [first.id]}, headers=tokens["bob"])
    assert response.status_code == 200 and response.get_json()["claimed"] == [first.id]


def test_decide_one_publishes_and_shows_in_history(client, tokens, redis_client, article_slug):
    comment = held(redis_client, "A good point", article=article_slug)
    response = client.post(
        API + f"/items/{comment.id}/decision", json={"action": "approve"}, headers=tokens["alice"]
    )
    assert response.status_code == 200
    assert redis_client.zscore(keys.article_published(article_slug), comment.id) is not None
    public = client.get(f"/api/v1/articles/{article_slug}/comments").get_json()
    assert [c["body"] for c in public["comments"]] == ["A good point"]

    steps = client.get(API + f"/items/{comment.id}/history", headers=tokens["bob"]).get_json()[
        "history"
    ]
    assert [(s["actor"], s["action"], s["from"], s["to"]) for s in steps] == [
        ("alice", "approve", "held", "published")
    ]
    item = client.get(API + f"/items/{comment.id}", headers=tokens["bob"]).get_json()
    assert item["status"] == "published" and item["decision"]["by"] == "alice"
    [decision] = client.get(API + "/decisions", headers=tokens["bob"]).get_json()["decisions"]
    assert decision["comment_id"] == comment.id and decision["label"] == "ham"

    again = client.post(
        API + f"/items/{comment.id}/decision", json={"action": "spam"}, headers=tokens["bob"]
    )
    assert again.status_code == 409
    assert again.get_json()["error"]["code"] == "already_decided"
    assert again.get_json()["error"]["details"][0]["who"] == "alice"


def test_decide_many_rejects_a_group(client, tokens, redis_client):
    group = [held(redis_client, "Cheap pills at example dot com") for _ in range(3)]
    ids = [c.id for c in group]
    response = client.post(
        API + "/decisions",
        json={"ids": ids, "action": "reject", "reason": "advertising"},
        headers=tokens["alice"],
    )
    assert response.status_code == 200 and len(response.get_json()["decision_entries"]) == 3
    assert all(comments.get(redis_client, i).status == "rejected" for i in ids)
    assert redis_client.zcard(keys.REVIEW_QUEUE) == 0
    assert {f["reason"] for _, f in redis_client.xrange(keys.DECISIONS)} == {"advertising"}


@pytest.mark.parametrize(
    ("payload", "code", "field"),
    [
        ({"action": "delete"}, "unknown_action", "action"),
        ({"action": "reject"}, "missing_field", "reason"),
        ({"action": "reject", "reason": "i-dont-like-it"}, "unknown_reason", "reason"),
        ({"action": "approve", "reason": "advertising"}, "unexpected_reason", "reason"),
        ({"action": 3}, "invalid_field", "action"),
        ({}, "missing_field", "action"),
    ],
)
def test_bad_decisions_are_400_and_write_nothing(
    client, tokens, redis_client, payload, code, field
):
    comment = held(redis_client)
    before = snapshot_unstamped(redis_client)
    response = client.post(
        API + f"/items/{comment.id}/decision", json=payload, headers=tokens["alice"]
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == code
    assert response.get_json()["error"]["field"] == field
    assert snapshot_unstamped(redis_client) == before


@pytest.mark.parametrize(
    ("path", "kwargs"),
    [
        ("/decisions", {"json": {"ids": "abc", "action": "approve"}}),
        ("/decisions", {"json": {"ids": [], "action": "approve"}}),
        ("/decisions", {"json": {"ids": [1, 2], "action": "approve"}}),
        ("/decisions", {"data": "{broken", "content_type": "application/json"}),
        ("/decisions", {"json": ["a list"]}),
        ("/claims", {"json": {"count": 0}}),
        ("/claims", {"json": {"count": "5"}}),
        ("/claims", {"json": {"count": True}}),
        ("/claims", {"json": {}}),
        ("/claims", {"json": {"count": 1, "ids": ["a"]}}),
        ("/releases", {"json": {"ids": None}}),
        ("/claims", {"data": "[" * 30_000, "content_type": "application/json"}),
        ("/decisions", {"data": '{"ids": ["\\ud800"], "action": "approve"}',
                        "content_type": "application/json"}),
        ("/claims", {"data": '{"ids": ["\\udfff"]}', "content_type": "application/json"}),
        ("/releases", {"data": '{"ids": ["a\\ud800b"]}', "content_type": "application/json"}),
    ],
)
def test_malformed_bodies_are_400(client, tokens, redis_client, path, kwargs):
    held(redis_client)
    before = snapshot_unstamped(redis_client)
    response = client.post(API + path, headers=tokens["alice"], **kwargs)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert set(response.get_json()["error"]) >= {"code", "message", "field"}
    assert snapshot_unstamped(redis_client) == before


@pytest.mark.parametrize("path", ["/decisions", "/claims", "/releases"])
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_a_body_not_sent_as_json_is_415_like_the_public_api(
    client, tokens, redis_client, path, content_type
):
    held(redis_client)
    before = snapshot_unstamped(redis_client)
    response = client.post(API + path, headers=tokens["alice"],
                           data='{"count": 1}', content_type=content_type)
    assert response.status_code == 415
    assert response.get_json()["error"]["code"] == "unsupported_media_type"
    assert "Content-Type: application/json" in response.get_json()["error"]["message"]
    assert snapshot_unstamped(redis_client) == before


@pytest.mark.parametrize(
    "before", ["0-0", "0", "abc", "1-", "\u0663-\u0663", "18446744073709551616-0", "1-2-3"]
)
def test_a_decision_cursor_redis_cannot_use_is_400_not_503(client, tokens, before):
    response = client.get(API + "/decisions", query_string={"before": before},
                          headers=tokens["alice"])
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == "before"


@pytest.mark.parametrize(
    "count", ["0", "-1", "501", "99999999999999999999", "9" * 5000, "x", "1.0", "%C2%B2", "+5"]
)
def test_a_decision_count_outside_1_to_500_is_400_not_clamped(client, tokens, count):
    response = client.get(API + "/decisions?count=" + count, headers=tokens["alice"])
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["field"] == "count"
    assert error["message"] == "count must be a whole number from 1 to 500."


def test_a_decision_count_gives_at_most_that_many_and_empty_means_the_default(
    client, tokens, redis_client
):
    for comment in [held(redis_client, f"comment {n}") for n in range(3)]:
        client.post(API + f"/items/{comment.id}/decision", json={"action": "approve"},
                    headers=tokens["alice"])

    def listed(query: str) -> int:
        answer = client.get(API + "/decisions" + query, headers=tokens["alice"])
        assert answer.status_code == 200, query
        return len(answer.get_json()["decisions"])

    assert (listed(""), listed("?count="), listed("?count=2"), listed("?count=500")) == (3, 3, 2, 3)


def test_decision_cursors_page_back_in_time(client, tokens, redis_client):
    first, second = held(redis_client, "one"), held(redis_client, "two")
    for comment in (first, second):
        client.post(API + f"/items/{comment.id}/decision", json={"action": "approve"},
                    headers=tokens["alice"])
    newest = client.get(API + "/decisions", headers=tokens["alice"]).get_json()["decisions"]
    assert [d["comment_id"] for d in newest] == [second.id, first.id]

    def page_before(cursor: str) -> list[str]:
        answer = client.get(API + "/decisions", query_string={"before": cursor},
                            headers=tokens["alice"])
        assert answer.status_code == 200, cursor
        return [d["comment_id"] for d in answer.get_json()["decisions"]]

    assert page_before(newest[0]["entry_id"]) == [first.id]
    assert page_before(newest[1]["entry_id"]) == []
    assert page_before(str(2**64 - 1)) == [second.id, first.id]  # the largest id Redis takes


def test_unknown_item_is_404(client, tokens, redis_client):
    for method, path, payload in (
        ("post", "/items/nope/decision", {"action": "approve"}),
        ("get", "/items/nope", None),
        ("get", "/items/nope/history", None),
        ("post", "/claims", {"ids": ["nope"]}),
        ("post", "/items/nope/undo", None),
    ):
        headers = tokens["olga"]
        response = getattr(client, method)(API + path, json=payload, headers=headers)
        assert response.status_code == 404, (path, response.get_data(as_text=True))
    assert redis_client.keys("mod:comment*") == []


def test_undo_needs_an_operator(client, tokens, redis_client):
    comment = held(redis_client, score=0.7)
    client.post(
        API + f"/items/{comment.id}/decision", json={"action": "spam"}, headers=tokens["alice"]
    )
    before = snapshot_unstamped(redis_client)
    response = client.post(API + f"/items/{comment.id}/undo", headers=tokens["alice"])
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "forbidden"
    assert snapshot_unstamped(redis_client) == before

    response = client.post(API + f"/items/{comment.id}/undo", headers=tokens["olga"])
    assert response.status_code == 200
    assert redis_client.zscore(keys.REVIEW_QUEUE, comment.id) == 0.7
    assert redis_client.xlen(keys.DECISIONS) == 0
    again = client.post(API + f"/items/{comment.id}/undo", headers=tokens["olga"])
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "not_decided"


def test_stats(client, tokens, redis_client):
    held(redis_client, now=1000.0)
    body = client.get(API + "/stats", headers=tokens["alice"]).get_json()
    assert (
        body["depth"] == 1 and body["oldest_created"] == 1000.0 and body["oldest_age_seconds"] > 0
    )
