"""What pages ask for in real headless Chromium: every answer found, the icon too.

Chromium asks for a page's icon by itself, outside the page (Playwright's request
events never see it), and logs "Failed to load resource ... 404" to the console when
there is none: every page did that for /favicon.ico. The server's own record of what
it answered sees the icon's request, so the test waits for it there.
"""

from __future__ import annotations

import time

import pytest
from modhelpers import PASSWORD, csrf_token, held

from moderation.users import UserStore

pytestmark = pytest.mark.browser


class Answers:
    """The path and status of every request the live server answered."""

    def __init__(self, app) -> None:
        self.seen: list[tuple[str, int]] = []
        inner = app.wsgi_app

        def recording(environ, start_response):
            def start(status, headers, *args):
                self.seen.append((environ["PATH_INFO"], int(status.split()[0])))
                return start_response(status, headers, *args)

            return inner(environ, start)

        app.wsgi_app = recording

    def wait_for_icon(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not any("favicon" in path for path, _ in self.seen):
            assert time.monotonic() < deadline, f"the browser asked for no icon: {self.seen}"
            time.sleep(0.05)


def watch(page) -> list[str]:
    """What the page reports going wrong: console errors and requests that failed."""
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text)
            if message.type == "error" else None)
    page.on("requestfailed", lambda request: problems.append(f"failed: {request.url}"))
    page.on("response", lambda response: problems.append(f"{response.status}: {response.url}")
            if response.status >= 400 else None)
    return problems


def log_in_without_a_page(page, base: str) -> None:
    """Log the page's browser in by requests alone: no page is shown, so the first page
    the test opens is the first to ask for the icon (Chromium does not ask again for
    one that was missing on an earlier page)."""
    form = page.request.get(f"{base}/login").text()
    response = page.request.post(f"{base}/login", form={
        "name": "mia", "password": PASSWORD, "csrf_token": csrf_token(form)})
    assert response.ok and response.url.endswith("/moderate/")


@pytest.mark.parametrize("shown", ["article", "queue"])
def test_a_page_asks_for_nothing_that_is_not_there(
    live_server, page, redis_client, article_slug, shown
):
    answers = Answers(live_server.app)
    problems = watch(page)
    held(redis_client, "Is there a source for the second paragraph?", article=article_slug)
    if shown == "queue":
        UserStore(redis_client).create("mia", PASSWORD, "moderator")
        log_in_without_a_page(page, live_server.url)
        answers.seen.clear()
        page.goto(f"{live_server.url}/moderate/")
        assert page.locator("li.group").count() == 1
    else:
        page.goto(f"{live_server.url}/articles/{article_slug}")
    answers.wait_for_icon()
    page.wait_for_timeout(300)  # the console's message comes after the answer

    assert [answer for answer in answers.seen if answer[1] >= 400] == []
    assert problems == []


@pytest.mark.parametrize(("path", "mimetypes", "magic"), [
    ("/favicon.ico", {"image/vnd.microsoft.icon", "image/x-icon"}, b"\x00\x00\x01\x00"),
    ("/favicon.svg", {"image/svg+xml"}, b"<svg"),
])
def test_the_icons_are_icons_browsers_keep(client, path, mimetypes, magic):
    # The SVG, the icon browsers use, was /static/favicon.svg under Flask's default for
    # static files: no max-age, so asked for again (304) on every page.
    response = client.get(path)
    assert response.status_code == 200
    assert response.mimetype in mimetypes
    assert magic in response.data[:200]  # a real icon
    assert response.cache_control.max_age == 30 * 24 * 3600
    assert response.cache_control.public


@pytest.mark.parametrize("path", ["/", "/login", "/no-such-page"])
def test_pages_link_their_icons(client, path):
    html = client.get(path).get_data(as_text=True)
    assert '<link rel="icon" href="/favicon.ico" sizes="32x32">' in html
    assert '<link rel="icon" href="/favicon.svg" type="image/svg+xml">' in html


@pytest.mark.parametrize("name", ["site.css", "moderate.css", "moderate.js", "leases.js"])
def test_style_sheets_and_scripts_are_still_asked_for_again(client, name):
    # Their URLs carry no version: cached for a month, a changed script would reach
    # browsers a month late. They keep Flask's default (revalidate: 304 when unchanged).
    response = client.get(f"/static/{name}")
    assert response.status_code == 200
    assert response.cache_control.max_age is None
    assert response.cache_control.no_cache
    again = client.get(f"/static/{name}", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304
