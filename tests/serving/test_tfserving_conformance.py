"""tensorflow_model_server_test.py's requests (docs/tfserving-behaviour.md §8.3) sent to ``deepclf serve`` started as
that test's harness starts ``tensorflow_model_server`` (test_base.py ``RunServer``)::

    deepclf serve --port=<free> --rest_api_port=<free> --rest_api_timeout_in_ms=5000 \\
        --model_name=default --model_base_path=<half_plus_two with version 00000123>

over REST and over gRPC with the ``tensorflow_serving.apis`` stubs; the config-file case (testGoodModelConfig)
goes to the shared conformance server (tests/serving/tfs_server.py). Also here: spec rules no upstream test
checks (§6.5 FAILED_PRECONDITION for an unknown Predict signature over gRPC, §7.3 Predict on a classify signature).
"""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deepclf.bench.process import free_port
from tests.serving.child_server import child_server
from tests.tfserving_models import HALF_PLUS_THREE, HALF_PLUS_TWO, VERSION_DIRS

pytest.importorskip("tensorflow")
httpx = pytest.importorskip("httpx")
grpc = pytest.importorskip("grpc")
apis = pytest.importorskip("tensorflow_serving.apis.prediction_service_pb2_grpc")
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    regression_pb2,
)

UPSTREAM = "tensorflow_model_server_test"
DEFAULT = "default"


def _case(test: str, n: int, *values: Any) -> Any:
    return pytest.param(*values, id=f"{UPSTREAM}::{test}#{n}")


