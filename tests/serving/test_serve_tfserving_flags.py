"""``deepclf serve`` takes ``tensorflow_model_server``'s command line: flag syntax, ignored and unknown flags, the
batching parameters file, ``models.config`` reloads while serving, and TF Serving's documented command lines
started unchanged (docs/tfserving-behaviour.md §1, §2, §3.2, §8.6)."""

from __future__ import annotations

import functools
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import requests

from deepclf import protocol as P
from deepclf.errors import UsageError
from deepclf.serving.batching import (
    QUEUE_FULL,
    Batcher,
    load_batching_parameters,
    parse_batching_parameters,
)
from deepclf.serving.cli import build_serve_args, config_from_args

DRIVER = Path(__file__).with_name("serve_driver.py")
REPO = Path(__file__).resolve().parents[2]

# -- flag syntax -------------------------------------------------------------------------------------------------


def test_flag_syntax_equals_space_and_booleans() -> None:
    a = build_serve_args(
        [
            "--port=0",
            "--rest_api_port",
            "0",
            "--model_name=m",
            "--model_base_path",
            "/models/m",
            "--enable_batching",
            "--enable_model_warmup=false",
            "--allow_version_labels_for_unavailable_models=TRUE",
            "--rest_api_ssl",
            "0",
            "--model_config_file_poll_wait_seconds=2",
        ]
    )
    assert (a.port, a.rest_api_port, a.model_name, a.model_base_path) == (0, 0, "m", "/models/m")
    assert a.enable_batching is True and a.enable_model_warmup is False and a.rest_api_ssl is False
    assert a.allow_version_labels_for_unavailable_models is True
    assert a.model_config_file_poll_wait_seconds == 2
    # Defaults: warmup on (as TF Serving), batching off, config read once.
    d = build_serve_args([])
    assert d.enable_model_warmup is True and d.enable_batching is False and d.model_config_file_poll_wait_seconds == 0


def test_bad_boolean_value_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_serve_args(["--enable_batching=yes"])
    assert exc.value.code == 2
    assert "expected true, false, 1 or 0" in capsys.readouterr().err


def test_tensorflow_thread_flags_map_onto_deepclf_threads() -> None:
    a = build_serve_args(
        [
            "--model_base_path=/m",
            "--tensorflow_intra_op_parallelism=3",
            "--tensorflow_inter_op_parallelism=2",
            "--port=0",
            "--rest_api_port=0",
        ]
    )
    cfg = config_from_args(a)
    assert (cfg.interpreter_threads, cfg.threads) == (3, 2)


def test_rest_port_equal_to_grpc_port_turns_rest_off(capsys: pytest.CaptureFixture[str]) -> None:
    cfg = config_from_args(build_serve_args(["--model_base_path=/m", "--port=9000", "--rest_api_port=9000"]))
    assert (cfg.port, cfg.rest_api_port) == (9000, None)
    assert "REST is not served" in capsys.readouterr().err


def test_ignored_flags_warn_once_and_do_not_crash(capsys: pytest.CaptureFixture[str]) -> None:
    a = build_serve_args(
        [
            "--per_process_gpu_memory_fraction=0.5",
            "--xla_cpu_compilation_enabled",
            "--platform_config_file",
            "/x.config",
            "--enable_profiler=false",
            "--xla_cpu_compilation_enabled=true",
            "--port=0",
        ]
    )
    assert a.port == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "ignoring" in line]
    assert len(lines) == 1, err
    for flag in ("--per_process_gpu_memory_fraction", "--xla_cpu_compilation_enabled", "--platform_config_file"):
        assert flag in lines[0]
    assert lines[0].count("--xla_cpu_compilation_enabled") == 1


@pytest.mark.parametrize(
    ("flag", "suggestion"),
    [("--rest_api_prot=8501", "--rest_api_port"), ("--model_base_pth", "--model_base_path")],
)
def test_unknown_flag_exits_2_with_closest_match(
    flag: str, suggestion: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from deepclf.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["serve", flag])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    name = flag.split("=")[0]
    assert f"unknown flag {name}; did you mean {suggestion}?" in err


def test_version_flag_prints_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    from deepclf.cli import main

    assert main(["serve", "--version"]) == 0
    assert capsys.readouterr().out.startswith("TensorFlow ModelServer: ")


# -- batching parameters file ------------------------------------------------------------------------------------

BATCHING_DOC = """
max_batch_size { value: 128 }
batch_timeout_micros { value: 0 }
max_enqueued_batches { value: 1000000 }
num_batch_threads { value: 8 }
"""


