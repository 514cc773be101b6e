"""Retention limits for comments that were never published (``flask --app moderation purge``).

Rejected comments older than ``RETENTION_REJECTED_DAYS`` and held comments older than
``RETENTION_HELD_DAYS`` (0 = keep forever, the default for held ones: a comment we
accepted for review is not dropped unless the operator says so) are deleted from every
index: the comment hash, ``mod:comments:all``, ``mod:rejected``, the review queue, and
the comment's claim and history. Each comment goes in one Lua script that first checks
its status is still the one we meant to purge, so a moderator publishing it at the same
moment wins.

The decision log ``mod:decisions`` holds each decided comment's text too (it is the
training data the operator exports, and the moderators' history): its entries older
than ``RETENTION_DECISIONS_DAYS`` go as well, when that is set (0, the default, keeps
them, since retraining learns from them). Published comments are never touched.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import redis

from . import keys
from .comments import HELD, REJECTED
from .redis_store import cli_redis_errors

log = logging.getLogger(__name__)

DAY = 86400

# KEYS: comment hash, claim, history, all-comments, rejected, review queue
# ARGV: comment id, expected status
_PURGE_ONE = """
if redis.call('HGET', KEYS[1], 'status') ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
redis.call('ZREM', KEYS[6], ARGV[1])
return 1
"""


@dataclass(frozen=True)
class PurgeReport:
    rejected: int
    held: int
    decisions: int = 0


def purge(
    connection: redis.Redis,
    *,
    rejected_days: int,
    held_days: int,
    decisions_days: int = 0,
    now: float | None = None,
    batch: int = 500,
) -> PurgeReport:
    """Delete never-published comments (and, if asked, decision log entries) older than
    their retention; return the counts."""
    now = time.time() if now is None else now
    decisions = _purge_decisions(connection, now - decisions_days * DAY, batch) \
        if decisions_days > 0 else 0
    comments_purged = _purge_comments(connection, rejected_days, held_days, now, batch)
    report = PurgeReport(rejected=comments_purged[REJECTED], held=comments_purged[HELD],
                         decisions=decisions)
    log.info("purge: %d rejected, %d held comments and %d decision log entries deleted",
             report.rejected, report.held, report.decisions)
    return report


def _purge_decisions(connection: redis.Redis, cutoff: float, batch: int) -> int:
    """Delete decision log entries logged before ``cutoff`` (stream ids are times in ms).

    XRANGE + XDEL rather than XTRIM MINID, which needs Redis 6.2.
    """
    deleted = 0
    end = f"({int(cutoff * 1000)}-0"
    while True:
        entries = connection.xrange(keys.DECISIONS, "-", end, count=batch)
        if not entries:
            return deleted
        deleted += connection.xdel(keys.DECISIONS, *(entry_id for entry_id, _ in entries))


def _purge_comments(connection: redis.Redis, rejected_days: int, held_days: int,
                    now: float, batch: int) -> dict[str, int]:
    limits = {status: days for status, days in ((REJECTED, rejected_days), (HELD, held_days))
              if days > 0}
    counts = {REJECTED: 0, HELD: 0}
    if not limits:
        return counts
    script = connection.register_script(_PURGE_ONE)
    oldest_cutoff = now - min(limits.values()) * DAY
    start = 0
    while True:
        ids = connection.zrangebyscore(keys.ALL_COMMENTS, "-inf", oldest_cutoff,
                                       start=start, num=batch, withscores=True)
        if not ids:
            break
        start += len(ids)
        with connection.pipeline(transaction=False) as pipe:
            for comment_id, _ in ids:
                pipe.hget(keys.comment(comment_id), "status")
            statuses = pipe.execute()
        for (comment_id, created), status in zip(ids, statuses, strict=True):
            days = limits.get(status)
            if days is None or created >= now - days * DAY:
                continue
            done = script(
                keys=[keys.comment(comment_id), keys.claim(comment_id), keys.history(comment_id),
                      keys.ALL_COMMENTS, keys.REJECTED, keys.REVIEW_QUEUE],
                args=[comment_id, status],
            )
            if done:
                counts[status] += 1
                start -= 1  # the index shrank under our cursor
    return counts


def init_app(app) -> None:  # noqa: ANN001 - a Flask app
    import click

    @app.cli.command("purge")
    @click.option("--rejected-days", type=int, default=None,
                  help="Override RETENTION_REJECTED_DAYS (0 = keep).")
    @click.option("--held-days", type=int, default=None,
                  help="Override RETENTION_HELD_DAYS (0 = keep).")
    @click.option("--decisions-days", type=int, default=None,
                  help="Override RETENTION_DECISIONS_DAYS (0 = keep).")
    @cli_redis_errors
    def purge_command(rejected_days: int | None, held_days: int | None,
                      decisions_days: int | None) -> None:
        """Delete rejected and held comments (and old decision log entries, if set)
        older than the retention limits."""

        def days(given: int | None, setting: str) -> int:
            return app.config[setting] if given is None else given

        decisions = days(decisions_days, "RETENTION_DECISIONS_DAYS")
        report = purge(
            app.extensions["redis"],
            rejected_days=days(rejected_days, "RETENTION_REJECTED_DAYS"),
            held_days=days(held_days, "RETENTION_HELD_DAYS"),
            decisions_days=decisions,
        )
        click.echo(f"purged {report.rejected} rejected and {report.held} held comments"
                   + (f", {report.decisions} decision log entries" if decisions > 0 else ""))
