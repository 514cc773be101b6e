"""schemathesis against the public API's OpenAPI document: no 5xx, no schema violations.

Requests are generated from ``/api/v1/openapi.json`` (valid and, separately, invalid
data), sent in-process to the app on the real Redis with the real model, and every
answer is checked: status documented, content type documented, body matching the
documented schema, and never a 5xx. Hypothesis runs derandomized (seeded), so CI
sees the same requests every time. ``bench/fuzz_campaign.py`` runs a longer campaign.

The app runs the ``adaptive`` policy: requests without a CAPTCHA get past it for
clear ham and spam, so generated comments reach the guards, the model and storage
instead of stopping at "wrong CAPTCHA".
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from moderation import keys

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]

#: (operation label, generation mode) -> examples. ~2,000 requests in all.
BUDGET = {
    ("POST /api/v1/articles/{slug}/comments", GenerationMode.POSITIVE): 700,
    ("POST /api/v1/articles/{slug}/comments", GenerationMode.NEGATIVE): 400,
    ("GET /api/v1/articles/{slug}/comments", GenerationMode.POSITIVE): 400,
    ("GET /api/v1/articles/{slug}/comments", GenerationMode.NEGATIVE): 250,
    ("GET /api/v1/comments/{comment_id}", GenerationMode.POSITIVE): 200,
    ("GET /api/v1/comments/{comment_id}", GenerationMode.NEGATIVE): 60,
    ("POST /api/v1/challenges", GenerationMode.POSITIVE): 50,
    ("GET /api/v1/form-token", GenerationMode.POSITIVE): 50,
}


def fuzz_config(**overrides):
    config = {
        "CHALLENGE_POLICY": "adaptive",
        "RATE_LIMIT_PER_IP": "100000 per minute",
        "RATE_LIMIT_PER_ARTICLE": "100000 per minute",
        "RATE_LIMIT_CHALLENGES": "100000 per minute",
        "LOG_LEVEL": "WARNING",
    }
    config.update(overrides)
    return config


def run_operation(app, label, mode, max_examples, article_slug, counter):
    """Fuzz one operation; return nothing, raise on the first failing check (shrunk)."""
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operation = schema.find_operation_by_label(label)
    assert operation is not None, f"{label} missing from the OpenAPI document"
    strategy = operation.as_strategy(generation_mode=mode)

    @settings(max_examples=max_examples, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=strategy, real_article=st.booleans())
    def fuzz(case, real_article):
        if real_article and case.path_parameters and "slug" in case.path_parameters:
            case.path_parameters["slug"] = article_slug
        response = case.call()
        counter[response.status_code] = counter.get(response.status_code, 0) + 1
        case.validate_response(response, checks=CHECKS)

    fuzz()


def test_openapi_document_is_served_and_valid(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"].startswith("3.0")
    labels = {f"{m.upper()} {p}" for p, item in document["paths"].items()
              for m in item if m in ("get", "post")}
    assert {label for label, _ in BUDGET} <= labels


@pytest.mark.parametrize(
    ("label", "mode"), list(BUDGET), ids=[f"{m.value}:{lbl}" for lbl, m in BUDGET]
)
def test_fuzz_api(make_app, redis_client, article_slug, label, mode):
    app = make_app(**fuzz_config())
    counter: dict[int, int] = {}
    run_operation(app, label, mode, BUDGET[(label, mode)], article_slug, counter)
    assert not any(status >= 500 for status in counter)
    # Operations without parameters have few distinct requests to make.
    expected = BUDGET[(label, mode)] // 2 if "{" in label else 1
    assert sum(counter.values()) >= expected, counter
    if label.startswith("POST /api/v1/articles") and mode is GenerationMode.POSITIVE:
        # The generated comments got past validation and were decided and stored.
        assert counter.get(201, 0) + counter.get(202, 0) + counter.get(422, 0) > 0, counter
        assert redis_client.zcard(keys.ALL_COMMENTS) > 0
