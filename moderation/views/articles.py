"""The article page and its "Add new comment" form; works without JavaScript.

GET renders the article, its published comments and a form with a fresh CAPTCHA.
POST validates, checks the CAPTCHA, scores and stores, then redirects (303) back
to the article with a message saying what happened (Post/Redirect/Get). On an
error the form is re-rendered with the message next to its field and the text the
reader typed kept.
"""

from __future__ import annotations

import secrets
from types import SimpleNamespace

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
from flask_wtf.csrf import CSRFError, generate_csrf
from markupsafe import Markup, escape

from .. import comments
from ..articles import Article, all_articles, default_article, get_article
from ..captcha_audio import LANGUAGES
from ..errors import ApiError, error_response, wants_json
from ..guards import HONEYPOT_FIELD
from ..policies import ADAPTIVE, PASS_COOKIE, REMEMBER
from ..redis_store import get_redis
from .common import (
    get_challenges,
    get_page_cache,
    get_protections,
    no_store,
    page_number,
    set_pass_cookie,
    submit_comment,
)

bp = Blueprint("articles", __name__)

KEPT_TEXT = "Your text is still in the box below if you would like to change it."


def _article_or_404(slug: str) -> Article:
    article = get_article(slug)
    if article is None:
        abort(404)
    return article


def render_article(
    article: Article,
    *,
    form: dict | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
    ask_captcha: bool = False,
    challenge_id: str | None = None,
):
    page = page_number(request.args.get("page"))
    per_page = current_app.config["COMMENTS_PER_PAGE"]
    # The rendered list is kept per page and reused while Redis still reports the
    # same page (comments.PageQuery); the pager's links depend on the mount point.
    cache_key = ("html", request.script_root, article.slug, page, per_page)
    known_stamp, known_list = get_page_cache().get(cache_key)
    query = comments.PageQuery(article.slug, page, per_page, known_stamp)
    challenge = None
    wanted = _captcha_needed(ask_captcha)
    if wanted:
        # Keep the reader's challenge while it has attempts left (a fresh drawing of
        # it is served on every image request); otherwise a new one.
        challenge = get_challenges().live(challenge_id)
    new_challenge = wanted and challenge is None
    # One round trip: the listing read and the new challenge's write (one script, so
    # the answer never exists without its TTL).
    with get_redis().pipeline(transaction=False) as pipe:
        query.queue(pipe)
        if new_challenge:
            challenge = get_challenges().issue(pipe=pipe)
        reply = pipe.execute()[0]
    listing = query.parse(reply)
    if listing is None:
        comment_list, total = known_list, comments.stamp_total(known_stamp)
    else:
        comment_list = Markup(render_template("_comment_list.html", listing=listing,
                                              article=article))
        get_page_cache().put(cache_key, listing.stamp, comment_list)
        total = listing.total
    stamp = known_stamp if listing is None else listing.stamp
    values = {
        "csrf_token": generate_csrf(),
        "form_token": current_app.extensions["form_clock"].stamp(),
        "challenge_id": challenge.id if challenge is not None else "",
    }
    context = {"article": article, "total": total, "comment_list": comment_list}
    if form or errors or session.get("_flashes"):
        html = _render_page(context, values, form=form or {}, errors=errors or {})
    else:
        # The usual view (no message, nothing typed yet) differs between readers only
        # in three tokens: render it once per page state with slots, then fill them.
        shell_key = ("shell", request.script_root, article.slug, page, per_page,
                     challenge is not None)
        shell_stamp, shell = get_page_cache().get(shell_key)
        if shell is None or shell_stamp != stamp:
            slots = SLOTS if challenge is not None else {**SLOTS, "challenge_id": ""}
            shell = _render_page(context, slots, form={}, errors={})
            get_page_cache().put(shell_key, stamp, shell)
        html = fill_slots(shell, values)
    return no_store(current_app.make_response((html, status)))


#: Stand-ins for the per-reader tokens in a page rendered once for everyone: random
#: per process (nobody can put them in a comment), and nothing that HTML escaping or
#: URL building would change.
_SLOT_SEED = secrets.token_hex(16)
SLOTS = {name: f"slot{_SLOT_SEED}{name.replace('_', '')}"
         for name in ("csrf_token", "form_token", "challenge_id")}


def fill_slots(shell: str, values: dict[str, str]) -> str:
    """The page for one reader: each slot replaced by that reader's (escaped) token."""
    for name, slot in SLOTS.items():
        shell = shell.replace(slot, str(escape(values[name])))
    return shell


def _render_page(context: dict, values: dict[str, str], *, form: dict, errors: dict) -> str:
    challenge = SimpleNamespace(id=values["challenge_id"]) if values["challenge_id"] else None
    return render_template(
        "article.html",
        **context,
        article_text=_article_text(context["article"]),
        challenge=challenge,
        csrf_token=lambda: values["csrf_token"],
        form_token=values["form_token"],
        honeypot_field=HONEYPOT_FIELD,
        form=form,
        errors=errors,
        max_body=current_app.config["MAX_COMMENT_CHARS"],
        max_name=current_app.config["MAX_NAME_CHARS"],
        captcha_width=current_app.config["CAPTCHA_WIDTH"],
        captcha_height=current_app.config["CAPTCHA_HEIGHT"],
        # Without a voice library the shipped voice speaks English only.
        spanish_audio="es" in getattr(get_challenges().audio, "languages", ()),
    )


