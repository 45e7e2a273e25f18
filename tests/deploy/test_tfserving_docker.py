"""The generated docker-compose.yml starts the real tensorflow/serving container and serves real SavedModels.

Runs only where a Docker engine answers (`docker info`), Compose v2 is installed (`docker compose version`) and
the pinned image is already pulled (`docker image inspect`); otherwise it skips and says which one is missing.
Nothing is mocked: a tiny real SavedModel (two versions) is exported with TensorFlow, the generator writes the
folder, `docker compose up` starts TF Serving with every generated flag and config file, and the test waits for
the generated health check to report healthy before calling the REST API by version label.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from deepclf.deploy.tfserving import DEFAULT_IMAGE, TFServingOptions, render_bundle, scan_models, write_bundle
from deepclf.manifest import Manifest

pytestmark = pytest.mark.docker


def _ok(*cmd: str) -> bool:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _require_docker() -> None:
    if not _ok("docker", "info"):
        pytest.skip("no Docker engine: `docker info` failed (no docker CLI, or the daemon is not running)")
    if not _ok("docker", "compose", "version"):
        pytest.skip("Docker Compose v2 is not installed: `docker compose version` failed")
    if not _ok("docker", "image", "inspect", DEFAULT_IMAGE):
        pytest.skip(f"image {DEFAULT_IMAGE} is not present: run `docker pull {DEFAULT_IMAGE}` first")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _export_tiny_savedmodels(models: Path) -> None:
    tf = pytest.importorskip("tensorflow", reason="TensorFlow exports the SavedModels the container serves")

    def tiny(scale: float):
        module = tf.Module()
        module.w = tf.Variable(tf.fill([12, 3], scale / 12.0))
        module.serve = tf.function(
            lambda image: {"probabilities": tf.nn.softmax(tf.matmul(tf.reshape(image, [-1, 12]), module.w))},
            input_signature=[tf.TensorSpec([None, 2, 2, 3], tf.float32, name="image")],
        )
        return module

    for version, scale in ((1, 1.0), (2, 2.0)):
        module = tiny(scale)
        vdir = models / "flowers_tiny" / str(version)
        tf.saved_model.save(module, str(vdir), signatures={"serving_default": module.serve})
        Manifest(labels=["a", "b", "c"], name="flowers_tiny", format="savedmodel").save(vdir)


def _get(url: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=30) as resp:
        return json.loads(resp.read())


def test_tensorflow_serving_container_serves_the_generated_config(tmp_path):
    _require_docker()
    models = tmp_path / "models"
    _export_tiny_savedmodels(models)
    grpc_port, rest_port = _free_port(), _free_port()
    out = tmp_path / "deploy"
    write_bundle(out, render_bundle(scan_models(models), TFServingOptions()))
    env = {
        **os.environ,
        "MODELS_DIR": str(models),
        "TFSERVING_GRPC_PORT": str(grpc_port),
        "TFSERVING_REST_PORT": str(rest_port),
    }
    compose = ["docker", "compose", "-p", f"deepclf-deploy-test-{os.getpid()}"]
    subprocess.run([*compose, "up", "-d"], cwd=out, env=env, check=True, timeout=300)
    try:
        container = subprocess.run(
            [*compose, "ps", "-q", "tfserving"], cwd=out, env=env, check=True, capture_output=True, text=True
        ).stdout.strip()
        status = "starting"
        for _ in range(120):  # a bounded wait for the generated health check, not a timing assertion
            status = subprocess.run(
                ["docker", "inspect", "--format", "{{.State.Health.Status}}", container], capture_output=True, text=True
            ).stdout.strip()
            if status in ("healthy", "unhealthy", ""):
                break
            time.sleep(2)
        logs = subprocess.run([*compose, "logs"], cwd=out, env=env, capture_output=True, text=True).stdout
        assert status == "healthy", f"health status {status!r}; server logs:\n{logs[-4000:]}"

        rest = f"http://127.0.0.1:{rest_port}/v1/models/flowers_tiny"
        states = {v["version"]: v["state"] for v in _get(rest)["model_version_status"]}
        assert states == {"1": "AVAILABLE", "2": "AVAILABLE"}
        assert _get(f"{rest}/labels/canary")["model_version_status"][0]["version"] == "2"
        meta = _get(f"{rest}/metadata")
        assert "serving_default" in meta["metadata"]["signature_def"]["signature_def"]
        image = [[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], [[7.0, 8.0, 9.0], [10.0, 11.0, 12.0]]]
        for label in ("stable", "canary"):
            (pred,) = _get(f"{rest}/labels/{label}:predict", {"instances": [image]})["predictions"]
            assert len(pred) == 3 and abs(sum(pred) - 1.0) < 1e-5
        with urllib.request.urlopen(f"http://127.0.0.1:{rest_port}/monitoring/prometheus/metrics", timeout=30) as r:
            assert b":tensorflow:" in r.read()
    finally:
        subprocess.run([*compose, "down", "-v"], cwd=out, env=env, capture_output=True, timeout=120)
