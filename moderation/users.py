"""Moderator and operator accounts in Redis, their passwords and bearer API tokens.

Passwords are hashed with werkzeug's ``generate_password_hash`` (scrypt from
``hashlib``); a bearer token is shown once when created and only its SHA-256 is
stored, so a copy of the database does not let anyone in. A browser's login is
kept the same way: the signed session cookie carries a random session id, Redis
only its SHA-256, and logout deletes it, so a copy of the cookie dies with it.

CLI (registered by :func:`init_app`)::

    flask --app moderation users create NAME --role moderator [--password PW]
    flask --app moderation users token NAME
    flask --app moderation users end-sessions NAME
    flask --app moderation users set-password NAME
    flask --app moderation users delete NAME [--yes]
    flask --app moderation users list
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import click
import redis
from flask import Flask, current_app
from flask.cli import AppGroup
from werkzeug.security import check_password_hash, generate_password_hash

from . import keys
from .redis_store import cli_redis_errors

MODERATOR = "moderator"
OPERATOR = "operator"
#: Each role and the roles it includes: an operator can do everything a moderator can.
ROLES: dict[str, frozenset[str]] = {
    MODERATOR: frozenset({MODERATOR}),
    OPERATOR: frozenset({MODERATOR, OPERATOR}),
}

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,39}$")
MIN_PASSWORD = 8
#: The login form reads at most this much of a password (a bound on the hashing work
#: a stranger can ask for), so no account may have a longer one.
MAX_PASSWORD = 1000


@cache
def _dummy_hash() -> str:
    """Checked for unknown names, so a wrong name costs as long as a wrong password."""
    return generate_password_hash(secrets.token_hex(16))


class AccountError(ValueError):
    """A bad name, role or password, or a clash with an existing account."""


@dataclass(frozen=True)
class User:
    name: str
    role: str

    def can(self, role: str) -> bool:
        """Whether this account may act in ``role``."""
        return role in ROLES.get(self.role, frozenset())


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _digest(secret: str | None) -> str | None:
    """The stored hash of a token or session id; None for one no server ever issued
    (empty, or far longer than ours: not worth hashing)."""
    return token_hash(secret) if secret and len(secret) <= 200 else None


def check_password(password: str | None) -> None:
    if not MIN_PASSWORD <= len(password or "") <= MAX_PASSWORD:
        raise AccountError(
            f"A password needs {MIN_PASSWORD} to {MAX_PASSWORD} characters."
        )


class UserStore:
    """Accounts on one Redis connection (``decode_responses=True``)."""

    def __init__(self, connection: redis.Redis) -> None:
        self.connection = connection

    def check_new(self, name: str, role: str = MODERATOR) -> None:
        """Raise AccountError unless an account ``name`` with ``role`` could be created now.

        Lets the CLI refuse before asking for a password; :meth:`create` still
        refuses atomically if the name is taken in between.
        """
        if not NAME_RE.match(name or ""):
            raise AccountError(
                "A name is 1-40 characters: lower-case letters, digits, '_', '.', '-'."
            )
        if role not in ROLES:
            raise AccountError(f"Unknown role '{role}': use {' or '.join(ROLES)}.")
        if self.connection.exists(keys.user(name)):
            raise AccountError(f"An account named '{name}' already exists.")

    def create(self, name: str, password: str, role: str = MODERATOR) -> User:
        self.check_new(name, role)
        check_password(password)
        data = {
            "name": name,
            "role": role,
            "password_hash": generate_password_hash(password),
            "created": str(time.time()),
        }
        # HSETNX on the name field makes "create" refuse to overwrite an account atomically.
        if not self.connection.hsetnx(keys.user(name), "name", name):
            raise AccountError(f"An account named '{name}' already exists.")
        with self.connection.pipeline(transaction=True) as pipe:
            pipe.hset(keys.user(name), mapping=data)
            pipe.sadd(keys.USERS, name)
            pipe.execute()
        return User(name=name, role=role)

    def require(self, name: str) -> User:
        user = self.get(name)
        if user is None:
            raise AccountError(f"There is no account named '{name}'.")
        return user

    def get(self, name: str) -> User | None:
        if not NAME_RE.match(name or ""):
            return None
        name_, role = self.connection.hmget(keys.user(name), "name", "role")
        if not name_ or role not in ROLES:
            return None
        return User(name=name_, role=role)

    def all(self) -> list[User]:
        return [
            user
            for name in sorted(self.connection.smembers(keys.USERS))
            if (user := self.get(name))
        ]

    def authenticate(self, name: str, password: str) -> User | None:
        """The account if the password is right, else None (same work either way)."""
        stored = None
        if NAME_RE.match(name or ""):
            stored = self.connection.hget(keys.user(name), "password_hash")
        if not check_password_hash(stored or _dummy_hash(), password or "") or stored is None:
            return None
        return self.get(name)

    def set_password(self, name: str, password: str) -> None:
        self.require(name)
        check_password(password)
        self.connection.hset(keys.user(name), "password_hash", generate_password_hash(password))
        self.end_sessions(name)  # whoever knew the old password is logged out

    def new_token(self, name: str) -> str:
        """A fresh bearer token for the account; shown once, only its hash is kept."""
        self.require(name)
        token = secrets.token_urlsafe(32)
        digest = token_hash(token)
        with self.connection.pipeline(transaction=True) as pipe:
            pipe.set(keys.token(digest), name)
            pipe.sadd(keys.user_tokens(name), digest)
            pipe.execute()
        return token

    def delete(self, name: str) -> tuple[int, int]:
        """Remove the account; returns (tokens revoked, sessions ended).

        The account goes first, so its tokens and sessions stop working at once (each
        lookup needs the account); they are then deleted, so a new account given the
        same name later does not inherit them. Past decisions keep the name.
        """
        self.require(name)
        with self.connection.pipeline(transaction=True) as pipe:
            pipe.delete(keys.user(name))
            pipe.srem(keys.USERS, name)
            pipe.execute()
        return self.revoke_tokens(name), self.end_sessions(name)

    def _owner(self, key: Callable[[str], str], secret: str) -> User | None:
        """The account a token or session id belongs to (only its hash is stored)."""
        digest = _digest(secret)
        name = self.connection.get(key(digest)) if digest else None
        return self.get(name) if name else None

    def _forget_all(self, listed_in: str, key: Callable[[str], str]) -> list[int]:
        """Delete every hashed secret listed in the set ``listed_in``, and the set;
        one 1 or 0 per secret for whether it was still there."""
        digests = list(self.connection.smembers(listed_in))
        with self.connection.pipeline(transaction=True) as pipe:
            for digest in digests:
                pipe.delete(key(digest))
            pipe.delete(listed_in)
            return pipe.execute()[: len(digests)]

    def revoke_tokens(self, name: str) -> int:
        return len(self._forget_all(keys.user_tokens(name), keys.token))

    def by_token(self, token: str) -> User | None:
        return self._owner(keys.token, token)

    def start_session(self, name: str, ttl: int) -> str:
        """A new browser session id for the account, valid ``ttl`` seconds.

        Only its hash is kept, like a token's."""
        session_id = secrets.token_urlsafe(32)
        digest = token_hash(session_id)
        with self.connection.pipeline(transaction=True) as pipe:
            pipe.set(keys.session(digest), name, ex=ttl)
            pipe.sadd(keys.user_sessions(name), digest)
            # Every member is at most ttl old, so the set may go ttl after the last login.
            pipe.expire(keys.user_sessions(name), ttl)
            pipe.execute()
        self._forget_lapsed_sessions(name)
        return session_id

    def _forget_lapsed_sessions(self, name: str) -> None:
        """Take the hashes of sessions that ran out off the account's index.

        The index's EX only comes a lifetime after the *last* login, so a moderator who
        logs in more often than that would otherwise add one hash per login forever.
        A session's key is written before its hash joins the index, so a login racing
        this one is never taken off.
        """
        index = keys.user_sessions(name)
        digests = list(self.connection.smembers(index))
        with self.connection.pipeline(transaction=False) as pipe:
            for digest in digests:
                pipe.exists(keys.session(digest))
            alive = pipe.execute()
        lapsed = [digest for digest, live in zip(digests, alive, strict=True) if not live]
        if lapsed:
            self.connection.srem(index, *lapsed)

    def by_session(self, session_id: str) -> User | None:
        return self._owner(keys.session, session_id)

    def end_session(self, session_id: str) -> None:
        """Log one browser out: its session and its hash in the account's index go."""
        digest = _digest(session_id)
        if digest is None:
            return
        with self.connection.pipeline(transaction=True) as pipe:  # GETDEL needs Redis 6.2
            pipe.get(keys.session(digest))
            pipe.delete(keys.session(digest))
            name, _ = pipe.execute()
        if name:
            self.connection.srem(keys.user_sessions(name), digest)

    def end_sessions(self, name: str) -> int:
        """Log the account out of every browser; returns how many sessions were live."""
        return sum(self._forget_all(keys.user_sessions(name), keys.session))


