"""A longer fuzzing campaign against the public JSON API (standalone; not part of the tests).

    python -m bench.fuzz_campaign                      # 20,000 requests, a fresh seed
    python -m bench.fuzz_campaign --requests 100000 --seed 7
    python -m bench.fuzz_campaign --policy always      # CAPTCHA on every comment

The tests (``tests/test_fuzz_api.py``) run ~2,400 derandomized requests; this runs
many more with a seed of your choice (printed, so any failure can be replayed), on a
private redis-server (unix socket, like the embedded one) and the real model, for each
operation of ``/api/v1/openapi.json`` in positive and negative generation modes. It
does not stop at the first failure: every failing check is recorded (after
Hypothesis shrinks it) and the run goes on.

Checks: no 5xx, status code documented, content type documented, body matching the
documented schema. Results go to ``bench/results/fuzz_campaign.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"

#: Share of the request budget per (operation, mode).
WEIGHTS = {
    ("POST /api/v1/articles/{slug}/comments", "positive"): 0.30,
    ("POST /api/v1/articles/{slug}/comments", "negative"): 0.25,
    ("GET /api/v1/articles/{slug}/comments", "positive"): 0.12,
    ("GET /api/v1/articles/{slug}/comments", "negative"): 0.12,
    ("GET /api/v1/comments/{comment_id}", "positive"): 0.10,
    ("GET /api/v1/comments/{comment_id}", "negative"): 0.09,
    ("POST /api/v1/challenges", "positive"): 0.01,
    ("GET /api/v1/form-token", "positive"): 0.01,
}


def build_app(redis_url: str, models_dir: Path, policy: str):
    from moderation import create_app

    from .common import scratch_dir

    return create_app({
        "REDIS_URL": redis_url,
        "MODELS_DIR": str(models_dir),
        "SECRET_KEY": secrets.token_hex(16),
        "IP_HASH_KEY": secrets.token_hex(16),
        "CHALLENGE_POLICY": policy,
        "MIN_FILL_SECONDS": 0,
        "RATE_LIMIT_PER_IP": "1000000 per minute",
        "RATE_LIMIT_PER_ARTICLE": "1000000 per minute",
        "RATE_LIMIT_CHALLENGES": "1000000 per minute",
        "LOG_LEVEL": "ERROR",
        "VAR_DIR": str(scratch_dir("fuzz-var-")),
    })


def fuzz_operation(app, label: str, mode: str, examples: int, seed: int, slug: str) -> dict:
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis import strategies as st
    from schemathesis.checks import not_a_server_error
    from schemathesis.generation import GenerationMode
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [not_a_server_error, status_code_conformance, content_type_conformance,
              response_schema_conformance]
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operation = schema.find_operation_by_label(label)
    strategy = operation.as_strategy(generation_mode=GenerationMode(mode))
    statuses: dict[int, int] = {}
    failures: list[str] = []

    @hypothesis_seed(seed)
    @settings(max_examples=examples, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate, Phase.shrink],
              suppress_health_check=list(HealthCheck), report_multiple_bugs=True)
    @given(case=strategy, real_article=st.booleans())
    def fuzz(case, real_article):
        if real_article and case.path_parameters and "slug" in case.path_parameters:
            case.path_parameters["slug"] = slug
        response = case.call()
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        case.validate_response(response, checks=checks)

    started = time.perf_counter()
    try:
        fuzz()
    except BaseException as exc:  # noqa: BLE001 - record every failure, keep going
        if isinstance(exc, KeyboardInterrupt):
            raise
        failures.append(f"{type(exc).__name__}: {str(exc)[:2000]}")
    return {
        "operation": label,
        "mode": mode,
        "requests": sum(statuses.values()),
        "statuses": dict(sorted(statuses.items())),
        "server_errors": sum(n for s, n in statuses.items() if s >= 500),
        "failures": failures,
        "seconds": round(time.perf_counter() - started, 1),
    }


def run(*, requests: int = 20_000, seed: int | None = None, policy: str = "adaptive",
        models_dir: Path | None = None, quick: bool = False) -> dict:
    """Run a campaign and return its results (``make bench`` calls this with a small budget)."""
    if quick:
        requests = min(requests, 60)
    seed = seed if seed is not None else secrets.randbelow(2**31)
    print(f"[fuzz] seed {seed}, {requests} requests, policy {policy}", file=sys.stderr)

    from moderation.articles import default_article

    from .common import ensure_model, redis_server

    models_dir = ensure_model(models_dir)
    rows = []
    with redis_server() as url:
        app = build_app(url, models_dir, policy)
        for (label, mode), weight in WEIGHTS.items():
            examples = max(1, int(requests * weight))
            row = fuzz_operation(app, label, mode, examples, seed, default_article().slug)
            rows.append(row)
            print(f"[fuzz] {mode:8} {label:42} {row['requests']:6} requests, "
                  f"{row['server_errors']} 5xx, {len(row['failures'])} failing checks, "
                  f"{row['seconds']} s", file=sys.stderr, flush=True)
    return {"seed": seed, "policy": policy, "requests": sum(r["requests"] for r in rows),
            "server_errors": sum(r["server_errors"] for r in rows),
            "failing_operations": sum(len(r["failures"]) for r in rows), "operations": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20_000, help="total request budget")
    parser.add_argument("--seed", type=int, default=None, help="Hypothesis seed (default: random)")
    parser.add_argument("--policy", default="adaptive", choices=("always", "remember", "adaptive"))
    parser.add_argument("--models-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    result = run(requests=args.requests, seed=args.seed, policy=args.policy,
                 models_dir=args.models_dir)
    seed, rows = result["seed"], result["operations"]
    total, errors, failing = (result["requests"], result["server_errors"],
                              result["failing_operations"])
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "fuzz_campaign.json").write_text(json.dumps(result, indent=2))
    lines = [f"# Fuzz campaign (seed {seed}, policy {result['policy']})", "",
             f"{total} requests, {errors} answered 5xx, {failing} operations with failing checks.",
             "", "| mode | operation | requests | 5xx | failing checks | statuses | seconds |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        statuses = ", ".join(f"{s}: {n}" for s, n in r["statuses"].items())
        lines.append(f"| {r['mode']} | `{r['operation']}` | {r['requests']} | "
                     f"{r['server_errors']} | {len(r['failures'])} | {statuses} | {r['seconds']} |")
    for r in rows:
        for failure in r["failures"]:
            lines += ["", f"## {r['mode']} {r['operation']}", "", "```", failure, "```"]
    (RESULTS_DIR / "fuzz_campaign.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:3]))
    return 1 if errors or failing else 0


if __name__ == "__main__":
    sys.exit(main())
