"""Trained-model artifacts on disk and which version is current (serving side).

Layout of ``MODELS_DIR``::

    <version>/model.skops     the fitted scikit-learn objects (skops format, no pickle)
    <version>/serving.npz     what the service loads: the same model as numpy arrays
                              (:mod:`moderation.serving_model`; no scikit-learn needed)
    <version>/metadata.json   version, time, data hashes, library versions, params,
                              thresholds, metrics, sha256 of model.skops and serving.npz
    CURRENT                   the current version id (fallback when Redis has no record)

The Redis record ``keys.MODEL_CURRENT`` wins over ``CURRENT``; promotion keeps both
in step so a fresh Redis still finds the right model. ``training/`` writes artifacts;
this module only reads them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path
from typing import Any

import redis

from . import keys, serving_model
from .serving_model import ServingModel

log = logging.getLogger(__name__)

ARTIFACT = "model.skops"
SERVING = "serving.npz"
METADATA = "metadata.json"
CURRENT_FILE = "CURRENT"

#: The only non-scikit-learn types a model may contain: our own text functions.
#: Anything else in an artifact (e.g. ``builtins.eval``) makes loading fail.
TRUSTED_TYPES = tuple(serving_model.FUNCTIONS)

_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class ModelNotFound(RuntimeError):
    """No (such) trained model in the models directory."""


class ArtifactError(RuntimeError):
    """An artifact that cannot be trusted or used: corrupt, tampered, foreign or incompatible."""


def valid_version(version: str) -> bool:
    """Version ids are plain folder names (no path separators, no dot-dot)."""
    return bool(_VERSION_RE.match(version)) and ".." not in version


def version_dir(models_dir: str | Path, version: str) -> Path:
    if not valid_version(version):
        raise ModelNotFound(f"invalid model version {version!r}")
    return Path(models_dir) / version


def list_versions(models_dir: str | Path) -> list[str]:
    """Complete versions (both files present), oldest first (ids start with a UTC time)."""
    root = Path(models_dir)
    if not root.is_dir():
        return []
    return sorted(
        d.name
        for d in root.iterdir()
        if d.is_dir() and valid_version(d.name) and (d / ARTIFACT).is_file()
        and (d / METADATA).is_file()
    )


def read_metadata(models_dir: str | Path, version: str) -> dict[str, Any]:
    path = version_dir(models_dir, version) / METADATA
    if not path.is_file():
        raise ModelNotFound(f"no model version {version!r} in {models_dir}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path}: unreadable metadata ({exc})") from None


#: How to mend a ``CURRENT`` that names no usable version, for every message about one.
CURRENT_REPAIR = ("write the current version's id in it (`python -m training list` lists "
                  "them) or remove it")


def current_from_file(models_dir: str | Path) -> str | None:
    """The version ``CURRENT`` names, or None when there is no such file.

    A ``CURRENT`` that names no usable version is refused, naming the file, rather than
    left to fail later as a bare version (or a UnicodeDecodeError): :class:`ArtifactError`
    when it cannot be read, is not UTF-8, is empty or holds no version id;
    :class:`ModelNotFound` when the version it names is not in ``models_dir``.
    """
    path = Path(models_dir) / CURRENT_FILE
    if not path.is_file():
        return None
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ArtifactError(f"{path}: not UTF-8 text, so it names no model version; "
                            f"{CURRENT_REPAIR}") from None
    except OSError as exc:
        raise ArtifactError(f"{path}: cannot be read ({exc.strerror or exc}); "
                            f"{CURRENT_REPAIR}") from None
    version = text.strip()
    if not version:
        raise ArtifactError(f"{path}: empty, so it names no model version; {CURRENT_REPAIR}")
    if not valid_version(version):
        shown = version if len(version) <= 40 else version[:40] + "..."
        raise ArtifactError(f"{path}: {shown!r} is not a model version id; {CURRENT_REPAIR}")
    directory = Path(models_dir) / version
    if not ((directory / ARTIFACT).is_file() and (directory / METADATA).is_file()):
        raise ModelNotFound(f"{path}: names model version {version!r}, which is not in "
                            f"{models_dir}; {CURRENT_REPAIR}")
    return version


def current_from_redis(client: redis.Redis | None) -> str | None:
    if client is None:
        return None
    value = client.get(keys.MODEL_CURRENT)
    if isinstance(value, bytes):
        value = value.decode()
    return value or None


def current_and_source(
    models_dir: str | Path, client: redis.Redis | None = None
) -> tuple[str | None, str]:
    """The current version and where it came from: the Redis record ("redis"), else
    ``CURRENT`` ("file"), else the newest on disk ("newest"; None when there is none)."""
    version = current_from_redis(client)
    if version:
        return version, "redis"
    version = current_from_file(models_dir)
    if version:
        return version, "file"
    versions = list_versions(models_dir)
    return (versions[-1] if versions else None), "newest"


def current_version(models_dir: str | Path, client: redis.Redis | None = None) -> str:
    """The current version: Redis record, else ``CURRENT``, else the newest on disk."""
    version, _ = current_and_source(models_dir, client)
    if version is None:
        raise ModelNotFound(f"no trained model in {models_dir}: run `make train`")
    return version


def rollback_target(history: list[str], current: str | None) -> str | None:
    """The version ``rollback`` returns to: the newest entry of ``keys.MODEL_HISTORY``
    that is not the current one (a promote of the current version again leaves it at
    the head), or None when there is none. One rule for the CLI and the models page."""
    return next((version for version in history if version != current), None)


def rollback_history(client: redis.Redis) -> list[str]:
    """``keys.MODEL_HISTORY``: the versions current before, newest first, as text."""
    return [v.decode() if isinstance(v, bytes) else v
            for v in client.lrange(keys.MODEL_HISTORY, 0, -1)]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _minor(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version)[:2])


def load_artifact(models_dir: str | Path, version: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(fitted objects, metadata) of one version, refusing anything not trustworthy.

    Checks, in order: both files exist; the artifact's sha256 matches its metadata
    (a tampered or swapped file is refused); it was made by the same scikit-learn
    minor version; it contains only scikit-learn types and :data:`TRUSTED_TYPES`.
    """
    import sklearn
    import skops.io as sio

    directory = version_dir(models_dir, version)
    if not (directory / ARTIFACT).is_file() or not (directory / METADATA).is_file():
        raise ModelNotFound(f"no model version {version!r} in {models_dir}")
    metadata = read_metadata(models_dir, version)
    path = directory / ARTIFACT
    expected = metadata.get("artifact_sha256")
    if not expected or sha256_file(path) != expected:
        raise ArtifactError(f"{path}: checksum does not match its metadata (tampered or foreign)")
    trained_with = str(metadata.get("sklearn_version", "unknown"))
    if _minor(trained_with) != _minor(sklearn.__version__):
        raise ArtifactError(
            f"model {version} was trained with scikit-learn {trained_with}, this is "
            f"{sklearn.__version__}: retrain it (`make train`) or install {trained_with}"
        )
    try:
        untrusted = set(sio.get_untrusted_types(file=path))
        unexpected = untrusted - set(TRUSTED_TYPES)
        if unexpected:
            raise ArtifactError(
                f"{path}: refuses to load untrusted types {', '.join(sorted(unexpected))}"
            )
        objects = sio.load(path, trusted=sorted(untrusted))
    except ArtifactError:
        raise
    except Exception as exc:  # skops raises many types for a corrupt file
        reason = f"{type(exc).__name__}: {exc}"
        raise ArtifactError(f"{path}: corrupt model artifact ({reason})") from None
    if not isinstance(objects, dict) or {"pipeline", "calibrator"} - objects.keys():
        raise ArtifactError(f"{path}: not a moderation model (expected pipeline and calibrator)")
    try:
        unpack_vocabularies(objects)
    except (KeyError, ValueError, AttributeError, TypeError) as exc:
        raise ArtifactError(f"{path}: not a moderation model ({exc})") from None
    return objects, metadata


