"""Both load generators report the same shape: statuses counted by int, as readers expect."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench import loadgen


class Created(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Created)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_the_python_client_counts_statuses_by_int_like_wrk(server, monkeypatch):
    """Its JSON came back with string keys, so a run of 201s counted as all errors."""
    monkeypatch.setenv("BENCH_LOADGEN", "python")
    requests = loadgen.write_requests(['POST /comments {"body": "hi"}'])
    try:
        result = loadgen.run(server, requests, duration=0.5, connections=2)
    finally:
        requests.unlink()
    assert result["tool"] == "python"
    assert result["requests"] > 0
    assert result["statuses"] == {201: result["requests"]}
