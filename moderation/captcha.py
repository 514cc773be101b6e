"""Image CAPTCHA challenges whose answers live only in Redis.

A challenge is a random id; its answer is stored under ``keys.captcha(id)`` with a
TTL and is never sent to the client, written to a log, or put in a cookie. The
first check of a challenge consumes it (right or wrong), so an answer can never be
replayed and a wrong guess costs the reader a fresh image.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from captcha.image import ImageCaptcha

from . import keys

#: No 0/O, 1/I/l and other pairs people confuse in a distorted image.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"

TextSource = Callable[[int], str]


def random_text(length: int) -> str:
    """The default challenge text: cryptographically random, from ``ALPHABET``."""
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


@dataclass(frozen=True)
class Challenge:
    id: str
    expires_at: float


class ChallengeStore:
    """Issue, render and verify challenges against one Redis."""

    def __init__(
        self,
        connection: redis.Redis,
        *,
        ttl_seconds: int = 600,
        length: int = 6,
        text_source: TextSource = random_text,
    ) -> None:
        self.redis = connection
        self.ttl = ttl_seconds
        self.length = length
        self.text_source = text_source
        self._image = ImageCaptcha(width=200, height=70)

    def issue(self) -> Challenge:
        challenge_id = secrets.token_urlsafe(18)
        answer = self.text_source(self.length).upper()
        self.redis.set(keys.captcha(challenge_id), answer, ex=self.ttl)
        return Challenge(id=challenge_id, expires_at=time.time() + self.ttl)

    def render_png(self, challenge_id: str) -> bytes | None:
        """A freshly drawn PNG of the challenge, or None if unknown or expired."""
        answer = self.redis.get(keys.captcha(challenge_id))
        if answer is None:
            return None
        return self._image.generate(answer, format="png").getvalue()

    def verify(self, challenge_id: str, attempt: str) -> bool:
        """Consume the challenge and say whether ``attempt`` matches (case-insensitive).

        GETDEL makes the check single-use even when two requests race: only one
        of them can read the answer.
        """
        if not challenge_id or len(challenge_id) > 64:
            return False
        answer = self.redis.getdel(keys.captcha(challenge_id))
        if answer is None:
            return False
        given = attempt.strip().upper().encode()
        return hmac.compare_digest(given, answer.encode())

    def discard(self, challenge_id: str) -> None:
        """Forget a challenge the reader replaced with a new image."""
        if challenge_id and len(challenge_id) <= 64:
            self.redis.delete(keys.captcha(challenge_id))
