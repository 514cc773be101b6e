"""The JSON API for pages that render comments with JavaScript.

POST /api/v1/challenges                  -> 201 {id, image_url, audio_url, expires_at}
GET  /api/v1/form-token                  -> 200 {form_token, min_fill_seconds}
GET  /api/v1/openapi.json                -> the OpenAPI document of this API
GET  /api/v1/articles/<slug>/comments    -> 200 {comments, page, per_page, total, pages}
POST /api/v1/articles/<slug>/comments    -> 201 published | 202 held | 422 rejected | 400 bad input
GET  /api/v1/comments/<id>               -> 200 {id, article, status, created}
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify, request, url_for

from .. import comments
from ..articles import get_article
from ..errors import ApiError
from ..guards import HONEYPOT_FIELD
from ..redis_store import get_redis
from ..schemas import parse_list_query
from .common import (
    get_challenges,
    get_page_cache,
    no_store,
    set_pass_cookie,
    submit_comment,
)
from .json_body import require_json

bp = Blueprint("api", __name__, url_prefix="/api/v1")

STATUS_CODES = {comments.PUBLISHED: 201, comments.HELD: 202, comments.REJECTED: 422}


def _require_article(slug: str) -> str:
    if get_article(slug) is None:
        raise ApiError(404, "unknown_article", f"There is no article '{slug[:80]}'.", "article")
    return slug


@bp.post("/challenges")
def new_challenge():
    challenge = get_challenges().issue()
    body = {
        "id": challenge.id,
        "image_url": url_for("articles.captcha_image", challenge_id=challenge.id),
        "audio_url": url_for("articles.captcha_audio", challenge_id=challenge.id),
        "expires_at": challenge.expires_at,
    }
    return no_store(jsonify(body)), 201


@bp.get("/form-token")
def form_token():
    """A signed "form shown now" stamp: send it back as ``form_token`` with the comment."""
    body = {
        "form_token": current_app.extensions["form_clock"].stamp(),
        "min_fill_seconds": current_app.config["MIN_FILL_SECONDS"],
        "honeypot_field": HONEYPOT_FIELD,
    }
    return no_store(jsonify(body))


@bp.get("/openapi.json")
def openapi_document():
    from ..openapi import public_document

    return jsonify(public_document())


@bp.get("/articles/<slug>/comments")
def list_comments(slug: str):
    _require_article(slug)
    query = parse_list_query(request.args)
    per_page = query.per_page or current_app.config["COMMENTS_PER_PAGE"]
    # The JSON of a page is kept and sent again while Redis reports the same page.
    cache_key = ("json", slug, query.page, per_page)
    known_stamp, body = get_page_cache().get(cache_key)
    listing = comments.read_page(
        get_redis(), comments.PageQuery(slug, query.page, per_page, known_stamp)
    )
    if listing is not None:
        body = jsonify(
            comments=[comment.public_dict() for comment in listing.comments],
            page=listing.page,
            per_page=listing.per_page,
            total=listing.total,
            pages=listing.pages,
        ).get_data()
        get_page_cache().put(cache_key, listing.stamp, body)
    return current_app.response_class(body, mimetype=current_app.json.mimetype)


@bp.post("/articles/<slug>/comments")
def post_comment(slug: str):
    _require_article(slug)
    outcome = submit_comment(slug, require_json("the comment"))
    comment = outcome.comment
    body = {"id": comment.id, "status": comment.status}
    if current_app.config["PUBLIC_SCORES"]:
        body.update(score=round(comment.score, 4), model_version=comment.model_version,
                    reason=comment.reason)
    if comment.status == comments.REJECTED:
        body["error"] = {"code": outcome.code, "message": outcome.reader_message,
                         "field": outcome.field}
    else:
        body["message"] = outcome.reader_message
    return set_pass_cookie(jsonify(body), outcome.new_pass), STATUS_CODES[comment.status]


@bp.get("/comments/<comment_id>")
def comment_status(comment_id: str):
    """Where a submitted comment stands; its text is public only once published."""
    comment = comments.get(get_redis(), comment_id[:64])
    if comment is None:
        abort(404)
    body = {
        "id": comment.id,
        "article": comment.article,
        "status": comment.status,
        "created": comment.created,
    }
    if comment.status == comments.PUBLISHED:
        body.update(comment.public_dict())
    return jsonify(body)
