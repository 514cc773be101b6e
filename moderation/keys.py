"""The Redis key layout: every key the service writes, its type, content and lifetime.

All keys start with ``PREFIX`` so the service can share a Redis with others.
Functions here only build names; no module spells a key by hand.

======================================  ======  ==========================================  ================
key                                     type    content                                     lifetime
======================================  ======  ==========================================  ================
mod:captcha:{challenge_id}              string  the CAPTCHA answer (upper case)             CAPTCHA_TTL; deleted on first check
mod:comment:{comment_id}                hash    one comment, see ``COMMENT_FIELDS``          permanent
mod:article:{slug}:published            zset    comment ids published under an article,     permanent
                                                score = creation time (epoch seconds)
mod:queue:review                        zset    comment ids held for review,                until decided
                                                score = spam probability
mod:rejected                            zset    comment ids rejected at submission,         permanent
                                                score = creation time
mod:comments:all                        zset    every comment id, score = creation time     permanent
======================================  ======  ==========================================  ================

Comment statuses: ``published`` (visible under the article), ``held`` (in the review
queue), ``rejected`` (never shown; kept with its reason so it stays findable).
"""

from __future__ import annotations

PREFIX = "mod:"

#: Fields of a ``mod:comment:{id}`` hash. Times are epoch seconds as strings.
COMMENT_FIELDS = (
    "id",  # public comment id
    "article",  # article slug
    "author",  # display name, may be empty
    "body",  # the text exactly as typed (escaped only when rendered)
    "created",  # epoch seconds
    "user_agent",  # request User-Agent, truncated
    "ip_hash",  # HMAC-SHA256 of the client IP under IP_HASH_KEY; never the raw IP
    "score",  # spam probability from the model, 0..1
    "model_version",  # version of the model that scored it
    "verdict",  # the model's verdict at submission: publish | hold | reject
    "status",  # current state: published | held | rejected
    "reason",  # why it was held or rejected (threshold, guard, moderator)
    "explanation",  # JSON list of the terms/signals that pushed the score most
)


def captcha(challenge_id: str) -> str:
    return f"{PREFIX}captcha:{challenge_id}"


def comment(comment_id: str) -> str:
    return f"{PREFIX}comment:{comment_id}"


def article_published(slug: str) -> str:
    return f"{PREFIX}article:{slug}:published"


REVIEW_QUEUE = f"{PREFIX}queue:review"
REJECTED = f"{PREFIX}rejected"
ALL_COMMENTS = f"{PREFIX}comments:all"
