"""The path of one submitted comment: CAPTCHA, scoring, storage.

Views (HTML form and JSON API) parse the request and call :func:`submit`; this
module decides and stores. Validation happens before the CAPTCHA is consumed so a
typo in the form does not cost the reader their image.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis

from . import comments
from .captcha import ChallengeStore
from .comments import Comment
from .errors import ApiError
from .schemas import CommentSubmission
from .scoring import Scorer

log = logging.getLogger(__name__)

CAPTCHA_FAILED = ApiError(
    400,
    "captcha_failed",
    "The characters did not match the image, or the image had expired. "
    "Please enter the characters shown in the new image.",
    "captcha_answer",
)


@dataclass(frozen=True)
class Client:
    """Who sent the request, as far as we keep it."""

    ip_hash: str
    user_agent: str


def submit(
    connection: redis.Redis,
    challenges: ChallengeStore,
    scorer: Scorer,
    *,
    article: str,
    submission: CommentSubmission,
    client: Client,
) -> Comment:
    """Check the CAPTCHA, score, store; return the stored comment.

    Raises ApiError(400) when the CAPTCHA is wrong, unknown or expired; in that
    case nothing is stored and the challenge is gone.
    """
    if not challenges.verify(submission.challenge_id, submission.captcha_answer):
        raise CAPTCHA_FAILED
    result = scorer.score(submission.body)
    comment = comments.make_comment(
        article=article,
        author=submission.author,
        body=submission.body,
        user_agent=client.user_agent,
        ip_hash=client.ip_hash,
        score=result.spam_probability,
        model_version=result.model_version,
        verdict=result.verdict,
        reason=result.reason,
        explanation=result.explanation,
    )
    comments.save(connection, comment)
    log.info(
        "comment %s on %s: %s (score %.3f, model %s)",
        comment.id, article, comment.status, comment.score, comment.model_version,
    )
    return comment
