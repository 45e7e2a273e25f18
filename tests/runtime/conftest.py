"""Session fixtures for the runtime tests: the same trained run and conversion the convert tests use."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "convert"))
import modelkit  # noqa: E402  - tests/convert/modelkit.py, shared so the session converts once


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory, mini_photos: Path) -> Path:
    return modelkit.shared_run(tmp_path_factory.getbasetemp(), mini_photos)


@pytest.fixture(scope="session")
def version_dir(tmp_path_factory: pytest.TempPathFactory, mini_photos: Path) -> Path:
    return modelkit.shared_version(tmp_path_factory.getbasetemp(), mini_photos)


@pytest.fixture(scope="session")
def photos(mini_photos: Path) -> list[Path]:
    """Eight real JPEGs, from every class."""
    files = sorted(mini_photos.glob("*/*.jpg"))
    return files[::25][:8]
