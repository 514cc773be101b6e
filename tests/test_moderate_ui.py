"""The moderator UI at /moderate with Flask's test client: login, queue, decisions, undo."""

from __future__ import annotations

import re
import time
from datetime import datetime

import pytest
from modhelpers import PASSWORD, csrf_token, held, log_in, reuse_password_hashes, snapshot_unstamped

from moderation import comments, keys
from moderation.queue import ReviewQueue
from moderation.users import UserStore


@pytest.fixture
def accounts(app, redis_client, monkeypatch):
    reuse_password_hashes(monkeypatch)
    store = UserStore(redis_client)
    store.create("alice", PASSWORD, "moderator")
    store.create("bob", PASSWORD, "moderator")
    store.create("olga", PASSWORD, "operator")


@pytest.fixture
def alice(client, accounts):
    assert log_in(client, "alice").status_code == 303
    return client


def queue_form(client, query: str = "") -> dict:
    page = client.get("/moderate/" + query).get_data(as_text=True)
    return {"csrf_token": csrf_token(page), "back": query.lstrip("?"), "cursor": "0"}


@pytest.mark.parametrize("path", ["/moderate/", "/moderate/history", "/moderate/comments/abc"])
def test_readers_are_sent_to_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_reader_post_changes_nothing(client, redis_client, reader):
    comment = held(redis_client)
    token = csrf_token(reader.open_article().get_data(as_text=True))
    before = snapshot_unstamped(redis_client)
    response = client.post(
        "/moderate/act", data={"csrf_token": token, "do": f"approve|{comment.id}"}
    )
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert snapshot_unstamped(redis_client) == before


def test_login_logout(client, accounts):
    page = client.get("/login").get_data(as_text=True)
    wrong = client.post(
        "/login", data={"name": "alice", "password": "nope-nope", "csrf_token": csrf_token(page)}
    )
    assert wrong.status_code == 401 and "Wrong name or password" in wrong.get_data(as_text=True)
    empty = client.post("/login", data={"name": "", "password": "", "csrf_token": csrf_token(page)})
    assert empty.status_code == 400
    response = log_in(client, "alice")
    assert response.status_code == 303 and response.headers["Location"] == "/moderate/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.get("/moderate/").status_code == 200
    page = client.get("/moderate/").get_data(as_text=True)
    assert client.post("/logout", data={"csrf_token": csrf_token(page)}).status_code == 303
    assert client.get("/moderate/").status_code == 302


def test_logout_ends_the_session_on_the_server_too(app, client, accounts, redis_client):
    # The session cookie is signed, not secret: one copied before logout (a shared
    # machine, a proxy log, a stolen backup) kept working for its whole lifetime.
    log_in(client, "alice")
    page = client.get("/moderate/").get_data(as_text=True)
    copied = client.get_cookie("session").value
    assert client.post("/logout", data={"csrf_token": csrf_token(page)}).status_code == 303
    replay = app.test_client()
    replay.set_cookie("session", copied)
    assert replay.get("/moderate/").status_code == 302
    assert redis_client.keys(keys.session("*")) == []


def test_ending_an_accounts_sessions_logs_out_every_browser(app, accounts, redis_client):
    # Before, nothing could end a moderator's browser sessions but a new SECRET_KEY
    # for everyone; a password change left them logged in too.
    first, second, other = app.test_client(), app.test_client(), app.test_client()
    for client, name in ((first, "alice"), (second, "alice"), (other, "bob")):
        log_in(client, name)
    assert UserStore(redis_client).end_sessions("alice") == 2
    assert first.get("/moderate/").status_code == 302
    assert second.get("/moderate/").status_code == 302
    assert other.get("/moderate/").status_code == 200
    log_in(first, "alice")
    UserStore(redis_client).set_password("alice", "another long password")
    assert first.get("/moderate/").status_code == 302


def test_a_session_without_a_server_side_record_is_not_logged_in(app, accounts):
    # What every session cookie looked like before sessions were kept in Redis: a
    # signed {"moderator": name} alone no longer logs anyone in.
    client = app.test_client()
    with client.session_transaction() as session:
        session["moderator"] = "alice"
    assert client.get("/moderate/").status_code == 302


