"""``deepclf serve`` on arm64, called from x86: the server runs in the root (as a Pi 4) exactly as
deployment/systemd/deepclf-serve.service starts it (its ExecStart line, as its user, the whole root read-only
but a private /tmp, the models where the unit reads them), and this host calls it as a program on another
machine would: the official TF Serving gRPC stubs (with TensorFlow), REST, and deepclf's own client. Answers:
the same top-1 as this host's runner for every photo, probabilities within the parity tolerances
(test_parity.py). The server's memory is recorded: VmRSS and VmHWM of the emulated process (qemu's own memory
included: ``test_qemu_overhead`` shows how much) beside the same server on x86.
"""

from __future__ import annotations

import base64
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from deepclf.bench.process import free_port, serve_command, stop_process, wait_available
from deepclf.preprocessing import preprocess_batch
from deepclf.runtime import load_runner
from deepclf.serving.measure import proc_status_bytes
from tests.deploy.systemd import exec_start, unit_sections

from .conftest import PREBUILT, report
from .test_parity import TOLERANCE

pytestmark = pytest.mark.arm64

MODEL = "flowers"
REQUESTS = 20  # single-photo predictions after warm-up, before memory is read


def model_base_path(argv: list[str]) -> str:
    found = [a.split("=", 1)[1] for a in argv if a.startswith("--model_base_path=")]
    assert len(found) == 1, argv
    return found[0]


@pytest.fixture(scope="module")
def service(edge_root: Any) -> dict[str, Any]:
    """The unit's user created in the root (as its header says) and the model put where ExecStart reads it."""
    user = unit_sections()["Service"]["User"]
    edge_root.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", user], check=True)
    base = model_base_path(exec_start())
    edge_root.run(["mkdir", "-p", str(Path(base).parent)], check=True)
    edge_root.run(["cp", "-r", f"{PREBUILT}/models/{MODEL}", base], check=True)
    return {"user": user, "argv": ["deepclf", *exec_start()[1:]]}


def mib(n: int | None) -> str:
    return "?" if n is None else f"{n / 2**20:.0f} MiB"


class Running:
    def __init__(self, proc: subprocess.Popen, grpc_port: int, rest_port: int) -> None:
        self.proc, self.grpc, self.rest = proc, f"127.0.0.1:{grpc_port}", f"http://127.0.0.1:{rest_port}"

    def memory(self) -> tuple[int | None, int | None]:
        return proc_status_bytes(self.proc.pid, "VmRSS"), proc_status_bytes(self.proc.pid, "VmHWM")


def start(argv_for: Any, log: Path, timeout: float) -> Running:
    grpc_port, rest_port = free_port(), free_port()
    with open(log, "w") as out:
        proc = argv_for(grpc_port, rest_port, out)
    why = wait_available(proc, rest_port, MODEL, timeout=timeout, poll_interval=0.5)
    if why:
        stop_process(proc)
        pytest.fail(f"deepclf serve did not come up: {why}\n{log.read_text()[-3000:]}")
    return Running(proc, grpc_port, rest_port)


def exercise(srv: Running, photos: list[Path], batch: np.ndarray, labels: list[str]) -> dict[str, np.ndarray]:
    """Official stubs (Predict on a tensor and on image bytes, Classify on tf.Examples), REST (image bytes),
    deepclf's gRPC client, then REQUESTS single predictions; returns each path's probabilities (Classify's
    scores put back in label order)."""
    import grpc
    import httpx
    import tensorflow as tf
    from tensorflow_serving.apis import classification_pb2, predict_pb2, prediction_service_pb2_grpc

    from deepclf.clients import GrpcClient

    out: dict[str, np.ndarray] = {}
    with grpc.insecure_channel(srv.grpc) as ch:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(ch)
        req = predict_pb2.PredictRequest()
        req.model_spec.name = MODEL
        req.inputs["image"].CopyFrom(tf.make_tensor_proto(batch))
        out["official-tensor"] = tf.make_ndarray(stub.Predict(req, timeout=300).outputs["probabilities"])
        req_b = predict_pb2.PredictRequest()
        req_b.model_spec.name = MODEL
        req_b.model_spec.signature_name = "predict_image_bytes"
        req_b.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto([p.read_bytes() for p in photos]))
        out["official-bytes"] = tf.make_ndarray(stub.Predict(req_b, timeout=300).outputs["probabilities"])
        # Classify on image bytes: tf.Examples holding the JPEGs, the official stub's Classify
        req_c = classification_pb2.ClassificationRequest()
        req_c.model_spec.name = MODEL
        req_c.model_spec.signature_name = "classify_image_bytes"
        for p in photos:
            example = req_c.input.example_list.examples.add()
            example.features.feature["image/encoded"].bytes_list.value.append(p.read_bytes())
        result = stub.Classify(req_c, timeout=300).result.classifications
        out["official-classify"] = np.asarray(
            [[c.score for c in sorted(r.classes, key=lambda c: labels.index(c.label))] for r in result], np.float32
        )
    body = {
        "signature_name": "predict_image_bytes",
        "instances": [{"b64": base64.b64encode(p.read_bytes()).decode()} for p in photos],
    }
    r = httpx.post(f"{srv.rest}/v1/models/{MODEL}:predict", json=body, timeout=300)
    assert r.status_code == 200, r.text
    out["rest-bytes"] = np.asarray([row["probabilities"] for row in r.json()["predictions"]], np.float32)
    with GrpcClient(srv.grpc, timeout=300) as client:
        out["deepclf-grpc"] = client.predict({"image": batch}, model=MODEL)["probabilities"]
        for i in range(REQUESTS):
            client.predict({"image": batch[i % len(batch) : i % len(batch) + 1]}, model=MODEL)
    return out


