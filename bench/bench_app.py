"""The service as the benchmarks run it.

``gunicorn -c gunicorn.conf.py 'bench.bench_app:make_app()'``

This is the real application from the real factory with two differences, both made
through the factory's arguments (no environment variable, header or URL of a running
service can do either):

* the CAPTCHA text source is injected, so every challenge reads ``BENCH_CAPTCHA_TEXT``
  and the load generator can solve it (the check itself -- the attempt-counting script -- runs
  unchanged);
* the rate limits are set far above the load a benchmark sends from one IP, because
  every benchmark request comes from 127.0.0.1. The limiter still runs and counts in
  Redis on every request; it just never says no. Every other guard keeps its default.
"""

from __future__ import annotations

from moderation import create_app

BENCH_CAPTCHA_TEXT = "BENCH7"

#: Config overrides (the same keys an operator sets through the environment).
BENCH_CONFIG = {
    "RATE_LIMIT_PER_IP": "100000000 per minute",
    "RATE_LIMIT_PER_ARTICLE": "100000000 per minute",
    "RATE_LIMIT_CHALLENGES": "100000000 per minute",
}


def bench_text(length: int) -> str:
    return BENCH_CAPTCHA_TEXT


def make_app():
    """The bench app instance (gunicorn calls this factory in each worker)."""
    return create_app(BENCH_CONFIG, challenge_text=bench_text)
