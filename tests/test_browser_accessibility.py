"""Accessibility of every page a reader or a moderator can reach, in real headless Chromium.

axe-core (Deque's engine, bundled by the ``axe-playwright-python`` wheel: nothing is
fetched at test time) checks each page in its main states; any violation of impact
"serious" or "critical" fails, listed by rule, element and message. Focused tests
below cover what axe cannot judge: the CAPTCHA's text alternative, the error page's
heading, keyboard use of the reader form and of the review queue.

One server and one browser per module keep this to about a second a page; each test
starts from an empty Redis database.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import redis
from axe_playwright_python.sync_playwright import Axe
from modhelpers import PASSWORD, held, reuse_password_hashes
from playwright.sync_api import expect

from moderation import comments, create_app, keys
from moderation.articles import default_article
from moderation.queue import ReviewQueue
from moderation.users import UserStore
from tests.conftest import CAPTCHA_TEXT, LiveServer, app_config, free_port, launch_chromium

pytestmark = pytest.mark.browser

#: The impacts that fail a page. "moderate" and "minor" ones are listed in the README.
FAILING_IMPACTS = ("serious", "critical")
PHONE = {"width": 375, "height": 667}


@dataclass
class Site:
    """The module's servers and a client on their Redis database."""

    url: str
    down_url: str  # the same app whose Redis does not answer: every page is a 503
    store: redis.Redis
    slug: str

    def publish(self, body: str, author: str = "", slug: str | None = None) -> None:
        comments.save(self.store, comments.make_comment(
            article=slug or self.slug, author=author, body=body, user_agent="", ip_hash="",
            score=0.01, model_version="m", verdict="publish", reason="", explanation=[],
        ))


@pytest.fixture(scope="module")
def chromium():
    yield from launch_chromium()


@pytest.fixture(scope="module")
def site(redis_url, models_dir, reported_models) -> Iterator[Site]:
    # Two comments (or queue rows) a page, so three of them bring a pager; two model
    # versions, one with an evaluation report, for the operators' Models pages.
    config = app_config(redis_url, models_dir, COMMENTS_PER_PAGE=2, MODERATE_PER_PAGE=2,
                        MODELS_DIR=str(reported_models["models"]),
                        REPORTS_DIR=str(reported_models["reports"]))
    server = LiveServer(create_app(config, challenge_text=lambda length: CAPTCHA_TEXT))
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    down = LiveServer(create_app(app_config(nowhere, models_dir),
                                 challenge_text=lambda length: CAPTCHA_TEXT))
    store = redis.Redis.from_url(redis_url, decode_responses=True)
    yield Site(server.url, down.url, store, default_article().slug)
    store.close()
    down.stop()
    server.stop()


@pytest.fixture(autouse=True)
def empty_store(site, monkeypatch) -> None:
    site.store.flushall()
    reuse_password_hashes(monkeypatch)


@pytest.fixture
def page(chromium):
    context = chromium.new_context()
    new_page = context.new_page()
    new_page.set_default_timeout(10_000)
    errors: list[str] = []
    new_page.on("pageerror", lambda error: errors.append(str(error)))
    yield new_page
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


AXE = Axe()


def violations(page, impacts: tuple[str, ...] = FAILING_IMPACTS) -> list[dict]:
    """axe-core's violations on the page as it is now, of the given impacts."""
    results = AXE.run(page).response
    return [v for v in results["violations"] if v["impact"] in impacts]


def report(found: list[dict]) -> str:
    """One line per rule and element: what axe says is wrong, and where."""
    lines = []
    for violation in found:
        lines.append(f"{violation['id']} ({violation['impact']}): {violation['help']}")
        for node in violation["nodes"]:
            messages = "; ".join(
                check["message"] for kind in ("any", "all", "none") for check in node[kind]
            )
            lines.append(f"    {' '.join(node['target'])}: {messages}")
    return "\n".join(lines)


# -- the pages, each in a named state ----------------------------------------

STATES: dict[str, Callable] = {}


def state(name: str):
    def register(function: Callable) -> Callable:
        STATES[name] = function
        return function
    return register


