"""Lifetimes of credentials: named, expiring API tokens and idle browser sessions.

Real Redis; time is a clock the store is given (``Clock``), or timestamps written
into the stored records, so nothing here sleeps.
"""

from __future__ import annotations

import re
import time

import pytest
from itsdangerous import TimestampSigner
from modhelpers import PASSWORD, csrf_token, held, log_in, reuse_password_hashes

from moderation import keys
from moderation.users import (
    DAY,
    EXPIRED_TOKEN_KEPT,
    STAMP_EVERY_SECONDS,
    AccountError,
    SessionIdle,
    TokenExpired,
    UserStore,
    token_hash,
    token_id,
)

API = "/api/v1/moderation"


class Clock:
    """Epoch seconds that move only when a test says so."""

    def __init__(self, now: float | None = None) -> None:
        self.now = time.time() if now is None else now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(redis_client, clock, monkeypatch) -> UserStore:
    reuse_password_hashes(monkeypatch)
    users = UserStore(redis_client, session_idle=3600, clock=clock)
    users.create("alice", PASSWORD)
    return users


def record(redis_client, secret: str, key=keys.token) -> dict:
    return redis_client.hgetall(key(token_hash(secret)))


# --- API tokens: label, lifetime, last use -------------------------------------------


def test_a_token_keeps_its_label_creation_and_expiry(store, clock, redis_client):
    token = store.new_token("alice", "ci-bot", days=30)
    [listed] = store.tokens("alice")
    assert listed.id == token_id(token) == token_hash(token)[:8]
    assert token_id(token) not in token  # the id is no part of the secret
    assert listed.label == "ci-bot"
    assert listed.created == pytest.approx(clock.now)
    assert listed.expires == pytest.approx(clock.now + 30 * DAY)
    assert listed.last_used is None
    # Redis drops the record a while after it expired, not before.
    ttl = redis_client.ttl(keys.token(token_hash(token)))
    assert 30 * DAY + EXPIRED_TOKEN_KEPT - 5 < ttl <= 30 * DAY + EXPIRED_TOKEN_KEPT
    clock.advance(1)
    forever = store.new_token("alice")
    assert redis_client.ttl(keys.token(token_hash(forever))) == -1
    assert store.tokens("alice")[1].expires is None


def test_last_use_is_written_at_most_once_a_minute(store, clock, redis_client):
    token = store.new_token("alice")
    first_use = clock.now
    assert store.by_token(token).name == "alice"
    assert float(record(redis_client, token)["last_used"]) == pytest.approx(first_use)
    clock.advance(STAMP_EVERY_SECONDS - 1)
    store.by_token(token)
    assert float(record(redis_client, token)["last_used"]) == pytest.approx(first_use)
    clock.advance(1)
    store.by_token(token)
    assert float(record(redis_client, token)["last_used"]) == pytest.approx(clock.now)
    assert store.tokens("alice")[0].last_used == pytest.approx(clock.now)


def test_an_expired_token_says_so_and_is_not_stamped(store, clock, redis_client):
    token = store.new_token("alice", "laptop", days=1)
    clock.advance(DAY - 1)
    assert store.by_token(token).name == "alice"
    stamped = record(redis_client, token)["last_used"]
    clock.advance(1)
    with pytest.raises(TokenExpired) as expired:
        store.by_token(token)
    assert expired.value.token.id == token_id(token)
    assert expired.value.token.label == "laptop"
    assert record(redis_client, token)["last_used"] == stamped
    assert store.tokens("alice")[0].expired(clock.now)
    # Revoked, it is unknown: no longer "expired".
    store.revoke_token("alice", "laptop")
    assert store.by_token(token) is None


def test_a_token_stored_in_the_old_format_keeps_working(store, clock, redis_client):
    # Before labels, a token's record was a string holding the account name.
    old = "an-old-token-minted-before-labels-existed-0123456789"
    digest = token_hash(old)
    redis_client.set(keys.token(digest), "alice")
    redis_client.sadd(keys.user_tokens("alice"), digest)
    [listed] = store.tokens("alice")  # listing reads it as it is
    assert (listed.id, listed.label, listed.created, listed.expires, listed.last_used) == (
        digest[:8], "", None, None, None
    )
    assert store.by_token(old).name == "alice"
    assert redis_client.type(keys.token(digest)) == "hash"
    assert redis_client.ttl(keys.token(digest)) == -1  # still never expires
    clock.advance(10 * 365 * DAY)
    assert store.by_token(old).name == "alice"
    assert store.tokens("alice")[0].last_used == pytest.approx(clock.now)
    new = store.new_token("alice", "dashboard")
    assert store.revoke_token("alice", digest[:8]).id == digest[:8]
    assert store.by_token(old) is None and store.by_token(new).name == "alice"


