"""The article page and the JSON list serve kept copies of their listing -- never stale ones.

Each worker keeps the rendered comment list and the JSON of a page (comments.PageCache)
and reuses them while Redis reports the same page. These tests change the published
set behind the app's back, the way another worker, the moderator UI or the purge
command would, and check the very next page view shows the change.
"""

from __future__ import annotations

import re
import time

import pytest
from modhelpers import held

from moderation import comments, keys
from moderation.queue import ReviewQueue
from moderation.retention import purge
from moderation.views.articles import SLOTS


def publish(redis_client, slug: str, body: str, *, now: float, author: str = "") -> str:
    comment = comments.make_comment(
        article=slug, author=author, body=body, user_agent="", ip_hash="", score=0.01,
        model_version="m", verdict="publish", reason="", explanation=[], now=now,
    )
    comments.save(redis_client, comment)
    return comment.id


def page_bodies(client, slug: str, page: int = 1) -> list[str]:
    html = client.get(f"/articles/{slug}?page={page}").get_data(as_text=True)
    return re.findall(r'<div class="comment-body"[^>]*>([^<]*)</div>', html)


def listed_bodies(client, slug: str, page: int = 1) -> list[str]:
    answer = client.get(f"/api/v1/articles/{slug}/comments?page={page}").get_json()
    return [comment["body"] for comment in answer["comments"]]


def seen_by_both(client, slug: str) -> tuple[list[str], list[str]]:
    """The page's and the list's bodies, each asked twice so the second answer is a kept copy."""
    for _ in range(2):
        shown = page_bodies(client, slug), listed_bodies(client, slug)
    return shown


@pytest.fixture
def queue(redis_client):
    return ReviewQueue(redis_client, lease_seconds=600)


def test_a_comment_published_elsewhere_shows_on_the_next_view(client, article_slug, redis_client):
    publish(redis_client, article_slug, "first", now=1000)
    assert seen_by_both(client, article_slug) == (["first"], ["first"])
    publish(redis_client, article_slug, "second", now=1001)  # another worker's submission
    assert page_bodies(client, article_slug) == ["second", "first"]
    assert listed_bodies(client, article_slug) == ["second", "first"]
    html = client.get(f"/articles/{article_slug}").get_data(as_text=True)
    assert "Comments (2)" in html


def test_a_comment_posted_through_the_form_shows_after_the_redirect(reader, redis_client):
    publish(redis_client, reader.slug, "already there", now=1000)
    seen_by_both(reader.client, reader.slug)
    response = reader.post("Great news for Cuba and China, I hope the cooperation continues.")
    page = reader.client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Your comment has been published" in page
    assert "I hope the cooperation continues." in page and "Comments (2)" in page


@pytest.mark.parametrize("action", ["approve", "ham"])
def test_approving_shows_the_comment_and_undo_hides_it_again(
    client, article_slug, redis_client, queue, action
):
    publish(redis_client, article_slug, "published before", now=1000)
    waiting = held(redis_client, "held for review", article=article_slug, now=2000)
    assert seen_by_both(client, article_slug) == (["published before"], ["published before"])

    queue.decide("mod", [waiting.id], action)
    assert seen_by_both(client, article_slug) == (
        ["held for review", "published before"], ["held for review", "published before"])

    queue.undo("mod", waiting.id)
    assert page_bodies(client, article_slug) == ["published before"]
    assert listed_bodies(client, article_slug) == ["published before"]
    assert "Comments (1)" in client.get(f"/articles/{article_slug}").get_data(as_text=True)


@pytest.mark.parametrize(("action", "reason"), [("reject", "off_topic"), ("spam", "")])
def test_rejecting_a_held_comment_never_shows_it(
    client, article_slug, redis_client, queue, action, reason
):
    publish(redis_client, article_slug, "published before", now=1000)
    waiting = held(redis_client, "held for review", article=article_slug, now=2000)
    seen_by_both(client, article_slug)
    queue.decide("mod", [waiting.id], action, reason)
    assert seen_by_both(client, article_slug) == (["published before"], ["published before"])
    queue.undo("mod", waiting.id)
    assert seen_by_both(client, article_slug) == (["published before"], ["published before"])


