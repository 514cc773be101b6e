"""Request schemas: what a client may send, with the limits from configuration.

pydantic checks presence and types; :func:`parse_submission` adds the configured
length limits and turns the first problem into a :class:`~moderation.errors.ApiError`
naming the field, so every caller answers bad input the same way.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from pydantic import BaseModel, ConfigDict, StrictStr, ValidationError

from .errors import ApiError


class CommentSubmission(BaseModel):
    """A reader's comment, from the HTML form or the JSON API."""

    model_config = ConfigDict(extra="ignore")

    author: StrictStr = ""
    body: StrictStr
    challenge_id: StrictStr = ""
    captcha_answer: StrictStr = ""


def clean_text(value: str) -> str:
    """NFC-normalize and drop NUL/control characters (keeping newlines and tabs)."""
    value = unicodedata.normalize("NFC", value)
    return "".join(
        ch for ch in value if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cs")
    ).replace("\r\n", "\n")


_FIELD_LABELS = {
    "author": "Your name",
    "body": "Comment",
    "challenge_id": "CAPTCHA challenge",
    "captcha_answer": "The characters shown in the image",
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
    body = clean_text(submission.body).strip()
    if not body:
        raise ApiError(400, "empty_comment", "Comment field is required.", "body")
    if len(body) > max_body:
        raise ApiError(
            400, "comment_too_long",
            f"Comment is {len(body)} characters long; the limit is {max_body}.", "body",
        )
    if len(author) > max_name:
        raise ApiError(
            400, "name_too_long",
            f"Your name is {len(author)} characters long; the limit is {max_name}.", "author",
        )
    return submission.model_copy(
        update={
            "author": author,
            "body": body,
            "challenge_id": submission.challenge_id.strip()[:100],
            "captcha_answer": submission.captcha_answer.strip()[:100],
        }
    )
