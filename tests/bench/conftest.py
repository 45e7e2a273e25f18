"""Fixtures for the bench tests: the session's real trained run and its conversion (tests/conftest.py).

``shared_run_dir`` is the registry's ``basic`` CNN at 64x64 trained briefly on the generated photos;
``shared_version_dir`` is its ``deepclf.convert`` output (SavedModel + fp32/fp16/dynamic/int8 TFLite). Both are
built once per session and shared with the convert, runtime, serving and client tests.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def bench_run(shared_run_dir: Path) -> Path:
    return shared_run_dir


@pytest.fixture(scope="session")
def bench_version(shared_version_dir: Path) -> Path:
    return shared_version_dir


@pytest.fixture(scope="session")
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
