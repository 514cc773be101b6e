"""Request schemas: what a client may send, with the limits from configuration.

pydantic checks presence and types; :func:`parse_submission` adds the configured
length limits and turns the first problem into a :class:`~moderation.errors.ApiError`
naming the field, so every caller answers bad input the same way.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError

from .errors import ApiError


class CommentSubmission(BaseModel):
    """A reader's comment, from the HTML form or the JSON API."""

    model_config = ConfigDict(extra="ignore")

    author: StrictStr = ""
    body: StrictStr
    challenge_id: StrictStr = ""
    captcha_answer: StrictStr = ""
    #: the honeypot (``guards.HONEYPOT_FIELD``): must stay empty
    website: StrictStr = ""
    #: the signed time the form was rendered (``guards.FormClock``)
    form_token: StrictStr = ""


#: What a text loses before it is stored or counted: control characters (Unicode
#: category Cc, a set the standard promises never to change) except newline and tab,
#: lone surrogates (Cs), and the bidi embedding/override/isolate controls, which can
#: make text display in another order than it is stored (e.g. a name that reads as
#: someone else's). One regex: a per-character loop cost a Python step per character.
_DROPPED = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff"
                      "\u202a-\u202e\u2066-\u2069]")


def clean_text(value: str) -> str:
    """NFC-normalize; drop NUL/control chars (keeping newlines and tabs) and bidi overrides."""
    value = unicodedata.normalize("NFC", value.replace("\r\n", "\n").replace("\r", "\n"))
    return _DROPPED.sub("", value)


def _typed_length(raw: str, cleaned: str) -> int:
    """Characters as typed: the shorter of the raw and the cleaned text (cleaning drops
    control characters and surrounding space, and NFC may lengthen or shorten)."""
    return min(len(raw.strip()), len(cleaned))


def _visible(text: str) -> bool:
    """Whether any character would show: zero-width and format characters alone
    (U+200B, U+2060, U+FEFF, ...) make a comment that displays as nothing."""
    return any(
        not ch.isspace() and unicodedata.category(ch) not in ("Cf", "Zs", "Zl", "Zp")
        for ch in text
    )


_FIELD_LABELS = {
    "author": "Your name",
    "body": "Comment",
    "challenge_id": "CAPTCHA challenge",
    "captcha_answer": "The characters shown in the image",
    "website": "Leave-empty field",
    "form_token": "Form time stamp",
}


def parse_submission(data: Any, *, max_body: int, max_name: int) -> CommentSubmission:
    """Validate a submission or raise ApiError(400/422) naming the offending field."""
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_body", "The request body must be a JSON object.")
    try:
        submission = CommentSubmission.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else None
        label = _FIELD_LABELS.get(field or "", field or "request")
        if first["type"] == "missing":
            raise ApiError(400, "missing_field", f"{label} is required.", field) from None
        raise ApiError(400, "invalid_field", f"{label} must be text.", field) from None
    author = clean_text(submission.author).strip()
    author = author if _visible(author) else ""  # an invisible name is no name
    body = clean_text(submission.body).strip()
    if not _visible(body):
        raise ApiError(400, "empty_comment", "Comment field is required.", "body")
    # Limits count what was typed (as a browser's maxlength does): NFC spells a few
    # letters (Devanagari qa, ...) in two code points, and a reader whose 3,000 letters
    # fit the form should not be told they typed 6,000.
    if (typed := _typed_length(submission.body, body)) > max_body:
        raise ApiError(
            400, "comment_too_long",
            f"Comment is {typed} characters long; the limit is {max_body}.", "body",
        )
    if (typed := _typed_length(submission.author, author)) > max_name:
        raise ApiError(
            400, "name_too_long",
            f"Your name is {typed} characters long; the limit is {max_name}.", "author",
        )
    return submission.model_copy(
        update={
            "author": author,
            "body": body,
            "challenge_id": submission.challenge_id.strip()[:100],
            "captcha_answer": submission.captcha_answer.strip()[:100],
            "website": submission.website[:200],
            "form_token": submission.form_token.strip()[:200],
        }
    )


#: The highest page number any listing takes (the API, the article page, the queue).
MAX_PAGE = 10_000

# Limits of the moderators' requests (views/moderate.py, views/moderate_api.py), here
# so that the moderation API's OpenAPI document states the same numbers.
#: Items per page of the review queue.
MAX_QUEUE_PER_PAGE = 1000
#: Comment ids in one claim, release or decision request.
MAX_IDS = 2000
#: Items one ``{"count": N}`` claim may take.
MAX_CLAIM_COUNT = 100
#: Decisions one ``GET /api/v1/moderation/decisions`` lists.
MAX_DECISIONS_COUNT = 500


class ListQuery(BaseModel):
    """Query string of ``GET /api/v1/articles/<slug>/comments``."""

    model_config = ConfigDict(extra="ignore")

    page: int = Field(default=1, ge=1, le=MAX_PAGE)
    per_page: int | None = Field(default=None, ge=1, le=100)


_QUERY_MESSAGES = {
    "page": f"page must be a whole number from 1 to {MAX_PAGE}.",
    "per_page": "per_page must be a whole number from 1 to 100.",
}


def parse_list_query(args: Any) -> ListQuery:
    """Validate paging parameters or raise ApiError(400) naming the parameter."""
    data = {
        name: args.get(name) for name in ("page", "per_page") if args.get(name) not in (None, "")
    }
    try:
        return ListQuery.model_validate(data)
    except ValidationError as exc:
        field = str(exc.errors()[0]["loc"][0])
        raise ApiError(400, "invalid_field", _QUERY_MESSAGES[field], field) from None
