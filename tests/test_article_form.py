"""A reader adds a comment through the HTML form, without JavaScript."""

from __future__ import annotations

import re

from moderation import comments, keys

HAM = "Great news for Cuba and China, I hope the cooperation continues."
SPAM = (
    "CHECK OUT MY CHANNEL!!! subscribe now http://bit.ly/free-money win a FREE iPhone, click here"
)


def test_article_page_shows_article_and_comment_form(reader):
    page = reader.open_article()
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Communist Parties of Cuba and China highlight ties of friendship" in html
    assert "28 April 2024" in html
    assert "Add new comment" in html
    assert (
        "This question is for testing whether or not you are a human visitor and to prevent "
        "automated spam submissions." in html
    )
    assert "Enter the characters shown in the image." in html
    assert "Get a new image" in html and ">Save<" in html
    assert page.headers["Cache-Control"] == "no-store"


def test_index_shows_the_demo_article(client):
    assert "ties of friendship" in client.get("/").get_data(as_text=True)


def test_unknown_article_is_404(client):
    assert client.get("/articles/no-such-story").status_code == 404


def test_ham_with_right_answer_is_published_after_redirect(reader, redis_client):
    response = reader.post(HAM, author="Ana")
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/articles/{reader.slug}#comments")
    page = reader.client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Your comment has been published" in page
    assert HAM in page and "Ana" in page
    assert redis_client.zcard(keys.article_published(reader.slug)) == 1


def test_spam_with_right_answer_is_not_published(reader, redis_client):
    response = reader.post(SPAM)
    stored = comments.get_many(redis_client, redis_client.zrange(keys.ALL_COMMENTS, 0, -1))
    assert [c.status for c in stored] in (["held"], ["rejected"])
    assert stored[0].score >= 0.5
    if stored[0].status == "held":
        assert response.status_code == 303
        page = reader.client.get(response.headers["Location"]).get_data(as_text=True)
        assert "awaiting moderation" in page and SPAM not in page
    else:  # the form again, the text in its box (the reader may reword it), not listed
        assert response.status_code == 422
        page = response.get_data(as_text=True)
        assert "it looks like spam to our filter" in page and "Your text is still" in page
        assert f">{SPAM}</textarea>" in page and 'class="comment-body"' not in page
        assert 'name="challenge_id"' in page  # a new CAPTCHA for another try


def test_uncertain_comment_is_held_and_found_in_review_queue(make_app, article_slug, redis_client):
    # Thresholds from configuration: nothing is sure enough to publish or reject.
    from tests.conftest import Reader

    app = make_app(PUBLISH_BELOW=0.0, REJECT_AT=1.0)
    reader = Reader(app.test_client(), article_slug)
    response = reader.post(HAM)
    page = reader.client.get(response.headers["Location"]).get_data(as_text=True)
    assert "awaiting moderation" in page
    (held_id,) = redis_client.zrange(keys.REVIEW_QUEUE, 0, -1)
    held = comments.get(redis_client, held_id)
    assert held.body == HAM and held.status == "held" and held.verdict == "hold"
    assert held.model_version and 0.0 <= held.score <= 1.0
    assert HAM not in page


def test_wrong_answer_keeps_text_and_shows_error_next_to_captcha(reader, redis_client):
    response = reader.post(HAM, answer="WRONG1", author="Ana")
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'id="captcha-error"' in html and "did not match" in html
    assert f">{HAM}</textarea>" in html
    assert 'value="Ana"' in html
    assert redis_client.zcard(keys.ALL_COMMENTS) == 0


def test_wrong_answer_keeps_the_challenge_with_a_fresh_image(reader, redis_client):
    # CAPTCHA_MAX_ATTEMPTS (3): a wrong answer re-renders the form with the same
    # challenge, drawn afresh, so a misread character can be re-read; the right
    # answer then goes through.
    page = reader.open_article().get_data(as_text=True)
    fields = reader.form_fields(page)
    data = {**fields, "body": HAM, "captcha_answer": "WRONG1", "action": "save"}
    wrong = reader.client.post(f"/articles/{reader.slug}/comments", data=data)
    html = wrong.get_data(as_text=True)
    assert wrong.status_code == 400
    again = reader.form_fields(html)
    assert again["challenge_id"] == fields["challenge_id"]
    image_url = f"/captcha/{fields['challenge_id']}.png"
    assert f'src="{image_url}"' in html
    assert reader.client.get(image_url).status_code == 200
    retry = reader.client.post(
        f"/articles/{reader.slug}/comments", data={**data, **again, "captcha_answer": "K7PXWM"}
    )
    assert retry.status_code == 303
    assert not redis_client.exists(keys.captcha(fields["challenge_id"]))