def log_in(page, site: Site, role: str = "moderator") -> None:
    UserStore(site.store).create("mia", PASSWORD, role)
    page.goto(f"{site.url}/login")
    page.fill("#name", "mia")
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")


def hold_some(site: Site) -> None:
    held(site.store, "I enjoyed this report on the visit, thank you.", article=site.slug,
         score=0.9, explanation=[{"feature": "thank", "kind": "term", "weight": 0.4}])
    for i in range(3):
        held(site.store, "WIN a FREE phone at cheap-deals now", article=site.slug,
             score=0.8 - i / 100, explanation=[{"feature": "free", "kind": "term",
                                                "weight": 1.4}])


@state("article, no comments")
def article_empty(page, site):
    page.goto(f"{site.url}/articles/{site.slug}")


@state("article with comments and a pager")
def article_with_comments(page, site):
    for i in range(3):
        site.publish(f"Comment number {i} on this article.", author=f"Reader {i}")
    page.goto(f"{site.url}/articles/{site.slug}")


@state("article, a page past the last")
def article_past_the_end(page, site):
    site.publish("The only comment.")
    page.goto(f"{site.url}/articles/{site.slug}?page=5")


@state("article, wrong CAPTCHA answer (400)")
def article_captcha_error(page, site):
    page.goto(f"{site.url}/articles/{site.slug}")
    page.fill("#body", "A comment whose CAPTCHA is mistyped.")
    page.fill("#captcha_answer", "WRONG")
    with page.expect_navigation():
        page.click("button.primary")


@state("article, empty comment (400)")
def article_body_error(page, site):
    page.goto(f"{site.url}/articles/{site.slug}")
    page.fill("#captcha_answer", CAPTCHA_TEXT)
    with page.expect_navigation():
        page.click("button.primary")


@state("article, rejected comment re-rendered (422)")
def article_rejected(page, site):
    page.goto(f"{site.url}/articles/{site.slug}")
    page.fill("#body", "A comment from a robot that fills every field.")
    page.fill("#captcha_answer", CAPTCHA_TEXT)
    # The honeypot (off-screen, so not typed into): what a spam robot fills in.
    page.eval_on_selector(".hp input", "input => { input.value = 'http://spam.example' }")
    with page.expect_navigation():
        page.click("button.primary")


@state("article after posting, with a message")
def article_after_post(page, site):
    page.goto(f"{site.url}/articles/{site.slug}")
    page.fill("#body", "Great news for the cooperation, I hope it continues.")
    page.fill("#captcha_answer", CAPTCHA_TEXT)
    with page.expect_navigation():
        page.click("button.primary")


@state("article on a 375 px phone")
def article_phone(page, site):
    page.set_viewport_size(PHONE)
    site.publish("A comment read on a phone.", author="Ana")
    page.goto(f"{site.url}/articles/{site.slug}")


@state("error 404 (no such article)")
def error_404(page, site):
    page.goto(f"{site.url}/articles/no-such-article")


@state("error 405 (GET on the form's target)")
def error_405(page, site):
    page.goto(f"{site.url}/articles/{site.slug}/comments")


@state("error 503 (Redis down)")
def error_503(page, site):
    page.goto(f"{site.down_url}/articles/{site.slug}")


@state("expired audio link (404)")
def expired_audio(page, site):
    page.goto(f"{site.url}/captcha/{'0' * 32}.wav")


@state("login")
def login_empty(page, site):
    page.goto(f"{site.url}/login")


@state("login, wrong password (401)")
def login_wrong(page, site):
    page.goto(f"{site.url}/login")
    page.fill("#name", "mia")
    page.fill("#password", "not the password")
    with page.expect_navigation():
        page.click("button[type=submit]")


@state("queue, empty")
def queue_empty(page, site):
    log_in(page, site)


@state("queue, held comments grouped")
def queue_grouped(page, site):
    hold_some(site)
    log_in(page, site)


@state("queue, one by one")
def queue_ungrouped(page, site):
    hold_some(site)
    log_in(page, site)
    page.goto(f"{site.url}/moderate/?grouped=0")


