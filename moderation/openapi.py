"""The OpenAPI 3.0 documents of the JSON APIs.

* ``/api/v1/openapi.json``: the public API (``views/api.py``);
* ``/api/v1/moderation/openapi.json``: the moderators' API (``views/moderate_api.py``).

Two documents, not one: their readers differ (a page's JavaScript, a moderation
bot), and so do their security (none, a bearer token) and their titles. Both are
written by hand next to the views they describe and share the error shape, which is
defined once here. ``tests/test_fuzz_api.py`` and ``tests/test_fuzz_moderate_api.py``
check them: schemathesis generates requests from each and asserts that every answer
has a documented status and shape, and that none is a 5xx; a further test compares
each document's paths with the app's routes.
"""

from __future__ import annotations

from typing import Any

from . import queue as review
from .articles import default_article
from .comments import HELD, PUBLISHED, REJECTED
from .schemas import (
    MAX_CLAIM_COUNT,
    MAX_DECISIONS_COUNT,
    MAX_IDS,
    MAX_PAGE,
    MAX_QUEUE_PER_PAGE,
)
from .views.moderate import FLAGS

_ERROR_BODY = {
    "type": "object",
    "required": ["code", "message", "field"],
    "properties": {
        "code": {"type": "string", "minLength": 1},
        "message": {"type": "string", "minLength": 1},
        "field": {"type": "string", "nullable": True},
        # captcha_failed: {"attempts_left": n}; 0 means "get a new challenge".
        # storage_unavailable after the comment was stored: {"id", "status"}.
        # Moderation refusals: a list of Refusal (see the moderation document).
        "details": {},
    },
}
_ERROR = {"type": "object", "required": ["error"], "properties": {"error": _ERROR_BODY}}

_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }
}

#: Present only when the service runs with ``PUBLIC_SCORES=1``.
_SCORE_FIELDS = {
    "score": {"type": "number", "minimum": 0, "maximum": 1,
              "description": "spam probability (only with PUBLIC_SCORES=1)"},
    "model_version": {"type": "string", "description": "only with PUBLIC_SCORES=1"},
    "reason": {"type": "string", "description": "the model's or guards' reason "
               "(only with PUBLIC_SCORES=1)"},
}


def _error(description: str, ref: str = "Error", headers: dict | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }
    if headers:
        response["headers"] = headers
    return response


def _json(description: str, ref: str, headers: dict | None = None) -> dict[str, Any]:
    return _error(description, ref, headers)


def _json_body(ref: str) -> dict[str, Any]:
    return {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }


_RATE_LIMITED = _error("Too many requests from this client or to this article (Retry-After).")
#: Any request of either API may get this while Redis is not answering.
_STORE_DOWN = _error(
    "storage_unavailable: Redis is not answering; nothing was saved, send it again.",
    headers=_RETRY_AFTER,
)


#: Posting a comment: also the one 503 that is not "nothing was saved".
_STORE_DOWN_POSTING = _error(
    "storage_unavailable: Redis is not answering; nothing was saved, send it again "
    "(Retry-After). Except when the comment was stored before Redis failed in the same "
    "request: then no Retry-After, a message saying it was saved, and error.details "
    "{id, status} (ask GET /api/v1/comments/{id} later; do not send it again).",
    headers={"Retry-After": {**_RETRY_AFTER["Retry-After"], "required": False}},
)


