"""The review queue: list, claim with a lease, release, decide, undo, history (no Flask here).

Held comments wait in the zset ``keys.REVIEW_QUEUE`` (score = spam probability).
An item is *claimed* by a moderator when the string ``keys.claim(id)`` holds the
moderator's name; the key carries a PX expiry equal to the lease, so a lease that
runs out simply vanishes and the item is free again (Redis does the bookkeeping,
no reaper needed).

Every write happens in one Lua script (``register_script``; Redis 6.2 commands
only), so with any number of moderators working at once:

* an item is claimed by at most one moderator at a time,
* an item leaves the queue exactly once (the script that removes it is the one
  that publishes or rejects it, logs the decision and appends to its history),
* a request that is refused for any item changes nothing at all: every script
  checks all its items first and writes only when none is refused.

Decisions are appended to the stream ``keys.DECISIONS`` in the format the
trainer's ``export-decisions`` reads (see ``keys.DECISION_FIELDS``).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import redis

from . import keys
from .comments import HELD, PUBLISHED, REJECTED, Comment
from .text import same_text_key

APPROVE = "approve"
REJECT = "reject"
SPAM = "spam"
HAM = "ham"

#: action -> (new status, training label). Approve and reject imply a label too:
#: a published comment is one the site wants (ham); a rejected one is one the
#: filter should not let through (spam). The exact action and reason code are
#: logged next to the label, so the trainer can drop e.g. off-topic rejections.
ACTIONS: dict[str, tuple[str, str]] = {
    APPROVE: (PUBLISHED, "ham"),
    HAM: (PUBLISHED, "ham"),
    REJECT: (REJECTED, "spam"),
    SPAM: (REJECTED, "spam"),
}

#: Why a moderator rejects a comment (required for ``reject``).
REJECT_REASONS: dict[str, str] = {
    "off_topic": "Off topic",
    "abusive": "Abusive or hateful",
    "personal_data": "Personal data",
    "advertising": "Advertising",
    "duplicate": "Duplicate",
    "illegal": "Illegal content",
    "other": "Other",
}

#: The reject reasons that still say "spam": a flood of copies, an advert. The others
#: judge what a comment says (abusive, off topic, ...), which is the site's policy and
#: not the spam filter's business, so the trainer's export leaves them out by default.
SPAM_REJECT_REASONS = frozenset({"advertising", "duplicate"})
POLICY_REJECT_REASONS = frozenset(REJECT_REASONS) - SPAM_REJECT_REASONS

SORTS = ("risk", "age")

#: Full comments loaded per near-duplicate group on a page (the rest are ids only).
SHOWN_PER_GROUP = 11

# Refusal codes returned by the scripts.
NOT_FOUND = "not_found"
ALREADY_DECIDED = "already_decided"
CLAIMED = "claimed"
NOT_CLAIMED = "not_claimed"
NOT_DECIDED = "not_decided"


class QueueError(Exception):
    """A request the queue refused; nothing was written."""


class InvalidRequest(QueueError):
    """Unknown action or reason code, or an empty list of items."""

    def __init__(self, message: str, field: str, code: str = "invalid_field") -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code  # the API's error code


@dataclass(frozen=True)
class Refusal:
    """Why one item of a request was refused."""

    comment_id: str
    code: str  # NOT_FOUND | ALREADY_DECIDED | CLAIMED | NOT_CLAIMED | NOT_DECIDED
    who: str = ""  # holder of the claim, or who decided it
    status: str = ""  # current status of the comment
    lease_left: float = 0.0  # seconds left on the holder's claim

    def message(self) -> str:
        if self.code == NOT_FOUND:
            return f"There is no comment '{self.comment_id[:64]}'."
        if self.code == ALREADY_DECIDED:
            by = f" by {self.who}" if self.who else ""
            return f"Comment {self.comment_id} was already decided{by} (it is {self.status})."
        if self.code == CLAIMED:
            return (
                f"Comment {self.comment_id} is claimed by {self.who} "
                f"(lease ends in {max(0, round(self.lease_left))} s)."
            )
        if self.code == NOT_CLAIMED:
            return f"You do not hold a claim on comment {self.comment_id}."
        return f"Comment {self.comment_id} has no moderator decision to undo (it is {self.status})."

    def to_dict(self) -> dict:
        return {
            "id": self.comment_id,
            "code": self.code,
            "who": self.who or None,
            "status": self.status or None,
            "lease_left": round(self.lease_left, 1) if self.code == CLAIMED else None,
        }


class Refused(QueueError):
    """One or more items were refused, so the whole request was; see ``refusals``."""

    def __init__(self, refusals: list[Refusal]) -> None:
        self.refusals = refusals
        super().__init__("; ".join(r.message() for r in refusals[:5]))

    @property
    def not_found(self) -> bool:
        return any(r.code == NOT_FOUND for r in self.refusals)


@dataclass
class QueueItem:
    comment: Comment
    holder: str = ""  # who holds the claim ("" = free)
    lease_left: float = 0.0  # seconds


@dataclass(frozen=True)
class GroupClaim:
    """One moderator's claims on the comments of a group."""

    holder: str
    count: int  # how many of the group's comments this moderator holds
    lease_left: float  # seconds until the last of them lapses


