"""When Redis stops answering, every request says so with a 503, never a 500."""

import pytest

from moderation import create_app
from moderation.articles import default_article
from moderation.embedded_redis import EmbeddedRedis
from tests.conftest import CAPTCHA_TEXT


@pytest.fixture
def stranded(models_dir, tmp_path):
    """An app whose own real redis-server has just been stopped."""
    server = EmbeddedRedis(tmp_path / "redis")
    app = create_app({
        "TESTING": True, "REDIS_URL": server.start(), "MODELS_DIR": str(models_dir),
        "SECRET_KEY": "test-secret", "IP_HASH_KEY": "test-ip-key", "MIN_FILL_SECONDS": 0,
        "WTF_CSRF_ENABLED": False,
    }, challenge_text=lambda length: CAPTCHA_TEXT)
    client = app.test_client()
    challenge = client.post("/api/v1/challenges").get_json()
    server.stop()
    return client, challenge["id"]


def outage_comment(challenge_id: str) -> dict[str, str]:
    return {"body": "A comment sent during the outage.", "challenge_id": challenge_id,
            "captcha_answer": CAPTCHA_TEXT}


def test_a_comment_posted_while_redis_is_down_gets_a_503_that_says_so(stranded):
    client, challenge_id = stranded
    slug = default_article().slug
    answer = client.post(f"/api/v1/articles/{slug}/comments", json=outage_comment(challenge_id))
    assert answer.status_code == 503
    assert answer.get_json()["error"]["code"] == "storage_unavailable"
    assert "nothing was saved" in answer.get_json()["error"]["message"]
    assert int(answer.headers["Retry-After"]) > 0


def test_the_form_and_the_pages_answer_503_in_html(stranded):
    client, challenge_id = stranded
    slug = default_article().slug
    posted = client.post(f"/articles/{slug}/comments", data=outage_comment(challenge_id))
    assert posted.status_code == 503 and b"nothing was saved" in posted.data
    for path in (f"/articles/{slug}", "/"):
        page = client.get(path)
        assert page.status_code == 503 and page.mimetype == "text/html", path
        # A page saves nothing, so it does not talk of saving or sending again.
        assert b"try again in" in page.data and b"nothing was saved" not in page.data, path
    for path in (f"/api/v1/articles/{slug}/comments", "/readyz"):
        assert client.get(path).status_code == 503, path
    assert client.post("/api/v1/challenges").status_code == 503


def test_metrics_are_still_served_while_redis_is_down(stranded):
    """The outage's 503s are what an operator scrapes for; only the queue size needs Redis."""
    client, _ = stranded
    assert client.get("/readyz").status_code == 503
    answer = client.get("/metrics")
    assert answer.status_code == 200 and answer.mimetype == "text/plain"
    text = answer.get_data(as_text=True)
    assert 'endpoint="ops.readyz",method="GET",status="503"' in text
    assert "moderation_review_queue_size " not in text


def test_the_model_reload_check_warns_once_per_outage(stranded, redis_client, caplog):
    """Every worker checks every MODEL_RELOAD_SECONDS: one warning per check was two log
    lines a second under `make run` for as long as Redis stayed down."""
    client, _ = stranded
    app = client.application
    reloader = app.extensions["scorer_reloader"]
    down = app.extensions["redis"]

    def checks(times: int) -> list[str]:
        caplog.clear()
        with caplog.at_level("INFO", logger="moderation.scoring"):
            for _ in range(times):
                reloader.next_check = 0.0
                reloader.check()
        return [f"{r.levelname} {r.getMessage()}" for r in caplog.records]

    first_outage = checks(5)
    assert len(first_outage) == 1 and first_outage[0].startswith("WARNING model reload check")
    app.extensions["redis"] = redis_client  # a Redis that answers
    assert checks(3) == ["INFO model reload check: Redis answers again"]
    app.extensions["redis"] = down
    assert len(checks(3)) == 1  # the next outage is reported again


def test_the_app_starts_while_redis_is_down_and_serves_once_it_answers(models_dir, tmp_path):
    """A gunicorn worker booted during an outage (a restart, a worker replaced) raised in
    create_app, and gunicorn stopped the whole server ("Worker failed to boot")."""
    server = EmbeddedRedis(tmp_path / "redis")
    url = server.start()
    server.stop()
    app = create_app({
        "TESTING": True, "REDIS_URL": url, "MODELS_DIR": str(models_dir),
        "SECRET_KEY": "test-secret", "IP_HASH_KEY": "test-ip-key",
    }, challenge_text=lambda length: CAPTCHA_TEXT)
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 503
    assert client.get("/").status_code == 503
    server.start()
    try:
        assert client.get("/readyz").status_code == 200
        assert client.get("/").status_code == 200
    finally:
        server.stop()


def test_moderators_see_a_503_and_their_decision_is_not_carried_out(models_dir, tmp_path):
    """A logged-in moderator's page, decision and API call while Redis is down: 503 that
    says so (not a login page, not a 500), and the comment still waits afterwards."""
    import redis as redis_py
    from modhelpers import PASSWORD, csrf_token, held, log_in

    from moderation import keys
    from moderation.users import UserStore

    server = EmbeddedRedis(tmp_path / "redis")
    url = server.start()
    app = create_app({
        "TESTING": True, "REDIS_URL": url, "MODELS_DIR": str(models_dir),
        "SECRET_KEY": "test-secret", "IP_HASH_KEY": "test-ip-key",
    })
    store = redis_py.Redis.from_url(url, decode_responses=True)
    users = UserStore(store)
    users.create("alice", PASSWORD, "moderator")
    token = users.new_token("alice")
    comment = held(store)
    browser = app.test_client()
    assert log_in(browser, "alice").status_code == 303
    form = {"csrf_token": csrf_token(browser.get("/moderate/").get_data(as_text=True)),
            "back": "", "cursor": "0", "do": f"approve|{comment.id}"}
    bearer = {"Authorization": f"Bearer {token}"}
    server.stop()
    try:
        page = browser.get("/moderate/")
        assert page.status_code == 503 and page.mimetype == "text/html"
        decided = browser.post("/moderate/act", data=form)
        assert decided.status_code == 503 and b"nothing was saved" in decided.data
        listed = browser.get("/api/v1/moderation/queue", headers=bearer)
        assert listed.status_code == 503
        assert listed.get_json()["error"]["code"] == "storage_unavailable"
        api_decided = browser.post(f"/api/v1/moderation/items/{comment.id}/decision",
                                   json={"action": "approve"}, headers=bearer)
        assert api_decided.status_code == 503
        assert "nothing was saved" in api_decided.get_json()["error"]["message"]
    finally:
        server.start()
    try:
        assert store.zscore(keys.REVIEW_QUEUE, comment.id) is not None  # still waiting
        assert browser.get("/moderate/").status_code == 200  # still logged in
    finally:
        store.close()
        server.stop()