def public_document() -> dict[str, Any]:
    """The public API's document as a dict (the view serves it as JSON)."""
    slug = {
        "name": "slug",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "minLength": 1, "maxLength": 200},
        "example": default_article().slug,
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Comment moderation: public API",
            "version": "1",
            "description": (
                "Post and list comments under articles. Errors always have the shape "
                '{"error": {"code", "message", "field"}}.'
            ),
        },
        "paths": {
            "/api/v1/challenges": {
                "post": {
                    "summary": "A new CAPTCHA challenge (the answer is never sent).",
                    "operationId": "newChallenge",
                    "responses": {
                        "201": _json("A challenge", "Challenge"),
                        "429": _RATE_LIMITED,
                        "503": _STORE_DOWN,
                    },
                }
            },
            "/api/v1/form-token": {
                "get": {
                    "summary": "A signed 'form shown now' stamp for the minimum-fill-time guard.",
                    "operationId": "formToken",
                    "responses": {"200": _json("A stamp", "FormToken")},
                }
            },
            "/api/v1/articles/{slug}/comments": {
                "parameters": [slug],
                "get": {
                    "summary": "Published comments, newest first.",
                    "operationId": "listComments",
                    "parameters": [
                        {
                            "name": "page",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
                        },
                        {
                            "name": "per_page",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 100},
                        },
                    ],
                    "responses": {
                        "200": _json("One page of comments", "Listing"),
                        "400": _error("A bad page or per_page"),
                        "404": _error("No such article"),
                        "503": _STORE_DOWN,
                    },
                },
                "post": {
                    "summary": "Post a comment.",
                    "operationId": "postComment",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/CommentSubmission"}
                            }
                        },
                    },
                    "responses": {
                        "201": _json("Published", "Submitted"),
                        "202": _json("Held for review", "Submitted"),
                        "400": _error("Invalid input, or a wrong/expired/required CAPTCHA"),
                        "404": _error("No such article"),
                        "408": _error("The body stopped arriving (BODY_TIMEOUT_SECONDS)"),
                        "413": _error("Request body too large"),
                        "415": _error("Not JSON"),
                        "422": _json("Rejected (stored, never shown), with the reason", "Rejected"),
                        "429": _RATE_LIMITED,
                        "503": _STORE_DOWN_POSTING,
                    },
                },
            },
            "/api/v1/comments/{comment_id}": {
                "get": {
                    "summary": "Where a submitted comment stands; its text only once published.",
                    "operationId": "commentStatus",
                    "parameters": [
                        {
                            "name": "comment_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "minLength": 1, "maxLength": 200},
                        }
                    ],
                    "responses": {
                        "200": _json("The comment's status", "CommentStatus"),
                        "404": _error("No such comment"),
                        "503": _STORE_DOWN,
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "Error": _ERROR,
                "Challenge": {
                    "type": "object",
                    "required": ["id", "image_url", "expires_at"],
                    "properties": {
                        "id": {"type": "string"},
                        "image_url": {"type": "string"},
                        "expires_at": {"type": "number"},
                    },
                },
                "FormToken": {
                    "type": "object",
                    "required": ["form_token", "min_fill_seconds", "honeypot_field"],
                    "properties": {
                        "form_token": {"type": "string"},
                        "min_fill_seconds": {"type": "number"},
                        "honeypot_field": {"type": "string"},
                    },
                },
                "CommentSubmission": {
                    "type": "object",
                    "required": ["body"],
                    "properties": {
                        "body": {"type": "string", "description": "1 to MAX_COMMENT_CHARS"},
                        "author": {"type": "string", "description": "0 to MAX_NAME_CHARS"},
                        "challenge_id": {"type": "string"},
                        "captcha_answer": {"type": "string"},
                        "form_token": {"type": "string", "description": "from /form-token"},
                        "website": {"type": "string", "description": "honeypot: leave empty"},
                    },
                },
                "Comment": {
                    "type": "object",
                    "required": ["id", "article", "author", "body", "created"],
                    "properties": {
                        "id": {"type": "string"},
                        "article": {"type": "string"},
                        "author": {"type": "string"},
                        "body": {"type": "string"},
                        "created": {"type": "number"},
                    },
                },
                "Listing": {
                    "type": "object",
                    "required": ["comments", "page", "per_page", "total", "pages"],
                    "properties": {
                        "comments": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Comment"},
                        },
                        "page": {"type": "integer", "minimum": 1},
                        "per_page": {"type": "integer", "minimum": 1},
                        "total": {"type": "integer", "minimum": 0},
                        "pages": {"type": "integer", "minimum": 1},
                    },
                },
                "Submitted": {
                    "type": "object",
                    "required": ["id", "status", "message"],
                    "properties": {
                        "id": {"type": "string"},
                        "status": {"type": "string", "enum": ["published", "held"]},
                        "message": {"type": "string"},
                        **_SCORE_FIELDS,
                    },
                },
                "Rejected": {
                    "type": "object",
                    "required": ["id", "status", "error"],
                    "properties": {
                        "id": {"type": "string"},
                        "status": {"type": "string", "enum": ["rejected"]},
                        "error": _ERROR_BODY,
                        **_SCORE_FIELDS,
                    },
                },
                "CommentStatus": {
                    "type": "object",
                    "required": ["id", "article", "status", "created"],
                    "properties": {
                        "id": {"type": "string"},
                        "article": {"type": "string"},
                        "status": {"type": "string", "enum": ["published", "held", "rejected"]},
                        "created": {"type": "number"},
                    },
                },
            }
        },
    }


