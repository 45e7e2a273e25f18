"""Ready-made test inputs for an environment without TensorFlow (the arm64 root of ``make test-arm64``).

The test session's photos and model are made with TensorFlow (tests/conftest.py: ``gen_photos``, the trained
and converted ``shared_version_dir``, TF Serving's ``half_plus_two`` as TFLite). Where TF cannot be installed,
``DEEPCLF_TEST_PREBUILT`` names a folder holding the same things, written on a machine that has it::

    export_prebuilt(dest, gen_photos=..., version_dir=..., half_plus_two=...)   # on x86, with TF
    DEEPCLF_TEST_PREBUILT=dest python -m pytest tests/runtime ...                 # anywhere, [edge] only

Layout: ``gen_photos/<class>/*.jpg``, ``models/flowers/1/`` (the converted version folder, every variant),
``half_plus_two.tflite``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest

PREBUILT_ENV = "DEEPCLF_TEST_PREBUILT"


def prebuilt_dir() -> Path | None:
    """The ``DEEPCLF_TEST_PREBUILT`` folder, or None when unset (the session builds its own)."""
    env = os.environ.get(PREBUILT_ENV, "").strip()
    if not env:
        return None
    path = Path(env)
    if not (path / "models" / "flowers" / "1" / "manifest.json").is_file():
        raise pytest.UsageError(f"{PREBUILT_ENV}={env!r} holds no models/flowers/1/ (write it with tests/prebuilt.py)")
    return path


def require_tensorflow(what: str) -> None:
    """Skips, naming ``what``, where TensorFlow is not installed (an ``[edge]``-only environment)."""
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip(f"needs TensorFlow ({what}); this environment has only the [edge] extra")


def export_prebuilt(dest: Path, *, gen_photos: Path, version_dir: Path, half_plus_two: bytes) -> Path:
    """Writes the layout above into ``dest`` (created; must not exist)."""
    dest.mkdir(parents=True)
    shutil.copytree(gen_photos, dest / "gen_photos")
    shutil.copytree(version_dir, dest / "models" / "flowers" / "1")
    (dest / "half_plus_two.tflite").write_bytes(half_plus_two)
    return dest
