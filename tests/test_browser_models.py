"""An operator opens the models page and a version's report in real headless Chromium.

The report's plots must load (served by the plot route, allowed by the CSP's
``img-src 'self'``) and the browser must log no Content-Security-Policy violation:
markdown-it writes a table column's alignment as an inline ``style``, which the
site's ``style-src 'self'`` refuses, so the page turns it into a class.
"""

from __future__ import annotations

import re

import pytest
from modhelpers import PASSWORD

from moderation.users import UserStore

pytestmark = pytest.mark.browser


def test_an_operator_sees_the_versions_and_a_report_with_its_plots(
    make_live_server, page, reported_models, redis_client
):
    site = reported_models
    server = make_live_server(MODELS_DIR=str(site["models"]), REPORTS_DIR=str(site["reports"]))
    UserStore(redis_client).create("olga", PASSWORD, "operator")
    console: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))

    page.goto(f"{server.url}/moderate/")
    page.fill("#name", "olga")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.click("nav.mod-nav >> text=Models")
    assert page.url == f"{server.url}/moderate/models"
    rows = page.locator("table.models-table tbody tr")
    assert rows.count() == 2
    assert rows.nth(0).get_attribute("id") == f"version-{site['second']}"

    page.click(f"#version-{site['second']} a[href$='#report']")
    assert re.search(rf"/moderate/models/{site['second']}#report$", page.url)
    page.wait_for_load_state("load")
    images = page.locator(".report img")
    assert images.count() == 5
    widths = images.evaluate_all("imgs => imgs.map(img => [img.complete, img.naturalWidth])")
    assert all(done and width > 0 for done, width in widths), widths
    violations = [line for line in console if "Content Security Policy" in line]
    assert violations == [], violations
    assert page.locator(".report table th.align-right").count() > 0
