"""What only a real HTTP server can send: chunked bodies, broken or too long.

gunicorn hands the app a chunked body unread, so its faults surface inside a view;
each must come back as a JSON 4xx naming the problem, never a 500 or a truncated
body read as "not valid JSON".
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from moderation.articles import default_article

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PATH = f"/api/v1/articles/{default_article().slug}/comments"
HEAD = (
    f"POST {PATH} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
    "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
).encode()


def chunked(body: bytes, size: int = 1024) -> bytes:
    parts = [body[i:i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts) + b"0\r\n\r\n"


def answer_of(port: int, request: bytes, *, half_close: bool = False
              ) -> tuple[int, str, bytes]:
    """Status, content type and body of the answer to ``request``. ``half_close``:
    also say that is all the client will send (a body cut short)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        if half_close:
            connection.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers["Content-Type"], body


def exchange(port: int, request: bytes, *, half_close: bool = False) -> tuple[int, dict]:
    status, _, body = answer_of(port, request, half_close=half_close)
    return status, json.loads(body)


@pytest.fixture(scope="module")
def server(models_dir):
    from bench.common import Gunicorn

    # gunicorn's --keep-alive is also its gevent workers' deadline for the headers.
    env = {"MODELS_DIR": str(models_dir), "BODY_TIMEOUT_SECONDS": "1",
           "GUNICORN_CMD_ARGS": "--keep-alive 1"}
    with Gunicorn("moderation.wsgi:app", env=env) as running:
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


@pytest.mark.parametrize(
    "request_bytes",
    [
        HEAD + b"40\r\n" + b'{"body": "cut', # a chunk that never ends
        HEAD.replace(b"Transfer-Encoding: chunked", b"Content-Length: 100")
        + b'{"body": "cut',  # fewer bytes than declared
    ],
)
def test_a_body_that_ends_early_is_400_saying_so(server, request_bytes):
    status, answer = exchange(server.port, request_bytes, half_close=True)
    assert status == 400
    assert answer["error"]["code"] == "malformed_body"
    assert "ended early" in answer["error"]["message"]


def test_a_chunked_body_under_the_limit_is_read_whole(server):
    body = json.dumps({"body": "A thoughtful comment. " * 40}).encode()
    status, answer = exchange(server.port, HEAD + chunked(body, size=7))
    assert status == 400  # no CAPTCHA: the body itself was read whole, as JSON
    assert answer["error"]["field"] == "challenge_id"


def test_gunicorn_answers_a_broken_request_line_without_logging_the_client_address(server):
    status, content_type, body = answer_of(server.port, b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 400
    assert content_type == "application/json"
    assert json.loads(body)["error"]["code"] == "bad_request"
    log = server.log_path.read_text()
    assert "Invalid request from ip=(hidden): " in log
    assert "ip=127.0.0.1" not in log


@pytest.mark.parametrize(
    ("request_bytes", "status", "code", "says"),
    [
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
         414, "uri_too_long", "Request Line is too large"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
         431, "request_header_fields_too_large", "limit request headers"),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: bogus\r\n\r\n",
         400, "bad_request", "Unsupported transfer coding"),
    ],
)
def test_what_gunicorn_refuses_before_the_app_runs_is_a_json_4xx(
    server, request_bytes, status, code, says
):
    answered, content_type, body = answer_of(server.port, request_bytes)
    assert (answered, content_type) == (status, "application/json")
    error = json.loads(body)["error"]
    assert error["code"] == code
    assert says in error["message"]


def stalled(port: int, request: bytes) -> tuple[float, int, str, bytes]:
    """Send ``request``, keep the connection open and wait for the answer."""
    started = time.monotonic()
    status, content_type, body = answer_of(port, request)
    return time.monotonic() - started, status, content_type, body


def test_a_json_body_that_stops_arriving_is_408_within_the_body_timeout(server):
    request = HEAD.replace(b"Transfer-Encoding: chunked", b"Content-Length: 100") + b'{"bo'
    seconds, status, content_type, body = stalled(server.port, request)
    assert (status, content_type) == (408, "application/json")
    error = json.loads(body)["error"]
    assert error["code"] == "request_timeout"
    assert "stopped arriving for 1 seconds" in error["message"]
    assert 0.9 < seconds < 5  # BODY_TIMEOUT_SECONDS=1, not gunicorn's 30 s worker kill


def test_a_form_that_stops_arriving_is_408_as_a_page(server):
    request = (
        f"POST /articles/{default_article().slug}/comments HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n"
        "body=Half a comm"
    ).encode()
    seconds, status, content_type, body = stalled(server.port, request)
    assert status == 408
    assert content_type.startswith("text/html")
    assert b"stopped arriving" in body
    assert seconds < 5


def stalling_clients(port: int, count: int) -> list[socket.socket]:
    """``count`` connections that send half a request line and headers, then wait."""
    clients = []
    for _ in range(count):
        client = socket.create_connection(("127.0.0.1", port), timeout=10)
        client.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Half: ")
        clients.append(client)
    return clients


def test_clients_that_stall_inside_their_headers_do_not_keep_others_waiting(server):
    # Under sync workers, two such clients took both workers until gunicorn killed them.
    clients = stalling_clients(server.port, 12)
    try:
        for _ in range(5):
            with urllib.request.urlopen(server.base_url + "/healthz", timeout=3) as answer:
                assert answer.status == 200
    finally:
        for client in clients:
            client.close()


def test_a_client_that_drips_its_headers_is_cut_off_at_the_header_deadline(server):
    # The deadline covers the whole request line and headers, not the gap between two
    # reads, so sending a header every half second does not keep the connection.
    (client,) = stalling_clients(server.port, 1)
    started = time.monotonic()
    with client:
        closed = False
        while time.monotonic() - started < 10 and not closed:
            time.sleep(0.5)
            try:
                client.sendall(b"x\r\nX-More: ")
                client.settimeout(0.01)
                closed = client.recv(1) == b""
            except TimeoutError:
                pass
            except OSError:  # reset: the server closed first
                closed = True
    assert closed
    assert time.monotonic() - started < 4  # keep-alive 1 s in this module, not 10 s


def test_a_flood_of_connections_waits_instead_of_running_out_of_files(models_dir, tmp_path):
    # Under `ulimit -n 200` gunicorn's 1,000 connections per worker ran out of file
    # descriptors: every refused accept logged a traceback. Capped at half the limit,
    # the extra clients wait in the listen backlog and are served once the stalled
    # ones reach the header deadline.
    from bench.common import free_port

    port = free_port()
    env = {**os.environ, "MODELS_DIR": str(models_dir), "BIND": f"127.0.0.1:{port}",
           "MODERATION_VAR_DIR": str(tmp_path / "var"), "WEB_CONCURRENCY": "2",
           "GUNICORN_CMD_ARGS": "--keep-alive 1"}
    env.pop("REDIS_URL", None)
    log = tmp_path / "gunicorn.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            ["sh", "-c", 'ulimit -n 200 && exec "$0" -m gunicorn -c gunicorn.conf.py '
             "moderation.wsgi:app", sys.executable],
            cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        answered = False
        for _ in range(300):
            try:
                answered = urllib.request.urlopen(base + "/healthz", timeout=2).status == 200
                break
            except OSError:
                time.sleep(0.2)
        assert answered, log.read_text()
        clients = stalling_clients(port, 500)
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=15) as answer:
                assert answer.status == 200
        finally:
            for client in clients:
                client.close()
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    text = log.read_text()
    assert "Too many open files" not in text
    assert "100 connections per worker, not 1000: the open-file limit (ulimit -n) is 200" in text
