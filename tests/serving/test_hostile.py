"""Hostile and malformed requests against one real ``deepclf serve`` process (default flags, TensorFlow blocked).

What the suite proves, for every case in ``CASES`` (REST and gRPC, each case one parametrised id):

* the answer is a refusal of the client's request: REST 400-499, gRPC INVALID_ARGUMENT / NOT_FOUND /
  FAILED_PRECONDITION / UNIMPLEMENTED / OUT_OF_RANGE (RESOURCE_EXHAUSTED only for message-size limits, UNAVAILABLE
  only for overload), never a 5xx, INTERNAL or UNKNOWN, and the status is the one the case expects;
* the message names the problem (a case-specific needle);
* it arrives within ``CALL_TIMEOUT`` seconds (every call has that timeout and its duration is asserted);
* the server process is still alive and ``/healthz`` answers after it.

How memory is measured: the server is a child process (``serve_driver.py``), so its peak resident set is
``VmHWM`` in ``/proc/<pid>/status`` (kB). The baseline is read once the server is up and has answered one valid
request on each signature (warm); the value is read again after every case (so a growth is pinned on the case
that caused it) and at the end, in ``test_peak_rss_growth_over_the_whole_suite``, which must run last (pytest runs
tests in file order; it is the last test of this file) and asserts the growth stays under ``MAX_RSS_GROWTH_KB``.
Run with ``-s`` to see the numbers printed.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import gzip
import io
import json
import re
import socket
import struct
import subprocess
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc
import numpy as np
import pytest
import requests
from PIL import Image

from deepclf import protocol as P
from deepclf.protocol.messages import ClassificationRequest, MultiInferenceRequest, RegressionRequest
from deepclf.protocol.rpc import CLASSIFY, MULTI_INFERENCE, REGRESS

CALL_TIMEOUT = 20.0  # seconds, on every call; the duration is asserted too
MAX_RSS_GROWTH_KB = 64 * 1024
MAX_RSS_GROWTH_PER_CASE_KB = 32 * 1024  # a single refusal should cost far less than this
GRPC_OPTIONS = [("grpc.max_send_message_length", 512 << 20), ("grpc.max_receive_message_length", 512 << 20)]

SC = grpc.StatusCode
#: What a refused gRPC call may answer (RESOURCE_EXHAUSTED / UNAVAILABLE only where a case expects them).
GRPC_REFUSALS = {SC.INVALID_ARGUMENT, SC.NOT_FOUND, SC.FAILED_PRECONDITION, SC.UNIMPLEMENTED, SC.OUT_OF_RANGE}

IMG_SHAPE = [1, 64, 64, 3]  # the flowers model's input, one row
BYTES_SIG = "predict_image_bytes"
EXAMPLE_SIG = "classify_image_bytes"


# ---------------------------------------------------------------------------------------------- the server


@dataclass
class Server:
    proc: subprocess.Popen
    grpc_target: str
    rest: str
    channel: grpc.Channel
    http: requests.Session
    stderr_path: Path
    baseline_kb: int = 0

    def vm_hwm_kb(self) -> int:
        text = Path(f"/proc/{self.proc.pid}/status").read_text()
        m = re.search(r"^VmHWM:\s+(\d+) kB", text, re.M)
        assert m, text
        return int(m.group(1))

    def log_tail(self, n: int = 3000) -> str:
        return self.stderr_path.read_text(errors="replace")[-n:]


def _write_config(root: Path) -> Path:
    path = root / "hostile.config"
    path.write_text(f"""model_config_list {{
  config {{ name: "flowers" base_path: "{root / "flowers"}" model_platform: "tensorflow" }}
  config {{ name: "half_plus_two" base_path: "{root / "half_plus_two"}" model_platform: "tensorflow" }}
}}""")
    return path


def _warm_up(srv: Server) -> None:
    """One valid request on each signature (REST and gRPC), so the baseline is a warm server's."""
    r = srv.http.post(f"{srv.rest}/v1/models/half_plus_two:predict", data=b'{"instances": [1.0]}', timeout=60)
    assert r.json() == {"predictions": [2.5]}, r.text
    img = np.zeros(IMG_SHAPE, np.float32)
    r = srv.http.post(
        f"{srv.rest}/v1/models/flowers:predict", data=P.encode_predict_request({"image": img}), timeout=60
    )
    assert r.status_code == 200, r.text
    jpeg = small_jpeg()
    body = {"signature_name": BYTES_SIG, "instances": [{"b64": base64.b64encode(jpeg).decode()}]}
    r = srv.http.post(f"{srv.rest}/v1/models/flowers:predict", json=body, timeout=60)
    assert r.status_code == 200, r.text
    body = {"signature_name": EXAMPLE_SIG, "examples": [{"image/encoded": {"b64": base64.b64encode(jpeg).decode()}}]}
    r = srv.http.post(f"{srv.rest}/v1/models/flowers:classify", json=body, timeout=60)
    assert r.status_code == 200, r.text
    resp = P.unary_unary(srv.channel, P.PREDICT)(predict("flowers", image=img), timeout=60)
    assert "probabilities" in resp.outputs
    meta = P.GetModelMetadataRequest(model_spec=P.model_spec("flowers"), metadata_field=["signature_def"])
    P.unary_unary(srv.channel, P.GET_MODEL_METADATA)(meta, timeout=60)