def test_one_token_is_revoked_by_id_or_label_and_the_others_keep_working(store):
    ci, dashboard = store.new_token("alice", "ci-bot"), store.new_token("alice", "dashboard")
    assert store.revoke_token("alice", "ci-bot").id == token_id(ci)
    assert store.by_token(ci) is None and store.by_token(dashboard).name == "alice"
    assert store.revoke_token("alice", token_id(dashboard)).label == "dashboard"
    assert store.tokens("alice") == []


def test_revoking_a_token_refuses_an_unknown_or_ambiguous_name(store, redis_client):
    store.create("bob", PASSWORD)
    bobs = store.new_token("bob", "ci-bot")
    first, second = store.new_token("alice", "ci-bot"), store.new_token("alice", "ci-bot")
    with pytest.raises(AccountError, match="2 tokens of 'alice' are labelled 'ci-bot'"):
        store.revoke_token("alice", "ci-bot")
    with pytest.raises(AccountError, match="no token with the id or label 'nope'"):
        store.revoke_token("alice", "nope")
    with pytest.raises(AccountError, match="no token with the id or label"):
        store.revoke_token("alice", token_id(bobs))  # someone else's
    with pytest.raises(AccountError, match="no token with the id or label ''"):
        store.revoke_token("alice", "")  # unlabelled tokens are not all "named" ''
    with pytest.raises(AccountError, match="There is no account named 'nobody'"):
        store.revoke_token("nobody", "ci-bot")
    assert all(store.by_token(token) for token in (bobs, first, second))


@pytest.mark.parametrize(
    ("label", "days", "message"),
    [("has space", 0, "A token label is"), ("x" * 41, 0, "A token label is"),
     ("-dash", 0, "A token label is"), ("ci-bot\n", 0, "A token label is"),
     ("ok", -1, "0 \\(no expiry\\) to 3650 days"),
     ("ok", 3651, "0 \\(no expiry\\) to 3650 days")],
)
def test_bad_labels_and_lifetimes_are_refused(store, redis_client, label, days, message):
    with pytest.raises(AccountError, match=message):
        store.new_token("alice", label, days)
    assert redis_client.keys(keys.token("*")) == []


def test_the_token_index_forgets_records_redis_dropped(store, redis_client):
    gone = store.new_token("alice", "old", days=1)
    redis_client.delete(keys.token(token_hash(gone)))  # as when its EX runs out
    kept = store.new_token("alice")
    assert redis_client.smembers(keys.user_tokens("alice")) == {token_hash(kept)}


# --- API tokens over HTTP and the CLI --------------------------------------------------


def test_the_api_tells_an_expired_token_from_an_unknown_one(client, redis_client):
    store = UserStore(redis_client)
    store.create("alice", PASSWORD)
    token = store.new_token("alice", "ci-bot", days=1)
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get(API + "/stats", headers=headers).status_code == 200
    # A day later: the stored expiry is in the past.
    redis_client.hset(keys.token(token_hash(token)), "expires", repr(time.time() - 60))
    response = client.get(API + "/stats", headers=headers)
    assert response.status_code == 401
    error = response.get_json()["error"]
    assert error["code"] == "token_expired"
    assert f"id {token_id(token)}" in error["message"] and "expired on" in error["message"]
    unknown = client.get(API + "/stats", headers={"Authorization": "Bearer not-a-token"})
    assert unknown.status_code == 401
    assert unknown.get_json()["error"]["code"] == "unauthorized"


def test_cli_mints_lists_and_revokes_one_token(make_app, redis_client):
    app = make_app(API_TOKEN_DAYS=7)
    store = UserStore(redis_client)
    store.create("alice", PASSWORD)
    runner = app.test_cli_runner()
    minted = runner.invoke(args=["users", "token", "alice", "--label", "ci-bot"])
    assert minted.exit_code == 0, minted.output
    ci = minted.stdout.strip()  # the token alone on stdout, for TOKEN=$(...)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", ci)
    assert f"Token {token_id(ci)} (ci-bot) for 'alice', expires: " in minted.stderr
    assert store.tokens("alice")[0].expires == pytest.approx(time.time() + 7 * DAY, abs=60)
    forever = runner.invoke(args=["users", "token", "alice", "--expires-days", "0"])
    assert "expires: never" in forever.stderr
    dashboard = forever.stdout.strip()
    store.by_token(dashboard)

    listing = runner.invoke(args=["users", "tokens", "alice"])
    assert listing.exit_code == 0, listing.output
    lines = listing.stdout.splitlines()
    assert lines[0] == "id\tlabel\tcreated\tlast used\texpires"
    rows = {line.split("\t")[0]: line.split("\t") for line in lines[1:]}
    assert rows[token_id(ci)][1] == "ci-bot" and rows[token_id(ci)][3] == "never"
    assert rows[token_id(ci)][4].endswith(" UTC")
    assert rows[token_id(dashboard)][1:5:3] == ["-", "never"]  # no label, no expiry
    assert rows[token_id(dashboard)][3].endswith(" UTC")  # it was used
    assert ci not in listing.output and dashboard not in listing.output

    revoked = runner.invoke(args=["users", "revoke-token", "alice", "ci-bot"])
    assert revoked.exit_code == 0, revoked.output
    assert f"Revoked token {token_id(ci)} (ci-bot) of 'alice'." in revoked.output
    assert store.by_token(ci) is None and store.by_token(dashboard).name == "alice"
    assert runner.invoke(args=["users", "revoke-tokens", "alice"]).output.startswith(
        "Revoked 1 token(s)"
    )
    assert "'alice' has no API tokens." in runner.invoke(args=["users", "tokens", "alice"]).output


