"""tensorflow_serving/model_servers/http_rest_api_handler_test.cc, case by case, against ``deepclf serve`` started
with a ``tensorflow_model_server`` command line (tests/serving/tfs_server.py) over loopback HTTP.

The upstream test calls ``HttpRestApiHandler::ProcessRequest`` on a ServerCore serving TF's half_plus_two as
``saved_model_half_plus_two_2_versions`` (policy ``specific {123}``, label ``Version_Label`` -> 123); here the
same requests go over the wire to the same configuration, and each documented answer (canonical code -> HTTP
status by http_server.cc's table, message, JSON body, ``Content-Type``) is checked. Test ids name the upstream
test; docs/tfserving-conformance.md lists every upstream case and where it is covered.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.serving.tfs_server import HANDLER_LABEL, HANDLER_MODEL

pytest.importorskip("tensorflow")

M = HANDLER_MODEL
UPSTREAM = "http_rest_api_handler_test"
JSON_TYPE = "application/json"


def _case(test: str, n: int, *values: Any) -> Any:
    return pytest.param(*values, id=f"{UPSTREAM}::{test}#{n}")


def _call(srv: Any, method: str, path: str, body: str | None = None) -> httpx.Response:
    return httpx.request(method, srv.rest_url + path, content=body.encode() if body is not None else None, timeout=30)


@pytest.mark.parametrize("n", [_case("kPathRegex", 0, 0)])
def test_path_regex(tfs_upstream: Any, n: int) -> None:
    """kPathRegex: ``/v1/models`` is the handler's (answered in JSON), ``/statuspage`` and ``/index`` are not (404)."""
    r = _call(tfs_upstream, "GET", "/v1/models")
    assert r.status_code == 400 and r.headers["content-type"] == JSON_TYPE
    for path in ("/statuspage", "/index"):
        assert _call(tfs_upstream, "GET", path).status_code == 404


UNSUPPORTED = [
    ("GET", "/v1/foo", "Malformed request: GET /v1/foo"),
    ("POST", "/v1/foo", "Malformed request: POST /v1/foo"),
    ("GET", "/v1/models", "Missing model name in request."),
    ("GET", "/v1/models/debug/model_name", "Malformed request: GET /v1/models/debug/model_name"),
    ("POST", "/v1/models", "Malformed request: POST /v1/models"),
    ("GET", "/v1/models/foo:predict", "Malformed request: GET /v1/models/foo:predict"),
    ("GET", "/v1/models/foo/version/50:predict", "Malformed request: GET /v1/models/foo/version/50:predict"),
    ("POST", "/v1/models/foo/version/50:regress", "Malformed request: POST /v1/models/foo/version/50:regress"),
    ("POST", "/v1/models/foo/versions/HELLO:regress", "Malformed request: POST /v1/models/foo/versions/HELLO:regress"),
    (
        "POST",
        "/v1/models/foo/versions/18446744073709551615:regress",
        "Failed to convert version: 18446744073709551615 to numeric.",
    ),
    ("POST", "/v1/models/foo/metadata", "Malformed request: POST /v1/models/foo/metadata"),
    (
        "POST",
        "/v1/models/foo/label/some_label:regress",
        "Malformed request: POST /v1/models/foo/label/some_label:regress",
    ),
    (
        "POST",
        "/v1/models/foo/versions/50/labels/some_label:regress",
        "Malformed request: POST /v1/models/foo/versions/50/labels/some_label:regress",
    ),
    (
        "POST",
        "/v1/models/foo/versions/some_label:regress",
        "Malformed request: POST /v1/models/foo/versions/some_label:regress",
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "message"),
    [_case("UnsupportedApiCalls", i, *c) for i, c in enumerate(UNSUPPORTED)],
)
def test_unsupported_api_calls(tfs_upstream: Any, method: str, path: str, message: str) -> None:
    """INVALID_ARGUMENT -> 400, ``{"error": <message>}`` (upstream checks a substring; the whole text is TF's)."""
    r = _call(tfs_upstream, method, path, "")
    assert (r.status_code, r.headers["content-type"], r.json()) == (400, JSON_TYPE, {"error": message})