@state("queue, a row claimed by another moderator")
def queue_claimed(page, site):
    hold_some(site)
    other = held(site.store, "Is there a source for the second paragraph?", article=site.slug,
                 score=0.95)
    ReviewQueue(site.store).claim("ben", [other.id])
    log_in(page, site)
    assert page.locator("li.group.claimed").count() == 1


@state("queue, a claim lapsed while the page was open")
def queue_lapsed(page, site):
    hold_some(site)
    log_in(page, site)
    ReviewQueue(site.store, lease_seconds=1.5).claim("ben", [held(
        site.store, "Is there a source for the second paragraph?", article=site.slug,
        score=0.95).id])
    page.goto(f"{site.url}/moderate/")
    expect(page.locator(".holder.lapsed")).to_have_count(1, timeout=10_000)


@state("queue, words longer than the window")
def queue_long_words(page, site):
    # A reader's name and text without a space: the name pushed a 320 px page 195 px wide.
    held(site.store, "https://example.com/" + "x" * 200, article=site.slug, author="x" * 60,
         score=0.7, explanation=[{"feature": "x" * 40, "kind": "term", "weight": 0.9}])
    log_in(page, site)


@state("queue with a pager")
def queue_pages(page, site):
    hold_some(site)
    held(site.store, "Is there a source for the second paragraph?", article=site.slug, score=0.3)
    log_in(page, site)
    assert page.locator("nav.pager").count() == 1


@state("queue, bad filter (400)")
def queue_bad_filter(page, site):
    hold_some(site)
    log_in(page, site)
    page.goto(f"{site.url}/moderate/?min_score=2")


@state("queue, key list open")
def queue_help(page, site):
    hold_some(site)
    log_in(page, site)
    page.keyboard.press("?")


@state("queue after a decision, with a message")
def queue_after_decision(page, site):
    hold_some(site)
    log_in(page, site)
    with page.expect_navigation():
        page.keyboard.press("a")


@state("queue, reject without a reason (sent back to the queue)")
def queue_refused(page, site):
    hold_some(site)
    log_in(page, site)
    with page.expect_navigation():
        page.keyboard.press("r")
    assert page.locator("#reject-reason[aria-invalid=true]").count() == 1


@state("history, empty")
def history_empty(page, site):
    log_in(page, site, "operator")
    page.goto(f"{site.url}/moderate/history")


@state("history with decisions and undo")
def history_full(page, site):
    hold_some(site)
    queue = ReviewQueue(site.store)
    for comment_id in site.store.zrange(keys.REVIEW_QUEUE, 0, -1)[:2]:
        queue.decide("mia", [comment_id], "spam")
    log_in(page, site, "operator")
    page.goto(f"{site.url}/moderate/history")


@state("models list (operators)")
def models_list(page, site):
    log_in(page, site, "operator")
    page.goto(f"{site.url}/moderate/models")


@state("a model's evaluation report with its plots")
def model_report(page, site):
    log_in(page, site, "operator")
    page.goto(f"{site.url}/moderate/models")
    # Waiting for the page to load: measured while its style sheet was still on the
    # way, the report's tables and commands, not yet in their scroll boxes, made the
    # page up to 745 px wider than a 320 px window in one run of three.
    with page.expect_navigation():
        page.click("table a >> nth=0")  # newest first: the version with the report


@state("comment page")
def comment_page(page, site):
    hold_some(site)
    log_in(page, site)
    with page.expect_navigation():
        page.click("li.group >> nth=0 >> text=details")


# -- axe on every page -------------------------------------------------------


@pytest.mark.parametrize("name", STATES)
def test_no_serious_or_critical_violations(name, page, site):
    STATES[name](page, site)
    page.wait_for_load_state()
    found = violations(page)
    assert not found, f"{name} ({page.url}):\n{report(found)}"


def test_the_scan_finds_a_violation(page, site):
    # The check itself: a page with an image without alt text and an unlabelled box fails.
    page.goto(f"{site.url}/articles/{site.slug}")
    page.evaluate("""() => {
        document.querySelector('.captcha-image').removeAttribute('alt');
        document.querySelector('label[for=body]').remove();
    }""")
    assert {v["id"] for v in violations(page)} >= {"image-alt", "label"}