def get_users() -> UserStore:
    return current_app.extensions["users"]


users_cli = AppGroup("users", help="Manage moderator and operator accounts.")


@users_cli.command("create")
@click.argument("name")
@click.option(
    "--role",
    type=click.Choice(sorted(ROLES)),
    default=MODERATOR,
    show_default=True,
    help="moderator: works the queue; operator: also undoes decisions.",
)
@click.option(
    "--password",
    help=f"{MIN_PASSWORD} to {MAX_PASSWORD} characters; prompted for when left out.",
)
@cli_redis_errors
def create_command(name: str, role: str, password: str | None) -> None:
    """Create the account NAME."""
    try:
        # Prompted for here, not by click while parsing, so that a taken or bad name
        # is refused before anyone types a password twice.
        get_users().check_new(name, role)
        if password is None:
            password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
        user = get_users().create(name, password, role)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Created {user.role} '{user.name}'.")


@users_cli.command("token")
@click.argument("name")
@cli_redis_errors
def token_command(name: str) -> None:
    """Print a new bearer API token for NAME (shown only this once)."""
    try:
        token = get_users().new_token(name)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(token)


@users_cli.command("revoke-tokens")
@click.argument("name")
@cli_redis_errors
def revoke_command(name: str) -> None:
    """Revoke every API token of NAME."""
    click.echo(f"Revoked {get_users().revoke_tokens(name)} token(s) of '{name}'.")