@pytest.fixture(scope="module")
def server(models_root: Path, tmp_path_factory: pytest.TempPathFactory):
    """``deepclf serve`` as a child process, default admission limits; stderr (the access log) goes to a file so
    the pipe never fills up."""
    from tests.serving.child_server import child_server

    stderr_path = tmp_path_factory.mktemp("hostile") / "serve.stderr"
    args = ["--model_config_file", str(_write_config(models_root)), "--port", "0", "--rest_api_port", "0"]
    with child_server(args, stderr_path) as (proc, grpc_target, rest_url):
        channel = grpc.insecure_channel(grpc_target, options=GRPC_OPTIONS)
        srv = Server(proc, grpc_target, rest_url, channel, requests.Session(), stderr_path)
        try:
            _warm_up(srv)
            srv.baseline_kb = srv.vm_hwm_kb()
            yield srv
        finally:
            channel.close()
            srv.http.close()


# -------------------------------------------------------------------------------------------- payloads


@functools.cache
def small_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (80, 60), (30, 160, 40)).save(buf, "JPEG")
    return buf.getvalue()


@functools.cache
def gif_1px() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buf, "GIF")
    return buf.getvalue()  # 43 bytes


@functools.cache
def gif_60000px() -> bytes:
    """A 1x1 GIF whose logical screen says 60000x60000 (a few dozen bytes claiming 3.6 G pixels)."""
    data = bytearray(gif_1px())
    data[6:10] = struct.pack("<HH", 60000, 60000)
    return bytes(data)


@functools.cache
def png_60000px() -> bytes:
    """A 1x1 PNG whose IHDR (CRC fixed up) says 60000x60000."""
    buf = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", 60000, 60000)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


@functools.cache
def jpeg_6000px() -> bytes:
    """A solid-colour 6000x6000 JPEG: ~560 KB on the wire, 108 MB of RGB once decoded. Encoded once."""
    buf = io.BytesIO()
    Image.new("RGB", (6000, 6000), (200, 40, 40)).save(buf, "JPEG", quality=50)
    return buf.getvalue()


@functools.cache
def gzip_bomb() -> bytes:
    """200 MB of zeros, gzip-compressed (~200 KB)."""
    c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1 << 20)
    return b"".join([*(c.compress(block) for _ in range(200)), c.flush()])


def b64(data: bytes) -> dict[str, str]:
    return {"b64": base64.b64encode(data).decode()}


def image_body(*images: bytes, signature: str = BYTES_SIG) -> bytes:
    return json.dumps({"signature_name": signature, "instances": [b64(x) for x in images]}).encode()


def zeros_image_json(first: str) -> bytes:
    """A 1x64x64x3 row request whose first value is the bare token ``first`` (NaN, Infinity, 1e39)."""
    return json.dumps({"instances": np.zeros(IMG_SHAPE).tolist()}).replace("0.0", first, 1).encode()


def nested(depth: int, leaf: str = "1.0") -> bytes:
    return b'{"instances": ' + b"[" * depth + leaf.encode() + b"]" * depth + b"}"


def tensor(shape: list[int], dtype: str | int = "DT_FLOAT", **fields: Any) -> Any:
    """A TensorProto with a declared shape and whatever value fields are given (nothing is checked here)."""
    t = P.TensorProto(dtype=P.DataType.Value(dtype) if isinstance(dtype, str) else dtype)
    for d in shape:
        t.tensor_shape.dim.add(size=d)
    for name, values in fields.items():
        if name == "tensor_content":
            t.tensor_content = values
        else:
            getattr(t, name).extend(values)
    return t


def predict(model: str = "flowers", *, signature: str = "", output_filter=(), **inputs: Any) -> Any:
    req = P.PredictRequest(model_spec=P.model_spec(model, signature_name=signature))
    for name, value in inputs.items():
        req.inputs[name].CopyFrom(value if isinstance(value, P.TensorProto) else P.to_tensor_proto(value))
    req.output_filter.extend(output_filter)
    return req


def with_spec(req: Any, **changes: Any) -> Any:
    for k, v in changes.items():
        if k == "version":
            req.model_spec.version.value = v
        else:
            setattr(req.model_spec, k, v)
    return req


def image_bytes_request(images: list[bytes]) -> Any:
    return predict(signature=BYTES_SIG, image_bytes=tensor([len(images)], "DT_STRING", string_val=images))


