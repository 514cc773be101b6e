"""Moderator and operator accounts in Redis, their passwords and bearer API tokens.

Passwords are hashed with werkzeug's ``generate_password_hash`` (scrypt from
``hashlib``); a bearer token is shown once when created and only its SHA-256 is
stored, so a copy of the database does not let anyone in. A browser's login is
kept the same way: the signed session cookie carries a random session id, Redis
only its SHA-256, and logout deletes it, so a copy of the cookie dies with it.

A token's record (a hash, see ``keys.py``) also keeps its label, when it was made,
when it expires and when it was last used; a session's, when it was last used, so
one left idle for ``session_idle`` seconds ends. Both are looked up by the hash of
the secret (Redis finds the key; no secret is ever compared in Python, so timing
says nothing about it), in one Lua script that also stamps the use, at most once a
minute, so a busy API client costs no extra write per request. Records written
before they were hashes (the bare account name) are turned into hashes on first
use: such a token is unlabelled and never expires.

CLI (registered by :func:`init_app`)::

    flask --app moderation users create NAME --role moderator [--password PW]
    flask --app moderation users token NAME [--label LABEL] [--expires-days N]
    flask --app moderation users tokens NAME
    flask --app moderation users revoke-token NAME ID_OR_LABEL
    flask --app moderation users revoke-tokens NAME
    flask --app moderation users end-sessions NAME
    flask --app moderation users set-password NAME
    flask --app moderation users delete NAME [--yes]
    flask --app moderation users list
"""

from __future__ import annotations

import hashlib
import math
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

NAME_RE = re.compile(r"\A[a-z0-9][a-z0-9_.-]{0,39}\Z")  # \Z: "$" lets a final newline in
MIN_PASSWORD = 8
#: The login form reads at most this much of a password (a bound on the hashing work
#: a stranger can ask for), so no account may have a longer one.
MAX_PASSWORD = 1000

DAY = 24 * 3600
TOKEN_ID_CHARS = 8
#: Longest lifetime a token may be given (``--expires-days``, ``API_TOKEN_DAYS``).
MAX_TOKEN_DAYS = 3650
LABEL_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_.:@-]{0,39}\Z")
#: An expired token's record stays this long, so its owner hears "expired" (not
#: "unknown") and ``users tokens`` still shows it; then Redis drops it (EX).
EXPIRED_TOKEN_KEPT = 30 * DAY
#: A token's last use and a session's last activity are written at most this often:
#: a client sending ten requests a second costs one write a minute, not ten a second.
#: So an idle session may end up to this much before its idle limit is reached.
STAMP_EVERY_SECONDS = 60


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


def token_id(token: str) -> str:
    """The short id a token is listed and revoked by: the start of its SHA-256.

    Not the secret, and not enough of the stored hash to find its key by; whoever
    holds a leaked token can work it out (``sha256sum``) to revoke just that one.
    """
    return token_hash(token)[:TOKEN_ID_CHARS]


def check_password(password: str | None) -> None:
    if not MIN_PASSWORD <= len(password or "") <= MAX_PASSWORD:
        raise AccountError(
            f"A password needs {MIN_PASSWORD} to {MAX_PASSWORD} characters."
        )


def check_label(label: str) -> None:
    if label and not LABEL_RE.match(label):
        raise AccountError(
            "A token label is 1-40 characters: letters, digits, '_', '.', ':', '@', '-'."
        )