# -- what was fixed, one by one ----------------------------------------------


def test_the_captcha_image_says_what_to_do_and_not_what_it_shows(page, site):
    # It said "Image CAPTCHA": neither what to do with it nor where the audio is.
    alts = set()
    for _ in range(2):  # two challenges: the text must not depend on the characters
        page.goto(f"{site.url}/articles/{site.slug}")
        alts.add(page.locator("img.captcha-image").get_attribute("alt"))
    (alt,) = alts
    assert "CAPTCHA" in alt and "type them into the box" in alt
    assert "Listen to the characters" in alt and "Get a new image" in alt
    assert CAPTCHA_TEXT.lower() not in alt.lower()


@pytest.mark.parametrize(("path", "heading", "status"), [
    ("/articles/no-such-article", "Page not found", 404),
    ("/articles/{slug}/comments", "Not allowed here", 405),
    (f"/captcha/{'0' * 32}.wav", "This CAPTCHA has expired", 404),
])
def test_an_error_page_says_what_happened_in_its_heading(page, site, path, heading, status):
    # The heading was the bare status ("404"), which is also all a screen reader's
    # list of headings showed. The expired audio link was raw JSON in Chromium.
    answer = page.goto(site.url + path.format(slug=site.slug))
    assert answer.status == status
    assert page.locator("h1").inner_text() == heading
    assert page.locator(".status-code").inner_text() == f"Error {status}"
    assert page.title() == f"{heading} (error {status})"


def test_the_store_down_page_says_what_happened(page, site):
    STATES["error 503 (Redis down)"](page, site)
    assert page.locator("h1").inner_text() == "Comments are unavailable for a moment"
    assert page.locator(".status-code").inner_text() == "Error 503"


def focus_ring(page) -> dict:
    """The focused element and its outline, as the browser draws it."""
    return page.evaluate("""() => {
        const e = document.activeElement, s = getComputedStyle(e);
        return {element: e.id || e.textContent.trim(), style: s.outlineStyle,
                width: parseFloat(s.outlineWidth)};
    }""")


def test_the_reader_form_in_tab_order_with_a_visible_focus_ring(page, site):
    # Chromium's own ring is a thin dark line, hard to see on the red Save button.
    page.goto(f"{site.url}/articles/{site.slug}")
    page.focus("#author")
    reached = [focus_ring(page)]
    for _ in range(5):
        page.keyboard.press("Tab")
        reached.append(focus_ring(page))
    assert [r["element"] for r in reached] == [
        "author", "body", "Get a new image", "Listen to the characters", "captcha_answer",
        "Save",
    ]
    thin = [r for r in reached if r["style"] != "solid" or r["width"] < 3]
    assert not thin, f"no clear focus ring on {thin}"


def test_the_form_can_be_sent_with_the_keyboard_alone(page, site):
    page.goto(f"{site.url}/articles/{site.slug}")
    page.focus("#author")
    page.keyboard.type("Ana")
    page.keyboard.press("Tab")
    page.keyboard.type("Sent without touching the mouse.")
    for _ in range(3):  # past "Get a new image" and "Listen to the characters"
        page.keyboard.press("Tab")
    page.keyboard.type(CAPTCHA_TEXT)
    page.keyboard.press("Tab")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.locator(".flash").count() == 1


def queue_depth(site: Site) -> int:
    return site.store.zcard(keys.REVIEW_QUEUE)


def test_queue_keys_do_not_act_while_typing_in_the_filters(page, site):
    hold_some(site)
    log_in(page, site)
    url = page.url
    page.focus("input[name=min_score]")
    page.keyboard.type("0.5jkarsh?x")
    page.focus("#reject-reason")
    page.keyboard.press("s")  # picks "Spam"-like options in the list, marks nothing
    page.focus("select[name=sort]")
    page.keyboard.press("a")
    assert page.url == url and queue_depth(site) == 4
    assert page.locator("#help").is_hidden()
    assert page.locator("input[name=ids]:checked").count() == 0


