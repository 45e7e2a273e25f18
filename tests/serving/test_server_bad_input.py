"""Malformed requests never crash the server or leak a traceback: each gets a 4xx / non-INTERNAL status whose
message says what was wrong. REST and gRPC, against the real flowers model and half_plus_two."""

from __future__ import annotations

import base64
import json

import grpc
import numpy as np
import pytest
import requests

from deepclf import protocol as P

IMG = np.zeros((1, 64, 64, 3), np.float32)  # one black image of the flowers model's input shape
ZEROS = IMG.tolist()


def _image_with(value: str) -> str:
    # A 1x64x64x3 JSON image whose first value is a bare token (NaN, Infinity) that json.dumps cannot write.
    text = json.dumps({"instances": ZEROS})
    return text.replace("0.0", value, 1)


B64_JPEG_GARBAGE = base64.b64encode(b"\xff\xd8\xff\xe0 definitely not a jpeg").decode()

# (id, method, path, body, expected HTTP status, expected substring of the error message)
REST_CASES = [
    ("empty-body", "POST", "/v1/models/flowers:predict", b"", 400, "empty"),
    # TF Serving's words (util/json_tensor.cc), spec section 5.3
    ("truncated-json", "POST", "/v1/models/flowers:predict", b'{"instances": [', 400, "JSON Parse error"),
    ("not-utf8", "POST", "/v1/models/flowers:predict", b"\xff\xfe\x00garbage", 400, "JSON Parse error"),
    ("top-level-list", "POST", "/v1/models/flowers:predict", b"[1, 2]", 400, "JSON Value: [1,2] Is not object"),
    ("no-inputs-key", "POST", "/v1/models/flowers:predict", b'{"foo": 1}', 400, "Missing 'inputs' or 'instances' key"),
    ("both-keys", "POST", "/v1/models/flowers:predict", b'{"inputs": [1], "instances": [1]}', 400, "only one of"),
    ("empty-instances", "POST", "/v1/models/flowers:predict", b'{"instances": []}', 400, "No values in 'instances'"),
    ("instances-not-list", "POST", "/v1/models/flowers:predict", b'{"instances": 5}', 400, "to be an list/array"),
    ("instances-null", "POST", "/v1/models/flowers:predict", b'{"instances": null}', 400, "to be an list/array"),
    (
        "wrong-input-name",
        "POST",
        "/v1/models/flowers:predict",
        json.dumps({"instances": [{"img": ZEROS[0]}]}),
        400,
        "does not have named input: img",
    ),
    (
        "wrong-shape",
        "POST",
        "/v1/models/flowers:predict",
        b'{"instances": [[1.0, 2.0]]}',
        400,
        "must have shape [batch, 64, 64, 3], got [1, 2]",
    ),
    (
        "strings-for-floats",
        "POST",
        "/v1/models/flowers:predict",
        b'{"instances": ["a", "b"]}',
        400,
        'JSON Value: "a" Type: String is not of expected type: float',
    ),
    (
        "ragged",
        "POST",
        "/v1/models/half_plus_two:predict",
        b'{"instances": [[1.0, 2.0], [1.0]]}',
        400,
        "Expecting tensor size",
    ),
    ("nan-pixels", "POST", "/v1/models/flowers:predict", _image_with("NaN"), 400, "NaN or infinite"),
    ("inf-pixels", "POST", "/v1/models/flowers:predict", _image_with("Infinity"), 400, "NaN or infinite"),
    (
        "pixels-out-of-range",
        "POST",
        "/v1/models/flowers:predict",
        _image_with("300.0"),
        400,
        "values must be in 0..255",
    ),
    (
        "unknown-signature",
        "POST",
        "/v1/models/flowers:predict",
        json.dumps({"signature_name": "nope", "instances": ZEROS}),
        400,  # INVALID_ARGUMENT on REST (http_rest_api_handler.cc GetInfoMap), not a 404
        '"nope" not found in signature def',
    ),
    (
        "signature-not-string",
        "POST",
        "/v1/models/flowers:predict",
        b'{"signature_name": 7, "instances": [1]}',
        400,
        "'signature_name' key must be a string value.",
    ),
    (
        "bad-b64",
        "POST",
        "/v1/models/flowers:predict",
        b'{"signature_name": "predict_image_bytes", "instances": [{"b64": "%%%not base64"}]}',
        400,
        "Unable to base64 decode",
    ),
    (
        "b64-not-an-image",
        "POST",
        "/v1/models/flowers:predict",
        json.dumps({"signature_name": "predict_image_bytes", "instances": [{"b64": B64_JPEG_GARBAGE}]}),
        400,
        "image_bytes[0]",
    ),
    (
        "numbers-for-bytes",
        "POST",
        "/v1/models/flowers:predict",
        b'{"signature_name": "predict_image_bytes", "instances": [1.5]}',
        400,
        "JSON Value: 1.5 Type: Number is not of expected type: string",
    ),
    (
        "b64-for-floats",
        "POST",
        "/v1/models/flowers:predict",
        b'{"instances": [{"b64": "AAAA"}]}',
        400,
        'JSON Value: {"b64":"AAAA"} Type: Object is not of expected type: float',
    ),
    (
        "columnar-missing-input",
        "POST",
        "/v1/models/flowers:predict",
        b'{"inputs": {"x": [1.0]}}',
        400,
        "Missing named input: image in 'inputs' object.",
    ),
    ("nulls", "POST", "/v1/models/half_plus_two:predict", b'{"instances": [null, 1.0]}', 400, "Type: Null is not"),
    (
        "bools-for-floats",
        "POST",
        "/v1/models/half_plus_two:predict",
        b'{"instances": [true, false]}',
        400,
        "JSON Value: true Type: True is not of expected type: float",
    ),
    (
        "generic-wrong-rank",
        "POST",
        "/v1/models/half_plus_two:predict",
        b'{"instances": [[1.0], [2.0]]}',
        400,
        "must have shape [-1]",
    ),
    (
        "generic-wrong-name",
        "POST",
        "/v1/models/half_plus_two:predict",
        b'{"inputs": {"z": [1.0]}}',
        400,
        "Missing named input: x in 'inputs' object.",
    ),
    (
        "unknown-model",
        "POST",
        "/v1/models/tulips:predict",
        b'{"instances": [1.0]}',
        404,
        "Servable not found for request: Latest(tulips)",
    ),
    (
        "unknown-version",
        "POST",
        "/v1/models/flowers/versions/7:predict",
        b'{"instances": [1.0]}',
        404,
        "Specific(flowers, 7)",
    ),
    (
        "unknown-label",
        "POST",
        "/v1/models/flowers/labels/canary:predict",
        b'{"instances": [1.0]}',
        400,  # TF Serving: INVALID_ARGUMENT for an unknown label (docs/tfserving-behaviour.md 6.6)
        "Unrecognized servable version label: canary",
    ),
    ("unknown-verb", "POST", "/v1/models/flowers:explode", b'{"instances": [1.0]}', 400, "Malformed request"),
    ("classify-no-examples", "POST", "/v1/models/flowers:classify", b'{"examples": []}', 400, "empty array"),
    ("non-numeric-version", "GET", "/v1/models/flowers/versions/abc", None, 400, "Malformed request"),
    ("status-unknown-model", "GET", "/v1/models/tulips", None, 404, "Could not find any versions of model tulips"),
    ("status-unknown-version", "GET", "/v1/models/flowers/versions/9", None, 404, "Could not find version 9"),
    ("metadata-unknown-label", "GET", "/v1/models/flowers/labels/x/metadata", None, 400, "Unrecognized servable"),
    ("get-on-predict", "GET", "/v1/models/flowers:predict", None, 400, "Malformed request"),
    ("put-method", "PUT", "/v1/models/flowers:predict", b"{}", 400, "Malformed request: PUT"),
    ("unknown-endpoint", "GET", "/v2/whatever", None, 404, "no such endpoint"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "needle"), [c[1:] for c in REST_CASES], ids=[c[0] for c in REST_CASES]
)
def test_rest_bad_request(server, method, path, body, status, needle):
    r = requests.request(method, server.rest_url + path, data=body, timeout=30)
    assert r.status_code == status, r.text
    doc = r.json()
    assert set(doc) == {"error"}
    assert needle in doc["error"], doc["error"]
    assert "Traceback" not in doc["error"] and 'File "' not in doc["error"]


