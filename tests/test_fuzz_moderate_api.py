"""schemathesis against the moderators' API's OpenAPI document: no 5xx, no contract violation.

Requests are generated from ``/api/v1/moderation/openapi.json`` (valid and, separately,
invalid data) and sent in-process to the app on the real Redis with the real model:
with a moderator's token (an operator's for undo), and, separately, with no token or a
bad one, which must be answered 401. Every answer is checked like the public API's in
``test_fuzz_api.py``: never a 5xx, status documented, content type documented, body
matching the documented schema. Hypothesis runs derandomized, so CI sees the same
requests every time.

The store is seeded with comments in every state (held, near-duplicates, claimed by
another moderator, decided by one, decided by the model), and half the generated
requests name a seeded id (and the seeded article) instead of a random one, so claims,
decisions and undo reach the queue's scripts and their refusals (404, 409) instead of
stopping at "no such comment".
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from modhelpers import PASSWORD, held, reuse_password_hashes
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from moderation import comments
from moderation import queue as review
from moderation.embedded_redis import EmbeddedRedis
from moderation.users import UserStore

API = "/api/v1/moderation"
DOCUMENT = f"{API}/openapi.json"
CONTRACT = [status_code_conformance, content_type_conformance, response_schema_conformance,
            response_headers_conformance]
CHECKS = [not_a_server_error, *CONTRACT]
POSITIVE, NEGATIVE = GenerationMode.POSITIVE, GenerationMode.NEGATIVE

#: (operation label, generation mode) -> examples, sent with a valid token.
BUDGET = {
    (f"GET {API}/queue", POSITIVE): 120,
    (f"GET {API}/queue", NEGATIVE): 80,
    (f"GET {API}/stats", POSITIVE): 5,
    (f"POST {API}/claims", POSITIVE): 80,
    (f"POST {API}/claims", NEGATIVE): 60,
    (f"POST {API}/releases", POSITIVE): 60,
    (f"POST {API}/releases", NEGATIVE): 40,
    (f"GET {API}/items/{{comment_id}}", POSITIVE): 50,
    (f"GET {API}/items/{{comment_id}}", NEGATIVE): 20,
    (f"GET {API}/items/{{comment_id}}/history", POSITIVE): 50,
    (f"GET {API}/items/{{comment_id}}/history", NEGATIVE): 20,
    (f"POST {API}/items/{{comment_id}}/decision", POSITIVE): 100,
    (f"POST {API}/items/{{comment_id}}/decision", NEGATIVE): 60,
    (f"POST {API}/decisions", POSITIVE): 100,
    (f"POST {API}/decisions", NEGATIVE): 60,
    (f"GET {API}/decisions", POSITIVE): 60,
    (f"GET {API}/decisions", NEGATIVE): 40,
    (f"POST {API}/items/{{comment_id}}/undo", POSITIVE): 60,
    (f"POST {API}/items/{{comment_id}}/undo", NEGATIVE): 20,
}
OPERATIONS = sorted({label for label, _ in BUDGET})
#: Examples per operation sent without a valid token.
UNAUTHORIZED_EXAMPLES = 12
BAD_AUTHORIZATION = [None, "Bearer wrong", "Bearer ", "Basic YWxpY2U6eA==", "bearer"]


def seed_queue(redis_client, article: str) -> list[str]:
    """Comments in the states the API distinguishes; returns all their ids.

    Held ones (a near-duplicate group among them), two claimed by another moderator
    (bob) and five by the fuzzing one (alice), three decided by bob, and two the model
    decided itself (published, rejected), which have no moderator decision to undo.
    """
    queue = review.ReviewQueue(redis_client)
    bodies = [f"Seeded comment number {n} about the article" for n in range(10)]
    bodies += ["Buy cheap pills now"] * 4
    ids = [held(redis_client, body, score=0.3 + n / 40, article=article,
                now=1_700_000_000 + n).id
           for n, body in enumerate(bodies)]
    queue.claim("bob", ids[:2])
    queue.claim("alice", ids[5:10])  # the fuzzing moderator's own, to release or decide
    queue.decide("bob", [ids[2]], review.APPROVE)
    queue.decide("bob", [ids[3]], review.REJECT, "advertising")
    queue.decide("bob", [ids[4]], review.SPAM)
    for verdict, score in (("publish", 0.01), ("reject", 0.99)):
        comment = comments.make_comment(
            article=article, author="", body=f"Decided by the model: {verdict}",
            user_agent="test", ip_hash="iphash", score=score, model_version="v-test",
            verdict=verdict, reason="the model's score", explanation=[])
        comments.save(redis_client, comment)
        ids.append(comment.id)
    return ids


@pytest.fixture
def fuzz_app(make_app, redis_client, article_slug, monkeypatch):
    """The app, a seeded queue and tokens: {"app", "ids", "article", "moderator", "operator"}."""
    reuse_password_hashes(monkeypatch)
    app = make_app(LOG_LEVEL="WARNING")
    store = UserStore(redis_client)
    store.create("bob", PASSWORD, "moderator")  # holds claims; sends nothing
    tokens = {}
    for name, role in (("alice", "moderator"), ("olga", "operator")):
        store.create(name, PASSWORD, role)
        tokens[role] = f"Bearer {store.new_token(name)}"
    return {"app": app, "ids": seed_queue(redis_client, article_slug), "article": article_slug,
            **tokens}


def use_seeded(case, seeded: dict, picks: list[int]) -> None:
    """Name seeded comments in the path and in an ``ids`` list, and the seeded article
    in an ``article`` filter, where the case has them."""
    ids = seeded["ids"]
    if case.path_parameters and "comment_id" in case.path_parameters:
        case.path_parameters["comment_id"] = ids[picks[0] % len(ids)]
    if isinstance(case.body, dict) and isinstance(case.body.get("ids"), list):
        case.body["ids"] = [ids[p % len(ids)] for p in picks]
    if isinstance(case.query, dict) and "article" in case.query:
        case.query["article"] = seeded["article"]


def send(case, authorization: str | None, counter: dict[int, int], checks=CHECKS) -> None:
    """Call the app with ``authorization`` (None: no header) and check the answer."""
    headers = dict(case.headers or {})
    headers.pop("Authorization", None)
    if authorization is not None:
        headers["Authorization"] = authorization
    case.headers = headers
    response = case.call()
    counter[response.status_code] = counter.get(response.status_code, 0) + 1
    case.validate_response(response, checks=checks)


def fuzz(app, label, mode, examples, seeded, authorization, counter, checks=CHECKS):
    """Send ``examples`` generated requests of one operation; raise on the first failing
    check (shrunk). ``authorization``: a strategy for the Authorization header (None: none)."""
    schema = schemathesis.openapi.from_wsgi(DOCUMENT, app)
    operation = schema.find_operation_by_label(label)
    assert operation is not None, f"{label} missing from the OpenAPI document"

    @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    # Hypothesis leans towards False, the simpler value: most requests name seeded data.
    @given(case=operation.as_strategy(generation_mode=mode), random_ids=st.booleans(),
           picks=st.lists(st.sampled_from(range(len(seeded["ids"]))), min_size=1, max_size=3),
           header=authorization)
    def run(case, random_ids, picks, header):
        if not random_ids:
            use_seeded(case, seeded, picks)
        send(case, header, counter, checks)

    run()


def test_document_is_served_without_a_token_and_is_valid(client):
    response = client.get(DOCUMENT)
    assert response.status_code == 200
    document = response.get_json()
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert document["security"] == [{"bearerAuth": []}]
    schema = schemathesis.openapi.from_wsgi(DOCUMENT, client.application)
    assert {op.ok().label for op in schema.get_all_operations()} == set(OPERATIONS)


@pytest.mark.parametrize("document", [DOCUMENT, "/api/v1/openapi.json"])
def test_document_is_valid_openapi_3_0(client, document):
    schema = schemathesis.openapi.from_wsgi(document, client.application)
    assert schema.raw_schema["openapi"].startswith("3.0")
    schema.validate()  # against the OpenAPI 3.0 meta-schema; raises naming the fault


def _routes(app, blueprint: str, document_endpoint: str) -> set[str]:
    labels = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(f"{blueprint}.") and rule.endpoint != document_endpoint:
            path = rule.rule.replace("<", "{").replace(">", "}")
            labels |= {f"{m} {path}" for m in rule.methods - {"HEAD", "OPTIONS"}}
    return labels


@pytest.mark.parametrize(
    ("document", "blueprint"),
    [(DOCUMENT, "moderate_api"), ("/api/v1/openapi.json", "api")],
)
def test_document_paths_match_the_registered_routes(app, client, document, blueprint):
    """A route added, renamed or removed without its documentation fails here."""
    paths = client.get(document).get_json()["paths"]
    documented = {f"{method.upper()} {path}" for path, item in paths.items()
                  for method in item if method != "parameters"}
    assert documented == _routes(app, blueprint, f"{blueprint}.openapi_document")


@pytest.mark.parametrize(
    ("label", "mode"), list(BUDGET), ids=[f"{m.value}:{lbl}" for lbl, m in BUDGET]
)
def test_fuzz_moderation_api(fuzz_app, label, mode):
    role = "operator" if label.endswith("/undo") else "moderator"
    counter: dict[int, int] = {}
    fuzz(fuzz_app["app"], label, mode, BUDGET[(label, mode)], fuzz_app,
         st.just(fuzz_app[role]), counter)
    assert not any(status >= 500 for status in counter)
    expected = BUDGET[(label, mode)] // 2 if "{" in label or "POST" in label else 1
    assert sum(counter.values()) >= expected, counter
    if mode is POSITIVE and label != f"GET {API}/stats":
        # Valid requests reached the queue and some were done, not only refused.
        assert counter.get(200, 0) > 0, counter


@pytest.mark.parametrize("label", OPERATIONS)
def test_boundary_cases(fuzz_app, label):
    """schemathesis's coverage phase: for each parameter and body field, the values at
    and just past its documented bounds, other types, missing required parts, other
    content types and methods. Deterministic, not random: the same ~40 requests each run."""
    schema = schemathesis.openapi.from_wsgi(DOCUMENT, fuzz_app["app"])
    operation = schema.find_operation_by_label(label)
    config = schema.config.generation_for(operation=operation, phase="coverage")
    role = "operator" if label.endswith("/undo") else "moderator"
    counter: dict[int, int] = {}
    cases = schema.iter_coverage_cases(
        operation, generation_modes=[POSITIVE, NEGATIVE], generation_config=config
    )
    for number, case in enumerate(cases):
        if number % 2:
            use_seeded(case, fuzz_app, [number])
        send(case, fuzz_app[role], counter)
    assert not any(status >= 500 for status in counter)
    assert counter.get(200, 0) > 0, counter
    if label != f"GET {API}/stats":  # the one operation that takes nothing
        assert counter.get(400, 0) + counter.get(404, 0) > 0, counter


@pytest.mark.parametrize("label", OPERATIONS)
def test_fuzz_without_a_valid_token_is_401(fuzz_app, label):
    counter: dict[int, int] = {}
    fuzz(fuzz_app["app"], label, POSITIVE, UNAUTHORIZED_EXAMPLES, fuzz_app,
         st.sampled_from(BAD_AUTHORIZATION), counter)
    assert set(counter) == {401}, counter



@pytest.fixture
def stranded(make_app, tmp_path, monkeypatch):
    """(app, a valid moderator token) on the app's own real redis-server, just stopped."""
    reuse_password_hashes(monkeypatch)
    server = EmbeddedRedis(tmp_path / "redis")
    app = make_app(REDIS_URL=server.start(), LOG_LEVEL="CRITICAL")
    store = UserStore(app.extensions["redis"])
    store.create("alice", PASSWORD, "moderator")
    token = f"Bearer {store.new_token('alice')}"
    server.stop()
    return app, token


def test_fuzz_while_redis_is_down_is_the_documented_503(stranded):
    """Every operation documents 503 storage_unavailable (with Retry-After): check that
    this is what comes back, in the documented shape, when Redis stops answering."""
    app, token = stranded
    for label in OPERATIONS:
        counter: dict[int, int] = {}
        # A 503 is the documented answer here, so only the contract is checked.
        fuzz(app, label, POSITIVE, 3, {"ids": ["x"], "article": "x"}, st.just(token), counter,
             CONTRACT)
        assert set(counter) == {503}, (label, counter)
    response = app.test_client().get(f"{API}/stats", headers={"Authorization": token})
    assert response.get_json()["error"]["code"] == "storage_unavailable"
    assert int(response.headers["Retry-After"]) > 0
