"""The moderator UI at /moderate: the queue, bulk and per-item decisions, history, undo.

Server-rendered and usable without JavaScript; ``static/moderate.js`` adds the
hotkeys. Every form posts a CSRF token. Nothing is written when a request is refused.
A refusal the page itself can lead to (nothing selected, Reject without a reason, a
comment another moderator claimed or decided first) goes back to the queue by a 303
(POST/redirect/GET), which shows the message once with the selection kept: reloading
that page sends nothing again. A form the page never sends (an unknown action or
reason code, an id that is nowhere) re-renders the queue with its 4xx status.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf.csrf import CSRFError
from werkzeug.datastructures import MultiDict

from .. import queue as review
from ..articles import all_articles, get_article
from ..auth import current_user, login_required, safe_next
from ..schemas import MAX_PAGE, MAX_QUEUE_PER_PAGE
from ..serving_model import DENSE
from ..templating import clocktime
from ..text import normalize
from ..users import OPERATOR
from .common import no_store, page_number

#: Explanation entries that name a dense feature, not words of the comment.
DENSE_NAMES = frozenset(name for dense in DENSE.values() for name in dense.names)

bp = Blueprint("moderate", __name__, url_prefix="/moderate")

ACTION_LABELS = {"approve": "Approve", "reject": "Reject", "spam": "Spam", "ham": "Ham"}
DONE_LABELS = {
    "approve": "Approved",
    "reject": "Rejected",
    "spam": "Marked as spam",
    "ham": "Marked as ham (published)",
}
UI_ONLY = {"claim": "Claim", "release": "Release"}
#: The queue form's default button (what Enter in a checkbox presses): changes nothing.
KEEP = "keep"
KEEP_MESSAGE = (
    "Nothing was changed: Enter does not decide. Choose a button for the selected comments."
)
#: The session cookie's key for a refusal carried over the redirect back to the queue.
REFUSAL_KEY = "queue_refusal"
#: The selected rows kept over that redirect, at most: one id (~20 bytes) each, in a
#: cookie browsers cap at 4 KB. The default page has 100 rows.
MAX_KEPT_SELECTION = 100
_SPACES_RE = re.compile(r"(\s+)")


def get_queue() -> review.ReviewQueue:
    return current_app.extensions["review_queue"]


# -- filters --------------------------------------------------------------


class BadFilter(ValueError):
    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


#: ASCII digits only, and few: str.isdigit() also takes "²" and int() takes "٣", "+3",
#: " 3" and "1_0" (and refuses more than 4,300 digits), none of which a form or a
#: client program means as a number.
_WHOLE_RE = re.compile(r"[0-9]{1,9}")
#: A plain decimal, optionally with an exponent (Python prints 0.00001 as "1e-05");
#: no sign, spaces, "_", "inf", "nan" or non-ASCII digits, which float() would take.
_DECIMAL_RE = re.compile(r"(?:[0-9]{1,20}(?:\.[0-9]{0,20})?|\.[0-9]{1,20})(?:[eE][+-]?[0-9]{1,3})?")
#: The spellings of a yes/no query parameter; anything else is refused, not read as "no".
FLAGS = {"1": True, "true": True, "0": False, "false": False}
SCORE_DEFAULTS = {"min_score": 0.0, "max_score": 1.0}


def whole_number(args, name: str, default: int, low: int, high: int, label: str = "") -> int:
    """``args[name]`` as a whole number from ``low`` to ``high``; ``default`` when absent
    or empty (HTML forms send empty fields); else BadFilter naming the field and range."""
    raw = args.get(name) or ""
    if not raw:
        return default
    value = int(raw) if _WHOLE_RE.fullmatch(raw) else None
    if value is None or not low <= value <= high:
        raise BadFilter(f"{label or name} must be a whole number from {low} to {high}.", name)
    return value


def flag(args, name: str, default: bool) -> bool:
    """``args[name]`` as 1/true or 0/false; ``default`` when absent or empty."""
    raw = args.get(name) or ""
    if not raw:
        return default
    if raw not in FLAGS:
        raise BadFilter(f"{name} must be 1, 0, true or false.", name)
    return FLAGS[raw]


def _score(args, name: str, default: float) -> float:
    """``args[name]`` as a score from 0 to 1; ``default`` when absent or empty."""
    label = name.replace("_", " ").capitalize()
    raw = args.get(name) or ""
    if not raw:
        return default
    value = float(raw) if _DECIMAL_RE.fullmatch(raw) else math.nan
    if not 0.0 <= value <= 1.0:  # also refuses nan
        raise BadFilter(f"{label} must be a number from 0 to 1.", name)
    return value


def parse_filters(args, *, grouped: bool = True, lenient_page: bool = False) -> dict:
    """Sort, article, score range, page and grouping from a query string; raises
    BadFilter naming the field.

    ``grouped`` is the default when the query does not say (the UI groups, the API
    does not). ``lenient_page`` reads a junk page number as page 1 (and clamps it to
    1..10000) instead of refusing it: a browser's old or edited link still gets a queue.
    """
    sort = args.get("sort", "risk") or "risk"
    if sort not in review.SORTS:
        raise BadFilter("Sort by risk or by age.", "sort")
    article = (args.get("article") or "").strip()
    if article and get_article(article) is None:
        raise BadFilter(f"There is no article '{article[:80]}'.", "article")
    bounds = {name: _score(args, name, default) for name, default in SCORE_DEFAULTS.items()}
    if bounds["min_score"] > bounds["max_score"]:
        raise BadFilter("The minimum score is above the maximum.", "min_score")
    per_page = whole_number(
        args, "per_page", current_app.config["MODERATE_PER_PAGE"], 1, MAX_QUEUE_PER_PAGE,
        "Items per page",
    )
    if lenient_page:
        page = page_number(args.get("page"))
    else:
        page = whole_number(args, "page", 1, 1, MAX_PAGE)
    return {
        "sort": sort,
        "article": article or None,
        "page": page,
        "per_page": per_page,
        "grouped": flag(args, "grouped", grouped),
        **bounds,
    }


# -- presentation helpers ---------------------------------------------------


def age(epoch: float | None, now: float | None = None) -> str:
    """A short age: 45 s, 12 min, 3 h, 2 d."""
    if epoch is None:
        return "-"
    seconds = max(0, (now or time.time()) - float(epoch))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return f"{int(seconds)} s"


def duration(seconds: float) -> str:
    """A lease as the key list says it: 10 min, 90 s."""
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)} min"
    return f"{seconds:g} s"


@dataclass(frozen=True)
class Flagged:
    """What to highlight: whole normalized words, and character n-grams inside words."""

    terms: frozenset[str] = frozenset()
    fragments: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.terms or self.fragments)

    def matches(self, chunk: str) -> bool:
        tokens = normalize(chunk).split()
        if not self.terms.isdisjoint(tokens):
            return True
        padded = f" {' '.join(tokens)} "
        return any(fragment in padded for fragment in self.fragments)


def flagged_terms(explanation: list[dict]) -> Flagged:
    """The features that pushed the score up, as something :func:`highlight` can match.

    ``term`` features are normalized words (or word n-grams); ``chars`` features
    are character n-grams, matched inside the normalized words when at least three
    letters long. Signal features (links, capitals...) are listed, not highlighted.
    """
    terms: set[str] = set()
    fragments: set[str] = set()
    for entry in explanation or []:
        if not isinstance(entry, dict):
            continue
        feature = str(entry.get("feature", ""))
        try:
            weight = float(entry.get("weight", 0))
        except (TypeError, ValueError):
            continue
        if weight <= 0 or entry.get("kind") == "signal" or feature in DENSE_NAMES:
            continue
        if entry.get("kind") == "chars":
            if len(feature.strip()) >= 3:
                fragments.add(feature)
        else:
            terms.update(feature.split())
    return Flagged(frozenset(terms), frozenset(fragments))


def highlight(text: str, flagged: Flagged) -> list[tuple[str, bool]]:
    """Split ``text`` into (segment, flagged) runs: a whitespace-separated chunk is
    flagged when its normalized words contain a flagged feature. The template
    escapes every segment and wraps flagged ones in <mark>."""
    if not flagged:
        return [(text, False)]
    runs: list[tuple[str, bool]] = []
    for part in _SPACES_RE.split(text):
        if not part:
            continue
        hit = not part.isspace() and flagged.matches(part)
        if runs and runs[-1][1] == hit:
            runs[-1] = (runs[-1][0] + part, hit)
        else:
            runs.append((part, hit))
    return runs


def reasons_list(explanation: list[dict]) -> list[dict]:
    """The explanation entries that pushed towards spam, strongest first."""
    entries = [e for e in explanation or [] if isinstance(e, dict)]

    def weight(entry: dict) -> float:
        try:
            return float(entry.get("weight", 0))
        except (TypeError, ValueError):
            return 0.0

    return sorted((e for e in entries if weight(e) > 0), key=weight, reverse=True)[:8]


# -- views ------------------------------------------------------------------

CSRF_MESSAGE = (
    "Nothing was changed: this form's security token is missing or wrong ({reason}). "
    "The page has been reloaded; please try again."
)


@bp.errorhandler(CSRFError)
def csrf_failed(error: CSRFError):
    """A form posted without a valid CSRF token: 400 and the page again, nothing written."""
    message = CSRF_MESSAGE.format(reason=error.description)
    if current_user() is None:
        return redirect(url_for("auth.login"))
    if request.endpoint == "moderate.undo":
        return render_history(error=message, status=400)
    return render_queue(error=message, error_field="csrf_token", status=400)


def render_queue(
    filters: dict | None = None,
    *,
    error: str = "",
    error_field: str = "",
    status: int = 200,
    selected: frozenset[str] = frozenset(),
):
    if filters is None:
        filters = {
            "sort": "risk",
            "article": None,
            "page": 1,
            "per_page": current_app.config["MODERATE_PER_PAGE"],
            "min_score": 0.0,
            "max_score": 1.0,
            "grouped": True,
        }
    listing = get_queue().list(**filters)
    query = request.query_string.decode("latin-1")
    if not listing.groups and filters["page"] > listing.pages:
        # Past the last page: its last rows were just decided (the queue comes back to
        # the page it was on) or a link is old. "Nothing to review" with comments
        # waiting on the pages before was wrong: show the last page.
        filters = {**filters, "page": listing.pages}
        listing = get_queue().list(**filters)
        query = urlencode({**{k: v for k, v in request.args.items() if k != "page"},
                           "page": listing.page})
    now = time.time()
    html = render_template(
        "moderate/queue.html",
        listing=listing,
        filters=filters,
        query=query,
        error=error,
        error_field=error_field,
        selected=selected,
        articles=all_articles(),
        reasons=review.REJECT_REASONS,
        actions=ACTION_LABELS,
        age=lambda epoch: age(epoch, now),
        now=now,
        lease=duration(current_app.config["LEASE_SECONDS"]),
        flagged_terms=flagged_terms,
        highlight=highlight,
        reasons_list=reasons_list,
        user=current_user(),
        page_url=lambda page: (
            url_for("moderate.queue")
            + "?"
            + urlencode({**{k: v for k, v in request.args.items() if k != "page"}, "page": page})
        ),
    )
    return no_store(current_app.make_response((html, status)))


@bp.get("/")
@login_required()
def queue():
    refusal = session.pop(REFUSAL_KEY, None)
    try:
        filters = parse_filters(request.args, lenient_page=True)
    except BadFilter as exc:
        return render_queue(error=exc.message, error_field=exc.field, status=400)
    if isinstance(refusal, dict):
        return render_queue(
            filters,
            error=str(refusal.get("message", "")),
            error_field=str(refusal.get("field", "")),
            selected=frozenset(str(cid) for cid in refusal.get("selected", [])),
        )
    return render_queue(filters)


def _back_to_queue():
    query = request.form.get("back", "")
    plain = url_for("moderate.queue")
    target = (safe_next(f"{plain}?{query}") if query else None) or plain
    # ASCII digits only, and few: str.isdigit() also takes "²", which int() refuses,
    # and int() refuses more than 4,300 digits.
    cursor = request.form.get("cursor", "")
    if re.fullmatch(r"[0-9]{1,9}", cursor):
        target += f"#pos-{int(cursor)}"
    return redirect(target, code=303)


def _refused(message: str, field: str):
    """Back to the queue with a refusal (POST/redirect/GET), so that reloading the page
    that says so sends nothing again: before, that page was the POST's answer at
    /moderate/act, and a reload offered to send the same form once more. The queue
    shows the message once, with the rows that were checked still checked."""
    selected = [
        value.split(",", 1)[0].strip()[:64] for value in request.form.getlist("ids")
        if value.strip()
    ]
    session[REFUSAL_KEY] = {
        "message": message[:1000],
        "field": field,
        "selected": selected[:MAX_KEPT_SELECTION],
    }
    return _back_to_queue()


@bp.post("/act")
@login_required()
def act():
    """Per-item (``do=action|id,id``) and bulk (``do=action`` with checked ``ids``) decisions."""
    user = current_user()
    do = request.form.get("do", "")
    action, _, inline = do.partition("|")
    ids = (
        inline.split(",")
        if inline
        else [cid for value in request.form.getlist("ids") for cid in value.split(",")]
    )
    ids = [cid.strip()[:64] for cid in ids if cid.strip()][:2000]
    query = request.form.get("back", "")
    try:
        filters = parse_filters(_args_from(query), lenient_page=True)
    except BadFilter:
        filters = None
    if action == KEEP:
        return _refused(KEEP_MESSAGE, "ids")
    if action not in ACTION_LABELS and action not in UI_ONLY:
        return render_queue(
            filters, error=f"Unknown action '{action[:20]}'.", error_field="do", status=400
        )
    if not ids:
        return _refused("Select at least one comment first.", "ids")
    queue_ = get_queue()
    try:
        if action == "claim":
            # Read before claiming: the lease runs from a moment after, so the time said
            # is never later than when it ends (the rows read the same lease's end).
            started = time.time()
            queue_.claim(user.name, ids)
            lease = current_app.config["LEASE_SECONDS"]
            message = (
                f"Claimed {len(ids)} comment(s) for {duration(lease)}, "
                f"until {clocktime(started + lease)}."
            )
        elif action == "release":
            queue_.release(user.name, ids)
            message = f"Released {len(ids)} comment(s)."
        else:
            reason = request.form.get("reason", "") if action == "reject" else ""
            queue_.decide(user.name, ids, action, reason)
            message = f"{DONE_LABELS[action]} {len(ids)} comment(s)."
    except review.InvalidRequest as exc:
        if exc.code == "missing_field":  # Reject without a reason chosen
            return _refused(exc.message, exc.field)
        return render_queue(filters, error=exc.message, error_field=exc.field, status=400)
    except review.Refused as exc:
        if exc.not_found:
            return render_queue(
                filters, error=f"Nothing was changed: {exc}", error_field="ids", status=404
            )
        return _refused(f"Nothing was changed: {exc}", "ids")
    flash(message, "done")
    return _back_to_queue()


def _args_from(query: str) -> MultiDict:
    return MultiDict(parse_qsl(query[:2000], keep_blank_values=True))


def render_history(*, error: str = "", status: int = 200):
    before = request.args.get("before") or None
    if before and not review.is_decision_id(before):
        before = None
    decisions = get_queue().recent_decisions(count=100, before=before)
    html = render_template(
        "moderate/history.html",
        decisions=decisions,
        user=current_user(),
        can_undo=current_user().can(OPERATOR),
        reasons=review.REJECT_REASONS,
        age=age,
        error=error,
    )
    return no_store(current_app.make_response((html, status)))


@bp.get("/history")
@login_required()
def history():
    return render_history()


@bp.post("/undo/<comment_id>")
@login_required(OPERATOR)
def undo(comment_id: str):
    try:
        get_queue().undo(current_user().name, comment_id[:64])
    except review.Refused as exc:
        if exc.not_found:
            abort(404)
        return render_history(error=f"Nothing was changed: {exc}", status=409)
    flash(f"Undone: comment {comment_id[:64]} is back in the queue.", "done")
    return redirect(url_for("moderate.history"), code=303)


@bp.get("/comments/<comment_id>")
@login_required()
def comment(comment_id: str):
    found = get_queue().item(comment_id[:64])
    if found is None:
        abort(404)
    item, raw = found
    html = render_template(
        "moderate/comment.html",
        comment=item,
        raw=raw,
        article=get_article(item.article),
        history=get_queue().history(item.id),
        holder=get_queue().holders([item.id]).get(item.id),
        segments=highlight(item.body, flagged_terms(item.explanation)),
        why=reasons_list(item.explanation),
        user=current_user(),
        age=age,
        now=time.time(),
    )
    return no_store(current_app.make_response(html))