@pytest.fixture(scope="module")
def photos(gen_photos: Path) -> list[Path]:
    """Eight generated photos, from every class."""
    return sorted(gen_photos.glob("*/*.jpg"))[::25][:8]


@pytest.mark.parametrize("variant", ["int8", "fp32"])
def test_x86_clients_against_the_arm64_server(
    edge_root: Any, service: dict[str, Any], shared_version_dir: Path, photos: list[Path], tmp_path: Path, variant: str
) -> None:
    """int8: the unit's line as it is; fp32: with ``--format=fp32`` added (argparse: the last one counts)."""
    with load_runner(shared_version_dir, variant=variant) as local:
        batch = preprocess_batch(photos, local.manifest.input)
        want = local.run({"image": batch})["probabilities"]
        labels = list(local.manifest.labels)
    extra = [] if variant == "int8" else [f"--format={variant}"]

    def in_root(grpc_port: int, rest_port: int, out: Any) -> subprocess.Popen:
        argv = [*service["argv"], *extra, f"--port={grpc_port}", f"--rest_api_port={rest_port}"]
        env = {"HOME": f"/home/{service['user']}", "PYTHONUNBUFFERED": "1"}
        return edge_root.popen(
            argv, env=env, cwd="/", user=service["user"], read_only=True, stdout=out, stderr=subprocess.STDOUT
        )

    def native(grpc_port: int, rest_port: int, out: Any) -> subprocess.Popen:
        flags = [
            a
            for a in service["argv"][2:]
            if not a.startswith(("--model_name=", "--model_base_path=", "--port=", "--rest_api_port="))
        ]
        argv = serve_command(MODEL, shared_version_dir.parent, grpc_port, rest_port, *flags, *extra)
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)

    memory = {}
    for name, launcher, timeout in (("arm64", in_root, 600), ("x86", native, 120)):
        t0 = time.monotonic()
        srv = start(launcher, tmp_path / f"{name}.log", timeout)
        ready_s = time.monotonic() - t0
        try:
            got = exercise(srv, photos, batch, labels)
            memory[name] = (*srv.memory(), ready_s)
        finally:
            stop_process(srv.proc, timeout=60)
        if name == "arm64":
            for path, probs in got.items():
                assert probs.shape == want.shape, path
                assert (probs.argmax(1) == want.argmax(1)).all(), f"{path}: top-1 differs from x86's runner"
                dp = float(np.abs(probs - want).max())
                assert dp <= TOLERANCE[variant], f"{path}: max |dp| {dp:.3g} > {TOLERANCE[variant]:.3g}"
    report(
        f"arm64: deepclf serve as deepclf-serve.service runs it, --format={variant}, after {REQUESTS + 4} calls",
        [
            f"{name}: VmRSS {mib(rss)}, VmHWM {mib(hwm)}, AVAILABLE after {ready:.0f} s"
            for name, (rss, hwm, ready) in memory.items()
        ],
    )


def test_qemu_overhead(edge_root: Any) -> None:
    """What emulation alone adds to a process's memory: an idle Python (numpy imported) under qemu and here."""
    code = "import sys, time, numpy; print('up', flush=True); time.sleep(30)"
    found = {}
    for name, argv in (("arm64", edge_root.command(["python", "-c", code])), ("x86", [sys.executable, "-c", code])):
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "up"
            found[name] = proc_status_bytes(proc.pid, "VmRSS")
        finally:
            proc.kill()
            proc.wait()
    assert found["arm64"] and found["x86"]
    report(
        "arm64: emulation's own memory",
        [f"idle python + numpy: arm64 (qemu) {mib(found['arm64'])}, x86 {mib(found['x86'])}"],
    )
