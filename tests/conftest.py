"""Shared fixtures: where the real photos are, small generated image folders, quiet TensorFlow."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
CLASSES = ("daisy", "dandelion", "roses", "sunflowers", "tulips")


def shared_data_dir() -> Path | None:
    """The folder holding flower_photos/ and flower_photos_mini/ (DEEPCLF_TEST_DATA, else ../shared/data)."""
    env = os.environ.get("DEEPCLF_TEST_DATA")
    for cand in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data"]:
        if (cand / "flower_photos_mini").is_dir():
            return cand
    return None


@pytest.fixture(scope="session")
def mini_photos() -> Path:
    """The 200-photo real subset (40 per class); skips, saying why, when the shared data is absent."""
    d = shared_data_dir()
    if d is None:
        pytest.skip("real photos not found: set DEEPCLF_TEST_DATA or put shared/data beside the checkout")
    return d / "flower_photos_mini"


@pytest.fixture(scope="session")
def full_photos() -> Path:
    """The full real flowers folder (3,304 photos when complete)."""
    d = shared_data_dir()
    if d is None or not (d / "flower_photos").is_dir():
        pytest.skip("real flower_photos not found: set DEEPCLF_TEST_DATA or put shared/data beside the checkout")
    return d / "flower_photos"


def make_image_folder(root: Path, classes=("a", "b", "c"), per_class: int = 6, size=(40, 48), seed: int = 0) -> Path:
    """A folder of class sub-folders with small random JPEGs whose colour depends on the class."""
    rng = np.random.default_rng(seed)
    for ci, c in enumerate(classes):
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            base = np.zeros((*size, 3), dtype=np.float32)
            base[..., ci % 3] = 180
            arr = np.clip(base + rng.normal(0, 40, (*size, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(arr).save(root / c / f"{c}_{i:03d}.jpg", quality=90)
    return root


@pytest.fixture()
def tiny_folder(tmp_path: Path) -> Path:
    """3 classes x 6 generated JPEGs."""
    return make_image_folder(tmp_path / "tiny")


def _modelkit():
    import sys

    sys.path.insert(0, str(REPO / "tests" / "convert"))
    import modelkit  # tests/convert/modelkit.py: builds and caches the session's trained run + conversion

    return modelkit


@pytest.fixture(scope="session")
def shared_run_dir(tmp_path_factory: pytest.TempPathFactory, mini_photos: Path) -> Path:
    """A real training run folder (basic CNN, 64x64, trained briefly on the mini photos), built once per session."""
    return _modelkit().shared_run(tmp_path_factory.getbasetemp(), mini_photos)


@pytest.fixture(scope="session")
def shared_version_dir(tmp_path_factory: pytest.TempPathFactory, mini_photos: Path) -> Path:
    """``<models>/flowers/1`` converted from ``shared_run_dir``: SavedModel + 4 TFLite variants + manifest.

    The model base path is ``shared_version_dir.parent``; copy it before modifying (other tests share it).
    """
    return _modelkit().shared_version(tmp_path_factory.getbasetemp(), mini_photos)