def test_login_redirects_only_to_local_paths(app, accounts):
    def login_with_next(target: str) -> str:
        client = app.test_client()
        page = client.get("/login").get_data(as_text=True)
        data = {
            "name": "alice",
            "password": PASSWORD,
            "csrf_token": csrf_token(page),
            "next": target,
        }
        return client.post("/login", data=data).headers["Location"]

    assert login_with_next("/moderate/history") == "/moderate/history"
    for evil in ("https://evil.example/", "//evil.example/", "/\\evil.example",
                 "/\r", "/moderate/\r\nSet-Cookie: x=1", "/\x7f"):
        assert login_with_next(evil) == "/moderate/"


def test_login_without_csrf_is_400_with_a_clear_message(client, accounts):
    response = client.post("/login", data={"name": "alice", "password": PASSWORD})
    assert response.status_code == 400
    assert "security token is missing" in response.get_data(as_text=True)


def client_at(app, address: str):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def test_failed_logins_are_limited_per_client_and_successful_ones_are_free(
    make_app, redis_client, monkeypatch
):
    reuse_password_hashes(monkeypatch)
    app = make_app(RATE_LIMIT_LOGIN_FAILURES="2 per minute")
    UserStore(redis_client).create("alice", PASSWORD, "moderator")

    for _ in range(3):  # more logins than failures allowed: none of them counts
        assert log_in(client_at(app, "10.0.0.1"), "alice").status_code == 303

    guesser = client_at(app, "10.0.0.1")
    assert log_in(guesser, "alice", "guess-one").status_code == 401
    assert log_in(guesser, "alice", "guess-two").status_code == 401
    refused = log_in(guesser, "alice")  # even the right password, once over the limit
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    page = refused.get_data(as_text=True)
    assert "Too many failed logins from your address" in page
    assert 'value="alice"' in page  # the form comes back with the name kept
    assert guesser.get("/moderate/").status_code == 302  # not logged in

    # Another address is not locked out by the guesser's failures.
    assert log_in(client_at(app, "10.0.0.2"), "alice").status_code == 303


