"""What the operators' models page shows: every trained version, its figures and its report.

Read-only, and from what is already on disk and in Redis: ``MODELS_DIR/<version>/
metadata.json`` (written by ``python -m training``), ``REPORTS_DIR/<version>/``
(its evaluation report) and the Redis records of the current version and of the
versions before it (``keys.MODEL_CURRENT``, ``keys.MODEL_HISTORY``). Promoting and
rolling back stay in the training CLI, which runs the comparison checks that this
package must not import. No Flask here: the view shapes the answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import redis

from . import model_registry
from .model_registry import ArtifactError, ModelNotFound

REPORT_FILE = "report.md"
#: The only files of a report folder the page serves: its plots.
PLOT_SUFFIX = ".png"


@dataclass(frozen=True)
class Protocol:
    """One evaluation protocol's headline figure and verdict, as ``training list`` shows it."""

    name: str
    label: str
    mcc: float | None
    passed: bool | None


@dataclass(frozen=True)
class VersionSummary:
    """One version's line of the models table."""

    version: str
    created: str = ""
    #: Cross-validated MCC and queue share of the comments (every text but SMS), or of
    #: all texts for versions saved before the comments' figures were recorded apart.
    mcc: float | None = None
    queue_share: float | None = None
    all_texts: bool = False
    protocols: tuple[Protocol, ...] = ()
    thresholds: dict[str, float] = field(default_factory=dict)
    kind: str = "standard"
    quick: bool = False
    has_report: bool = False
    #: Why the metadata could not be read ("" when it could).
    problem: str = ""

    @property
    def evaluated(self) -> bool:
        return any(p.mcc is not None for p in self.protocols)


PROTOCOLS = (
    # (summary key, label, key-score name, figure of the protocol's own summary)
    ("tubespam", "TubeSpam", "tubespam_mean_mcc", "mean_mcc"),
    ("sms", "SMS", "sms_mcc", "mcc"),
    ("lovo", "LOVO", "lovo_mean_mcc", "mean_mcc"),
)


def _number(value: Any) -> float | None:
    """A finite number from the metadata, else None (a field never measured)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def protocols_of(metadata: dict[str, Any]) -> tuple[Protocol, ...]:
    """TubeSpam, SMS and leave-one-video-out: figure and pass/fail (None: not run)."""
    evaluation = _dict(metadata.get("evaluation"))
    key, summary = _dict(evaluation.get("key")), _dict(evaluation.get("protocols"))
    found = []
    for name, label, key_name, own_figure in PROTOCOLS:
        result = _dict(summary.get(name))
        passed = result.get("pass")
        found.append(Protocol(
            name, label, _number(key.get(key_name, result.get(own_figure))),
            passed if isinstance(passed, bool) else None,
        ))
    return tuple(found)


def summarize(metadata: dict[str, Any], version: str, has_report: bool) -> VersionSummary:
    """The table line of one version from its metadata.json."""
    metrics = _dict(_dict(metadata.get("cv")).get("metrics"))
    comments = _dict(metrics.get("comments"))
    figures = comments or metrics
    thresholds = {name: value for name in ("publish_below", "reject_at")
                  if (value := _number(_dict(metadata.get("thresholds")).get(name))) is not None}
    return VersionSummary(
        version=version,
        created=str(metadata.get("created") or ""),
        mcc=_number(figures.get("mcc")),
        queue_share=_number(figures.get("queue_share")),
        all_texts=bool(metrics) and not comments,
        protocols=protocols_of(metadata),
        thresholds=thresholds,
        kind=str(metadata.get("kind") or "standard"),
        quick=bool(metadata.get("quick")),
        has_report=has_report,
    )


def recorded_report(metadata: dict[str, Any]) -> str:
    """Where ``training`` wrote the version's report (it records the folder), or ""."""
    return str(_dict(metadata.get("evaluation")).get("report") or "")


def report_dir(reports_dir: str | Path, version: str) -> Path:
    """``REPORTS_DIR/<version>``; :class:`ModelNotFound` for a malformed version id."""
    if not model_registry.valid_version(version):
        raise ModelNotFound(f"invalid model version {version!r}")
    return Path(reports_dir) / version


def has_report(reports_dir: str | Path, version: str) -> bool:
    return (report_dir(reports_dir, version) / REPORT_FILE).is_file()


def read_report(reports_dir: str | Path, version: str) -> str | None:
    """The text of ``version``'s report.md, or None when it has none."""
    path = report_dir(reports_dir, version) / REPORT_FILE
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def plot_files(reports_dir: str | Path, version: str) -> frozenset[str]:
    """The names of the PNG plots in ``version``'s report folder (regular files only).

    The plot route serves a name only if it is in this set: a name is never joined
    to a path before it has been found among the folder's own entries, so no
    ``..``, separator or symlink trick can reach another file.
    """
    folder = report_dir(reports_dir, version)
    try:
        entries = list(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return frozenset()
    return frozenset(
        entry.name for entry in entries
        if entry.name.endswith(PLOT_SUFFIX) and entry.is_file() and not entry.is_symlink()
    )


@dataclass(frozen=True)
class Catalog:
    """Every version newest first, which one is current, and where rollback would go."""

    versions: tuple[VersionSummary, ...]
    current: str | None
    #: Where the current version comes from: "redis", "file" (models/CURRENT, when
    #: Redis has no record) or "newest" (neither: the newest version on disk).
    current_source: str
    previous: str | None
    #: The rollback target is named in the history but not (or no longer) on disk.
    previous_missing: bool = False
    #: Why models/CURRENT names no usable version ("" when it does, or is not read).
    current_problem: str = ""


def current_of(models_dir: str | Path,
               client: redis.Redis | None) -> tuple[str | None, str, str]:
    """(current version, where from, "") as :func:`model_registry.current_and_source`
    says; (None, "file", why) when it is from a ``CURRENT`` that names no usable version
    (the page still lists the versions: one of them is to be written there)."""
    try:
        return (*model_registry.current_and_source(models_dir, client), "")
    except (ArtifactError, ModelNotFound) as exc:
        return None, "file", str(exc)


def rollback_target(client: redis.Redis | None, current: str | None) -> str | None:
    """The version ``python -m training rollback`` would make current (None: nothing)."""
    if client is None:
        return None
    return model_registry.rollback_target(model_registry.rollback_history(client), current)


def metadata_of(models_dir: str | Path, version: str) -> tuple[dict[str, Any], str]:
    """(metadata, "") or ({}, why it cannot be read): one bad file must not hide the rest."""
    try:
        metadata = model_registry.read_metadata(models_dir, version)
    except (ArtifactError, ModelNotFound) as exc:
        return {}, str(exc)
    if not isinstance(metadata, dict):
        return {}, f"{version}/{model_registry.METADATA}: not a JSON object"
    return metadata, ""


def catalog(models_dir: str | Path, reports_dir: str | Path,
            client: redis.Redis | None) -> Catalog:
    """Everything the models table shows. Redis errors propagate (the app answers 503)."""
    names = model_registry.list_versions(models_dir)
    summaries = []
    for version in reversed(names):  # ids start with a UTC time: newest first
        metadata, problem = metadata_of(models_dir, version)
        summary = summarize(metadata, version, has_report(reports_dir, version))
        summaries.append(replace(summary, problem=problem) if problem else summary)
    current, source, problem = current_of(models_dir, client)
    previous = rollback_target(client, current)
    return Catalog(tuple(summaries), current, source, previous,
                   previous_missing=previous is not None and previous not in names,
                   current_problem=problem)
