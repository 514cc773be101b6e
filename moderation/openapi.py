"""The OpenAPI 3.0 document of the public JSON API, served at ``/api/v1/openapi.json``.

Written by hand next to the views it describes (``views/api.py``) and checked by
``tests/test_fuzz_api.py``: schemathesis generates requests from it and asserts that
every answer has a documented status and shape, and that none is a 5xx.
"""

from __future__ import annotations

from typing import Any

from .articles import default_article
from .schemas import MAX_PAGE

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "field"],
            "properties": {
                "code": {"type": "string", "minLength": 1},
                "message": {"type": "string", "minLength": 1},
                "field": {"type": "string", "nullable": True},
                # captcha_failed: {"attempts_left": n}; 0 means "get a new challenge".
                "details": {},
            },
        }
    },
}

#: Present only when the service runs with ``PUBLIC_SCORES=1``.
_SCORE_FIELDS = {
    "score": {"type": "number", "minimum": 0, "maximum": 1,
              "description": "spam probability (only with PUBLIC_SCORES=1)"},
    "model_version": {"type": "string", "description": "only with PUBLIC_SCORES=1"},
    "reason": {"type": "string", "description": "the model's or guards' reason "
               "(only with PUBLIC_SCORES=1)"},
}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _json(description: str, ref: str, headers: dict | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }
    if headers:
        response["headers"] = headers
    return response


_RATE_LIMITED = _error("Too many requests from this client or to this article (Retry-After).")


def document() -> dict[str, Any]:
    """The whole document as a dict (the view serves it as JSON)."""
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
                        "error": _ERROR["properties"]["error"],
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
