"""One place that turns every failure into an answer with a stable error code.

API clients (paths under ``/api/``) and the machines that read ``/healthz``,
``/readyz`` and ``/metrics`` get ``{"error": {"code", "message", "field"}}``;
browsers get a small HTML page. Forms handle their own validation errors by
re-rendering the form, so they rarely reach these handlers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from flask import Flask, g, jsonify, render_template, request
from gunicorn.http.errors import NoMoreData, ParseException
from werkzeug.exceptions import ClientDisconnected, HTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    """A refusal the client can act on: HTTP status, stable code, message, field."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 details: object = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.details = details  # what a program needs to act on it, where there is more

    def to_dict(self) -> dict:
        error = {"code": self.code, "message": self.message, "field": self.field}
        if self.details is not None:
            error["details"] = self.details
        return {"error": error}


#: Paths answered to programs: their errors are JSON whatever the client accepts.
#: Matched on the path, since a 404 or 405 has no endpoint to ask.
JSON_PATH_PREFIXES = ("/api/", "/captcha/", "/healthz", "/readyz", "/metrics")


def _asks_first_for(mime: str) -> bool:
    """Whether the Accept header names ``mime`` itself at the highest quality it gives.

    Not ``accept_mimetypes.best == mime``: werkzeug ranks an entry with parameters
    ahead of others of the same quality, so the header of Chromium's navigations
    ("text/html,...,application/signed-exchange;v=b3;q=0.7") has the signed exchange,
    not text/html, as its "best".
    """
    accept = request.accept_mimetypes
    top = max((quality for _, quality in accept), default=0)
    return top > 0 and any(value == mime and quality == top for value, quality in accept)


def wants_json() -> bool:
    if request.path.startswith("/captcha/") and _asks_first_for("text/html"):
        # A reader opened "Listen to the characters" in a tab after the challenge
        # expired: a page that says so, not raw JSON (an <img> or a client asks
        # for other types and still gets JSON).
        return False
    return request.path.startswith(JSON_PATH_PREFIXES) or (
        request.accept_mimetypes.best == "application/json"
    )


#: The error page's heading: what happened, in words (the status code is shown under
#: it). By error code where the status alone would mislead, else by status.
CODE_HEADINGS = {
    "unknown_challenge": "This CAPTCHA has expired",
    "storage_unavailable": "Comments are unavailable for a moment",
    "csrf_failed": "The form has expired",
}
STATUS_HEADINGS = {
    400: "The request could not be understood",
    401: "Please log in",
    403: "Not allowed",
    404: "Page not found",
    405: "Not allowed here",
    408: "The request took too long",
    409: "Nothing was changed",
    413: "Too much was sent",
    429: "Too many requests",
    500: "Something went wrong",
    503: "Service unavailable",
}


def page_heading(error: ApiError) -> str:
    """The words heading of an error page for ``error``."""
    if error.code in CODE_HEADINGS:
        return CODE_HEADINGS[error.code]
    if error.status in STATUS_HEADINGS:
        return STATUS_HEADINGS[error.status]
    return "Something went wrong" if error.status >= 500 else "The request was refused"


def error_response(error: ApiError):
    if wants_json():
        return jsonify(error.to_dict()), error.status
    html = render_template("error.html", error=error, heading=page_heading(error))
    return html, error.status


STORE_DOWN_RETRY_SECONDS = 10
STORE_DOWN_MESSAGE = (
    "Our comment store is not answering, so nothing was saved. Please go back and "
    f"send it again in {STORE_DOWN_RETRY_SECONDS} seconds or so."
)
#: After the comment was stored (the reader's outcome message comes first).
STORE_DOWN_AFTER_SAVE = (
    "It was saved, but our comment store stopped answering before this page could be "
    "shown. Please do not send the same comment again."
)
#: For a page or listing: there was nothing to save, only something to show.
STORE_DOWN_READ_MESSAGE = (
    "Our comment store is not answering. Please try again in "
    f"{STORE_DOWN_RETRY_SECONDS} seconds or so."
)


def _code_for(exc: HTTPException) -> str:
    return (exc.name or "error").lower().replace(" ", "_").replace("'", "")


