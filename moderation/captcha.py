"""CAPTCHA challenges whose answers live only in Redis.

A challenge is a random id; its answer is stored in the hash ``keys.captcha(id)``
with a TTL and is never sent to the client, written to a log, or put in a cookie.
Each check costs one of ``max_attempts`` attempts (counted atomically in Redis
*before* the answer is compared, so concurrent guesses cannot exceed the limit);
a right answer consumes the challenge, and only one of several concurrent right
answers can win. When the attempts run out the challenge is gone and the reader
gets a new one.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import redis

from . import keys

#: No 0/O, 1/I/l and other pairs people confuse in a distorted image.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"

#: Longest challenge id we accept from a client (``token_urlsafe(18)`` is 24 chars).
MAX_ID_LENGTH = 64

TextSource = Callable[[int], str]


def random_text(length: int) -> str:
    """The default challenge text: cryptographically random, from ``ALPHABET``."""
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


class ImageRenderer(Protocol):
    def generate(self, chars: str, format: str = "png"):  # returns a BytesIO
        ...


class AudioRenderer(Protocol):
    def render(self, chars: str, language: str = "en") -> bytes: ...


@dataclass(frozen=True)
class Challenge:
    id: str
    expires_at: float


@dataclass(frozen=True)
class Check:
    """The outcome of one attempt: right or not, and how many attempts remain."""

    ok: bool
    attempts_left: int


# Reserve one attempt atomically and hand back the answer to compare, or nil when
# the challenge is unknown, expired, consumed, or out of attempts. Counting happens
# before comparing, so N concurrent guesses can never get more than max_attempts
# comparisons, and a consumed challenge (DEL) is never re-created by HINCRBY.
_RESERVE_ATTEMPT = """
local answer = redis.call('HGET', KEYS[1], 'answer')
if not answer then return false end
local n = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
if n > tonumber(ARGV[1]) then return false end
return {answer, n}
"""


def _normalize_attempt(attempt: str) -> bytes:
    """What the reader typed, as comparable bytes: no spaces, upper case."""
    return "".join(str(attempt).split()).upper().encode("utf-8", "replace")


class ChallengeStore:
    """Issue, render and verify challenges against one Redis."""

    def __init__(
        self,
        connection: redis.Redis,
        *,
        ttl_seconds: int = 600,
        length: int | tuple[int, int] = (5, 7),
        max_attempts: int = 3,
        text_source: TextSource = random_text,
        image: ImageRenderer | None = None,
        audio: AudioRenderer | None = None,
    ) -> None:
        self.redis = connection
        self.ttl = ttl_seconds
        self.length_range = (length, length) if isinstance(length, int) else tuple(length)
        if not 1 <= self.length_range[0] <= self.length_range[1]:
            raise ValueError(f"bad CAPTCHA length range {self.length_range}")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.max_attempts = max_attempts
        self.text_source = text_source
        if image is None:
            from .captcha_image import HardenedImageCaptcha

            image = HardenedImageCaptcha()
        self.image = image
        self.audio = audio
        self._reserve = self.redis.register_script(_RESERVE_ATTEMPT)

    @classmethod
    def from_config(
        cls, connection: redis.Redis, config, *, text_source: TextSource = random_text, audio=None
    ) -> ChallengeStore:
        """A store with the image difficulty, lengths and limits from ``app.config``."""
        from .captcha_image import Difficulty, HardenedImageCaptcha

        image = HardenedImageCaptcha(
            width=config.get("CAPTCHA_WIDTH", 240),
            height=config.get("CAPTCHA_HEIGHT", 80),
            fonts=config.get("CAPTCHA_FONTS") or None,
            difficulty=Difficulty(
                font_size_min=config.get("CAPTCHA_FONT_SIZE_MIN", Difficulty.font_size_min),
                font_size_max=config.get("CAPTCHA_FONT_SIZE_MAX", Difficulty.font_size_max),
                noise_lines=config.get("CAPTCHA_NOISE_LINES", Difficulty.noise_lines),
                noise_strokes=config.get("CAPTCHA_NOISE_STROKES", Difficulty.noise_strokes),
                noise_dots=config.get("CAPTCHA_NOISE_DOTS", Difficulty.noise_dots),
            ),
        )
        return cls(
            connection,
            ttl_seconds=config["CAPTCHA_TTL_SECONDS"],
            length=(config.get("CAPTCHA_LENGTH_MIN", 5), config.get("CAPTCHA_LENGTH_MAX", 7)),
            max_attempts=config.get("CAPTCHA_MAX_ATTEMPTS", 3),
            text_source=text_source,
            image=image,
            audio=audio,
        )

    @property
    def length(self) -> int:
        """The shortest challenge length (kept for callers of the old interface)."""
        return self.length_range[0]

    def _new_length(self) -> int:
        low, high = self.length_range
        return low + secrets.randbelow(high - low + 1)

    def issue(self) -> Challenge:
        challenge_id = secrets.token_urlsafe(18)
        answer = self.text_source(self._new_length()).upper()
        key = keys.captcha(challenge_id)
        with self.redis.pipeline() as pipe:
            pipe.hset(key, mapping={"answer": answer, "attempts": 0})
            pipe.expire(key, self.ttl)
            pipe.execute()
        return Challenge(id=challenge_id, expires_at=time.time() + self.ttl)

    def _answer(self, challenge_id: str) -> str | None:
        if not challenge_id or len(challenge_id) > MAX_ID_LENGTH:
            return None
        return self.redis.hget(keys.captcha(challenge_id), "answer")

    def live(self, challenge_id: str | None) -> Challenge | None:
        """The challenge if it can still be answered (known, not expired, attempts left)."""
        if not challenge_id or len(challenge_id) > MAX_ID_LENGTH:
            return None
        key = keys.captcha(challenge_id)
        with self.redis.pipeline() as pipe:
            pipe.hget(key, "attempts")
            pipe.pttl(key)
            attempts, pttl = pipe.execute()
        if attempts is None or pttl is None or pttl <= 0 or int(attempts) >= self.max_attempts:
            return None
        return Challenge(id=challenge_id, expires_at=time.time() + pttl / 1000)

    def render_png(self, challenge_id: str) -> bytes | None:
        """A freshly drawn PNG of the challenge, or None if unknown or expired."""
        answer = self._answer(challenge_id)
        if answer is None:
            return None
        return self.image.generate(answer, format="png").getvalue()

    def render_wav(self, challenge_id: str, language: str = "en") -> bytes | None:
        """The challenge's characters spoken with noise (WAV), or None if unknown/expired."""
        if self.audio is None:
            return None
        answer = self._answer(challenge_id)
        if answer is None:
            return None
        return self.audio.render(answer, language)

    def check(self, challenge_id: str, attempt: str) -> Check:
        """Spend one attempt on ``attempt`` (case- and space-insensitive).

        A right answer consumes the challenge; of several concurrent right answers
        only the one whose DEL removes the key wins. The last wrong attempt deletes
        the challenge too.
        """
        if not challenge_id or len(challenge_id) > MAX_ID_LENGTH:
            return Check(ok=False, attempts_left=0)
        key = keys.captcha(challenge_id)
        reserved = self._reserve(keys=[key], args=[self.max_attempts])
        if not reserved:
            return Check(ok=False, attempts_left=0)
        answer, used = reserved[0], int(reserved[1])
        if isinstance(answer, bytes):
            answer = answer.decode()
        if hmac.compare_digest(_normalize_attempt(attempt), answer.encode()):
            return Check(ok=self.redis.delete(key) == 1, attempts_left=0)
        if used >= self.max_attempts:
            self.redis.delete(key)
        return Check(ok=False, attempts_left=max(0, self.max_attempts - used))

    def verify(self, challenge_id: str, attempt: str) -> bool:
        """Spend one attempt; True only for the (single) winning right answer."""
        return self.check(challenge_id, attempt).ok

    def discard(self, challenge_id: str) -> None:
        """Forget a challenge the reader replaced with a new image."""
        if challenge_id and len(challenge_id) <= MAX_ID_LENGTH:
            self.redis.delete(keys.captcha(challenge_id))
