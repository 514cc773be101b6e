"""When a reader must solve a CAPTCHA (``CHALLENGE_POLICY``), and the "remember" pass.

* ``always``   — every comment needs a solved CAPTCHA (the default, like the original site).
* ``remember`` — a solved CAPTCHA earns the browser a pass: a signed, HttpOnly cookie
  naming a token whose remaining uses live in Redis (``keys.captcha_pass``), good for
  ``REMEMBER_COMMENTS`` more comments within ``REMEMBER_SECONDS``. The count is kept
  server-side, so replaying an old cookie does not reset it.
* ``adaptive`` — score first; ask for a CAPTCHA only when the comment would be held
  (unsure score or a guard's hold). Clear ham publishes and clear spam is rejected
  without one, so most genuine readers never see an image.

No Flask here: the views read and set the cookie, this module signs and counts.
"""

from __future__ import annotations

import secrets

import redis
from itsdangerous import BadSignature, URLSafeTimedSerializer

from . import keys

ALWAYS = "always"
REMEMBER = "remember"
ADAPTIVE = "adaptive"
POLICIES = (ALWAYS, REMEMBER, ADAPTIVE)

#: Name of the remember-pass cookie.
PASS_COOKIE = "captcha_pass"

# Take one use of a pass atomically; -1 when there is none left (or no pass).
_SPEND = """
local left = tonumber(redis.call('GET', KEYS[1]) or '0')
if left <= 0 then return -1 end
left = redis.call('DECR', KEYS[1])
if left <= 0 then redis.call('DEL', KEYS[1]) end
return left
"""


def check_policy(name: str) -> str:
    if name not in POLICIES:
        raise ValueError(f"CHALLENGE_POLICY must be one of {', '.join(POLICIES)}, not {name!r}")
    return name


class PassStore:
    """Issue, check and spend "remember" passes (signed cookie + counter in Redis)."""

    SALT = "moderation.captcha-pass"

    def __init__(
        self, connection: redis.Redis, secret_key: str, *, seconds: int, uses: int
    ) -> None:
        self.redis = connection
        self.seconds = seconds
        self.uses = uses
        self._serializer = URLSafeTimedSerializer(secret_key, salt=self.SALT)
        self._spend = connection.register_script(_SPEND)

    def issue(self, *, pipe: redis.client.Pipeline | None = None) -> str:
        """A new pass; returns the signed cookie value (the token alone is useless unsigned).

        With ``pipe`` the write is only queued on it: the pass then exists exactly when
        the rest of that transaction (the comment that earned it) was written.
        """
        token = secrets.token_urlsafe(18)
        (pipe if pipe is not None else self.redis).set(
            keys.captcha_pass(token), self.uses, ex=self.seconds)
        return self._serializer.dumps(token)

    def token(self, cookie_value: str | None) -> str | None:
        """The token in a cookie whose signature and age are good, else None."""
        if not cookie_value or len(cookie_value) > 300:
            return None
        try:
            token = self._serializer.loads(cookie_value, max_age=self.seconds)
        except (BadSignature, ValueError, TypeError):
            return None
        return token if isinstance(token, str) and 0 < len(token) <= 64 else None

    def remaining(self, cookie_value: str | None) -> int:
        token = self.token(cookie_value)
        if token is None:
            return 0
        return int(self.redis.get(keys.captcha_pass(token)) or 0)

    def spend(self, cookie_value: str | None) -> bool:
        """Use one comment of the pass; False when the pass is invalid, expired or used up."""
        token = self.token(cookie_value)
        if token is None:
            return False
        return int(self._spend(keys=[keys.captcha_pass(token)])) >= 0


def init_app(app) -> None:  # noqa: ANN001 - a Flask app; no Flask import in this module
    """Build the app's guards, pass store and policy into ``app.extensions["protections"]``."""
    from .guards import FormClock, Guards, WordListFile
    from .submission import Protections

    config = app.config
    connection = app.extensions["redis"]
    clock = FormClock(config["SECRET_KEY"], max_age=config["FORM_STAMP_MAX_AGE"])
    guards = Guards(
        connection=connection,
        clock=clock,
        words=WordListFile(config["WORD_LIST_PATH"]).get,
        min_fill_seconds=float(config["MIN_FILL_SECONDS"]),
        fill_time_action=config["FILL_TIME_ACTION"],
        repeat_window=int(config["REPEAT_WINDOW_SECONDS"]),
        max_links=int(config["MAX_LINKS"]),
    )
    passes = PassStore(
        connection,
        config["SECRET_KEY"],
        seconds=int(config["REMEMBER_SECONDS"]),
        uses=int(config["REMEMBER_COMMENTS"]),
    )
    app.extensions["form_clock"] = clock
    app.extensions["protections"] = Protections(
        guards=guards, policy=check_policy(config["CHALLENGE_POLICY"]), passes=passes
    )