#: Links to other articles under each one (the first ones in ARTICLES_DIR order).
MORE_ARTICLES = 10


def _article_text(article: Article) -> Markup:
    """The article's title, date and paragraphs as HTML, rendered once per process."""
    rendered = current_app.extensions.setdefault("article_text", {})
    key = (request.script_root, article.slug)  # the links depend on the mount point
    if key not in rendered:
        others = [other for other in all_articles().values() if other.slug != article.slug]
        rendered[key] = Markup(render_template("_article_text.html", article=article,
                                               others=others[:MORE_ARTICLES]))
    return rendered[key]


def _captcha_needed(ask: bool) -> bool:
    """Whether the form shows a CAPTCHA, per CHALLENGE_POLICY (see policies.py)."""
    protections = get_protections()
    if ask or protections.policy not in (REMEMBER, ADAPTIVE):
        return True
    if protections.policy == REMEMBER:
        return protections.passes.remaining(request.cookies.get(PASS_COOKIE)) <= 0
    return False  # adaptive: only once the comment turned out to be unsure


def rerender_after_error(error: ApiError):
    """The form again, with ``error`` next to its field and the reader's text kept."""
    article = _article_or_404((request.view_args or {}).get("slug", ""))
    form = request.form.to_dict()
    form.pop("captcha_answer", None)
    ask = bool(form.get("challenge_id")) or error.code in ("captcha_required", "captcha_failed")
    message = error.message
    if error.code == "captcha_required":
        message += " Your text has been kept."  # the form's, not an API client's
    return render_article(
        article,
        form=form,
        errors={error.field or "form": message},
        status=error.status,
        ask_captcha=ask,
        challenge_id=form.get("challenge_id"),
    )


@bp.get("/")
def index():
    return render_article(default_article())


@bp.get("/articles/<slug>")
def show(slug: str):
    return render_article(_article_or_404(slug))


@bp.post("/articles/<slug>/comments")
def post_comment(slug: str):
    article = _article_or_404(slug)
    form = request.form.to_dict()
    if form.get("action") == "new_captcha":
        # The reader asked for another image: drop the old challenge, keep the text.
        get_challenges().discard(form.get("challenge_id", ""))
        return render_article(article, form=form, ask_captcha=True)
    try:
        outcome = submit_comment(article.slug, form)
    except ApiError as error:
        return rerender_after_error(error)
    comment = outcome.comment
    message = outcome.reader_message
    if comment.status == comments.REJECTED:
        # The form again with the text in it (422, as the API answers): a reader whose
        # comment the filter got wrong can reword it instead of typing it again. It
        # is stored as rejected all the same.
        kept = {"author": form.get("author", ""), "body": form.get("body", "")}
        response = render_article(article, form=kept, errors={"form": f"{message} {KEPT_TEXT}"},
                                  status=422, ask_captcha=True)
        return set_pass_cookie(response, outcome.new_pass)
    flash(message, comment.status)
    response = redirect(url_for("articles.show", slug=article.slug, _anchor="comments"), code=303)
    return set_pass_cookie(response, outcome.new_pass)


def _gone_challenge() -> ApiError:
    remedy = ("request a new challenge (POST /api/v1/challenges)" if wants_json()
              else "go back to the form and press 'Get a new image'")
    return ApiError(404, "unknown_challenge",
                    f"This CAPTCHA has expired or was already used: {remedy}.", "challenge_id")


@bp.get("/captcha/<challenge_id>.png")
def captcha_image(challenge_id: str):
    png = get_challenges().render_png(challenge_id)
    if png is None:
        raise _gone_challenge()
    response = current_app.response_class(png, mimetype="image/png")
    return no_store(response)


@bp.get("/captcha/<challenge_id>.wav")
def captcha_audio(challenge_id: str):
    """The challenge's characters spoken, for readers who cannot see the image."""
    language = request.args.get("lang", "en")
    if language not in LANGUAGES:
        raise ApiError(400, "invalid_field", f"lang must be one of {', '.join(LANGUAGES)}.",
                       "lang")
    wav = get_challenges().render_wav(challenge_id, language)
    if wav is None:
        raise _gone_challenge()
    response = current_app.response_class(wav, mimetype="audio/wav")
    # Without a Spanish voice library Spanish falls back to English: say which it is.
    response.headers["Content-Language"] = get_challenges().audio.spoken(language)
    return no_store(response)


def handle_csrf_error(error: CSRFError):
    """An expired or missing form token: re-render the form, keeping the reader's text."""
    if request.endpoint == "articles.post_comment" and request.view_args:
        article = get_article(request.view_args.get("slug", ""))
        if article is not None:
            form = request.form.to_dict()
            form.pop("captcha_answer", None)
            message = "The form had expired. Please check the new image and press Save again."
            if "session token is missing" in (error.description or ""):
                # No session cookie came back: blocked cookies, or a tab restored after
                # the browser was closed. Saying "expired" would loop a blocked reader.
                message = ("Your browser did not send back the cookie this form needs. "
                           "Please check the new image and press Save again; if this "
                           "message comes back, please allow cookies for this site.")
            return render_article(article, form=form, errors={"form": message}, status=400)
    # Returned, not raised: an exception raised inside an error handler is not handled again.
    return error_response(ApiError(
        400, "csrf_failed", f"The form's security token is missing or wrong: {error.description}"
    ))
