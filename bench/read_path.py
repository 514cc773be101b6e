"""Read path: the article page and the JSON list with 1,000 published comments.

The service runs under gunicorn as ``make run`` starts it (bench app instance, fresh
embedded Redis) with 1,000 published comments stored through ``comments.save``
before the timed phase. Baseline, same run: a bare Flask endpoint returning a
constant body -- the very bytes the service answered for that URL -- under the same
gunicorn settings. The article page also issues a CAPTCHA challenge per view (the
form needs one); that is part of the page's cost.
"""

from __future__ import annotations

import random
import time
import urllib.request
from pathlib import Path

from moderation import comments
from moderation.articles import default_article

from . import loadgen
from .common import Gunicorn, Row, Section, shortfall
from .texts import AUTHORS, comment_texts

CONNECTIONS = 8
PUBLISHED = 1000
#: The bench.costs row that explains a read figure's cost.
WHY_ROWS = {"article page": "why page", "JSON list": "why page"}


def seed(server: Gunicorn, slug: str, count: int) -> None:
    connection = server.redis()
    texts = comment_texts(seed=1)
    rng = random.Random(1)
    now = time.time()
    for i in range(count):
        comment = comments.make_comment(
            article=slug, author=AUTHORS[i % len(AUTHORS)], body=next(texts),
            user_agent="bench", ip_hash="bench", score=rng.random() * 0.1,
            model_version="bench", verdict="publish", reason="bench seed",
            explanation=[], now=now - count + i,
        )
        comments.save(connection, comment)


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.read()


def _measure(base_url: str, path: str, duration: float, warm: bool = True) -> dict:
    request_file = loadgen.write_requests([f"GET {path}"])
    if warm:
        loadgen.run(base_url, request_file, duration=1, connections=CONNECTIONS)
    result = loadgen.run(base_url, request_file, duration=duration, connections=CONNECTIONS)
    return {
        "rps": round(result["rps"], 1), "p50_ms": round(result["p50_ms"], 2),
        "p99_ms": round(result["p99_ms"], 2), "requests": result["requests"],
        "errors": sum(c for s, c in result["statuses"].items() if s != 200)
        + result["socket_errors"],
        "statuses": result["statuses"], "tool": result["tool"],
    }


def run(models_dir: str, start_baseline, *, quick: bool) -> tuple[Section, Gunicorn]:
    """Measure ours, then start the baseline with the bodies ours returned."""
    duration = 1.0 if quick else 5.0
    section = Section("read path")
    started = time.perf_counter()
    slug = default_article().slug
    pages = {"article page": f"/articles/{slug}",
             "JSON list": f"/api/v1/articles/{slug}/comments"}
    ours: dict = {}
    bodies: dict[str, bytes] = {}
    with Gunicorn("bench.bench_app:make_app()", env={"MODELS_DIR": models_dir}) as server:
        seed(server, slug, 20 if quick else PUBLISHED)
        server.warm(list(pages.values()), rounds=1 if quick else 4)
        for name, path in pages.items():
            bodies[name] = fetch(server.base_url + path)
            ours[name] = _measure(server.base_url, path, duration, warm=not quick)
            ours[name]["bytes"] = len(bodies[name])
        total = server.redis().zcard(f"mod:article:{slug}:published")
    files = {}
    for name, body in bodies.items():
        path = Path(server.var_dir) / ("page.html" if name == "article page" else "list.json")
        path.write_bytes(body)
        files[name] = path
    baseline = start_baseline(files["article page"], files["JSON list"])
    base: dict = {}
    for name, path in (("article page", "/page"), ("JSON list", "/json")):
        base[name] = _measure(baseline.base_url, path, duration, warm=not quick)
        base[name]["bytes"] = len(fetch(baseline.base_url + path))
    section.raw = {"ours": ours, "baseline": base, "published_comments": total}
    for name in pages:
        o, b = ours[name], base[name]
        ratio = o["rps"] / b["rps"] if b["rps"] else float("nan")
        section.rows.append(Row(
            f"read: {name} requests/s", o["rps"], "req/s", ">= 0.5x baseline",
            ratio >= 0.5 and o["errors"] == 0, baseline=b["rps"], ratio=ratio,
            notes=(shortfall(o["rps"], b["rps"], WHY_ROWS[name]) +
                   f"{total} published, {o['bytes']} B body; p50 {o['p50_ms']} ms "
                   f"(base {b['p50_ms']}), p99 {o['p99_ms']} ms (base {b['p99_ms']}); "
                   f"errors {o['errors']}"),
        ))
    section.seconds = time.perf_counter() - started
    return section, baseline
