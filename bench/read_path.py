"""Read path: the article page and the JSON list with 1,000 published comments.

The service runs under gunicorn as ``make run`` starts it (bench app instance, fresh
embedded Redis) with 1,000 published comments stored through ``comments.save``
before the timed phase. Baseline, same run: a bare Flask endpoint returning a
constant body -- the very bytes the service answered for that URL -- under the same
gunicorn settings, running beside ours; the two are measured in alternating rounds.
The article page also issues a CAPTCHA challenge per view (the
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


def _best(rounds: list[dict]) -> dict:
    """The least disturbed round (highest rate), with every round's rate kept beside it."""
    best = dict(max(rounds, key=lambda r: r["rps"]))
    best["rounds_rps"] = [r["rps"] for r in rounds]
    return best


def run(models_dir: str, start_baseline, *, quick: bool) -> tuple[Section, Gunicorn]:
    """Ours and the baseline (serving the bodies ours returned), in alternating rounds.

    Both servers run side by side; for each page the rounds go ours, baseline, ours,
    baseline and the best round of each side counts, so a burst of load from another
    process hits both sides alike (the same rule as the write path).
    """
    duration = 1.0 if quick else 5.0
    rounds = 1 if quick else 2
    section = Section("read path")
    started = time.perf_counter()
    slug = default_article().slug
    pages = {"article page": (f"/articles/{slug}", "/page"),
             "JSON list": (f"/api/v1/articles/{slug}/comments", "/json")}
    ours: dict = {}
    base: dict = {}
    with Gunicorn("bench.bench_app:make_app()", env={"MODELS_DIR": models_dir}) as server:
        seed(server, slug, 20 if quick else PUBLISHED)
        server.warm([path for path, _ in pages.values()], rounds=1 if quick else 4)
        files = {}
        for name, (path, _) in pages.items():
            files[name] = Path(server.var_dir) / ("page.html" if name == "article page"
                                                  else "list.json")
            files[name].write_bytes(fetch(server.base_url + path))
        baseline = start_baseline(files["article page"], files["JSON list"])
        for name, (path, base_path) in pages.items():
            ours_rounds, base_rounds = [], []
            for i in range(rounds):
                ours_rounds.append(_measure(server.base_url, path, duration,
                                            warm=not quick and i == 0))
                base_rounds.append(_measure(baseline.base_url, base_path, duration,
                                            warm=not quick and i == 0))
            ours[name], base[name] = _best(ours_rounds), _best(base_rounds)
            ours[name]["bytes"] = files[name].stat().st_size
            base[name]["bytes"] = len(fetch(baseline.base_url + base_path))
        total = server.redis().zcard(f"mod:article:{slug}:published")
    section.raw = {"ours": ours, "baseline": base, "published_comments": total}
    for name in pages:
        o, b = ours[name], base[name]
        ratio = o["rps"] / b["rps"] if b["rps"] else float("nan")
        section.rows.append(Row(
            f"read: {name} requests/s", o["rps"], "req/s", ">= 0.5x baseline",
            ratio >= 0.5 and o["errors"] == 0, baseline=b["rps"], ratio=ratio,
            notes=(shortfall(o["rps"], b["rps"], WHY_ROWS[name]) +
                   f"best of {len(o['rounds_rps'])} x {duration:.0f} s alternating with the "
                   f"baseline (rounds: {', '.join(str(r) for r in o['rounds_rps'])} vs "
                   f"{', '.join(str(r) for r in b['rounds_rps'])} req/s); "
                   f"{total} published, {o['bytes']} B body; p50 {o['p50_ms']} ms "
                   f"(base {b['p50_ms']}), p99 {o['p99_ms']} ms (base {b['p99_ms']}); "
                   f"errors {o['errors']}"),
        ))
    section.seconds = time.perf_counter() - started
    return section, baseline