@contextmanager
def _body_timeout(seconds: float) -> Iterator[None]:
    """Give up on a body that stops arriving for ``seconds`` (gunicorn only).

    A client that declares a body and then sends nothing would otherwise hold its
    connection as long as it liked (under sync workers, the whole worker, until
    gunicorn killed it and answered a bare 500). Like nginx's client_body_timeout,
    this bounds the wait between two reads (not the whole upload), and the socket is
    put back as it was.
    """
    sock = request.environ.get("gunicorn.socket")
    if sock is None:
        yield
        return
    before = sock.gettimeout()
    sock.settimeout(seconds)
    try:
        yield
    except (TimeoutError, ClientDisconnected) as exc:
        # werkzeug's stream turns the socket's timeout into ClientDisconnected.
        if not isinstance(exc, TimeoutError) and not isinstance(exc.__context__, TimeoutError):
            raise
        raise ApiError(
            408, "request_timeout",
            f"The request body stopped arriving for {seconds:g} seconds, so nothing "
            "was saved. Please send it again.",
        ) from None
    finally:
        sock.settimeout(before)


def init_app(app: Flask) -> None:
    @app.before_request
    def read_whole_body():
        # Under gunicorn (which sets wsgi.input_terminated) werkzeug reads a body up
        # to MAX_CONTENT_LENGTH and stops there without a word: a chunked body over
        # the limit, or one shorter than its Content-Length, would reach a view cut
        # short and be answered "not valid JSON". Read here, the first is a 413
        # (reading one byte more makes werkzeug's stream raise it) and the second is
        # a 400 saying the body ended early (ClientDisconnected, handled below).
        # Registered before CSRF protection, so forms are read here too; werkzeug
        # then parses them from the bytes read.
        chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
        if not request.content_length and not chunked:
            return
        with _body_timeout(app.config["BODY_TIMEOUT_SECONDS"]):
            if request.content_length:
                if len(request.get_data(cache=True)) < request.content_length:
                    raise ClientDisconnected()
            elif request.max_content_length is not None:
                request.get_data(cache=True)
                request.stream.read(1)

    @app.errorhandler(ApiError)
    def handle_api_error(error: ApiError):
        log.info("refused %s %s: %s (%s)", request.method, request.path, error.code, error.field)
        return error_response(error)

    @app.errorhandler(HTTPException)
    def handle_http_error(exc: HTTPException):
        messages = {
            404: "Not found: no such page or resource.",
            405: f"Method {request.method} is not allowed here.",
            413: (
                "The request body is too large: the limit is "
                f"{app.config.get('MAX_CONTENT_LENGTH')} bytes."
            ),
        }
        message = messages.get(exc.code or 0, exc.description or exc.name)
        return error_response(ApiError(exc.code or 500, _code_for(exc), message))

    @app.errorhandler(redis.RedisError)
    def handle_store_down(exc: redis.RedisError):
        # Every write of a request is one transaction or script, so nothing was
        # half-done: the client may simply send the same request again -- unless the
        # comment was stored before Redis failed (views.common.submit_comment).
        log.error("Redis unavailable on %s %s: %s", request.method, request.path, exc)
        saved = g.get("saved_comment")
        if saved is not None:
            comment_id, status, told = saved
            body, code = error_response(ApiError(
                503, "storage_unavailable", f"{told} {STORE_DOWN_AFTER_SAVE}",
                details={"id": comment_id, "status": status}))
            return body, code  # no Retry-After: sending it again would only repeat it
        message = STORE_DOWN_READ_MESSAGE if request.method in ("GET", "HEAD") else \
            STORE_DOWN_MESSAGE
        body, status = error_response(ApiError(503, "storage_unavailable", message))
        return body, status, {"Retry-After": str(STORE_DOWN_RETRY_SECONDS)}

    @app.errorhandler(ParseException)
    @app.errorhandler(NoMoreData)
    @app.errorhandler(ClientDisconnected)
    def handle_broken_body(exc: Exception):
        # gunicorn reads a body only when the app does, so a broken chunk size or a
        # body cut short (werkzeug: ClientDisconnected) surfaces here, inside a view.
        log.info("broken request body on %s %s: %s", request.method, request.path,
                 type(exc).__name__)
        return error_response(ApiError(
            400, "malformed_body",
            "The request body is malformed: its chunked encoding is broken or it ended early.",
        ))

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(ApiError(500, "internal_error", "Something went wrong on our side."))