def classify_request(examples: list[dict[str, bytes]], model: str = "flowers", signature: str = EXAMPLE_SIG) -> Any:
    req = ClassificationRequest()
    req.model_spec.name = model
    req.model_spec.signature_name = signature
    for ex in examples:
        features = req.input.example_list.examples.add().features
        for key, value in ex.items():
            features.feature[key].bytes_list.value.append(value)
    return req


def multi_request(*tasks: tuple[str, str, str]) -> Any:
    req = MultiInferenceRequest()
    for model, signature, method in tasks:
        task = req.tasks.add()
        task.model_spec.name = model
        task.model_spec.signature_name = signature
        task.method_name = method
    req.input.example_list.examples.add().features.feature["image/encoded"].bytes_list.value.append(small_jpeg())
    return req


def raw_predict_with_model_name(name: bytes) -> bytes:
    """A PredictRequest on the wire whose model_spec.name is ``name`` as it is (may be invalid UTF-8)."""

    def field(number: int, payload: bytes) -> bytes:
        return bytes([number << 3 | 2]) + _varint(len(payload)) + payload

    return field(1, field(1, name))


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


# ------------------------------------------------------------------------------------------- transports

Answer = tuple[Any, str]  # (HTTP status or grpc.StatusCode, message)


def rest(method: str, path: str, body: bytes | Callable[[], bytes] | None = None, **headers: str):
    def send(srv: Server) -> Answer:
        data = body() if callable(body) else body
        hdrs = {k.replace("_", "-"): v for k, v in headers.items()}
        r = srv.http.request(method, srv.rest + path, data=data, headers=hdrs, timeout=CALL_TIMEOUT)
        try:
            doc = r.json()
            message = doc["error"] if isinstance(doc, dict) and "error" in doc else r.text
        except ValueError:
            message = r.text
        return r.status_code, message

    return send


def raw_http(head: bytes, body: bytes = b""):
    """Bytes straight onto a socket (what ``requests`` would not send: a false Content-Length, raw non-ASCII)."""

    def send(srv: Server) -> Answer:
        u = urlsplit(srv.rest)
        with socket.create_connection((u.hostname, u.port), timeout=CALL_TIMEOUT) as s:
            s.sendall(head.replace(b"{host}", f"{u.hostname}:{u.port}".encode()) + body)
            data = b""
            while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < _content_length(data):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        status_line, _, rest_ = data.partition(b"\r\n")
        text = rest_.partition(b"\r\n\r\n")[2].decode("utf-8", "replace")
        with contextlib.suppress(ValueError, KeyError, TypeError):
            text = json.loads(text)["error"]
        return int(status_line.split()[1]), text

    return send


def _content_length(data: bytes) -> int:
    m = re.search(rb"\r\ncontent-length:\s*(\d+)", data.partition(b"\r\n\r\n")[0], re.I)
    return int(m.group(1)) if m else 1 << 62  # no length: read until the server closes


def rpc(method: Any, make: Callable[[], Any]):
    def send(srv: Server) -> Answer:
        try:
            P.unary_unary(srv.channel, method)(make(), timeout=CALL_TIMEOUT)
        except grpc.RpcError as exc:
            return exc.code(), exc.details() or ""
        return SC.OK, ""

    return send


def rpc_raw(method: Any, payload: bytes):
    """Raw bytes as the request message (no serializer): what a broken or hostile client may send."""

    def send(srv: Server) -> Answer:
        try:
            call = srv.channel.unary_unary(method.path, request_serializer=None, response_deserializer=None)
            call(payload, timeout=CALL_TIMEOUT)
        except grpc.RpcError as exc:
            return exc.code(), exc.details() or ""
        return SC.OK, ""

    return send


# ------------------------------------------------------------------------------------------------ cases


@dataclass(frozen=True)
class Case:
    id: str
    send: Callable[[Server], Answer]
    expect: Any  # an HTTP status / grpc.StatusCode, or a tuple of the acceptable ones
    needle: str  # a word of the message that names the problem (case-insensitive)


INV, NF, UNIMPL = SC.INVALID_ARGUMENT, SC.NOT_FOUND, SC.UNIMPLEMENTED
FLOWERS, HPT = "/v1/models/flowers:predict", "/v1/models/half_plus_two:predict"
MANY_COMMAS = 4_200_000  # just over the 4,194,304 JSON values 16 MiB of tensors allow (~8.4 MB of body)


def _bug(case: Case, reason: str) -> Any:
    return pytest.param(case, id=case.id, marks=pytest.mark.xfail(strict=True, reason=reason))