@pytest.fixture(scope="module")
def tfs_server(tfserving_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """RunServer's single-model command line, on half_plus_two with only version 00000123 (TF Serving's
    saved_model_half_plus_two_cpu)."""
    base = tmp_path_factory.mktemp("default") / "half_plus_two_cpu"
    shutil.copytree(tfserving_models / HALF_PLUS_TWO / VERSION_DIRS[0], base / VERSION_DIRS[0])
    args = [
        f"--port={free_port()}",
        f"--rest_api_port={free_port()}",
        "--rest_api_timeout_in_ms=5000",
        f"--model_name={DEFAULT}",
        f"--model_base_path={base}",
    ]
    with child_server(args, base.parent / "serve.stderr", tensorflow=True) as (_proc, grpc_target, rest_url):
        yield type("Server", (), {"grpc_target": grpc_target, "rest_url": rest_url})


@pytest.fixture(scope="module")
def stub(tfs_server: Any) -> Iterator[Any]:
    with grpc.insecure_channel(tfs_server.grpc_target) as ch:
        yield apis.PredictionServiceStub(ch)


def _predict_request(model: str = DEFAULT, *, batch_input: bool = False, output_filter: bool = False) -> Any:
    import tensorflow as tf

    req = predict_pb2.PredictRequest()
    req.model_spec.name = model
    req.model_spec.signature_name = "serving_default"
    req.inputs["x"].CopyFrom(tf.make_tensor_proto([[2.0]] if batch_input else [2.0], dtype=tf.float32))
    if output_filter:
        req.output_filter.append("y")
    return req


def _example_input(target: Any, x: float = 2.0) -> None:
    target.example_list.examples.add().features.feature["x"].float_list.value.append(x)


def _spec(resp_spec: Any) -> tuple[str, str, int]:
    return resp_spec.name, resp_spec.signature_name, resp_spec.version.value


@pytest.mark.parametrize(
    ("output_filter", "batch_input"),
    [
        _case("testPredictSavedModel", 0, False, False),
        _case("testPredictSavedModel", 1, True, False),
        _case("testPredictSavedModel", 2, False, True),
        _case("testPredictSavedModel", 3, True, True),
    ],
)
def test_predict_saved_model(stub: Any, output_filter: bool, batch_input: bool) -> None:
    """VerifyPredictRequest: ``y.float_val == [3.0]`` (typed fields, not tensor_content), DT_FLOAT, model_spec
    (default, serving_default, 123); a [1] feed into a [-1, 1] signature works (spec 7.5)."""
    resp = stub.Predict(_predict_request(batch_input=batch_input, output_filter=output_filter), timeout=20)
    assert list(resp.outputs["y"].float_val) == [3.0]
    assert resp.outputs["y"].dtype == 1  # DT_FLOAT
    assert _spec(resp.model_spec) == (DEFAULT, "serving_default", 123)


@pytest.mark.parametrize("n", [_case("testGoodModelConfig", 0, 0)])
def test_good_model_config(tfs_upstream: Any, n: int) -> None:
    """A models.config serving half_plus_two and half_plus_three: 3.0 and 4.0 for x = 2."""
    with grpc.insecure_channel(tfs_upstream.grpc_target) as ch:
        stub = apis.PredictionServiceStub(ch)
        assert list(stub.Predict(_predict_request(HALF_PLUS_TWO), timeout=20).outputs["y"].float_val) == [3.0]
        assert list(stub.Predict(_predict_request(HALF_PLUS_THREE), timeout=20).outputs["y"].float_val) == [4.0]


@pytest.mark.parametrize("n", [_case("testGetModelStatus", 0, 0)])
def test_get_model_status(tfs_server: Any, n: int) -> None:
    req = get_model_status_pb2.GetModelStatusRequest()
    req.model_spec.name = DEFAULT
    with grpc.insecure_channel(tfs_server.grpc_target) as ch:
        resp = model_service_pb2_grpc.ModelServiceStub(ch).GetModelStatus(req, timeout=20)
    assert [(s.version, s.status.error_code) for s in resp.model_version_status] == [(123, 0)]


@pytest.mark.parametrize("n", [_case("testGetModelMetadata", 0, 0)])
def test_get_model_metadata(stub: Any, n: int) -> None:
    """model_spec (default, 123), exactly one metadata entry, ``signature_def``, a packed SignatureDefMap."""
    req = get_model_metadata_pb2.GetModelMetadataRequest()
    req.model_spec.name = DEFAULT
    req.metadata_field.append("signature_def")
    resp = stub.GetModelMetadata(req, timeout=20)
    assert (resp.model_spec.name, resp.model_spec.version.value) == (DEFAULT, 123)
    assert list(resp.metadata) == ["signature_def"]
    sigs = get_model_metadata_pb2.SignatureDefMap()
    resp.metadata["signature_def"].Unpack(sigs)
    assert sigs.signature_def["serving_default"].inputs["x"].name == "x:0"


@pytest.mark.parametrize("n", [_case("testClassify", 0, 0)])
def test_classify(stub: Any, n: int) -> None:
    req = classification_pb2.ClassificationRequest()
    req.model_spec.name = DEFAULT
    req.model_spec.signature_name = "classify_x_to_y"
    _example_input(req.input)
    resp = stub.Classify(req, timeout=20)
    assert [[c.score for c in cl.classes] for cl in resp.result.classifications] == [[3.0]]
    assert _spec(resp.model_spec) == (DEFAULT, "classify_x_to_y", 123)


@pytest.mark.parametrize("n", [_case("testRegress", 0, 0)])
def test_regress(stub: Any, n: int) -> None:
    req = regression_pb2.RegressionRequest()
    req.model_spec.name = DEFAULT
    req.model_spec.signature_name = "regress_x_to_y"
    _example_input(req.input)
    resp = stub.Regress(req, timeout=20)
    assert [r.value for r in resp.result.regressions] == [3.0]
    assert _spec(resp.model_spec) == (DEFAULT, "regress_x_to_y", 123)


@pytest.mark.parametrize("n", [_case("testMultiInference", 0, 0)])
def test_multi_inference(stub: Any, n: int) -> None:
    req = inference_pb2.MultiInferenceRequest()
    for sig, method in (
        ("regress_x_to_y", "tensorflow/serving/regress"),
        ("classify_x_to_y", "tensorflow/serving/classify"),
    ):
        task = req.tasks.add()
        task.model_spec.name = DEFAULT
        task.model_spec.signature_name = sig
        task.method_name = method
    _example_input(req.input)
    resp = stub.MultiInference(req, timeout=20)
    assert resp.results[0].regression_result.regressions[0].value == 3.0
    assert resp.results[1].classification_result.classifications[0].classes[0].score == 3.0
    assert [_spec(r.model_spec) for r in resp.results] == [
        (DEFAULT, "regress_x_to_y", 123),
        (DEFAULT, "classify_x_to_y", 123),
    ]


@pytest.mark.parametrize(
    ("verb", "body", "expected"),
    [
        _case(
            "testClassifyREST",
            0,
            "classify",
            {"signature_name": "classify_x_to_y", "examples": [{"x": 2.0}]},
            {"results": [[["", 3.0]]]},
        ),
        _case(
            "testRegressREST",
            0,
            "regress",
            {"signature_name": "regress_x_to_y", "examples": [{"x": 2.0}]},
            {"results": [3.0]},
        ),
        _case("testPredictREST", 0, "predict", {"instances": [2.0, 3.0, 4.0]}, {"predictions": [3.0, 3.5, 4.0]}),
        _case("testPredictColumnarREST", 0, "predict", {"inputs": [2.0, 3.0, 4.0]}, {"outputs": [3.0, 3.5, 4.0]}),
    ],
)
def test_rest_inference(tfs_server: Any, verb: str, body: dict, expected: dict) -> None:
    r = httpx.post(f"{tfs_server.rest_url}/v1/models/{DEFAULT}:{verb}", json=body, timeout=20)
    assert (r.status_code, r.json()) == (200, expected)


@pytest.mark.parametrize("n", [_case("testGetStatusREST", 0, 0)])
def test_rest_status(tfs_server: Any, n: int) -> None:
    r = httpx.get(f"{tfs_server.rest_url}/v1/models/{DEFAULT}", timeout=20)
    assert (r.status_code, r.json()) == (
        200,
        {
            "model_version_status": [
                {"version": "123", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
            ]
        },
    )


@pytest.mark.parametrize("n", [_case("testGetModelMetadataREST", 0, 0)])
def test_rest_metadata(tfs_server: Any, n: int) -> None:
    """Upstream compares with half_plus_two_model_metadata.json; the same layout is checked signature by signature
    in test_tfs_http_rest_api_handler.py (GetModelMetadata), so here: the spec and one signature whole."""
    doc = httpx.get(f"{tfs_server.rest_url}/v1/models/{DEFAULT}/metadata", timeout=20).json()
    assert doc["model_spec"] == {"name": DEFAULT, "signature_name": "", "version": "123"}
    column = {"dim": [{"size": "-1", "name": ""}, {"size": "1", "name": ""}], "unknown_rank": False}
    assert doc["metadata"]["signature_def"]["signature_def"]["serving_default"] == {
        "inputs": {"x": {"dtype": "DT_FLOAT", "tensor_shape": column, "name": "x:0"}},
        "outputs": {"y": {"dtype": "DT_FLOAT", "tensor_shape": column, "name": "y:0"}},
        "method_name": "tensorflow/serving/predict",
        "defaults": {},
    }


# -------------------------------------------------------------------------- spec rules no upstream case checks


def test_rest_predict_b64_examples_on_a_classify_signature(tfs_server: Any) -> None:
    """§7.3: Predict on a classify signature takes serialized tf.Examples as ``{"b64": ...}``."""
    import tensorflow as tf

    ex = tf.train.Example()
    ex.features.feature["x"].float_list.value.append(2.0)
    body = {
        "signature_name": "classify_x_to_y",
        "instances": [{"b64": base64.b64encode(ex.SerializeToString()).decode()}],
    }
    r = httpx.post(f"{tfs_server.rest_url}/v1/models/{DEFAULT}:predict", json=body, timeout=20)
    assert (r.status_code, r.json()) == (200, {"predictions": [[3.0]]})


def test_grpc_model_errors(stub: Any) -> None:
    """The harness's readiness probe (test_base.py): a Predict for a missing model is NOT_FOUND naming ``Servable``."""
    with pytest.raises(grpc.RpcError) as err:
        stub.Predict(_predict_request("intentionally_missing_model"), timeout=20)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert err.value.details() == "Servable not found for request: Latest(intentionally_missing_model)"


def test_grpc_predict_unknown_signature_is_failed_precondition(stub: Any) -> None:
    """§6.5, predict_util.cc RunPredict: FAILED_PRECONDITION, worded exactly (REST answers INVALID_ARGUMENT:
    test_tfs_json_tensor.py, MakeJsonFromTensors.StatusError#0)."""
    req = _predict_request()
    req.model_spec.signature_name = "nope"
    with pytest.raises(grpc.RpcError) as err:
        stub.Predict(req, timeout=20)
    assert (err.value.code(), err.value.details()) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        'Serving signature key "nope" not found.',
    )