def load_serving(models_dir: str | Path, version: str) -> tuple[ServingModel, dict[str, Any]]:
    """(serving model, metadata) of one version: what a worker loads.

    Reads ``serving.npz`` after checking its sha256 against ``serving_sha256`` in the
    metadata (a tampered or swapped file is refused, as for ``model.skops``). A version
    saved before the export existed has no ``serving_sha256``: it is converted from
    ``model.skops`` in memory, which imports scikit-learn (logged; `python -m training
    export-serving` writes the export once).
    """
    directory = version_dir(models_dir, version)
    if not (directory / ARTIFACT).is_file() or not (directory / METADATA).is_file():
        raise ModelNotFound(f"no model version {version!r} in {models_dir}")
    metadata = read_metadata(models_dir, version)
    expected = metadata.get("serving_sha256")
    path = directory / SERVING
    if not expected:
        # A file without a recorded checksum is never read, whoever put it there.
        log.warning(
            "model %s has no serving export: converting %s with scikit-learn (more memory "
            "per worker); run `python -m training export-serving` once", version, ARTIFACT,
        )
        objects, metadata = load_artifact(models_dir, version)
        return export(objects, directory / ARTIFACT), metadata
    if not path.is_file():
        raise ArtifactError(f"{path}: missing (its metadata records a serving export)")
    if sha256_file(path) != expected:
        raise ArtifactError(f"{path}: checksum does not match its metadata (tampered or foreign)")
    try:
        return serving_model.load(path), metadata
    except serving_model.FormatError as exc:
        raise ArtifactError(f"{path}: {exc}") from None


def export(objects: dict[str, Any], path: Path) -> ServingModel:
    """The serving export of loaded objects; :class:`ArtifactError` if unsupported."""
    try:
        return serving_model.from_pipeline(objects)
    except serving_model.UnsupportedModel as exc:
        raise ArtifactError(f"{path}: cannot be served without scikit-learn: {exc}") from None


def _vectorizers(objects: dict[str, Any]) -> dict[str, Any]:
    """The fitted TF-IDF vectorizers of the pipeline's feature union, by name."""
    union = objects["pipeline"].named_steps["features"]
    return {name: step for name, step in union.transformer_list if hasattr(step, "vocabulary")}


def pack_vocabularies(objects: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``objects`` ready for skops: vocabularies as string arrays, not dicts.

    skops writes a dict entry by entry (about 600 bytes each): a 130k-term vocabulary
    becomes 80 MB that takes seconds to load. A unicode array is written as one .npy
    block. The vectorizers are shallow-copied so the caller's pipeline stays usable.
    """
    import copy

    import numpy as np

    objects = dict(objects)
    objects["pipeline"] = copy.deepcopy(objects["pipeline"])
    for name, vectorizer in _vectorizers(objects).items():
        terms = vectorizer.get_feature_names_out()
        objects[f"vocabulary:{name}"] = np.asarray(terms.tolist(), dtype=str)
        vectorizer.vocabulary_ = {}
    return objects


def unpack_vocabularies(objects: dict[str, Any]) -> None:
    """Undo :func:`pack_vocabularies` in place."""
    for name, vectorizer in _vectorizers(objects).items():
        terms = objects.pop(f"vocabulary:{name}")
        vectorizer.vocabulary_ = {term: index for index, term in enumerate(terms.tolist())}
