"""The moderation JSON API (bearer tokens; exempt from CSRF because it ignores cookies).

GET  /api/v1/moderation/queue                     list: sort, article, min_score, max_score,
                                                  page, per_page, grouped
GET  /api/v1/moderation/stats                     {depth, oldest_created, oldest_age_seconds}
POST /api/v1/moderation/claims                    {"ids": [...]} or {"count": N} -> claimed ids
POST /api/v1/moderation/releases                  {"ids": [...]}
GET  /api/v1/moderation/items/<id>                one comment, its claim and decision
GET  /api/v1/moderation/items/<id>/history        every change of the comment
POST /api/v1/moderation/items/<id>/decision       {"action", "reason"?}
POST /api/v1/moderation/decisions                 {"ids": [...], "action", "reason"?}
GET  /api/v1/moderation/decisions                 recent decisions: count (1-500), before
POST /api/v1/moderation/items/<id>/undo           operators only
GET  /api/v1/moderation/openapi.json              the OpenAPI document of this API (no token)

Errors: 401 no/unknown token, 403 wrong role, 404 unknown item, 409 already decided
or claimed by someone else (``error.details`` names who), 400 bad action, reason
or parameter: a query parameter out of range or not spelled as documented (ASCII
digits; 1/0/true/false) is refused naming it, never clamped or read as a default.
A refused request writes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from flask import Blueprint, current_app, g, jsonify, request

from .. import queue as review
from ..auth import token_required
from ..comments import Comment
from ..errors import ApiError
from ..schemas import MAX_CLAIM_COUNT, MAX_DECISIONS_COUNT, MAX_IDS
from ..users import OPERATOR
from .json_body import require_json
from .moderate import BadFilter, get_queue, parse_filters, whole_number

bp = Blueprint("moderate_api", __name__, url_prefix="/api/v1/moderation")

T = TypeVar("T")


class RefusedError(ApiError):
    """An ApiError that also lists, per item, why it was refused and who holds it."""

    def __init__(self, refused: review.Refused) -> None:
        first = refused.refusals[0]
        status = 404 if refused.not_found else 409
        code = review.NOT_FOUND if refused.not_found else first.code
        super().__init__(status, code, f"Nothing was changed: {refused}", "ids",
                         details=[r.to_dict() for r in refused.refusals])


@bp.after_request
def _challenge(response):
    if response.status_code == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="moderation"'
    response.headers["Cache-Control"] = "no-store"
    return response


def _json_body() -> dict:
    data = require_json("a JSON object")
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_body", "Send a JSON object, not another JSON value.")
    return data


def _ids(data: dict) -> list[str]:
    ids = data.get("ids")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
        raise ApiError(400, "invalid_field", "ids must be a non-empty list of comment ids.", "ids")
    if len(ids) > MAX_IDS:
        raise ApiError(400, "invalid_field", f"At most {MAX_IDS} ids per request.", "ids")
    return [i[:64] for i in ids]


def _text_field(data: dict, name: str, required: bool = False) -> str:
    value = data.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ApiError(400, "invalid_field", f"{name} must be a string.", name)
    if required and not value:
        raise ApiError(400, "missing_field", f"{name} is required.", name)
    return value


def item_dict(comment: Comment, holder: tuple[str, float] | None = None) -> dict:
    return {
        "id": comment.id,
        "article": comment.article,
        "author": comment.author,
        "body": comment.body,
        "created": comment.created,
        "score": comment.score,
        "model_version": comment.model_version,
        "status": comment.status,
        "reason": comment.reason,
        "explanation": comment.explanation,
        "claimed_by": holder[0] if holder else None,
        "lease_left": round(holder[1], 1) if holder else None,
    }


def _run(call):
    try:
        return call()
    except review.InvalidRequest as exc:
        raise ApiError(400, exc.code, exc.message, exc.field) from None
    except review.Refused as exc:
        raise RefusedError(exc) from None


def _query(parse: Callable[[], T]) -> T:
    """The result of a query-string parser; its BadFilter answered as 400 naming the field."""
    try:
        return parse()
    except BadFilter as exc:
        raise ApiError(400, "invalid_field", exc.message, exc.field) from None


@bp.get("/openapi.json")
def openapi_document():
    """The contract, served without a token: it says only what the README says, and a
    client (or its code generator) reads it before it has a token."""
    from ..openapi import moderation_document

    return jsonify(moderation_document())


@bp.get("/queue")
@token_required()
def list_queue():
    # The API lists items one by one unless asked for groups (the UI groups by default).
    filters = _query(lambda: parse_filters(request.args, grouped=False))
    grouped = filters["grouped"]
    listing = get_queue().list(**filters)
    body = {
        "page": listing.page,
        "per_page": listing.per_page,
        "pages": listing.pages,
        "total": listing.total_groups if grouped else listing.total_items,
        "depth": listing.depth,
        "oldest_created": listing.oldest_created,
    }
    if grouped:
        body["groups"] = [
            {
                "key": group.key,
                "count": group.count,
                "ids": group.ids,
                "items": [
                    item_dict(i.comment, (i.holder, i.lease_left) if i.holder else None)
                    for i in group.items
                ],
            }
            for group in listing.groups
        ]
    else:
        body["items"] = [
            item_dict(g_.top.comment, (g_.top.holder, g_.top.lease_left) if g_.top.holder else None)
            for g_ in listing.groups
        ]
    return jsonify(body)


@bp.get("/stats")
@token_required()
def stats():
    depth, oldest = get_queue().stats()
    return jsonify(
        depth=depth,
        oldest_created=oldest,
        oldest_age_seconds=None if oldest is None else max(0.0, time.time() - oldest),
    )


@bp.post("/claims")
@token_required()
def claim():
    data = _json_body()
    lease = current_app.config["LEASE_SECONDS"]
    if "count" in data and "ids" in data:
        raise ApiError(400, "invalid_body", "Send either ids or count, not both.", "count")
    if "count" in data:
        count = data["count"]
        whole = isinstance(count, int) and not isinstance(count, bool)
        if not whole or not 1 <= count <= MAX_CLAIM_COUNT:
            raise ApiError(
                400, "invalid_field", f"count must be a whole number from 1 to {MAX_CLAIM_COUNT}.",
                "count",
            )
        claimed = _run(lambda: get_queue().claim_next(g.user.name, count))
    else:
        ids = _ids(data)
        claimed = _run(lambda: get_queue().claim(g.user.name, ids))
    return jsonify(claimed=claimed, moderator=g.user.name, lease_seconds=lease)


@bp.post("/releases")
@token_required()
def release():
    ids = _ids(_json_body())
    released = _run(lambda: get_queue().release(g.user.name, ids))
    return jsonify(released=released)


def _found(comment_id: str) -> tuple[Comment, dict]:
    found = get_queue().item(comment_id[:64])
    if found is None:
        raise ApiError(404, review.NOT_FOUND, f"There is no comment '{comment_id[:64]}'.", "id")
    return found


@bp.get("/items/<comment_id>")
@token_required()
def item(comment_id: str):
    comment, raw = _found(comment_id)
    body = item_dict(comment, get_queue().holders([comment.id]).get(comment.id))
    body["decision"] = (
        {
            "action": raw.get("decision"),
            "reason": raw.get("decision_reason"),
            "by": raw.get("decided_by"),
            "at": float(raw["decided_at"]) if raw.get("decided_at") else None,
        }
        if raw.get("decision")
        else None
    )
    return jsonify(body)


@bp.get("/items/<comment_id>/history")
@token_required()
def history(comment_id: str):
    comment, _ = _found(comment_id)
    return jsonify(id=comment.id, status=comment.status, history=get_queue().history(comment.id))


@bp.post("/items/<comment_id>/decision")
@token_required()
def decide_one(comment_id: str):
    data = _json_body()
    action = _text_field(data, "action", required=True)
    reason = _text_field(data, "reason")
    [entry] = _run(lambda: get_queue().decide(g.user.name, [comment_id[:64]], action, reason))
    return jsonify(id=comment_id, action=action, decision_entry=entry, moderator=g.user.name)


@bp.post("/decisions")
@token_required()
def decide_many():
    data = _json_body()
    ids = _ids(data)
    action = _text_field(data, "action", required=True)
    reason = _text_field(data, "reason")
    entries = _run(lambda: get_queue().decide(g.user.name, ids, action, reason))
    return jsonify(
        ids=list(dict.fromkeys(ids)), action=action, decision_entries=entries, moderator=g.user.name
    )


@bp.get("/decisions")
@token_required()
def recent():
    count = _query(lambda: whole_number(request.args, "count", 50, 1, MAX_DECISIONS_COUNT))
    before = request.args.get("before") or None
    if before is not None and not review.is_decision_id(before):
        raise ApiError(400, "invalid_field", "before must be a decision entry id.", "before")
    decisions = get_queue().recent_decisions(count=count, before=before)
    return jsonify(decisions=[d.to_dict() for d in decisions])


@bp.post("/items/<comment_id>/undo")
@token_required(OPERATOR)
def undo(comment_id: str):
    _run(lambda: get_queue().undo(g.user.name, comment_id[:64]))
    return jsonify(id=comment_id, status="held", undone_by=g.user.name)