def test_rest_float_overflow_is_infinity(server):
    """A number past float32's range reads as Infinity, as TF Serving reads it (json_tensor_test.cc
    FloatTensorThatExceedsMaxReturnsInf): half_plus_two answers 0.5 * inf + 2."""
    r = requests.post(server.rest_url + "/v1/models/half_plus_two:predict", data=b'{"instances": [1e300]}', timeout=30)
    assert (r.status_code, r.text) == (200, '{"predictions":[Infinity]}')


def _predict_request(model="flowers", **inputs) -> P.PredictRequest:
    req = P.PredictRequest(model_spec=P.model_spec(model))
    for name, value in inputs.items():
        req.inputs[name].CopyFrom(value if isinstance(value, P.TensorProto) else P.to_tensor_proto(value))
    return req


def _with_output_filter(req: P.PredictRequest, name: str) -> P.PredictRequest:
    req.output_filter.append(name)
    return req


def _bad_content() -> object:
    t = P.to_tensor_proto(IMG)
    t.tensor_content = t.tensor_content[:-4]
    return t


def _unknown_dim() -> object:
    t = P.to_tensor_proto(np.zeros((2,), np.float32))
    t.tensor_shape.dim[0].size = -1
    return t


def _resource_dtype() -> object:
    t = P.TensorProto(dtype=P.DataType.Value("DT_RESOURCE"))
    t.tensor_shape.dim.add(size=1)
    return t