def test_queue_shows_why_each_comment_was_flagged(alice, redis_client, article_slug):
    held(
        redis_client,
        "<script>alert(1)</script> Get CHEAP pills at bit.ly/xx",
        article=article_slug,
        score=0.83,
        author="<b>Spammer</b>",
        reason="suspect word: pills",
        explanation=[
            {"feature": "cheap", "kind": "term", "weight": 1.5},
            {"feature": "urldomain_bit_ly", "kind": "term", "weight": 0.9},
            {"feature": "<i>x</i>", "kind": "term", "weight": 0.5},
            {"feature": "links", "kind": "signal", "weight": 0.4, "compared": "above average"},
            {"feature": "get", "kind": "term", "weight": -0.3},
        ],
        now=time.time() - 7200,
    )
    html = alice.get("/moderate/").get_data(as_text=True)
    assert (
        "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    )
    assert "<b>Spammer</b>" not in html and "&lt;b&gt;Spammer&lt;/b&gt;" in html
    assert "<mark>CHEAP</mark>" in html and "<mark>bit.ly/xx</mark>" in html
    assert "<mark>Get</mark>" not in html, "terms pulling towards ham are not highlighted"
    assert "&lt;i&gt;x&lt;/i&gt;" in html and "<i>x</i>" not in html
    assert "links (above average) <small>+0.40</small>" in html
    assert "suspect word: pills" in html and "0.83" in html and "v-test" in html
    assert 'id="queue-depth">1<' in html and 'id="queue-oldest">2 h<' in html
    assert re.search(r'<script src="/static/moderate\.js[^"]*" defer></script>', html)
    assert "<script>" not in html and " onclick=" not in html, "no inline script or handlers"


def test_approve_one_publishes(alice, redis_client, article_slug):
    comment = held(redis_client, "Thoughtful words", article=article_slug)
    form = queue_form(alice, "?sort=age")
    response = alice.post(
        "/moderate/act", data={**form, "do": f"approve|{comment.id}", "cursor": "3"}
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/moderate/?sort=age#pos-3"
    assert comments.get(redis_client, comment.id).status == "published"
    assert "Approved 1 comment" in alice.get("/moderate/").get_data(as_text=True)
    article = alice.get(f"/articles/{article_slug}").get_data(as_text=True)
    assert "Thoughtful words" in article


def test_a_back_query_that_cannot_be_a_location_returns_to_the_plain_queue(
    alice, redis_client
):
    comment = held(redis_client, "Thoughtful words")
    form = {**queue_form(alice), "back": "sort=age\r\nSet-Cookie: x=1"}
    response = alice.post("/moderate/act", data={**form, "do": f"approve|{comment.id}"})
    assert response.status_code == 303
    assert response.headers["Location"] == "/moderate/#pos-0"
    assert comments.get(redis_client, comment.id).status == "published"


@pytest.mark.parametrize("cursor", ["\u00b2", "\u2075", "9" * 5000, "-1", "1e3"])
def test_a_position_that_is_not_a_small_number_is_left_out_of_the_redirect(
    alice, redis_client, cursor
):
    comment = held(redis_client, "Thoughtful words")
    form = {**queue_form(alice), "cursor": cursor}
    response = alice.post("/moderate/act", data={**form, "do": f"approve|{comment.id}"})
    assert response.status_code == 303
    assert response.headers["Location"] == "/moderate/"
    assert comments.get(redis_client, comment.id).status == "published"


def test_history_ignores_a_cursor_redis_cannot_use(alice, redis_client):
    comment = held(redis_client, "Thoughtful words")
    alice.post("/moderate/act", data={**queue_form(alice), "do": f"approve|{comment.id}"})
    for before in ("0-0", "\u0663-\u0663", "99999999999999999999-0"):
        page = alice.get("/moderate/history", query_string={"before": before})
        assert page.status_code == 200, before
        assert "Thoughtful words" in page.get_data(as_text=True)


def test_duplicates_show_as_one_group_and_bulk_reject(alice, redis_client):
    dupes = [
        held(redis_client, text) for text in ("WIN money now", "win MONEY now!", "Win money   now")
    ]
    single = held(redis_client, "Unrelated remark")
    html = alice.get("/moderate/").get_data(as_text=True)
    assert html.count('class="group') == 2
    assert "3 similar comments" in html and "Reject all 3" in html
    group_value = re.search(r'name="ids" value="([^"]+,[^"]+)"', html).group(1)
    assert set(group_value.split(",")) == {c.id for c in dupes}

    form = queue_form(alice)
    response = alice.post(
        "/moderate/act",
        data={**form, "do": "reject", "reason": "advertising", "ids": [group_value]},
    )
    assert response.status_code == 303
    assert all(comments.get(redis_client, c.id).status == "rejected" for c in dupes)
    assert comments.get(redis_client, single.id).status == "held"
    assert {f["moderator"] for _, f in redis_client.xrange(keys.DECISIONS)} == {"alice"}


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        ({"do": "publish"}, 400, "Unknown action"),
        ({"do": "reject", "reason": "because"}, 400, "Unknown reason"),
        ({"do": "approve|nope"}, 404, "no comment"),
    ],
)
def test_a_form_the_page_never_sends_rerenders_the_queue(
    alice, redis_client, data, status, message
):
    comment = held(redis_client)
    form = queue_form(alice)
    if data.get("do", "") == "reject":
        data = {**data, "ids": [comment.id]}
    before = snapshot_unstamped(redis_client)
    response = alice.post("/moderate/act", data={**form, **data})
    assert response.status_code == status
    html = response.get_data(as_text=True)
    assert message in html and 'id="queue-depth"' in html
    assert snapshot_unstamped(redis_client) == before


def test_reject_takes_no_reason_until_the_moderator_chooses_one(alice, redis_client):
    # A preselected "Off topic" filed adverts as policy rejections, which the training
    # export leaves out; now Reject without a choice is refused and changes nothing.
    comment = held(redis_client)
    page = alice.get("/moderate/").get_data(as_text=True)
    select = page.split('id="reject-reason">', 1)[1].split("</select>", 1)[0]
    assert select.split("<option", 2)[1].startswith(' value="" selected>')
    before = snapshot_unstamped(redis_client)
    response = alice.post("/moderate/act", data={
        **queue_form(alice), "do": "reject", "reason": "", "ids": [comment.id]})
    assert response.status_code == 303
    assert "needs a reason" in alice.get(response.headers["Location"]).get_data(as_text=True)
    assert snapshot_unstamped(redis_client) == before


