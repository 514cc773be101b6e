"""A moderator works the queue in real headless Chromium, keyboard first.

Logs in, sees the queue, approves the top comment with the ``a`` hotkey, selects
a duplicate group with ``x`` and bulk-rejects it, then finds the approved comment
on the article page and the rejected ones gone. Uses the shared ``live_server``
and ``page`` fixtures (tests/conftest.py, browser section).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from modhelpers import PASSWORD, held
from playwright.sync_api import expect

from moderation import keys
from moderation.queue import ReviewQueue
from moderation.users import UserStore

pytestmark = pytest.mark.browser

GOOD = "I really enjoyed this report on the visit, thank you."
CAMPAIGN = [
    "WIN a FREE phone at cheap-deals now",
    "win a free PHONE at cheap-deals NOW!",
    "Win a free phone at cheap-deals now",
]
OTHER = "Is there a source for the second paragraph?"


@pytest.fixture
def seeded(redis_client, article_slug):
    good = held(
        redis_client,
        GOOD,
        article=article_slug,
        score=0.9,
        explanation=[{"feature": "thank", "kind": "term", "weight": 0.4}],
    )
    campaign = [
        held(
            redis_client,
            text,
            article=article_slug,
            score=0.8 - i / 100,
            explanation=[{"feature": "free", "kind": "term", "weight": 1.4}],
        )
        for i, text in enumerate(CAMPAIGN)
    ]
    other = held(redis_client, OTHER, article=article_slug, score=0.3)
    UserStore(redis_client).create("mia", PASSWORD, "moderator")
    return good, campaign, other


def log_in(page, base: str, name: str = "mia") -> None:
    page.goto(f"{base}/moderate/")
    assert re.search(r"/login\?next=", page.url), "readers are sent to the login page"
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/moderate/**")


def test_moderator_clears_the_queue_with_the_keyboard(
    live_server, page, seeded, redis_client, article_slug
):
    good, campaign, other = seeded
    log_in(page, live_server.url)

    # The queue: depth, one row per group, the riskiest first and under the cursor.
    assert page.inner_text("#queue-depth") == "5"
    rows = page.locator("li.group")
    assert rows.count() == 3
    assert GOOD in rows.nth(0).inner_text()
    assert "3 similar comments" in rows.nth(1).inner_text()
    assert page.locator("li.group.current").count() == 1 and "current" in rows.nth(0).get_attribute(
        "class"
    )
    assert page.locator("li.group").nth(1).locator("mark").first.inner_text().lower() == "free"

    # ? shows the key list, Escape hides it; j/k move the cursor.
    page.keyboard.press("?")
    assert page.locator("#help").is_visible()
    page.keyboard.press("Escape")
    assert not page.locator("#help").is_visible()
    page.keyboard.press("j")
    assert "current" in rows.nth(1).get_attribute("class")
    page.keyboard.press("k")
    assert "current" in rows.nth(0).get_attribute("class")

    # a approves the current comment.
    with page.expect_navigation():
        page.keyboard.press("a")
    assert "Approved 1 comment" in page.inner_text(".flash")
    assert page.inner_text("#queue-depth") == "4"
    assert redis_client.zscore(keys.article_published(article_slug), good.id) is not None

    # The campaign is now the first row and under the cursor: x selects it, then bulk reject.
    first = page.locator("li.group").nth(0)
    assert "3 similar comments" in first.inner_text() and "current" in first.get_attribute("class")
    page.keyboard.press("x")
    assert page.inner_text("#selected-count") == "1"
    page.select_option("#reject-reason", "advertising")
    with page.expect_navigation():
        page.click("button.bulk-reject")
    assert "Rejected 3 comment" in page.inner_text(".flash")
    assert page.inner_text("#queue-depth") == "1"
    assert page.locator("li.group").count() == 1 and OTHER in page.inner_text("li.group")

    # The history page shows both decisions with who made them.
    page.click("text=History")
    history = page.inner_text("table.history")
    assert history.count("mia") == 4 and "advertising" in history.lower()

    # The article page shows the approved comment and none of the rejected ones.
    page.goto(f"{live_server.url}/articles/{article_slug}")
    bodies = page.locator(".comment-body").all_inner_texts()
    assert GOOD in bodies
    assert not any(text in body for text in CAMPAIGN for body in bodies)
    assert OTHER not in " ".join(bodies), "still held, so not shown"
    assert all(redis_client.hget(keys.comment(c.id), "status") == "rejected" for c in campaign)


def test_hotkeys_do_nothing_while_typing_in_a_filter(live_server, page, seeded, redis_client):
    log_in(page, live_server.url)
    page.click("input[name=min_score]")
    page.keyboard.press("a")
    page.wait_for_timeout(300)
    assert redis_client.xlen(keys.DECISIONS) == 0
    assert page.inner_text("#queue-depth") == "5"


def test_two_moderators_claim_and_a_claim_can_be_released_from_the_page(
    live_server, browser, seeded, redis_client
):
    """The page offered Claim but no Release: a claim made by mistake kept the comments
    from every other moderator for LEASE_SECONDS (10 minutes)."""
    good = seeded[0]
    UserStore(redis_client).create("noa", PASSWORD, "moderator")
    pages = {}
    for name in ("mia", "noa"):
        pages[name] = browser.new_context().new_page()
        pages[name].set_default_timeout(10_000)
        log_in(pages[name], live_server.url, name)
    mia, noa = pages["mia"], pages["noa"]
    row = f"li.group[data-ids='{good.id}']"

    mia.check(f"{row} input[name=ids]")
    with mia.expect_navigation():
        mia.click("button[value=claim]")
    assert "Claimed 1 comment" in mia.inner_text(".flash")

    noa.check(f"{row} input[name=ids]")
    with noa.expect_navigation():
        noa.click("button[value=claim]")
    assert "Nothing was changed" in noa.inner_text("body")
    assert "claimed by mia" in noa.inner_text(row)

    mia.check(f"{row} input[name=ids]")
    with mia.expect_navigation():
        mia.click("button[value=release]")
    assert "Released 1 comment" in mia.inner_text(".flash")
    assert ReviewQueue(redis_client).holders([good.id]) == {}

    noa.goto(f"{live_server.url}/moderate/")
    noa.check(f"{row} input[name=ids]")
    with noa.expect_navigation():
        noa.click("button[value=claim]")
    assert "Claimed 1 comment" in noa.inner_text(".flash")
    assert ReviewQueue(redis_client).holders([good.id])[good.id][0] == "noa"
    for page in pages.values():
        page.context.close()


def test_a_moderator_away_too_long_is_told_and_returns_to_the_queue(
    live_server, page, seeded, redis_client
):
    good = seeded[0]
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/moderate/?sort=age")
    assert page.locator("li.group").count() == 3
    # The moderator walks away: the session's last activity is two hours ago now.
    for key in redis_client.keys(keys.session("*")):
        redis_client.hset(key, "seen", repr(time.time() - 2 * 3600))
    with page.expect_navigation():
        page.keyboard.press("a")  # back at the desk, approves without looking
    assert "/login?next=" in page.url
    notice = page.inner_text("#login-notice")
    assert "You were logged out after 1 hour without activity." in notice
    assert "What you last sent was not carried out." in notice
    assert redis_client.hget(keys.comment(good.id), "status") == "held"
    page.fill("#name", "mia")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/moderate/?sort=age")
    assert page.locator("li.group").count() == 3 and page.locator("#login-notice").count() == 0


def on_the_second_row(page, base: str) -> str:
    """Logged in, the queue oldest first, the second row current (j): its ids."""
    log_in(page, base)
    page.goto(f"{base}/moderate/?sort=age")
    second = page.locator("li.group").nth(1).get_attribute("data-ids")
    page.keyboard.press("j")
    return second


def test_reject_without_a_reason_then_a_reload_sends_nothing(
    live_server, page, seeded, redis_client
):
    # The refusal used to be the POST's answer, served at /moderate/act: a reload sent
    # the form again (Chromium's "Confirm Form Resubmission"). Now it is a redirect
    # back to the queue, at the same row, with the message and the reasons focused.
    second = on_the_second_row(page, live_server.url)
    with page.expect_navigation():
        page.keyboard.press("r")
    assert page.url == f"{live_server.url}/moderate/?sort=age#pos-1"
    assert page.inner_text("#mod-error") == "Rejecting needs a reason code."
    assert page.evaluate("document.activeElement.id") == "reject-reason"
    assert page.eval_on_selector(
        "#reject-reason", "e => getComputedStyle(e).borderTopColor") == "rgb(179, 0, 27)"
    assert page.locator("li.group.current").get_attribute("data-ids") == second
    assert redis_client.xlen(keys.DECISIONS) == 0

    sent = []
    page.on("request", lambda request: sent.append((request.method, request.url)))
    page.reload()
    assert sent and all(method == "GET" for method, _ in sent), sent
    assert page.dialogs == []
    assert page.url == f"{live_server.url}/moderate/?sort=age#pos-1"
    assert page.locator("#mod-error").count() == 0, "the message is said once"
    assert page.locator("li.group.current").get_attribute("data-ids") == second
    assert redis_client.xlen(keys.DECISIONS) == 0


def test_after_choosing_a_reason_escape_goes_back_to_the_comment(
    live_server, page, seeded, redis_client
):
    # Keyboard only: the hotkeys do nothing in the reasons list, and the way back to
    # the row was Tab through the toolbar and every row before it.
    second = on_the_second_row(page, live_server.url)
    page.focus("#reject-reason")
    page.keyboard.press("ArrowDown")
    assert page.input_value("#reject-reason") != ""
    page.keyboard.press("Escape")
    assert page.evaluate("document.activeElement.dataset.ids") == second
    with page.expect_navigation():
        page.keyboard.press("r")
    assert page.inner_text(".flash") == f"Rejected {len(second.split(','))} comment(s)."
    assert {redis_client.hget(keys.comment(cid), "status") for cid in second.split(",")} == {
        "rejected"}


COVERED = """() => {
    const toolbar = document.querySelector('.toolbar').getBoundingClientRect();
    const row = document.querySelector('li.group.current').getBoundingClientRect();
    return {id: document.querySelector('li.group.current').id,
            covered: Math.max(0, toolbar.bottom - Math.max(row.top, toolbar.top)),
            toolbar: toolbar.height};
}"""


@pytest.fixture
def long_queue(redis_client, article_slug):
    UserStore(redis_client).create("mia", PASSWORD, "moderator")
    topics = ["rice", "oil", "tourism", "medicine", "ports", "schools", "rail", "banks",
              "music", "films", "sugar", "coffee"]
    return [held(redis_client, f"A question about {topic} and the visit, {i} times over.",
                 article=article_slug, score=0.9 - i / 100) for i, topic in enumerate(topics)]


def test_the_row_scrolled_to_is_not_under_the_sticky_toolbar(live_server, page, long_queue):
    # After a decision the queue comes back at #pos-N, scrolled so that row was at the
    # window's top: under the toolbar, which hid its author and score (92 px at
    # 1400 x 900). Moving up with k did the same.
    page.set_viewport_size({"width": 1000, "height": 600})
    log_in(page, live_server.url)
    for _ in range(6):
        page.keyboard.press("j")
    with page.expect_navigation():
        page.keyboard.press("a")
    found = page.evaluate(COVERED)
    assert found["id"] == "pos-6" and found["toolbar"] > 40
    assert found["covered"] == 0, found
    for _ in range(6):
        page.keyboard.press("k")
        found = page.evaluate(COVERED)
        assert found["covered"] == 0, found
    assert found["id"] == "pos-0"


def test_a_narrow_window_keeps_the_toolbar_in_its_place(live_server, page, long_queue):
    # At 320 px the toolbar wraps to five lines; kept on screen it covered 216 of 640 px.
    page.set_viewport_size({"width": 320, "height": 640})
    log_in(page, live_server.url)
    for _ in range(6):
        page.keyboard.press("j")
    toolbar = page.locator(".toolbar").bounding_box()
    assert toolbar["y"] + toolbar["height"] <= 0, "scrolled away with the page"
    with page.expect_navigation():
        page.keyboard.press("a")
    found = page.evaluate(COVERED)
    assert found["id"] == "pos-6" and found["covered"] == 0, found


def test_enter_on_a_checked_row_sends_nothing(live_server, page, seeded, redis_client):
    # Enter in a checkbox submits its form with the form's first button: that was
    # "Approve selected", so Enter on a checked row published the selection.
    log_in(page, live_server.url)
    box = page.locator("li.group").nth(0).locator("input[name=ids]")
    box.focus()
    page.keyboard.press("Space")
    assert box.is_checked()
    sent = []
    page.on("request", lambda request: sent.append(request.method))
    page.keyboard.press("Enter")
    page.wait_for_timeout(500)
    assert "POST" not in sent and redis_client.xlen(keys.DECISIONS) == 0
    assert box.is_checked() and page.inner_text("#queue-depth") == "5"


def test_enter_on_a_checked_row_without_javascript_changes_nothing(
    live_server, browser, seeded, redis_client
):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(10_000)
    log_in(page, live_server.url)
    box = page.locator("li.group").nth(0).locator("input[name=ids]")
    box.focus()
    page.keyboard.press("Space")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.inner_text("#mod-error").startswith("Nothing was changed: Enter does not decide.")
    assert page.locator("li.group").nth(0).locator("input[name=ids]").is_checked()
    assert redis_client.xlen(keys.DECISIONS) == 0
    context.close()


LEASE = 4.0  # seconds: long enough to see a claim, short enough to see it run out


def holder_of(page, ids: str):
    return page.locator(f"li.group[data-ids='{ids}'] .holder")


#: A computer that sleeps: Chromium's performance.now() stands still meanwhile (Linux,
#: macOS), while the wall clock runs on. Here it stands still from the first reading.
ASLEEP = """(() => {
    const real = performance.now.bind(performance);
    let first = null;
    performance.now = () => (first === null ? (first = real()) : first);
})()"""


@pytest.mark.parametrize(("skew", "asleep"), [(-3600, False), (3600, False), (0, True)],
                         ids=["clock an hour behind", "an hour ahead", "asleep"])
def test_a_claim_that_runs_out_says_so_without_a_reload(
    live_server, page, seeded, redis_client, skew, asleep
):
    # The row read "claimed by ben" until the page was reloaded, long after ben's lease
    # had run out: mia left a free comment alone. Now it says until when, and turns
    # "lapsed" when the lease ends, by the server's count, whatever the browser's clock says.
    good = seeded[0]
    page.clock.set_system_time(datetime.now(UTC) + timedelta(seconds=skew))
    if asleep:
        page.add_init_script(ASLEEP)
    log_in(page, live_server.url)
    assert page.evaluate("Date.now() / 1000") - time.time() == pytest.approx(skew, abs=60)
    ReviewQueue(redis_client, lease_seconds=LEASE).claim("ben", [good.id])
    claimed_at, claimed_wall = time.monotonic(), time.time()
    page.goto(f"{live_server.url}/moderate/")
    row, holder = page.locator(f"li.group[data-ids='{good.id}']"), holder_of(page, good.id)
    assert re.fullmatch(r"claimed by ben until \d\d:\d\d UTC", holder.inner_text())
    assert "claimed" in row.get_attribute("class").split()
    until = datetime.fromisoformat(holder.locator("time").get_attribute("datetime"))
    assert until.timestamp() == pytest.approx(claimed_wall + LEASE, abs=1.5)  # whole seconds
    assert 0 < float(holder.get_attribute("data-lease-left")) <= LEASE

    sent = []
    page.on("request", lambda request: sent.append(request.url))
    expect(holder).to_have_text(
        re.compile(r"claim by ben lapsed at \d\d:\d\d UTC: free again"), timeout=15_000)
    assert time.monotonic() - claimed_at >= LEASE - 0.1, "not before the lease ran out"
    assert ReviewQueue(redis_client).holders([good.id]) == {}
    assert "claimed" not in row.get_attribute("class").split()
    assert sent == [], "no reload"

    with page.expect_navigation():  # the first row is the current one
        page.keyboard.press("a")
    assert "Approved 1 comment" in page.inner_text(".flash")


def test_c_claims_the_current_comment_and_the_key_list_says_so(
    live_server, page, seeded, redis_client
):
    second = on_the_second_row(page, live_server.url)
    page.keyboard.press("?")
    keys_listed = dict(zip(page.locator("#help dt").all_inner_texts(),
                           page.locator("#help dd").all_inner_texts(), strict=True))
    assert keys_listed["c"].startswith("claim for 10 min")
    page.keyboard.press("Escape")
    with page.expect_navigation():
        page.keyboard.press("c")
    holders = ReviewQueue(redis_client).holders(second.split(","))
    assert {who for who, _ in holders.values()} == {"mia"} and len(holders) == 3
    assert page.locator("li.group.current").get_attribute("data-ids") == second
    holder = holder_of(page, second)
    assert re.fullmatch(r"claimed by mia \(all 3\) until \d\d:\d\d UTC", holder.inner_text())
    # The message said "for 600 s" where the row says until when: now both, one clock.
    until = holder.locator("time").inner_text()
    assert page.inner_text(".flash") == f"Claimed 3 comment(s) for 10 min, until {until}."
    assert redis_client.xlen(keys.DECISIONS) == 0


def test_my_lapsed_claim_says_so_and_the_server_still_decides(
    make_live_server, page, seeded, redis_client
):
    # Mia's own claim ran out while she read: the page said she held it, and her
    # decision was refused once noa had claimed the comment. The page now says the
    # claim lapsed; the server still refuses, as before, and says who holds it now.
    server = make_live_server(LEASE_SECONDS=LEASE)
    second = on_the_second_row(page, server.url)
    with page.expect_navigation():
        page.keyboard.press("c")
    assert holder_of(page, second).inner_text().startswith("claimed by mia (all 3) until")
    expect(holder_of(page, second)).to_have_text(
        re.compile(r"claim by mia \(all 3\) lapsed at .*: free again"), timeout=15_000)
    ReviewQueue(redis_client).claim("noa", second.split(","))
    with page.expect_navigation():
        page.keyboard.press("s")
    assert "Nothing was changed" in page.inner_text("#mod-error")
    assert "is claimed by noa" in page.inner_text("#mod-error")
    assert {redis_client.hget(keys.comment(cid), "status") for cid in second.split(",")} == {
        "held"}


def test_without_javascript_a_claim_says_until_when_and_a_lapsed_one_can_be_decided(
    live_server, browser, seeded, redis_client
):
    good = seeded[0]
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(10_000)
    log_in(page, live_server.url)
    queue = ReviewQueue(redis_client, lease_seconds=LEASE)
    queue.claim("ben", [good.id])
    page.goto(f"{live_server.url}/moderate/")
    holder = holder_of(page, good.id)
    assert re.fullmatch(r"claimed by ben until \d\d:\d\d UTC", holder.inner_text())
    deadline = time.monotonic() + 15
    while queue.holders([good.id]):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    # The page still says "claimed" (nothing updates it), yet the comment is free:
    # the server decides, as it always did.
    assert holder.inner_text().startswith("claimed by ben")
    with page.expect_navigation():
        page.click(f"li.group[data-ids='{good.id}'] button.act-approve")
    assert "Approved 1 comment" in page.inner_text(".flash")
    context.close()


def test_every_claim_on_a_group_is_shown_and_each_lapses_on_its_own(
    live_server, page, seeded, redis_client
):
    # Only the group's first comment's claim was shown: with ben and noa holding the
    # other two, the row read as free, and "Reject all 3" was refused, naming them.
    first, *others = seeded[1]
    ids = ",".join(c.id for c in seeded[1])
    ReviewQueue(redis_client, lease_seconds=LEASE).claim("ben", [others[0].id])
    ReviewQueue(redis_client).claim("noa", [others[1].id])
    log_in(page, live_server.url)
    row = page.locator(f"li.group[data-ids='{ids}']")
    holders = row.locator(".holder")
    assert holders.count() == 2
    texts = holders.all_inner_texts()
    assert re.fullmatch(r"claimed by ben \(1 of 3\) until \d\d:\d\d UTC", texts[0]), texts
    assert re.fullmatch(r"claimed by noa \(1 of 3\) until \d\d:\d\d UTC", texts[1]), texts
    assert "claimed" in row.get_attribute("class").split()

    # ben's lease runs out: his claim says so; noa still holds one, so the row stays greyed.
    expect(holders.nth(0)).to_have_text(
        re.compile(r"claim by ben \(1 of 3\) lapsed at \d\d:\d\d UTC: free again"),
        timeout=15_000)
    assert holders.nth(1).inner_text().startswith("claimed by noa (1 of 3) until")
    assert page.inner_text("#lease-news") == (
        "Claim by ben (1 of 3) on \u2018WIN a FREE phone at cheap-deals\u2026\u2019 lapsed: "
        "free again.")
    assert "claimed" in row.get_attribute("class").split()
    assert "lapsed" not in (holders.nth(1).get_attribute("class") or "")


def test_a_holder_of_several_comments_of_a_group_is_counted_once(
    live_server, page, seeded, redis_client
):
    campaign = seeded[1]
    ids = ",".join(c.id for c in campaign)
    ReviewQueue(redis_client).claim("ben", [c.id for c in campaign[1:]])
    log_in(page, live_server.url)
    [text] = page.locator(f"li.group[data-ids='{ids}'] .holder").all_inner_texts()
    assert re.fullmatch(r"claimed by ben \(2 of 3\) until \d\d:\d\d UTC", text)
