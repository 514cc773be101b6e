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

import re
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


# One attempt, start to end, in one atomic script (one round trip): count the attempt
# *before* comparing, so N concurrent guesses never get more than max_attempts
# comparisons; a right answer deletes the challenge in the same step, so of several
# concurrent right answers exactly one wins; the last wrong attempt deletes it too.
# The SHA-1 digests are compared rather than the strings, so the time the comparison
# takes says nothing about how much of a guess was right.
# Reply: {1, 0} right; {0, attempts left} wrong; {-1, 0} unknown, expired, consumed
# or out of attempts (nothing compared).
_CHECK_ATTEMPT = """
local answer = redis.call('HGET', KEYS[1], 'answer')
if not answer then return {-1, 0} end
local limit = tonumber(ARGV[1])
local used = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
if used > limit then return {-1, 0} end
if redis.sha1hex(ARGV[2]) == redis.sha1hex(answer) then
  redis.call('DEL', KEYS[1])
  return {1, 0}
end
if used >= limit then redis.call('DEL', KEYS[1]) end
return {0, limit - used}
"""

# A new challenge's answer and its TTL in one atomic command, so the answer never
# exists without the TTL, on any pipeline: a MULTI/EXEC around HSET and EXPIRE did
# the same with four commands and five replies on every article page.
# KEYS[1] the challenge's hash; ARGV: answer, TTL in seconds.
_ISSUE = """
redis.call('HSET', KEYS[1], 'answer', ARGV[1], 'attempts', 0)
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""


def _queue_issue(target: redis.Redis | redis.client.Pipeline, key: str, answer: str,
                 ttl: int) -> None:
    """Store a challenge's answer with its TTL (sent now on a client, queued on a pipeline).

    EVAL rather than EVALSHA, as comments.PageQuery does: a pipeline holding a
    registered script asks SCRIPT EXISTS first, an extra round trip.
    """
    target.eval(_ISSUE, 1, key, answer, ttl)


#: What a check that compared nothing (unknown, expired, consumed, used up) gives.
NOT_CHECKED = Check(ok=False, attempts_left=0)


#: What ``secrets.token_urlsafe`` produces, up to MAX_ID_LENGTH. Anything else cannot
#: be one of ours, and a lone surrogate in it could not even be sent to Redis.
_ID_RE = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_ID_LENGTH}}}", re.ASCII)


def _valid_id(challenge_id: str | None) -> bool:
    return challenge_id is not None and _ID_RE.fullmatch(challenge_id) is not None


def _check_of_reply(reply) -> Check:
    status, attempts_left = int(reply[0]), int(reply[1])
    return Check(ok=status == 1, attempts_left=attempts_left)


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
        self._check_script = self.redis.register_script(_CHECK_ATTEMPT)

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
        image.warm(ALPHABET)  # the glyph pool, drawn once per process at start-up
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

    def issue(self, *, pipe: redis.client.Pipeline | None = None) -> Challenge:
        """A new challenge.

        With ``pipe`` the write is only queued: the challenge exists once the caller
        executes it, e.g. together with the page's listing read in one round trip.
        """
        challenge_id = secrets.token_urlsafe(18)
        answer = self.text_source(self._new_length()).upper()
        _queue_issue(pipe if pipe is not None else self.redis, keys.captcha(challenge_id),
                     answer, self.ttl)
        return Challenge(id=challenge_id, expires_at=time.time() + self.ttl)

    def _answer(self, challenge_id: str) -> str | None:
        if not _valid_id(challenge_id):
            return None
        return self.redis.hget(keys.captcha(challenge_id), "answer")

    def live(self, challenge_id: str | None) -> Challenge | None:
        """The challenge if it can still be answered (known, not expired, attempts left)."""
        if not _valid_id(challenge_id):
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
        only one wins. The last wrong attempt deletes the challenge too.
        """
        if not _valid_id(challenge_id):
            return NOT_CHECKED
        reply = self._check_script(
            keys=[keys.captcha(challenge_id)],
            args=[self.max_attempts, _normalize_attempt(attempt)],
        )
        return _check_of_reply(reply)

    def queue_check(
        self, pipe: redis.client.Pipeline, challenge_id: str, attempt: str
    ) -> Callable[[object], Check]:
        """Queue :meth:`check` on ``pipe``; returns how to read its reply.

        Lets the write path check the CAPTCHA in the same round trip as its other
        reads. The script is called by its SHA (redis-py's pipelines would otherwise
        ask ``SCRIPT EXISTS`` first, a round trip of its own); if Redis lost it
        (restart, ``SCRIPT FLUSH``) the reply is a NOSCRIPT error and the check is
        simply run again the ordinary way, which loads it. Nothing else was spent.
        """
        if not _valid_id(challenge_id):
            return lambda reply: NOT_CHECKED
        pipe.evalsha(
            self._check_script.sha, 1, keys.captcha(challenge_id),
            self.max_attempts, _normalize_attempt(attempt),
        )

        def read(reply: object) -> Check:
            if isinstance(reply, redis.exceptions.NoScriptError):
                return self.check(challenge_id, attempt)
            if isinstance(reply, Exception):
                raise reply
            return _check_of_reply(reply)

        return read

    def verify(self, challenge_id: str, attempt: str) -> bool:
        """Spend one attempt; True only for the (single) winning right answer."""
        return self.check(challenge_id, attempt).ok

    def discard(self, challenge_id: str) -> None:
        """Forget a challenge the reader replaced with a new image."""
        if _valid_id(challenge_id):
            self.redis.delete(keys.captcha(challenge_id))