def test_batching_file_parses_the_documented_example(tmp_path: Path) -> None:
    p = parse_batching_parameters(BATCHING_DOC + "allowed_batch_sizes: 32\nallowed_batch_sizes: 128\n")
    assert (p.max_batch_size, p.batch_timeout_micros, p.max_enqueued_batches, p.num_batch_threads) == (
        128,
        0,
        1000000,
        8,
    )
    assert p.allowed_batch_sizes == (32, 128)
    f = tmp_path / "batching.config"
    f.write_text(BATCHING_DOC + "pad_variable_length_inputs: true  # comment\n")
    assert load_batching_parameters(f).pad_variable_length_inputs is True
    a = build_serve_args(["--model_base_path=/m", "--enable_batching", f"--batching_parameters_file={f}"])
    cfg = config_from_args(a)
    assert (cfg.max_batch_size, cfg.num_batch_threads, cfg.max_enqueued_batches) == (128, 8, 1000000)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("max_batch_size { value: 8 } allowed_batch_sizes: 2 allowed_batch_sizes: 4", "last entry was 4; expected 8"),
        (
            "max_batch_size { value: 8 } allowed_batch_sizes: 4 allowed_batch_sizes: 2 allowed_batch_sizes: 8",
            "increasing",
        ),
        ("max_enqueued_batches { value: 0 }", "max_enqueued_batches must be >= 1, got 0"),
        ("max_batch_size { value: abc }", "1:25 : 'max_batch_size { value: abc }': Couldn't parse integer: abc"),
        ("max_batch_sise { value: 8 }", 'has no field named "max_batch_sise"'),
    ],
)
def test_batching_file_validation(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "batching.config"
    f.write_text(text)
    with pytest.raises(UsageError, match=re.escape(message)):
        load_batching_parameters(f)


def test_batching_file_needs_enable_batching_and_max_enqueued_0_is_refused(tmp_path: Path) -> None:
    from deepclf.serving.config import ServerConfig

    f = tmp_path / "batching.config"
    f.write_text(BATCHING_DOC)
    with pytest.raises(UsageError, match="without --enable_batching"):
        ServerConfig(model_base_path="/m", batching_parameters_file=f)
    with pytest.raises(UsageError, match="max_enqueued_batches must be >= 1"):
        ServerConfig(model_base_path="/m", enable_batching=True, max_enqueued_batches=0)


def _echo(calls: list[int], gate: threading.Event | None = None) -> Callable[..., dict[str, np.ndarray]]:
    def run(inputs: dict[str, np.ndarray], signature: str) -> dict[str, np.ndarray]:
        if gate is not None:
            gate.wait(10)
        calls.append(int(inputs["x"].shape[0]))
        return {"y": inputs["x"] * 2}

    return run


def test_batcher_task_too_large_and_queue_full_errors() -> None:
    calls: list[int] = []
    gate = threading.Event()
    b = Batcher(max_batch_size=2, timeout_s=0.0, num_threads=1, max_enqueued_batches=1)
    try:
        with pytest.raises(P.InvalidInput, match="Task size 3 is larger than maximum input batch size 2") as big:
            b.submit("k", _echo(calls), {"x": np.zeros((3, 1), np.float32)}, "s")
        assert big.value.http_status == 400
        running = b.submit("k", _echo(calls, gate), {"x": np.zeros((2, 1), np.float32)}, "s")  # taken by the thread
        time.sleep(0.2)
        waiting = b.submit("k", _echo(calls), {"x": np.zeros((2, 1), np.float32)}, "s")  # the one queued batch
        with pytest.raises(P.Unavailable, match=re.escape(QUEUE_FULL)) as full:
            b.submit("k", _echo(calls), {"x": np.zeros((1, 1), np.float32)}, "s")
        assert full.value.http_status == 503
        gate.set()
        assert running.result(10)["y"].shape == (2, 1) and waiting.result(10)["y"].shape == (2, 1)
    finally:
        gate.set()
        b.close()


def test_batcher_pads_to_allowed_batch_sizes_and_slices_outputs() -> None:
    calls: list[int] = []
    b = Batcher(max_batch_size=8, timeout_s=0.3, num_threads=1, allowed_batch_sizes=(4, 8))
    try:
        futures = [
            b.submit("k", _echo(calls), {"x": np.full((n, 1), n, np.float32)}, "s") for n in (1, 2)
        ]  # 3 rows merged, padded to 4
        outs = [f.result(10)["y"] for f in futures]
    finally:
        b.close()
    assert calls == [4]
    assert outs[0].tolist() == [[2.0]] and outs[1].tolist() == [[4.0], [4.0]]
    calls.clear()
    b = Batcher(max_batch_size=8, timeout_s=0.0, num_threads=1, allowed_batch_sizes=(4, 8))
    try:  # a batch of one request is padded too
        assert b.submit("k", _echo(calls), {"x": np.ones((5, 1), np.float32)}, "s").result(10)["y"].shape == (5, 1)
    finally:
        b.close()
    assert calls == [8]


def test_batcher_pads_variable_length_inputs_with_their_first_element() -> None:
    """pad_variable_length_inputs: requests whose non-batch dims differ share a batch, each padded at the end of
    every non-batch dim to the batch's largest with its own first element (TF Serving's batching_util.cc)."""
    from deepclf.serving.batching import batch_key

    seen: list[np.ndarray] = []

    def run(inputs, signature):
        seen.append(inputs["x"].copy())
        return {"y": inputs["x"] * 2}

    a = {"x": np.array([[7, 1]], np.int32)}
    b2 = {"x": np.array([[3, 4, 5], [6, 8, 9]], np.int32)}
    assert batch_key(("m",), a) != batch_key(("m",), b2)  # padding off: separate queues, never merged
    key = batch_key(("m",), a, pad_variable_length=True)
    assert key == batch_key(("m",), b2, pad_variable_length=True)
    b = Batcher(max_batch_size=8, timeout_s=0.3, num_threads=1, pad_variable_length_inputs=True)
    try:
        fa, fb = b.submit(key, run, a, "s"), b.submit(key, run, b2, "s")
        out_a, out_b = fa.result(10)["y"], fb.result(10)["y"]
    finally:
        b.close()
    assert len(seen) == 1 and seen[0].tolist() == [[7, 1, 7], [3, 4, 5], [6, 8, 9]]
    assert out_a.tolist() == [[14, 2, 14]] and out_b.tolist() == [[6, 8, 10], [12, 16, 18]]


def test_rest_oversized_request_with_batching_is_400(models_root: Path) -> None:
    from deepclf.serving import EdgeServer, ServerConfig

    cfg = ServerConfig(
        model_name="flowers",
        model_base_path=models_root / "flowers",
        port=None,
        rest_api_port=0,
        threads=1,
        poll_seconds=0,
        enable_batching=True,
        max_batch_size=2,
        access_log=False,
    )
    with EdgeServer(cfg) as srv:
        x = np.zeros((3, 64, 64, 3), np.float32)
        r = requests.post(
            f"{srv.rest_url}/v1/models/flowers:predict", data=P.encode_predict_request({"image": x}), timeout=30
        )
    assert r.status_code == 400, r.text
    assert "Task size 3 is larger than maximum input batch size 2" in r.json()["error"]


# -- models.config reloads -----------------------------------------------------------------------------------------


def _models_config(path: Path, models: dict[str, Path], labels: str = "") -> None:
    entries = "\n".join(
        f'  config {{ name: "{n}" base_path: "{p}" model_platform: "tensorflow" {labels if n == "flowers" else ""} }}'
        for n, p in models.items()
    )
    path.write_text(f"model_config_list {{\n{entries}\n}}\n")


def _rest_status(srv: object, name: str) -> int:
    return requests.get(f"{srv.rest_url}/v1/models/{name}", timeout=10).status_code  # type: ignore[attr-defined]


def _grpc_status(channel: grpc.Channel, name: str) -> grpc.StatusCode:
    try:
        P.unary_unary(channel, P.GET_MODEL_STATUS)(P.GetModelStatusRequest(model_spec=P.model_spec(name)))
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def _wait(cond: Callable[[], bool], timeout: float = 20.0) -> float:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.1)
    return time.monotonic() - t0


