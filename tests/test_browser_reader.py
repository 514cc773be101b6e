"""What a reader sees of the comments and the form in real headless Chromium:
layout on a phone, right-to-left text, where focus goes after a refused post."""

from __future__ import annotations

import pytest

from moderation import comments

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
