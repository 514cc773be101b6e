"""XSS payloads posted through the API must not run in a real browser.

Posts more than 50 hostile comments (script tags, event handlers, ``javascript:``
URLs, SVG, broken markup, Unicode tricks) as body *and* author, then loads the
article page and the moderator queue in headless Chromium (Debian's, never a
downloaded one). Every payload tries to set ``window.__xss`` or open a dialog; the
test asserts neither happened, and, independently of the Content-Security-Policy
(which would block inline script even if escaping failed), that the payloads were
rendered as text: no element was created inside a comment.

Skipped when /usr/bin/chromium is missing, unless REQUIRE_BROWSER=1 (CI), then it fails.
"""

from __future__ import annotations

import pytest

from moderation.users import UserStore
from tests.conftest import CAPTCHA_TEXT

PASSWORD = "correct horse battery staple"

pytestmark = pytest.mark.browser

X = "window.__xss=1"
PAYLOADS = [
    # script tags
    f"<script>{X}</script>",
    f"<SCRIPT>{X}</SCRIPT>",
    f"<script src=data:text/javascript,{X}></script>",
    f"<scr<script>ipt>{X}</scr</script>ipt>",
    f"</textarea><script>{X}</script>",
    f"</title><script>{X}</script>",
    f"</div></li></ol><script>{X}</script>",
    f"<script>/*</script><script>{X}//*/</script>",
    f"<<script>{X}//<</script>",
    f"<script\x20type=\"text/javascript\">{X};</script>",
    # event handlers
    f"<img src=x onerror={X}>",
    f"<img src=x onerror=\"{X}\">",
    f"<IMG SRC=x OnErRoR={X}>",
    f"<body onload={X}>",
    f"<svg onload={X}>",
    f"<div onmouseover=\"{X}\" style=\"position:fixed;inset:0\">hover</div>",
    f"<input autofocus onfocus={X}>",
    f"<details open ontoggle={X}>",
    f"<video><source onerror=\"{X}\"></video>",
    f"<audio src=x onerror={X}>",
    f"<marquee onstart={X}>x</marquee>",
    f"<iframe onload={X}></iframe>",
    f"<object data=x onerror={X}></object>",
    f"\" onmouseover=\"{X}\" x=\"",
    f"' autofocus onfocus='{X}' x='",
    f"<select autofocus onfocus={X}>",
    # javascript: and data: URLs
    f"<a href=\"javascript:{X}\">click</a>",
    f"<a href=\"JaVaScRiPt:{X}\">x</a>",
    f"<a href=\"jav&#x09;ascript:{X}\">x</a>",
    f"<iframe src=\"javascript:{X}\"></iframe>",
    f"<iframe srcdoc=\"<script>parent.{X}</script>\"></iframe>",
    f"<form action=\"javascript:{X}\"><button>go</button></form>",
    f"<object data=\"data:text/html,<script>parent.{X}</script>\"></object>",
    f"<embed src=\"javascript:{X}\">",
    f"<meta http-equiv=\"refresh\" content=\"0;url=javascript:{X}\">",
    f"javascript:{X}",
    # SVG and MathML
    f"<svg><script>{X}</script></svg>",
    f"<svg><animate onbegin={X} attributeName=x dur=1s>",
    f"<svg><a xlink:href=\"javascript:{X}\"><text x=20 y=20>x</text></a></svg>",
    f"<svg><foreignObject><img src=x onerror={X}></foreignObject></svg>",
    f"<math><mtext><table><mglyph><style><img src=x onerror={X}>",
    f"<svg><set attributeName=onmouseover to={X}>",
    # broken markup and parser confusion
    f"<img src=\"x\" onerror=\"{X}\"",
    f"<img/src/onerror={X}>",
    f"<!--<img src=\"--><img src=x onerror={X}//\">",
    f"<noscript><p title=\"</noscript><img src=x onerror={X}>\">",
    f"<style></style><img src=x onerror={X}>",
    f"<![CDATA[<img src=x onerror={X}>]]>",
    f"{{{{7*7}}}} {{% raw %}}<script>{X}</script>",
    f"${{alert(1)}}<script>{X}</script>",
    # entities and Unicode tricks
    f"&lt;script&gt;{X}&lt;/script&gt;",
    f"&#60;script&#62;{X}&#60;/script&#62;",
    f"\uff1cscript\uff1e{X}\uff1c/script\uff1e",
    f"<scr\u200bipt>{X}</scr\u200bipt>",
    f"\u202e<script>{X}</script>",
    "<img src=x onerror=\u0077indow.__xss=1>",
    "<img src=x onerror=\"&#119;indow.__xss=1\">",
    f"<a href=\"&#106;avascript:{X}\">x</a>",
    f"\x00<script>{X}</script>",
    "<script>alert('xss')</script><img src=x onerror=alert(1)>",
    "<img src=x onerror=confirm(1)><svg onload=prompt(1)>",
]

