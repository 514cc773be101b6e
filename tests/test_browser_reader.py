"""What a reader sees of the comments and the form in real headless Chromium:
layout on a phone, right-to-left text, where focus goes after a refused post."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from moderation import comments
from tests.conftest import CAPTCHA_TEXT

pytestmark = pytest.mark.browser

PHONE = {"width": 375, "height": 667}


def publish(redis_client, slug: str, body: str, author: str = "", now: float | None = None):
    comments.save(redis_client, comments.make_comment(
        article=slug, author=author, body=body, user_agent="", ip_hash="", score=0.01,
        model_version="m", verdict="publish", reason="", explanation=[], now=now,
    ))


def overflow(page) -> dict:
    """How far the page is wider than the window, and the elements sticking out."""
    return page.evaluate("""() => {
        const width = document.documentElement.clientWidth;
        const out = [...document.querySelectorAll('main *')]
            .filter(e => !e.closest('.hp') && e.getBoundingClientRect().right > width + 1)
            .map(e => e.tagName.toLowerCase() + '.' + e.className);
        return {extra: document.documentElement.scrollWidth - width, out};
    }""")


def test_long_words_in_a_name_or_a_comment_fit_a_phone(live_server, page, redis_client,
                                                        article_slug):
    # A 60-letter name without spaces (the limit) made the page 684 px wide on a
    # 375 px phone: the browser then shrank everything to fit, text and CAPTCHA too.
    publish(redis_client, article_slug, "Supercalifragilistic" * 10 + " https://example.com/"
            + "a/very/long/path/" * 15, author="A" * 60)
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}/articles/{article_slug}")
    assert overflow(page) == {"extra": 0, "out": []}


def test_the_captcha_fits_the_narrowest_phones(live_server, page):
    # 280 px (a folding phone's outer screen): the 240 px image and the fieldset around
    # it (a fieldset is never narrower than its content) made the page 294 px wide.
    page.set_viewport_size({"width": 280, "height": 653})
    page.goto(f"{live_server.url}/")
    assert overflow(page) == {"extra": 0, "out": []}
    image = page.locator("img.captcha-image")
    assert image.evaluate("e => e.complete && e.naturalWidth") > 0
    box = image.bounding_box()
    assert box["height"] / box["width"] == pytest.approx(80 / 240, rel=0.05)  # not squashed


def test_a_right_to_left_name_does_not_swallow_the_date(live_server, page, redis_client,
                                                         article_slug):
    # An Arabic name ran into the date after it: "29" was drawn left of the name,
    # away from "November 2026", since nothing isolated the name's direction.
    publish(redis_client, article_slug, "هذا تعليق باللغة العربية. English in the middle.",
            author="مستخدم عربي")
    page.goto(f"{live_server.url}/articles/{article_slug}")
    name = page.locator(".comment-author").bounding_box()
    day = page.evaluate("""() => {
        const text = document.querySelector('.comment-meta time').firstChild;
        const range = document.createRange();
        range.setStart(text, 0);
        range.setEnd(text, 2);
        return range.getBoundingClientRect().left;
    }""")
    assert day > name["x"] + name["width"], "the day is drawn before the name"
    # The comment itself reads right to left, its full stop at its end (the left).
    assert page.locator(".comment-body").evaluate("e => getComputedStyle(e).direction") == "rtl"


def assert_focused(page, element_id: str) -> None:
    """The element has focus (autofocus applies at the page's next rendering: wait for it)."""
    try:
        expect(page.locator(f"#{element_id}")).to_be_focused(timeout=3_000)
    except AssertionError:
        active = page.evaluate("document.activeElement.id || document.activeElement.tagName")
        raise AssertionError(f"focus is on {active}, not on #{element_id}") from None


@pytest.fixture
def page_without_js(browser):
    context = browser.new_context(java_script_enabled=False)
    yield context.new_page()
    context.close()


def test_after_a_refused_post_focus_is_on_the_field_to_correct(live_server, page_without_js):
    # The form came back scrolled to its heading with focus nowhere: a keyboard or
    # screen-reader user was not taken to the message, which for a wrong CAPTCHA sits
    # below the comment box. Now the field to correct has focus (no JavaScript needed),
    # and its message is read with it.
    page = page_without_js
    page.goto(f"{live_server.url}/")
    page.fill("#body", "A comment whose CAPTCHA is mistyped.")
    page.fill("#captcha_answer", "WRONG")
    page.get_by_role("button", name="Save").click()
    assert "did not match" in page.locator("#captcha-error").inner_text()
    assert_focused(page, "captcha_answer")
    described = page.locator("#captcha_answer").get_attribute("aria-describedby").split()
    assert "captcha-error" in described

    page.fill("#body", "   ")
    page.get_by_role("button", name="Save").click()
    assert_focused(page, "body")
    assert page.locator("#body").get_attribute("aria-describedby") == "body-help body-error"

    # A new image: focus on the box for its characters, the reader's text kept.
    page.fill("#body", "Kept while asking for another image.")
    page.click("button[value=new_captcha]")
    assert_focused(page, "captcha_answer")
    assert page.locator("#body").input_value() == "Kept while asking for another image."


def test_a_message_about_the_whole_form_gets_focus(make_live_server, browser):
    # Posting too often: the message above the form is focused (and read), the text kept.
    server = make_live_server(RATE_LIMIT_PER_IP="1 per minute")
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    for body in ("The first comment of this reader.", "A second one, too soon after."):
        page.goto(f"{server.url}/")
        page.fill("#body", body)
        page.fill("#captcha_answer", CAPTCHA_TEXT)
        page.get_by_role("button", name="Save").click()
    assert "posting too often" in page.locator("#form-error").inner_text()
    assert_focused(page, "form-error")
    assert page.locator("#body").input_value() == "A second one, too soon after."
    context.close()


@pytest.mark.parametrize("field", ["captcha_answer", "author"])
def test_enter_in_a_box_of_the_form_saves_the_comment(live_server, page_without_js, field):
    # The form's first submit button is "Get a new image", and Enter in a text box
    # presses the first one: a reader who typed the characters and pressed Enter got a
    # new image, the answer gone and no word of why.
    page = page_without_js
    page.goto(f"{live_server.url}/")
    page.fill("#author", "Ana")
    page.fill("#body", "Great news for Cuba and China, I hope the cooperation continues.")
    page.fill("#captcha_answer", CAPTCHA_TEXT)
    with page.expect_navigation():
        page.press(f"#{field}", "Enter")
    assert page.url.endswith("#comments"), page.url
    assert page.locator(".flash").count() == 1