@pytest.mark.parametrize(
    ("path", "message"),
    [
        _case("PredictModelNameVersionErrors", 0, "/v1/models/foo:predict", "Latest(foo)"),
        _case("PredictModelNameVersionErrors", 1, "/v1/models/foo/versions/50:predict", "Specific(foo, 50)"),
        _case("PredictModelNameVersionErrors", 2, f"/v1/models/{M}99:predict", f"Latest({M}99)"),
    ],
)
def test_predict_model_name_version_errors(tfs_upstream: Any, path: str, message: str) -> None:
    """NOT_FOUND -> 404 (http_server.cc ToHTTPStatusCode)."""
    r = _call(tfs_upstream, "POST", path, '{ "instances": [1] }')
    assert (r.status_code, r.json()) == (404, {"error": f"Servable not found for request: {message}"})


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        _case("PredictRequestErrors", 0, f"/v1/models/{M}:predict", "", "JSON Parse error: The document is empty"),
        _case(
            "PredictRequestErrors",
            1,
            f"/v1/models/{M}:predict",
            "instances = [1, 2]",
            "JSON Parse error: Invalid value. at offset: 0",
        ),
        _case(
            "PredictRequestErrors",
            2,
            f"/v1/models/{M}:predict",
            '{ "instances": ["x", "y"] }',
            "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: "
            'JSON Value: "x" Type: String is not of expected type: float',
        ),
        _case(
            "PredictRequestErrors",
            3,
            f"/v1/models/{M}/labels/Version_Nonexistent:predict",
            '{ "instances": ["x", "y"] }',
            "Unrecognized servable version label: Version_Nonexistent",
        ),
        _case(
            "PredictRequestErrors",
            4,
            f"/v1/models/{M}:predict",
            '{ "signature_name": 100 }',
            """JSON Value: {"signature_name":100} not formatted correctly. 'signature_name' key must be a string """
            "value.",
        ),
    ],
)
def test_predict_request_errors(tfs_upstream: Any, path: str, body: str, message: str) -> None:
    """INVALID_ARGUMENT -> 400. Upstream checks substrings ("JSON Parse error: Invalid value", "not of expected type:
    float", ...); the texts here are whole, as json_tensor.cc builds them (rapidjson prints the value compactly)."""
    r = _call(tfs_upstream, "POST", path, body)
    assert (r.status_code, r.json()) == (400, {"error": message})


PREDICT = [
    ("", '{"instances": [[1.0, 2.0], [3.0, 4.0]]}', {"predictions": [[2.5, 3.0], [3.5, 4.0]]}),
    ("/versions/123", '{"instances": [1.0, 2.0]}', {"predictions": [2.5, 3.0]}),
    (f"/labels/{HANDLER_LABEL}", '{"instances": [1.0, 2.0]}', {"predictions": [2.5, 3.0]}),
    ("/versions/123", '{"signature_name": "serving_default", "instances": [3.0, 4.0]}', {"predictions": [3.5, 4.0]}),
    ("/versions/123", '{"signature_name": "serving_default", "inputs": [3.0, 4.0]}', {"outputs": [3.5, 4.0]}),
]


@pytest.mark.parametrize(("where", "body", "expected"), [_case("Predict", i, *c) for i, c in enumerate(PREDICT)])
def test_predict(tfs_upstream: Any, where: str, body: str, expected: dict) -> None:
    r = _call(tfs_upstream, "POST", f"/v1/models/{M}{where}:predict", body)
    assert (r.status_code, r.headers["content-type"], r.json()) == (200, JSON_TYPE, expected)


@pytest.mark.parametrize(
    ("verb", "where", "x", "expected"),
    [
        _case("Regress", 0, "regress", "", 80.0, {"results": [42]}),
        _case("Regress", 1, "regress", "/versions/123", 80.0, {"results": [42]}),
        _case("Regress", 2, "regress", f"/labels/{HANDLER_LABEL}", 80.0, {"results": [42]}),
        _case("Classify", 0, "classify", "", 20.0, {"results": [[["", 12]]]}),
        _case("Classify", 1, "classify", f"/labels/{HANDLER_LABEL}", 10.0, {"results": [[["", 7]]]}),
    ],
)
def test_regress_and_classify(tfs_upstream: Any, verb: str, where: str, x: float, expected: dict) -> None:
    """``{"results": [42]}``: numbers compare as numbers (upstream's CompareJson); TF Serving writes 42.0."""
    body = json.dumps({"signature_name": f"{verb}_x_to_y", "examples": [{"x": x}]})
    r = _call(tfs_upstream, "POST", f"/v1/models/{M}{where}:{verb}", body)
    assert (r.status_code, r.headers["content-type"], r.json()) == (200, JSON_TYPE, expected)