ELEMENTS_IN_TEXT = "img, svg, script, iframe, object, embed, video, audio, a, input, select, " \
                   "details, marquee, math, form, meta, style, body, div, source, noscript"


#: Publish everything and switch off the guards that would hold or drop payloads, so
#: every payload reaches the page.
APP_CONFIG = {"PUBLISH_BELOW": 1.0, "REJECT_AT": 1.0, "MAX_NAME_CHARS": 500,
              "COMMENTS_PER_PAGE": 500, "REPEAT_WINDOW_SECONDS": 0, "MAX_LINKS": 100}


@pytest.fixture
def chromium(browser):
    """Debian's Chromium through the shared fixture (skips/fails as conftest says)."""
    return browser


@pytest.fixture
def live_app(make_live_server, empty_word_list):
    """The app on a loopback port, in a thread, for the browser."""
    server = make_live_server(**APP_CONFIG, WORD_LIST_PATH=empty_word_list)
    return server.app, server.url


@pytest.fixture
def empty_word_list(tmp_path) -> str:
    path = tmp_path / "words.txt"
    path.write_text("[banned]\n[suspect]\n")
    return str(path)


def _post_all(client, slug, status_expected):
    for number, payload in enumerate(PAYLOADS):
        challenge = client.post("/api/v1/challenges").get_json()
        response = client.post(f"/api/v1/articles/{slug}/comments", json={
            "body": f"{payload} #{number}", "author": payload,
            "challenge_id": challenge["id"], "captcha_answer": CAPTCHA_TEXT,
        })
        assert response.status_code == status_expected, (payload, response.get_json())


def _watch(page) -> list[str]:
    dialogs: list[str] = []

    def on_dialog(dialog):
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return dialogs


def _assert_nothing_ran(page, dialogs):
    page.wait_for_timeout(500)  # let onerror/onload/autofocus handlers fire, if any could
    page.mouse.move(200, 200)
    page.keyboard.press("Tab")
    page.wait_for_timeout(200)
    assert page.evaluate("window.__xss") is None
    assert dialogs == []


def test_payloads_do_not_run_on_the_article_page(chromium, live_app, article_slug):
    assert len(PAYLOADS) >= 50
    app, base = live_app
    _post_all(app.test_client(), article_slug, 201)

    page = chromium.new_page()
    dialogs = _watch(page)
    page.goto(f"{base}/articles/{article_slug}")
    _assert_nothing_ran(page, dialogs)
    bodies = page.locator(".comment-body")
    assert bodies.count() == len(PAYLOADS)
    # Rendered as text, exactly as typed (after input cleaning), creating no elements.
    shown = set(bodies.all_text_contents())
    assert f"{PAYLOADS[0]} #0" in shown and f"{PAYLOADS[10]} #10" in shown
    assert page.locator(f".comment-body :is({ELEMENTS_IN_TEXT})").count() == 0
    assert page.locator(f".comment-author :is({ELEMENTS_IN_TEXT})").count() == 0
    authors = set(page.locator(".comment-author").all_text_contents())
    assert PAYLOADS[14] in authors
    page.close()


def test_payloads_do_not_run_in_the_moderator_queue(chromium, live_app, make_app, article_slug,
                                                    redis_client, empty_word_list):
    app, base = live_app
    if "moderate.queue" not in app.view_functions:
        pytest.skip("the moderator UI (/moderate) is not wired into the app yet")
    # Same Redis, thresholds that hold everything: the payloads land in the review queue.
    hold_app = make_app(**{**APP_CONFIG, "PUBLISH_BELOW": 0.0},
                        WORD_LIST_PATH=empty_word_list)
    _post_all(hold_app.test_client(), article_slug, 202)
    UserStore(redis_client).create("mia", PASSWORD, "moderator")

    page = chromium.new_page()
    dialogs = _watch(page)
    page.goto(f"{base}/login")
    page.fill("#name", "mia")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/moderate**")
    _assert_nothing_ran(page, dialogs)
    content = page.content()
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt; #0" in content  # the payloads are shown
    assert page.locator(f"main .body :is({ELEMENTS_IN_TEXT})").count() == 0
    assert page.locator(f"main .author :is({ELEMENTS_IN_TEXT})").count() == 0
    page.close()
