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

