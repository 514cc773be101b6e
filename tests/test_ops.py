"""Health checks and Prometheus metrics, for the machines that run the service."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
import redis
from modhelpers import held
from prometheus_client.parser import text_string_to_metric_families

from moderation.articles import default_article
from tests.test_api import post
from tests.test_article_form import HAM


def scrape(client, **kwargs) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} from GET /metrics."""
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/plain"
    return samples(response.get_data(as_text=True))


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(metrics: dict, name: str, **labels) -> float:
    return metrics.get((name, tuple(sorted(labels.items()))), 0.0)


def test_liveness_and_readiness_name_the_model(client, app):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json() == {"status": "ready", "model": app.extensions["scorer"].version}


def test_readiness_is_503_with_the_reason_when_redis_does_not_answer(app, client):
    # A real client to a port nothing listens on: what a worker sees when Redis is down.
    app.extensions["redis"] = redis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.5,
        retry=redis.retry.Retry(redis.backoff.NoBackoff(), 0),
    )
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.get_json()["status"] == "not ready"
    assert "Redis does not answer" in answer.get_json()["reason"]
    assert "127.0.0.1" not in answer.get_json()["reason"]  # where Redis runs is not public


def test_stored_comments_and_captcha_answers_are_counted(client, article_slug):
    before = scrape(client)
    assert post(client, article_slug, HAM).status_code in (201, 202)
    assert post(client, article_slug, HAM + " again", answer="WRONG1").status_code == 400
    after = scrape(client)

    def grew(name: str, **labels) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    stored = sum(
        grew("moderation_comments_total", status=status, decided_by="model")
        for status in ("published", "held", "rejected")
    )
    assert stored == 1
    assert grew("moderation_captcha_checks_total", result="passed") == 1
    assert grew("moderation_captcha_checks_total", result="failed") == 1
    assert grew("moderation_scoring_seconds_count") == 1
    endpoint = "api.post_comment"
    assert grew("moderation_http_requests_total", endpoint=endpoint, method="POST",
                status="400") == 1


def test_a_guard_that_decides_is_named(make_app, article_slug):
    client = make_app(MIN_FILL_SECONDS=5).test_client()  # posted at once: too fast
    before = scrape(client)
    assert post(client, article_slug, HAM, form_token="").status_code == 202
    after = scrape(client)
    key = ("moderation_comments_total", (("decided_by", "fill_time"), ("status", "held")))
    assert after.get(key, 0) - before.get(key, 0) == 1


def test_requests_are_counted_by_endpoint_and_any_odd_method_as_other(client):
    before = scrape(client)
    client.get("/healthz")
    for method in ("BREW", "XYZZY"):  # any token is a method to HTTP
        client.open("/no-such-page", method=method)
    after = scrape(client)

    def delta(**labels) -> float:
        name = "moderation_http_requests_total"
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta(endpoint="ops.healthz", method="GET", status="200") == 1
    assert delta(endpoint="unmatched", method="other", status="404") == 2
    assert not [key for key in after if ("method", "BREW") in key[1]]


def test_queue_size_is_read_from_redis(client, redis_client):
    for i in range(3):
        held(redis_client, f"Held comment number {i}")
    assert value(scrape(client), "moderation_review_queue_size") == 3


def test_the_model_a_process_serves_is_shown(client, app):
    version = app.extensions["scorer"].version
    assert value(scrape(client), "moderation_model_info", version=version) == 1


def test_metrics_are_for_this_machine_only_without_a_token(client):
    refused = client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "metrics_local_only"
    assert "METRICS_TOKEN" in refused.get_json()["error"]["message"]


def test_wrong_methods_on_the_machine_endpoints_get_json_errors(client):
    for path in ("/healthz", "/readyz", "/metrics"):
        answer = client.post(path, headers={"Accept": "text/html"})
        assert answer.status_code == 405, path
        assert answer.get_json()["error"]["code"] == "method_not_allowed", path


def test_a_request_forwarded_by_a_local_proxy_is_not_local(client):
    scrape(client)  # loopback, direct: served
    for header in ("X-Forwarded-For", "Forwarded"):
        refused = client.get("/metrics", headers={header: "203.0.113.9"})
        assert refused.status_code == 403, header


def test_with_a_token_metrics_need_it_from_anywhere(make_app):
    client = make_app(METRICS_TOKEN="s3cret-scrape-token").test_client()
    elsewhere = {"REMOTE_ADDR": "203.0.113.9"}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
        answer = client.get("/metrics", headers=headers, environ_base=elsewhere)
        assert answer.status_code == 401
        assert answer.get_json()["error"]["code"] == "metrics_token_required"
    scrape(client, headers={"Authorization": "Bearer s3cret-scrape-token"},
           environ_base=elsewhere)


@pytest.mark.slow
def test_under_gunicorn_a_scrape_adds_up_every_worker(models_dir):
    """Two workers, as `make run` starts them: any worker's scrape counts both."""
    from bench.bench_app import BENCH_CAPTCHA_TEXT
    from bench.common import Gunicorn

    def call(method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        request = urllib.request.Request(
            server.base_url + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as refused:  # 422: stored as rejected
            return refused.code, json.loads(refused.read())

    def serving_pids() -> set[str]:
        with urllib.request.urlopen(server.base_url + "/metrics", timeout=10) as answer:
            metrics = samples(answer.read().decode())
        return {dict(labels)["pid"] for (name, labels), v in metrics.items()
                if name == "moderation_model_info" and v == 1}

    with Gunicorn("bench.bench_app:make_app()", env={"MODELS_DIR": str(models_dir)}) as server:
        # The server answers once one worker is up; on a busy machine the other may
        # still be loading its model. Both must come up, however long that takes here.
        workers = {str(pid) for pid in server.worker_pids()}
        deadline = time.monotonic() + 60
        while serving_pids() != workers and time.monotonic() < deadline:
            time.sleep(0.2)
        path = f"/api/v1/articles/{default_article().slug}/comments"
        posts = 8
        for i in range(posts):  # sync workers: the requests spread over both
            _, challenge = call("POST", "/api/v1/challenges")
            status, _ = call("POST", path, {"body": f"{HAM} ({i})",
                                            "challenge_id": challenge["id"],
                                            "captcha_answer": BENCH_CAPTCHA_TEXT})
            assert status in (201, 202, 422)  # stored: published, held or rejected
        for _ in range(4):
            with urllib.request.urlopen(server.base_url + "/metrics", timeout=10) as answer:
                metrics = samples(answer.read().decode())
            stored = sum(v for (name, _), v in metrics.items()
                         if name == "moderation_comments_total")
            assert stored == posts
            pids = {dict(labels)["pid"] for (name, labels), v in metrics.items()
                    if name == "moderation_model_info" and v == 1}
            assert pids == {str(pid) for pid in server.worker_pids()}


def test_each_gunicorn_instance_keeps_its_own_control_socket_under_its_var_dir(models_dir):
    """gunicorn's default (~/.gunicorn/gunicorn.ctl) let a second instance take the first's."""
    import stat

    from bench.common import Gunicorn

    env = {"MODELS_DIR": str(models_dir)}
    with Gunicorn("bench.bench_app:make_app()", env=env) as first, \
            Gunicorn("bench.bench_app:make_app()", env=env) as second:
        sockets = [server.var_dir / "gunicorn.ctl" for server in (first, second)]
        for socket in sockets:
            assert stat.S_ISSOCK(socket.stat().st_mode), socket
        assert "Control socket listening at " + str(sockets[0]) in first.log_path.read_text()