def test_purge_leaves_published_pages_as_they_were(client, article_slug, redis_client):
    now = time.time()
    publish(redis_client, article_slug, "old but published", now=now - 400 * 86400)
    rejected = comments.make_comment(
        article=article_slug, author="", body="old rejected", user_agent="", ip_hash="",
        score=0.99, model_version="m", verdict="reject", reason="r", explanation=[],
        now=now - 40 * 86400,
    )
    comments.save(redis_client, rejected)
    before = seen_by_both(client, article_slug)
    assert purge(redis_client, rejected_days=30, held_days=0, now=now).rejected == 1
    assert seen_by_both(client, article_slug) == before == (
        ["old but published"], ["old but published"])


def test_moderation_never_edits_what_a_listing_shows(redis_client, queue, article_slug):
    # The kept copies rely on this: a stored comment's public fields never change, so
    # the ids on a page (and the count) say everything about what it shows.
    def public(comment_id):
        return redis_client.hmget(keys.comment(comment_id), comments.PUBLIC_FIELDS)

    for action, reason in (("approve", ""), ("ham", ""), ("reject", "other"), ("spam", "")):
        waiting = held(redis_client, f"held {action}", article=article_slug)
        before = public(waiting.id)
        queue.decide("mod", [waiting.id], action, reason)
        assert public(waiting.id) == before
        queue.undo("mod", waiting.id)
        assert public(waiting.id) == before


def test_older_pages_follow_when_a_new_comment_pushes_one_down(
    make_app, article_slug, redis_client
):
    client = make_app(COMMENTS_PER_PAGE=2).test_client()
    for number in range(4):
        publish(redis_client, article_slug, f"comment {number}", now=1000 + number)
    for _ in range(2):
        second = client.get(f"/articles/{article_slug}?page=2").get_data(as_text=True)
    assert re.findall(r"comment (\d)", second) == ["1", "0"] and "Page 2 of 2" in second
    publish(redis_client, article_slug, "comment 4", now=1004)
    second = client.get(f"/articles/{article_slug}?page=2").get_data(as_text=True)
    assert re.findall(r"comment (\d)", second) == ["2", "1"] and "Page 2 of 3" in second
    assert 'rel="next"' in second
    listed = client.get(f"/api/v1/articles/{article_slug}/comments?page=2&per_page=2").get_json()
    assert [c["body"] for c in listed["comments"]] == ["comment 2", "comment 1"]
    assert (listed["total"], listed["pages"]) == (5, 3)


def test_kept_comment_list_is_still_escaped(client, article_slug, redis_client):
    publish(redis_client, article_slug, "<script>alert(1)</script>", now=1000,
            author='<img src=x onerror="alert(2)">')
    for _ in range(2):
        html = client.get(f"/articles/{article_slug}").get_data(as_text=True)
        assert "<script>alert(1)</script>" not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "&lt;img src=x onerror=&#34;alert(2)&#34;&gt;" in html


def test_pager_links_follow_the_mount_point(make_app, article_slug, redis_client):
    client = make_app(COMMENTS_PER_PAGE=1).test_client()
    for number in range(2):
        publish(redis_client, article_slug, f"comment {number}", now=1000 + number)
    at_root = client.get(f"/articles/{article_slug}").get_data(as_text=True)
    mounted = client.get(f"/articles/{article_slug}", base_url="http://localhost/news")
    assert f'href="/articles/{article_slug}?page=2#comments"' in at_root
    assert f'href="/news/articles/{article_slug}?page=2#comments"' in mounted.get_data(
        as_text=True)


def test_every_view_gets_a_fresh_form(client, article_slug, redis_client):
    publish(redis_client, article_slug, "a comment", now=1000)
    first, second = (client.get(f"/articles/{article_slug}").get_data(as_text=True)
                     for _ in range(2))

    def challenge(html):
        return re.search(r'name="challenge_id" value="([^"]+)"', html).group(1)

    assert challenge(first) != challenge(second)
    for html in (first, second):
        assert redis_client.ttl(keys.captcha(challenge(html))) > 0


# -- the listing read and its kept copies, without Flask --------------------------------


def test_a_known_page_comes_back_as_its_stamp_alone(redis_client):
    publish(redis_client, "s", "one", now=1000)
    first = comments.list_published(redis_client, "s")
    assert [c.body for c in first.comments] == ["one"] and first.total == 1
    unchanged = comments.PageQuery("s", 1, 20, known_stamp=first.stamp)
    assert comments.read_page(redis_client, unchanged) is None
    publish(redis_client, "s", "two", now=1001)
    changed = comments.read_page(redis_client, unchanged)
    assert [c.body for c in changed.comments] == ["two", "one"]
    assert changed.total == 2 and changed.stamp != first.stamp


