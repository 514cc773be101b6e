"""Cheap checks that run, in a fixed order, before a comment is scored (no Flask here).

Each guard looks at one :class:`Draft` and returns a :class:`GuardResult`: ``pass``,
``hold`` (store it, but for a moderator to review) or ``reject`` (store it as
rejected, never shown). The reason goes into ``Comment.reason`` so moderators see
why; the log gets only the guard's name and a reason *code*, never the text, the
matched words or the client.

Order (see :meth:`Guards.run`): honeypot, fill time, repeat post, word lists, links.
The first ``reject`` ends the run; ``hold`` reasons accumulate. Rate limits are not
here: they refuse the request before it is even parsed (see ``ratelimit.py``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis
from itsdangerous import BadSignature, URLSafeTimedSerializer

from . import keys
from .text import URL_TOKEN, normalize, same_text_key

log = logging.getLogger(__name__)

PASS = "pass"
HOLD = "hold"
REJECT = "reject"
_SEVERITY = {PASS: 0, HOLD: 1, REJECT: 2}

#: The honeypot's form/JSON field. Humans never see it; naive bots fill every field.
HONEYPOT_FIELD = "website"


@dataclass(frozen=True)
class GuardResult:
    """What one guard (or the whole run) decided: outcome, reason for people, code for logs."""

    outcome: str = PASS
    reason: str = ""
    code: str = ""
    guard: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == PASS

    def as_tuple(self) -> tuple[bool, str]:
        """The classic ``(ok, reason)`` pair."""
        return self.ok, self.reason


OK = GuardResult()


def more_severe(a: str, b: str) -> str:
    """The stronger of two outcomes/verdict-like words (pass < hold < reject)."""
    return a if _SEVERITY[a] >= _SEVERITY[b] else b


@dataclass(frozen=True)
class Draft:
    """A comment as the guards see it, before it is scored or stored."""

    article: str
    author: str
    body: str
    ip_hash: str
    honeypot: str = ""
    form_token: str = ""
    #: (same client, same article) as looked up by :meth:`Guards.queue_repeat_lookup`
    #: in the caller's round trip; None makes the repeat guard ask Redis itself.
    repeat_seen: tuple[bool, bool] | None = None


# ---------------------------------------------------------------------------
# Signed render timestamps for the minimum fill time
# ---------------------------------------------------------------------------


class FormClock:
    """Signs the time a form was rendered, and reads it back (itsdangerous)."""

    SALT = "moderation.form-render-time"

    def __init__(self, secret_key: str, *, max_age: int = 24 * 3600) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt=self.SALT)
        self.max_age = max_age

    def stamp(self, now: float | None = None) -> str:
        """A token holding the render time (milliseconds), signed with the app's key."""
        return self._serializer.dumps(int((time.time() if now is None else now) * 1000))

    def rendered_at(self, token: str) -> float | None:
        """The render time in the token, or None if missing, forged, or too old."""
        if not token or len(token) > 200:
            return None
        try:
            millis = self._serializer.loads(token, max_age=self.max_age)
        except (BadSignature, ValueError, TypeError):
            return None
        if not isinstance(millis, int):
            return None
        rendered = millis / 1000
        if time.time() - rendered > self.max_age:  # the time inside, not just the signature's
            return None
        return rendered


# ---------------------------------------------------------------------------
# Operator-editable word lists
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class WordLists:
    """Normalized banned and suspect terms (single words or phrases)."""

    banned: tuple[str, ...] = ()
    suspect: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> WordLists:
        """Read the file format: ``[banned]`` / ``[suspect]`` sections, one term a line.

        ``#`` starts a comment. Terms are normalized exactly like comments
        (``text.normalize``), so "V1AGRA" in a comment matches "viagra" in the list.
        """
        sections: dict[str, list[str]] = {"banned": [], "suspect": []}
        current: list[str] | None = None
        for raw in text.splitlines():
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            header = re.fullmatch(r"\[(\w+)\]", line)
            if header:
                name = header.group(1).lower()
                if name not in sections:
                    raise ValueError(f"unknown word-list section [{name}]")
                current = sections[name]
                continue
            if current is None:
                raise ValueError("a term before any [banned] or [suspect] section")
            term = normalize(line)
            if term and term not in current:
                current.append(term)
        return cls(banned=tuple(sections["banned"]), suspect=tuple(sections["suspect"]))

    @staticmethod
    def _find(terms: tuple[str, ...], padded_text: str) -> str | None:
        for term in terms:
            if f" {term} " in padded_text:
                return term
        return None

    def match(self, normalized_text: str) -> tuple[str | None, str | None]:
        """(first banned term found, first suspect term found) in already-normalized text."""
        padded = f" {normalized_text} "
        return self._find(self.banned, padded), self._find(self.suspect, padded)