# -- the moderators' API ----------------------------------------------------------

_UNAUTHORIZED = _error(
    "unauthorized: no token, or one that is unknown or revoked (send "
    "'Authorization: Bearer <token>')",
    headers={
        "WWW-Authenticate": {
            "description": 'Bearer realm="moderation"',
            "required": True,
            "schema": {"type": "string", "pattern": "^Bearer "},
        }
    },
)
_NOT_JSON = _error("unsupported_media_type: the body is not declared as JSON")
_BAD_BODY = _error(
    "invalid_json, invalid_body, invalid_field, missing_field, unknown_action, "
    "unknown_reason or unexpected_reason, with error.field naming what was wrong; "
    "nothing was written"
)
_UNKNOWN_ITEM = _error("not_found: no such comment (error.details lists the refusals)")
_REFUSED = _error(
    "already_decided, claimed (by someone else) or not_claimed: nothing was changed, "
    "also for the other ids; error.details says, per id, why and who",
    "Refused",
)


def _moderation_responses(ok: dict[str, Any], *, body: bool = False,
                          **more: dict[str, Any]) -> dict[str, Any]:
    """``ok`` plus the answers every operation can give: 401, 503, and for a JSON body
    415 (not JSON), 413 (too large) and 408 (stopped arriving, under gunicorn)."""
    responses = {**ok, "401": _UNAUTHORIZED, **more, "503": _STORE_DOWN}
    if body:
        responses.update({
            "400": more.get("400", _BAD_BODY),
            "408": _error("request_timeout: the body stopped arriving"),
            "413": _error("The request body is too large"),
            "415": _NOT_JSON,
        })
    return dict(sorted(responses.items()))


def _ids_schema() -> dict[str, Any]:
    return {
        "type": "array",
        "minItems": 1,
        "maxItems": MAX_IDS,
        "items": {"type": "string", "minLength": 1},
        "description": "Comment ids (repeats count once; each read up to 64 characters).",
    }


