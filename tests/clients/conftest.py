"""Fixtures for the client tests: the real converted model served by the real edge server on loopback.

``edge`` serves versions 1 and 2 of the session's converted model (2 is a copy of 1) with labels
``stable -> 1`` and ``canary -> 2``, over REST and gRPC, from LiteRT fp32. Built once per session.
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path
from typing import Any

import pytest

MODEL = "flowers"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def model_base(shared_version_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``<tmp>/flowers/{1,2}``: a private copy of the shared version (never modify the shared one)."""
    base = tmp_path_factory.mktemp("clients-models") / MODEL
    shutil.copytree(shared_version_dir, base / "1")
    shutil.copytree(shared_version_dir, base / "2")
    return base


def edge_config(model_base: Path, **kw):
    from deepclf.serving import ModelConfig, ServerConfig

    models = [
        ModelConfig(name=MODEL, base_path=str(model_base), policy="all", version_labels={"stable": 1, "canary": 2})
    ]
    defaults: dict[str, Any] = {
        "model_configs": models,
        "port": 0,
        "rest_api_port": 0,
        "format": "fp32",
        "access_log": False,
        "poll_seconds": 0,
        "threads": 2,
        "allow_version_labels_for_unavailable_models": True,  # labels in the first config (TF Serving's rule)
        # The client tests send large batches on purpose (messages over gRPC's 4 MiB default); the server's
        # per-request limits (32 rows, 16 MiB by default) are tested in tests/serving/test_hostile.py.
        "max_request_rows": 1000,
        "max_request_bytes": 64 << 20,
    }
    defaults.update(kw)
    return ServerConfig(**defaults)


@pytest.fixture(scope="session")
def edge(model_base: Path):
    """The real edge server (REST + gRPC) serving ``flowers`` versions 1 and 2."""
    from deepclf.serving import EdgeServer

    with EdgeServer(edge_config(model_base)) as srv:
        yield srv


@pytest.fixture(scope="session")
def photos(gen_photos: Path) -> list[str]:
    """40 JPEGs of the generated photos, 8 of each class (the order is fixed)."""
    out: list[str] = []
    for d in sorted(p for p in gen_photos.iterdir() if p.is_dir()):
        out += [str(p) for p in sorted(d.glob("*.jpg"))[:8]]
    return out


@pytest.fixture(scope="session")
def labels(shared_version_dir: Path) -> list[str]:
    from deepclf.manifest import Manifest

    return list(Manifest.load(shared_version_dir).labels)