class _Slow:
    """Runner wrapper: each call sleeps first, so a request is in flight while its model is removed."""

    def __init__(self, inner: object) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def run(self, inputs: object, signature: str = "serving_default") -> object:
        time.sleep(1.0)
        return self.inner.run(inputs, signature)  # type: ignore[attr-defined]


class _Records(logging.Handler):
    """Collects log messages."""

    def __init__(self, into: list[str]) -> None:
        super().__init__()
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record.getMessage())


def test_models_config_reload_adds_and_removes_models_live(models_root: Path, tmp_path: Path) -> None:
    from deepclf.serving import EdgeServer, ServerConfig

    flowers, hpt = models_root / "flowers", models_root / "half_plus_two"
    conf = tmp_path / "models.config"
    _models_config(conf, {"flowers": flowers})
    cfg = ServerConfig(
        model_config_file=conf,
        config_poll_seconds=1,
        port=0,
        rest_api_port=0,
        threads=2,
        poll_seconds=0,
        access_log=False,
        runner_wrapper=_Slow,
    )
    records: list[str] = []
    handler = _Records(records)
    logging.getLogger("deepclf.serving").addHandler(handler)
    try:
        with EdgeServer(cfg) as srv, grpc.insecure_channel(srv.grpc_target) as ch:
            assert _rest_status(srv, "half_plus_two") == 404
            # Added: served within a poll or two, over REST and gRPC.
            _models_config(conf, {"flowers": flowers, "half_plus_two": hpt})
            took = _wait(lambda: _rest_status(srv, "half_plus_two") == 200)
            assert took < 10, took
            assert _grpc_status(ch, "half_plus_two") == grpc.StatusCode.OK

            # Removed while a request is in flight: that request finishes, new ones get 404 / NOT_FOUND.
            results: list[int] = []
            x = P.encode_predict_request({"image": np.zeros((1, 64, 64, 3), np.float32)})
            t = threading.Thread(
                target=lambda: results.append(
                    requests.post(f"{srv.rest_url}/v1/models/flowers:predict", data=x, timeout=30).status_code
                )
            )
            t.start()
            time.sleep(0.3)
            _models_config(conf, {"half_plus_two": hpt})
            _wait(lambda: _rest_status(srv, "flowers") == 404)
            t.join(30)
            assert results == [200]
            assert _grpc_status(ch, "flowers") == grpc.StatusCode.NOT_FOUND

            # Invalid new configs (syntax, duplicate names, a platform TF Serving does not have, a label naming a
            # missing version): one log line each, the running config stays.
            reloads = srv.config_reloads
            tf = 'model_platform: "tensorflow"'
            for bad, why in (
                ("model_config_list { config { name: ", "not a valid"),
                (
                    f'model_config_list {{ config {{ name: "a" base_path: "{hpt}" {tf} }} '
                    f'config {{ name: "a" base_path: "{hpt}" {tf} }} }}',
                    "unique",
                ),
                (
                    f'model_config_list {{ config {{ name: "a" base_path: "{hpt}" model_platform: "tflite" }} }}',
                    "Model a requests unsupported platform tflite",
                ),
            ):
                conf.write_text(bad)
                _wait(functools.partial(lambda w: any("not applied" in r and w in r for r in records), why))
                records.clear()
            _models_config(conf, {"flowers": flowers}, labels="version_labels { key: 'stable' value: 9 }")
            _wait(lambda: any("not applied" in r and "'stable'" in r for r in records))
            assert srv.config_reloads == reloads
            assert _rest_status(srv, "half_plus_two") == 200 and _rest_status(srv, "flowers") == 404
            assert all("\n" not in r for r in records)
    finally:
        logging.getLogger("deepclf.serving").removeHandler(handler)