def refused_form(alice, redis_client, case: str) -> tuple[dict, list]:
    """A form the queue page can send and the queue refuses, and the comments it names."""
    texts = ("First remark on the visit", "A question about trade", "Thanks for the report")
    comments_ = [held(redis_client, text, score=0.9 - i / 10) for i, text in enumerate(texts)]
    form = {**queue_form(alice, "?sort=age"), "cursor": "1"}
    one, two = comments_[1], comments_[2]
    if case == "nothing selected":
        return {**form, "do": "approve"}, []
    if case == "enter in a checkbox":  # the form's first button, without JavaScript
        page = alice.get("/moderate/").get_data(as_text=True).split('id="queue-form"', 1)[1]
        first_button = re.search(r"<button[^>]*>", page).group(0)
        assert first_button == '<button type="submit" name="do" value="keep" hidden tabindex="-1">'

        return {**form, "do": "keep", "ids": [one.id]}, [one]
    if case == "bulk reject without a reason":
        return {**form, "do": "reject", "reason": "", "ids": [one.id, two.id]}, [one, two]
    if case == "r key without a reason":
        return {**form, "do": f"reject|{one.id}", "reason": ""}, []
    ReviewQueue(redis_client).claim("bob", [one.id])
    return {**form, "do": "spam", "ids": [one.id, two.id]}, [one, two]


