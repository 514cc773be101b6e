"""Writing model versions, and promoting / rolling back which one is current.

Reading artifacts is :mod:`moderation.model_registry` (the service needs it too);
this module adds the operator's side: atomic writes, promotion and rollback.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np
import redis
import scipy
import sklearn
import skops
import skops.io as sio

from moderation import keys, model_registry, serving_model
from moderation.model_registry import (
    ARTIFACT,
    CURRENT_FILE,
    METADATA,
    SERVING,
    ModelNotFound,
)

from .atomic import replacing

HISTORY_LIMIT = 50


def new_version_id(now: datetime | None = None) -> str:
    """``YYYYMMDD-HHMMSS-xxxxxx`` (UTC): sorts by time, unique across machines."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def code_version() -> str:
    """The git commit of the training code (``+dirty`` if it has local changes), or ""."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "training", "moderation"],
                               cwd=root, capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return f"{commit}+dirty" if commit and dirty else commit


def library_versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "skops": skops.__version__,
    }


def save_version(
    models_dir: str | Path,
    objects: dict[str, Any],
    metadata: dict[str, Any],
    version: str | None = None,
) -> str:
    """Write ``<version>/model.skops``, ``serving.npz`` and ``metadata.json`` atomically.

    The files are written into a temporary folder beside the target and renamed into
    place in one step, so a crash never leaves half a model behind. A model the service
    could not serve without scikit-learn (a feature step :mod:`moderation.serving_model`
    does not know) is refused before anything is written. Returns the version.
    """
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    version = version or new_version_id()
    target = model_registry.version_dir(models_dir, version)
    if target.exists():
        raise FileExistsError(f"model version {version} already exists in {models_dir}")
    serving = model_registry.export(objects, target / ARTIFACT)
    # mkdir, not mkdtemp (0700): the folder gets the umask's mode like any other, so a
    # service running as another user of the group can read it.
    tmp = models_dir / f".{version}.{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        sio.dump(model_registry.pack_vocabularies(objects), tmp / ARTIFACT)
        serving_model.save(serving, tmp / SERVING)
        versions = library_versions()
        full = {
            "version": version,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "sklearn_version": versions["sklearn"],
            "libraries": versions,
            "code_version": code_version(),
            "artifact_sha256": model_registry.sha256_file(tmp / ARTIFACT),
            "serving_sha256": model_registry.sha256_file(tmp / SERVING),
            **metadata,
        }
        _write_json(tmp / METADATA, full)
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return version


def export_serving(models_dir: str | Path, version: str) -> bool:
    """Write ``serving.npz`` for a version saved without one; True if it did.

    For versions trained before the export existed: the service would otherwise
    convert ``model.skops`` with scikit-learn in every worker at every start.
    """
    require_version(models_dir, version)
    if model_registry.read_metadata(models_dir, version).get("serving_sha256"):
        return False
    directory = model_registry.version_dir(models_dir, version)
    objects, _ = model_registry.load_artifact(models_dir, version)
    serving = model_registry.export(objects, directory / ARTIFACT)
    tmp = directory / f".{SERVING}.{secrets.token_hex(4)}"
    try:
        serving_model.save(serving, tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, directory / SERVING)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    # The checksum last: until it is recorded the service ignores the file.
    update_metadata(models_dir, version,
                    {"serving_sha256": model_registry.sha256_file(directory / SERVING)})
    return True


def check_servable(models_dir: str | Path, version: str) -> None:
    """Raise unless ``version`` loads both ways: scikit-learn artifact and serving export."""
    model_registry.load_artifact(models_dir, version)
    export_serving(models_dir, version)
    model_registry.load_serving(models_dir, version)


def write_json_atomically(path: str | Path, data: Any) -> None:
    """Replace ``path`` with ``data`` as JSON (:func:`training.atomic.replacing`: a crash or
    Ctrl-C leaves the old file or the new one, never half; a symbolic link is written
    through)."""
    with replacing(path) as handle:
        _dump_json(data, handle)


def _write_json(path: Path, data: Any) -> None:
    """Write a new file inside a folder that is itself renamed into place."""
    with open(path, "w", encoding="utf-8") as handle:
        _dump_json(data, handle)
        handle.flush()
        os.fsync(handle.fileno())


def _dump_json(data: Any, handle: IO[str]) -> None:
    json.dump(data, handle, indent=2, sort_keys=False, default=_json_default)
    handle.write("\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple | set):
        return list(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def write_current_file(models_dir: str | Path, version: str) -> None:
    """Point ``CURRENT`` at ``version`` (:func:`training.atomic.replacing`: never a torn
    write, no temporary file left when it fails)."""
    with replacing(Path(models_dir) / CURRENT_FILE) as handle:
        handle.write(version + "\n")


def ensure_current(models_dir: str | Path, version: str) -> bool:
    """Make ``version`` current if nothing is current yet; True if it did.

    Two first trainings at once both find nothing current: a hard link creates
    ``CURRENT`` only if it is still absent, so the first to finish stays current.
    """
    path = Path(models_dir) / CURRENT_FILE
    # Whatever it names (a bad one is said by every reader), it is not for us to replace.
    if path.is_file() and path.read_bytes().strip():
        return False
    tmp = path.with_name(f".{CURRENT_FILE}.{secrets.token_hex(4)}")
    tmp.write_text(version + "\n", encoding="utf-8")
    try:
        os.link(tmp, path)
    except FileExistsError:
        if path.read_bytes().strip():  # another run's version
            return False
        os.replace(tmp, path)  # an empty CURRENT names no version: take its place
    finally:
        tmp.unlink(missing_ok=True)
    return True


def require_version(models_dir: str | Path, version: str) -> None:
    if version not in model_registry.list_versions(models_dir):
        newest = model_registry.list_versions(models_dir)[::-1][:5]
        raise ModelNotFound(f"unknown model version {version!r} in {models_dir} "
                            f"(newest first: {', '.join(newest) or 'none'})")


def promote(models_dir: str | Path, version: str, client: redis.Redis) -> str | None:
    """Make ``version`` current in Redis and ``CURRENT``; return the previous version.

    The artifact and its serving export (written first for an older version without
    one) are loaded, so a corrupt or foreign version is refused before anything
    changes. Workers pick the Redis record up within MODEL_RELOAD_SECONDS.
    """
    require_version(models_dir, version)
    check_servable(models_dir, version)
    previous = model_registry.current_from_redis(client) or model_registry.current_from_file(
        models_dir
    )
    if previous == version:
        return previous
    pipe = client.pipeline(transaction=True)
    if previous:
        pipe.lpush(keys.MODEL_HISTORY, previous)
        pipe.ltrim(keys.MODEL_HISTORY, 0, HISTORY_LIMIT - 1)
    pipe.set(keys.MODEL_CURRENT, version)
    pipe.execute()
    write_current_file(models_dir, version)
    return previous


def rollback(models_dir: str | Path, client: redis.Redis) -> tuple[str, str]:
    """Return to the version that was current before; (from, to)."""
    current = model_registry.current_from_redis(client) or model_registry.current_from_file(
        models_dir
    )
    history = model_registry.rollback_history(client)
    target = model_registry.rollback_target(history, current)
    if target is None:
        raise ModelNotFound("no previous model version to roll back to")
    require_version(models_dir, target)
    check_servable(models_dir, target)
    pipe = client.pipeline(transaction=True)
    # Drop the history entries down to and including the target.
    pipe.ltrim(keys.MODEL_HISTORY, history.index(target) + 1, -1)
    pipe.set(keys.MODEL_CURRENT, target)
    pipe.execute()
    write_current_file(models_dir, target)
    return current or "", target


def update_metadata(models_dir: str | Path, version: str, updates: dict[str, Any]) -> None:
    """Merge ``updates`` into a version's metadata.json (temp file + rename)."""
    require_version(models_dir, version)
    path = model_registry.version_dir(models_dir, version) / METADATA
    data = model_registry.read_metadata(models_dir, version)
    data.update(updates)
    write_json_atomically(path, data)


