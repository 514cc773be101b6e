"""Guards before scoring: honeypot, fill time, rate limits, repeats, word lists, links.

Every guard is exercised through the HTML form and through the JSON API, against
the real Redis and the real model. ``MODEL_OFF`` sets thresholds that publish every
score below 1.0, so what a test sees is the guard's doing, not the model's.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moderation import comments, keys
from moderation.embedded_redis import redis_server_binary
from moderation.guards import (
    HOLD,
    PASS,
    REJECT,
    Draft,
    FormClock,
    Guards,
    WordListFile,
    WordLists,
    count_links,
)
from moderation.ratelimit import storage_uri
from moderation.text import normalize
from tests.conftest import CAPTCHA_TEXT, Reader

HAM = "Thank you for the report. Good to read about the cooperation between both parties."
OTHER_HAM = "I visited Havana last year and the people there were very welcoming to us."
MODEL_OFF = {"PUBLISH_BELOW": 1.0, "REJECT_AT": 1.0}
#: Distinct words to make texts differ after normalization (numbers all become one token).
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def api_post(client, slug, body, *, ip="127.0.0.1", headers=None, form_token=None, **extra):
    """Post through the JSON API like a JavaScript page would: challenge, stamp, comment."""
    environ = {"REMOTE_ADDR": ip}
    challenge = client.post("/api/v1/challenges", environ_base=environ).get_json()
    if form_token is None:
        form_token = client.get("/api/v1/form-token").get_json()["form_token"]
    payload = {"body": body, "challenge_id": challenge["id"], "captcha_answer": CAPTCHA_TEXT,
               "form_token": form_token, **extra}
    return client.post(f"/api/v1/articles/{slug}/comments", json=payload,
                       environ_base=environ, headers=headers or {})


def form_post(client, slug, body, *, ip="127.0.0.1", headers=None, author="", **extra):
    """Post through the HTML form: render it, fill it in, press Save."""
    environ = {"REMOTE_ADDR": ip}
    page = client.get(f"/articles/{slug}", environ_base=environ).get_data(as_text=True)
    data = {**Reader.form_fields(page), "author": author, "body": body,
            "captcha_answer": CAPTCHA_TEXT, "action": "save", **extra}
    return client.post(f"/articles/{slug}/comments", data=data, environ_base=environ,
                       headers=headers or {})


def stored(redis_client) -> list[comments.Comment]:
    return comments.get_many(redis_client, redis_client.zrange(keys.ALL_COMMENTS, 0, -1))


def only_comment(redis_client) -> comments.Comment:
    [comment] = stored(redis_client)
    return comment


VIA = pytest.mark.parametrize("via", ["form", "api"])


def post_via(via, client, slug, body, **kwargs):
    return (form_post if via == "form" else api_post)(client, slug, body, **kwargs)


def expected_status(via, status):
    """The API answers by status; the form redirects (PRG) to the article, except for
    a rejection: the form again, with the reader's text, like the API's 422."""
    if via == "form" and status != "rejected":
        return 303
    return {"published": 201, "held": 202, "rejected": 422}[status]


# ---------------------------------------------------------------------------
# honeypot
# ---------------------------------------------------------------------------


def test_form_has_a_css_hidden_honeypot_with_a_label_for_screen_readers(client, article_slug):
    html = client.get(f"/articles/{article_slug}").get_data(as_text=True)
    field = html[html.index('<div class="field hp">'):]
    field = field[:field.index("</div>")]
    assert 'name="website" type="text"' in field and 'type="hidden"' not in field
    assert 'tabindex="-1"' in field
    assert '<label for="website">Leave this field empty' in field
    css = client.get("/static/site.css").get_data(as_text=True)
    assert ".hp {" in css and "left: -10000px" in css


@VIA
def test_filled_honeypot_is_rejected_and_kept_with_reason(make_app, article_slug, redis_client,
                                                        via, caplog):
    client = make_app(**MODEL_OFF).test_client()
    with caplog.at_level(logging.INFO, logger="moderation"):
        response = post_via(via, client, article_slug, HAM, website="http://buy.example")
    assert response.status_code == expected_status(via, "rejected")
    comment = only_comment(redis_client)
    assert comment.status == "rejected" and "hidden field" in comment.reason
    assert redis_client.zscore(keys.REJECTED, comment.id) is not None
    assert "guard honeypot: reject (honeypot_filled)" in caplog.text
    if via == "api":
        error = response.get_json()["error"]
        assert (error["code"], error["field"]) == ("honeypot_filled", "website")
    else:
        page = response.get_data(as_text=True)
        assert "not published: the field that people should leave empty" in page
        assert f">{HAM}</textarea>" in page  # kept in the form, not in the list
        assert 'class="comment-body"' not in page


@VIA
def test_empty_honeypot_passes(make_app, article_slug, redis_client, via):
    client = make_app(**MODEL_OFF).test_client()
    response = post_via(via, client, article_slug, HAM, website="")
    assert response.status_code == expected_status(via, "published")
    assert only_comment(redis_client).status == "published"


# ---------------------------------------------------------------------------
# minimum fill time
# ---------------------------------------------------------------------------


@VIA
@pytest.mark.parametrize(("action", "status"), [("hold", "held"), ("reject", "rejected")])
def test_too_fast_is_held_or_rejected_per_config(make_app, article_slug, redis_client, via,
                                                 action, status):
    client = make_app(MIN_FILL_SECONDS=3, FILL_TIME_ACTION=action, **MODEL_OFF).test_client()
    response = post_via(via, client, article_slug, HAM)  # posted right after rendering
    assert response.status_code == expected_status(via, status)
    comment = only_comment(redis_client)
    assert comment.status == status
    assert "after the form was shown (minimum 3 s)" in comment.reason


@VIA
def test_a_form_shown_long_enough_ago_passes(make_app, article_slug, redis_client, via):
    app = make_app(MIN_FILL_SECONDS=3, **MODEL_OFF)
    old_stamp = app.extensions["form_clock"].stamp(time.time() - 4)
    response = post_via(via, app.test_client(), article_slug, HAM, form_token=old_stamp)
    assert response.status_code == expected_status(via, "published")
    assert only_comment(redis_client).status == "published"


@VIA
@pytest.mark.parametrize("token", ["", "forged.token.value", None])
def test_missing_or_forged_stamp_counts_as_too_fast(make_app, article_slug, redis_client, via,
                                                    token):
    app = make_app(MIN_FILL_SECONDS=3, **MODEL_OFF)
    if token is None:  # signed with someone else's key
        token = FormClock("not-our-secret").stamp(time.time() - 60)
    response = post_via(via, app.test_client(), article_slug, HAM, form_token=token)
    assert response.status_code == expected_status(via, "held")
    comment = only_comment(redis_client)
    assert comment.status == "held" and "missing, forged or too old" in comment.reason


def test_form_clock_round_trip_and_age_limit():
    clock = FormClock("k", max_age=60)
    assert clock.rendered_at(clock.stamp(1000.0)) is None  # signed now, but for long ago
    now = time.time()
    assert abs(clock.rendered_at(clock.stamp(now)) - now) < 0.01
    assert FormClock("k", max_age=1).rendered_at(FormClock("k").stamp(now - 5)) is None
    assert FormClock("other").rendered_at(clock.stamp(now)) is None
    assert clock.rendered_at("x" * 500) is None


# ---------------------------------------------------------------------------
# rate limits
# ---------------------------------------------------------------------------


@VIA
def test_rate_limit_per_client_is_429_and_stores_nothing(make_app, article_slug, redis_client,
                                                         via):
    client = make_app(RATE_LIMIT_PER_IP="2 per minute", **MODEL_OFF).test_client()
    texts = [HAM, OTHER_HAM, "A third, different comment about the friendship of both parties."]
    responses = [post_via(via, client, article_slug, text) for text in texts]
    assert [r.status_code for r in responses[:2]] == [expected_status(via, "published")] * 2
    refused = responses[2]
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert len(stored(redis_client)) == 2
    if via == "api":
        error = refused.get_json()["error"]
        assert error["code"] == "rate_limited" and "Too many requests" in error["message"]
        # An API client keeps its own request: nothing here was kept for it.
        assert "Nothing was saved" in error["message"] and "kept" not in error["message"]
    else:
        html = refused.get_data(as_text=True)
        assert "You are posting too often" in html
        assert texts[2] in html  # the reader's text is kept in the form


@pytest.mark.parametrize(("limit", "wait"), [("2 per minute", "1 minute"),
                                             ("2 per day", "about 24 hours")])
def test_a_reader_told_to_wait_is_told_how_long_in_plain_words(make_app, article_slug,
                                                                limit, wait):
    # The daily limit (60 per day from one address: an office, a school, a phone
    # network) told the reader "Please wait 86401 seconds and try again".
    client = make_app(RATE_LIMIT_PER_IP=limit, **MODEL_OFF).test_client()
    for text in (HAM, OTHER_HAM):
        form_post(client, article_slug, text)
    refused = form_post(client, article_slug, "A third, different comment.")
    assert refused.status_code == 429
    html = refused.get_data(as_text=True)
    assert f"Please wait {wait} and try again; your text has been kept." in html
    assert int(refused.headers["Retry-After"]) >= 60  # programs still get seconds


def test_form_and_api_share_the_per_client_budget(make_app, article_slug, redis_client):
    client = make_app(RATE_LIMIT_PER_IP="2 per minute", **MODEL_OFF).test_client()
    assert form_post(client, article_slug, HAM).status_code == 303
    assert api_post(client, article_slug, OTHER_HAM).status_code == 201
    assert api_post(client, article_slug, "Yet another one.").status_code == 429
    assert form_post(client, article_slug, "And one more.").status_code == 429


@VIA
def test_rate_limit_per_article_counts_all_clients(make_app, article_slug, redis_client, via):
    client = make_app(RATE_LIMIT_PER_ARTICLE="2 per minute", **MODEL_OFF).test_client()
    texts = [HAM, OTHER_HAM, "A third, different comment about the friendship of both parties."]
    codes = [post_via(via, client, article_slug, text, ip=f"198.51.100.{n}").status_code
             for n, text in enumerate(texts)]
    assert codes == [expected_status(via, "published")] * 2 + [429]
    assert len(stored(redis_client)) == 2


@VIA
def test_spoofed_forwarded_for_does_not_evade_the_limit_without_trusted_proxies(
    make_app, article_slug, redis_client, via
):
    client = make_app(RATE_LIMIT_PER_IP="2 per minute", TRUSTED_PROXIES=0,
                      **MODEL_OFF).test_client()
    codes = [
        post_via(via, client, article_slug, f"{HAM} {WORDS[n]}",
                 headers={"X-Forwarded-For": f"203.0.113.{n}"}).status_code
        for n in range(4)
    ]
    assert codes[2:] == [429, 429]


@VIA
def test_behind_one_trusted_proxy_only_the_proxys_entry_counts(make_app, article_slug,
                                                               redis_client, via):
    client = make_app(RATE_LIMIT_PER_IP="2 per minute", TRUSTED_PROXIES=1,
                      **MODEL_OFF).test_client()
    proxy = "10.9.8.7"

    def post_as(real_ip, n, spoof):
        # The client forges an entry; our proxy appends the address it really saw.
        headers = {"X-Forwarded-For": f"{spoof}, {real_ip}"}
        text = f"{HAM} {WORDS[n]} {WORDS[-1 - int(real_ip.rsplit('.', 1)[1]) % 5]}"
        return post_via(via, client, article_slug, text, ip=proxy, headers=headers).status_code

    codes = [post_as("203.0.113.5", n, spoof=f"192.0.2.{n}") for n in range(3)]
    assert codes[2] == 429
    # Another real client behind the same proxy has its own budget: the limit is
    # keyed on the forwarded address, not on the proxy's.
    assert post_as("203.0.113.99", 0, spoof="192.0.2.1") == expected_status(via, "published")


def test_limiter_keys_hold_no_raw_ip(make_app, article_slug, redis_client):
    client = make_app(RATE_LIMIT_PER_IP="5 per minute", **MODEL_OFF).test_client()
    api_post(client, article_slug, HAM, ip="203.0.113.77")
    limit_keys = redis_client.keys(f"{keys.LIMITS_PREFIX}*")
    assert limit_keys, "the limiter should keep its counters in the app's Redis"
    assert not any("203.0.113.77" in key for key in limit_keys)
    assert not [k for k in redis_client.keys("*") if "203.0.113.77" in k]


def test_storage_uri_for_unix_sockets():
    assert storage_uri("unix:///tmp/r.sock?db=0") == "redis+unix:///tmp/r.sock?db=0"
    assert storage_uri("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def test_rate_limit_works_on_a_unix_socket_redis(make_app, article_slug, tmp_path):
    """The embedded server speaks only a unix socket: the limiter must work there too."""
    socket_path = tmp_path / "r.sock"
    server = subprocess.Popen(
        [redis_server_binary(), "--port", "0", "--unixsocket", str(socket_path),
         "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            if os.path.exists(socket_path):
                break
            time.sleep(0.02)
        url = f"unix://{socket_path}?db=0"
        client = make_app(REDIS_URL=url, RATE_LIMIT_PER_IP="1 per minute",
                          **MODEL_OFF).test_client()
        assert api_post(client, article_slug, HAM).status_code == 201
        assert api_post(client, article_slug, OTHER_HAM).status_code == 429
        direct = redis.Redis(unix_socket_path=str(socket_path), decode_responses=True)
        assert direct.keys(f"{keys.LIMITS_PREFIX}*")
        direct.close()
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_challenge_issuing_is_rate_limited(make_app):
    client = make_app(RATE_LIMIT_CHALLENGES="2 per minute").test_client()
    codes = [client.post("/api/v1/challenges").status_code for _ in range(3)]
    assert codes == [201, 201, 429]


# ---------------------------------------------------------------------------
# repeat posts
# ---------------------------------------------------------------------------


@VIA
def test_same_text_from_same_client_is_rejected(make_app, article_slug, redis_client, via):
    client = make_app(**MODEL_OFF).test_client()
    assert post_via(via, client, article_slug, HAM).status_code == expected_status(via,
                                                                                   "published")
    # Same words, different case and spacing: the normalized text is what counts.
    again = post_via(via, client, article_slug, "  " + HAM.upper() + " ")
    assert again.status_code == expected_status(via, "rejected")
    statuses = sorted(c.status for c in stored(redis_client))
    assert statuses == ["published", "rejected"]
    rejected = [c for c in stored(redis_client) if c.status == "rejected"][0]
    assert "same client" in rejected.reason
    if via == "api":
        assert again.get_json()["error"]["code"] == "repeat_same_client"


def test_different_emoji_only_comments_are_not_repeats_of_each_other(
    make_app, article_slug, redis_client
):
    client = make_app(**MODEL_OFF).test_client()
    assert api_post(client, article_slug, "\U0001f44d").status_code == 201
    assert api_post(client, article_slug, "\u2764\ufe0f\U0001f525").status_code == 201
    again = api_post(client, article_slug, "\U0001f44d")
    assert again.get_json()["error"]["code"] == "repeat_same_client"


@VIA
def test_same_text_to_same_article_from_another_client_is_held(make_app, article_slug,
                                                               redis_client, via):
    client = make_app(**MODEL_OFF).test_client()
    post_via(via, client, article_slug, HAM, ip="198.51.100.1")
    again = post_via(via, client, article_slug, HAM, ip="198.51.100.2")
    assert again.status_code == expected_status(via, "held")
    held = [c for c in stored(redis_client) if c.status == "held"]
    assert len(held) == 1 and "just posted here" in held[0].reason


def test_repeat_memory_expires_with_the_window(make_app, article_slug, redis_client):
    client = make_app(REPEAT_WINDOW_SECONDS=120, **MODEL_OFF).test_client()
    api_post(client, article_slug, HAM)
    repeat_keys = redis_client.keys(f"{keys.PREFIX}repeat:*")
    assert len(repeat_keys) == 2
    assert all(0 < redis_client.ttl(k) <= 120 for k in repeat_keys)
    for key in repeat_keys:  # what the TTL does after two minutes
        redis_client.delete(key)
    assert api_post(client, article_slug, HAM).status_code == 201


def test_refused_request_leaves_no_repeat_memory(make_app, article_slug, redis_client):
    client = make_app(**MODEL_OFF).test_client()
    assert api_post(client, article_slug, HAM, captcha_answer="WRONG1").status_code == 400
    assert redis_client.keys(f"{keys.PREFIX}repeat:*") == []
    assert api_post(client, article_slug, HAM).status_code == 201


# ---------------------------------------------------------------------------
# word lists
# ---------------------------------------------------------------------------


@VIA
@pytest.mark.parametrize(
    ("text", "status", "code", "term"),
    [
        ("Great deals on V1AGRA here for everyone.", "rejected", "banned_word", "viagra"),
        ("You should w0rk fr0m h0me like me, it is great.", "held", "suspect_word",
         "work from home"),
    ],
)
def test_banned_rejects_and_suspect_holds(make_app, article_slug, redis_client, via, text,
                                          status, code, term):
    client = make_app(**MODEL_OFF).test_client()
    response = post_via(via, client, article_slug, text)
    assert response.status_code == expected_status(via, status)
    comment = only_comment(redis_client)
    assert comment.status == status and term in comment.reason
    if via == "api" and status == "rejected":
        assert response.get_json()["error"]["code"] == code
    if via == "form" and status == "rejected":
        page = response.get_data(as_text=True)
        assert "contains a word that is not allowed here" in page
        assert f">{text}</textarea>" in page  # the reader can reword it


def test_word_in_author_name_counts(make_app, article_slug, redis_client):
    client = make_app(**MODEL_OFF).test_client()
    assert api_post(client, article_slug, HAM, author="Cheap Cialis").status_code == 422


def test_operator_edits_the_list_without_restart(make_app, article_slug, redis_client, tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("[banned]\nfoo\n[suspect]\n")
    client = make_app(WORD_LIST_PATH=str(path), **MODEL_OFF).test_client()
    assert api_post(client, article_slug, "I like havana cigars a lot.").status_code == 201
    path.write_text("[banned]\nfoo\n[suspect]\nhavana cigars\n")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))  # a visibly newer file
    response = api_post(client, article_slug, "Havana cigars are the best, really.")
    assert response.status_code == 202


def test_word_list_file_format():
    lists = WordLists.parse("# comment\n[banned]\nCasino Bonus  # phrase\n\n[suspect]\nDM me\n")
    assert lists.banned == ("casino bonus",) and lists.suspect == ("dm me",)
    assert lists.match(normalize("Get your CASINO   bonus now"))[0] == "casino bonus"
    assert lists.match(normalize("casinobonus"))[0] is None  # whole words only
    with pytest.raises(ValueError):
        WordLists.parse("[nice]\nword\n")
    with pytest.raises(ValueError):
        WordLists.parse("word before section\n")


def test_missing_word_list_fails_at_startup(tmp_path):
    with pytest.raises(FileNotFoundError):
        WordListFile(tmp_path / "nope.txt")


def test_shipped_word_list_parses_and_is_not_empty():
    from moderation.config import from_environment

    lists = WordListFile(from_environment()["WORD_LIST_PATH"]).get()
    assert len(lists.banned) >= 5 and len(lists.suspect) >= 5


# ---------------------------------------------------------------------------
# links
# ---------------------------------------------------------------------------


LINKY = "Sources: http://a.example/1 and https://b.example/2 and www.c.example/3 for details."


@VIA
def test_too_many_links_holds(make_app, article_slug, redis_client, via):
    client = make_app(MAX_LINKS=2, **MODEL_OFF).test_client()
    response = post_via(via, client, article_slug, LINKY)
    assert response.status_code == expected_status(via, "held")
    comment = only_comment(redis_client)
    assert comment.status == "held" and "3 links (more than 2)" in comment.reason


@VIA
def test_link_limit_is_configurable(make_app, article_slug, redis_client, via):
    client = make_app(MAX_LINKS=3, **MODEL_OFF).test_client()
    assert post_via(via, client, article_slug, LINKY).status_code == expected_status(
        via, "published")


def test_link_in_name_holds(make_app, article_slug, redis_client):
    client = make_app(**MODEL_OFF).test_client()
    assert api_post(client, article_slug, HAM, author="best-deals.com").status_code == 202
    assert "name" in only_comment(redis_client).reason


# ---------------------------------------------------------------------------
# order and combination
# ---------------------------------------------------------------------------


def _guards(redis_client, **kwargs) -> Guards:
    lists = WordLists.parse("[banned]\nviagra\n[suspect]\nclick here\n")
    return Guards(connection=redis_client, clock=FormClock("k"), words=lambda: lists,
                  min_fill_seconds=0, **kwargs)


def test_first_reject_wins_and_holds_add_up(redis_client):
    guards = _guards(redis_client, max_links=0)
    draft = Draft(article="a", author="", body="viagra http://x.example", ip_hash="h",
                  honeypot="filled")
    result = guards.run(draft)
    assert (result.outcome, result.guard) == (REJECT, "honeypot")
    held = guards.run(Draft(article="a", author="", body="click here http://x.example",
                            ip_hash="h"))
    assert held.outcome == HOLD and held.guard == "word_lists,links"
    assert "Suspect word list" in held.reason and "links" in held.reason
    assert held.as_tuple() == (False, held.reason)
    assert guards.run(Draft(article="a", author="", body="hello", ip_hash="h")).as_tuple() == (
        True, "")


def test_moderators_see_the_guard_reason_next_to_the_model(make_app, article_slug,
                                                           redis_client):
    client = make_app(**MODEL_OFF).test_client()
    api_post(client, article_slug, "Click here for the full report, friends.")
    comment = only_comment(redis_client)
    assert comment.status == "held" and comment.reason.startswith("Suspect word list")
    assert comment.model_version and 0 <= comment.score <= 1  # scored all the same


# ---------------------------------------------------------------------------
# properties (hypothesis)
# ---------------------------------------------------------------------------

TERMS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=3, max_size=10)


@settings(max_examples=200, derandomize=True, deadline=None)
@given(before=st.text(max_size=80), after=st.text(max_size=80), term=TERMS)
def test_a_listed_term_is_found_wherever_it_stands(before, after, term):
    lists = WordLists.parse(f"[banned]\n{term}\n")
    if not lists.banned:  # the term normalized to nothing (e.g. a placeholder) - no claim
        return
    text = f"{before} {term.upper()} {after}"
    assert lists.match(normalize(text))[0] == lists.banned[0]


@settings(max_examples=300, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(author=st.text(max_size=60), body=st.text(min_size=1, max_size=400),
       honeypot=st.text(max_size=20), token=st.text(max_size=60))
def test_guards_never_raise_and_always_decide(redis_client, author, body, honeypot, token):
    guards = _guards(redis_client, max_links=2)
    result = guards.run(Draft(article="a", author=author, body=body, ip_hash="h",
                              honeypot=honeypot, form_token=token))
    assert result.outcome in (PASS, HOLD, REJECT)
    assert result.ok == (result.outcome == PASS) and (result.ok or result.reason)
    if honeypot.strip():
        assert result.outcome == REJECT and result.guard == "honeypot"
    if count_links(body) > 2 and result.outcome != REJECT:
        assert "links" in result.guard


@settings(max_examples=200, derandomize=True, deadline=None)
@given(when=st.floats(min_value=0, max_value=4e9, allow_nan=False))
def test_form_clock_keeps_the_time(when):
    clock = FormClock("k", max_age=10**11)
    assert abs(clock.rendered_at(clock.stamp(when)) - when) <= 0.001