_USE = """
-- Read a token or session record and stamp its use (UserStore._use).
-- KEYS[1]: the record. ARGV: now (epoch seconds), the field that stamps use,
-- seconds between stamps (negative: never stamp, only read), idle limit in seconds
-- (0: none). Returns {status, field, value, field, value, ...} with status
-- 'live', 'expired' (past its 'expires'), 'idle' (its stamp older than the limit)
-- or 'none' (no such record). Neither an expired nor an idle record is stamped.
local key = KEYS[1]
local now = tonumber(ARGV[1])
local field = ARGV[2]
local every = tonumber(ARGV[3])
local idle = tonumber(ARGV[4])
local kind = redis.call('TYPE', key)['ok']
if kind == 'string' then
  -- Written before records were hashes: the account name alone. Same key, same
  -- expiry, now a hash, so the rest of the code knows one format.
  local name = redis.call('GET', key)
  local pttl = redis.call('PTTL', key)
  redis.call('DEL', key)
  redis.call('HSET', key, 'name', name)
  if pttl > 0 then redis.call('PEXPIRE', key, pttl) end
elseif kind ~= 'hash' then
  return {'none'}
end
local record = redis.call('HGETALL', key)
local values = {}
for i = 1, #record, 2 do values[record[i]] = record[i + 1] end
local stamp = tonumber(values[field] or '')
local expires = tonumber(values['expires'] or '') or 0
local status = 'live'
if expires > 0 and now >= expires then
  status = 'expired'
elseif idle > 0 and stamp and now - stamp > idle then
  status = 'idle'
elseif every >= 0 and (not stamp or now - stamp >= every) then
  redis.call('HSET', key, field, ARGV[1])
end
local reply = {status}
for i = 1, #record do reply[#reply + 1] = record[i] end
return reply
"""


def _time(value: str | None) -> float | None:
    """An epoch time stored in a record; None when absent, unknown or 0 ("never")."""
    try:
        number = float(value or 0)
    except ValueError:
        return None
    return number if math.isfinite(number) and number > 0 else None


@dataclass(frozen=True)
class Token:
    """What is kept of one API token: never the token, only its hash and the rest."""

    digest: str  # the SHA-256 of the token, its record's key
    label: str  # "" when none was given (and for tokens minted before labels)
    created: float | None  # None: minted before tokens kept their creation time
    expires: float | None  # None: never
    last_used: float | None  # None: not used yet

    @property
    def id(self) -> str:
        return self.digest[:TOKEN_ID_CHARS]

    def expired(self, now: float) -> bool:
        return self.expires is not None and now >= self.expires

    @classmethod
    def from_record(cls, digest: str, record: dict[str, str]) -> Token:
        return cls(
            digest=digest,
            label=record.get("label", ""),
            created=_time(record.get("created")),
            expires=_time(record.get("expires")),
            last_used=_time(record.get("last_used")),
        )


class TokenExpired(Exception):
    """A token that was valid once and has passed its expiry (the API answers 401)."""

    def __init__(self, token: Token) -> None:
        super().__init__(f"token {token.id} expired")
        self.token = token


class SessionIdle(Exception):
    """A browser session unused for longer than the idle limit; it has been ended."""


