"""Prometheus metrics: what the service decided, how fast, and what it refused.

Counted with ``prometheus_client``. Under gunicorn every worker writes its values to
files in ``PROMETHEUS_MULTIPROC_DIR`` (``gunicorn.conf.py`` points it at
``var/metrics`` and empties it at start-up, before any worker exists), and a scrape
answered by any worker adds up all of them; without it (tests, ``flask run``) the
process's own registry answers. The review queue's size is read from Redis at
scrape time, so it is right whichever worker answers.

Names and labels (bounded sets; never a comment, an IP or a user):

=========================================  =============================================
``moderation_comments_total``              comments stored; ``status`` published / held
                                           / rejected, ``decided_by`` model or the
                                           deciding guards (e.g. ``fill_time``)
``moderation_captcha_checks_total``        ``result`` passed / failed / required
``moderation_rate_limited_total``          requests refused with 429, by ``endpoint``
``moderation_scoring_seconds``             histogram: one comment scored and explained
``moderation_http_requests_total``         by ``endpoint``, ``method``, ``status``
``moderation_http_request_seconds``        histogram by ``endpoint``
``moderation_model_info``                  1 per worker (``pid``) for the ``version`` it
                                           serves: a promotion shows up worker by worker
``moderation_review_queue_size``           comments waiting for a moderator (Redis);
                                           absent while Redis does not answer
``moderation_redis_may_evict``             1 when Redis's ``policy`` (label) may delete
                                           keys when full, 0 for noeviction; absent
                                           when Redis will not tell (eviction.py)
``moderation_redis_evicted_keys``          keys Redis evicted since it started (INFO)
=========================================  =============================================
"""

from __future__ import annotations

import os
import time

import redis
from flask import Flask, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from . import eviction, keys

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

COMMENTS = Counter(
    "moderation_comments_total", "Comments stored, by status and what decided it.",
    ["status", "decided_by"],
)
CAPTCHA_CHECKS = Counter(
    "moderation_captcha_checks_total", "CAPTCHA answers checked, by result.", ["result"]
)
RATE_LIMITED = Counter(
    "moderation_rate_limited_total", "Requests refused by a rate limit (429).", ["endpoint"]
)
SCORING_SECONDS = Histogram(
    "moderation_scoring_seconds", "Time to score and explain one comment.",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1),
)
HTTP_REQUESTS = Counter(
    "moderation_http_requests_total", "HTTP requests answered.", ["endpoint", "method", "status"]
)
HTTP_SECONDS = Histogram(
    "moderation_http_request_seconds", "Time to answer an HTTP request, in the app.",
    ["endpoint"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
MODEL_INFO = Gauge(
    "moderation_model_info", "The model version a worker serves (1).", ["version"],
    multiprocess_mode="liveall",
)


def model_switched(old: str | None, new: str) -> None:
    """Record the version this process now serves (and no longer the old one)."""
    if old and old != new:
        MODEL_INFO.labels(version=old).set(0)
    MODEL_INFO.labels(version=new).set(1)


def _every_worker() -> CollectorRegistry | None:
    """Under gunicorn, a registry that adds up every worker's files in
    ``PROMETHEUS_MULTIPROC_DIR``; None in a single process."""
    if not os.environ.get(MULTIPROC_ENV):
        return None
    every_worker = CollectorRegistry()
    MultiProcessCollector(every_worker)
    return every_worker


def served_versions() -> dict[str, str] | None:
    """Under gunicorn, the version each live worker serves (pid -> version), read from
    ``moderation_model_info`` in ``PROMETHEUS_MULTIPROC_DIR`` (a few small files);
    None in a single process (tests, ``flask run``), where the scorer itself says."""
    every_worker = _every_worker()
    if every_worker is None:
        return None
    served: dict[str, str] = {}
    for family in every_worker.collect():
        if family.name != "moderation_model_info":
            continue
        for sample in family.samples:
            if sample.value == 1 and "pid" in sample.labels:
                served[sample.labels["pid"]] = sample.labels.get("version", "")
    return served


class _QueueSize:
    """Reads the review queue's size from Redis when scraped."""

    def __init__(self, connection: redis.Redis) -> None:
        self.connection = connection

    def collect(self):
        try:
            size = self.connection.zcard(keys.REVIEW_QUEUE)
        except redis.RedisError:  # the rest of the scrape still shows the outage's 503s
            return
        family = GaugeMetricFamily(
            "moderation_review_queue_size", "Comments waiting for a moderator."
        )
        family.add_metric([], float(size))
        yield family


class _Eviction:
    """Reads from Redis, when scraped, whether it may evict keys and how many it has."""

    def __init__(self, connection: redis.Redis) -> None:
        self.connection = connection

    def collect(self):
        try:
            found = eviction.read_policy(self.connection)
        except redis.RedisError:
            return
        if not found.known:  # absent rather than a guess: see moderation/eviction.py
            return
        family = GaugeMetricFamily(
            "moderation_redis_may_evict",
            "1 when Redis may delete keys to free memory (its maxmemory-policy).",
            labels=["policy"],
        )
        family.add_metric([found.policy], 1.0 if found.may_evict else 0.0)
        yield family
        if found.evicted_keys is not None:
            evicted = GaugeMetricFamily(
                "moderation_redis_evicted_keys", "Keys Redis evicted since it started."
            )
            evicted.add_metric([], float(found.evicted_keys))
            yield evicted


def exposition(connection: redis.Redis) -> tuple[bytes, str]:
    """The metrics in Prometheus' text format, and its content type."""
    live = CollectorRegistry()
    live.register(_QueueSize(connection))
    live.register(_Eviction(connection))
    body = generate_latest(_every_worker() or REGISTRY)
    return body + generate_latest(live), CONTENT_TYPE_LATEST


#: Methods counted by name; any other (a client may send any token) counts as "other",
#: so no client can add label values, and so series, at will.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

#: (endpoint, method, status) -> its two labelled children: looking a child up by
#: labels takes a lock and validation, ~5 us each, on every request otherwise.
_http_children: dict[tuple[str, str, int], tuple] = {}


def _children(endpoint: str, method: str, status: int) -> tuple:
    key = (endpoint, method if method in KNOWN_METHODS else "other", status)
    children = _http_children.get(key)
    if children is None:
        children = _http_children[key] = (
            HTTP_SECONDS.labels(endpoint=key[0]),
            HTTP_REQUESTS.labels(endpoint=key[0], method=key[1], status=str(key[2])),
        )
    return children


def _started() -> None:
    g.metrics_started = time.perf_counter()


def _answered(response):
    started = g.pop("metrics_started", None)
    seconds, requests = _children(request.endpoint or "unmatched", request.method,
                                  response.status_code)
    if started is not None:
        seconds.observe(time.perf_counter() - started)
    requests.inc()
    return response


def init_app(app: Flask) -> None:
    """Time and count every request (the scorer records its own version)."""
    app.before_request(_started)
    app.after_request(_answered)