# -- TF Serving's documented command lines -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


ADDRESS = re.compile(r"REST on (http://\S+);")

#: docs/tfserving-behaviour.md §8.6, verbatim but for paths and ports: the Docker entrypoint's own line, the
#: serving config guide (entrypoint + config file + poll), the batching guide, building_with_docker, custom_op,
#: remote_predict. The Docker image's entrypoint runs
#: ``tensorflow_model_server --port=8500 --rest_api_port=8501 --model_name=${MODEL_NAME}
#: --model_base_path=${MODEL_BASE_PATH}/${MODEL_NAME} "$@"``.
DOC_LINES = [
    "--port=8500 --rest_api_port=8501 --model_name=my_model --model_base_path=/models/my_model",
    "--port=8500 --rest_api_port=8501 --model_name=my_model --model_base_path=/models/my_model "
    "--model_config_file=/models/models.config",
    "--port=8500 --rest_api_port=8501 --model_name=my_model --model_base_path=/models/my_model "
    "--model_config_file=/models/models.config --model_config_file_poll_wait_seconds=60",
    "--enable_batching --port=8500 --model_name=mnist --model_base_path=/models/mnist",
    "--port=8500 --model_name=mnist --model_base_path=/tmp/mnist_model/",
    "--rest_api_port=8501 --model_name=<model_name> --model_base_path=<model_base_path>",
    "--port=8500 --rest_api_port=8501 --model_config_file=/tmp/config_file.txt",
]