def test_wrong_answers_end_the_challenge_after_the_attempt_limit(reader, redis_client):
    page = reader.open_article().get_data(as_text=True)
    first = reader.form_fields(page)
    fields = first
    for _ in range(3):  # CAPTCHA_MAX_ATTEMPTS
        data = {**fields, "body": HAM, "captcha_answer": "WRONG1", "action": "save"}
        response = reader.client.post(f"/articles/{reader.slug}/comments", data=data)
        assert response.status_code == 400
        fields = reader.form_fields(response.get_data(as_text=True))
    assert fields["challenge_id"] != first["challenge_id"]  # a new image to read
    assert not redis_client.exists(keys.captcha(first["challenge_id"]))
    late = {**fields, "challenge_id": first["challenge_id"], "body": HAM,
            "captcha_answer": "K7PXWM", "action": "save"}
    assert reader.client.post(f"/articles/{reader.slug}/comments", data=late).status_code == 400
    assert redis_client.zcard(keys.ALL_COMMENTS) == 0


def test_an_empty_answer_asks_for_the_characters_and_costs_no_attempt(reader, redis_client):
    page = reader.open_article().get_data(as_text=True)
    fields = reader.form_fields(page)
    data = {**fields, "body": HAM, "captcha_answer": "  ", "action": "save"}
    for _ in range(3):  # CAPTCHA_MAX_ATTEMPTS empty sends, and the challenge lives on
        response = reader.client.post(f"/articles/{reader.slug}/comments", data=data)
        html = response.get_data(as_text=True)
        assert response.status_code == 400
        assert "Please enter the characters shown in the image." in html
        assert "did not match" not in html and f">{HAM}</textarea>" in html
        assert reader.form_fields(html)["challenge_id"] == fields["challenge_id"]
    right = {**data, "captcha_answer": "K7PXWM"}
    assert reader.client.post(f"/articles/{reader.slug}/comments", data=right).status_code == 303


def test_reused_challenge_is_refused(reader, redis_client):
    page = reader.open_article().get_data(as_text=True)
    data = {**reader.form_fields(page), "body": HAM, "captcha_answer": "k7pxwm", "action": "save"}
    first = reader.client.post(f"/articles/{reader.slug}/comments", data=data)
    second = reader.client.post(f"/articles/{reader.slug}/comments", data=data)
    assert first.status_code == 303  # lower case answer accepted: case-insensitive
    assert second.status_code == 400
    assert redis_client.zcard(keys.ALL_COMMENTS) == 1


def test_expired_challenge_is_refused(reader, redis_client):
    page = reader.open_article().get_data(as_text=True)
    fields = reader.form_fields(page)
    redis_client.delete(keys.captcha(fields["challenge_id"]))  # what the TTL does
    data = {**fields, "body": HAM, "captcha_answer": "K7PXWM", "action": "save"}
    response = reader.client.post(f"/articles/{reader.slug}/comments", data=data)
    assert response.status_code == 400
    assert "expired" in response.get_data(as_text=True)


def test_new_image_button_keeps_text_and_replaces_challenge(reader, redis_client):
    page = reader.open_article().get_data(as_text=True)
    old = reader.form_fields(page)
    data = {**old, "body": HAM, "author": "Ana", "action": "new_captcha"}
    response = reader.client.post(f"/articles/{reader.slug}/comments", data=data)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f">{HAM}</textarea>" in html
    new = reader.form_fields(html)
    assert new["challenge_id"] != old["challenge_id"]
    assert not redis_client.exists(keys.captcha(old["challenge_id"]))


def test_empty_comment_is_refused_next_to_the_field(reader, redis_client):
    response = reader.post("   ")
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'id="body-error"' in html and "Comment field is required" in html
    assert redis_client.zcard(keys.ALL_COMMENTS) == 0


def test_too_long_comment_is_refused_and_kept(reader):
    long_text = "word " * 1200
    response = reader.post(long_text)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "the limit is 5000" in html
    assert "word word word" in html


def test_missing_csrf_token_rerenders_form_with_text(reader, redis_client):
    page = reader.open_article().get_data(as_text=True)
    fields = reader.form_fields(page)
    data = {"challenge_id": fields["challenge_id"], "body": HAM, "captcha_answer": "K7PXWM"}
    response = reader.client.post(f"/articles/{reader.slug}/comments", data=data)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "expired" in html and HAM in html
    assert redis_client.zcard(keys.ALL_COMMENTS) == 0


def test_a_browser_that_sends_no_cookie_is_not_told_the_form_expired(reader, app):
    # A reader whose browser blocks cookies was told "The form had expired. Please ...
    # press Save again." on every try: the form's check needs the session cookie back.
    fields = reader.form_fields(reader.open_article().get_data(as_text=True))
    cookieless = app.test_client(use_cookies=False)
    data = {**fields, "body": HAM, "captcha_answer": "K7PXWM", "action": "save"}
    response = cookieless.post(f"/articles/{reader.slug}/comments", data=data)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "expired" not in html
    assert "did not send back the cookie" in html and "allow cookies" in html
    assert HAM in html


