"""Memory: RSS of each gunicorn worker after 10k requests, and its growth up to 50k.

The service runs under gunicorn as ``make run`` starts it (bench app instance) and
gets a mix of the three requests readers make -- the article page, the JSON list
and a comment POST (fresh CAPTCHA, distinct text) -- in equal parts. RSS is read
from /proc for every worker at each checkpoint of total requests served. The
baseline column is the worker's RSS right after start-up (model loaded, nothing
served yet).
"""

from __future__ import annotations

import math
import time

from moderation.articles import default_article

from . import loadgen
from .bench_app import BENCH_CAPTCHA_TEXT
from .common import Gunicorn, Row, Section, rss_bytes, smaps_rollup
from .texts import comment_texts, post_line
from .write_path import issue_challenges

OK = {200, 201, 202, 422}  # 422: stored as rejected, a valid answer
MB = 1024 * 1024
#: Growth between the 10k and 50k checkpoints that we still call "no growth":
#: allocator arenas and caches settle in steps of a few MB.
GROWTH_TOLERANCE_MB = 5.0
CONNECTIONS = 8
#: Wall-clock budget of the load phase, so `make bench` stays under 10 minutes on a
#: slow or busy machine; the table says so when the last checkpoint was not reached.
BUDGET_SECONDS = 170.0


def _rss(server: Gunicorn) -> dict[int, float]:
    return {pid: rss_bytes(pid) / MB for pid in server.worker_pids()}


def _smaps(server: Gunicorn) -> dict[int, dict[str, float]]:
    return {pid: {k: round(v / MB, 1) for k, v in smaps_rollup(pid).items()}
            for pid in server.worker_pids()}


def run(models_dir: str, *, quick: bool) -> Section:
    section = Section("memory")
    started = time.perf_counter()
    checkpoints = [60, 120] if quick else [10_000, 20_000, 30_000, 40_000, 50_000]
    first, last = checkpoints[0], checkpoints[-1]
    slug = default_article().slug
    texts = comment_texts(seed=2)
    paths = (f"/articles/{slug}", f"/api/v1/articles/{slug}/comments")
    post_path = f"/api/v1/articles/{slug}/comments"
    samples: list[dict] = []
    errors = 0
    wrapped = 0
    with Gunicorn("bench.bench_app:make_app()", env={"MODELS_DIR": models_dir}) as server:
        pids = sorted(server.worker_pids())
        at_start = _rss(server)
        at_start_smaps = _smaps(server)
        served = 0
        # First guess, corrected after every chunk. Too low a guess makes the first
        # chunk run out of challenges (300 did on a faster machine: 1,087 reused ones
        # answered 400); too high only issues challenges nobody sends.
        rate = 1000.0
        deadline = time.monotonic() + (30.0 if quick else BUDGET_SECONDS)
        for checkpoint in checkpoints:
            if time.monotonic() >= deadline:
                break
            while served < checkpoint and time.monotonic() < deadline:
                remaining = checkpoint - served
                chunk_seconds = max(1.0, min(8.0, remaining / rate,
                                             deadline - time.monotonic()))
                # 2.5x the expected requests: a chunk must not run out of challenges
                # (a reused challenge answers 400, counted as an error).
                n_posts = int(rate * chunk_seconds * 2.5 / 3) + 50
                lines = []
                for challenge_id in issue_challenges(server, n_posts):
                    lines.append(f"GET {paths[0]}")
                    lines.append(f"GET {paths[1]}")
                    lines.append(post_line(post_path, next(texts), challenge_id,
                                           BENCH_CAPTCHA_TEXT))
                result = loadgen.run(server.base_url, loadgen.write_requests(lines),
                                     duration=chunk_seconds, connections=CONNECTIONS)
                served += result["requests"]
                rate = max(result["rps"], 20.0)
                errors += sum(c for s, c in result["statuses"].items() if s not in OK)
                errors += result["socket_errors"]
                wrapped += result["wrapped"]
            if served >= checkpoint:
                samples.append({"requests": served, "rss_mb": _rss(server),
                                "smaps_mb": _smaps(server)})
        if not samples or samples[-1]["requests"] < served:
            samples.append({"requests": served, "rss_mb": _rss(server),
                            "smaps_mb": _smaps(server)})
        same_workers = sorted(server.worker_pids()) == pids
    reached = samples[-1]["requests"]
    complete = reached >= last
    worst = max(samples[0]["rss_mb"].values())
    growth = max(
        samples[-1]["rss_mb"][pid] - samples[0]["rss_mb"][pid] for pid in samples[0]["rss_mb"]
    )
    start_mb = max(at_start.values())
    section.raw = {
        "checkpoints": samples, "at_start_mb": at_start, "at_start_smaps_mb": at_start_smaps,
        "errors": errors,
        "same_workers_throughout": same_workers, "wrapped": wrapped,
        "growth_tolerance_mb": GROWTH_TOLERANCE_MB, "complete": complete,
    }
    shown = samples[0]["requests"] if samples[0]["requests"] < first else first
    label = f"{shown // 1000}k" if shown >= 1000 else str(shown)
    label_last = f"{reached / 1000:.0f}k" if reached >= 1000 else str(reached)
    first_smaps = samples[0]["smaps_mb"]
    pss = max(v["pss"] for v in first_smaps.values())
    uss = max(v["uss"] for v in first_smaps.values())
    section.rows = [
        Row(f"memory: worker RSS after {label} requests", worst, "MB", "<= 150 MB",
            worst <= 150 and same_workers and samples[0]["requests"] >= first, baseline=start_mb,
            ratio=worst / start_mb if start_mb else math.nan,
            notes=f"largest of {len(pids)} workers; baseline = RSS at start-up; "
                  f"mix of page/list/POST; errors {errors}; RSS counts pages shared "
                  f"with the master and the other worker in full"),
        Row(f"memory: worker PSS after {label} requests", pss, "MB", "(info)", None,
            baseline=max(v["pss"] for v in at_start_smaps.values()),
            notes=f"proportional set size (shared pages split among sharers); USS "
                  f"(private to the worker) {uss:.0f} MB; /proc/<pid>/smaps_rollup"),
        Row(f"memory: worker RSS growth {label} -> {label_last}", growth, "MB",
            f"no growth (<= {GROWTH_TOLERANCE_MB:g} MB)",
            (growth <= GROWTH_TOLERANCE_MB and same_workers) if complete else None,
            notes=f"served {reached} in all"
                  + ("" if complete else f" (budget {BUDGET_SECONDS:.0f} s ran out before "
                     f"{last}: growth not judged)") + "; "
                  + ("same worker pids throughout" if same_workers else "A WORKER RESTARTED")),
    ]
    section.seconds = time.perf_counter() - started
    return section
