"""CAPTCHA: challenges issued per second on one core, and the image render time.

One challenge = what the service does for a reader: a new id with its answer stored
in Redis (``ChallengeStore.issue``) plus the PNG drawn for it (``render_png``, which
reads the answer back from Redis). The store is the one the app factory builds, so
this measures whatever image the service draws by default at run time. One process,
one thread: the rate is per core.

Baseline, same run: the ``captcha`` package's default ``ImageCaptcha().generate``.
"""

from __future__ import annotations

import time

from .common import Row, Section, median, percentile
from .inprocess import service_app


def _loop(step, seconds: float, minimum: int) -> tuple[int, float, list[float]]:
    times: list[float] = []
    started = time.perf_counter()
    count = 0
    while count < minimum or time.perf_counter() - started < seconds:
        times.append(step())
        count += 1
    return count, time.perf_counter() - started, times


def run(models_dir: str, *, quick: bool) -> Section:
    from captcha.image import ImageCaptcha

    from moderation.captcha import random_text

    seconds = 0.5 if quick else 4.0
    section = Section("captcha")
    started = time.perf_counter()
    with service_app(models_dir) as app:
        store = app.extensions["captcha"]

        def challenge() -> float:
            issued = store.issue()
            begin = time.perf_counter()
            png = store.render_png(issued.id)
            elapsed = time.perf_counter() - begin
            assert png and png.startswith(b"\x89PNG"), "render_png returned no PNG"
            return elapsed

        for _ in range(10):  # fonts loaded, caches warm
            challenge()
        count, elapsed, renders = _loop(challenge, seconds, 5)
        image_class = type(getattr(store, "image", None) or getattr(store, "_image", None))

    default = ImageCaptcha()
    length = 6

    def baseline() -> float:
        text = random_text(length)
        begin = time.perf_counter()
        default.generate(text, format="png").getvalue()
        return time.perf_counter() - begin

    for _ in range(10):
        baseline()
    base_count, base_elapsed, base_renders = _loop(baseline, seconds, 5)

    rate = count / elapsed
    base_rate = base_count / base_elapsed
    render_ms = median(renders) * 1000
    base_ms = median(base_renders) * 1000
    section.raw = {
        "ours": {"challenges": count, "seconds": elapsed, "per_second": rate,
                 "render_median_ms": render_ms,
                 "render_p99_ms": percentile(renders, 99) * 1000,
                 "image_class": f"{image_class.__module__}.{image_class.__qualname__}"},
        "baseline": {"images": base_count, "seconds": base_elapsed, "per_second": base_rate,
                     "render_median_ms": base_ms,
                     "render_p99_ms": percentile(base_renders, 99) * 1000,
                     "image_class": "captcha.image.ImageCaptcha (defaults, 160x60)"},
    }
    section.rows = [
        Row("captcha: challenges/s per core", rate, "/s", ">= 300/s", rate >= 300,
            baseline=base_rate, ratio=rate / base_rate,
            notes="issue (id + answer in Redis) + render_png; baseline: default "
                  "ImageCaptcha render only"),
        Row("captcha: render median", render_ms, "ms", "<= 3 ms", render_ms <= 3.0,
            baseline=base_ms, ratio=render_ms / base_ms,
            notes=f"render_png incl. its Redis GET; image {section.raw['ours']['image_class']}"),
    ]
    section.seconds = time.perf_counter() - started
    return section
