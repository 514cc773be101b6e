"""Bare Flask baselines, served by the same gunicorn config as the service.

Run as ``gunicorn -c gunicorn.conf.py 'bench.baseline_app:make_app()'``:

* ``POST /xadd``: parse the JSON body and do one Redis ``XADD`` (the write baseline);
* ``GET /page`` and ``GET /json``: a constant body, the same bytes the service's
  article page / JSON list returned in this run (files named by ``BENCH_PAGE_FILE``
  and ``BENCH_JSON_FILE``), so the read baseline sends a page of the same size.
"""

from __future__ import annotations

import os
from pathlib import Path

import redis
from flask import Flask, jsonify, request

STREAM = "bench:baseline:stream"


def _constant(env_name: str, default: bytes) -> bytes:
    path = os.environ.get(env_name)
    return Path(path).read_bytes() if path else default


def make_app() -> Flask:
    app = Flask(__name__)
    # REDIS_URL is set by gunicorn.conf.py's on_starting hook (the embedded Redis).
    client = redis.Redis.from_url(os.environ["REDIS_URL"], decode_responses=True)
    page = _constant("BENCH_PAGE_FILE", b"<html><body>bench</body></html>")
    listing = _constant("BENCH_JSON_FILE", b'{"comments": []}')

    @app.post("/xadd")
    def xadd():
        data = request.get_json()
        fields = {"body": data.get("body", ""), "author": data.get("author", "")}
        entry = client.xadd(STREAM, fields)
        return jsonify(id=entry), 201

    @app.get("/page")
    def constant_page():
        return app.response_class(page, mimetype="text/html")

    @app.get("/json")
    def constant_json():
        return app.response_class(listing, mimetype="application/json")

    @app.get("/")
    def index():
        return "ok"

    return app