@pytest.mark.parametrize("line", DOC_LINES)
def test_tfserving_documented_command_lines_start(line: str, models_root: Path, tmp_path: Path) -> None:
    flowers = models_root / "flowers"
    conf = tmp_path / "models.config"
    _models_config(conf, {"flowers": flowers})
    grpc_port, rest_port = _free_port(), _free_port()
    argv = (
        line.replace("/models/my_model", str(flowers))
        .replace("/models/mnist", str(flowers))
        .replace("/tmp/mnist_model/", str(flowers) + "/")
        .replace("<model_base_path>", str(flowers))
        .replace("<model_name>", "flowers")
        .replace("/models/models.config", str(conf))
        .replace("/tmp/config_file.txt", str(conf))
        .replace("--port=8500", f"--port={grpc_port}")
        .replace("--rest_api_port=8501", f"--rest_api_port={rest_port}")
        .split()
    )
    if "--rest_api_port" not in line:  # TF Serving's REST is off by default; deepclf's is on at 8501: a free one
        argv.append(f"--rest_api_port={rest_port}")
    if "--port" not in line:
        argv.append(f"--port={grpc_port}")
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, str(DRIVER), "--", *argv, "--threads=1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        m = ADDRESS.search(first)
        assert m, f"did not start with {argv}: {first!r}"
        up = time.monotonic() - t0
        name = "my_model" if "my_model" in line and "models.config" not in line else "flowers"
        if "mnist" in line:
            name = "mnist"
        r = requests.get(f"{m.group(1)}/v1/models/{name}", timeout=10)
        assert r.status_code == 200, r.text
        assert r.json()["model_version_status"][0]["state"] == "AVAILABLE"
        assert up < 60, up
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    assert "blocked imports: []" in err and "Traceback" not in err


# -- model warmup ----------------------------------------------------------------------------------------------------


def _tfrecord(records: list[bytes]) -> bytes:
    import struct

    from deepclf.serving.warmup import masked_crc32c

    out = b""
    for data in records:
        length = struct.pack("<Q", len(data))
        out += length + struct.pack("<I", masked_crc32c(length)) + data + struct.pack("<I", masked_crc32c(data))
    return out


def _predict_log(inputs: dict[str, np.ndarray]) -> bytes:
    from deepclf.protocol.messages import message_class

    log: object = message_class("tensorflow.serving.PredictionLog")()
    request = log.predict_log.request  # type: ignore[attr-defined]
    request.model_spec.name = "flowers"
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(P.to_tensor_proto(value))
    return log.SerializeToString()  # type: ignore[attr-defined]


def test_tfrecord_reader_checks_crcs(tmp_path: Path) -> None:
    from deepclf.serving.warmup import crc32c, read_tfrecords

    assert crc32c(b"123456789") == 0xE3069283
    f = tmp_path / "records"
    f.write_bytes(_tfrecord([b"one", b"two!"]))
    assert list(read_tfrecords(f)) == [b"one", b"two!"]
    data = bytearray(f.read_bytes())
    data[13] ^= 0xFF  # a byte of the first record's data
    f.write_bytes(bytes(data))
    with pytest.raises(P.ServingError, match="CRC mismatch") as exc:
        list(read_tfrecords(f))
    assert exc.value.code == P.Code.DATA_LOSS


def _flowers_copy(models_root: Path, dest: Path, warmup: bytes | None) -> Path:
    import shutil

    base = dest / "flowers"
    shutil.copytree(models_root / "flowers", base)
    target = base / "1" / "assets.extra" / "tf_serving_warmup_requests"
    if warmup is not None:
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(warmup)
    return base


def test_warmup_runs_before_available_and_is_counted(models_root: Path, tmp_path: Path) -> None:
    from deepclf.serving import EdgeServer, ServerConfig

    good = _tfrecord([_predict_log({"image": np.zeros((n, 64, 64, 3), np.float32)}) for n in (1, 2, 3)])
    base = _flowers_copy(models_root, tmp_path, good)
    kw = {"model_base_path": base, "port": None, "rest_api_port": 0, "threads": 1, "poll_seconds": 0}
    with EdgeServer(ServerConfig(**kw)) as srv:  # type: ignore[arg-type]
        assert srv.warmup_requests == 3
    with EdgeServer(ServerConfig(**kw, enable_model_warmup=False)) as srv:  # type: ignore[arg-type]
        assert srv.warmup_requests == 0


