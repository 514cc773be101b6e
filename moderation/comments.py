"""Storing and listing comments (no Flask here).

A submission that passed the CAPTCHA becomes a comment hash plus one index entry
that matches its status, written in one MULTI/EXEC transaction so a comment is
never stored without being findable (published list, review queue or rejected set).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field

import redis

from . import keys

PUBLISHED = "published"
HELD = "held"
REJECTED = "rejected"

VERDICT_TO_STATUS = {"publish": PUBLISHED, "hold": HELD, "reject": REJECTED}


def hash_ip(ip: str, key: str) -> str:
    """Keyed hash of a client IP: lets us group by client without keeping the address."""
    return hmac.new(key.encode(), ip.encode(), hashlib.sha256).hexdigest()


@dataclass
class Comment:
    id: str
    article: str
    author: str
    body: str
    created: float
    user_agent: str = ""
    ip_hash: str = ""
    score: float = 0.0
    model_version: str = ""
    verdict: str = ""
    status: str = ""
    reason: str = ""
    explanation: list[dict] = field(default_factory=list)

    def to_hash(self) -> dict[str, str]:
        data = {name: getattr(self, name) for name in keys.COMMENT_FIELDS}
        data["explanation"] = json.dumps(self.explanation)
        return {name: str(value) for name, value in data.items()}

    @classmethod
    def from_hash(cls, data: dict[str, str]) -> Comment:
        return cls(
            id=data["id"],
            article=data["article"],
            author=data.get("author", ""),
            body=data.get("body", ""),
            created=float(data.get("created", 0)),
            user_agent=data.get("user_agent", ""),
            ip_hash=data.get("ip_hash", ""),
            score=float(data.get("score", 0) or 0),
            model_version=data.get("model_version", ""),
            verdict=data.get("verdict", ""),
            status=data.get("status", ""),
            reason=data.get("reason", ""),
            explanation=json.loads(data.get("explanation") or "[]"),
        )

    def public_dict(self) -> dict:
        """What anyone may see of a published comment."""
        return {
            "id": self.id,
            "article": self.article,
            "author": self.author,
            "body": self.body,
            "created": self.created,
        }


def new_comment_id() -> str:
    return secrets.token_hex(8)


def save(connection: redis.Redis, comment: Comment, *,
         pipe: redis.client.Pipeline | None = None) -> None:
    """Store a new comment and index it by its status, atomically.

    With ``pipe`` (a transaction pipeline) the writes are only queued on it, so the
    caller can add its own and send everything in one round trip.
    """
    if pipe is None:
        with connection.pipeline(transaction=True) as own:
            save(connection, comment, pipe=own)
            own.execute()
        return
    pipe.hset(keys.comment(comment.id), mapping=comment.to_hash())
    pipe.zadd(keys.ALL_COMMENTS, {comment.id: comment.created})
    if comment.status == PUBLISHED:
        pipe.zadd(keys.article_published(comment.article), {comment.id: comment.created})
    elif comment.status == HELD:
        pipe.zadd(keys.REVIEW_QUEUE, {comment.id: comment.score})
    else:
        pipe.zadd(keys.REJECTED, {comment.id: comment.created})


def get(connection: redis.Redis, comment_id: str) -> Comment | None:
    data = connection.hgetall(keys.comment(comment_id))
    return Comment.from_hash(data) if data else None


def get_many(connection: redis.Redis, comment_ids: list[str]) -> list[Comment]:
    with connection.pipeline(transaction=False) as pipe:
        for comment_id in comment_ids:
            pipe.hgetall(keys.comment(comment_id))
        rows = pipe.execute()
    return [Comment.from_hash(row) for row in rows if row]


@dataclass(frozen=True)
class Page:
    comments: list[Comment]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


#: What a public listing reads of each comment (``Comment.public_dict``).
PUBLIC_FIELDS = ("id", "article", "author", "body", "created")

# A page of a listing in one round trip: the count, then each comment's public fields
# (a page view made three round trips before; make bench: the article page was bound
# on Redis replies). KEYS[1] the published zset; ARGV: start, stop, comment key
# prefix, field names.
_PAGE_SCRIPT = """
local ids = redis.call('ZREVRANGE', KEYS[1], ARGV[1], ARGV[2])
local out = {redis.call('ZCARD', KEYS[1])}
for _, id in ipairs(ids) do
  out[#out + 1] = redis.call('HMGET', ARGV[3] .. id, unpack(ARGV, 4))
end
return out
"""


def list_published(connection: redis.Redis, slug: str, page: int = 1, per_page: int = 20) -> Page:
    """One page of an article's published comments, newest first (public fields only)."""
    start = (page - 1) * per_page
    reply = connection.register_script(_PAGE_SCRIPT)(
        keys=[keys.article_published(slug)],
        args=[start, start + per_page - 1, keys.comment(""), *PUBLIC_FIELDS],
    )
    found = []
    for row in reply[1:]:
        data = dict(zip(PUBLIC_FIELDS, row, strict=True))
        if data["id"] is None:  # deleted between the ZREVRANGE and the HMGET: skip it
            continue
        data = {k: v.decode() if isinstance(v, bytes) else v for k, v in data.items()}
        found.append(Comment(id=data["id"], article=data["article"] or slug,
                             author=data["author"] or "", body=data["body"] or "",
                             created=float(data["created"] or 0), status=PUBLISHED))
    return Page(comments=found, page=page, per_page=per_page, total=int(reply[0]))


def make_comment(
    *,
    article: str,
    author: str,
    body: str,
    user_agent: str,
    ip_hash: str,
    score: float,
    model_version: str,
    verdict: str,
    reason: str,
    explanation: list[dict],
    now: float | None = None,
) -> Comment:
    return Comment(
        id=new_comment_id(),
        article=article,
        author=author,
        body=body,
        created=time.time() if now is None else now,
        user_agent=user_agent[:300],
        ip_hash=ip_hash,
        score=score,
        model_version=model_version,
        verdict=verdict,
        status=VERDICT_TO_STATUS[verdict],
        reason=reason,
        explanation=explanation,
    )