def test_the_keys_act_on_the_row_that_has_focus(page, site):
    # Tab into the second row's buttons, press "s": the first row (still the cursor's)
    # was marked as spam.
    hold_some(site)
    log_in(page, site)
    page.focus("#pos-0 .act-ham")
    page.keyboard.press("Tab")  # out of the first row's buttons
    while not page.evaluate("document.activeElement.closest('#pos-1') !== null"):
        page.keyboard.press("Tab")
    with page.expect_navigation():
        page.keyboard.press("s")
    assert queue_depth(site) == 1
    assert "thank you" in page.locator("#pos-0 .body").inner_text()


def test_j_and_k_move_focus_to_the_row(page, site):
    hold_some(site)
    log_in(page, site)
    page.keyboard.press("j")
    assert page.evaluate("document.activeElement.id") == "pos-1"
    assert page.locator("#pos-1").get_attribute("aria-current") == "true"
    assert page.locator("#pos-0").get_attribute("aria-current") is None
    page.keyboard.press("Tab")  # on to the row's own controls
    assert page.evaluate("document.activeElement.closest('li.group').id") == "pos-1"
    page.keyboard.press("k")
    assert page.evaluate("document.activeElement.id") == "pos-0"


def test_the_key_list_takes_focus_and_gives_it_back(page, site):
    # It opened with focus left on the page behind it (aria-modal: a screen reader
    # then read nothing), and had no way to close it but the keyboard.
    hold_some(site)
    log_in(page, site)
    page.keyboard.press("j")
    page.keyboard.press("?")
    assert page.evaluate("document.activeElement.className") == "help-close"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "help-close"
    page.keyboard.press("Escape")
    assert page.locator("#help").is_hidden()
    assert page.evaluate("document.activeElement.id") == "pos-1"
    page.keyboard.press("?")
    page.click(".help-close")
    assert page.locator("#help").is_hidden()


def test_each_rows_controls_say_which_comment(page, site):
    # "select" and "Approve" alone, on every row: a screen reader could not tell which.
    hold_some(site)
    log_in(page, site)
    for control in ("input[name=ids]", ".act-approve"):
        expect(page.locator(f"#pos-0 {control}")).to_have_accessible_description(
            re.compile(r"Reader on .* score 0\.90"))
        expect(page.locator(f"#pos-1 {control}")).to_have_accessible_description(
            re.compile(r"3 similar comments .* score 0\.80"))


def test_a_refused_filter_is_described_by_the_message(page, site):
    log_in(page, site)
    page.goto(f"{site.url}/moderate/?min_score=2")
    expect(page.locator("input[name=min_score]")).to_have_accessible_description(
        "Min score must be a number from 0 to 1.")


def test_the_undo_column_has_a_name(page, site):
    STATES["history with decisions and undo"](page, site)
    results = AXE.run(page, options={"runOnly": ["empty-table-header"]}).response
    assert results["violations"] == []
    assert page.locator("th").last.inner_text() == "Undo"  # read, not shown


def test_a_lapsed_claim_is_said_politely_without_moving_focus(page, site):
    # The row turned "lapsed" on the screen only: a screen reader, away from the row,
    # heard nothing, and went on thinking ben was handling that comment.
    hold_some(site)
    log_in(page, site)
    ReviewQueue(site.store, lease_seconds=1.5).claim("ben", [held(
        site.store, "Is there a source for the second paragraph of this report?",
        article=site.slug, score=0.95).id])
    page.goto(f"{site.url}/moderate/")
    news = page.locator("[aria-live]")
    assert news.count() == 1, "one live region a page"
    assert news.get_attribute("aria-live") == "polite" and news.get_attribute("role") == "status"
    assert news.inner_text() == ""
    page.keyboard.press("j")  # focus on the second row, away from ben's
    focused = page.evaluate("document.activeElement.id")
    assert focused == "pos-1"
    expect(news).to_have_text(
        "Claim by ben on \u2018Is there a source for the\u2026\u2019 lapsed: free again.",
        timeout=10_000)
    assert page.evaluate("document.activeElement.id") == focused
    found = violations(page)
    assert not found, report(found)