class UserStore:
    """Accounts on one Redis connection (``decode_responses=True``).

    ``session_idle``: seconds a browser session may go unused before it ends (0: no
    limit). ``clock``: the time in epoch seconds (tests pass their own).
    """

    def __init__(
        self,
        connection: redis.Redis,
        *,
        session_idle: float = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.connection = connection
        self.session_idle = session_idle
        self.clock = clock
        self._use_script = connection.register_script(_USE)

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

    # --- records of tokens and sessions -------------------------------------------

    def _use(
        self, key: str, field: str, idle: float = 0, *, stamp: bool = True
    ) -> tuple[str, dict[str, str]]:
        """A token's or session's record and its status (see ``_USE``), stamping
        ``field`` with the time if it is live and its stamp is a minute old."""
        every = STAMP_EVERY_SECONDS if stamp else -1
        reply = self._use_script(keys=[key], args=[repr(self.clock()), field, every, idle])
        fields = reply[1:]
        return reply[0], dict(zip(fields[::2], fields[1::2], strict=True))

    def _forget_all(self, listed_in: str, key: Callable[[str], str]) -> list[int]:
        """Delete every hashed secret listed in the set ``listed_in``, and the set;
        one 1 or 0 per secret for whether it was still there."""
        digests = list(self.connection.smembers(listed_in))
        with self.connection.pipeline(transaction=True) as pipe:
            for digest in digests:
                pipe.delete(key(digest))
            pipe.delete(listed_in)
            return pipe.execute()[: len(digests)]

    def _forget_lapsed(self, index: str, key: Callable[[str], str]) -> None:
        """Take the hashes of records that ran out (EX) off an account's index.

        Without this, a moderator who logs in daily would add one session hash a
        day to the index, forever. A record is written before its hash joins the
        index, so one being created at the same time is never taken off.
        """
        digests = list(self.connection.smembers(index))
        with self.connection.pipeline(transaction=False) as pipe:
            for digest in digests:
                pipe.exists(key(digest))
            alive = pipe.execute()
        lapsed = [digest for digest, live in zip(digests, alive, strict=True) if not live]
        if lapsed:
            self.connection.srem(index, *lapsed)

    # --- bearer API tokens --------------------------------------------------------

    def new_token(self, name: str, label: str = "", days: int = 0) -> str:
        """A fresh bearer token for the account, valid ``days`` days (0: no expiry);
        shown once, only its hash is kept."""
        self.require(name)
        check_label(label)
        if not 0 <= days <= MAX_TOKEN_DAYS:
            raise AccountError(f"A token lives 0 (no expiry) to {MAX_TOKEN_DAYS} days.")
        token = secrets.token_urlsafe(32)
        digest = token_hash(token)
        now = self.clock()
        record = {"name": name, "label": label, "created": repr(now),
                  "expires": repr(now + days * DAY) if days else "0"}
        with self.connection.pipeline(transaction=True) as pipe:
            pipe.hset(keys.token(digest), mapping=record)
            if days:
                pipe.expire(keys.token(digest), days * DAY + EXPIRED_TOKEN_KEPT)
            pipe.sadd(keys.user_tokens(name), digest)
            pipe.execute()
        self._forget_lapsed(keys.user_tokens(name), keys.token)
        return token

    def by_token(self, token: str) -> User | None:
        """The account a bearer token belongs to; None for an unknown or revoked one.

        Raises :class:`TokenExpired` for one past its expiry. Stamps its last use.
        """
        digest = _digest(token)
        if digest is None:
            return None
        status, record = self._use(keys.token(digest), "last_used")
        user = self.get(record["name"]) if record.get("name") else None
        if user is None:
            return None
        if status == "expired":
            raise TokenExpired(Token.from_record(digest, record))
        return user

    def tokens(self, name: str) -> list[Token]:
        """The account's tokens, oldest first (expired ones until Redis drops them)."""
        self.require(name)
        index = keys.user_tokens(name)
        self._forget_lapsed(index, keys.token)
        found = []
        for digest in self.connection.smembers(index):
            status, record = self._use(keys.token(digest), "last_used", stamp=False)
            if status != "none":
                found.append(Token.from_record(digest, record))
        return sorted(found, key=lambda token: (token.created or 0, token.digest))

    def revoke_token(self, name: str, id_or_label: str) -> Token:
        """Revoke one token of the account, named by its id or its label."""
        tokens = self.tokens(name)
        matches = [token for token in tokens if token.id == id_or_label] or [
            token for token in tokens if id_or_label and token.label == id_or_label
        ]
        if not matches:
            raise AccountError(
                f"'{name}' has no token with the id or label '{id_or_label}' "
                f"(`users tokens {name}` lists them)."
            )
        if len(matches) > 1:
            ids = ", ".join(token.id for token in matches)
            raise AccountError(
                f"{len(matches)} tokens of '{name}' are labelled '{id_or_label}': "
                f"revoke one by its id ({ids})."
            )
        token = matches[0]
        with self.connection.pipeline(transaction=True) as pipe:
            pipe.delete(keys.token(token.digest))
            pipe.srem(keys.user_tokens(name), token.digest)
            pipe.execute()
        return token

    def revoke_tokens(self, name: str) -> int:
        return len(self._forget_all(keys.user_tokens(name), keys.token))

    # --- browser sessions ---------------------------------------------------------

    def start_session(self, name: str, ttl: int) -> str:
        """A new browser session id for the account, valid ``ttl`` seconds at most
        (less if left idle for ``session_idle``).

        Only its hash is kept, like a token's."""
        session_id = secrets.token_urlsafe(32)
        digest = token_hash(session_id)
        now = repr(self.clock())
        with self.connection.pipeline(transaction=True) as pipe:
            pipe.hset(keys.session(digest), mapping={"name": name, "created": now, "seen": now})
            pipe.expire(keys.session(digest), ttl)
            pipe.sadd(keys.user_sessions(name), digest)
            # Every member is at most ttl old, so the set may go ttl after the last login.
            pipe.expire(keys.user_sessions(name), ttl)
            pipe.execute()
        self._forget_lapsed(keys.user_sessions(name), keys.session)
        return session_id

    def by_session(self, session_id: str) -> User | None:
        """The account logged in with this session id; None if there is none.

        Raises :class:`SessionIdle`, after ending it, for a session unused for longer
        than ``session_idle``. Otherwise the use slides its idle deadline.
        """
        digest = _digest(session_id)
        if digest is None:
            return None
        status, record = self._use(keys.session(digest), "seen", self.session_idle)
        if status == "idle":
            self._end(digest, record.get("name", ""))
            raise SessionIdle(record.get("name", ""))
        return self.get(record["name"]) if record.get("name") else None

    def end_session(self, session_id: str) -> None:
        """Log one browser out: its session and its hash in the account's index go."""
        digest = _digest(session_id)
        if digest is None:
            return
        _, record = self._use(keys.session(digest), "seen", stamp=False)
        self._end(digest, record.get("name", ""))

    def _end(self, digest: str, name: str) -> None:
        """Delete the session of hash ``digest`` and take it off ``name``'s index."""
        with self.connection.pipeline(transaction=True) as pipe:
            pipe.delete(keys.session(digest))
            if name:
                pipe.srem(keys.user_sessions(name), digest)
            pipe.execute()

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


def _when(moment: float | None, none: str) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(moment)) if moment else none