@pytest.mark.parametrize(
    ("warmup", "message"),
    [
        (lambda: _tfrecord([_predict_log({"no_such_input": np.zeros((1, 4), np.float32)})]), "warmup request 0"),
        (lambda: _tfrecord([b"\xff\xff not a PredictionLog"]), "Failed to parse warmup record 0"),
        (lambda: b"not a TFRecord file at all", "TFRecord format"),
    ],
)
def test_failing_warmup_fails_the_load(
    models_root: Path, tmp_path: Path, warmup: Callable[[], bytes], message: str
) -> None:
    from deepclf.errors import ModelFormatError
    from deepclf.serving import EdgeServer, ServerConfig

    base = _flowers_copy(models_root, tmp_path, warmup())
    cfg = ServerConfig(model_base_path=base, port=None, rest_api_port=0, threads=1, poll_seconds=0)
    with pytest.raises(ModelFormatError, match=re.escape(message)):
        EdgeServer(cfg).start()


def _examples_log(kind: str, signature: str, photos: list[Path]) -> bytes:
    """A PredictionLog with a ``classify_log`` or ``regress_log`` request: one tf.Example per photo."""
    from deepclf.protocol.messages import message_class

    log: object = message_class("tensorflow.serving.PredictionLog")()
    request = getattr(log, kind).request
    request.model_spec.name = "flowers"
    request.model_spec.signature_name = signature
    for photo in photos:
        example = request.input.example_list.examples.add()
        example.features.feature["image/encoded"].bytes_list.value.append(photo.read_bytes())
    return log.SerializeToString()  # type: ignore[attr-defined]


def test_warmup_replays_classify_and_regress_logs(models_root: Path, tmp_path: Path, photos: list[Path]) -> None:
    """classify_log / regress_log records run through the Classify/Regress path (signature checks, tf.Example
    parsing, result filling), as TF Serving replays them; one that the signature cannot answer fails the load."""
    from deepclf.errors import ModelFormatError
    from deepclf.serving import EdgeServer, ServerConfig

    good = _tfrecord(
        [
            _examples_log("classify_log", "classify_image_bytes", photos[:2]),
            _predict_log({"image": np.zeros((1, 64, 64, 3), np.float32)}),
            _examples_log("classify_log", "classify_image_bytes", photos[2:3]),
        ]
    )
    base = _flowers_copy(models_root, tmp_path / "good", good)
    kw = {"port": None, "rest_api_port": 0, "threads": 1, "poll_seconds": 0}
    with EdgeServer(ServerConfig(model_base_path=base, **kw)) as srv:  # type: ignore[arg-type]
        assert srv.warmup_requests == 3
    for kind, signature, message in (
        ("classify_log", "serving_default", "warmup request 0"),  # not a tf.Example signature
        ("regress_log", "classify_image_bytes", "Expected one output Tensor"),  # two outputs: not a regression
    ):
        bad = _tfrecord([_examples_log(kind, signature, photos[:1])])
        base = _flowers_copy(models_root, tmp_path / kind / signature, bad)
        with pytest.raises(ModelFormatError, match=re.escape(message)):
            EdgeServer(ServerConfig(model_base_path=base, **kw)).start()  # type: ignore[arg-type]


def test_warmup_replays_multi_inference_logs(models_root: Path, tmp_path: Path, photos: list[Path]) -> None:
    """multi_inference_log records: each task's Classify runs on the shared input; an unsupported method fails."""
    from deepclf.errors import DeepclfError
    from deepclf.protocol.messages import message_class
    from deepclf.serving import EdgeServer, ServerConfig

    def multi_log(method: str) -> bytes:
        log: Any = message_class("tensorflow.serving.PredictionLog")()
        request = log.multi_inference_log.request
        task = request.tasks.add()
        task.model_spec.name = "flowers"
        task.model_spec.signature_name = "classify_image_bytes"
        task.method_name = method
        example = request.input.example_list.examples.add()
        example.features.feature["image/encoded"].bytes_list.value.append(photos[0].read_bytes())
        return log.SerializeToString()

    kw: dict[str, Any] = {"port": None, "rest_api_port": 0, "threads": 1, "poll_seconds": 0}
    base = _flowers_copy(models_root, tmp_path / "good", _tfrecord([multi_log("tensorflow/serving/classify")]))
    with EdgeServer(ServerConfig(model_base_path=base, **kw)) as srv:
        assert srv.warmup_requests == 1
    base = _flowers_copy(models_root, tmp_path / "bad", _tfrecord([multi_log("tensorflow/serving/predict")]))
    with pytest.raises(DeepclfError, match="Unsupported signature method_name: tensorflow/serving/predict"):
        EdgeServer(ServerConfig(model_base_path=base, **kw)).start()


