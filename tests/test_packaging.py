"""The installed package (the Docker image runs ``pip install .``, not a checkout)
carries every file the service and the trainer read from their own folders."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Folders the code reads at run time through ``Path(__file__).parent / ...``.
DATA_FOLDERS = [
    "moderation/templates", "moderation/static", "moderation/content", "moderation/fonts",
    "moderation/lists", "training/data",
]


def _shipped_files() -> set[str]:
    return {
        path.relative_to(ROOT).as_posix()
        for folder in DATA_FOLDERS
        for path in (ROOT / folder).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_the_wheel_carries_templates_fonts_word_lists_and_the_training_data(tmp_path):
    source = tmp_path / "source"  # a copy, so the build leaves nothing in the checkout
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in ("moderation", "training"):
        shutil.copytree(ROOT / package, source / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
         "--wheel-dir", str(tmp_path / "dist"), str(source)],
        check=True, capture_output=True, timeout=600,
    )
    wheel = next((tmp_path / "dist").glob("*.whl"))
    missing = sorted(_shipped_files() - set(zipfile.ZipFile(wheel).namelist()))
    assert not missing, f"not in the wheel: {missing}"
