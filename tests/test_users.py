"""Accounts, passwords, tokens and the `flask users` CLI, against a real Redis."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from flask.cli import FlaskGroup, ScriptInfo
from modhelpers import PASSWORD

from moderation import keys
from moderation.embedded_redis import EmbeddedRedis
from moderation.users import AccountError, UserStore, token_hash


@pytest.fixture
def store(redis_client):
    return UserStore(redis_client)


def test_create_and_authenticate(store, redis_client):
    user = store.create("alice", PASSWORD, "moderator")
    assert (user.name, user.role) == ("alice", "moderator")
    stored = redis_client.hgetall(keys.user("alice"))
    assert PASSWORD not in str(stored)
    assert stored["password_hash"].startswith("scrypt:")
    assert store.authenticate("alice", PASSWORD) == user
    assert store.authenticate("alice", PASSWORD + "x") is None
    assert store.authenticate("nobody", PASSWORD) is None
    assert store.authenticate("Bad Name!", PASSWORD) is None


@pytest.mark.parametrize(
    ("name", "password", "role", "message"),
    [
        ("", PASSWORD, "moderator", "A name is"),
        ("Alice", PASSWORD, "moderator", "A name is"),
        ("a:b", PASSWORD, "moderator", "A name is"),
        ("bob", "short", "moderator", "8 to 1000 characters"),
        # The login form reads 1,000 characters: a longer password could never log in.
        ("bob", "x" * 1001, "moderator", "8 to 1000 characters"),
        ("bob", PASSWORD, "admin", "Unknown role"),
        # "$" also matches before a final newline: `users create $'bob\n'` made an
        # account whose name nobody could type into the login form.
        ("bob\n", PASSWORD, "moderator", "A name is"),
    ],
)
def test_bad_accounts_are_refused(store, redis_client, name, password, role, message):
    with pytest.raises(AccountError, match=message):
        store.create(name, password, role)
    assert redis_client.keys("*") == []


def test_duplicate_account_is_refused_and_untouched(store):
    store.create("alice", PASSWORD)
    with pytest.raises(AccountError, match="already exists"):
        store.create("alice", "another password", "operator")
    assert store.get("alice").role == "moderator"
    assert store.authenticate("alice", PASSWORD) is not None


def test_roles(store):
    moderator = store.create("mo", PASSWORD, "moderator")
    operator = store.create("op", PASSWORD, "operator")
    assert moderator.can("moderator") and not moderator.can("operator")
    assert operator.can("moderator") and operator.can("operator")


def test_tokens_are_stored_only_as_hashes(store, redis_client):
    store.create("alice", PASSWORD)
    token = store.new_token("alice")
    assert len(token) >= 40
    assert token not in str({k: redis_client.type(k) for k in redis_client.keys("*")})
    assert redis_client.hget(keys.token(token_hash(token)), "name") == "alice"
    assert all(token not in str(redis_client.hgetall(k)) for k in redis_client.keys("*")
               if redis_client.type(k) == "hash")
    assert store.by_token(token).name == "alice"
    assert store.by_token(token + "x") is None
    assert store.by_token("") is None
    assert store.revoke_tokens("alice") == 1
    assert store.by_token(token) is None
    with pytest.raises(AccountError):
        store.new_token("nobody")


def test_cli_create_token_list(app, redis_client):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["users", "create", "olga", "--role", "operator", "--password", PASSWORD]
    )
    assert result.exit_code == 0, result.output
    assert "Created operator 'olga'" in result.output
    result = runner.invoke(args=["users", "token", "olga"])
    assert result.exit_code == 0
    token = result.stdout.strip()  # the token alone, for TOKEN=$(...); the rest on stderr
    assert UserStore(redis_client).by_token(token).role == "operator"
    assert "olga\toperator" in runner.invoke(args=["users", "list"]).output


def test_cli_prompts_for_the_password(app, redis_client):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "create", "mo"], input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert UserStore(redis_client).authenticate("mo", PASSWORD) is not None


@pytest.mark.parametrize(
    "args",
    [
        ["users", "create", "mo", "--password", "short"],
        ["users", "create", "mo", "--role", "admin", "--password", PASSWORD],
        ["users", "token", "nobody"],
    ],
)
def test_cli_errors_exit_non_zero_with_a_message(app, redis_client, args):
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code != 0
    assert "Error" in result.output
    assert redis_client.keys(keys.user("*")) == []


@pytest.mark.parametrize(
    ("name", "message"), [("alice", "already exists"), ("Not A Name", "A name is")]
)
def test_cli_refuses_a_taken_or_bad_name_before_asking_for_a_password(
    app, store, name, message
):
    store.create("alice", PASSWORD)
    result = app.test_cli_runner().invoke(args=["users", "create", name], input="")
    assert result.exit_code != 0
    assert message in result.output and "Password" not in result.output
    assert store.authenticate("alice", PASSWORD) is not None


def flask_command(*args: str, redis_url: str, models_dir, tmp_path, **env: str):
    """``flask --app moderation ARGS`` in a fresh interpreter, as an operator types it."""
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "moderation", *args],
        env={**os.environ, "REDIS_URL": redis_url, "MODELS_DIR": str(models_dir),
             "MODERATION_VAR_DIR": str(tmp_path / "var"), **env},
        cwd=Path(__file__).parent.parent, capture_output=True, text=True, timeout=120,
        check=False,
    )


def test_cli_commands_do_not_log_start_up_info_unless_log_level_asks(
    redis_url, redis_client, models_dir, tmp_path, monkeypatch
):
    monkeypatch.delenv("LOG_LEVEL", raising=False)
    UserStore(redis_client).create("olga", PASSWORD, "operator")
    quiet = flask_command("users", "list", redis_url=redis_url, models_dir=models_dir,
                          tmp_path=tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout == "olga\toperator\n" and quiet.stderr == ""
    # The same start-up (no voice library in a fresh VAR_DIR) logs at INFO when asked to.
    loud = flask_command("users", "list", redis_url=redis_url, models_dir=models_dir,
                         tmp_path=tmp_path, LOG_LEVEL="INFO")
    assert loud.returncode == 0 and " INFO moderation.captcha_audio: " in loud.stderr


@pytest.mark.parametrize(
    ("command", "log_level", "expected"),
    [
        ("flask", "", logging.WARNING),  # `flask users ...`: warnings and errors still show
        ("flask", "DEBUG", logging.DEBUG),  # LOG_LEVEL, when set, wins
        ("run", "", logging.INFO),  # `flask run` serves: its logs are the service's
        (None, "", logging.INFO),  # gunicorn, tests: no click command at all
    ],
)
def test_log_level_of_the_app_by_who_builds_it(make_app, command, log_level, expected):
    moderation_log = logging.getLogger("moderation")
    before = moderation_log.level
    try:
        if command is None:
            make_app(LOG_LEVEL=log_level)
        else:
            with click.Context(FlaskGroup(), info_name=command, obj=ScriptInfo()):
                make_app(LOG_LEVEL=log_level)
        assert moderation_log.getEffectiveLevel() == expected
    finally:
        moderation_log.setLevel(before)


@pytest.mark.parametrize(
    "args",
    [("users", "list"), ("users", "create", "mo", "--password", PASSWORD), ("users", "token", "mo"),
     ("purge",)],
)
def test_cli_commands_say_in_one_line_that_redis_does_not_answer(args, models_dir, tmp_path):
    """They printed a 60-line redis-py traceback (from cron, for purge, every day)."""
    server = EmbeddedRedis(tmp_path / "redis")
    url = server.start()
    server.stop()
    result = flask_command(*args, redis_url=url, models_dir=models_dir, tmp_path=tmp_path)
    assert result.returncode == 1
    assert f"Error: cannot reach Redis at {url}: " in result.stderr
    assert "Traceback" not in result.stderr


def test_sessions_are_stored_only_as_hashes_and_end(store, redis_client):
    store.create("mia", PASSWORD)
    session_id = store.start_session("mia", ttl=3600)
    assert store.by_session(session_id).name == "mia"
    assert not any(session_id in key for key in redis_client.keys("*"))
    assert 3500 < redis_client.ttl(keys.session(token_hash(session_id))) <= 3600
    assert store.by_session(session_id + "x") is None
    assert store.by_session("") is None
    store.end_session(session_id)
    assert store.by_session(session_id) is None
    assert redis_client.keys(keys.session("*")) == []


def test_the_sessions_index_keeps_only_live_sessions(store, redis_client):
    # mod:user:{name}:sessions only expired a session lifetime after the *last* login,
    # and neither logout nor a session running out took its hash out: a moderator who
    # logs in daily (sessions last 31 days) added one hash a day, forever (seen by
    # listing the keys after logins and logouts in the ops pass).
    store.create("mia", PASSWORD)
    ended = [store.start_session("mia", ttl=3600) for _ in range(3)]
    for session_id in ended:
        store.end_session(session_id)
    assert redis_client.smembers(keys.user_sessions("mia")) == set()
    lapsed = store.start_session("mia", ttl=3600)
    redis_client.delete(keys.session(token_hash(lapsed)))  # as when its EX runs out
    live = store.start_session("mia", ttl=3600)
    assert redis_client.smembers(keys.user_sessions("mia")) == {token_hash(live)}
    assert store.by_session(live).name == "mia"
    assert store.end_sessions("mia") == 1


def test_cli_end_sessions(app, redis_client):
    store = UserStore(redis_client)
    store.create("olga", PASSWORD, "operator")
    session_id = store.start_session("olga", ttl=3600)
    result = app.test_cli_runner().invoke(args=["users", "end-sessions", "olga"])
    assert result.exit_code == 0, result.output
    assert "Ended 1 session(s) of 'olga'" in result.output
    assert store.by_session(session_id) is None


def test_a_deleted_account_leaves_nothing_a_new_one_of_that_name_inherits(app, redis_client):
    # Without a delete command a moderator who left could only be removed by hand, and
    # the name's old tokens then opened a new account given the same name.
    store = UserStore(redis_client)
    store.create("leo", PASSWORD)
    token, session_id = store.new_token("leo"), store.start_session("leo", ttl=3600)
    runner = app.test_cli_runner()
    refused = runner.invoke(args=["users", "delete", "leo"], input="n\n")
    assert refused.exit_code != 0 and store.get("leo") is not None  # asked, and kept

    result = runner.invoke(args=["users", "delete", "leo"], input="y\n")
    assert result.exit_code == 0, result.output
    assert "1 token(s) revoked, 1 session(s) ended" in result.output
    assert store.get("leo") is None and store.by_token(token) is None
    assert store.by_session(session_id) is None
    assert "leo" not in runner.invoke(args=["users", "list"]).output

    store.create("leo", PASSWORD + "!")
    assert store.by_token(token) is None and store.by_session(session_id) is None
    assert runner.invoke(args=["users", "delete", "nobody", "--yes"]).exit_code != 0


def test_cli_set_password_ends_browser_sessions(app, redis_client):
    store = UserStore(redis_client)
    store.create("ana", PASSWORD)
    session_id, token = store.start_session("ana", ttl=3600), store.new_token("ana")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "set-password", "ana"],
                           input="a brand new secret\na brand new secret\n")
    assert result.exit_code == 0, result.output
    assert store.authenticate("ana", "a brand new secret") is not None
    assert store.authenticate("ana", PASSWORD) is None
    assert store.by_session(session_id) is None and store.by_token(token) is not None
    short = runner.invoke(args=["users", "set-password", "ana", "--password", "short"])
    assert short.exit_code != 0 and "8 to 1000 characters" in short.output
    missing = runner.invoke(args=["users", "set-password", "nobody", "--password", PASSWORD])
    assert missing.exit_code != 0 and "no account named 'nobody'" in missing.output
