"""``deepclf serve`` as a process: TensorFlow is never imported (an import hook makes it fail), SIGTERM drains
in-flight requests and exits 0, and the CLI reports bad flags or models in one line without a traceback."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import requests

from deepclf import protocol as P

DRIVER = Path(__file__).with_name("serve_driver.py")
REPO = Path(__file__).resolve().parents[2]
ADDRESS = re.compile(r"gRPC on (\S+), REST on (http://\S+);")


def _start(*args: str) -> tuple[subprocess.Popen, str, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    proc = subprocess.Popen(
        [sys.executable, str(DRIVER), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None  # a PIPE
    line = proc.stdout.readline()  # the first line names the addresses once every model is AVAILABLE
    m = ADDRESS.search(line)
    if not m:
        proc.kill()
        out, err = proc.communicate(timeout=30)
        raise AssertionError(f"server did not start: {line!r}\n{out}\n{err[-3000:]}")
    return proc, m.group(1), m.group(2)


def test_serves_tflite_without_tensorflow_and_sigterm_exits_0(models_root):
    proc, grpc_target, rest = _start(
        "--",
        "--model_config_file",
        str(_config(models_root)),
        "--port",
        "0",
        "--rest_api_port",
        "0",
        "--format",
        "int8",
        "--threads",
        "2",
    )
    try:
        r = requests.post(f"{rest}/v1/models/half_plus_two:predict", data=b'{"instances": [1.0, 2.0, 5.0]}', timeout=30)
        assert r.json() == {"predictions": [2.5, 3.0, 4.5]}
        x = np.zeros((2, 64, 64, 3), np.float32)
        r = requests.post(f"{rest}/v1/models/flowers:predict", data=P.encode_predict_request({"image": x}), timeout=30)
        assert r.status_code == 200 and len(r.json()["predictions"]) == 2
        import grpc

        with grpc.insecure_channel(grpc_target) as ch:
            meta = P.GetModelMetadataRequest(model_spec=P.model_spec("flowers"), metadata_field=["signature_def"])
            assert (
                "serving_default"
                in P.unpack_signature_defs(P.unary_unary(ch, P.GET_MODEL_METADATA)(meta)).signature_def
            )
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    assert "blocked imports: []" in err, err[-3000:]  # nothing even tried to import TensorFlow
    assert "Traceback" not in err
    # One JSON access-log line per request on stderr, every one written by exit (a background thread writes them).
    assert err.count('"api":"rest","method":"predict"') == 2 and err.count('"api":"grpc","method":"metadata"') == 1


def _config(root: Path) -> Path:
    path = root / "serve.config"
    path.write_text(f"""model_config_list {{
  config {{ name: "flowers" base_path: "{root / "flowers"}" model_platform: "tensorflow" }}
  config {{ name: "half_plus_two" base_path: "{root / "half_plus_two"}" model_platform: "tensorflow" }}
}}""")
    return path


def test_sigterm_drains_in_flight_requests_then_exits_0(models_root):
    proc, _, rest = _start(
        "--slow",
        "2.0",
        "--",
        "--model_base_path",
        str(models_root / "half_plus_two"),
        "--port",
        "0",
        "--rest_api_port",
        "0",
        "--grace_seconds",
        "20",
    )
    results: list = []

    def call() -> None:
        try:
            r = requests.post(f"{rest}/v1/models/half_plus_two:predict", data=b'{"instances": [6.0]}', timeout=60)
            results.append((r.status_code, r.json()))
        except Exception as exc:  # recorded and asserted on
            results.append(exc)

    threads = [threading.Thread(target=call) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.7)  # both requests are inside the 2-second runner call now
    proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(60)
    _, err = proc.communicate(timeout=60)
    assert results == [(200, {"predictions": [5.0]})] * 2, (results, err[-2000:])
    assert proc.returncode == 0, err[-3000:]
    assert "SIGTERM received; draining" in err and "deepclf serve: stopped" in err
    try:
        requests.get(f"{rest}/healthz", timeout=2)
        raise AssertionError("the server still accepts connections after exiting")
    except requests.ConnectionError:
        pass


def test_cli_errors_are_one_line_without_traceback(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    proc = subprocess.run(
        [
            sys.executable,
            str(DRIVER),
            "--",
            "--model_base_path",
            str(tmp_path / "nope"),
            "--port",
            "0",
            "--rest_api_port",
            "0",
            "--file_system_poll_wait_seconds=0",  # no polling: a missing base path is an error at once
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "error: model 'nope': base path" in proc.stderr and "Traceback" not in proc.stderr