@users_cli.command("token")
@click.argument("name")
@click.option("--label", default="", help="What the token is for, e.g. ci-bot (letters, "
              "digits, '_.:@-'); `revoke-token` takes it in place of the id.")
@click.option("--expires-days", type=click.IntRange(0, MAX_TOKEN_DAYS), default=None,
              help="Days until it expires, 0 = never. Default: API_TOKEN_DAYS (90).")
@cli_redis_errors
def token_command(name: str, label: str, expires_days: int | None) -> None:
    """Print a new bearer API token for NAME (shown only this once).

    Only the token goes to standard output, so TOKEN=$(...) captures it; its id
    and expiry go to standard error.
    """
    days = current_app.config["API_TOKEN_DAYS"] if expires_days is None else expires_days
    store = get_users()
    try:
        token = store.new_token(name, label, days)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    expires = _when(store.clock() + days * DAY, "") if days else "never"
    click.echo(token)
    click.echo(f"Token {token_id(token)}{f' ({label})' if label else ''} for '{name}', "
               f"expires: {expires}. It is shown only this once.", err=True)


@users_cli.command("tokens")
@click.argument("name")
@cli_redis_errors
def tokens_command(name: str) -> None:
    """List the API tokens of NAME: id, label, created, last used, expires."""
    store = get_users()
    try:
        tokens = store.tokens(name)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    if not tokens:
        click.echo(f"'{name}' has no API tokens.")
        return
    now = store.clock()
    click.echo("id\tlabel\tcreated\tlast used\texpires")
    for token in tokens:
        expires = _when(token.expires, "never")
        if token.expired(now):
            expires += " (expired)"
        click.echo("\t".join((token.id, token.label or "-", _when(token.created, "unknown"),
                              _when(token.last_used, "never"), expires)))


@users_cli.command("revoke-token")
@click.argument("name")
@click.argument("id_or_label")
@cli_redis_errors
def revoke_one_command(name: str, id_or_label: str) -> None:
    """Revoke one API token of NAME, by the id or label `users tokens NAME` shows."""
    try:
        token = get_users().revoke_token(name, id_or_label)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    label = f" ({token.label})" if token.label else ""
    click.echo(f"Revoked token {token.id}{label} of '{name}'.")


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
    app.extensions["users"] = UserStore(
        app.extensions["redis"], session_idle=app.config["SESSION_IDLE_MINUTES"] * 60
    )
    app.cli.add_command(users_cli)