def test_failed_load_is_retried_max_num_load_retries_times(models_root: Path) -> None:
    from deepclf.errors import ModelFormatError
    from deepclf.serving import EdgeServer, ServerConfig

    attempts: list[int] = []

    def flaky(runner: object) -> object:  # the first two loads fail, the third works
        attempts.append(1)
        if len(attempts) <= 2:
            raise ModelFormatError(f"simulated load failure {len(attempts)}")
        return runner

    kw = {"model_base_path": models_root / "flowers", "port": None, "rest_api_port": 0, "poll_seconds": 0}
    cfg = ServerConfig(**kw, runner_wrapper=flaky, max_num_load_retries=2, load_retry_interval_micros=0)  # type: ignore[arg-type]
    with EdgeServer(cfg) as srv:
        assert srv.manager is not None and srv.manager.summary() == {"flowers": [1]}
    assert len(attempts) == 3
    attempts.clear()
    cfg = ServerConfig(**kw, runner_wrapper=flaky, max_num_load_retries=1, load_retry_interval_micros=0)  # type: ignore[arg-type]
    with pytest.raises(ModelFormatError, match="simulated load failure 2"):
        EdgeServer(cfg).start()


def test_grpc_handle_reload_config_request(models_root: Path, tmp_path: Path) -> None:
    from deepclf.serving import EdgeServer, ServerConfig
    from deepclf.serving.modelconfig import parse_model_server_config, private_message_class

    flowers, hpt = models_root / "flowers", models_root / "half_plus_two"
    conf = tmp_path / "models.config"
    _models_config(conf, {"flowers": flowers})
    cfg = ServerConfig(model_config_file=conf, port=0, rest_api_port=0, threads=1, poll_seconds=0, access_log=False)

    def request(text: str) -> bytes:
        req: object = private_message_class("tensorflow.serving.ReloadConfigRequest")()
        req.config.CopyFrom(parse_model_server_config(text))  # type: ignore[attr-defined]
        return bytes(req.SerializeToString())  # type: ignore[attr-defined]

    with EdgeServer(cfg) as srv, grpc.insecure_channel(srv.grpc_target) as ch:
        reload = ch.unary_unary("/tensorflow.serving.ModelService/HandleReloadConfigRequest", None, None)
        tf = 'model_platform: "tensorflow"'
        both = f'model_config_list {{ config {{ name: "flowers" base_path: "{flowers}" {tf} }} '
        both += f'config {{ name: "half_plus_two" base_path: "{hpt}" {tf} }} }}'
        answer = private_message_class("tensorflow.serving.ReloadConfigResponse").FromString(reload(request(both)))
        assert answer.status.error_code == 0  # type: ignore[attr-defined]
        assert _rest_status(srv, "half_plus_two") == 200 and _grpc_status(ch, "half_plus_two") == grpc.StatusCode.OK
        dupes = (
            f'model_config_list {{ config {{ name: "a" base_path: "{hpt}" {tf} }} '
            f'config {{ name: "a" base_path: "{hpt}" {tf} }} }}'
        )
        with pytest.raises(grpc.RpcError) as exc:
            reload(request(dupes))
        assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "unique" in str(exc.value.details())
        assert _rest_status(srv, "flowers") == 200
        reload(request(f'model_config_list {{ config {{ name: "half_plus_two" base_path: "{hpt}" {tf} }} }}'))
        assert _rest_status(srv, "flowers") == 404 and _grpc_status(ch, "flowers") == grpc.StatusCode.NOT_FOUND


def test_rest_api_timeout_answers_504_and_drops_queued_work(models_root: Path) -> None:
    """--rest_api_timeout_in_ms: a REST call slower than it answers DEADLINE_EXCEEDED / 504 with TF Serving's
    ``{"error": ...}`` body (spec §5.10); a request still queued when its deadline passes never reaches the runner."""
    from concurrent.futures import ThreadPoolExecutor

    from deepclf.serving import EdgeServer, ModelConfig, ServerConfig

    calls: list[float] = []

    class Counting(_Slow):
        def run(self, inputs: object, signature: str = "serving_default") -> object:
            calls.append(time.monotonic())
            return super().run(inputs, signature)

    cfg = ServerConfig(
        model_configs=[ModelConfig("half_plus_two", str(models_root / "half_plus_two"))],
        port=0,
        rest_api_port=0,
        threads=1,
        poll_seconds=0,
        access_log=False,
        enable_model_warmup=False,
        runner_wrapper=Counting,
        rest_api_timeout_ms=300,
    )
    with EdgeServer(cfg) as srv:
        url = f"{srv.rest_url}/v1/models/half_plus_two:predict"
        calls.clear()
        t0 = time.monotonic()
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda _: requests.post(url, json={"instances": [1.0]}, timeout=30), range(2)))
        assert time.monotonic() - t0 < 0.9  # answered at the deadline, not when the slow run ends
        for r in answers:
            assert r.status_code == 504, r.text
            assert "rest_api_timeout_in_ms" in r.json()["error"]
        time.sleep(1.5)  # the running call finishes; the queued one was dropped
        assert len(calls) == 1
        # Metadata and status calls are not inference; they answer as usual.
        assert requests.get(f"{srv.rest_url}/v1/models/half_plus_two", timeout=10).status_code == 200