@users_cli.command("end-sessions")
@click.argument("name")
@cli_redis_errors
def end_sessions_command(name: str) -> None:
    """Log NAME out of every browser (the API tokens are left alone)."""
    click.echo(f"Ended {get_users().end_sessions(name)} session(s) of '{name}'.")


@users_cli.command("set-password")
@click.argument("name")
@click.option("--password", help="Prompted for when left out.")
@cli_redis_errors
def set_password_command(name: str, password: str | None) -> None:
    """Give NAME a new password; it is logged out of every browser (tokens stay)."""
    try:
        get_users().require(name)
        if password is None:
            password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
        get_users().set_password(name, password)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Password of '{name}' changed; its browser sessions are ended.")


@users_cli.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@cli_redis_errors
def delete_command(name: str, yes: bool) -> None:
    """Delete the account NAME: its API tokens and browser sessions end at once."""
    try:
        get_users().require(name)
        if not yes:
            click.confirm(f"Delete the account '{name}'?", abort=True)
        tokens, sessions = get_users().delete(name)  # refuses if deleted meanwhile
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Deleted '{name}': {tokens} token(s) revoked, {sessions} session(s) ended; "
               "its past decisions keep its name.")


@users_cli.command("list")
@cli_redis_errors
def list_command() -> None:
    """List accounts and their roles."""
    for user in get_users().all():
        click.echo(f"{user.name}\t{user.role}")


def init_app(app: Flask) -> None:
    """Keep the account store in ``app.extensions`` and register the ``users`` CLI group."""
    app.extensions["users"] = UserStore(app.extensions["redis"])
    app.cli.add_command(users_cli)