REFUSALS = {
    "nothing selected": ("Select at least one comment first.", "ids"),
    "enter in a checkbox": ("Nothing was changed: Enter does not decide.", "ids"),
    "bulk reject without a reason": ("Rejecting needs a reason code.", "reason"),
    "r key without a reason": ("Rejecting needs a reason code.", "reason"),
    "claimed by another": ("Nothing was changed: Comment {0} is claimed by bob", "ids"),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_a_refusal_the_page_can_lead_to_is_a_redirect_so_a_reload_sends_nothing(
    alice, redis_client, case
):
    # The refusal was the POST's answer, served at /moderate/act: reloading it offered
    # to send the form again (and, once bob's claim had run out, would have marked
    # his comment as spam). Now the answer is a 303 back to the queue the form came
    # from, at the row it was on; the queue says what was refused, once.
    form, kept = refused_form(alice, redis_client, case)
    before = snapshot_unstamped(redis_client)
    response = alice.post("/moderate/act", data=form)
    assert response.status_code == 303
    assert response.headers["Location"] == "/moderate/?sort=age#pos-1"
    assert snapshot_unstamped(redis_client) == before

    page = alice.get(response.headers["Location"])
    html = page.get_data(as_text=True)
    message, field = REFUSALS[case]
    message = message.format(kept[0].id if kept else "")
    assert page.status_code == 200
    assert re.search(r'<p class="error" role="alert" id="mod-error">([^<]*)</p>', html).group(
        1).startswith(message)
    checked = set(re.findall(r'name="ids" value="([^"]+)"[^>]* checked>', html))
    assert checked == {c.id for c in kept}, "the rows checked before are checked again"
    reason_select = re.search(r'<select name="reason" id="reject-reason"[^>]*>', html).group(0)
    if field == "reason":
        assert 'aria-invalid="true"' in reason_select
    else:
        assert "aria-invalid" not in reason_select

    again = alice.get(response.headers["Location"]).get_data(as_text=True)  # a reload
    assert 'id="mod-error"' not in again and " checked>" not in again  # (grouped: no box)
    assert snapshot_unstamped(redis_client) == before


def test_a_claimed_comment_stays_claimed_after_reject_without_a_reason(alice, redis_client):
    comment = held(redis_client)
    ReviewQueue(redis_client).claim("alice", [comment.id])
    response = alice.post("/moderate/act", data={
        **queue_form(alice), "do": f"reject|{comment.id}", "reason": ""})
    html = alice.get(response.headers["Location"]).get_data(as_text=True)
    assert "Rejecting needs a reason code." in html and "claimed by alice" in html
    assert ReviewQueue(redis_client).holders([comment.id])[comment.id][0] == "alice"
    response = alice.post("/moderate/act", data={
        **queue_form(alice), "do": f"reject|{comment.id}", "reason": "advertising"})
    assert response.status_code == 303
    assert comments.get(redis_client, comment.id).status == "rejected"


def test_the_selection_kept_over_a_refusal_is_capped_to_fit_a_cookie(alice, redis_client):
    many = [held(redis_client, f"Comment {i}") for i in range(150)]
    form = queue_form(alice, "?grouped=0&per_page=200")  # copies, shown one by one
    response = alice.post("/moderate/act", data={
        **form, "do": "reject", "reason": "", "ids": [c.id for c in many]})
    assert len(response.headers["Set-Cookie"]) < 4000
    html = alice.get(response.headers["Location"]).get_data(as_text=True)
    assert len(re.findall(r'name="ids" value="[^"]+"[^>]* checked>', html)) == 100


def test_missing_or_wrong_csrf_is_400_and_changes_nothing(alice, redis_client):
    comment = held(redis_client)
    before = snapshot_unstamped(redis_client)
    for token in (None, "forged"):
        data = {"do": f"approve|{comment.id}"}
        if token:
            data["csrf_token"] = token
        response = alice.post("/moderate/act", data=data)
        assert response.status_code == 400
        assert "security token is missing or wrong" in response.get_data(as_text=True)
    assert snapshot_unstamped(redis_client) == before


def test_item_claimed_by_another_is_refused_with_the_holder(alice, redis_client, app):
    comment = held(redis_client)
    ReviewQueue(redis_client).claim("bob", [comment.id])
    html = alice.get("/moderate/").get_data(as_text=True)
    assert "claimed by bob" in html
    before = snapshot_unstamped(redis_client)
    response = alice.post("/moderate/act", data={**queue_form(alice), "do": f"spam|{comment.id}"})
    assert response.status_code == 303
    refused = alice.get(response.headers["Location"]).get_data(as_text=True)
    assert f"Nothing was changed: Comment {comment.id} is claimed by bob" in refused
    assert snapshot_unstamped(redis_client) == before


def test_a_claim_says_until_when_in_the_queue_and_on_the_comments_page(alice, redis_client):
    # "claimed by bob" alone never said when bob's lease ends: a page left open kept
    # saying it after the comment was free again. Now the time is in the text, and the
    # seconds left (what static/leases.js counts down) in an attribute.
    comment = held(redis_client)
    ReviewQueue(redis_client, lease_seconds=600).claim("bob", [comment.id])
    ends = time.time() + 600
    for path in ("/moderate/", f"/moderate/comments/{comment.id}"):
        html = alice.get(path).get_data(as_text=True)
        found = re.search(
            r'<span class="holder by-other" data-holder="bob" data-share="" '
            r'data-lease-left="([0-9.]+)">claimed by bob '
            r'until <time datetime="([^"]+)">(\d\d:\d\d) UTC</time></span>', html)
        assert found, path
        left, until, shown = found.groups()
        assert 590 < float(left) <= 600
        until = datetime.fromisoformat(until)
        assert until.timestamp() == pytest.approx(ends, abs=2)
        assert shown == until.strftime("%H:%M")
        assert 'src="/static/leases.js"' in html


def test_claim_and_release_from_the_ui(alice, redis_client):
    comment = held(redis_client)
    assert (
        alice.post(
            "/moderate/act", data={**queue_form(alice), "do": f"claim|{comment.id}"}
        ).status_code
        == 303
    )
    assert ReviewQueue(redis_client).holders([comment.id])[comment.id][0] == "alice"
    assert (
        alice.post(
            "/moderate/act", data={**queue_form(alice), "do": f"release|{comment.id}"}
        ).status_code
        == 303
    )
    assert ReviewQueue(redis_client).holders([comment.id]) == {}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("?min_score=abc", "Min score must be a number"),
        ("?max_score=7", "Max score must be a number"),
        ("?sort=newest", "Sort by risk or by age"),
        ("?article=%3Cscript%3E", "There is no article"),
        ("?grouped=maybe", "grouped must be 1, 0, true or false"),
        ("?per_page=%D9%A3", "Items per page must be a whole number"),  # an Arabic-Indic 3
    ],
)
def test_bad_filters_are_400_with_the_form(alice, query, message):
    response = alice.get("/moderate/" + query)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert message in html and 'class="filters"' in html and "<script>" not in html


