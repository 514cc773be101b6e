"""The operators' models page (/moderate/models) with Flask's test client.

Uses conftest's ``reported_models``: the session's trained model (a quick first
model with no report) and a copy of it saved as a later version with a real
evaluation report.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from modhelpers import PASSWORD, log_in, reuse_password_hashes

from moderation import keys, model_registry
from moderation.users import UserStore

HOSTILE = (
    "# A report someone edited\n\n"
    "<script>window.__xss=1</script>\n\n"
    "Inline: <img src=x onerror=\"window.__xss=1\"> and <b onmouseover=alert(1)>bold</b>\n\n"
    "| a | b |\n|---|--:|\n| <script>alert(2)</script> | 1 |\n\n"
    "[click](javascript:alert(3)) ![elsewhere](https://example.com/x.png) "
    "![up](../secret.png)\n"
)


@pytest.fixture
def site(reported_models) -> dict:
    return reported_models


@pytest.fixture
def app(make_app, site):
    return make_app(MODELS_DIR=str(site["models"]), REPORTS_DIR=str(site["reports"]))


@pytest.fixture
def accounts(app, redis_client, monkeypatch):
    reuse_password_hashes(monkeypatch)
    store = UserStore(redis_client)
    store.create("alice", PASSWORD, "moderator")
    store.create("olga", PASSWORD, "operator")


@pytest.fixture
def olga(client, accounts):
    assert log_in(client, "olga").status_code == 303
    return client


def text(response) -> str:
    return response.get_data(as_text=True)


def row(html: str, version: str) -> str:
    match = re.search(rf'<tr id="version-{re.escape(version)}".*?</tr>', html, re.S)
    assert match, f"no table row for {version}"
    return match.group(0)


def test_the_table_lists_every_version_newest_first_with_its_figures(olga, site):
    html = text(olga.get("/moderate/models"))
    first, second = site["first"], site["second"]
    assert html.index(f'id="version-{second}"') < html.index(f'id="version-{first}"')
    meta = model_registry.read_metadata(site["models"], second)
    comments = meta["cv"]["metrics"]["comments"]
    cells = row(html, second)
    assert f"{comments['mcc']:.3f}" in cells
    assert f"{comments['queue_share'] * 100:.1f}%" in cells
    tubespam, sms = site["summary"]["tubespam"], site["summary"]["sms"]
    assert re.search(rf"{tubespam['mean_mcc']:.3f} <span class=\"(pass|fail)\">"
                     rf"{'pass' if tubespam['pass'] else 'fail'}</span>", cells)
    assert re.search(rf"{sms['mcc']:.3f} <span class=\"(pass|fail)\">"
                     rf"{'pass' if sms['pass'] else 'fail'}</span>", cells)
    assert f"publish &lt; {meta['thresholds']['publish_below']:.3f}" in cells
    assert 'href="/moderate/models/' + second + '#report"' in cells
    # The quick first model: no protocols, no report.
    assert row(html, first).count('title="not measured"') == 3
    assert "none</span>" in row(html, first)


def test_current_served_and_rollback_target_follow_what_the_cli_did(
    make_app, site, redis_client, monkeypatch
):
    from training import registry

    first, second = site["first"], site["second"]
    registry.promote(site["models"], second, redis_client)  # as `python -m training promote`
    assert redis_client.get(keys.MODEL_CURRENT) == second
    client = make_app(MODELS_DIR=str(site["models"]),
                      REPORTS_DIR=str(site["reports"])).test_client()
    reuse_password_hashes(monkeypatch)
    UserStore(redis_client).create("olga", PASSWORD, "operator")
    log_in(client, "olga")
    html = text(client.get("/moderate/models"))
    assert re.search(rf'id="current-version"><a [^>]*>{second}</a>\s*<small>\(the Redis record',
                     html)
    assert f"serves <strong>{second}</strong>" in html
    assert re.search(rf'id="previous"><a [^>]*>{first}</a>', html)
    assert f"# back to {first}" in html
    assert 'class="badge">current</strong>' in row(html, second)
    assert "rollback target" in row(html, first)
    detail = text(client.get(f"/moderate/models/{first}"))
    assert f"training promote {first}" in detail
    registry.rollback(site["models"], redis_client)  # as `python -m training rollback`
    html = text(client.get("/moderate/models"))
    assert re.search(rf'id="current-version"><a [^>]*>{first}</a>', html)
    assert "nothing: no version was current before this one" in html


def test_without_a_redis_record_the_page_says_where_current_comes_from(olga, site):
    html = text(olga.get("/moderate/models"))
    current = (site["models"] / model_registry.CURRENT_FILE).read_text().strip()
    assert re.search(rf'id="current-version"><a [^>]*>{current}</a>\s*<small>\(from '
                     r"models/CURRENT", html)


def test_a_version_page_renders_its_report_with_its_own_plots(olga, site):
    second = site["second"]
    response = olga.get(f"/moderate/models/{second}")
    assert response.status_code == 200
    html = text(response)
    assert f"<h3>Evaluation report: model {second}</h3>" in html
    assert "<table>" in html and "TubeSpam protocol" in html
    plots = sorted(p.name for p in (site["reports"] / second).glob("*.png"))
    assert len(plots) == 5
    shown = re.findall(r'<img src="([^"]+)"', html)
    assert sorted(shown) == [f"/moderate/models/{second}/plots/{name}" for name in plots]
    assert 'style="' not in html, "inline styles break the CSP"
    assert 'class="align-right"' in html
    meta = model_registry.read_metadata(site["models"], second)
    assert f"{meta['data']['n_texts']} texts" in html
    for url in shown:
        plot = olga.get(url)
        assert plot.status_code == 200 and plot.mimetype == "image/png"
        assert plot.data.startswith(b"\x89PNG")
        assert plot.headers["Cache-Control"] == "private, no-cache"
        plot.close()


def test_a_version_without_a_report_says_how_to_make_one(olga, site):
    first = site["first"]
    html = text(olga.get(f"/moderate/models/{first}"))
    assert 'id="no-report"' in html
    assert f"python -m training evaluate --version {first}" in html
    assert "<img" not in html


def test_a_hostile_report_is_shown_as_text(make_app, site, accounts, tmp_path, redis_client):
    first = site["first"]
    (tmp_path / first).mkdir()
    (tmp_path / first / "report.md").write_text(HOSTILE, encoding="utf-8")
    (tmp_path / "secret.png").write_bytes(b"\x89PNG not for the page")
    client = make_app(MODELS_DIR=str(site["models"]), REPORTS_DIR=str(tmp_path)).test_client()
    log_in(client, "olga")
    html = text(client.get(f"/moderate/models/{first}"))
    report = html[html.index('<article class="report">'):html.index("</article>")]
    assert "<script" not in report and "onerror" not in report.replace("onerror=&quot;", "")
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in report
    assert "&lt;img src=x onerror=&quot;window.__xss=1&quot;&gt;" in report
    assert "<b" not in report.replace("<br", "")
    assert "javascript:" not in re.sub(r"\[click\]\(javascript:alert\(3\)\)", "", report)
    assert "<img" not in report, "images from elsewhere are left out"
    assert "[image: elsewhere]" in report and "[image: up]" in report
    assert client.get(f"/moderate/models/{first}/plots/..%2Fsecret.png").status_code == 404


@pytest.mark.parametrize("path", [
    "/moderate/models", "/moderate/models/VERSION", "/moderate/models/VERSION/plots/roc.png",
])
def test_moderators_are_refused_and_readers_sent_to_login(client, accounts, site, path):
    path = path.replace("VERSION", site["second"])
    response = client.get(path)
    assert response.status_code == 302 and "/login?next=" in response.headers["Location"]
    log_in(client, "alice")
    response = client.get(path)
    assert response.status_code == 403
    assert "This needs the operator role" in text(response)


def test_only_operators_see_the_nav_link(client, accounts):
    log_in(client, "alice")
    assert 'href="/moderate/models"' not in text(client.get("/moderate/"))


def test_operators_see_the_nav_link(olga):
    assert 'href="/moderate/models">Models</a>' in text(olga.get("/moderate/"))
    assert 'href="/moderate/models">Models</a>' in text(olga.get("/moderate/history"))


@pytest.mark.parametrize("version", [
    "20000101-000000-000000", "nope", "..", ".hidden", "a" * 101, "x%00y", "a%2Fb", "%E2%80%AE",
])
def test_unknown_or_malformed_versions_are_404_pages(olga, version):
    response = olga.get(f"/moderate/models/{version}")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    # "a/b" matches no route at all: the site's own 404 page answers it.
    expected = "no such page" if "%2F" in version else "There is no model version"
    assert expected in text(response)


@pytest.mark.parametrize("name", [
    "report.md", "metrics.json", "../report.md", "..%2Freport.md", "%2E%2E%2Fmetadata.json",
    "..%5Croc.png", "nothere.png", "roc.png%00", "ROC.PNG", ".", "..",
])
def test_only_the_plots_of_a_report_folder_are_served(olga, site, name):
    response = olga.get(f"/moderate/models/{site['second']}/plots/{name}")
    assert response.status_code == 404


@pytest.mark.parametrize("version", ["..", "%2E%2E", "..%2F..", "a%2F..%2F..", "nope"])
def test_plots_of_malformed_or_unknown_versions_are_404(olga, version):
    assert olga.get(f"/moderate/models/{version}/plots/roc.png").status_code == 404


def test_a_plot_linked_outside_the_folder_is_not_served(olga, site, tmp_path):
    """A symlink in the report folder to a file elsewhere is not one of its plots."""
    second = site["second"]
    link = site["reports"] / second / "leak.png"
    target = tmp_path / "outside.png"
    target.write_bytes(b"\x89PNG outside")
    link.symlink_to(target)
    try:
        assert olga.get(f"/moderate/models/{second}/plots/leak.png").status_code == 404
    finally:
        link.unlink()


@pytest.mark.parametrize(("content", "named"), [
    ("{not json", "unreadable metadata"), ("[1, 2]", "not a JSON object"),
])
def test_unreadable_metadata_is_named_not_a_500(make_app, site, accounts, tmp_path, content,
                                                named):
    models = tmp_path / "models"
    shutil.copytree(site["models"] / site["first"], models / site["first"])
    (models / site["first"] / model_registry.METADATA).write_text(content, encoding="utf-8")
    shutil.copytree(site["models"] / site["second"], models / site["second"])
    (models / model_registry.CURRENT_FILE).write_text(site["second"])
    client = make_app(MODELS_DIR=str(models), REPORTS_DIR=str(site["reports"])).test_client()
    log_in(client, "olga")
    html = text(client.get("/moderate/models"))
    assert named in row(html, site["first"])
    response = client.get(f"/moderate/models/{site['first']}")
    assert response.status_code == 200 and named in text(response)


WORKER = (
    "import os, sys; from moderation import metrics\n"
    "metrics.model_switched(None, sys.argv[1])\n"
    "if len(sys.argv) > 2: metrics.model_switched(sys.argv[1], sys.argv[2])\n"
    "print(os.getpid())"
)


def worker_serving(metrics_dir: Path, *versions: str) -> str:
    """Run a process that records the versions it switched through as a gunicorn worker
    does (prometheus_client picks its file-backed values at import, so it must be a
    process of its own); its pid."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    return subprocess.run([sys.executable, "-c", WORKER, *versions], env=env, check=True,
                          capture_output=True, text=True).stdout.strip()


