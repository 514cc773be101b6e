"""A longer fuzzing campaign against both JSON APIs (standalone; not part of the tests).

    python -m bench.fuzz_campaign                      # 20,000 requests, a fresh seed
    python -m bench.fuzz_campaign --requests 100000 --seed 7
    python -m bench.fuzz_campaign --policy always      # CAPTCHA on every comment
    python -m bench.fuzz_campaign --documents moderation

The tests (``tests/test_fuzz_api.py``, ``tests/test_fuzz_moderate_api.py``) run a few
thousand derandomized requests; this runs many more with a seed of your choice
(printed, so any failure can be replayed), on a private redis-server (unix socket,
like the embedded one) and the real model, for each operation of
``/api/v1/openapi.json`` and ``/api/v1/moderation/openapi.json`` in positive and
negative generation modes. It does not stop at the first failure: every failing check
is recorded (after Hypothesis shrinks it) and the run goes on.

Moderation operations are sent with a moderator's token (an operator's for undo), on
a store seeded afresh before each operation with comments in every state; most
requests name a seeded comment (and the seeded article) rather than a random one.

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

PUBLIC = "/api/v1/openapi.json"
MODERATION = "/api/v1/moderation/openapi.json"
_M = "/api/v1/moderation"

#: Share of the request budget per document.
SHARES = {PUBLIC: 0.6, MODERATION: 0.4}

#: Share of a document's budget per (operation, mode).
WEIGHTS = {
    PUBLIC: {
        ("POST /api/v1/articles/{slug}/comments", "positive"): 0.30,
        ("POST /api/v1/articles/{slug}/comments", "negative"): 0.25,
        ("GET /api/v1/articles/{slug}/comments", "positive"): 0.12,
        ("GET /api/v1/articles/{slug}/comments", "negative"): 0.12,
        ("GET /api/v1/comments/{comment_id}", "positive"): 0.10,
        ("GET /api/v1/comments/{comment_id}", "negative"): 0.09,
        ("POST /api/v1/challenges", "positive"): 0.01,
        ("GET /api/v1/form-token", "positive"): 0.01,
    },
    MODERATION: {
        (f"GET {_M}/queue", "positive"): 0.08,
        (f"GET {_M}/queue", "negative"): 0.07,
        (f"GET {_M}/stats", "positive"): 0.005,
        (f"POST {_M}/claims", "positive"): 0.07,
        (f"POST {_M}/claims", "negative"): 0.06,
        (f"POST {_M}/releases", "positive"): 0.05,
        (f"POST {_M}/releases", "negative"): 0.04,
        (f"GET {_M}/items/{{comment_id}}", "positive"): 0.04,
        (f"GET {_M}/items/{{comment_id}}", "negative"): 0.03,
        (f"GET {_M}/items/{{comment_id}}/history", "positive"): 0.04,
        (f"GET {_M}/items/{{comment_id}}/history", "negative"): 0.03,
        (f"POST {_M}/items/{{comment_id}}/decision", "positive"): 0.08,
        (f"POST {_M}/items/{{comment_id}}/decision", "negative"): 0.07,
        (f"POST {_M}/decisions", "positive"): 0.08,
        (f"POST {_M}/decisions", "negative"): 0.07,
        (f"GET {_M}/decisions", "positive"): 0.05,
        (f"GET {_M}/decisions", "negative"): 0.045,
        (f"POST {_M}/items/{{comment_id}}/undo", "positive"): 0.06,
        (f"POST {_M}/items/{{comment_id}}/undo", "negative"): 0.03,
    },
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


def seed_moderation(app, slug: str) -> dict:
    """Fresh comments for one moderation operation to work on: held ones (a
    near-duplicate group among them), some claimed by the fuzzing moderator (alice) and
    some by another (bob), some decided by bob, two decided by the model itself. The
    accounts are created on the first call; the store is not emptied (it also holds
    the current model's pointer).

    Returns ``{"ids", "article", "moderator", "operator"}`` (the last two: headers).
    """
    from moderation import comments
    from moderation.users import UserStore

    connection = app.extensions["redis"]
    queue = app.extensions["review_queue"]
    store = UserStore(connection)
    tokens = {}
    for name, role in (("alice", "moderator"), ("olga", "operator"), ("bob", "moderator")):
        if store.get(name) is None:
            store.create(name, secrets.token_hex(8), role)
        tokens.setdefault(role, f"Bearer {store.new_token(name)}")
    ids = []
    bodies = [f"Campaign comment number {n} about the article" for n in range(12)]
    bodies += ["Buy cheap pills now"] * 4
    verdicts = ["hold"] * len(bodies) + ["publish", "reject"]
    bodies += ["Decided by the model: published", "Decided by the model: rejected"]
    for n, (body, verdict) in enumerate(zip(bodies, verdicts, strict=True)):
        comment = comments.make_comment(
            article=slug, author="Reader", body=body, user_agent="fuzz", ip_hash="fuzz",
            score=0.3 + n / 50, model_version="fuzz", verdict=verdict,
            reason="campaign seed", explanation=[{"feature": "cheap", "kind": "term",
                                                  "weight": 1.2}])
        comments.save(connection, comment)
        ids.append(comment.id)
    queue.claim("bob", ids[:2])
    queue.claim("alice", ids[5:10])
    queue.decide("bob", [ids[2]], "approve")
    queue.decide("bob", [ids[3]], "reject", "advertising")
    queue.decide("bob", [ids[4]], "spam")
    return {"ids": ids, "article": slug, **tokens}


def _use_seeded(case, seeded: dict, picks: list[int]) -> None:
    """Name seeded comments in the path and in an ``ids`` list, and the seeded article."""
    ids = seeded["ids"]
    if ids and case.path_parameters and "comment_id" in case.path_parameters:
        case.path_parameters["comment_id"] = ids[picks[0] % len(ids)]
    if case.path_parameters and "slug" in case.path_parameters:
        case.path_parameters["slug"] = seeded["article"]
    if ids and isinstance(case.body, dict) and isinstance(case.body.get("ids"), list):
        case.body["ids"] = [ids[p % len(ids)] for p in picks]
    if isinstance(case.query, dict) and "article" in case.query:
        case.query["article"] = seeded["article"]


def fuzz_operation(app, document: str, label: str, mode: str, examples: int, seed: int,
                   slug: str) -> dict:
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
    schema = schemathesis.openapi.from_wsgi(document, app)
    operation = schema.find_operation_by_label(label)
    strategy = operation.as_strategy(generation_mode=GenerationMode(mode))
    if document == MODERATION:
        seeded = seed_moderation(app, slug)
        role = "operator" if label.endswith("/undo") else "moderator"
        headers = {"Authorization": seeded[role]}
    else:
        seeded, headers = {"ids": [], "article": slug}, {}
    statuses: dict[int, int] = {}
    failures: list[str] = []

    @hypothesis_seed(seed)
    @settings(max_examples=examples, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate, Phase.shrink],
              suppress_health_check=list(HealthCheck), report_multiple_bugs=True)
    @given(case=strategy, use_seeded=st.booleans(),
           picks=st.lists(st.sampled_from(range(max(1, len(seeded["ids"])))), min_size=1,
                          max_size=3))
    def fuzz(case, use_seeded, picks):
        if use_seeded:
            _use_seeded(case, seeded, picks)
        if headers:
            case.headers = {**(case.headers or {}), **headers}
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
        "document": document,
        "operation": label,
        "mode": mode,
        "requests": sum(statuses.values()),
        "statuses": dict(sorted(statuses.items())),
        "server_errors": sum(n for s, n in statuses.items() if s >= 500),
        "failures": failures,
        "seconds": round(time.perf_counter() - started, 1),
    }


def run(*, requests: int = 20_000, seed: int | None = None, policy: str = "adaptive",
        models_dir: Path | None = None, quick: bool = False,
        documents: tuple[str, ...] = (PUBLIC, MODERATION)) -> dict:
    """Run a campaign and return its results (``quick``: a small budget, for smoke tests)."""
    if quick:
        requests = min(requests, 60)
    seed = seed if seed is not None else secrets.randbelow(2**31)
    print(f"[fuzz] seed {seed}, {requests} requests, policy {policy}", file=sys.stderr)
    share = sum(SHARES[d] for d in documents)

    from moderation.articles import default_article

    from .common import ensure_model, redis_server

    models_dir = ensure_model(models_dir)
    rows = []
    with redis_server() as url:
        app = build_app(url, models_dir, policy)
        for document in documents:
            for (label, mode), weight in WEIGHTS[document].items():
                examples = max(1, int(requests * SHARES[document] / share * weight))
                row = fuzz_operation(app, document, label, mode, examples, seed,
                                     default_article().slug)
                rows.append(row)
                print(f"[fuzz] {mode:8} {label:52} {row['requests']:6} requests, "
                      f"{row['server_errors']} 5xx, {len(row['failures'])} failing checks, "
                      f"{row['seconds']} s", file=sys.stderr, flush=True)
    return {"seed": seed, "policy": policy, "documents": list(documents),
            "requests": sum(r["requests"] for r in rows),
            "server_errors": sum(r["server_errors"] for r in rows),
            "failing_operations": sum(len(r["failures"]) for r in rows), "operations": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20_000, help="total request budget")
    parser.add_argument("--seed", type=int, default=None, help="Hypothesis seed (default: random)")
    parser.add_argument("--policy", default="adaptive", choices=("always", "remember", "adaptive"))
    parser.add_argument("--models-dir", type=Path, default=None)
    parser.add_argument("--documents", nargs="+", choices=("public", "moderation"),
                        default=["public", "moderation"], help="which APIs (default both)")
    args = parser.parse_args(argv)
    chosen = {"public": PUBLIC, "moderation": MODERATION}
    result = run(requests=args.requests, seed=args.seed, policy=args.policy,
                 models_dir=args.models_dir,
                 documents=tuple(chosen[name] for name in args.documents))
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
