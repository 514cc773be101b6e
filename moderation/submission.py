"""The path of one submitted comment: CAPTCHA (per policy), guards, scoring, storage.

Views (HTML form and JSON API) parse the request and call :func:`submit`; this
module decides and stores. Validation happens before the CAPTCHA is consumed so a
typo in the form does not cost the reader their image; rate limits are checked
before that (``ratelimit.py``).

Order, always the same:

1. the CAPTCHA, as ``CHALLENGE_POLICY`` says (``policies.py``): ``always`` checks it,
   ``remember`` lets a valid pass stand in for it, ``adaptive`` checks it only if the
   reader answered one (step 4 decides whether one is needed);
2. the guards (``guards.py``): honeypot, fill time, repeat post, word lists, links;
   the first reject wins, holds add up;
3. the model's score;
4. the stronger of the guards' outcome and the model's verdict decides the status.
   Under ``adaptive`` a comment that would be held without a solved CAPTCHA is
   refused with ``captcha_required`` (nothing stored) and the reader is asked for one;
5. store the comment, remember its text for the repeat-post guard and give a
   remember pass it earned, all in one MULTI/EXEC (see ``_store``).

A refusal (ApiError) stores nothing; a held or rejected comment is stored with its
reason, so moderators see why.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import redis

from . import comments, metrics
from .captcha import ChallengeStore
from .comments import Comment
from .errors import ApiError
from .guards import HOLD, PASS, REJECT, Draft, GuardResult, Guards, more_severe
from .policies import ADAPTIVE, ALWAYS, REMEMBER, PassStore
from .schemas import CommentSubmission
from .scoring import Scorer

log = logging.getLogger(__name__)


def captcha_failed(attempts_left: int) -> ApiError:
    """A wrong, unknown or expired answer; ``details`` tells a program whether the same
    challenge may be answered again or a new one is needed."""
    if attempts_left > 0:
        message = (
            "The characters did not match the image. Please try again: the same "
            f"characters may be tried {attempts_left} more time"
            f"{'s' if attempts_left > 1 else ''} (their image is drawn anew each time)."
        )
    else:
        message = (
            "The characters did not match the image, or the image had expired, and it "
            "can no longer be answered. Please enter the characters shown in a new image."
        )
    return ApiError(400, "captcha_failed", message, "captcha_answer",
                    details={"attempts_left": attempts_left})


CAPTCHA_REQUIRED = ApiError(
    400,
    "captcha_required",
    "One more step: please enter the characters shown in the image, then send the "
    "comment again.",
    "captcha_answer",
)

#: What a reader is told of a stored comment (the form's page, the API's ``message``).
OUTCOME_MESSAGES = {
    comments.PUBLISHED: "Thank you! Your comment has been published.",
    comments.HELD: (
        "Thank you! Your comment has been received and is awaiting moderation. "
        "It will appear once a moderator approves it."
    ),
    comments.REJECTED: "Your comment was not published: it looks like spam to our filter.",
}

#: What a reader is told when a guard (not the model) rejected the comment.
GUARD_REJECT_MESSAGES = {
    "honeypot_filled": (
        "Your comment was not published: the field that people should leave empty was filled in."
    ),
    "too_fast": "Your comment was not published: the form was sent too soon after it was shown.",
    "form_stamp_invalid": "Your comment was not published: the form had expired or was altered.",
    "repeat_same_client": "Your comment was not published: you already posted the same text.",
    "banned_word": "Your comment was not published: it contains a word that is not allowed here.",
}

#: The field of a guard's rejection, where it is not the comment itself.
_REJECTED_FIELD = {
    "honeypot_filled": "website",
    "too_fast": "form_token",
    "form_stamp_invalid": "form_token",
}

_VERDICT_OF_OUTCOME = {PASS: "publish", HOLD: "hold", REJECT: "reject"}
_OUTCOME_OF_VERDICT = {value: key for key, value in _VERDICT_OF_OUTCOME.items()}


@dataclass(frozen=True)
class Client:
    """Who sent the request, as far as we keep it."""

    ip_hash: str
    user_agent: str
    #: the signed remember-pass cookie, if the browser sent one
    captcha_pass: str | None = None


@dataclass(frozen=True)
class Protections:
    """The abuse defenses configured for an app (``app.extensions["protections"]``)."""

    guards: Guards
    policy: str = ALWAYS
    passes: PassStore | None = None


@dataclass(frozen=True)
class Outcome:
    """A stored comment, what decided it, and a new remember pass if one was earned."""

    comment: Comment
    guard: GuardResult
    new_pass: str | None = None

    @property
    def reader_message(self) -> str:
        """What the sender is told: never the score, the threshold or the word matched,
        which would tell a spammer how to reword until it passes."""
        if self.comment.status == comments.REJECTED:
            return GUARD_REJECT_MESSAGES.get(self.code, OUTCOME_MESSAGES[comments.REJECTED])
        return OUTCOME_MESSAGES[self.comment.status]

    @property
    def field(self) -> str:
        """The form field a rejection points at: the honeypot or the form's stamp for
        those guards, the comment otherwise."""
        return _REJECTED_FIELD.get(self.code, "body")

    @property
    def code(self) -> str:
        """Stable code for a rejection: the guard's, or ``rejected_as_spam`` (the model)."""
        if self.guard.outcome == REJECT:
            return self.guard.code
        return "rejected_as_spam"


