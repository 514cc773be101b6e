"""Where a request's time goes: in-process CPU and Redis round trips per request.

The throughput rows say *how much* the write path and the article page fall short;
these rows say *why*, measured in the same run. Each request is sent straight to the
WSGI app inside this process (no HTTP, no gunicorn, no load generator), against a
private redis-server, and timed with ``time.process_time`` over many requests: the
app's own CPU, which is what two workers on two cores share. Round trips are
counted on redis-py's connections (one send of a command or a pipeline = one trip);
each costs this process a send and a receive, and redis-server CPU besides.

* **write**: ``POST /api/v1/articles/<slug>/comments`` of the bench app (CAPTCHA
  answered through the injected text source, fill-time tokens aged past
  ``MIN_FILL_SECONDS`` as in the write benchmark), the same POST with Flask-Limiter
  switched off (``RATELIMIT_ENABLED=False``: the limiter's share, by difference), the
  scorer alone on the same texts, and the baseline's ``POST /xadd``.
* **page**: the article page and the JSON list with 1,000 published comments, the
  baseline's constant page, and two of the page's per-visitor steps on their own:
  Flask-WTF's CSRF token with the session cookie it sets for a new visitor, and the
  signed fill-time stamp.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from typing import Any

import redis.connection
from werkzeug.test import EnvironBuilder

from moderation import comments
from moderation.articles import default_article

from .bench_app import BENCH_CAPTCHA_TEXT, bench_text
from .common import Row, Section
from .inprocess import service_app
from .texts import AUTHORS, comment_texts

WARMUP = 30


class TripCounter:
    """Counts redis-py sends (one per command or per pipeline) while installed."""

    def __init__(self) -> None:
        self.count = 0

    @contextmanager
    def installed(self):
        original = redis.connection.AbstractConnection.send_packed_command
        counter = self

        def counting(connection, *args, **kwargs):
            counter.count += 1
            return original(connection, *args, **kwargs)

        redis.connection.AbstractConnection.send_packed_command = counting
        try:
            yield self
        finally:
            redis.connection.AbstractConnection.send_packed_command = original


def _environ(path: str, method: str = "GET", body: dict | None = None) -> dict:
    builder = EnvironBuilder(
        path=path, method=method, environ_base={"REMOTE_ADDR": "127.0.0.1"},
        data=None if body is None else json.dumps(body),
        content_type=None if body is None else "application/json",
    )
    return builder.get_environ()


def per_request(app: Callable, environs: Iterable[dict]) -> dict[str, Any]:
    """CPU ms and Redis round trips per request over ``environs``; statuses seen."""
    statuses: dict[str, int] = {}

    def start_response(status: str, headers, exc_info=None):
        statuses[status[:3]] = statuses.get(status[:3], 0) + 1

    environs = list(environs)
    counter = TripCounter()
    with counter.installed():
        started = time.process_time()
        for environ in environs:
            b"".join(app(environ, start_response))
        cpu = time.process_time() - started
    n = max(1, len(environs))
    return {"cpu_ms": 1000 * cpu / n, "round_trips": counter.count / n, "requests": n,
            "statuses": statuses}


def _repeat(environ: dict, count: int) -> Iterable[dict]:
    # A WSGI server hands each request a fresh environ; the input stream is consumed.
    return (dict(environ) for _ in range(count))


# -- write path ---------------------------------------------------------------------


def _posts(app, slug: str, count: int, texts) -> list[dict]:
    """``count`` ready POST environs: fresh challenges, aged fill-time tokens."""
    store = app.extensions["captcha"]
    clock = app.extensions["form_clock"]
    with app.app_context():
        challenges = [store.issue().id for _ in range(count)]
    rendered = time.time() - float(app.config["MIN_FILL_SECONDS"]) - 1
    path = f"/api/v1/articles/{slug}/comments"
    return [
        _environ(path, "POST", {
            "body": next(texts), "author": AUTHORS[i % len(AUTHORS)],
            "challenge_id": challenge_id, "captcha_answer": BENCH_CAPTCHA_TEXT,
            "form_token": clock.stamp(now=rendered),
        })
        for i, challenge_id in enumerate(challenges)
    ]


def _post_costs(models_dir: str, count: int, **config) -> tuple[dict, dict]:
    texts = comment_texts(seed=7)
    slug = default_article().slug
    with service_app(models_dir, config=config, challenge_text=bench_text) as app:
        per_request(app, _posts(app, slug, WARMUP, texts))
        post = per_request(app, _posts(app, slug, count, texts))
        sample = [next(texts) for _ in range(count)]
        with app.app_context():
            from moderation.scoring import get_scorer

            scorer = get_scorer()
            started = time.process_time()
            for text in sample:
                scorer.score(text)
            scoring = {"cpu_ms": 1000 * (time.process_time() - started) / len(sample)}
    return post, scoring


def _baseline_app(redis_url: str, page: bytes = b"", listing: bytes = b""):
    """The bare Flask baselines (bench.baseline_app) on ``redis_url``, in this process."""
    from . import baseline_app

    previous = os.environ.get("REDIS_URL")
    os.environ["REDIS_URL"] = redis_url
    try:
        app = baseline_app.make_app()
    finally:
        if previous is None:
            os.environ.pop("REDIS_URL", None)
        else:
            os.environ["REDIS_URL"] = previous
    if page:
        app.view_functions["constant_page"] = lambda: app.response_class(
            page, mimetype="text/html")
    return app


def _xadd_costs(count: int) -> dict:
    from .common import redis_server

    texts = comment_texts(seed=8)
    with redis_server() as url:
        app = _baseline_app(url)
        environs = [_environ("/xadd", "POST", {"body": next(texts), "author": "a"})
                    for _ in range(WARMUP + count)]
        per_request(app, environs[:WARMUP])
        return per_request(app, environs[WARMUP:])


def write_costs(models_dir: str, count: int) -> dict[str, Any]:
    full, scoring = _post_costs(models_dir, count)
    unlimited, _ = _post_costs(models_dir, count, RATELIMIT_ENABLED=False)
    return {"post": full, "post_without_rate_limits": unlimited, "scoring": scoring,
            "baseline_xadd": _xadd_costs(count)}


# -- article page ---------------------------------------------------------------------


def _seed(app, slug: str, published: int) -> None:
    connection = app.extensions["redis"]
    texts = comment_texts(seed=1)
    for i in range(published):
        comment = comments.make_comment(
            article=slug, author=AUTHORS[i % len(AUTHORS)], body=next(texts),
            user_agent="bench", ip_hash="bench", score=0.01, model_version="bench",
            verdict="publish", reason="bench seed", explanation=[],
        )
        comments.save(connection, comment)


def _per_call(func: Callable[[], object], count: int) -> float:
    started = time.process_time()
    for _ in range(count):
        func()
    return 1000 * (time.process_time() - started) / count


def _visitor_steps(app, slug: str, count: int) -> dict[str, float]:
    """CPU ms of two per-visitor steps of the page, each on its own."""
    from flask import session
    from flask_wtf.csrf import generate_csrf

    def context_only() -> None:
        with app.test_request_context(f"/articles/{slug}"):
            app.session_interface.save_session(app, session, app.response_class(""))

    def csrf_for_new_visitor() -> None:
        with app.test_request_context(f"/articles/{slug}"):
            generate_csrf()
            app.session_interface.save_session(app, session, app.response_class(""))

    clock = app.extensions["form_clock"]
    # The request context is needed for the token but is not the token's cost.
    context_ms = _per_call(context_only, count)
    return {"csrf_and_session_cookie_ms": _per_call(csrf_for_new_visitor, count) - context_ms,
            "fill_time_stamp_ms": _per_call(clock.stamp, count)}


def page_costs(models_dir: str, count: int, published: int) -> dict[str, Any]:
    slug = default_article().slug
    page_path, list_path = f"/articles/{slug}", f"/api/v1/articles/{slug}/comments"
    with service_app(models_dir) as app:
        _seed(app, slug, published)
        results: dict[str, Any] = {}
        for name, path in (("page", page_path), ("list", list_path)):
            per_request(app, _repeat(_environ(path), WARMUP))
            results[name] = per_request(app, _repeat(_environ(path), count))
        body = app.test_client().get(page_path).data
        results["visitor_steps"] = _visitor_steps(app, slug, count)
        redis_url = app.config["REDIS_URL"]
        baseline = _baseline_app(redis_url, page=body)
        per_request(baseline, _repeat(_environ("/page"), WARMUP))
        results["baseline_page"] = per_request(baseline, _repeat(_environ("/page"), count))
    return results


# -- rows -------------------------------------------------------------------------------


def _ms(value: float) -> str:
    return f"{value:.2f} ms"


def rows(write: dict[str, Any], page: dict[str, Any]) -> list[Row]:
    post, base = write["post"], write["baseline_xadd"]
    unlimited = write["post_without_rate_limits"]
    limiter_ms = post["cpu_ms"] - unlimited["cpu_ms"]
    limiter_trips = post["round_trips"] - unlimited["round_trips"]
    steps = page["visitor_steps"]
    ours_page, base_page, listing = page["page"], page["baseline_page"], page["list"]
    return [
        Row("why write: in-process CPU per POST", round(post["cpu_ms"], 3), "ms", "(info)",
            None, round(base["cpu_ms"], 3), round(post["cpu_ms"] / base["cpu_ms"], 2),
            f"Redis round trips {post['round_trips']:.1f} vs {base['round_trips']:.1f}; "
            f"Flask-Limiter (2 limits) {_ms(limiter_ms)} and {limiter_trips:.1f} trips "
            f"(the same POST with RATELIMIT_ENABLED=False: {_ms(unlimited['cpu_ms'])}); "
            f"scoring with explanation {_ms(write['scoring']['cpu_ms'])}; the rest is the "
            f"CAPTCHA check, guards, validation, storage and Flask; baseline = POST /xadd; "
            f"statuses {post['statuses']}"),
        Row("why page: in-process CPU per article page", round(ours_page["cpu_ms"], 3), "ms",
            "(info)", None, round(base_page["cpu_ms"], 3),
            round(ours_page["cpu_ms"] / base_page["cpu_ms"], 2),
            f"Redis round trips {ours_page['round_trips']:.1f} vs "
            f"{base_page['round_trips']:.1f}; of ours: CSRF token + session cookie for a new "
            f"visitor {_ms(steps['csrf_and_session_cookie_ms'])}, fill-time stamp "
            f"{_ms(steps['fill_time_stamp_ms'])}; the JSON list (same listing read) "
            f"{_ms(listing['cpu_ms'])}; baseline = the constant page of the same bytes"),
    ]


def run(models_dir: str, quick: bool = False) -> Section:
    count = 20 if quick else 600
    published = 20 if quick else 1000
    write = write_costs(models_dir, count)
    page = page_costs(models_dir, count * 3, published)
    section = Section("costs", rows=rows(write, page), raw={"write": write, "page": page})
    section.notes.append(
        "costs: in-process (WSGI app called directly, time.process_time over "
        f"{count} POSTs / {count * 3} page views, real redis-server); Redis round trips "
        "counted on redis-py's connections; see bench/costs.py")
    return section