@pytest.mark.parametrize(
    "where",
    [
        _case("GetStatus", 0, ""),
        _case("GetStatus", 1, "/versions/123"),
        _case("GetStatus", 2, f"/labels/{HANDLER_LABEL}"),
    ],
)
def test_get_status(tfs_upstream: Any, where: str) -> None:
    """Every form answers version 123 AVAILABLE (a label is not looked up: get_model_status_impl.cc reads only
    ``version``)."""
    r = _call(tfs_upstream, "GET", f"/v1/models/{M}{where}")
    assert (r.status_code, r.headers["content-type"]) == (200, JSON_TYPE)
    assert r.json() == {
        "model_version_status": [
            {"version": "123", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]
    }


def _tensor(dtype: str, dims: list[int] | None, name: str) -> dict:
    shape = (
        {"dim": [], "unknown_rank": True}
        if dims is None
        else {"dim": [{"size": str(d), "name": ""} for d in dims], "unknown_rank": False}
    )
    return {"dtype": dtype, "tensor_shape": shape, "name": name}


def _signature(method: str, inputs: dict, outputs: dict) -> dict:
    return {"inputs": inputs, "outputs": outputs, "method_name": method, "defaults": {}}


#: saved_model_half_plus_two_2_versions_metadata.json (TF Serving's testdata), signature by signature
COLUMN = [-1, 1]
EXPECTED_SIGNATURES = {
    "serving_default": _signature(
        "tensorflow/serving/predict",
        {"x": _tensor("DT_FLOAT", COLUMN, "x:0")},
        {"y": _tensor("DT_FLOAT", COLUMN, "y:0")},
    ),
    "classify_x_to_y": _signature(
        "tensorflow/serving/classify",
        {"inputs": _tensor("DT_STRING", None, "tf_example:0")},
        {"scores": _tensor("DT_FLOAT", COLUMN, "y:0")},
    ),
    "classify_x2_to_y3": _signature(
        "tensorflow/serving/classify",
        {"inputs": _tensor("DT_FLOAT", COLUMN, "x2:0")},
        {"scores": _tensor("DT_FLOAT", COLUMN, "y3:0")},
    ),
    "regress_x_to_y": _signature(
        "tensorflow/serving/regress",
        {"inputs": _tensor("DT_STRING", None, "tf_example:0")},
        {"outputs": _tensor("DT_FLOAT", COLUMN, "y:0")},
    ),
    "regress_x_to_y2": _signature(
        "tensorflow/serving/regress",
        {"inputs": _tensor("DT_STRING", None, "tf_example:0")},
        {"outputs": _tensor("DT_FLOAT", COLUMN, "y2:0")},
    ),
    "regress_x2_to_y3": _signature(
        "tensorflow/serving/regress",
        {"inputs": _tensor("DT_FLOAT", COLUMN, "x2:0")},
        {"outputs": _tensor("DT_FLOAT", COLUMN, "y3:0")},
    ),
}


@pytest.mark.parametrize("suffix", [_case("GetModelMetadata", 0, "/metadata")])
def test_get_model_metadata(tfs_upstream: Any, suffix: str) -> None:
    """The whole body equals TF Serving's (upstream compares with saved_model_half_plus_two_2_versions_metadata.json):
    exactly ``model_spec`` and ``metadata``, every field printed, the SignatureDefMap under ``signature_def`` twice;
    and it parses back with protobuf's json_format, unknown fields refused."""
    from google.protobuf import json_format
    from tensorflow_serving.apis import get_model_metadata_pb2, model_pb2

    r = _call(tfs_upstream, "GET", f"/v1/models/{M}{suffix}")
    assert (r.status_code, r.headers["content-type"]) == (200, JSON_TYPE)
    doc = r.json()
    assert doc == {
        "model_spec": {"name": M, "signature_name": "", "version": "123"},
        "metadata": {"signature_def": {"signature_def": EXPECTED_SIGNATURES}},
    }
    json_format.ParseDict(doc["model_spec"], model_pb2.ModelSpec())
    json_format.ParseDict(doc["metadata"]["signature_def"], get_model_metadata_pb2.SignatureDefMap())
