"""Reading a JSON request body, with every way it can be wrong answered as a 400.

``request.get_json(silent=True)`` lets two kinds of hostile JSON through to a 500:
nesting deep enough to exhaust Python's recursion limit while parsing, and escapes
of lone UTF-16 surrogates (``"\\ud800"``, or the same as raw bytes, which Python's
JSON decoder lets through), which parse into strings that cannot be
encoded again, so they fail later in Redis or a log line. Both are refused here,
before any handler sees the data. (A body that ended early never gets here: errors.py
reads the whole body before any view.)
"""

from __future__ import annotations

import json
import sys

from flask import request
from werkzeug.exceptions import BadRequest

from ..errors import ApiError


def require_json(what: str) -> object:
    """The body as JSON; 415 when it is not declared as JSON (``what``: what to send)."""
    if not request.is_json:
        raise ApiError(
            415, "unsupported_media_type",
            f"Send {what} as JSON (Content-Type: application/json).",
        )
    return parse_json()


def parse_json() -> object:
    """The request's JSON document (any JSON value, ``null`` included) or ApiError(400)."""
    try:
        data = request.get_json(silent=False)
    except RecursionError:
        raise ApiError(400, "invalid_json", "The JSON is nested too deeply.") from None
    except BadRequest as exc:
        if _too_many_digits(exc):
            raise ApiError(
                400, "invalid_json",
                "A number in the JSON has more digits than we read "
                f"({sys.get_int_max_str_digits()} at most).",
            ) from None
        raise ApiError(400, "invalid_json", "The request body is not valid JSON.") from None
    if not _encodable(data):
        raise ApiError(
            400, "invalid_json",
            "The JSON holds a lone UTF-16 surrogate (an escape such as \\ud800, or its "
            "bytes in the body), which is not text.",
        )
    return data


def _too_many_digits(exc: BaseException) -> bool:
    """Whether the parser refused an integer longer than Python converts (valid JSON)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ValueError) and "integer string conversion" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _encodable(data: object) -> bool:
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, RecursionError):  # RecursionError: parsed, but too deep
        return False
    return True
