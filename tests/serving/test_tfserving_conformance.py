"""Conformance with TF Serving's own tests (docs/tfserving-behaviour.md §8.3, §5.6, §5.7, §6.6, §7.3): the requests
of ``tensorflow_model_server_test.py`` sent to ``deepclf serve`` (EdgeServer in process) serving TF Serving's test
models (tests/tfserving_models.py), over REST and over gRPC with the ``tensorflow_serving.apis`` stubs."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tfserving_models import HALF_PLUS_THREE, HALF_PLUS_TWO, serve

pytest.importorskip("tensorflow")
httpx = pytest.importorskip("httpx")
grpc = pytest.importorskip("grpc")
apis = pytest.importorskip("tensorflow_serving.apis.prediction_service_pb2_grpc")
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
)


@pytest.fixture(scope="module")
def tfs_server(tfserving_models: Path) -> Iterator:
    with serve(tfserving_models) as srv:
        yield srv


@pytest.fixture(scope="module")
def channel(tfs_server) -> Iterator:
    with grpc.insecure_channel(tfs_server.grpc_target) as ch:
        yield ch


def _predict_request(model: str, *, batch_input: bool = False, output_filter: bool = False):
    import tensorflow as tf

    req = predict_pb2.PredictRequest()
    req.model_spec.name = model
    req.model_spec.signature_name = "serving_default"
    req.inputs["x"].CopyFrom(tf.make_tensor_proto([[2.0]] if batch_input else [2.0], dtype=tf.float32))
    if output_filter:
        req.output_filter.append("y")
    return req


@pytest.mark.parametrize("output_filter", [False, True])
@pytest.mark.parametrize("batch_input", [False, True])
def test_predict_saved_model(channel, output_filter: bool, batch_input: bool) -> None:
    resp = apis.PredictionServiceStub(channel).Predict(
        _predict_request(HALF_PLUS_TWO, batch_input=batch_input, output_filter=output_filter), timeout=20
    )
    assert list(resp.outputs["y"].float_val) == [3.0]
    assert resp.outputs["y"].dtype == 1  # DT_FLOAT
    assert (resp.model_spec.name, resp.model_spec.signature_name, resp.model_spec.version.value) == (
        HALF_PLUS_TWO,
        "serving_default",
        124,
    )


def test_good_model_config(channel) -> None:
    stub = apis.PredictionServiceStub(channel)
    assert list(stub.Predict(_predict_request(HALF_PLUS_TWO), timeout=20).outputs["y"].float_val) == [3.0]
    assert list(stub.Predict(_predict_request(HALF_PLUS_THREE), timeout=20).outputs["y"].float_val) == [4.0]


def test_get_model_status(channel) -> None:
    req = get_model_status_pb2.GetModelStatusRequest()
    req.model_spec.name = HALF_PLUS_THREE
    resp = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(req, timeout=20)
    assert len(resp.model_version_status) == 1
    assert resp.model_version_status[0].version == 123
    assert resp.model_version_status[0].status.error_code == 0


def test_get_model_metadata(channel) -> None:
    req = get_model_metadata_pb2.GetModelMetadataRequest()
    req.model_spec.name = HALF_PLUS_THREE
    req.metadata_field.append("signature_def")
    resp = apis.PredictionServiceStub(channel).GetModelMetadata(req, timeout=20)
    assert resp.model_spec.name == HALF_PLUS_THREE and resp.model_spec.version.value == 123
    assert list(resp.metadata) == ["signature_def"]
    sigs = get_model_metadata_pb2.SignatureDefMap()
    resp.metadata["signature_def"].Unpack(sigs)
    assert sigs.signature_def["serving_default"].inputs["x"].name == "x:0"
    assert sigs.signature_def["tensorflow/serving/regress"].method_name == "tensorflow/serving/regress"


def test_rest_status(tfs_server) -> None:
    r = httpx.get(tfs_server.rest_url + f"/v1/models/{HALF_PLUS_THREE}", timeout=20)
    assert r.status_code == 200
    assert r.json() == {
        "model_version_status": [
            {"version": "123", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]
    }


def test_rest_metadata_layout(tfs_server) -> None:
    doc = httpx.get(tfs_server.rest_url + f"/v1/models/{HALF_PLUS_TWO}/versions/123/metadata", timeout=20).json()
    assert doc["model_spec"] == {"name": HALF_PLUS_TWO, "signature_name": "", "version": "123"}
    sd = doc["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert sd == {
        "inputs": {
            "x": {
                "dtype": "DT_FLOAT",
                "tensor_shape": {"dim": [{"size": "-1", "name": ""}, {"size": "1", "name": ""}], "unknown_rank": False},
                "name": "x:0",
            }
        },
        "outputs": {
            "y": {
                "dtype": "DT_FLOAT",
                "tensor_shape": {"dim": [{"size": "-1", "name": ""}, {"size": "1", "name": ""}], "unknown_rank": False},
                "name": "y:0",
            }
        },
        "method_name": "tensorflow/serving/predict",
        "defaults": {},
    }


def test_rest_predict_b64_examples_on_a_classify_signature(tfs_server) -> None:
    import tensorflow as tf

    ex = tf.train.Example()
    ex.features.feature["x"].float_list.value.append(2.0)
    body = {
        "signature_name": "classify_x_to_y",
        "instances": [{"b64": base64.b64encode(ex.SerializeToString()).decode()}],
    }
    r = httpx.post(tfs_server.rest_url + f"/v1/models/{HALF_PLUS_TWO}:predict", json=body, timeout=20)
    assert (r.status_code, r.json()) == (200, {"predictions": [[3.0]]})


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/v1/models/half:predict", 404, "Servable not found for request: Latest(half)"),
        (f"/v1/models/{HALF_PLUS_TWO}/versions/7:predict", 404, f"Specific({HALF_PLUS_TWO}, 7)"),
        (f"/v1/models/{HALF_PLUS_TWO}/labels/nope:predict", 400, "Unrecognized servable version label: nope"),
    ],
)
def test_rest_model_errors(tfs_server, path: str, status: int, message: str) -> None:
    r = httpx.post(tfs_server.rest_url + path, json={"instances": [2.0]}, timeout=20)
    assert r.status_code == status
    assert message in r.json()["error"]


def test_grpc_model_errors(channel) -> None:
    stub = apis.PredictionServiceStub(channel)
    with pytest.raises(grpc.RpcError) as err:
        stub.Predict(_predict_request("intentionally_missing_model"), timeout=20)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert "Servable" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        stub.Predict(predict_pb2.PredictRequest(), timeout=20)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_grpc_predict_unknown_signature_is_failed_precondition(channel) -> None:
    """predict_util.cc RunPredict: FAILED_PRECONDITION, worded exactly."""
    req = _predict_request(HALF_PLUS_TWO)
    req.model_spec.signature_name = "nope"
    with pytest.raises(grpc.RpcError) as err:
        apis.PredictionServiceStub(channel).Predict(req, timeout=20)
    assert (err.value.code(), err.value.details()) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        'Serving signature key "nope" not found.',
    )


def test_rest_predict_unknown_signature_is_invalid_argument(tfs_server) -> None:
    """http_rest_api_handler.cc GetInfoMap: INVALID_ARGUMENT (HTTP 400), worded exactly."""
    r = httpx.post(
        tfs_server.rest_url + f"/v1/models/{HALF_PLUS_TWO}:predict",
        json={"signature_name": "nope", "instances": [2.0]},
        timeout=20,
    )
    assert (r.status_code, r.json()) == (400, {"error": 'Serving signature name: "nope" not found in signature def'})


@pytest.mark.parametrize(
    ("aliases", "message"),
    [
        (["y", "y"], "duplicate output tensor alias: y"),
        (["z"], "output tensor alias not found in signature: z Outputs expected to be in the set {y}."),
    ],
)
def test_grpc_output_filter_errors(channel, aliases: list[str], message: str) -> None:
    """predict_util.cc PreProcessPrediction: both INVALID_ARGUMENT, worded exactly."""
    req = _predict_request(HALF_PLUS_TWO)
    req.output_filter.extend(aliases)
    with pytest.raises(grpc.RpcError) as err:
        apis.PredictionServiceStub(channel).Predict(req, timeout=20)
    assert (err.value.code(), err.value.details()) == (grpc.StatusCode.INVALID_ARGUMENT, message)


def test_rest_metadata_is_exactly_tf_servings_keys(tfs_server) -> None:
    """GET .../metadata: exactly ``model_spec`` and ``metadata`` (http_rest_api_handler.cc ToJsonString), each
    parseable by protobuf's json_format with unknown fields refused."""
    from google.protobuf import json_format
    from tensorflow_serving.apis import get_model_metadata_pb2, model_pb2

    doc = httpx.get(tfs_server.rest_url + f"/v1/models/{HALF_PLUS_TWO}/metadata", timeout=20).json()
    assert set(doc) == {"model_spec", "metadata"}
    assert set(doc["metadata"]) == {"signature_def"}
    json_format.ParseDict(doc["model_spec"], model_pb2.ModelSpec())
    json_format.ParseDict(doc["metadata"]["signature_def"], get_model_metadata_pb2.SignatureDefMap())
