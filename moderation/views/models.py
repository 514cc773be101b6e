"""The operators' models page at /moderate/models: versions, their reports, which one serves.

Read-only. Promotion and rollback stay in ``python -m training``: they run the
comparison checks of ``training/``, which this package never imports; the page
shows the commands instead.
"""

from __future__ import annotations

import json
import os

from flask import Blueprint, current_app, render_template, send_from_directory, url_for

from .. import metrics, model_catalog, model_registry, report_html
from ..auth import current_user, login_required
from ..errors import ApiError
from ..redis_store import get_redis
from ..scoring import get_scorer
from ..users import OPERATOR
from .common import no_store

bp = Blueprint("models", __name__, url_prefix="/moderate/models")


def _not_found(version: str) -> ApiError:
    return ApiError(404, "not_found", f"There is no model version '{version[:100]}'.")


def _dirs() -> tuple[str, str]:
    return current_app.config["MODELS_DIR"], current_app.config["REPORTS_DIR"]


def _overrides() -> dict[str, float]:
    """Thresholds set by PUBLISH_BELOW / REJECT_AT, which win over every model's own."""
    names = {"publish_below": "PUBLISH_BELOW", "reject_at": "REJECT_AT"}
    return {name: current_app.config[setting] for name, setting in names.items()
            if current_app.config.get(setting) is not None}


@bp.get("")
@login_required(OPERATOR)
def index():
    models_dir, reports_dir = _dirs()
    found = model_catalog.catalog(models_dir, reports_dir, get_redis())
    html = render_template(
        "moderate/models.html",
        catalog=found,
        this_worker=(os.getpid(), get_scorer().version),
        workers=metrics.served_versions(),
        overrides=_overrides(),
        user=current_user(),
    )
    return no_store(current_app.make_response(html))


@bp.get("/<version>")
@login_required(OPERATOR)
def version(version: str):
    models_dir, reports_dir = _dirs()
    if version not in model_registry.list_versions(models_dir):
        raise _not_found(version)
    metadata, problem = model_catalog.metadata_of(models_dir, version)
    plots = model_catalog.plot_files(reports_dir, version)
    markdown = model_catalog.read_report(reports_dir, version)

    def plot_url(src: str) -> str | None:
        return url_for("models.plot", version=version, name=src) if src in plots else None

    current, _, _ = model_catalog.current_of(models_dir, get_redis())
    html = render_template(
        "moderate/model.html",
        version=version,
        summary=model_catalog.summarize(metadata, version, markdown is not None),
        metadata=metadata,
        metadata_json=json.dumps(metadata, indent=2, sort_keys=True, default=str),
        problem=problem,
        report=None if markdown is None
        else report_html.render(markdown, plot_url, heading_levels_down=2),
        report_path=str(model_catalog.report_dir(reports_dir, version)),
        recorded_report=model_catalog.recorded_report(metadata),
        current=current,
        previous=model_catalog.rollback_target(get_redis(), current),
        overrides=_overrides(),
        user=current_user(),
    )
    return no_store(current_app.make_response(html))


@bp.get("/<version>/plots/<name>")
@login_required(OPERATOR)
def plot(version: str, name: str):
    """One PNG of ``version``'s report folder, and nothing else: the name must be one
    of the folder's own plots (``model_catalog.plot_files``), so ``..``, other
    suffixes and other folders are 404 before any path is built from it."""
    models_dir, reports_dir = _dirs()
    if not model_registry.valid_version(version) or name not in model_catalog.plot_files(
        reports_dir, version
    ):
        raise ApiError(404, "not_found", "There is no such plot in that report.")
    response = send_from_directory(
        model_catalog.report_dir(reports_dir, version), name, mimetype="image/png"
    )
    # Operators only: no shared cache keeps it; `evaluate` may rewrite it (ETag revalidates).
    response.headers["Cache-Control"] = "private, no-cache"
    return response
