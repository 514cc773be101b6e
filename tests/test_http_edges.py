"""What only a real HTTP server can send: chunked bodies, broken or too long.

gunicorn hands the app a chunked body unread, so its faults surface inside a view;
each must come back as a JSON 4xx naming the problem, never a 500 or a truncated
body read as "not valid JSON".
"""

from __future__ import annotations

import json
import socket

import pytest

from moderation.articles import default_article

PATH = f"/api/v1/articles/{default_article().slug}/comments"
HEAD = (
    f"POST {PATH} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
    "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
).encode()


def chunked(body: bytes, size: int = 1024) -> bytes:
    parts = [body[i:i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts) + b"0\r\n\r\n"


def exchange(port: int, request: bytes) -> tuple[int, dict]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


@pytest.fixture(scope="module")
def server(models_dir):
    from bench.common import Gunicorn

    with Gunicorn("moderation.wsgi:app", env={"MODELS_DIR": str(models_dir)}) as running:
        yield running


@pytest.mark.parametrize(
    "body",
    [b"zz\r\n{}\r\n0\r\n\r\n",  # a chunk size that is not hex
     b"2\r\n{}XX0\r\n\r\n"],   # a chunk without its CRLF
)
def test_broken_chunked_encoding_is_400(server, body):
    status, answer = exchange(server.port, HEAD + body)
    assert status == 400
    assert answer["error"]["code"] == "malformed_body"


def test_a_chunked_body_over_the_limit_is_413_like_a_declared_one(server):
    body = json.dumps({"body": "x" * 100_000}).encode()
    status, answer = exchange(server.port, HEAD + chunked(body))
    assert status == 413
    assert answer["error"]["code"] == "request_entity_too_large"


def half_closed(port: int, request: bytes) -> tuple[int, dict]:
    """Send ``request`` and say it is all the client will send (a body cut short)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        connection.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


@pytest.mark.parametrize(
    "request_bytes",
    [
        HEAD + b"40\r\n" + b'{"body": "cut', # a chunk that never ends
        HEAD.replace(b"Transfer-Encoding: chunked", b"Content-Length: 100")
        + b'{"body": "cut',  # fewer bytes than declared
    ],
)
def test_a_body_that_ends_early_is_400_saying_so(server, request_bytes):
    status, answer = half_closed(server.port, request_bytes)
    assert status == 400
    assert answer["error"]["code"] == "malformed_body"
    assert "ended early" in answer["error"]["message"]


def test_a_chunked_body_under_the_limit_is_read_whole(server):
    body = json.dumps({"body": "A thoughtful comment. " * 40}).encode()
    status, answer = exchange(server.port, HEAD + chunked(body, size=7))
    assert status == 400  # no CAPTCHA answer: the body itself was read as JSON
    assert answer["error"]["code"] == "captcha_failed"


def test_gunicorn_answers_a_broken_request_line_without_logging_the_client_address(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        connection.sendall(b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert connection.recv(100).startswith(b"HTTP/1.1 400")
    log = server.log_path.read_text()
    assert "Invalid request from ip=(hidden): " in log
    assert "ip=127.0.0.1" not in log
