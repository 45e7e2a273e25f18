"""Fixtures for the bench tests: the real converted model shared with tests/convert and tests/runtime.

``tests/convert/modelkit.py`` trains the registry's ``basic`` CNN at 64x64 on the real mini photos and converts it
with ``deepclf.convert`` (SavedModel + fp32/fp16/dynamic/int8 TFLite); it is built once per session and reused.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "convert"))
import modelkit  # noqa: E402


@pytest.fixture(scope="session")
def bench_run(tmp_path_factory: pytest.TempPathFactory, mini_photos: Path) -> Path:
    """A real training run folder (model.keras + manifest)."""
    return modelkit.shared_run(tmp_path_factory.getbasetemp(), mini_photos)


@pytest.fixture(scope="session")
def bench_version(tmp_path_factory: pytest.TempPathFactory, mini_photos: Path) -> Path:
    """``models/flowers/1`` converted from ``bench_run`` by deepclf.convert."""
    return modelkit.shared_version(tmp_path_factory.getbasetemp(), mini_photos)


@pytest.fixture(scope="session")
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
