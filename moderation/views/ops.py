"""For the machines that run the service: health checks and metrics.

GET /healthz  -> 200 {"status": "ok"}: the process answers (liveness)
GET /readyz   -> 200 {"status": "ready", "model": VERSION} when Redis answers, will not
                 evict our keys (moderation/eviction.py) and a model is loaded, else
                 503 naming what is wrong (readiness); "warnings" lists what an
                 operator should know (an eviction policy allowed by
                 REDIS_ALLOW_EVICTION, or one Redis would not tell)
GET /metrics  -> Prometheus text format (moderation.metrics). With METRICS_TOKEN set,
                 only to ``Authorization: Bearer <METRICS_TOKEN>``; without it, only
                 to clients on this machine (loopback) that did not come through a
                 proxy, so counts are never public by accident.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging

import redis
from flask import Blueprint, current_app, jsonify, request

from .. import eviction, metrics
from ..errors import ApiError
from ..redis_store import get_redis

log = logging.getLogger(__name__)
bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    try:
        # Its INFO answering (or refusing, when the command is renamed) is the ping.
        found = eviction.read_policy(get_redis())
    except redis.RedisError as exc:
        # The detail names Redis's host and port: for the log, not for anyone asking.
        log.info("not ready: Redis does not answer: %s", exc)
        return jsonify(status="not ready",
                       reason=f"Redis does not answer ({type(exc).__name__})"), 503
    # Checked here as well as at start-up: the server may have been down then, or its
    # policy changed since (CONFIG SET).
    refusal = eviction.problem(found, allowed=current_app.config["REDIS_ALLOW_EVICTION"])
    if refusal is not None:
        log.warning("not ready: %s", refusal)
        return jsonify(status="not ready", reason=refusal), 503
    scorer = current_app.extensions.get("scorer")
    if scorer is None:
        return jsonify(status="not ready", reason="no model is loaded"), 503
    body = {"status": "ready", "model": scorer.version}
    if (warning := eviction.warning(found)) is not None:
        body["warnings"] = [warning]
    return jsonify(body)


def _is_local(address: str | None) -> bool:
    """A loopback client that no proxy forwarded.

    A reverse proxy on this machine connects from loopback too; with no
    TRUSTED_PROXIES, ProxyFix leaves its client's address behind the forwarding
    headers, so their presence means the real client is elsewhere.
    """
    if not current_app.config.get("TRUSTED_PROXIES") and (
        "X-Forwarded-For" in request.headers or "Forwarded" in request.headers
    ):
        return False
    try:
        return ipaddress.ip_address(address or "").is_loopback
    except ValueError:
        return False


def _scrape_refusal() -> ApiError | None:
    token = current_app.config.get("METRICS_TOKEN") or ""
    if token:
        scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(sent.strip().encode(),
                                                              token.encode()):
            return None
        return ApiError(401, "metrics_token_required",
                        "Send 'Authorization: Bearer <METRICS_TOKEN>' to read the metrics.")
    if _is_local(request.remote_addr):
        return None
    return ApiError(403, "metrics_local_only",
                    "Metrics are served to this machine only; set METRICS_TOKEN to let a "
                    "scraper elsewhere read them with that bearer token.")


@bp.get("/metrics")
def scrape():
    refusal = _scrape_refusal()
    if refusal is not None:  # answered as JSON: errors.JSON_PATH_PREFIXES has /metrics
        raise refusal
    body, content_type = metrics.exposition(get_redis())
    return current_app.response_class(body, content_type=content_type)
