"""Whether the Redis server may evict (silently delete) our keys to free memory.

Comments, the review queue and the decision log are kept only in Redis, without an
expiry. Under any ``maxmemory-policy`` but ``noeviction``, a server that reaches its
``maxmemory`` deletes keys to make room: an ``allkeys-*`` policy drops comments and
whole indexes (measured on redis 6.2 with a 2 MB limit: 17,597 of 20,000 comment
hashes gone, no error to anyone); a ``volatile-*`` one drops the keys that have an
expiry (CAPTCHA challenges, claims, sessions, expiring API tokens, rate-limit
counters). Under ``noeviction`` a full server refuses writes instead, which the
service answers with a 503 saying nothing was saved.

The policy is read from ``INFO`` (managed services that disable or rename ``CONFIG``
usually still answer it), else from ``CONFIG GET``; when neither answers, it is
unknown and said so, never guessed. Checked by gunicorn's master at start-up
(``gunicorn.conf.py``), by ``/readyz`` and at each ``/metrics`` scrape.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

SAFE_POLICY = "noeviction"

#: What the operator is told to do about an evicting policy.
REMEDY = (
    "set maxmemory-policy noeviction on that server (a full server then refuses "
    "writes, answered 503, instead of deleting data), or set REDIS_ALLOW_EVICTION=1 "
    "to run anyway"
)


@dataclass(frozen=True)
class EvictionPolicy:
    """The server's eviction settings as far as it tells them (None: would not say)."""

    policy: str | None
    maxmemory: int | None = None
    evicted_keys: int | None = None  # keys evicted since the server started (INFO only)

    @property
    def known(self) -> bool:
        return self.policy is not None

    @property
    def may_evict(self) -> bool:
        """True when the server may delete keys to free memory (False when unknown)."""
        return self.known and self.policy != SAFE_POLICY

    def describe(self) -> str:
        """The policy in the words of a log line or a readiness answer."""
        if not self.known:
            return ("Redis would not tell its maxmemory-policy (INFO and CONFIG refused): "
                    f"make sure it is {SAFE_POLICY}, or comments may be deleted when it is full")
        limit = "no maxmemory yet" if not self.maxmemory else f"maxmemory {self.maxmemory} bytes"
        if not self.may_evict:
            return f"Redis maxmemory-policy is {self.policy} ({limit})"
        return (f"Redis may evict keys to free memory (maxmemory-policy {self.policy}, "
                f"{limit}): stored comments and queue entries could be deleted silently")


def read_policy(connection: redis.Redis) -> EvictionPolicy:
    """Ask the server; raises ``redis.ConnectionError`` and the like when it does not answer.

    A refused command (``ResponseError``: renamed, disabled or not allowed to this
    user) is not an outage: the next source is tried, and the policy is unknown when
    none answers.
    """
    try:
        info = connection.info()
    except redis.ResponseError:
        info = {}
    if "maxmemory_policy" in info:
        return EvictionPolicy(
            policy=str(info["maxmemory_policy"]),
            maxmemory=_int(info.get("maxmemory")),
            evicted_keys=_int(info.get("evicted_keys")),
        )
    try:
        found = connection.config_get("maxmemory*")
    except redis.ResponseError:
        return EvictionPolicy(policy=None)
    policy = found.get("maxmemory-policy")
    return EvictionPolicy(policy=None if policy is None else str(policy),
                          maxmemory=_int(found.get("maxmemory")))


def problem(found: EvictionPolicy, *, allowed: bool) -> str | None:
    """Why the service should not serve on this server, or None when it may."""
    if found.may_evict and not allowed:
        return f"{found.describe()}; {REMEDY}"
    return None


def warning(found: EvictionPolicy) -> str | None:
    """What to tell the operator when the service serves anyway (or None: all is well)."""
    if found.may_evict:
        return f"{found.describe()} (REDIS_ALLOW_EVICTION=1)"
    if not found.known:
        return found.describe()
    return None


def _int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
