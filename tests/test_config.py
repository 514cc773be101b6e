"""A setting the service cannot run with stops it at start, in one line naming it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from moderation.config import ConfigError, from_environment

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def private_var_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MODERATION_VAR_DIR", str(tmp_path / "var"))


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TRUSTED_PROXIES", "x", "expected a whole number of at least 0"),
        ("TRUSTED_PROXIES", "-1", "expected a whole number of at least 0"),
        ("PUBLISH_BELOW", "2", "expected a number from 0.0 to 1.0"),
        ("REJECT_AT", "abc", "expected a number from 0.0 to 1.0"),
        ("BODY_TIMEOUT_SECONDS", "nan", "expected a number of at least 0.1"),
        ("BODY_TIMEOUT_SECONDS", "inf", "expected a number of at least 0.1"),
        ("LEASE_SECONDS", "0", "expected a number of at least 1.0"),
        ("CAPTCHA_LENGTH_MAX", "99", "expected a whole number from 1 to 20"),
        ("RATE_LIMIT_PER_IP", "lots", "expected limits such as"),
        ("RATE_LIMIT_STRATEGY", "token-bucket", "expected one of sliding-window-counter"),
        ("CHALLENGE_POLICY", "never", "expected one of always, remember, adaptive"),
        ("FILL_TIME_ACTION", "drop", "expected one of hold, reject"),
        ("LOG_LEVEL", "verbose", "expected one of DEBUG"),
        # Read as "off" before: a secure cookie the operator asked for was not secure.
        # The words it takes are listed, not only 1 and 0.
        ("SESSION_COOKIE_SECURE", "on", "expected 1 or 0 (true/false and yes/no work too)"),
        # redis-py refused it only in each worker, in a traceback.
        ("REDIS_URL", "bogus://x", "expected a URL starting redis://, rediss://, unix://"),
        ("SESSION_IDLE_MINUTES", "-5", "expected a whole number from 0 to 44640"),
        ("SESSION_IDLE_MINUTES", "1.5", "expected a whole number from 0 to 44640"),
        ("SESSION_MAX_HOURS", "0", "expected a whole number from 1 to 8784"),
        ("API_TOKEN_DAYS", "4000", "expected a whole number from 0 to 3650"),
        ("API_TOKEN_DAYS", "never", "expected a whole number from 0 to 3650"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as refused:
        from_environment()
    assert str(refused.value).startswith(f"{name}=")
    assert message in str(refused.value)


@pytest.mark.parametrize(
    ("low", "high"),
    [("CAPTCHA_LENGTH_MIN", "CAPTCHA_LENGTH_MAX"), ("PUBLISH_BELOW", "REJECT_AT")],
)
def test_a_range_whose_ends_are_swapped_is_refused(monkeypatch, low, high):
    monkeypatch.setenv(low, "0.9" if low == "PUBLISH_BELOW" else "9")
    monkeypatch.setenv(high, "0.5" if high == "REJECT_AT" else "6")
    with pytest.raises(ConfigError, match=f"{low} .* is above {high}"):
        from_environment()


@pytest.mark.parametrize("value", ["http://moderation:s3cret@db:6379/0", "moderation:s3cret@db"])
def test_a_redis_url_refused_keeps_its_password_to_itself(monkeypatch, value):
    monkeypatch.setenv("REDIS_URL", value)
    with pytest.raises(ConfigError, match="^REDIS_URL.*: expected a URL starting redis://") \
            as refused:
        from_environment()
    assert "s3cret" not in str(refused.value)


@pytest.mark.parametrize("value", ["redis://h:6379/0", "rediss://u:p@h", "unix:///x.sock"])
def test_the_redis_url_schemes_redis_py_takes_are_accepted(monkeypatch, value):
    monkeypatch.setenv("REDIS_URL", value)
    assert from_environment()["REDIS_URL"] == value


def test_defaults_and_usual_spellings_are_accepted(monkeypatch):
    for name, value in {"LOG_LEVEL": "debug", "SESSION_COOKIE_SECURE": "true",
                        "RATE_LIMIT_PER_IP": "10/minute", "MIN_FILL_SECONDS": "0",
                        "REPEAT_WINDOW_SECONDS": "0", "TRUSTED_PROXIES": " 1 "}.items():
        monkeypatch.setenv(name, value)
    settings = from_environment()
    assert settings["LOG_LEVEL"] == "DEBUG" and settings["SESSION_COOKIE_SECURE"] is True
    assert settings["TRUSTED_PROXIES"] == 1 and settings["MIN_FILL_SECONDS"] == 0.0


def test_gunicorn_stops_at_once_with_one_line(tmp_path):
    env = {**os.environ, "TRUSTED_PROXIES": "two", "BIND": "127.0.0.1:0",
           "MODERATION_VAR_DIR": str(tmp_path / "var")}
    done = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "moderation.wsgi:app"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2
    assert "configuration error: TRUSTED_PROXIES='two': expected a whole number" in done.stderr
    assert "Traceback" not in done.stderr and "Booting worker" not in done.stderr


def bad_articles(folder: Path) -> Path:
    """Three files a worker would refuse: no title, not UTF-8, a second 'Same title'."""
    folder.mkdir()
    (folder / "a.txt").write_text("\n\n")
    (folder / "b.txt").write_bytes(b"\xff\xfe")
    (folder / "c.txt").write_text("Same title\nOne text.\n")
    (folder / "d.txt").write_text("Same title\nAnother text.\n")
    return folder


def start_gunicorn(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "BIND": "127.0.0.1:0", "MODERATION_VAR_DIR": str(tmp_path / "var"),
           **env}
    return subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "moderation.wsgi:app"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60,
    )


@pytest.mark.parametrize(("env", "line"), [
    # Each of these booted workers that failed with a traceback, or gunicorn's own.
    ({"REDIS_URL": "bogus://user:s3cret@x"},
     "configuration error: REDIS_URL='bogus://...': expected a URL starting redis://"),
    ({"WEB_CONCURRENCY": "0"},
     "configuration error: WEB_CONCURRENCY='0': expected a whole number of at least 1"),
    ({"BIND": "127.0.0.1:99999"},
     "configuration error: BIND='127.0.0.1:99999': expected a port from 0 to 65535"),
    ({"BIND": "localhost:http"},
     "configuration error: BIND='localhost:http': 'http' is not a valid port number."),
])
def test_gunicorn_stops_at_once_on_what_a_worker_would_refuse(tmp_path, env, line):
    done = start_gunicorn(env, tmp_path)
    assert done.returncode == 2, done.stderr
    assert line in done.stderr
    assert "Traceback" not in done.stderr and "Booting worker" not in done.stderr
    assert "s3cret" not in done.stderr


def test_every_bad_article_file_is_named_in_one_message(tmp_path):
    done = start_gunicorn({"ARTICLES_DIR": str(bad_articles(tmp_path / "articles"))}, tmp_path)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "Booting worker" not in done.stderr
    message = done.stderr[done.stderr.index("configuration error"):].splitlines()
    assert message == [
        "configuration error: 3 article files cannot be served (ARTICLES_DIR):",
        f"{tmp_path}/articles/a.txt: no title (the first non-empty line, with letters)",
        f"{tmp_path}/articles/b.txt: cannot read it as UTF-8 text: 'utf-8' codec can't "
        "decode byte 0xff in position 0: invalid start byte",
        f"{tmp_path}/articles/d.txt: its title gives the slug 'same-title', "
        f"like {tmp_path}/articles/c.txt",
    ]


@pytest.mark.parametrize(("name", "which", "words"), [
    ("PUBLISH_BELOW", "reject_at", "is above the model's reject threshold"),
    ("REJECT_AT", "publish_below", "is below the model's publish threshold"),
])
def test_one_threshold_is_checked_against_the_models_other(tmp_path, models_dir, name,
                                                            which, words):
    from moderation.model_registry import current_version, read_metadata

    version = current_version(models_dir)
    own = read_metadata(models_dir, version)["thresholds"][which]
    value = round((own + 1.0) / 2 if name == "PUBLISH_BELOW" else own / 2, 6)
    done = start_gunicorn({name: str(value), "MODELS_DIR": str(models_dir)}, tmp_path)
    assert done.returncode == 2, done.stderr
    assert (f"configuration error: {name} ({value}) {words} {own:g} (version {version})"
            in done.stderr)
    assert "Traceback" not in done.stderr and "Booting worker" not in done.stderr


WORKER_COUNT_LINE = ("configuration error: WEB_CONCURRENCY={!r}: expected a whole number "
                     "of at least 1")


@pytest.mark.parametrize(("env", "line"), [
    # gunicorn reads WEB_CONCURRENCY on import, before any of its hooks; a blank one too.
    ({"WEB_CONCURRENCY": "abc"}, WORKER_COUNT_LINE.format("abc")),
    ({"WEB_CONCURRENCY": ""}, WORKER_COUNT_LINE.format("") + " (unset it for the default, 2)"),
    ({"REDIS_URL": "bogus://x"},
     "configuration error: REDIS_URL='bogus://...': expected a URL starting redis://"),
])
def test_make_run_checks_the_settings_before_any_other_step(tmp_path, env, line):
    # As a user types it, not as a make inside `make test` (which would say "make[1]").
    outer = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS")}
    env = {**outer, "MODERATION_VAR_DIR": str(tmp_path), **env}
    done = subprocess.run(["make", "--no-print-directory", "run"],
                          cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    first, *rest = done.stderr.splitlines()
    assert first.startswith(line), done.stderr
    # make names the step that failed: the check, not the model or the voices.
    assert rest == [f"make: *** [Makefile:{makefile_line('config:') + 1}: config] Error 2"]
    assert "ensure-model" not in done.stdout


def makefile_line(prefix: str) -> int:
    lines = (PROJECT_ROOT / "Makefile").read_text().splitlines()
    return next(number for number, text in enumerate(lines, 1) if text.startswith(prefix))


def test_the_docker_image_checks_the_settings_before_gunicorn_reads_them(tmp_path):
    """The image runs gunicorn directly, not `make run`: its CMD starts with the check."""
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    command = json.loads(dockerfile[dockerfile.rindex("\nCMD ") + 5:].strip())
    assert command[:2] == ["sh", "-c"]
    env = {**os.environ, "WEB_CONCURRENCY": "two", "MODERATION_VAR_DIR": str(tmp_path),
           "MODELS_DIR": str(tmp_path / "models"),
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == WORKER_COUNT_LINE.format("two")
    assert not (tmp_path / "models").exists()  # nothing trained before the check


def test_make_voices_says_it_in_one_line_too(tmp_path):
    env = {**os.environ, "CAPTCHA_LENGTH_MIN": "0", "MODERATION_VAR_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c",
         "import sys; from moderation.captcha_audio import make_voices; sys.exit(make_voices())"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "configuration error: CAPTCHA_LENGTH_MIN='0': expected a whole number from 1 to 20"
    )


def test_a_flask_command_says_it_in_one_line_too(tmp_path):
    env = {**os.environ, "LOG_LEVEL": "chatty", "MODERATION_VAR_DIR": str(tmp_path)}
    env.pop("REDIS_URL", None)
    done = subprocess.run(
        [str(Path(sys.executable).with_name("flask")), "--app", "moderation", "users", "list"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "Error: configuration error: LOG_LEVEL='CHATTY': expected one of DEBUG, INFO, "
        "WARNING, ERROR, CRITICAL"
    )


@pytest.mark.parametrize("value", [None, "", "  "])
def test_reports_dir_defaults_to_where_the_training_cli_writes(monkeypatch, value):
    from training.cli import default_reports_dir

    if value is None:
        monkeypatch.delenv("REPORTS_DIR", raising=False)
    else:
        monkeypatch.setenv("REPORTS_DIR", value)
    assert from_environment()["REPORTS_DIR"] == str(PROJECT_ROOT / "reports")
    assert default_reports_dir() == PROJECT_ROOT / "reports"


def test_reports_dir_is_read_from_the_environment(monkeypatch, tmp_path):
    from training.cli import default_reports_dir

    monkeypatch.setenv("REPORTS_DIR", str(tmp_path / "elsewhere"))
    assert from_environment()["REPORTS_DIR"] == str(tmp_path / "elsewhere")
    assert default_reports_dir() == tmp_path / "elsewhere"


def test_a_blank_var_dir_is_the_default_not_the_working_folder(monkeypatch):
    from moderation.config import var_dir

    monkeypatch.setenv("MODERATION_VAR_DIR", "")
    assert var_dir() == PROJECT_ROOT / "var"


@pytest.mark.parametrize(("content", "words"), [
    (b"\xff\xfe2026\n", "not UTF-8 text, so it names no model version"),
    (b"20990101-000000-ffffff\n", "names model version '20990101-000000-ffffff', which is "
                                  "not in {models}"),
])
def test_the_start_up_check_names_a_current_file_naming_no_usable_version(
    tmp_path, models_dir, content, words
):
    """Workers read CURRENT when Redis has no record (a fresh one, or one down at start)
    and failed to boot on it with a traceback; the check passed it."""
    models = tmp_path / "models"
    shutil.copytree(models_dir, models)
    (models / "CURRENT").write_bytes(content)
    done = subprocess.run([sys.executable, "-m", "moderation.preflight"], cwd=PROJECT_ROOT,
                          env={**os.environ, "MODELS_DIR": str(models)}, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    words = words.format(models=models)
    assert done.stderr.splitlines() == [
        f"configuration error: {models / 'CURRENT'}: {words}; write the current version's "
        "id in it (`python -m training list` lists them) or remove it"]
