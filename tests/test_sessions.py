"""Session cookies: Flask's format and keys, with the serializer built once per key set."""

from __future__ import annotations

from flask.sessions import SecureCookieSessionInterface

from moderation.sessions import SessionCookies


def test_the_serializer_is_reused_until_the_secret_changes(make_app):
    app = make_app()
    interface = app.session_interface
    assert isinstance(interface, SessionCookies)
    first = interface.get_signing_serializer(app)
    assert interface.get_signing_serializer(app) is first
    app.secret_key = "rotated"
    assert interface.get_signing_serializer(app) is not first


def test_cookies_are_those_flask_itself_signs_and_reads(make_app):
    app = make_app()
    flask_own = SecureCookieSessionInterface().get_signing_serializer(app)
    ours = app.session_interface.get_signing_serializer(app)
    cookie = flask_own.dumps({"csrf_token": "abc"})
    assert ours.loads(cookie) == {"csrf_token": "abc"}
    assert flask_own.loads(ours.dumps({"n": 1})) == {"n": 1}


def test_a_cookie_signed_before_a_key_rotation_still_opens(make_app):
    app = make_app()
    old_cookie = app.session_interface.get_signing_serializer(app).dumps({"n": 2})
    app.config["SECRET_KEY_FALLBACKS"] = [app.secret_key]
    app.secret_key = "new-secret"
    assert app.session_interface.get_signing_serializer(app).loads(old_cookie) == {"n": 2}


def test_the_article_form_still_round_trips_its_csrf_session(reader):
    """The form's CSRF token lives in the session cookie: posting it back must work."""
    response = reader.post("Thank you for this clear report on the harbour works.")
    assert response.status_code == 303
    reader.client.delete_cookie("session")
    refused = reader.client.post(f"/articles/{reader.slug}/comments", data={"body": "x"})
    assert refused.status_code == 400