@dataclass(frozen=True)
class Preflight:
    """What the write path reads from Redis before scoring, in one round trip."""

    captcha_ok: bool | None  # None: no CAPTCHA was checked
    repeat_seen: tuple[bool, bool] | None
    attempts_left: int = 0  # of the challenge, after a wrong answer


def _preflight(
    connection: redis.Redis,
    challenges: ChallengeStore,
    guards: Guards,
    submission: CommentSubmission,
    draft: Draft,
    *,
    check_captcha: bool,
) -> Preflight:
    """Check the CAPTCHA (spending an attempt) and look up repeat posts together.

    Round trips, not arithmetic, are what a POST costs most (see bench/results): the
    lookups are read-only, so doing them even when the CAPTCHA turns out wrong costs
    nothing but the reply.
    """
    with connection.pipeline(transaction=False) as pipe:
        read_check = None
        if check_captcha:
            read_check = challenges.queue_check(
                pipe, submission.challenge_id, submission.captcha_answer
            )
        captcha_replies = len(pipe)
        read_seen = guards.queue_repeat_lookup(pipe, draft)
        replies = pipe.execute(raise_on_error=False)
    seen = read_seen(replies[captcha_replies:])
    if read_check is None:
        return Preflight(None, seen)
    check = read_check(replies[0] if captcha_replies else None)
    return Preflight(check.ok, seen, check.attempts_left)


def submit(
    connection: redis.Redis,
    challenges: ChallengeStore,
    scorer: Scorer,
    *,
    article: str,
    submission: CommentSubmission,
    client: Client,
    protections: Protections,
) -> Outcome:
    """Check the CAPTCHA (per policy), run the guards, score, store.

    Raises ApiError(400) when the CAPTCHA is wrong, unknown, expired or (adaptive
    policy) required; in that case nothing is stored.
    """
    check_captcha, used_pass = _captcha_duty(protections, submission, client)
    if check_captcha:
        _require_an_answer(submission)
    draft = Draft(
        article=article,
        author=submission.author,
        body=submission.body,
        ip_hash=client.ip_hash,
        honeypot=submission.website,
        form_token=submission.form_token,
    )
    facts = _preflight(
        connection, challenges, protections.guards, submission, draft,
        check_captcha=check_captcha,
    )
    solved = _captcha_verdict(facts)
    draft = replace(draft, repeat_seen=facts.repeat_seen)
    guard = protections.guards.run(draft)
    with metrics.SCORING_SECONDS.time():
        result = scorer.score(submission.body)
    model_outcome = _OUTCOME_OF_VERDICT[result.verdict]
    outcome = more_severe(guard.outcome, model_outcome)
    if protections.policy == ADAPTIVE and outcome == HOLD and not solved:
        log.info("comment on %s: CAPTCHA required (unsure)", article)
        metrics.CAPTCHA_CHECKS.labels(result="required").inc()
        raise CAPTCHA_REQUIRED

    comment = comments.make_comment(
        article=article,
        author=submission.author,
        body=submission.body,
        user_agent=client.user_agent,
        ip_hash=client.ip_hash,
        score=result.spam_probability,
        model_version=result.model_version,
        verdict=result.verdict,
        reason=_reason(guard, model_outcome, outcome, result.reason),
        explanation=result.explanation,
    )
    comment.status = comments.VERDICT_TO_STATUS[_VERDICT_OF_OUTCOME[outcome]]
    earned = solved and not used_pass and comment.status != comments.REJECTED
    new_pass = _store(connection, comment, protections, draft, give_pass=earned)

    decided_by = guard.guard if guard.guard and guard.outcome == outcome != PASS else "model"
    metrics.COMMENTS.labels(status=comment.status, decided_by=decided_by).inc()
    log.info(
        "comment %s on %s: %s (score %.3f, model %s, guards %s)",
        comment.id, article, comment.status, comment.score, comment.model_version,
        guard.guard or "pass",
    )
    return Outcome(comment=comment, guard=guard, new_pass=new_pass)