def _with_spec(req, **changes):
    for k, v in changes.items():
        if k == "version":
            req.model_spec.version.value = v
        else:
            setattr(req.model_spec, k, v)
    return req


NAN_IMG = IMG.copy()
NAN_IMG[0, 0, 0, 0] = np.nan

# (id, method, request factory, expected code, expected substring)
GRPC_CASES = [
    ("no-model-spec", P.PREDICT, lambda: P.PredictRequest(), grpc.StatusCode.INVALID_ARGUMENT, "Missing ModelSpec"),
    (
        "unknown-model",
        P.PREDICT,
        lambda: _predict_request("tulips", image=IMG),
        grpc.StatusCode.NOT_FOUND,
        "Latest(tulips)",
    ),
    (
        "unknown-version",
        P.PREDICT,
        lambda: _with_spec(_predict_request(image=IMG), version=3),
        grpc.StatusCode.NOT_FOUND,
        "Specific(flowers, 3)",
    ),
    (
        "unknown-label",
        P.PREDICT,
        lambda: _with_spec(_predict_request(image=IMG), version_label="canary"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "Unrecognized servable version label",
    ),
    (
        "unknown-signature",
        P.PREDICT,
        lambda: _with_spec(_predict_request(image=IMG), signature_name="zzz"),
        grpc.StatusCode.FAILED_PRECONDITION,  # predict_util.cc RunPredict
        'Serving signature key "zzz" not found.',
    ),
    # predict_util.cc VerifyRequestInputsSize, then TensorFlow's GetInputValues, as TF Serving words them
    (
        "no-inputs",
        P.PREDICT,
        lambda: _predict_request(),
        grpc.StatusCode.INVALID_ARGUMENT,
        "input size does not match signature: 0!=1 len({}) != len({image}). Sent extra: {}. Missing but required: "
        "{image}.",
    ),
    (
        "wrong-input-name",
        P.PREDICT,
        lambda: _predict_request(picture=IMG),
        grpc.StatusCode.INVALID_ARGUMENT,
        "Signature input alias: image(feed name: serving_default_image:0) not found in request and no default value "
        "provided. Inputs expected to be in the request {picture}, or default input alias set: ",
    ),
    (
        "float64",
        P.PREDICT,
        lambda: _predict_request(image=IMG.astype(np.float64)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "must be float32",
    ),
    (
        "wrong-shape",
        P.PREDICT,
        lambda: _predict_request(image=np.zeros((1, 32, 32, 3), np.float32)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "got [1, 32, 32, 3]",
    ),
    (
        "short-tensor-content",
        P.PREDICT,
        lambda: _predict_request(image=_bad_content()),
        grpc.StatusCode.INVALID_ARGUMENT,
        "bytes of tensor_content",
    ),
    ("nan", P.PREDICT, lambda: _predict_request(image=NAN_IMG), grpc.StatusCode.INVALID_ARGUMENT, "NaN"),
    (
        "unknown-output-filter",
        P.PREDICT,
        lambda: _with_output_filter(_predict_request(image=IMG), "logits"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "output tensor alias not found in signature: logits",
    ),
    (
        "unsupported-dtype",
        P.PREDICT,
        lambda: _predict_request(image=_resource_dtype()),
        grpc.StatusCode.INVALID_ARGUMENT,
        "DT_RESOURCE is not supported",
    ),
    (
        "unknown-dim",
        P.PREDICT,
        lambda: _predict_request("half_plus_two", x=_unknown_dim()),
        grpc.StatusCode.INVALID_ARGUMENT,
        "unknown (-1) dimension",
    ),
    (
        "undecodable-image",
        P.PREDICT,
        lambda: _with_spec(
            _predict_request(image_bytes=np.array([b"not an image"], dtype=object)),
            signature_name="predict_image_bytes",
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "image_bytes[0]",
    ),
    (
        "bytes-2d",
        P.PREDICT,
        lambda: _with_spec(
            _predict_request(image_bytes=np.array([[b"a"]], dtype=object)), signature_name="predict_image_bytes"
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "must have shape [batch]",
    ),
    (
        "generic-int-input",
        P.PREDICT,
        lambda: _predict_request("half_plus_two", x=np.array([1, 2], np.int32)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "must have dtype float32",
    ),
    (
        "metadata-no-field",
        P.GET_MODEL_METADATA,
        lambda: P.GetModelMetadataRequest(model_spec=P.model_spec("flowers")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "at least one metadata_field",
    ),
    (
        "metadata-bad-field",
        P.GET_MODEL_METADATA,
        lambda: P.GetModelMetadataRequest(model_spec=P.model_spec("flowers"), metadata_field=["graph"]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "Metadata field graph is not supported",
    ),
    (
        "metadata-unknown-model",
        P.GET_MODEL_METADATA,
        lambda: P.GetModelMetadataRequest(model_spec=P.model_spec("x"), metadata_field=["signature_def"]),
        grpc.StatusCode.NOT_FOUND,
        "Servable not found",
    ),
    (
        "status-unknown-model",
        P.GET_MODEL_STATUS,
        lambda: P.GetModelStatusRequest(model_spec=P.model_spec("x")),
        grpc.StatusCode.NOT_FOUND,
        "Could not find any versions of model x",
    ),
    (
        "status-unknown-version",
        P.GET_MODEL_STATUS,
        lambda: P.GetModelStatusRequest(model_spec=P.model_spec("flowers", 5)),
        grpc.StatusCode.NOT_FOUND,
        "Could not find version 5",
    ),
    (
        "status-no-spec",
        P.GET_MODEL_STATUS,
        lambda: P.GetModelStatusRequest(),
        grpc.StatusCode.INVALID_ARGUMENT,
        "Missing ModelSpec",
    ),
]


@pytest.fixture(scope="module")
def channel(server):
    with grpc.insecure_channel(server.grpc_target) as ch:
        yield ch


@pytest.mark.parametrize(
    ("method", "make", "code", "needle"), [c[1:] for c in GRPC_CASES], ids=[c[0] for c in GRPC_CASES]
)
def test_grpc_bad_request(channel, method, make, code, needle):
    with pytest.raises(grpc.RpcError) as info:
        P.unary_unary(channel, method)(make(), timeout=30)
    details = info.value.details()
    assert info.value.code() == code, details
    assert details is not None
    assert needle in details, details
    assert "Traceback" not in details


def test_grpc_garbage_bytes_are_invalid_not_a_crash(channel):
    # A body that is not a PredictRequest at all: grpc's deserializer fails; the server must stay up.
    raw = channel.unary_unary(P.PREDICT.path)  # no serializers: send raw bytes
    with pytest.raises(grpc.RpcError) as info:
        raw(b"\xff\xff\xff\xff\x0f garbage", timeout=10)
    assert info.value.code() in (grpc.StatusCode.INTERNAL, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNKNOWN)


def test_still_healthy_and_no_5xx_after_the_bad_requests(server):
    # Runs after the cases above (same module server): nothing crashed and no request was answered with a 5xx.
    assert requests.get(server.rest_url + "/healthz", timeout=5).status_code == 200
    r = requests.post(server.rest_url + "/v1/models/half_plus_two:predict", data=b'{"instances": [2.0]}', timeout=10)
    assert r.json() == {"predictions": [3.0]}
    text = requests.get(server.metrics_url, timeout=5).text
    bad = [
        line
        for line in text.splitlines()
        if line.startswith("deepclf_serving_request_count_total")
        and any(f'status="{s}"' in line for s in ("INTERNAL", "UNKNOWN", "DATA_LOSS"))
    ]
    assert not bad, bad
