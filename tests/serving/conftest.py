"""Fixtures for the edge-server tests: a models folder with the real converted flowers model and TF Serving's
``half_plus_two`` (built here with TensorFlow as a manifest-less TFLite model), and a running ``EdgeServer``.

Everything is real: the session's trained + converted model (tests/conftest.py ``shared_version_dir``, trained on
the generated photos, so these tests run on any machine), LiteRT, uvicorn and grpc on loopback.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

HALF_PLUS_TWO = "half_plus_two"


def build_half_plus_two() -> bytes:
    """TF Serving's half_plus_two as TFLite: input ``x`` float32 [None], output ``y = 0.5 * x + 2``; built with
    TensorFlow, or read from ``DEEPCLF_TEST_PREBUILT`` (tests/prebuilt.py) where TF is absent."""
    from tests.prebuilt import prebuilt_dir

    prebuilt = prebuilt_dir()
    if prebuilt is not None:
        return (prebuilt / "half_plus_two.tflite").read_bytes()
    import tensorflow as tf  # TF is allowed in tests (never in the server)

    class HalfPlusTwo(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def serve(self, x):
            return {"y": 0.5 * x + 2.0}

    module = HalfPlusTwo()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.serve.get_concrete_function()], module)
    return converter.convert()


@pytest.fixture(scope="session")
def half_plus_two_tflite() -> bytes:
    return build_half_plus_two()


def make_models_root(root: Path, version_dir: Path, hpt: bytes) -> Path:
    """``root/flowers/1`` (a copy of the shared conversion) and ``root/half_plus_two/1/model.tflite``."""
    shutil.copytree(version_dir.parent, root / "flowers")
    (root / HALF_PLUS_TWO / "1").mkdir(parents=True)
    (root / HALF_PLUS_TWO / "1" / "model.tflite").write_bytes(hpt)
    return root


@pytest.fixture(scope="module")
def models_root(
    tmp_path_factory: pytest.TempPathFactory, shared_version_dir: Path, half_plus_two_tflite: bytes
) -> Path:
    """A private copy per test module (tests may add or remove versions)."""
    return make_models_root(tmp_path_factory.mktemp("models"), shared_version_dir, half_plus_two_tflite)


@pytest.fixture(scope="module")
def server(models_root: Path) -> Iterator:
    """flowers (label ``stable`` -> 1) and half_plus_two, fp32, REST + gRPC on free loopback ports."""
    from deepclf.serving import EdgeServer, ModelConfig, ServerConfig

    cfg = ServerConfig(
        model_configs=[
            ModelConfig("flowers", str(models_root / "flowers"), version_labels={"stable": 1}),
            ModelConfig(HALF_PLUS_TWO, str(models_root / HALF_PLUS_TWO)),
        ],
        host="127.0.0.1",
        port=0,
        rest_api_port=0,
        format="fp32",
        threads=2,
        poll_seconds=0,
        allow_version_labels_for_unavailable_models=True,  # the label is in the first config (TF Serving's rule)
    )
    with EdgeServer(cfg) as srv:
        yield srv


@pytest.fixture(scope="session")
def photos(gen_photos: Path) -> list[Path]:
    """Four JPEGs of the generated photos, from different classes."""
    picks = []
    for cls in ("daisy", "roses", "tulips", "sunflowers"):
        picks.append(sorted((gen_photos / cls).glob("*.jpg"))[0])
    return picks


@pytest.fixture(scope="session")
def tfs_conformance_root(tfserving_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stand-ins for every model TF Serving's own tests load, and their models.config (tests/serving/tfs_server.py)."""
    pytest.importorskip("tensorflow")
    from tests.serving.tfs_server import build_conformance_root

    return build_conformance_root(tfserving_models, tmp_path_factory.mktemp("conformance"))


@pytest.fixture(scope="session")
def tfs_upstream(tfs_conformance_root: Path) -> Iterator:
    """One ``deepclf serve`` child process for the whole session, started with a ``tensorflow_model_server`` command
    line on ``tfs_conformance_root``; the conformance suites (test_tfs_*.py) share it."""
    from tests.serving.tfs_server import upstream_server

    with upstream_server(tfs_conformance_root, "--enable_signature_method_name_check=false") as srv:
        yield srv


@pytest.fixture(scope="session")
def tfs_upstream_checked(tfs_conformance_root: Path) -> Iterator:
    """The same server with ``--enable_signature_method_name_check=true``: the upstream tests that run with the
    check on (classifier_test.cc and regressor_test.cc's second instantiation, multi_inference_test.cc's TF1)."""
    from tests.serving.tfs_server import upstream_server

    with upstream_server(tfs_conformance_root, "--enable_signature_method_name_check=true") as srv:
        yield srv