GRPC_CASES = [
    # model_spec
    Case("grpc-name-empty", rpc(P.PREDICT, lambda: predict("", image=tensor(IMG_SHAPE))), INV, "ModelSpec"),
    Case("grpc-name-unknown", rpc(P.PREDICT, lambda: predict("tulips", image=tensor(IMG_SHAPE))), NF, "not found"),
    Case("grpc-name-10kb", rpc(P.PREDICT, lambda: predict("m" * 10_000, image=tensor(IMG_SHAPE))), NF, "not found"),
    Case("grpc-name-huge", rpc(P.PREDICT, lambda: predict("m" * 100_000, image=tensor(IMG_SHAPE))), NF, "not found"),
    Case(
        "grpc-name-odd-unicode",
        rpc(P.PREDICT, lambda: predict("fl\u00f6wers\u202e\x00\U0001f33c", image=tensor(IMG_SHAPE))),
        NF,
        "not found",
    ),
    Case(
        "grpc-name-invalid-utf8",
        rpc_raw(P.PREDICT, raw_predict_with_model_name(b"\xff\xfeflowers")),
        INV,
        "PredictRequest",
    ),
    Case("grpc-version-unknown", rpc(P.PREDICT, lambda: with_spec(predict(), version=7)), NF, "7"),
    Case("grpc-version-negative", rpc(P.PREDICT, lambda: with_spec(predict(), version=-1)), NF, "-1"),
    Case("grpc-version-huge", rpc(P.PREDICT, lambda: with_spec(predict(), version=2**63 - 1)), NF, str(2**63 - 1)),
    Case("grpc-label-unknown", rpc(P.PREDICT, lambda: with_spec(predict(), version_label="canary")), INV, "label"),
    Case(
        "grpc-signature-unknown",
        rpc(P.PREDICT, lambda: predict(signature="nope", image=tensor(IMG_SHAPE))),
        SC.FAILED_PRECONDITION,  # predict_util.cc: 'Serving signature key "nope" not found.'
        "signature",
    ),
    # inputs
    Case("grpc-inputs-empty", rpc(P.PREDICT, lambda: predict()), INV, "input size does not match"),
    Case("grpc-input-unknown-alias", rpc(P.PREDICT, lambda: predict(picture=tensor(IMG_SHAPE))), INV, "alias"),
    Case(
        "grpc-dtype-double",
        rpc(P.PREDICT, lambda: predict(image=np.zeros(IMG_SHAPE, np.float64))),
        INV,
        "float32",
    ),
    Case(
        "grpc-dtype-string-for-float",
        rpc(P.PREDICT, lambda: predict(image=tensor(IMG_SHAPE, "DT_STRING", string_val=[b"x"]))),
        INV,
        "float32",
    ),
    Case("grpc-dtype-resource", rpc(P.PREDICT, lambda: predict(image=tensor([1], "DT_RESOURCE"))), INV, "DT_RESOURCE"),
    Case("grpc-dtype-999", rpc(P.PREDICT, lambda: predict(image=tensor(IMG_SHAPE, 999))), INV, "999"),
    # shapes
    Case("grpc-shape-wrong-rank", rpc(P.PREDICT, lambda: predict(image=tensor([64, 64, 3]))), INV, "shape"),
    Case("grpc-shape-wrong-dims", rpc(P.PREDICT, lambda: predict(image=tensor([1, 32, 32, 3]))), INV, "shape"),
    Case("grpc-shape-negative-dim", rpc(P.PREDICT, lambda: predict(image=tensor([-5, 64, 64, 3]))), INV, "dimension"),
    Case(
        "grpc-shape-unknown-rank",
        rpc(P.PREDICT, lambda: predict(image=_unknown_rank())),
        INV,
        "unknown rank",
    ),
    Case(
        "grpc-shape-overflows-int64",
        rpc(P.PREDICT, lambda: predict(image=tensor([2**62, 64, 64, 3], float_val=[1.0]))),
        INV,
        "int64",
    ),
    Case(
        "grpc-shape-2^62x2^62",
        rpc(P.PREDICT, lambda: predict(image=tensor([2**62, 2**62], float_val=[1.0]))),
        INV,
        "shape",
    ),
    Case(
        "grpc-shape-2^62x2^62-generic",
        rpc(P.PREDICT, lambda: predict("half_plus_two", x=tensor([2**62, 2**62], float_val=[1.0]))),
        INV,
        "shape",
    ),
    Case(
        "grpc-one-float-val-200x64x64x3",
        rpc(P.PREDICT, lambda: predict(image=tensor([200, 64, 64, 3], float_val=[1.0]))),
        INV,
        "rows",
    ),
    Case(
        "grpc-one-float-val-2000x180x180x3",
        rpc(P.PREDICT, lambda: predict(image=tensor([2000, 180, 180, 3], float_val=[1.0]))),
        INV,
        "shape",
    ),
    Case(
        "grpc-one-float-val-1x1e9",
        rpc(P.PREDICT, lambda: predict(image=tensor([1, 10**9], float_val=[1.0]))),
        INV,
        "shape",
    ),
    Case(
        "grpc-one-float-val-1e9-generic",
        rpc(P.PREDICT, lambda: predict("half_plus_two", x=tensor([10**9], float_val=[1.0]))),
        INV,
        "rows",
    ),
    Case(
        "grpc-tensor-content-short",
        rpc(P.PREDICT, lambda: predict(image=tensor(IMG_SHAPE, tensor_content=bytes(4 * 12288 - 4)))),
        INV,
        "tensor_content",
    ),
    Case(
        "grpc-tensor-content-long",
        rpc(P.PREDICT, lambda: predict(image=tensor(IMG_SHAPE, tensor_content=bytes(4 * 12288 + 4)))),
        INV,
        "tensor_content",
    ),
    Case(
        "grpc-float-val-too-many",
        rpc(P.PREDICT, lambda: predict(image=tensor(IMG_SHAPE, float_val=[0.0] * 12289))),
        INV,
        "values",
    ),
    Case(
        "grpc-half-val",
        rpc(P.PREDICT, lambda: predict(image=tensor(IMG_SHAPE, "DT_HALF", half_val=[0]))),
        INV,
        "float32",
    ),
    Case(
        "grpc-string-val-huge-shape",
        rpc(
            P.PREDICT,
            lambda: predict(signature=BYTES_SIG, image_bytes=tensor([10**12], "DT_STRING", string_val=[b"x"])),
        ),
        INV,
        "rows",
    ),
    Case(
        "grpc-string-val-1x1e9",
        rpc(
            P.PREDICT,
            lambda: predict(signature=BYTES_SIG, image_bytes=tensor([1, 10**9], "DT_STRING", string_val=[b"x"])),
        ),
        INV,
        "shape",
    ),
    Case(
        "grpc-output-filter-unknown",
        rpc(P.PREDICT, lambda: predict(image=tensor(IMG_SHAPE), output_filter=["logits"])),
        INV,
        "logits",
    ),
    Case("grpc-nan-pixels", rpc(P.PREDICT, lambda: predict(image=tensor(IMG_SHAPE, float_val=[np.nan]))), INV, "NaN"),
    # images
    Case("grpc-500-gifs", rpc(P.PREDICT, lambda: image_bytes_request([gif_1px()] * 500)), INV, "rows"),
    Case("grpc-not-an-image", rpc(P.PREDICT, lambda: image_bytes_request([b"GIF89a but no"])), INV, "image_bytes[0]"),
    Case("grpc-gif-60000px", rpc(P.PREDICT, lambda: image_bytes_request([gif_60000px()])), INV, "pixels"),
    Case("grpc-png-60000px", rpc(P.PREDICT, lambda: image_bytes_request([png_60000px()])), INV, "pixels"),
    Case("grpc-four-6000px-jpegs", rpc(P.PREDICT, lambda: image_bytes_request([jpeg_6000px()] * 4)), INV, "pixels"),
    # tf.Example APIs
    Case(
        "grpc-malformed-tf-example",
        rpc(
            P.PREDICT, lambda: predict(signature=EXAMPLE_SIG, inputs=tensor([1], "DT_STRING", string_val=[b"\xff\xff"]))
        ),
        INV,
        "parse",
    ),
    Case(
        "grpc-classify-no-image-encoded",
        rpc(CLASSIFY, lambda: classify_request([{"image/jpeg": small_jpeg()}])),
        INV,
        "image/encoded",
    ),
    Case(
        "grpc-classify-not-an-image",
        rpc(CLASSIFY, lambda: classify_request([{"image/encoded": b"\x00" * 64}])),
        INV,
        "image",
    ),
    Case("grpc-classify-empty-input", rpc(CLASSIFY, lambda: classify_request([])), INV, "empty"),
    Case(
        "grpc-classify-500-examples",
        rpc(CLASSIFY, lambda: classify_request([{"image/encoded": gif_1px()}] * 500)),
        INV,
        "rows",
    ),
    Case(
        "grpc-classify-float-signature",
        rpc(CLASSIFY, lambda: classify_request([{"image/encoded": small_jpeg()}], signature="serving_default")),
        INV,
        "output Tensors",
    ),
    Case("grpc-regress-flowers", rpc(REGRESS, lambda: _regress_request()), INV, "output Tensor"),
    Case(
        "grpc-multi-mixed-models",
        rpc(
            MULTI_INFERENCE,
            lambda: multi_request(
                ("flowers", EXAMPLE_SIG, "tensorflow/serving/classify"),
                ("half_plus_two", "serving_default", "tensorflow/serving/regress"),
            ),
        ),
        INV,
        "same model name",
    ),
    Case("grpc-multi-no-tasks", rpc(MULTI_INFERENCE, lambda: multi_request()), INV, "ModelSpec"),
    Case(
        "grpc-multi-duplicate-signature",
        rpc(
            MULTI_INFERENCE,
            lambda: multi_request(
                ("flowers", EXAMPLE_SIG, "tensorflow/serving/classify"),
                ("flowers", EXAMPLE_SIG, "tensorflow/serving/classify"),
            ),
        ),
        INV,
        "Duplicate",
    ),
    Case(
        "grpc-multi-predict-method",
        rpc(MULTI_INFERENCE, lambda: multi_request(("flowers", EXAMPLE_SIG, "tensorflow/serving/predict"))),
        UNIMPL,
        "method_name",
    ),
    # metadata
    Case(
        "grpc-metadata-unknown-field",
        rpc(
            P.GET_MODEL_METADATA,
            lambda: P.GetModelMetadataRequest(model_spec=P.model_spec("flowers"), metadata_field=["graph"]),
        ),
        INV,
        "graph",
    ),
    Case(
        "grpc-metadata-manifest-of-generic",
        rpc(
            P.GET_MODEL_METADATA,
            lambda: P.GetModelMetadataRequest(
                model_spec=P.model_spec("half_plus_two"), metadata_field=["deepclf_manifest"]
            ),
        ),
        INV,
        "manifest",
    ),
    Case(
        "grpc-status-huge-version",
        rpc(P.GET_MODEL_STATUS, lambda: P.GetModelStatusRequest(model_spec=P.model_spec("flowers", 2**62))),
        NF,
        "version",
    ),
]


