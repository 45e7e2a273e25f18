"""Hot swaps under load: 8 concurrent clients on loopback (REST and gRPC) while a new version is published the way
``deepclf convert`` publishes (a dot-prefixed temporary folder renamed into place). Zero failed requests, and the
new version answers afterwards; removed versions are unloaded."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections import Counter
from pathlib import Path

import grpc
import numpy as np
import pytest
import requests

from deepclf import protocol as P
from deepclf.preprocessing import preprocess_batch
from deepclf.serving import EdgeServer, ServerConfig


def publish_copy(base: Path, src_version: int, new_version: int) -> None:
    """Copy a version folder to a new number through a hidden temp folder + rename (atomic for the server)."""
    tmp = base / f".{new_version}.partial-test"
    shutil.copytree(base / str(src_version), tmp)
    os.replace(tmp, base / str(new_version))


def wait_for(predicate, timeout: float = 30.0, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


def _load(base: Path, photos, seconds: float, clients: int = 8) -> None:
    cfg = ServerConfig(
        model_name="flowers",
        model_base_path=str(base),
        port=0,
        rest_api_port=0,
        threads=2,
        poll_seconds=0.2,
        access_log=False,
    )
    images = preprocess_batch(photos, (64, 64))
    body = P.encode_predict_request({"image": images[:2]})
    stop = threading.Event()
    failures: list[str] = []
    versions: Counter = Counter()
    lock = threading.Lock()

    with EdgeServer(cfg) as srv:
        url = srv.rest_url + "/v1/models/flowers:predict"

        def rest_client() -> None:
            with requests.Session() as s:
                while not stop.is_set():
                    try:
                        r = s.post(url, data=body, timeout=30)
                        if r.status_code != 200:
                            failures.append(f"REST {r.status_code}: {r.text[:200]}")
                    except Exception as exc:  # any failure counts
                        failures.append(f"REST {type(exc).__name__}: {exc}")

        def grpc_client() -> None:
            with grpc.insecure_channel(srv.grpc_target) as ch:
                predict = P.unary_unary(ch, P.PREDICT)
                req = P.PredictRequest(model_spec=P.model_spec("flowers"))
                req.inputs["image"].CopyFrom(P.to_tensor_proto(images[:1]))
                while not stop.is_set():
                    try:
                        resp = predict(req, timeout=30)
                        with lock:
                            versions[resp.model_spec.version.value] += 1
                    except grpc.RpcError as exc:
                        failures.append(f"gRPC {exc.code()}: {exc.details()}")

        threads = [threading.Thread(target=rest_client if i % 2 else grpc_client) for i in range(clients)]
        for t in threads:
            t.start()
        time.sleep(seconds / 3)
        publish_copy(base, 1, 2)
        assert wait_for(lambda: srv.describe()["flowers"] == {"2": "tflite-fp32"}), srv.describe()
        time.sleep(seconds / 3)
        publish_copy(base, 2, 3)
        assert wait_for(lambda: srv.describe()["flowers"] == {"3": "tflite-fp32"}), srv.describe()
        time.sleep(seconds / 3)
        stop.set()
        for t in threads:
            t.join(60)

        assert failures == [], failures[:5]
        assert versions[1] > 0 and versions[3] > 0, versions  # served before and after the swaps
        status = requests.get(srv.rest_url + "/v1/models/flowers", timeout=5).json()["model_version_status"]
        assert {s["version"]: s["state"] for s in status} == {"1": "END", "2": "END", "3": "AVAILABLE"}
        with grpc.insecure_channel(srv.grpc_target) as ch:
            req = P.PredictRequest(model_spec=P.model_spec("flowers"))
            req.inputs["image"].CopyFrom(P.to_tensor_proto(images))
            assert P.unary_unary(ch, P.PREDICT)(req, timeout=10).model_spec.version.value == 3


def test_publish_new_versions_under_load_without_failures(tmp_path, shared_version_dir, photos):
    shutil.copytree(shared_version_dir.parent, tmp_path / "flowers")
    _load(tmp_path / "flowers", photos, seconds=12.0)


@pytest.mark.slow
def test_publish_new_versions_under_load_30s(tmp_path, shared_version_dir, photos):
    shutil.copytree(shared_version_dir.parent, tmp_path / "flowers")
    _load(tmp_path / "flowers", photos, seconds=30.0)


class Slow:
    """A real runner that takes ``DELAY`` seconds per call (so a request is in flight during a swap)."""

    DELAY = 1.0

    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def run(self, inputs, signature="serving_default"):
        time.sleep(self.DELAY)
        return self.inner.run(inputs, signature)


def test_old_version_finishes_in_flight_requests_and_removed_versions_unload(tmp_path, shared_version_dir):
    base = tmp_path / "flowers"
    shutil.copytree(shared_version_dir.parent, base)
    cfg = ServerConfig(
        model_name="flowers",
        model_base_path=str(base),
        port=0,
        rest_api_port=0,
        threads=2,
        poll_seconds=0.1,
        runner_wrapper=Slow,
        access_log=False,
    )
    x = np.zeros((1, 64, 64, 3), np.float32)
    with EdgeServer(cfg) as srv:
        result: dict = {}

        def slow_request() -> None:
            with grpc.insecure_channel(srv.grpc_target) as ch:
                req = P.PredictRequest(model_spec=P.model_spec("flowers"))
                req.inputs["image"].CopyFrom(P.to_tensor_proto(x))
                result["version"] = P.unary_unary(ch, P.PREDICT)(req, timeout=30).model_spec.version.value

        t = threading.Thread(target=slow_request)
        t.start()
        time.sleep(0.3)  # the request now holds version 1 inside the slow runner
        publish_copy(base, 1, 2)
        assert wait_for(lambda: "2" in srv.describe()["flowers"])
        t.join(30)
        assert result == {"version": 1}  # finished on the version it started with
        assert wait_for(lambda: srv.describe()["flowers"] == {"2": "tflite-fp32"})

        # Removing every version folder unloads them: the model is no longer ready.
        shutil.rmtree(base / "2")
        shutil.rmtree(base / "1")
        assert wait_for(lambda: srv.describe()["flowers"] == {})
        assert requests.get(srv.rest_url + "/readyz", timeout=5).status_code == 503
        r = requests.post(srv.rest_url + "/v1/models/flowers:predict", data=b'{"instances": [1]}', timeout=5)
        assert (r.status_code, r.json()) == (404, {"error": "Servable not found for request: Latest(flowers)"})
        # ...and a version published again is picked up.
        shutil.copytree(shared_version_dir, base / ".5.tmp")
        os.replace(base / ".5.tmp", base / "5")
        assert wait_for(lambda: srv.describe()["flowers"] == {"5": "tflite-fp32"})
        assert requests.get(srv.rest_url + "/readyz", timeout=5).status_code == 200