def test_cli_marks_expired_tokens_in_the_listing(app, redis_client):
    store = UserStore(redis_client)
    store.create("alice", PASSWORD)
    token = store.new_token("alice", "old", days=1)
    redis_client.hset(keys.token(token_hash(token)), "expires", repr(time.time() - 60))
    listing = app.test_cli_runner().invoke(args=["users", "tokens", "alice"])
    assert listing.stdout.splitlines()[1].endswith(" UTC (expired)")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["users", "token", "alice", "--label", "two words"], "A token label is"),
        (["users", "token", "alice", "--expires-days", "-3"], "--expires-days"),
        (["users", "token", "alice", "--expires-days", "9999"], "--expires-days"),
        (["users", "tokens", "nobody"], "There is no account named 'nobody'"),
        (["users", "revoke-token", "alice", "nope"], "no token with the id or label 'nope'"),
        (["users", "revoke-token", "nobody", "x"], "There is no account named 'nobody'"),
    ],
)
def test_cli_token_errors_exit_non_zero_with_a_message(app, redis_client, args, message):
    UserStore(redis_client).create("alice", PASSWORD)
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code != 0 and message in result.output
    assert redis_client.keys(keys.token("*")) == []


# --- browser sessions: the idle limit -------------------------------------------------


def test_a_session_slides_its_idle_deadline_with_use(store, clock, redis_client):
    session_id = store.start_session("alice", ttl=31 * DAY)
    started = clock.now
    clock.advance(30)
    assert store.by_session(session_id).name == "alice"
    assert float(record(redis_client, session_id, keys.session)["seen"]) == started  # no write
    for _ in range(5):  # used every 50 minutes: never an hour idle
        clock.advance(50 * 60)
        assert store.by_session(session_id).name == "alice"
    assert float(record(redis_client, session_id, keys.session)["seen"]) == clock.now
    assert redis_client.ttl(keys.session(token_hash(session_id))) > 30 * DAY  # absolute stays


def test_a_session_idle_too_long_ends(store, clock, redis_client):
    session_id = store.start_session("alice", ttl=31 * DAY)
    other = store.start_session("alice", ttl=31 * DAY)
    clock.advance(3600 + 1)
    with pytest.raises(SessionIdle):
        store.by_session(session_id)
    assert redis_client.exists(keys.session(token_hash(session_id))) == 0
    assert token_hash(session_id) not in redis_client.smembers(keys.user_sessions("alice"))
    assert store.by_session(session_id) is None  # ended, not idle again
    with pytest.raises(SessionIdle):  # the other browser idled just as long
        store.by_session(other)


def test_no_idle_limit_when_it_is_off(redis_client, clock):
    store = UserStore(redis_client, session_idle=0, clock=clock)
    store.create("alice", PASSWORD)
    session_id = store.start_session("alice", ttl=31 * DAY)
    clock.advance(30 * DAY)
    assert store.by_session(session_id).name == "alice"


def test_a_session_stored_in_the_old_format_keeps_working(store, clock, redis_client):
    # Before idle limits, a session's record was a string holding the account name.
    session_id = "a-browser-session-from-before-idle-limits-0123456789"
    key = keys.session(token_hash(session_id))
    redis_client.set(key, "alice", ex=5 * DAY)
    assert store.by_session(session_id).name == "alice"
    assert redis_client.type(key) == "hash"
    assert 5 * DAY - 5 < redis_client.ttl(key) <= 5 * DAY  # same absolute end
    clock.advance(3600 + 1)
    with pytest.raises(SessionIdle):
        store.by_session(session_id)
    legacy = "another-session-from-before-idle-limits-0123456789"
    redis_client.set(keys.session(token_hash(legacy)), "alice", ex=DAY)
    store.end_session(legacy)  # logout of an old-format session
    assert redis_client.exists(keys.session(token_hash(legacy))) == 0