def _moderation_schemas() -> dict[str, Any]:
    nullable_number = {"type": "number", "nullable": True}
    explanation_entry = {
        "type": "object",
        "required": ["feature", "kind", "weight"],
        "properties": {
            "feature": {"type": "string"},
            "kind": {"type": "string", "enum": ["term", "chars", "signal"]},
            "weight": {"type": "number", "description": "> 0 pushed towards spam"},
            "compared": {"type": "string", "enum": ["above average", "below average"]},
        },
    }
    item = {
        "type": "object",
        "required": ["id", "article", "author", "body", "created", "score", "model_version",
                     "status", "reason", "explanation", "claimed_by", "lease_left"],
        "properties": {
            "id": {"type": "string"},
            "article": {"type": "string"},
            "author": {"type": "string"},
            "body": {"type": "string"},
            "created": {"type": "number"},
            "score": {"type": "number", "minimum": 0, "maximum": 1},
            "model_version": {"type": "string"},
            "status": {"type": "string", "enum": [HELD, PUBLISHED, REJECTED]},
            "reason": {"type": "string", "description": "why it was held"},
            "explanation": {"type": "array", "items": explanation_entry},
            "claimed_by": {"type": "string", "nullable": True},
            "lease_left": {**nullable_number, "minimum": 0, "description": "seconds"},
        },
    }
    page_fields = {
        "page": {"type": "integer", "minimum": 1},
        "per_page": {"type": "integer", "minimum": 1},
        "pages": {"type": "integer", "minimum": 1},
        "total": {"type": "integer", "minimum": 0,
                  "description": "items (or groups) matching the filters"},
        "depth": {"type": "integer", "minimum": 0, "description": "items in the whole queue"},
        "oldest_created": nullable_number,
    }
    page_required = ["page", "per_page", "pages", "total", "depth", "oldest_created"]
    group = {
        "type": "object",
        "required": ["key", "count", "ids", "items"],
        "properties": {
            "key": {"type": "string"},
            "count": {"type": "integer", "minimum": 1},
            "ids": {"type": "array", "items": {"type": "string"}},
            "items": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/Item"},
                "description": f"the first {review.SHOWN_PER_GROUP} of the group in full",
            },
        },
    }
    refusal = {
        "type": "object",
        "required": ["id", "code", "who", "status", "lease_left"],
        "properties": {
            "id": {"type": "string"},
            "code": {"type": "string", "enum": [
                review.NOT_FOUND, review.ALREADY_DECIDED, review.CLAIMED,
                review.NOT_CLAIMED, review.NOT_DECIDED,
            ]},
            "who": {"type": "string", "nullable": True,
                    "description": "who holds the claim, or who decided"},
            "status": {"type": "string", "nullable": True},
            "lease_left": {**nullable_number, "minimum": 0},
        },
    }
    refused_body = {
        **_ERROR_BODY,
        "required": ["code", "message", "field", "details"],
        "properties": {
            **_ERROR_BODY["properties"],
            "details": {"type": "array", "minItems": 1, "items": refusal},
        },
    }
    decision_action = {"type": "string", "enum": list(review.ACTIONS)}
    reason = {
        "type": "string",
        "nullable": True,
        "enum": ["", *review.REJECT_REASONS, None],
        "description": "required with reject, optional with spam, refused with approve "
                       "and ham; empty or null means none",
    }
    return {
        "Error": _ERROR,
        "Refused": {"type": "object", "required": ["error"], "properties": {"error": refused_body}},
        "Item": item,
        "ItemDetail": {
            "allOf": [
                {"$ref": "#/components/schemas/Item"},
                {
                    "type": "object",
                    "required": ["decision"],
                    "properties": {
                        "decision": {
                            "type": "object",
                            "nullable": True,
                            "required": ["action", "reason", "by", "at"],
                            "properties": {
                                "action": decision_action,
                                "reason": {"type": "string", "nullable": True},
                                "by": {"type": "string", "nullable": True},
                                "at": nullable_number,
                            },
                        }
                    },
                },
            ]
        },
        "QueueItems": {
            "type": "object",
            "required": [*page_required, "items"],
            "properties": {
                **page_fields,
                "items": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}},
            },
        },
        "QueueGroups": {
            "type": "object",
            "required": [*page_required, "groups"],
            "properties": {**page_fields, "groups": {"type": "array", "items": group}},
        },
        "Stats": {
            "type": "object",
            "required": ["depth", "oldest_created", "oldest_age_seconds"],
            "properties": {
                "depth": {"type": "integer", "minimum": 0},
                "oldest_created": nullable_number,
                "oldest_age_seconds": {**nullable_number, "minimum": 0},
            },
        },
        "ClaimRequest": {
            "oneOf": [
                {
                    "type": "object",
                    "required": ["ids"],
                    "properties": {"ids": _ids_schema()},
                    "not": {"required": ["count"]},
                },
                {
                    "type": "object",
                    "required": ["count"],
                    "properties": {
                        "count": {"type": "integer", "minimum": 1, "maximum": MAX_CLAIM_COUNT,
                                  "description": "claim the riskiest free items"},
                    },
                    "not": {"required": ["ids"]},
                },
            ]
        },
        "Claimed": {
            "type": "object",
            "required": ["claimed", "moderator", "lease_seconds"],
            "properties": {
                "claimed": {"type": "array", "items": {"type": "string"}},
                "moderator": {"type": "string"},
                "lease_seconds": {"type": "number", "minimum": 0},
            },
        },
        "ReleaseRequest": {
            "type": "object",
            "required": ["ids"],
            "properties": {"ids": _ids_schema()},
        },
        "Released": {
            "type": "object",
            "required": ["released"],
            "properties": {"released": {"type": "array", "items": {"type": "string"}}},
        },
        "History": {
            "type": "object",
            "required": ["id", "status", "history"],
            "properties": {
                "id": {"type": "string"},
                "status": {"type": "string", "enum": [HELD, PUBLISHED, REJECTED]},
                "history": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["time", "actor", "action", "from", "to"],
                        "properties": {
                            "time": {"type": "number"},
                            "actor": {"type": "string"},
                            "action": {"type": "string", "enum": [
                                "claim", "release", "undo", *review.ACTIONS,
                            ]},
                            "from": {"type": "string"},
                            "to": {"type": "string"},
                            "reason": {"type": "string"},
                            "undone": {"type": "string", "description": "the decision entry"},
                        },
                    },
                },
            },
        },
        "DecisionRequest": {
            "type": "object",
            "required": ["action"],
            "properties": {"action": decision_action, "reason": reason},
        },
        "Decided": {
            "type": "object",
            "required": ["id", "action", "decision_entry", "moderator"],
            "properties": {
                "id": {"type": "string"},
                "action": decision_action,
                "decision_entry": {"type": "string", "description": "its id in the log"},
                "moderator": {"type": "string"},
            },
        },
        "BulkDecisionRequest": {
            "type": "object",
            "required": ["ids", "action"],
            "properties": {"ids": _ids_schema(), "action": decision_action, "reason": reason},
        },
        "BulkDecided": {
            "type": "object",
            "required": ["ids", "action", "decision_entries", "moderator"],
            "properties": {
                "ids": {"type": "array", "items": {"type": "string"}},
                "action": decision_action,
                "decision_entries": {"type": "array", "items": {"type": "string"}},
                "moderator": {"type": "string"},
            },
        },
        "Decisions": {
            "type": "object",
            "required": ["decisions"],
            "properties": {
                "decisions": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["entry_id", "comment_id", "action", "label", "moderator",
                                     "time", "score", "model_version", "reason", "text"],
                        "properties": {
                            "entry_id": {"type": "string"},
                            "comment_id": {"type": "string"},
                            "action": decision_action,
                            "label": {"type": "string", "enum": ["ham", "spam"]},
                            "moderator": {"type": "string"},
                            "time": {"type": "number"},
                            "score": {"type": "number", "minimum": 0, "maximum": 1},
                            "model_version": {"type": "string"},
                            "reason": {"type": "string",
                                       "description": "the reject reason, or the action"},
                            "text": {"type": "string"},
                        },
                    },
                }
            },
        },
        "Undone": {
            "type": "object",
            "required": ["id", "status", "undone_by"],
            "properties": {
                "id": {"type": "string"},
                "status": {"type": "string", "enum": [HELD]},
                "undone_by": {"type": "string"},
            },
        },
    }