#: A candidate may be this much lower on a key metric before it counts as worse (noise).
TOLERANCE = 0.005


def threshold_warnings(metadata: dict[str, Any]) -> list[str]:
    """Why a version's thresholds cannot be trusted, as recorded when it was trained.

    Versions saved before the warnings were recorded are checked for the one case their
    thresholds alone show: publishing and rejecting meet, so nothing is held for review.
    """
    if "threshold_warnings" in metadata:
        return list(metadata["threshold_warnings"])
    thresholds = metadata.get("thresholds", {})
    publish, reject = thresholds.get("publish_below"), thresholds.get("reject_at")
    if isinstance(publish, int | float) and isinstance(reject, int | float) and publish >= reject:
        return [f"publish and reject thresholds meet at {reject:.3f}: no comment is ever held "
                "for review"]
    return []


def has_evaluation(models_dir: str | Path, version: str) -> bool:
    """Whether ``version`` has protocol results to be compared by."""
    return bool(model_registry.read_metadata(models_dir, version).get("evaluation", {}).get("key"))


def compare(models_dir: str | Path, candidate: str, current: str) -> list[str]:
    """Reasons ``candidate`` is worse than ``current`` on the evaluation protocols ([] if not).

    A candidate never evaluated is worse by definition (nothing shows it is not).
    """
    cand = model_registry.read_metadata(models_dir, candidate).get("evaluation", {}).get("key")
    if not cand:
        return [f"{candidate} has no evaluation: run `python -m training evaluate --version "
                f"{candidate}`"]
    try:
        cur = model_registry.read_metadata(models_dir, current).get("evaluation", {}).get("key")
    except ModelNotFound:
        return []
    reasons = []
    for name, value in (cur or {}).items():
        if name in cand and cand[name] < value - TOLERANCE:
            reasons.append(f"{name} {cand[name]:.3f} < {value:.3f}")
    return reasons