@pytest.mark.parametrize("page", ["0", "-1", "abc", "%C2%B2", "9" * 5000])
def test_a_junk_page_number_in_a_link_still_shows_the_queue(alice, redis_client, page):
    # Unlike the API, which refuses it: a browser's old or edited link is not worth an error.
    held(redis_client, "still listed")
    response = alice.get("/moderate/?page=" + page)
    assert response.status_code == 200
    assert "still listed" in response.get_data(as_text=True)


def test_filters_and_sort(alice, redis_client, article_slug):
    held(redis_client, "mine low", score=0.1, article=article_slug, now=10)
    held(redis_client, "mine high", score=0.9, article=article_slug, now=20)
    held(redis_client, "elsewhere", score=0.5, article="other-article")
    html = alice.get(f"/moderate/?article={article_slug}").get_data(as_text=True)
    assert "mine high" in html and "mine low" in html and "elsewhere" not in html
    assert html.index("mine high") < html.index("mine low")
    html = alice.get(f"/moderate/?article={article_slug}&sort=age").get_data(as_text=True)
    assert html.index("mine low") < html.index("mine high")
    html = alice.get("/moderate/?min_score=0.4&max_score=0.95").get_data(as_text=True)
    assert "mine high" in html and "elsewhere" in html and "mine low" not in html


def test_history_and_undo_by_operator(client, accounts, redis_client):
    comment = held(redis_client, "Undo me please", score=0.61)
    log_in(client, "alice")
    client.post("/moderate/act", data={**queue_form(client), "do": f"spam|{comment.id}"})
    html = client.get("/moderate/history").get_data(as_text=True)
    assert "Undo me please" in html and ">alice<" in html and "spam" in html
    assert "Undo</button>" not in html, "moderators get no undo button"
    token = csrf_token(html)
    before = snapshot_unstamped(redis_client)
    assert (
        client.post(f"/moderate/undo/{comment.id}", data={"csrf_token": token}).status_code == 403
    )
    assert snapshot_unstamped(redis_client) == before

    client.post("/logout", data={"csrf_token": token})
    log_in(client, "olga")
    html = client.get("/moderate/history").get_data(as_text=True)
    assert "Undo</button>" in html
    response = client.post(f"/moderate/undo/{comment.id}", data={"csrf_token": csrf_token(html)})
    assert response.status_code == 303
    assert redis_client.zscore(keys.REVIEW_QUEUE, comment.id) == 0.61
    assert "Undo me please" not in client.get("/moderate/history").get_data(as_text=True)
    again = client.post(f"/moderate/undo/{comment.id}", data={"csrf_token": csrf_token(html)})
    assert again.status_code == 409 and "no moderator decision to undo" in again.get_data(
        as_text=True
    )
    detail = client.get(f"/moderate/comments/{comment.id}").get_data(as_text=True)
    assert "alice</strong> spam" in detail and "olga</strong> undo" in detail


def test_markup_in_any_field_a_moderator_sees_is_shown_as_text(client, accounts, redis_client):
    # tests/test_browser_xss.py covers the body and author in the queue; the other
    # fields (article slug, held reason, explanation terms, model version, verdict)
    # and the detail and history pages are rendered by the same autoescaping.
    markup = "<img src=x onerror=alert(1)>\"'<script>x</script>"
    comment = held(
        redis_client, "body " + markup, author=markup, article=markup, reason=markup,
        explanation=[{"feature": markup, "kind": "term", "weight": 2.0, "compared": markup},
                     {"feature": "ab" + markup, "kind": "chars", "weight": 1.0}],
    )
    redis_client.hset(
        keys.comment(comment.id), mapping={"model_version": markup, "verdict": markup}
    )
    log_in(client, "olga")
    detail = f"/moderate/comments/{comment.id}"
    pages = {"queue": client.get("/moderate/"), "detail": client.get(detail)}
    token = csrf_token(pages["queue"].get_data(as_text=True))
    form = {"csrf_token": token, "back": "", "cursor": "0", "do": f"spam|{comment.id}"}
    assert client.post("/moderate/act", data=form).status_code == 303
    pages["history"] = client.get("/moderate/history")
    pages["decided"] = client.get(detail)
    for name, response in pages.items():
        html = response.get_data(as_text=True)
        assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
        assert "<img" not in html and "<script>x" not in html, name
        assert "&lt;img src=x onerror=alert(1)&gt;" in html, name