# --- the idle limit in the browser's requests ------------------------------------------


def idle_for(redis_client, seconds: float) -> None:
    """Make every session look unused for ``seconds`` (as if the browser was left)."""
    for key in redis_client.keys(keys.session("*")):
        redis_client.hset(key, "seen", repr(time.time() - seconds))


@pytest.fixture
def alice(redis_client, monkeypatch):
    reuse_password_hashes(monkeypatch)
    UserStore(redis_client).create("alice", PASSWORD)


def test_an_idle_session_lands_on_login_saying_why_and_returns(client, alice, redis_client):
    assert log_in(client, "alice").status_code == 303
    assert client.get("/moderate/?sort=age").status_code == 200
    idle_for(redis_client, 59 * 60)  # the default limit is an hour
    assert client.get("/moderate/?sort=age").status_code == 200
    idle_for(redis_client, 61 * 60)
    response = client.get("/moderate/?sort=age")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/moderate/?sort%3Dage"
    assert redis_client.keys(keys.session("*")) == []
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "You were logged out after 1 hour without activity." in page
    assert "not carried out" not in page
    back = client.post("/login", data={"name": "alice", "password": PASSWORD,
                                       "csrf_token": csrf_token(page),
                                       "next": "/moderate/?sort=age"})
    assert back.status_code == 303 and back.headers["Location"] == "/moderate/?sort=age"
    assert "logged out" not in client.get("/moderate/").get_data(as_text=True)  # said once


@pytest.mark.parametrize(("hours", "settings"), [(31 * 24, {}), (8, {"SESSION_MAX_HOURS": 8})])
def test_a_login_lasts_at_most_session_max_hours(make_app, alice, redis_client, hours,
                                                 settings):
    client = make_app(**settings).test_client()
    assert log_in(client, "alice").status_code == 303
    (session_key,) = redis_client.keys(keys.session("*"))
    assert hours * 3600 - 60 < redis_client.ttl(session_key) <= hours * 3600


def test_a_form_sent_after_idling_returns_to_its_page_and_is_not_carried_out(
    make_app, alice, redis_client
):
    client = make_app(SESSION_IDLE_MINUTES=15).test_client()
    comment = held(redis_client)
    log_in(client, "alice")
    page = client.get("/moderate/?sort=age").get_data(as_text=True)
    idle_for(redis_client, 16 * 60)
    response = client.post(
        "/moderate/act",
        data={"csrf_token": csrf_token(page), "do": f"approve|{comment.id}", "back": "sort=age"},
        headers={"Referer": "http://localhost/moderate/?sort=age"},
    )
    # Back to the queue it was sent from; before, to "/moderate/act", a 405 after login.
    assert response.headers["Location"] == "/login?next=/moderate/?sort%3Dage"
    assert redis_client.hget(keys.comment(comment.id), "status") == "held"
    login_page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "logged out after 15 minutes without activity" in login_page
    assert "What you last sent was not carried out." in login_page


@pytest.mark.parametrize(("idle_minutes", "carried_out"), [(60, False), (240, True)])
def test_a_page_open_as_long_as_the_session_may_idle_can_still_decide(
    make_app, alice, redis_client, monkeypatch, idle_minutes, carried_out
):
    """Its CSRF token lasts as long as the session may idle (at least Flask-WTF's hour)."""
    client = make_app(SESSION_IDLE_MINUTES=idle_minutes).test_client()
    comment = held(redis_client)
    log_in(client, "alice")
    page = client.get("/moderate/").get_data(as_text=True)
    two_hours_later = int(time.time()) + 2 * 3600
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: two_hours_later)
    idle_for(redis_client, 0)  # as if the moderator had just been active elsewhere
    client.post("/moderate/act", data={"csrf_token": csrf_token(page),
                                        "do": f"approve|{comment.id}", "back": ""})
    status = redis_client.hget(keys.comment(comment.id), "status")
    assert status == ("published" if carried_out else "held")


@pytest.mark.parametrize(
    "referrer", [None, "http://elsewhere.example/moderate/", "http://localhost//evil.example/"]
)
def test_a_form_posted_from_elsewhere_goes_to_the_login_page_alone(client, referrer):
    headers = {"Referer": referrer} if referrer else {}
    page = client.get("/login").get_data(as_text=True)
    response = client.post(
        "/moderate/act", data={"csrf_token": csrf_token(page), "do": "approve|x"},
        headers=headers,
    )
    assert response.status_code == 302 and response.headers["Location"] == "/login"
