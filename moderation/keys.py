"""The Redis key layout: every key the service writes, its type, content and lifetime.

All keys start with ``PREFIX`` so the service can share a Redis with others.
Functions here only build names; no module spells a key by hand.

======================================  ======  ==========================================  ================
key                                     type    content                                     lifetime
======================================  ======  ==========================================  ================
mod:captcha:{challenge_id}              hash    answer: the CAPTCHA text (upper case);      CAPTCHA_TTL_SECONDS; deleted when
                                                attempts: checks spent so far               answered right or out of attempts
mod:comment:{comment_id}                hash    one comment, see ``COMMENT_FIELDS``          permanent
mod:article:{slug}:published            zset    comment ids published under an article,     permanent
                                                score = creation time (epoch seconds)
mod:queue:review                        zset    comment ids held for review,                until decided
                                                score = spam probability
mod:rejected                            zset    comment ids rejected at submission,         permanent
                                                score = creation time
mod:comments:all                        zset    every comment id, score = creation time     permanent
mod:claim:{comment_id}                  string  name of the moderator holding the claim     the lease (PX,
                                                on a queued comment                         LEASE_SECONDS);
                                                                                            deleted on decide
                                                                                            or release
mod:history:{comment_id}                list    JSON entries, oldest first: {time, actor,   permanent
                                                action, from, to, reason?, undone?}; one
                                                per claim, release, decision and undo
mod:decisions                           stream  the decision log, one entry per decision,   permanent; an
                                                fields ``DECISION_FIELDS``; read by the     undone decision's
                                                trainer's ``export-decisions``              entry is XDELed
mod:user:{name}                         hash    a moderator account: name, role,            permanent
                                                password_hash (werkzeug scrypt), created
mod:users                               set     every account name                          permanent
mod:token:{sha256 of token}             hash    a bearer API token (only its hash is in     permanent; with an
                                                the key): name (the owner), label ("" =     expiry, EX until
                                                none), created, expires ("0" = never),      30 days after it
                                                last_used (written at most once a minute);  (so its use says
                                                times are epoch seconds. Written as a       "expired"); deleted
                                                string (the name alone) before labels:      by revoke-token(s)
                                                turned into a hash on first use
mod:user:{name}:tokens                  set     sha256 hashes of the account's tokens;      permanent
                                                hashes of expired records Redis dropped
                                                go at the next mint or listing
mod:session:{sha256 of session id}      hash    a logged-in browser: name, created, seen    the absolute
                                                (last activity, written at most once a      session lifetime
                                                minute); the signed session cookie holds    (EX); deleted on
                                                the id; gone on logout, so a copied cookie  logout or when
                                                is dead too. Unused for longer than         found idle
                                                SESSION_IDLE_MINUTES it ends. A string
                                                (the name) before idle limits: turned into
                                                a hash on first use, same EX
mod:user:{name}:sessions                set     sha256 hashes of the account's live         EX renewed to the
                                                sessions (``users end-sessions`` ends them  session lifetime
                                                all); logout takes its hash off, each       at each login
                                                login those of sessions that ran out
======================================  ======  ==========================================  ================

A decided comment's hash also gets ``decision`` (approve|reject|spam|ham),
``decision_reason``, ``decided_by``, ``decided_at`` and ``decision_entry`` (its
``mod:decisions`` entry id); undo removes them and puts it back in the queue.

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
    # JSON list of the terms/signals that pushed the score most, largest first:
    # {"feature", "kind": "term" | "chars" | "signal", "weight"}; a signal entry also has
    # "compared": "above average" | "below average" (its value against the average
    # training text, which is what its weight is relative to).
    "explanation",
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

#: Fields of a ``mod:decisions`` entry (the trainer's ``export-decisions`` reads these).
DECISION_FIELDS = (
    "text",  # the comment body as typed
    "label",  # "spam" (reject, spam) or "ham" (approve, ham)
    "moderator",  # account name of the moderator
    "time",  # epoch seconds of the decision
    "score",  # the model's spam probability at submission
    "model_version",  # the model that scored it
    "reason",  # the reject reason code (e.g. off_topic), else the action name
    "comment_id",
    "action",  # approve | reject | spam | ham
)

DECISIONS = f"{PREFIX}decisions"
USERS = f"{PREFIX}users"


def claim(comment_id: str) -> str:
    return f"{PREFIX}claim:{comment_id}"


def history(comment_id: str) -> str:
    return f"{PREFIX}history:{comment_id}"


def user(name: str) -> str:
    return f"{PREFIX}user:{name}"


def user_tokens(name: str) -> str:
    return f"{PREFIX}user:{name}:tokens"


def token(token_hash: str) -> str:
    return f"{PREFIX}token:{token_hash}"


def session(session_hash: str) -> str:
    return f"{PREFIX}session:{session_hash}"


def user_sessions(name: str) -> str:
    return f"{PREFIX}user:{name}:sessions"


# ---------------------------------------------------------------------------
# Model versions (owned by scoring / training registry)
#
# mod:model:current   string  the version id every worker should serve; read by each
#                             worker at most every MODEL_RELOAD_SECONDS (hot reload);
#                             set by `python -m training promote|rollback`; permanent
# mod:model:history   list    versions that were current before, newest first (LPUSH on
#                             promote, LPOP on rollback); capped at 50; permanent; the
#                             operators' models page reads both to show current and
#                             rollback target (model_catalog.py)
# ---------------------------------------------------------------------------
MODEL_CURRENT = f"{PREFIX}model:current"
MODEL_HISTORY = f"{PREFIX}model:history"


# ---------------------------------------------------------------------------
# Abuse defenses (owned by guards / ratelimit / policies)
#
# mod:limits:LIMITER/...              Flask-Limiter's counters (its own layout under this
#                                      prefix: ".../<scope>/<key>/<limit>"); keys are
#                                      the keyed IP hash or the article slug, never a raw IP;
#                                      lifetime = the limit's window
# mod:repeat:ip:{ip_hash}:{digest}     string "1": this client posted this normalized text
#                                      (digest = sha256 of text.normalize(body)); EX
#                                      REPEAT_WINDOW_SECONDS
# mod:repeat:article:{slug}:{digest}   string "1": this article got this normalized text;
#                                      EX REPEAT_WINDOW_SECONDS
# mod:pass:{token}                     string  comments left on a "remember" CAPTCHA pass
#                                      (CHALLENGE_POLICY=remember); the signed HttpOnly
#                                      cookie holds the token; EX REMEMBER_SECONDS, deleted
#                                      when the count reaches 0
# ---------------------------------------------------------------------------
LIMITS_PREFIX = f"{PREFIX}limits"


def repeat_by_ip(ip_hash: str, digest: str) -> str:
    return f"{PREFIX}repeat:ip:{ip_hash}:{digest}"


def repeat_by_article(slug: str, digest: str) -> str:
    return f"{PREFIX}repeat:article:{slug}:{digest}"


def captcha_pass(token: str) -> str:
    return f"{PREFIX}pass:{token}"
