"""Security headers on every response; 413 and validation on every endpoint."""

from __future__ import annotations

import sys
import unicodedata

import pytest

from moderation import keys
from moderation.schemas import clean_text

PAGES = ["/", "/articles/{slug}", "/articles/no-such-story", "/api/v1/form-token",
         "/api/v1/articles/{slug}/comments", "/static/site.css"]


def csp_directives(response) -> dict[str, str]:
    header = response.headers["Content-Security-Policy"]
    pairs = [part.strip().split(" ", 1) for part in header.split(";") if part.strip()]
    return {name: value for name, value in pairs}


@pytest.mark.parametrize("path", PAGES)
def test_every_response_has_the_headers(client, article_slug, path):
    response = client.get(path.format(slug=article_slug))
    csp = csp_directives(response)
    assert csp["script-src"] == "'self'"  # no 'unsafe-inline', no 'unsafe-eval'
    assert csp["default-src"] == "'self'" and csp["object-src"] == "'none'"
    assert csp["base-uri"] == "'none'" and csp["frame-ancestors"] == "'none'"
    assert "unsafe" not in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_headers_are_set_once_with_the_whole_policy(client, article_slug):
    response = client.get(f"/articles/{article_slug}")
    assert response.headers.getlist("Content-Security-Policy") == [
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "media-src 'self'; connect-src 'self'; font-src 'self'; form-action 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ]
    assert response.headers.getlist("Permissions-Policy") == ["browsing-topics=()"]
    assert response.headers.getlist("X-Frame-Options") == ["DENY"]
    assert "Strict-Transport-Security" not in response.headers  # the TLS proxy's job


def test_frame_ancestors_self_maps_to_sameorigin(make_app, article_slug):
    response = make_app(FRAME_ANCESTORS="'self'").test_client().get(f"/articles/{article_slug}")
    assert csp_directives(response)["frame-ancestors"] == "'self'"
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"


def test_frame_ancestors_is_configurable(make_app, article_slug):
    client = make_app(FRAME_ANCESTORS="'self' https://news.example").test_client()
    response = client.get(f"/articles/{article_slug}")
    assert csp_directives(response)["frame-ancestors"] == "'self' https://news.example"
    assert "X-Frame-Options" not in response.headers  # it cannot express a list


def test_no_inline_script_or_handlers_in_our_pages(client, article_slug):
    html = client.get(f"/articles/{article_slug}").get_data(as_text=True)
    assert "<script>" not in html and " onclick=" not in html and " onload=" not in html


def test_http_is_not_redirected_and_cookie_settings_are_ours(make_app, article_slug):
    app = make_app()
    assert app.config["SESSION_COOKIE_SECURE"] is False  # Talisman did not force it
    assert app.test_client().get(f"/articles/{article_slug}").status_code == 200


def test_oversized_form_post_gets_a_readable_413_page(client, article_slug, redis_client):
    response = client.post(
        f"/articles/{article_slug}/comments",
        data={"body": "x" * (70 * 1024)},
        headers={"Accept": "text/html"},
    )
    assert response.status_code == 413
    assert response.mimetype == "text/html"
    assert "request body is too large" in response.get_data(as_text=True)
    assert redis_client.zcard(keys.ALL_COMMENTS) == 0


@pytest.mark.parametrize(
    ("query", "field"),
    [("page=0", "page"), ("page=abc", "page"), ("per_page=101", "per_page"),
     ("per_page=-1", "per_page"), ("page=99999999999999999999", "page")],
)
def test_listing_query_is_validated(client, article_slug, query, field):
    response = client.get(f"/api/v1/articles/{article_slug}/comments?{query}")
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == field


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("a\x00b", "ab"),  # NUL
        ("a\x07\x1bb", "ab"),  # other C0 controls
        ("line1\r\nline2\rline3", "line1\nline2\nline3"),
        ("tab\tkept", "tab\tkept"),
        ("cafe\u0301", "caf\u00e9"),  # NFC
        ("evil\u202etxt.exe", "eviltxt.exe"),  # bidi override
        ("\ud800x", "x"),  # lone surrogate
    ],
)
def test_clean_text(raw, clean):
    assert clean_text(raw) == clean


def test_clean_text_drops_exactly_controls_surrogates_and_bidi_controls():
    """Every code point, against the rule as first written character by character:
    keep newline and tab, drop categories Cc and Cs and the bidi controls."""
    bidi = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
    every = "".join(map(chr, range(sys.maxunicode + 1)))
    normalized = unicodedata.normalize("NFC", every.replace("\r", "\n"))
    kept = "".join(
        ch for ch in normalized
        if ch in "\n\t" or (unicodedata.category(ch) not in ("Cc", "Cs") and ch not in bidi)
    )
    assert clean_text(every) == kept


def test_nul_and_controls_are_removed_before_storage(make_app, article_slug, redis_client):
    client = make_app(PUBLISH_BELOW=1.0, REJECT_AT=1.0).test_client()
    challenge = client.post("/api/v1/challenges").get_json()
    body = "Nice\x00 report\u202e about\x1b the parties."
    response = client.post(f"/api/v1/articles/{article_slug}/comments", json={
        "body": body, "author": "An\x00a", "challenge_id": challenge["id"],
        "captcha_answer": "K7PXWM",
    })
    assert response.status_code == 201
    listed = client.get(f"/api/v1/articles/{article_slug}/comments").get_json()["comments"][0]
    assert listed["body"] == "Nice report about the parties." and listed["author"] == "Ana"


def test_invalid_utf8_json_is_a_400(client, article_slug):
    response = client.post(f"/api/v1/articles/{article_slug}/comments",
                           data=b'{"body": "\xff\xfe"}', content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_json"