def _captcha_duty(
    protections: Protections, submission: CommentSubmission, client: Client
) -> tuple[bool, bool]:
    """Whether this submission's CAPTCHA must be checked, and whether a remember pass
    was spent instead (spending it is the check, so it happens here)."""
    policy = protections.policy
    used_pass = False
    if policy == REMEMBER and protections.passes is not None:
        used_pass = protections.passes.spend(client.captcha_pass)
    check = (
        policy == ALWAYS
        or (policy == REMEMBER and not used_pass)
        or (policy == ADAPTIVE and bool(submission.challenge_id))
    )
    return check, used_pass


def _require_an_answer(submission: CommentSubmission) -> None:
    """A missing challenge id or an empty answer is a 400 saying so, and costs no
    attempt: "did not match the image" would send a reader or a program looking for
    a typo that is not there."""
    if not submission.challenge_id.strip():
        raise ApiError(400, "missing_field",
                       "challenge_id is required: get a challenge (POST /api/v1/challenges) "
                       "and send its id with the characters shown in its image.",
                       "challenge_id")
    if not submission.captcha_answer.strip():
        raise ApiError(400, "missing_field",
                       "Please enter the characters shown in the image.", "captcha_answer")


def _captcha_verdict(facts: Preflight) -> bool:
    """True when a CAPTCHA was checked and solved, False when none was checked;
    a wrong answer raises (nothing is stored)."""
    if facts.captcha_ok is False:
        metrics.CAPTCHA_CHECKS.labels(result="failed").inc()
        raise captcha_failed(facts.attempts_left)
    if facts.captcha_ok:
        metrics.CAPTCHA_CHECKS.labels(result="passed").inc()
    return bool(facts.captcha_ok)


def _reason(guard: GuardResult, model_outcome: str, outcome: str, model_reason: str) -> str:
    """The stored reason: the stronger voice's, or both when guard and model agree."""
    if guard.outcome == model_outcome != PASS:
        return f"{guard.reason} Model: {model_reason}".strip()
    if outcome == guard.outcome != PASS:
        return guard.reason
    return model_reason


def _store(connection: redis.Redis, comment: Comment, protections: Protections, draft: Draft,
           *, give_pass: bool) -> str | None:
    """The comment, its indexes, the repeat-post memory and the remember pass it earned
    (returned, if any): one MULTI/EXEC round trip, so Redis failing leaves none of them
    and the 503 that follows ("nothing was saved") is true. Nothing after this writes."""
    with connection.pipeline(transaction=True) as pipe:
        comments.save(connection, comment, pipe=pipe)
        protections.guards.remember(draft, pipe=pipe)
        new_pass = _new_pass(protections, pipe) if give_pass else None
        pipe.execute()
    return new_pass


def _new_pass(protections: Protections, pipe: redis.client.Pipeline) -> str | None:
    """A remember pass for a browser that just solved a CAPTCHA, if the policy gives one."""
    passes = protections.passes
    if protections.policy != REMEMBER or passes is None or passes.uses <= 0:
        return None
    return passes.issue(pipe=pipe)