def _unknown_rank() -> Any:
    t = tensor([])
    t.tensor_shape.unknown_rank = True
    t.float_val.append(1.0)
    return t


def _regress_request() -> Any:
    req = RegressionRequest()
    req.model_spec.name = "flowers"
    req.input.example_list.examples.add().features.feature["x"].float_list.value.append(1.0)
    return req


REST_CASES = [
    # the body
    Case("rest-not-json", rest("POST", FLOWERS, b"instances=1&x=2"), 400, "JSON"),
    Case("rest-empty-body", rest("POST", FLOWERS, b""), 400, "empty"),
    Case("rest-truncated-json", rest("POST", FLOWERS, b'{"instances": [[1.0, 2'), 400, "JSON"),
    Case("rest-array-top-level", rest("POST", FLOWERS, b"[1.0, 2.0]"), 400, "Is not object"),
    Case("rest-string-top-level", rest("POST", FLOWERS, b'"instances"'), 400, "Is not object"),
    Case("rest-both-keys", rest("POST", HPT, b'{"instances": [1.0], "inputs": [1.0]}'), 400, "only one"),
    Case("rest-neither-key", rest("POST", HPT, b'{"examples": [1.0]}'), 400, "missing"),
    Case("rest-instances-not-list", rest("POST", HPT, b'{"instances": {"x": 1.0}}'), 400, "list"),
    Case("rest-instances-empty", rest("POST", HPT, b'{"instances": []}'), 400, "no values"),
    # TF Serving's words (json_tensor.cc): the element, the offending value, its JSON type and the dtype wanted
    Case("rest-ragged", rest("POST", FLOWERS, b'{"instances": [[[[1.0, 2.0]], [[1.0]]]]}'), 400, "unexpected size"),
    Case("rest-strings-for-floats", rest("POST", HPT, b'{"instances": ["1.0", "2.0"]}'), 400, "type: float"),
    Case("rest-null", rest("POST", HPT, b'{"instances": [1.0, null]}'), 400, "Type: Null"),
    Case("rest-true-false", rest("POST", HPT, b'{"instances": [true, false]}'), 400, "Type: True"),
    Case("rest-nan-pixel", rest("POST", FLOWERS, zeros_image_json("NaN")), 400, "NaN"),
    Case("rest-infinity-pixel", rest("POST", FLOWERS, zeros_image_json("-Infinity")), 400, "infinite"),
    # past float32: Infinity as TF Serving reads it, then refused as a non-finite pixel (a deepclf image check)
    Case("rest-1e39-for-float32", rest("POST", FLOWERS, zeros_image_json("1e39")), 400, "infinite"),
    Case("rest-nested-100000", rest("POST", FLOWERS, nested(100_000)), 400, "nested"),
    Case("rest-unclosed-100000", rest("POST", FLOWERS, b'{"instances": ' + b"[" * 100_000), 400, "JSON"),
    Case("rest-nested-40", rest("POST", FLOWERS, nested(40)), 400, "nested"),
    Case("rest-signature-unknown", rest("POST", FLOWERS, b'{"signature_name": "zzz", "instances": [1]}'), 400, "zzz"),
    Case("rest-signature-not-string", rest("POST", HPT, b'{"signature_name": [], "instances": [1]}'), 400, "string"),
    Case(
        "rest-many-commas",
        rest("POST", FLOWERS, lambda: b'{"instances": [' + b"0," * MANY_COMMAS + b"0]}"),
        400,
        "values",
    ),
    # images in b64
    Case("rest-b64-not-base64", rest("POST", FLOWERS, image_body().replace(b"[]", b'[{"b64": "%%%"}]')), 400, "base64"),
    Case(
        "rest-b64-not-an-image",
        rest("POST", FLOWERS, lambda: image_body(b"\x89PNG\r\n\x1a\n rest")),
        400,
        "image_bytes[0]",
    ),
    Case("rest-500-gifs", rest("POST", FLOWERS, lambda: image_body(*[gif_1px()] * 500)), 400, "rows"),
    Case("rest-2000-gifs", rest("POST", FLOWERS, lambda: image_body(*[gif_1px()] * 2000)), 400, "rows"),
    Case("rest-gif-60000px", rest("POST", FLOWERS, lambda: image_body(gif_60000px())), 400, "pixels"),
    Case("rest-png-60000px", rest("POST", FLOWERS, lambda: image_body(png_60000px())), 400, "pixels"),
    Case("rest-four-6000px-jpegs", rest("POST", FLOWERS, lambda: image_body(*[jpeg_6000px()] * 4)), 400, "pixels"),
    # transport: sizes and encodings
    Case(
        "rest-content-length-over-limit",
        raw_http(
            b"POST /v1/models/flowers:predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            b"Content-Length: 67108865\r\n\r\n",
            b'{"instances": [',
        ),
        413,
        "bytes",
    ),
    Case(
        "rest-content-length-not-a-number",
        raw_http(
            b"POST /v1/models/flowers:predict HTTP/1.1\r\nHost: {host}\r\nContent-Length: lots\r\n"
            b"Connection: close\r\n\r\n",
            b"{}",
        ),
        400,
        "invalid",
    ),
    Case("rest-gzip-bomb", rest("POST", HPT, gzip_bomb, Content_Encoding="gzip"), 413, "gzip"),
    Case(
        "rest-gzip-corrupt",
        rest("POST", HPT, b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage!", Content_Encoding="gzip"),
        400,
        "gzip",
    ),
    Case(
        "rest-gzip-truncated",
        rest("POST", HPT, lambda: gzip.compress(b'{"instances": [1.0]}' * 50)[:-10], Content_Encoding="gzip"),
        400,
        "truncated",
    ),
    Case(
        "rest-content-encoding-br", rest("POST", HPT, b"\x0b\x02\x80{}", Content_Encoding="br"), 415, "Content-Encoding"
    ),
    # URLs and methods
    Case("rest-verb-explode", rest("POST", "/v1/models/flowers:explode", b'{"instances": [1]}'), 400, "explode"),
    Case("rest-put", rest("PUT", FLOWERS, b'{"instances": [1]}'), 400, "Malformed request: PUT"),
    Case("rest-delete", rest("DELETE", "/v1/models/flowers"), 400, "Malformed request: DELETE"),
    Case("rest-unknown-model", rest("POST", "/v1/models/tulips:predict", b'{"instances": [1]}'), 404, "tulips"),
    Case("rest-unknown-version", rest("POST", "/v1/models/flowers/versions/7:predict", b"{}"), 404, "7"),
    Case("rest-unknown-label", rest("POST", "/v1/models/flowers/labels/canary:predict", b"{}"), 400, "canary"),
    Case(
        "rest-version-23-digits",
        rest("POST", "/v1/models/flowers/versions/99999999999999999999999:predict", b'{"instances": [1]}'),
        400,  # past int64: "Failed to convert version", as TF Serving
        "99999999999999999999999",
    ),
    Case(
        "rest-status-version-23-digits",
        rest("GET", "/v1/models/flowers/versions/99999999999999999999999"),
        400,
        "version",
    ),
    Case("rest-negative-version", rest("POST", "/v1/models/flowers/versions/-1:predict", b"{}"), 400, "Malformed"),
    Case(
        "rest-non-ascii-url",
        rest("POST", "/v1/models/fl%C3%B6wers%E2%80%AE:predict", b'{"instances": [1]}'),
        404,
        "not found",
    ),
    Case(
        "rest-raw-non-ascii-url",
        raw_http(b"GET /v1/models/fl\xc3\xb6w\xffers HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        400,
        "invalid",  # refused by h11 (uvicorn) before the app: plain text, not TF Serving's JSON
    ),
    Case("rest-url-60kb", rest("GET", "/v1/models/" + "m" * 60_000), 404, "versions of model"),
    # httptools buffers a header however long it grows: the protocol bounds the head (serving/http_protocol.py)
    Case(
        "rest-header-1mb",
        raw_http(b"GET /v1/models/flowers HTTP/1.1\r\nHost: {host}\r\nX-Big: " + b"a" * 1_000_000 + b"\r\n\r\n"),
        431,
        "headers are over",
    ),
    Case(
        "rest-10000-headers",
        raw_http(
            b"GET /v1/models/flowers HTTP/1.1\r\nHost: {host}\r\n"
            + b"X-H: "
            + b"v" * 95
            + b"\r\n" * 1
            + (b"X-H: " + b"v" * 95 + b"\r\n") * 9_999
            + b"\r\n"
        ),
        431,
        "headers are over",
    ),
    # past httptools' URL limit (64 KiB): refused by the HTTP parser, which says why (serving/http_protocol.py)
    Case("rest-url-100kb", rest("GET", "/v1/models/" + "m" * 100_000), 400, "url is too long"),
    Case("rest-metadata-unknown-field", rest("GET", "/v1/models/flowers/metadata?fields=graph"), 400, "graph"),
    Case("rest-metadata-no-field", rest("GET", "/v1/models/flowers/metadata?fields=,"), 400, "field"),
    # tf.Example APIs
    Case(
        "rest-classify-malformed-example",
        rest("POST", "/v1/models/flowers:classify", b'{"examples": [5]}'),
        400,
        "object",
    ),
    Case(
        "rest-classify-no-image-encoded",
        rest(
            "POST",
            "/v1/models/flowers:classify",
            json.dumps({"signature_name": EXAMPLE_SIG, "examples": [{"image/jpeg": "x"}]}).encode(),
        ),
        400,
        "image/encoded",
    ),
    Case(
        "rest-classify-mixed-feature-types",
        rest(
            "POST",
            "/v1/models/flowers:classify",
            b'{"signature_name": "classify_image_bytes", "examples": [{"image/encoded": ["a", 1]}]}',
        ),
        400,
        "type",
    ),
    Case(
        "rest-classify-2000-examples",
        rest(
            "POST",
            "/v1/models/flowers:classify",
            lambda: json.dumps(
                {"signature_name": EXAMPLE_SIG, "examples": [{"image/encoded": b64(gif_1px())}] * 2000}
            ).encode(),
        ),
        400,
        "rows",
    ),
    Case(
        "rest-regress-flowers",
        rest("POST", "/v1/models/flowers:regress", b'{"examples": [{"x": 1.0}]}'),
        400,
        "output Tensor",
    ),
    Case(
        "rest-regress-classify-signature",
        rest(
            "POST",
            "/v1/models/flowers:regress",
            b'{"signature_name": "classify_image_bytes", "examples": [{"x": 1.0}]}',
        ),
        400,
        "output",
    ),
]

CASES = [*GRPC_CASES, *REST_CASES]

#: Server bugs found by this suite (reported; strict: a fix makes the case pass and the mark must go).
#: Cases the server answers wrongly today (xfail, strict: a fix makes them fail until removed from here).
KNOWN_BUGS: dict[str, str] = {}
PARAMS = [
    pytest.param(c, id=c.id, marks=pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[c.id]))
    if c.id in KNOWN_BUGS
    else pytest.param(c, id=c.id)
    for c in CASES
]

#: Peak RSS (VmHWM, kB) after each case, to pin a growth on the case that caused it.
HWM_AFTER: dict[str, int] = {}


def test_at_least_60_distinct_cases():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    assert len(ids) >= 60, len(ids)
    assert set(KNOWN_BUGS) <= set(ids)
    print(f"\nhostile cases: {len(ids)} ({len(GRPC_CASES)} gRPC, {len(REST_CASES)} REST)")


@pytest.mark.parametrize("case", PARAMS)
def test_hostile_request_is_refused_cleanly(server: Server, case: Case):
    before = server.vm_hwm_kb()
    t0 = time.monotonic()
    status, message = case.send(server)
    elapsed = time.monotonic() - t0
    after = HWM_AFTER[case.id] = server.vm_hwm_kb()
    where = f"{case.id}: {status} {message[:300]!r}"
    assert elapsed < CALL_TIMEOUT, f"{where} took {elapsed:.1f} s"
    # a refusal of the client's request, never a server failure
    expected = case.expect if isinstance(case.expect, tuple) else (case.expect,)
    if isinstance(status, int):
        assert 400 <= status < 500, where
    else:
        assert status in GRPC_REFUSALS or status in expected, where
    assert status in expected, f"{where}; expected {case.expect}"
    assert case.needle.lower() in message.lower(), f"{where}; expected the message to say {case.needle!r}"
    assert "Traceback" not in message and "incident" not in message, where
    # still alive and answering
    assert server.proc.poll() is None, f"{case.id}: the server exited\n{server.log_tail()}"
    assert server.http.get(f"{server.rest}/healthz", timeout=CALL_TIMEOUT).status_code == 200, case.id
    assert after - before < MAX_RSS_GROWTH_PER_CASE_KB, f"{where}: peak RSS grew {after - before} kB"


def test_peak_rss_growth_over_the_whole_suite(server: Server):
    """Last in the file: the peak RSS of the server after every case above, against the warm baseline."""
    after = server.vm_hwm_kb()
    growth = after - server.baseline_kb
    print(
        f"\nserver peak RSS (VmHWM): baseline {server.baseline_kb} kB, after {len(HWM_AFTER)} cases {after} kB, "
        f"growth {growth} kB ({growth / 1024:.1f} MiB)"
    )
    prev, steps = server.baseline_kb, []
    for case_id, hwm in HWM_AFTER.items():
        if hwm > prev:
            steps.append(f"{case_id}: +{hwm - prev} kB")
            prev = hwm
    print("peak RSS steps: " + (", ".join(steps) or "none"))
    assert server.proc.poll() is None
    assert growth < MAX_RSS_GROWTH_KB, f"peak RSS grew {growth} kB over the suite: {steps}"