def test_comments_are_newest_first_and_paginated(make_app, article_slug, redis_client):
    app = make_app(COMMENTS_PER_PAGE=2)
    for number in range(5):
        comment = comments.make_comment(
            article=article_slug, author="", body=f"comment number {number}", user_agent="",
            ip_hash="", score=0.01, model_version="m", verdict="publish", reason="",
            explanation=[], now=1000.0 + number,
        )
        comments.save(redis_client, comment)
    client = app.test_client()
    first = client.get(f"/articles/{article_slug}").get_data(as_text=True)
    assert re.findall(r"comment number (\d)", first) == ["4", "3"]
    assert "Page 1 of 3" in first
    last = client.get(f"/articles/{article_slug}?page=3").get_data(as_text=True)
    assert re.findall(r"comment number (\d)", last) == ["0"]


def test_comment_text_is_escaped(make_app, article_slug):
    from tests.conftest import Reader

    # Publish whatever the model thinks: this test is about rendering, not scoring.
    reader = Reader(make_app(PUBLISH_BELOW=1.0, REJECT_AT=1.0).test_client(), article_slug)
    response = reader.post("<script>alert(1)</script> nice article, thanks")
    page = reader.client.get(response.headers["Location"]).get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_csrf_failure_outside_the_comment_form_is_a_clear_400(app, redis_client):
    # Flask does not handle an exception raised inside an error handler: it must return.
    app.config["PROPAGATE_EXCEPTIONS"] = False
    from flask_wtf.csrf import CSRFError

    with app.test_request_context("/somewhere", method="POST"):
        from moderation.views.articles import handle_csrf_error

        response, status = handle_csrf_error(CSRFError("The CSRF token is missing."))
    assert status == 400


def test_the_spanish_words_on_the_page_are_marked_as_spanish(reader):
    # The page is English (<html lang="en">); a screen reader reads "Fecha de
    # publicación" and "Noticias" with English sounds unless they say they are Spanish.
    html = reader.open_article().get_data(as_text=True)
    assert re.search(r'<[^>]+ lang="es"[^>]*>\s*Fecha de publicación:', html), "date label"
    assert re.search(r'<[^>]+ lang="es"[^>]*>\s*Noticias', html), "site name"


def test_a_page_past_the_last_does_not_say_there_are_no_comments(make_app, article_slug,
                                                                  redis_client):
    # An old link to a last page that no longer exists (comments removed since) said
    # "Comments (3)" above "No comments yet. Be the first." and offered no way back.
    app = make_app(COMMENTS_PER_PAGE=2)
    for number in range(3):
        comments.save(redis_client, comments.make_comment(
            article=article_slug, author="", body=f"comment number {number}", user_agent="",
            ip_hash="", score=0.01, model_version="m", verdict="publish", reason="",
            explanation=[], now=1000.0 + number,
        ))
    html = app.test_client().get(f"/articles/{article_slug}?page=7").get_data(as_text=True)
    assert "Comments (3)" in html
    assert "No comments yet" not in html
    assert f'href="/articles/{article_slug}?page=2#comments"' in html  # the last page
    assert f'href="/articles/{article_slug}?page=1#comments"' in html  # the newest


def test_the_captcha_box_is_described_by_its_help_and_its_error(reader):
    # "Enter the characters shown in the image." was tied to no field, and after a
    # wrong answer the box was described by the error alone.
    def described_by(html: str) -> list[str]:
        tag = re.search(r'<input id="captcha_answer"[^>]*>', html).group(0)
        ids = re.search(r'aria-describedby="([^"]*)"', tag)
        return ids.group(1).split() if ids else []

    fresh = reader.open_article().get_data(as_text=True)
    assert described_by(fresh) == ["captcha-help"]
    assert 'id="captcha-help">Enter the characters shown in the image.' in fresh
    wrong = reader.post(HAM, answer="WRONG").get_data(as_text=True)
    assert described_by(wrong) == ["captcha-help", "captcha-error"]


def test_a_run_of_empty_lines_shows_as_one_blank_line(make_app, article_slug, redis_client):
    # Kept as typed (moderators see it so), but under the article twenty empty lines
    # pushed a screen of blank space into everyone's list.
    body = "\n\nFirst paragraph.\r\n\r\n\r\n  \n\n\n\nSecond paragraph.\n\n\n"
    comment = comments.make_comment(
        article=article_slug, author="", body=body, user_agent="", ip_hash="", score=0.01,
        model_version="m", verdict="publish", reason="", explanation=[],
    )
    comments.save(redis_client, comment)
    html = make_app().test_client().get(f"/articles/{article_slug}").get_data(as_text=True)
    shown = re.search(r'<div class="comment-body"[^>]*>(.*?)</div>', html, re.S).group(1)
    assert shown == "First paragraph.\n\nSecond paragraph."
    assert comments.get(redis_client, comment.id).body == body


def test_the_comment_box_says_its_length_limit_before_it_cuts_a_paste(reader):
    html = reader.open_article().get_data(as_text=True)
    tag = re.search(r'<textarea id="body"[^>]*>', html).group(0)
    assert 'maxlength="5000"' in tag and 'aria-describedby="body-help"' in tag
    assert '<p class="field-help" id="body-help">Up to 5,000 characters.</p>' in html
