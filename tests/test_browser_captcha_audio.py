"""The audio CAPTCHA from the article page in real headless Chromium, keyboard only.

A reader who cannot see the image tabs to "Listen to the characters" and presses
Enter: the recording must belong to the challenge the form will send. It opened in
the same tab, and Back re-fetched the (no-store) page with a new challenge, so the
characters heard never matched.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

SAMPLE = "A comment typed before listening."


def focus_link(page, text: str) -> None:
    page.focus("#body")
    for _ in range(12):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent.trim()") == text:
            return
    raise AssertionError(f"{text!r} is not reachable with Tab from the comment box")


def test_listening_keeps_the_form_and_its_challenge(live_server, page, redis_client):
    page.goto(f"{live_server.url}/")
    challenge = page.locator("input[name=challenge_id]").input_value()
    page.fill("#body", SAMPLE)
    focus_link(page, "Listen to the characters")
    with page.context.expect_page(timeout=5_000) as opened:
        page.keyboard.press("Enter")
    audio = opened.value
    audio.wait_for_load_state()
    assert audio.url == f"{live_server.url}/captcha/{challenge}.wav"
    fetched = page.context.request.get(audio.url)
    assert fetched.status == 200 and fetched.headers["content-type"] == "audio/wav"
    assert len(fetched.body()) > 10_000
    # The form is where it was: same challenge, the reader's text still there.
    assert page.url == f"{live_server.url}/"
    assert page.locator("input[name=challenge_id]").input_value() == challenge
    assert page.locator("#body").input_value() == SAMPLE


def test_a_new_image_also_brings_new_audio(live_server, page):
    page.goto(f"{live_server.url}/")
    challenge = page.locator("input[name=challenge_id]").input_value()
    page.fill("#body", SAMPLE)
    page.click("button[value=new_captcha]")
    fresh = page.locator("input[name=challenge_id]").input_value()
    assert fresh != challenge
    assert page.locator("img.captcha-image").get_attribute("src") == f"/captcha/{fresh}.png"
    links = page.locator(".captcha-audio a")
    hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
    assert hrefs and all(h.startswith(f"/captcha/{fresh}.wav") for h in hrefs), hrefs
    assert page.locator("#body").input_value() == SAMPLE
