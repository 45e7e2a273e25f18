"""Session fixtures for the runtime tests: the same trained run and conversion every test package uses."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def run_dir(shared_run_dir: Path) -> Path:
    """The session's trained run (tests/conftest.py), as the convert tests see it."""
    return shared_run_dir


@pytest.fixture(scope="session")
def version_dir(shared_version_dir: Path) -> Path:
    """The session's converted version folder (tests/conftest.py)."""
    return shared_version_dir


@pytest.fixture(scope="session")
def photos(gen_photos: Path) -> list[Path]:
    """Eight JPEGs of the generated photos, from every class."""
    files = sorted(gen_photos.glob("*/*.jpg"))
    return files[::25][:8]