@dataclass
class Group:
    """Held comments whose normalized text is the same (a singleton for most).

    ``member_ids`` are all of them, in display order; ``items`` holds the full
    comments of the first ``SHOWN_PER_GROUP`` only, so a campaign of 1,000 copies
    costs one row. ``holders`` covers every member, shown or not: the row's buttons
    act on all of them, and a claim on any one refuses them for everyone else.
    """

    key: str
    items: list[QueueItem] = field(default_factory=list)
    member_ids: list[str] = field(default_factory=list)
    holders: dict[str, tuple[str, float]] = field(default_factory=dict)

    @property
    def claims(self) -> list[GroupClaim]:
        """Who holds claims on the group, the most comments first."""
        held: dict[str, list[float]] = {}
        for who, seconds_left in self.holders.values():
            held.setdefault(who, []).append(seconds_left)
        return sorted(
            (GroupClaim(who, len(leases), max(leases)) for who, leases in held.items()),
            key=lambda claim: (-claim.count, claim.holder),
        )

    @property
    def top(self) -> QueueItem:
        return self.items[0]

    @property
    def count(self) -> int:
        return len(self.member_ids)

    @property
    def ids(self) -> list[str]:
        return self.member_ids


@dataclass
class QueuePage:
    groups: list[Group]
    page: int
    per_page: int
    total_groups: int  # groups matching the filters
    total_items: int  # items matching the filters
    depth: int  # items in the whole queue
    oldest_created: float | None  # creation time of the oldest queued item

    @property
    def pages(self) -> int:
        return max(1, -(-self.total_groups // self.per_page))


@dataclass(frozen=True)
class Decision:
    """One entry of the decision log."""

    entry_id: str
    comment_id: str
    action: str
    label: str
    moderator: str
    time: float
    score: float
    model_version: str
    reason: str
    text: str

    @classmethod
    def from_entry(cls, entry_id: str, data: dict[str, str]) -> Decision:
        return cls(
            entry_id=entry_id,
            comment_id=data.get("comment_id", ""),
            action=data.get("action", ""),
            label=data.get("label", ""),
            moderator=data.get("moderator", ""),
            time=float(data.get("time") or 0),
            score=float(data.get("score") or 0),
            model_version=data.get("model_version", ""),
            reason=data.get("reason", ""),
            text=data.get("text", ""),
        )

    def to_dict(self) -> dict:
        return {
            "entry_id": self.entry_id,
            "comment_id": self.comment_id,
            "action": self.action,
            "label": self.label,
            "moderator": self.moderator,
            "time": self.time,
            "score": self.score,
            "model_version": self.model_version,
            "reason": self.reason,
            "text": self.text,
        }


_STREAM_ID = re.compile(r"([0-9]{1,20})(?:-([0-9]{1,20}))?", re.ASCII)


def is_decision_id(raw: str) -> bool:
    """Whether ``raw`` can page the decision log: a stream id ``ms[-seq]``.

    Redis answers an error, not an empty page, for parts of 2**64 or more and for
    ``0-0`` as an exclusive bound, so those are refused here, as is anything but
    ASCII digits (``str.isdigit`` would let Arabic-Indic digits through).
    """
    match = _STREAM_ID.fullmatch(raw)
    if match is None:
        return False
    parts = [int(part) for part in match.groups("0")]
    return all(part < 2**64 for part in parts) and any(parts)


def group_key(text: str) -> str:
    """Comments with the same key are near-duplicates (same normalized text)."""
    return same_text_key(text)


# ---------------------------------------------------------------------------
# Lua scripts. Every script validates all items before it writes anything.
# Refusals come back as a JSON list of [id, code, who, status, lease_ms].
# ---------------------------------------------------------------------------

# The check shared by claim and decide: an item must exist, still be queued and not
# be held by another moderator. Lua function prepended to those scripts.
_REFUSALS = """
local function refusals_for(queue, moderator, n, id_at, hkey_at, ckey_at)
  local refusals = {}
  for i = 1, n do
    local id = ARGV[id_at(i)]
    local hkey, ckey = KEYS[hkey_at(i)], KEYS[ckey_at(i)]
    if redis.call('EXISTS', hkey) == 0 then
      refusals[#refusals + 1] = {id, 'not_found', '', '', 0}
    elseif not redis.call('ZSCORE', queue, id) then
      local f = redis.call('HMGET', hkey, 'decided_by', 'status')
      refusals[#refusals + 1] = {id, 'already_decided', f[1] or '', f[2] or '', 0}
    else
      local holder = redis.call('GET', ckey)
      if holder and holder ~= moderator then
        refusals[#refusals + 1] = {id, 'claimed', holder, 'held', redis.call('PTTL', ckey)}
      end
    end
  end
  return refusals
end
"""

# KEYS: queue, then per item (comment hash, claim, history)
# ARGV: moderator, lease_ms, now, then per item the id
_CLAIM = _REFUSALS + """
local moderator, lease_ms, now = ARGV[1], ARGV[2], ARGV[3]
local n = (#KEYS - 1) / 3
local refusals = refusals_for(KEYS[1], moderator, n, function(i) return 3 + i end,
  function(i) return 2 + (i - 1) * 3 end, function(i) return 3 + (i - 1) * 3 end)
if #refusals > 0 then return {0, cjson.encode(refusals)} end
for i = 1, n do
  local ckey, hist = KEYS[3 + (i - 1) * 3], KEYS[4 + (i - 1) * 3]
  local fresh = redis.call('EXISTS', ckey) == 0
  redis.call('SET', ckey, moderator, 'PX', lease_ms)
  if fresh then
    redis.call('RPUSH', hist, cjson.encode({time = tonumber(now), actor = moderator,
      action = 'claim', from = 'held', to = 'held'}))
  end
end
return {1, '[]'}
"""

# KEYS: queue; ARGV: moderator, lease_ms, now, count, claim prefix, history prefix
# Takes the riskiest free items. Claim and history keys are built from the
# prefixes (fine on a single Redis server; not cluster-safe).
_CLAIM_NEXT = """
local moderator, lease_ms, now = ARGV[1], ARGV[2], ARGV[3]
local want = tonumber(ARGV[4])
local claimed = {}
local ids = redis.call('ZREVRANGE', KEYS[1], 0, -1)
for _, id in ipairs(ids) do
  if #claimed >= want then break end
  local ckey = ARGV[5] .. id
  if redis.call('EXISTS', ckey) == 0 then
    redis.call('SET', ckey, moderator, 'PX', lease_ms)
    redis.call('RPUSH', ARGV[6] .. id, cjson.encode({time = tonumber(now), actor = moderator,
      action = 'claim', from = 'held', to = 'held'}))
    claimed[#claimed + 1] = id
  end
end
return claimed
"""

# KEYS: per item (claim, history); ARGV: moderator, now, then ids
_RELEASE = """
local moderator, now = ARGV[1], ARGV[2]
local n = #KEYS / 2
local refusals = {}
for i = 1, n do
  local id, ckey = ARGV[2 + i], KEYS[1 + (i - 1) * 2]
  local holder = redis.call('GET', ckey)
  if not holder then
    refusals[#refusals + 1] = {id, 'not_claimed', '', '', 0}
  elseif holder ~= moderator then
    refusals[#refusals + 1] = {id, 'claimed', holder, 'held', redis.call('PTTL', ckey)}
  end
end
if #refusals > 0 then return {0, cjson.encode(refusals)} end
for i = 1, n do
  redis.call('DEL', KEYS[1 + (i - 1) * 2])
  redis.call('RPUSH', KEYS[2 + (i - 1) * 2], cjson.encode({time = tonumber(now),
    actor = moderator, action = 'release', from = 'held', to = 'held'}))
end
return {1, '[]'}
"""

# KEYS: queue, decisions stream, then per item (comment hash, claim, history, target index)
# ARGV: moderator, action, label, new status, reason, now, then ids
_DECIDE = _REFUSALS + """
local moderator, action, label, status, reason, now =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local n = (#KEYS - 2) / 4
local refusals = refusals_for(KEYS[1], moderator, n, function(i) return 6 + i end,
  function(i) return 3 + (i - 1) * 4 end, function(i) return 4 + (i - 1) * 4 end)
if #refusals > 0 then return {0, cjson.encode(refusals)} end
local entries = {}
for i = 1, n do
  local id = ARGV[6 + i]
  local b = 2 + (i - 1) * 4
  local hkey, ckey, hist, target = KEYS[b + 1], KEYS[b + 2], KEYS[b + 3], KEYS[b + 4]
  local f = redis.call('HMGET', hkey, 'body', 'score', 'model_version', 'created', 'status')
  redis.call('ZREM', KEYS[1], id)
  redis.call('DEL', ckey)
  redis.call('ZADD', target, f[4] or now, id)
  local entry = redis.call('XADD', KEYS[2], '*',
    'text', f[1] or '', 'label', label, 'moderator', moderator, 'time', now,
    'score', f[2] or '0', 'model_version', f[3] or '', 'reason', reason,
    'comment_id', id, 'action', action)
  redis.call('HSET', hkey, 'status', status, 'decision', action, 'decision_reason', reason,
    'decided_by', moderator, 'decided_at', now, 'decision_entry', entry)
  redis.call('RPUSH', hist, cjson.encode({time = tonumber(now), actor = moderator,
    action = action, from = f[5] or 'held', to = status, reason = reason}))
  entries[#entries + 1] = entry
end
return {1, cjson.encode(entries)}
"""

# KEYS: queue, decisions stream, comment hash, history, published index, rejected index
# ARGV: operator, now, id
_UNDO = """
local operator, now, id = ARGV[1], ARGV[2], ARGV[3]
if redis.call('EXISTS', KEYS[3]) == 0 then
  return {0, cjson.encode({{id, 'not_found', '', '', 0}})}
end
local f = redis.call('HMGET', KEYS[3], 'status', 'decision_entry', 'score', 'decided_by')
local status, entry = f[1] or '', f[2]
if redis.call('ZSCORE', KEYS[1], id) or not entry or entry == ''
   or (status ~= 'published' and status ~= 'rejected') then
  return {0, cjson.encode({{id, 'not_decided', f[4] or '', status, 0}})}
end
redis.call('ZREM', KEYS[5], id)
redis.call('ZREM', KEYS[6], id)
redis.call('ZADD', KEYS[1], f[3] or 0, id)
redis.call('XDEL', KEYS[2], entry)
redis.call('HSET', KEYS[3], 'status', 'held')
redis.call('HDEL', KEYS[3], 'decision', 'decision_reason', 'decided_by', 'decided_at',
  'decision_entry')
redis.call('RPUSH', KEYS[4], cjson.encode({time = tonumber(now), actor = operator,
  action = 'undo', from = status, to = 'held', undone = entry}))
return {1, '[]'}
"""


# KEYS: queue; ARGV: max score, min score, comment-hash prefix, emit ("1" or "0")
# Returns {depth, oldest created (whole queue, "" if empty), then per item in the
# score range, riskiest first: id, score, article, created, body}. One round trip
# instead of one command per item; strings only (Lua would truncate floats).
_SCAN = """
local hi, lo, prefix, emit = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4] == '1'
local entries = redis.call('ZREVRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local out = {tostring(#entries / 2), ''}
local oldest = nil
for i = 1, #entries, 2 do
  local id, score = entries[i], entries[i + 1]
  local f = redis.call('HMGET', prefix .. id, 'article', 'created', 'body')
  if f[1] then
    local created = tonumber(f[2]) or 0
    if oldest == nil or created < oldest then oldest = created; out[2] = f[2] end
    local s = tonumber(score)
    if emit and s <= hi and s >= lo then
      local n = #out
      out[n + 1] = id
      out[n + 2] = score
      out[n + 3] = f[1]
      out[n + 4] = f[2] or '0'
      out[n + 5] = f[3] or ''
    end
  end
end
return out
"""


def _refusals(raw: str) -> list[Refusal]:
    return [
        Refusal(comment_id=r[0], code=r[1], who=r[2], status=r[3], lease_left=float(r[4]) / 1000)
        for r in json.loads(raw)
    ]


def _unique(ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(ids))


class ReviewQueue:
    """The review queue on one Redis connection (a ``decode_responses=True`` client)."""

    def __init__(
        self,
        connection: redis.Redis,
        *,
        lease_seconds: float = 600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.connection = connection
        self.lease_ms = max(1, int(lease_seconds * 1000))
        self.clock = clock
        self._claim = connection.register_script(_CLAIM)
        self._claim_next = connection.register_script(_CLAIM_NEXT)
        self._release = connection.register_script(_RELEASE)
        self._decide = connection.register_script(_DECIDE)
        self._undo = connection.register_script(_UNDO)
        self._scan = connection.register_script(_SCAN)

    # -- reading ------------------------------------------------------------

    def depth(self) -> int:
        return self.connection.zcard(keys.REVIEW_QUEUE)

    def holders(self, comment_ids: list[str]) -> dict[str, tuple[str, float]]:
        """Who holds a claim on each id, and the seconds left: ``{id: (who, seconds)}``.

        One MGET for all of them, then the leases of the few that are held: a page
        reads the claims of every comment of its groups (10,000 copies of one spam
        took 4 times as long as a GET and a PTTL for each).
        """
        if not comment_ids:
            return {}
        who_of = self.connection.mget([keys.claim(comment_id) for comment_id in comment_ids])
        claimed = [(cid, who) for cid, who in zip(comment_ids, who_of, strict=True) if who]
        if not claimed:
            return {}
        with self.connection.pipeline(transaction=False) as pipe:
            for comment_id, _ in claimed:
                pipe.pttl(keys.claim(comment_id))
            left = pipe.execute()
        # A lease that ran out between the two reads answers -2: shown as lapsing now.
        return {
            cid: (who, max(0, pttl) / 1000) for (cid, who), pttl in zip(claimed, left, strict=True)
        }

    def list(
        self,
        *,
        sort: str = "risk",
        article: str | None = None,
        min_score: float = 0.0,
        max_score: float = 1.0,
        page: int = 1,
        per_page: int = 50,
        grouped: bool = True,
    ) -> QueuePage:
        """One page of the queue, as groups of near-duplicates (or singletons).

        Sorting ``risk`` puts the highest score first, ``age`` the oldest first
        (a group sorts by its riskiest / oldest member). Reads the article, time
        and text of every queued item in one Lua call (about 1 ms per 1,000
        items in Redis), then full comments for what the page shows.
        """
        if sort not in SORTS:
            raise InvalidRequest(f"Unknown sort '{sort[:20]}': use risk or age.", "sort")
        raw = self._scan(
            keys=[keys.REVIEW_QUEUE], args=[max_score, min_score, keys.comment(""), "1"]
        )
        depth, oldest = int(raw[0]), (float(raw[1]) if raw[1] else None)
        groups: dict[str, list[tuple[str, float, float]]] = {}
        for index in range(2, len(raw), 5):
            comment_id, score, art, created, body = raw[index : index + 5]
            if article and art != article:
                continue
            key = group_key(body) if grouped else comment_id
            groups.setdefault(key, []).append((comment_id, float(score), float(created)))

        def order(member: tuple[str, float, float]):
            return (member[2], member[0]) if sort == "age" else (-member[1], member[0])

        for members in groups.values():
            members.sort(key=order)
        ordered = sorted(groups.items(), key=lambda item: order(item[1][0]))
        total_items = sum(len(members) for _, members in ordered)
        start = (page - 1) * per_page
        window = ordered[start : start + per_page]

        shown = [m[0] for _, members in window for m in members[:SHOWN_PER_GROUP]]
        comments = {c.id: c for c in self._comments(shown)}
        holders = self.holders([m[0] for _, members in window for m in members])
        page_groups = []
        for key, members in window:
            items = [
                QueueItem(comments[m[0]], *holders.get(m[0], ("", 0.0)))
                for m in members[:SHOWN_PER_GROUP]
                if m[0] in comments
            ]
            if items:
                member_ids = [m[0] for m in members]
                page_groups.append(Group(
                    key=key, items=items, member_ids=member_ids,
                    holders={cid: holders[cid] for cid in member_ids if cid in holders},
                ))
        return QueuePage(
            groups=page_groups,
            page=page,
            per_page=per_page,
            total_groups=len(ordered),
            total_items=total_items,
            depth=depth,
            oldest_created=oldest,
        )

    def stats(self) -> tuple[int, float | None]:
        """Queue depth and the creation time of its oldest item (None when empty)."""
        raw = self._scan(keys=[keys.REVIEW_QUEUE], args=[1, 0, keys.comment(""), "0"])
        return int(raw[0]), (float(raw[1]) if raw[1] else None)

    def _comments(self, comment_ids: list[str]) -> list[Comment]:
        with self.connection.pipeline(transaction=False) as pipe:
            for comment_id in comment_ids:
                pipe.hgetall(keys.comment(comment_id))
            rows = pipe.execute()
        return [Comment.from_hash(row) for row in rows if row]

    def item(self, comment_id: str) -> tuple[Comment, dict[str, str]] | None:
        """A comment and its raw hash (which also holds the decision fields)."""
        data = self.connection.hgetall(keys.comment(comment_id))
        return (Comment.from_hash(data), data) if data else None

    def history(self, comment_id: str) -> list[dict]:
        """Every change of one comment, oldest first: time, actor, action, from, to, reason."""
        return [
            json.loads(entry) for entry in self.connection.lrange(keys.history(comment_id), 0, -1)
        ]

    def recent_decisions(self, count: int = 50, before: str | None = None) -> list[Decision]:
        """The newest decisions first (undone decisions are no longer in the log)."""
        if before:
            # Exclusive upper bound ("(" ranges need Redis 6.2).
            rows = self.connection.xrevrange(keys.DECISIONS, f"({before}", "-", count=count)
        else:
            rows = self.connection.xrevrange(keys.DECISIONS, "+", "-", count=count)
        return [Decision.from_entry(entry_id, data) for entry_id, data in rows]

    # -- writing ------------------------------------------------------------

    def claim(self, moderator: str, comment_ids: list[str]) -> list[str]:
        """Claim these items (renewing claims already held); all or nothing."""
        ids = _unique(comment_ids)
        if not ids:
            raise InvalidRequest("Name at least one comment to claim.", "ids")
        script_keys = [keys.REVIEW_QUEUE]
        for comment_id in ids:
            script_keys += [
                keys.comment(comment_id),
                keys.claim(comment_id),
                keys.history(comment_id),
            ]
        ok, raw = self._claim(keys=script_keys, args=[moderator, self.lease_ms, self.clock(), *ids])
        if not ok:
            raise Refused(_refusals(raw))
        return ids

    def claim_next(self, moderator: str, count: int = 1) -> list[str]:
        """Claim up to ``count`` of the riskiest free items; returns their ids."""
        if count < 1:
            raise InvalidRequest("Claim at least one item.", "count")
        return list(
            self._claim_next(
                keys=[keys.REVIEW_QUEUE],
                args=[
                    moderator,
                    self.lease_ms,
                    self.clock(),
                    count,
                    keys.claim(""),
                    keys.history(""),
                ],
            )
        )

    def release(self, moderator: str, comment_ids: list[str]) -> list[str]:
        """Give back claims this moderator holds; all or nothing."""
        ids = _unique(comment_ids)
        if not ids:
            raise InvalidRequest("Name at least one comment to release.", "ids")
        script_keys = []
        for comment_id in ids:
            script_keys += [keys.claim(comment_id), keys.history(comment_id)]
        ok, raw = self._release(keys=script_keys, args=[moderator, self.clock(), *ids])
        if not ok:
            raise Refused(_refusals(raw))
        return ids

    def decide(
        self, moderator: str, comment_ids: list[str], action: str, reason: str = ""
    ) -> list[str]:
        """Decide items (free or claimed by this moderator); all or nothing.

        Returns the decision-log entry ids, one per comment.
        """
        if action not in ACTIONS:
            raise InvalidRequest(
                f"Unknown action '{action[:20]}': use approve, reject, spam or ham.", "action",
                "unknown_action",
            )
        reason = (reason or "").strip()
        if action == REJECT and not reason:
            raise InvalidRequest("Rejecting needs a reason code.", "reason", "missing_field")
        if reason and reason not in REJECT_REASONS:
            raise InvalidRequest(
                f"Unknown reason '{reason[:30]}': use one of {', '.join(REJECT_REASONS)}.",
                "reason", "unknown_reason",
            )
        if reason and ACTIONS[action][1] == "ham":
            # A reason says why a comment was kept out; logged beside a ham label it
            # would read as a policy rejection and drop the decision from training.
            raise InvalidRequest(
                f"A reason code goes with reject or spam, not with {action}.", "reason",
                "unexpected_reason",
            )
        ids = _unique(comment_ids)
        if not ids:
            raise InvalidRequest("Name at least one comment to decide.", "ids")
        status, label = ACTIONS[action]
        articles = self._articles(ids)
        script_keys = [keys.REVIEW_QUEUE, keys.DECISIONS]
        for comment_id in ids:
            article = articles.get(comment_id)
            if status == PUBLISHED and article is not None:
                target = keys.article_published(article)
            else:
                # Unknown ids are refused by the script; the target is never written then.
                target = keys.REJECTED
            script_keys += [
                keys.comment(comment_id),
                keys.claim(comment_id),
                keys.history(comment_id),
                target,
            ]
        ok, raw = self._decide(
            keys=script_keys,
            args=[moderator, action, label, status, reason or action, self.clock(), *ids],
        )
        if not ok:
            raise Refused(_refusals(raw))
        return json.loads(raw)

    def undo(self, operator: str, comment_id: str) -> None:
        """Put a decided comment back in the queue and drop its decision from the log."""
        article = self._articles([comment_id]).get(comment_id) or ""
        ok, raw = self._undo(
            keys=[
                keys.REVIEW_QUEUE,
                keys.DECISIONS,
                keys.comment(comment_id),
                keys.history(comment_id),
                keys.article_published(article),
                keys.REJECTED,
            ],
            args=[operator, self.clock(), comment_id],
        )
        if not ok:
            raise Refused(_refusals(raw))

    def _articles(self, comment_ids: list[str]) -> dict[str, str]:
        with self.connection.pipeline(transaction=False) as pipe:
            for comment_id in comment_ids:
                pipe.hget(keys.comment(comment_id), "article")
            found = pipe.execute()
        return {cid: art for cid, art in zip(comment_ids, found, strict=True) if art is not None}


__all__ = [
    "ACTIONS",
    "HELD",
    "REJECT_REASONS",
    "SORTS",
    "Decision",
    "Group",
    "GroupClaim",
    "InvalidRequest",
    "QueueError",
    "QueueItem",
    "QueuePage",
    "Refusal",
    "Refused",
    "ReviewQueue",
    "group_key",
]