def moderation_document() -> dict[str, Any]:
    """The moderators' API's document as a dict (served at /api/v1/moderation/openapi.json)."""
    prefix = "/api/v1/moderation"
    comment_id = {
        "name": "comment_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "minLength": 1},
        "description": "a comment id (read up to 64 characters)",
    }

    def query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
        return {"name": name, "in": "query", "schema": schema, "description": description}

    def score(name: str, default: float) -> dict[str, Any]:
        return query(name, {"type": "number", "minimum": 0, "maximum": 1},
                     f"0 to 1, a plain decimal (default {default:g})")

    bad_query = _error("invalid_field: a parameter out of range or not spelled as "
                       "documented; error.field names it")
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Comment moderation: moderators' API",
            "version": "1",
            "description": (
                "Review held comments: list, claim, release, decide, undo. Every request "
                "needs 'Authorization: Bearer <token>' (`flask --app moderation users "
                "token NAME`); cookies are ignored. Errors have the shape "
                "{\"error\": {\"code\", \"message\", \"field\"}}; a refused request "
                "writes nothing, also for the other ids in it. "
                "Query parameters are refused, never clamped, when out of range or not "
                "spelled as documented (ASCII digits, a plain decimal, 1/0/true/false); an "
                "empty one means its default."
            ),
        },
        "security": [{"bearerAuth": []}],
        "paths": {
            f"{prefix}/queue": {
                "get": {
                    "summary": "Held comments, riskiest (or oldest) first.",
                    "operationId": "listQueue",
                    "parameters": [
                        query("sort", {"type": "string", "enum": list(review.SORTS)},
                              "risk (default) or age"),
                        query("article", {"type": "string"}, "an article's slug"),
                        score("min_score", 0.0),
                        score("max_score", 1.0),
                        query("page", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
                              "default 1"),
                        query("per_page", {"type": "integer", "minimum": 1,
                                           "maximum": MAX_QUEUE_PER_PAGE},
                              "default MODERATE_PER_PAGE"),
                        query("grouped", {"type": "string", "enum": list(FLAGS)},
                              "groups of near-duplicates instead of items (default no)"),
                    ],
                    "responses": _moderation_responses(
                        {"200": {
                            "description": "One page: items, or groups when grouped",
                            "content": {"application/json": {"schema": {"oneOf": [
                                {"$ref": "#/components/schemas/QueueItems"},
                                {"$ref": "#/components/schemas/QueueGroups"},
                            ]}}},
                        }},
                        **{"400": _error(
                            "invalid_field: a bad sort, article, score, page, per_page or "
                            "grouped, or min_score above max_score; error.field names it"
                        )},
                    ),
                }
            },
            f"{prefix}/stats": {
                "get": {
                    "summary": "Queue depth and the age of its oldest item.",
                    "operationId": "queueStats",
                    "responses": _moderation_responses({"200": _json("Stats", "Stats")}),
                }
            },
            f"{prefix}/claims": {
                "post": {
                    "summary": "Claim items by id, or the riskiest free ones, for LEASE_SECONDS.",
                    "operationId": "claim",
                    "requestBody": _json_body("ClaimRequest"),
                    "responses": _moderation_responses(
                        {"200": _json("Claimed (claims already held are renewed)", "Claimed")},
                        body=True, **{"404": _UNKNOWN_ITEM, "409": _REFUSED},
                    ),
                }
            },
            f"{prefix}/releases": {
                "post": {
                    "summary": "Give back claims this moderator holds.",
                    "operationId": "release",
                    "requestBody": _json_body("ReleaseRequest"),
                    "responses": _moderation_responses(
                        {"200": _json("Released", "Released")}, body=True, **{"409": _REFUSED},
                    ),
                }
            },
            f"{prefix}/items/{{comment_id}}": {
                "parameters": [comment_id],
                "get": {
                    "summary": "One comment (held or decided), its claim and its decision.",
                    "operationId": "getItem",
                    "responses": _moderation_responses(
                        {"200": _json("The comment", "ItemDetail")},
                        **{"404": _error("not_found: no such comment")},
                    ),
                },
            },
            f"{prefix}/items/{{comment_id}}/history": {
                "parameters": [comment_id],
                "get": {
                    "summary": "Every change of one comment, oldest first.",
                    "operationId": "getHistory",
                    "responses": _moderation_responses(
                        {"200": _json("The history", "History")},
                        **{"404": _error("not_found: no such comment")},
                    ),
                },
            },
            f"{prefix}/items/{{comment_id}}/decision": {
                "parameters": [comment_id],
                "post": {
                    "summary": "Decide one comment (free, or claimed by this moderator).",
                    "operationId": "decideOne",
                    "requestBody": _json_body("DecisionRequest"),
                    "responses": _moderation_responses(
                        {"200": _json("Decided and logged", "Decided")},
                        body=True, **{"404": _UNKNOWN_ITEM, "409": _REFUSED},
                    ),
                },
            },
            f"{prefix}/decisions": {
                "get": {
                    "summary": "Recent decisions, newest first (undone ones are gone).",
                    "operationId": "recentDecisions",
                    "parameters": [
                        query("count", {"type": "integer", "minimum": 1,
                                        "maximum": MAX_DECISIONS_COUNT}, "default 50"),
                        query("before", {"type": "string",
                                         "pattern": r"^[0-9]{1,20}(-[0-9]{1,20})?$"},
                              "a decision's entry_id: the page after it (each part below "
                              "2^64, not 0 or 0-0)"),
                    ],
                    "responses": _moderation_responses(
                        {"200": _json("Decisions", "Decisions")}, **{"400": bad_query},
                    ),
                },
                "post": {
                    "summary": "Decide many comments at once; all or nothing.",
                    "operationId": "decideMany",
                    "requestBody": _json_body("BulkDecisionRequest"),
                    "responses": _moderation_responses(
                        {"200": _json("Decided and logged", "BulkDecided")},
                        body=True, **{"404": _UNKNOWN_ITEM, "409": _REFUSED},
                    ),
                },
            },
            f"{prefix}/items/{{comment_id}}/undo": {
                "parameters": [comment_id],
                "post": {
                    "summary": "Put a decided comment back in the queue (operators only).",
                    "operationId": "undo",
                    "responses": _moderation_responses(
                        {"200": _json("Back in the queue", "Undone")},
                        **{
                            "403": _error("forbidden: this needs the operator role"),
                            "404": _error("not_found: no such comment"),
                            "409": _error("not_decided: it has no decision to undo", "Refused"),
                        },
                    ),
                },
            },
        },
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token from `flask --app moderation users token NAME`.",
                }
            },
            "schemas": _moderation_schemas(),
        },
    }