def test_thousand_items_render_fast(alice, redis_client, article_slug):
    for i in range(1000):
        held(
            redis_client,
            f"Comment {i}: cheap offer " + " ".join(chr(97 + int(d)) for d in str(i)),
            article=article_slug,
            author=f"reader {i}",
            score=(i % 997) / 997,
        )
    timings = {}
    for per_page in (100, 1000):
        alice.get(f"/moderate/?per_page={per_page}")  # warm the normalizer cache
        started = time.perf_counter()
        response = alice.get(f"/moderate/?per_page={per_page}")
        timings[per_page] = time.perf_counter() - started
        assert response.status_code == 200
        assert 'id="queue-depth">1000<' in response.get_data(as_text=True)
    print(
        f"\n/moderate with 1000 queued: per_page=100 {timings[100] * 1000:.0f} ms, "
        f"per_page=1000 {timings[1000] * 1000:.0f} ms"
    )
    # Measured ~70 ms / ~800 ms on an idle 2-core machine; the bounds are loose so a
    # busy CI box passes, yet a per-item round trip or N^2 grouping would blow them.
    assert timings[100] < 3.0 and timings[1000] < 10.0, timings


def test_duplicates_can_be_shown_one_by_one(alice, redis_client):
    for _ in range(3):
        held(redis_client, "Same spam again")
    grouped = alice.get("/moderate/").get_data(as_text=True)
    assert grouped.count('class="group') == 1 and "3 similar comments" in grouped
    single = alice.get("/moderate/?grouped=0").get_data(as_text=True)
    assert single.count('class="group') == 3 and "similar comments" not in single


def test_a_campaign_of_1000_copies_is_one_row(alice, redis_client):
    for i in range(1000):
        held(
            redis_client, f"Visit spam-site dot com for {i} cheap pills", score=0.6 + (i % 10) / 100
        )
    started = time.perf_counter()
    html = alice.get("/moderate/").get_data(as_text=True)
    elapsed = time.perf_counter() - started
    assert html.count('class="group') == 1 and "1000 similar comments" in html
    assert "… and 989 more" in html
    form = queue_form(alice)
    ids = re.search(r'name="ids" value="([^"]+)"', html).group(1)
    response = alice.post("/moderate/act", data={**form, "do": f"spam|{ids}"})
    assert response.status_code == 303
    assert redis_client.zcard(keys.REVIEW_QUEUE) == 0 and redis_client.xlen(keys.DECISIONS) == 1000
    print(f"\n/moderate with one 1000-copy campaign: {elapsed * 1000:.0f} ms")


def test_deciding_the_last_rows_of_the_last_page_shows_the_page_before(alice, redis_client):
    # The queue came back to the page it was on, now past the end: "Nothing to review"
    # and "Page 3 of 2", with four comments waiting.
    texts = ("First remark on the visit", "A question about trade", "Thanks for the report",
             "The photo is from 2019", "Where is the full statement?")
    for i, text in enumerate(texts):
        held(redis_client, text, score=0.9 - i / 10)
    form = queue_form(alice, "?per_page=2&page=3")
    last = re.findall(r'name="ids" value="([^"]+)"', alice.get("/moderate/?per_page=2&page=3")
                      .get_data(as_text=True))
    assert len(last) == 1
    response = alice.post("/moderate/act", data={**form, "do": f"approve|{last[0]}"})
    assert response.headers["Location"] == "/moderate/?per_page=2&page=3#pos-0"
    html = alice.get(response.headers["Location"]).get_data(as_text=True)
    assert "Nothing to review" not in html
    assert "Page 2 of 2" in html and len(re.findall(r'name="ids" value=', html)) == 2
    assert "Thanks for the report" in html and "The photo is from 2019" in html
    back = re.search(r'name="back" value="([^"]*)"', html).group(1)
    assert back == "per_page=2&amp;page=2", "the next decision returns to the page shown"
    old_link = alice.get("/moderate/?page=9").get_data(as_text=True)
    assert "Nothing to review" not in old_link and "Thanks for the report" in old_link