class WordListFile:
    """A word-list file, re-read when it changes so operators need no restart."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._lists = WordLists()
        self.get()  # a broken file fails at start-up, not on the first comment

    def get(self) -> WordLists:
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            raise FileNotFoundError(f"word list {self.path} (WORD_LIST_PATH) is missing") from None
        if mtime != self._mtime:
            with self._lock:
                if mtime != self._mtime:
                    self._lists = WordLists.parse(self.path.read_text(encoding="utf-8"))
                    self._mtime = mtime
        return self._lists


# ---------------------------------------------------------------------------
# The guards
# ---------------------------------------------------------------------------


def text_digest(body: str) -> str:
    """Fingerprint of a comment's :func:`~moderation.text.same_text_key` (the unit of
    "the same comment")."""
    return hashlib.sha256(same_text_key(body).encode()).hexdigest()[:32]


def count_links(body: str) -> int:
    return normalize(body).split().count(URL_TOKEN)


def honeypot(draft: Draft) -> GuardResult:
    """A filled hidden field: only software fills a field no person can see."""
    if draft.honeypot.strip():
        return GuardResult(REJECT, "Automated submission: the hidden field was filled in.",
                           "honeypot_filled")
    return OK


@dataclass
class Guards:
    """The configured guards, run in a fixed order by :meth:`run`."""

    connection: redis.Redis
    clock: FormClock
    words: Callable[[], WordLists]
    min_fill_seconds: float = 3.0
    fill_time_action: str = HOLD
    repeat_window: int = 3600
    max_links: int = 2
    now: Callable[[], float] = field(default=time.time)

    def __post_init__(self) -> None:
        if self.fill_time_action not in (HOLD, REJECT):
            raise ValueError(
                f"FILL_TIME_ACTION must be hold or reject, not {self.fill_time_action!r}"
            )

    # Each guard: Draft -> GuardResult ------------------------------------

    def fill_time(self, draft: Draft) -> GuardResult:
        """Posted faster than a person can read and type, or without a valid form stamp."""
        if self.min_fill_seconds <= 0:
            return OK
        rendered = self.clock.rendered_at(draft.form_token)
        if rendered is None:
            return GuardResult(self.fill_time_action,
                               "The form's time stamp was missing, forged or too old.",
                               "form_stamp_invalid")
        elapsed = self.now() - rendered
        if elapsed < self.min_fill_seconds:
            return GuardResult(
                self.fill_time_action,
                f"Posted {max(elapsed, 0):.1f} s after the form was shown "
                f"(minimum {self.min_fill_seconds:g} s).",
                "too_fast",
            )
        return OK

    def queue_repeat_lookup(
        self, pipe: redis.client.Pipeline, draft: Draft
    ) -> Callable[[list], tuple[bool, bool] | None]:
        """Queue the repeat guard's reads on ``pipe``; returns how to read the replies.

        The write path sends these with the CAPTCHA check, in one round trip, and
        passes the answer in ``Draft.repeat_seen``.
        """
        if self.repeat_window <= 0:
            return lambda replies: None
        digest = text_digest(draft.body)
        pipe.exists(keys.repeat_by_ip(draft.ip_hash, digest))
        pipe.exists(keys.repeat_by_article(draft.article, digest))

        def read(replies: list) -> tuple[bool, bool]:
            for reply in replies:
                if isinstance(reply, Exception):
                    raise reply
            same_client, same_article = replies
            return bool(same_client), bool(same_article)

        return read

    def repeat(self, draft: Draft) -> GuardResult:
        """The same text again within the window: from this client, or to this article."""
        if self.repeat_window <= 0:
            return OK
        seen = draft.repeat_seen
        if seen is None:
            with self.connection.pipeline(transaction=False) as pipe:
                read = self.queue_repeat_lookup(pipe, draft)
                seen = read(pipe.execute(raise_on_error=False))
        same_client, same_article = seen
        if same_client:
            return GuardResult(REJECT, "Repeat post: the same text from the same client.",
                               "repeat_same_client")
        if same_article:
            # Different clients may honestly write the same short thing: a person decides.
            return GuardResult(HOLD, "Repeat post: the same text was just posted here.",
                               "repeat_same_article")
        return OK

    def word_lists(self, draft: Draft) -> GuardResult:
        """Banned terms reject; suspect terms hold (author name and body)."""
        lists = self.words()
        banned, suspect = lists.match(normalize(f"{draft.author}\n{draft.body}"))
        if banned:
            return GuardResult(REJECT, f"Banned word list: '{banned}'.", "banned_word")
        if suspect:
            return GuardResult(HOLD, f"Suspect word list: '{suspect}'.", "suspect_word")
        return OK

    def links(self, draft: Draft) -> GuardResult:
        """Too many links in the body, or any link in the name, holds for review."""
        if count_links(draft.author):
            return GuardResult(HOLD, "A link in the name field.", "link_in_name")
        found = count_links(draft.body)
        if found > self.max_links:
            return GuardResult(HOLD, f"{found} links (more than {self.max_links}).",
                               "too_many_links")
        return OK

    def ordered(self) -> list[tuple[str, Callable[[Draft], GuardResult]]]:
        return [
            ("honeypot", honeypot),
            ("fill_time", self.fill_time),
            ("repeat", self.repeat),
            ("word_lists", self.word_lists),
            ("links", self.links),
        ]

    def run(self, draft: Draft) -> GuardResult:
        """Run every guard in order; the first reject wins, holds are combined."""
        holds: list[GuardResult] = []
        for name, guard in self.ordered():
            result = guard(draft)
            if result.ok:
                continue
            result = GuardResult(result.outcome, result.reason, result.code, name)
            log.info("guard %s: %s (%s)", name, result.outcome, result.code)
            if result.outcome == REJECT:
                return result
            holds.append(result)
        if not holds:
            return OK
        return GuardResult(
            HOLD,
            " ".join(r.reason for r in holds),
            ",".join(r.code for r in holds),
            ",".join(r.guard for r in holds),
        )

    def remember(self, draft: Draft, *, pipe: redis.client.Pipeline | None = None) -> None:
        """Record a stored comment for the repeat-post guard (after it is saved)."""
        if self.repeat_window <= 0:
            return
        digest = text_digest(draft.body)
        target = pipe if pipe is not None else self.connection.pipeline(transaction=False)
        target.set(keys.repeat_by_ip(draft.ip_hash, digest), "1", ex=self.repeat_window)
        target.set(keys.repeat_by_article(draft.article, digest), "1", ex=self.repeat_window)
        if pipe is None:
            target.execute()
