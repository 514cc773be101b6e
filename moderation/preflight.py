"""What gunicorn's master checks before it forks the workers (gunicorn.conf.py).

A worker that cannot boot logs a traceback, gunicorn gives up with "Worker failed to
boot", and the cause is lost in the noise. What a worker would refuse at start is
checked here once and said in one message: the settings, the models folder's
``CURRENT``, threshold overrides against the current model's own thresholds, the
site's articles. Cheap on purpose: the
model's metadata is read, not the model, and Redis is not asked (the embedded one is
not running yet), so the current version is the models folder's (``CURRENT``, else
the newest), as when Redis has no record.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import model_registry
from .articles import CONTENT_DIR, ArticleError, load_articles
from .config import ConfigError, from_environment, server_settings


def check() -> dict[str, Any]:
    """The app's settings, or :class:`ConfigError` saying everything found wrong."""
    server_settings()
    settings = from_environment()
    check_current_file(settings)
    check_thresholds(settings)
    check_articles(settings)
    return settings


def check_current_file(settings: dict[str, Any]) -> None:
    """The models folder's ``CURRENT``, when there is one, must name a version there.

    Every worker reads it when Redis has no record of the current version (a fresh
    Redis, or one down at start) and would fail to boot on one it cannot use.
    """
    try:
        model_registry.current_from_file(settings["MODELS_DIR"])
    except (model_registry.ModelNotFound, model_registry.ArtifactError) as exc:
        raise ConfigError(str(exc)) from None


def check_thresholds(settings: dict[str, Any]) -> None:
    """One threshold override must fit the other threshold, the model's own.

    Both set are compared with each other in config.py; a model that is missing or
    unreadable is for the worker to report (``make run`` trains one first).
    """
    publish_below, reject_at = settings["PUBLISH_BELOW"], settings["REJECT_AT"]
    if (publish_below is None) == (reject_at is None):
        return
    models_dir = settings["MODELS_DIR"]
    try:
        version = model_registry.current_version(models_dir)
        thresholds = model_registry.read_metadata(models_dir, version)["thresholds"]
        model_publish, model_reject = (float(thresholds["publish_below"]),
                                       float(thresholds["reject_at"]))
    except (model_registry.ModelNotFound, model_registry.ArtifactError,
            KeyError, TypeError, ValueError):
        return
    if publish_below is not None and publish_below > model_reject:
        raise ConfigError(
            f"PUBLISH_BELOW ({publish_below}) is above the model's reject threshold "
            f"{model_reject:g} (version {version}); lower it or set REJECT_AT too"
        )
    if reject_at is not None and reject_at < model_publish:
        raise ConfigError(
            f"REJECT_AT ({reject_at}) is below the model's publish threshold "
            f"{model_publish:g} (version {version}); raise it or set PUBLISH_BELOW too"
        )


def check_articles(settings: dict[str, Any]) -> None:
    """Every bad file in ARTICLES_DIR at once (the workers read the same files)."""
    if not settings.get("ARTICLES_DIR"):
        return
    try:
        load_articles([CONTENT_DIR, Path(settings["ARTICLES_DIR"])])
    except ArticleError as exc:
        raise ConfigError(str(exc)) from None


def main() -> int:
    """``python -m moderation.preflight``: what ``make run`` and the Docker image run
    before anything else, so a bad setting is one line and exit 2 there too, not a
    traceback of whichever step (or gunicorn itself) reads it first."""
    import sys

    try:
        check()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
