"""The clients never import TensorFlow, import quickly, and live beside tensorflow-serving-api in one process.

The TF-free check runs in a fresh interpreter where an import hook makes ``import tensorflow`` fail: it imports
``deepclf.clients``, starts the edge server (itself TF-free) and makes every client call, then checks
``sys.modules``: no TensorFlow, and none of what the ``[edge]`` install leaves out (``requests``; ``psutil`` and
``tqdm``, which are the ``[bench]`` extra's), although this venv has them all. The import time it measures is
reported (printed with ``-s``), never asserted.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from tests.prebuilt import require_tensorflow

from .conftest import MODEL

SCRIPT = textwrap.dedent(
    """
    import importlib.abc, sys, time

    class NoTF(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("tensorflow", "tensorflow_serving", "keras", "tf_keras"):
                raise ImportError(f"blocked for this test: {name}")
            return None

    sys.meta_path.insert(0, NoTF())
    try:
        import tensorflow  # noqa: F401 - imported only to prove the hook blocks it
        raise SystemExit("the import hook does not block tensorflow")
    except ImportError:
        pass

    t0 = time.perf_counter()
    import deepclf.clients as C
    import_s = time.perf_counter() - t0
    import asyncio
    import numpy as np
    from deepclf.serving import EdgeServer, ModelConfig, ServerConfig

    base, photo = sys.argv[1], sys.argv[2]
    cfg = ServerConfig(model_configs=[ModelConfig(name="flowers", base_path=base, policy="all",
                                                  version_labels={"stable": 1})],
                       port=0, rest_api_port=0, format="fp32", access_log=False, poll_seconds=0,
                       allow_version_labels_for_unavailable_models=True)
    with EdgeServer(cfg) as srv:
        for c in (C.RestClient(srv.rest_url), C.GrpcClient(srv.grpc_target), C.LocalClient(base + "/1")):
            with c:
                c.wait_until_available("flowers", 10)
                c.status("flowers"); c.metadata("flowers", version=1)
                c.predict(np.zeros((1, 64, 64, 3), np.float32), model="flowers")
                c.classify([photo], model="flowers", label="stable" if not isinstance(c, C.LocalClient) else None)
                c.classify([photo], model="flowers", send="bytes")

        async def run():
            for c in (C.AsyncRestClient(srv.rest_url), C.AsyncGrpcClient(srv.grpc_target)):
                async with c:
                    await c.wait_until_available("flowers", 10)
                    await c.status("flowers"); await c.metadata("flowers")
                    await c.predict({"image": np.zeros((1, 64, 64, 3), np.float32)}, model="flowers")
                    await c.classify([photo], model="flowers", send="bytes")

        asyncio.run(run())
    bad = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "tensorflow_serving", "keras"))
    unneeded = sorted(m for m in sys.modules if m.split(".")[0] in ("requests", "psutil", "tqdm"))
    print("LOADED:", bad)
    print("NOT_EDGE:", unneeded)
    print(f"IMPORT_SECONDS: {import_s:.3f}")
    sys.exit(1 if bad or unneeded else 0)
    """
)

IMPORT_ONLY = "import time; t = time.perf_counter(); import deepclf.clients; print(time.perf_counter() - t)"


def test_clients_never_import_tensorflow(model_base: Path, photos: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(model_base), photos[0]], capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "LOADED: []" in proc.stdout
    assert "NOT_EDGE: []" in proc.stdout  # serving and calling need neither requests, psutil nor tqdm
    print(proc.stdout.strip().splitlines()[-1])  # reported, not asserted


def test_import_time_is_reported() -> None:
    runs = [
        float(
            subprocess.run(
                [sys.executable, "-c", IMPORT_ONLY], capture_output=True, text=True, check=True, timeout=60
            ).stdout
        )
        for _ in range(3)
    ]
    print(f"import deepclf.clients: best of 3 = {min(runs):.3f} s (runs: {', '.join(f'{r:.3f}' for r in runs)})")


def test_coexists_with_tensorflow_serving_api(edge: Any, photos: list[str]) -> None:
    """Both in one process: our client and the official stub ask the same server and get the same answer."""
    require_tensorflow("tensorflow-serving-api imports it")
    grpc = __import__("grpc")
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    from deepclf.clients import GrpcClient
    from deepclf.preprocessing import preprocess_batch

    batch = preprocess_batch(photos[:2], (64, 64))
    with GrpcClient(edge.grpc_target) as ours:
        mine = ours.predict({"image": batch}, model=MODEL, version=1)
    official = predict_pb2.PredictRequest()
    official.model_spec.name = MODEL
    official.model_spec.version.value = 1
    official.model_spec.signature_name = "serving_default"
    official.inputs["image"].dtype = 1  # DT_FLOAT
    for d in batch.shape:
        official.inputs["image"].tensor_shape.dim.add(size=d)
    official.inputs["image"].tensor_content = batch.tobytes()
    with grpc.insecure_channel(edge.grpc_target) as ch:
        resp = prediction_service_pb2_grpc.PredictionServiceStub(ch).Predict(official, timeout=30)
    theirs = np.asarray(resp.outputs["probabilities"].float_val, np.float32).reshape(2, -1)  # typed, as TF Serving
    np.testing.assert_array_equal(mine["probabilities"], theirs)