def test_an_empty_page_is_known_too(redis_client):
    empty = comments.list_published(redis_client, "nothing-here")
    assert (empty.comments, empty.total, empty.pages) == ([], 0, 1)
    query = comments.PageQuery("nothing-here", 1, 20, known_stamp=empty.stamp)
    assert comments.read_page(redis_client, query) is None


def test_page_cache_drops_the_least_recently_used_beyond_its_size():
    cache = comments.PageCache(max_chars=10)
    cache.put("a", "s1", "aaaa")
    cache.put("b", "s1", "bbbb")
    assert cache.get("a") == ("s1", "aaaa")  # a is now the most recently used
    cache.put("c", "s1", "cccc")
    assert cache.get("b") == ("", None) and len(cache) == 2
    cache.put("a", "s2", "AAAAAA")  # replacing frees the old copy's size first
    assert cache.get("a") == ("s2", "AAAAAA") and cache.get("c") == ("s1", "cccc")
    cache.put("huge", "s1", "x" * 11)
    assert cache.get("huge") == ("", None)


def test_reading_is_never_rate_limited_but_posting_still_is(make_app, article_slug):
    client = make_app(RATE_LIMIT_PER_IP="2 per minute").test_client()
    for _ in range(4):
        assert client.get(f"/articles/{article_slug}").status_code == 200
        assert client.get(f"/api/v1/articles/{article_slug}/comments").status_code == 200
    answers = [client.post(f"/api/v1/articles/{article_slug}/comments", json={"body": "hi"})
               for _ in range(3)]
    assert [a.status_code for a in answers][-1] == 429


def _tokens(html: str) -> dict[str, str]:
    found = dict(re.findall(r'name="(csrf_token|form_token|challenge_id)" value="([^"]*)"', html))
    found["image"] = re.search(r'src="([^"]*/captcha/[^"]*)"', html).group(1)
    return found


def test_a_page_rendered_once_with_slots_equals_one_rendered_for_the_reader(
    app, redis_client, article_slug
):
    """The shared copy, filled with a reader's tokens, is byte for byte the full render."""
    from moderation.views.articles import _render_page, fill_slots

    publish(redis_client, article_slug, "A <b>bold</b> & 'quoted' comment", now=time.time())
    article = __import__("moderation.articles", fromlist=["get_article"]).get_article(
        article_slug)
    values = {"csrf_token": "IjA1Yz.aBc-_.x9", "form_token": "MTcw.OTk-_.sig",
              "challenge_id": "Zq3-_abcDEF0123456789xyz"}
    context = {"article": article, "total": 1, "comment_list": "<ol></ol>"}
    with app.test_request_context(f"/articles/{article_slug}"):
        full = _render_page(context, values, form={}, errors={})
        shell = _render_page(context, SLOTS, form={}, errors={})
    assert fill_slots(shell, values) == full
    assert not any(slot in full for slot in SLOTS.values())


def test_every_view_of_the_shared_page_gets_its_own_tokens(client, article_slug):
    first = client.get(f"/articles/{article_slug}").get_data(as_text=True)
    client.delete_cookie("session")
    second = client.get(f"/articles/{article_slug}").get_data(as_text=True)
    a, b = _tokens(first), _tokens(second)
    assert a.keys() == b.keys() == {"csrf_token", "form_token", "challenge_id", "image"}
    assert all(a[name] != b[name] for name in a)
    assert a["challenge_id"] in a["image"]
    assert not any(slot in first + second for slot in SLOTS.values())


def test_a_flash_message_is_shown_once_and_not_kept_in_the_shared_page(reader):
    response = reader.post("Thank you for this clear report on the harbour works.")
    after = reader.client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Thank you! Your comment has been" in after
    again = reader.client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Thank you! Your comment has been" not in again


def test_the_shared_page_without_a_captcha_has_none(make_app, article_slug):
    """Adaptive policy: the plain view shows no challenge, however often it is served."""
    client = make_app(CHALLENGE_POLICY="adaptive").test_client()
    for _ in range(2):
        html = client.get(f"/articles/{article_slug}").get_data(as_text=True)
        assert 'name="challenge_id"' not in html and "captcha-image" not in html
        assert not any(slot in html for slot in SLOTS.values())