def test_monitoring_config_file_sets_the_prometheus_endpoint(models_root: Path, tmp_path: Path) -> None:
    """--monitoring_config_file (TF Serving's MonitoringConfig text proto, parsed without TF): metrics at
    prometheus_config.path when enable is true (default path when empty), 404 when enable is false (spec §5.10)."""
    from deepclf.serving import EdgeServer, ModelConfig, ServerConfig
    from deepclf.serving.modelconfig import PROMETHEUS_PATH, prometheus_metrics_path

    def conf(name: str, text: str) -> Path:
        f = tmp_path / name
        f.write_text(text)
        return f

    custom = conf("custom.txt", 'prometheus_config { enable: true path: "/metrics/prom" }')
    default = conf("default.txt", "prometheus_config: { enable: true }")
    off = conf("off.txt", "prometheus_config { enable: false }")
    assert prometheus_metrics_path(custom) == "/metrics/prom"
    assert prometheus_metrics_path(default) == PROMETHEUS_PATH
    assert prometheus_metrics_path(None) == PROMETHEUS_PATH
    assert prometheus_metrics_path(off) is None
    for bad, message in (
        ("prometheus_config { enable: yes_please }", "not a valid TF Serving MonitoringConfig"),
        ("prometheus_config { no_such_field: 1 }", "no_such_field"),
        ('prometheus_config { enable: true path: "metrics" }', "must start with '/'"),
    ):
        with pytest.raises(UsageError, match=re.escape(message)):
            config_from_args(
                build_serve_args(["--model_base_path=/m", f"--monitoring_config_file={conf('bad.txt', bad)}"])
            )
    a = build_serve_args(["--model_base_path=/m", f"--monitoring_config_file={custom}"])
    assert config_from_args(a).monitoring_config_file == str(custom)

    for file, on, dark in ((custom, "/metrics/prom", PROMETHEUS_PATH), (off, None, PROMETHEUS_PATH)):
        cfg = ServerConfig(
            model_configs=[ModelConfig("half_plus_two", str(models_root / "half_plus_two"))],
            port=None,
            rest_api_port=0,
            threads=1,
            poll_seconds=0,
            access_log=False,
            monitoring_config_file=file,
        )
        with EdgeServer(cfg) as srv:
            if on is not None:
                r = requests.get(f"{srv.rest_url}{on}", timeout=10)
                assert r.status_code == 200 and "# TYPE" in r.text
            assert requests.get(f"{srv.rest_url}{dark}", timeout=10).status_code == 404


def test_deliberate_differences_say_what_tf_serving_does(capsys: pytest.CaptureFixture[str]) -> None:
    """Where deepclf serve differs on purpose (loopback by default, request limits), it says what TF Serving does
    and which flag gives that: a start-up note for the address, the refusals of the limits."""
    from deepclf.protocol.limits import LimitExceeded

    cfg = config_from_args(build_serve_args(["--model_base_path=/m"]))
    assert cfg.host == "127.0.0.1"
    assert "TF Serving listens on all interfaces: --host=0.0.0.0 does that" in capsys.readouterr().err
    config_from_args(build_serve_args(["--model_base_path=/m", "--host=0.0.0.0"]))
    assert "listening on" not in capsys.readouterr().err
    budget = config_from_args(build_serve_args(["--model_base_path=/m", "--host=127.0.0.1"])).request_limits().budget()
    with pytest.raises(LimitExceeded, match=re.escape("(--max_request_rows=32; a deepclf limit: TF Serving has none)")):
        budget.admit("x", [33, 4], np.dtype(np.float32))
    limits = config_from_args(build_serve_args(["--model_base_path=/m", "--max_request_bytes=100"])).request_limits()
    with pytest.raises(
        LimitExceeded, match=re.escape("(--max_request_bytes=100; a deepclf limit: TF Serving has none)")
    ):
        limits.budget().admit("x", [1, 400], np.dtype(np.float32))