def test_under_gunicorn_every_live_workers_version_is_read_from_the_metrics_dir(
    tmp_path, monkeypatch
):
    """The page lists the live workers' versions, not one gunicorn has marked dead."""
    from prometheus_client import multiprocess

    from moderation import metrics

    old = worker_serving(tmp_path, "v-old")
    new = worker_serving(tmp_path, "v-old", "v-new")
    gone = worker_serving(tmp_path, "v-gone")
    multiprocess.mark_process_dead(int(gone), str(tmp_path))  # gunicorn's child_exit
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(tmp_path))
    assert metrics.served_versions() == {old: "v-old", new: "v-new"}
    monkeypatch.delenv(metrics.MULTIPROC_ENV)
    assert metrics.served_versions() is None


def test_the_page_lists_every_workers_version_under_gunicorn(olga, site, tmp_path,
                                                             monkeypatch):
    pid = worker_serving(tmp_path, site["second"])
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    html = text(olga.get("/moderate/models"))
    assert f"all workers: pid {pid} <strong>{site['second']}</strong>" in html


def test_a_current_file_naming_no_usable_version_is_said_on_the_page_not_a_500(
    make_app, site, accounts, tmp_path
):
    """CURRENT broken while the service runs (Redis has no record): the page lists the
    versions, one of which is to be written there, and says what is wrong with it."""
    models = tmp_path / "models"
    shutil.copytree(site["models"], models)
    client = make_app(MODELS_DIR=str(models), REPORTS_DIR=str(site["reports"])).test_client()
    (models / model_registry.CURRENT_FILE).write_bytes(b"\xff\xfe")
    log_in(client, "olga")
    response = client.get("/moderate/models")
    assert response.status_code == 200
    html = text(response)
    assert f'id="current-problem">{models / "CURRENT"}: not UTF-8 text' in html
    assert site["first"] in html and site["second"] in html
    assert client.get(f"/moderate/models/{site['first']}").status_code == 200
