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
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
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
    #: What this page shows, as Redis saw it: see ``PageQuery``.
    stamp: str = ""

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


#: What a public listing reads of each comment (``Comment.public_dict``).
PUBLIC_FIELDS = ("id", "article", "author", "body", "created")

# A page of a listing in one round trip: its stamp (the published count and the ids
# on the page), then each comment's public fields -- or the stamp alone when it
# equals ARGV[3], the stamp the caller already holds a copy of the page for.
# KEYS[1] the published zset; ARGV: start, stop, known stamp, comment key prefix,
# field names.
_PAGE_SCRIPT = """
local ids = redis.call('ZREVRANGE', KEYS[1], ARGV[1], ARGV[2])
local stamp = redis.call('ZCARD', KEYS[1]) .. ':' .. table.concat(ids, ',')
if stamp == ARGV[3] then return {stamp} end
local out = {stamp}
for _, id in ipairs(ids) do
  out[#out + 1] = redis.call('HMGET', ARGV[4] .. id, unpack(ARGV, 5))
end
return out
"""


@dataclass(frozen=True)
class PageQuery:
    """One page of an article's published comments, newest first (public fields only).

    The reply carries a *stamp*: the article's published count and the ids on the
    page. The public fields of a stored comment never change (moderation and
    retention only move ids between indexes and touch status fields), so the same
    stamp means the same page: a copy made from a page (rendered HTML, JSON) is
    still right as long as a new read returns its stamp, whoever changed what since.
    """

    slug: str
    page: int = 1
    per_page: int = 20
    #: The stamp of a copy the caller holds (empty: none); an unchanged page then
    #: comes back as its stamp alone.
    known_stamp: str = ""

    def queue(self, pipe: redis.client.Pipeline) -> None:
        """Queue the read on ``pipe`` (the caller executes it, maybe with other commands).

        EVAL rather than EVALSHA: redis-py checks SCRIPT EXISTS before running a
        pipeline that holds registered scripts, an extra round trip per page; Redis
        serves the EVAL of a script it has seen from its script cache.
        """
        start = (self.page - 1) * self.per_page
        pipe.eval(_PAGE_SCRIPT, 1, keys.article_published(self.slug),
                  start, start + self.per_page - 1, self.known_stamp, keys.comment(""),
                  *PUBLIC_FIELDS)

    def parse(self, reply: list) -> Page | None:
        """The page from the queued read's reply; None when it is the known copy's."""
        if self.known_stamp and _text(reply[0]) == self.known_stamp:
            return None
        return self.page_from(reply)

    def page_from(self, reply: list) -> Page:
        """The page in a reply that carries its rows (no known stamp, or a changed page)."""
        stamp = _text(reply[0]) or ""
        found = []
        for row in reply[1:]:
            data = dict(zip(PUBLIC_FIELDS, row, strict=True))
            if data["id"] is None:  # deleted between the ZREVRANGE and the HMGET: skip it
                continue
            data = {k: _text(v) for k, v in data.items()}
            found.append(Comment(id=data["id"], article=data["article"] or self.slug,
                                 author=data["author"] or "", body=data["body"] or "",
                                 created=float(data["created"] or 0), status=PUBLISHED))
        return Page(comments=found, page=self.page, per_page=self.per_page,
                    total=stamp_total(stamp), stamp=stamp)


def stamp_total(stamp: str) -> int:
    """The article's published count in a page's stamp."""
    return int(stamp.partition(":")[0] or 0)


def _fetch(connection: redis.Redis, query: PageQuery) -> list:
    with connection.pipeline(transaction=False) as pipe:
        query.queue(pipe)
        (reply,) = pipe.execute()
    return reply


def read_page(connection: redis.Redis, query: PageQuery) -> Page | None:
    """Run ``query`` alone: the page, or None when it is still the known copy's."""
    return query.parse(_fetch(connection, query))


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def list_published(connection: redis.Redis, slug: str, page: int = 1, per_page: int = 20) -> Page:
    """One page of an article's published comments, newest first (public fields only)."""
    query = PageQuery(slug, page, per_page)
    return query.page_from(_fetch(connection, query))


class PageCache:
    """Copies made from listing pages (rendered HTML, JSON), each under its page's stamp.

    Per process, bounded by the copies' total length, least recently used out
    first. A copy is only served after a read of the page returned the stamp it
    was made under (``PageQuery.known_stamp``), so it is never stale, however the
    published set changed meanwhile.
    """

    def __init__(self, max_chars: int = 4_000_000) -> None:
        self.max_chars = max_chars
        self._entries: OrderedDict[Hashable, tuple[str, str | bytes]] = OrderedDict()
        self._chars = 0
        self._lock = threading.Lock()  # the dev server and tests serve from threads

    def get(self, key: Hashable) -> tuple[str, str | bytes | None]:
        """(stamp, copy) kept under ``key``, or ("", None)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return "", None
            self._entries.move_to_end(key)
            return entry

    def put(self, key: Hashable, stamp: str, copy: str | bytes) -> None:
        """Keep ``copy`` (made from the page read under ``stamp``), replacing older ones."""
        size = len(copy)
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._chars -= len(old[1])
            if size > self.max_chars:
                return
            self._entries[key] = (stamp, copy)
            self._chars += size
            while self._chars > self.max_chars:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._chars -= len(dropped)

    def __len__(self) -> int:
        return len(self._entries)


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
