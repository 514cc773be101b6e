"""A site's own articles, from ARTICLES_DIR, beside the shipped demo article."""

from pathlib import Path

import pytest

from moderation.articles import ArticleError, default_article, load_articles, shipped_articles
from tests.conftest import CAPTCHA_TEXT

LOCAL_NEWS = """Council approves the new river bridge

Fecha de publicación:
28/11/2026

The city council voted on Thursday to build a second bridge over the river.
Work is to start in spring.

Add new comment
"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_sites_article_is_served_and_takes_comments(make_app, tmp_path):
    write(tmp_path / "articles", "bridge.txt", LOCAL_NEWS)
    client = make_app(ARTICLES_DIR=str(tmp_path / "articles")).test_client()
    slug = "council-approves-the-new-river-bridge"

    page = client.get(f"/articles/{slug}")
    assert page.status_code == 200
    assert b"Council approves the new river bridge" in page.data
    assert b"Add new comment" in page.data
    assert client.get("/").status_code == 200  # the front page is still the shipped one
    assert default_article().title.encode() in client.get("/").data

    challenge = client.post("/api/v1/challenges").get_json()
    posted = client.post(f"/api/v1/articles/{slug}/comments", json={
        "body": "Good news for everyone who drives to work across the old one.",
        "challenge_id": challenge["id"], "captcha_answer": CAPTCHA_TEXT})
    assert posted.status_code in (201, 202, 422), posted.get_json()
    assert client.get(f"/api/v1/comments/{posted.get_json()['id']}").status_code == 200


def test_each_article_links_to_the_others(make_app, tmp_path):
    write(tmp_path / "articles", "bridge.txt", LOCAL_NEWS)
    client = make_app(ARTICLES_DIR=str(tmp_path / "articles")).test_client()
    front = client.get("/").data.decode()
    assert 'href="/articles/council-approves-the-new-river-bridge"' in front
    bridge = client.get("/articles/council-approves-the-new-river-bridge").data.decode()
    assert f'href="/articles/{default_article().slug}"' in bridge
    assert 'href="/articles/council-approves-the-new-river-bridge"' not in bridge


def test_without_the_setting_only_the_shipped_article_exists(client):
    assert client.get("/articles/council-approves-the-new-river-bridge").status_code == 404
    page = client.get(f"/articles/{default_article().slug}")
    assert page.status_code == 200 and b"More articles" not in page.data


def test_two_articles_with_one_slug_are_refused_naming_both_files(tmp_path):
    first = write(tmp_path, "a.txt", LOCAL_NEWS)
    second = write(tmp_path, "b.txt", LOCAL_NEWS)
    with pytest.raises(ArticleError) as refused:
        load_articles([tmp_path])
    assert str(second) in str(refused.value) and str(first) in str(refused.value)


@pytest.mark.parametrize("content, problem", [
    (b"", "no title"),
    (b"\n  \n", "no title"),
    (b"\xff\xfe not utf-8 \xff", "cannot read it as UTF-8"),
])
def test_an_article_file_that_cannot_be_served_is_named(tmp_path, content, problem):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(content)
    with pytest.raises(ArticleError, match=problem) as refused:
        load_articles([tmp_path])
    assert str(bad) in str(refused.value)


def test_a_missing_folder_stops_the_app_with_its_name(make_app, tmp_path):
    with pytest.raises(ArticleError, match="not a folder of articles"):
        make_app(ARTICLES_DIR=str(tmp_path / "nowhere"))


def test_the_shipped_article_keeps_its_slug():
    assert list(shipped_articles()) == [default_article().slug]