def test_a_lapse_on_a_comments_page_is_said_too(page, site):
    log_in(page, site)
    comment = held(site.store, "Short one", article=site.slug, score=0.5)
    ReviewQueue(site.store, lease_seconds=1.5).claim("ben", [comment.id])
    page.goto(f"{site.url}/moderate/comments/{comment.id}")
    assert page.locator("[aria-live]").count() == 1
    expect(page.locator("#lease-news")).to_have_text(
        "Claim by ben on \u2018Short one\u2019 lapsed: free again.", timeout=10_000)


#: 1280 px at 400% zoom: what WCAG's reflow criterion asks to work without scrolling
#: sideways (a phone is about as narrow).
ZOOMED = {"width": 320, "height": 640}


@pytest.mark.parametrize("name", [
    "queue, held comments grouped", "queue, words longer than the window",
    "queue, a row claimed by another moderator", "queue, a claim lapsed while the page was open",
    "history with decisions and undo", "comment page", "models list (operators)",
    "a model's evaluation report with its plots",
    "login, wrong password (401)", "error 404 (no such article)",
])
def test_moderator_pages_fit_a_zoomed_window(page, site, name):
    # At 320 px the queue's article list, the header's links, a comment's id and the
    # history's table pushed the page 34 to 105 px wider than the window.
    page.set_viewport_size(ZOOMED)
    STATES[name](page, site)
    extra = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert extra == 0, f"{name}: {extra} px wider than the window"


def test_the_key_list_is_readable_in_a_zoomed_window(page, site):
    # It took 40% of the width: 128 px at 320, its descriptions one word a line,
    # running out of the box.
    page.set_viewport_size(ZOOMED)
    STATES["queue, key list open"](page, site)
    box = page.locator("#help").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= ZOOMED["width"]
    assert box["width"] >= ZOOMED["width"] - 2 * 16 - 1
    assert page.locator("#help dl").evaluate("e => e.scrollWidth <= e.clientWidth")


def key_list_heights(page) -> dict:
    """The key list's height and what its content needs (children, padding, border)."""
    return page.locator("#help").evaluate("""help => {
        const style = getComputedStyle(help);
        const box = help.getBoundingClientRect();
        const first = help.firstElementChild.getBoundingClientRect();
        const last = help.lastElementChild.getBoundingClientRect();
        const edges = ['paddingTop', 'paddingBottom', 'borderTopWidth', 'borderBottomWidth']
            .reduce((sum, name) => sum + parseFloat(style[name]), 0);
        const margins = parseFloat(getComputedStyle(help.firstElementChild).marginTop)
            + parseFloat(getComputedStyle(help.lastElementChild).marginBottom);
        return {height: box.height, content: last.bottom - first.top + edges + margins,
                bottom: box.bottom, window: window.innerHeight,
                scrolls: help.scrollHeight > help.clientHeight};
    }""")


@pytest.mark.parametrize("size", [{"width": 1280, "height": 720},
                                  {"width": 1280, "height": 1200}, ZOOMED])
def test_the_key_list_is_as_tall_as_its_content(page, site, size):
    # It was pinned 10% from the window's top and bottom: 576 px tall at 720 px for
    # about 300 px of keys, the rest an empty white box over the queue.
    page.set_viewport_size(size)
    STATES["queue, key list open"](page, site)
    heights = key_list_heights(page)
    assert abs(heights["height"] - heights["content"]) <= 2, heights
    assert not heights["scrolls"], heights


def test_a_key_list_taller_than_the_window_scrolls_in_its_box(page, site):
    page.set_viewport_size({"width": 320, "height": 240})
    STATES["queue, key list open"](page, site)
    heights = key_list_heights(page)
    assert heights["bottom"] <= heights["window"], heights
    assert heights["scrolls"], heights
    page.locator("#help").evaluate("help => { help.scrollTop = help.scrollHeight; }")
    assert page.locator(".help-close").is_visible()
