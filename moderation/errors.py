"""One place that turns every failure into an answer with a stable error code.

API clients (paths under ``/api/``) and the machines that read ``/healthz``,
``/readyz`` and ``/metrics`` get ``{"error": {"code", "message", "field"}}``;
browsers get a small HTML page. Forms handle their own validation errors by
re-rendering the form, so they rarely reach these handlers.
"""

from __future__ import annotations

import logging

import redis
from flask import Flask, jsonify, render_template, request
from gunicorn.http.errors import NoMoreData, ParseException
from werkzeug.exceptions import ClientDisconnected, HTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    """A refusal the client can act on: HTTP status, stable code, message, field."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field

    def to_dict(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "field": self.field}}


#: Paths answered to programs: their errors are JSON whatever the client accepts.
#: Matched on the path, since a 404 or 405 has no endpoint to ask.
JSON_PATH_PREFIXES = ("/api/", "/healthz", "/readyz", "/metrics")


def wants_json() -> bool:
    return request.path.startswith(JSON_PATH_PREFIXES) or (
        request.accept_mimetypes.best == "application/json"
    )


def error_response(error: ApiError):
    if wants_json():
        return jsonify(error.to_dict()), error.status
    return render_template("error.html", error=error), error.status


STORE_DOWN_RETRY_SECONDS = 10
STORE_DOWN_MESSAGE = (
    "Our comment store is not answering, so nothing was saved. Please go back and "
    f"send it again in {STORE_DOWN_RETRY_SECONDS} seconds or so."
)


def _code_for(exc: HTTPException) -> str:
    return (exc.name or "error").lower().replace(" ", "_").replace("'", "")


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def init_app(app: Flask) -> None:
    @app.before_request
    def read_whole_body():
        # Under gunicorn (which sets wsgi.input_terminated) werkzeug reads a body up
        # to MAX_CONTENT_LENGTH and stops there without a word: a chunked body over
        # the limit, or one shorter than its Content-Length, would reach a view cut
        # short and be answered "not valid JSON". Read here, the first is a 413
        # (reading one byte more makes werkzeug's stream raise it) and the second is
        # a 400 saying the body ended early (ClientDisconnected, handled below).
        # Forms are left alone: CSRF protection may have parsed them already, and a
        # form cut short only lacks fields, which its view reports.
        if request.mimetype in FORM_TYPES:
            return
        if request.content_length:
            if len(request.get_data(cache=True)) < request.content_length:
                raise ClientDisconnected()
        elif request.max_content_length is not None \
                and "chunked" in request.headers.get("Transfer-Encoding", "").lower():
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
        # Every piece of state lives in Redis, so nothing was half-done: the client
        # may simply send the same request again.
        log.error("Redis unavailable on %s %s: %s", request.method, request.path, exc)
        body, status = error_response(ApiError(503, "storage_unavailable", STORE_DOWN_MESSAGE))
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
