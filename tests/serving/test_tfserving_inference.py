"""Classify, Regress and MultiInference (tf.Example inputs) on TF Serving's half_plus_two / half_plus_three, over
REST (``:classify`` / ``:regress``) and gRPC (``tensorflow_serving.apis`` stubs), answers and errors as in
docs/tfserving-behaviour.md §5.5, §6.1-6.4, §7.2 and §8.3, against the session's ``deepclf serve`` started with a
tensorflow_model_server command line (tests/serving/tfs_server.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.tfserving_models import HALF_PLUS_THREE, HALF_PLUS_TWO

pytest.importorskip("tensorflow")
httpx = pytest.importorskip("httpx")
grpc = pytest.importorskip("grpc")
apis = pytest.importorskip("tensorflow_serving.apis.prediction_service_pb2_grpc")
from tensorflow_serving.apis import classification_pb2, inference_pb2, regression_pb2


@pytest.fixture(scope="module")
def tfs_server(tfs_upstream: Any) -> Any:
    """The session's ``deepclf serve`` child process, started with a tensorflow_model_server command line
    (tests/serving/tfs_server.py); it serves half_plus_two (labels stable/canary) and half_plus_three."""
    return tfs_upstream


@pytest.fixture(scope="module")
def stub(tfs_server) -> Iterator:
    with grpc.insecure_channel(tfs_server.grpc_target) as channel:
        yield apis.PredictionServiceStub(channel)


def _post(srv, path: str, body: dict) -> tuple[int, dict]:
    r = httpx.post(srv.rest_url + path, json=body, timeout=30)
    return r.status_code, r.json()


@pytest.mark.parametrize(
    ("verb", "body", "expected"),
    [
        ("classify", {"signature_name": "classify_x_to_y", "examples": [{"x": 2.0}]}, {"results": [[["", 3.0]]]}),
        ("regress", {"signature_name": "regress_x_to_y", "examples": [{"x": 2.0}]}, {"results": [3.0]}),
        (
            "regress",
            {"signature_name": "regress_x_to_y2", "examples": [{"x": 2.0}, {"x": 4.0}]},
            {"results": [4.0, 5.0]},
        ),
        # context is prepended to every example; the example's own feature wins
        (
            "regress",
            {"signature_name": "regress_x_to_y", "context": {"x": 1.0}, "examples": [{"x": 2.0}, {}]},
            {"results": [3.0, 2.5]},
        ),
    ],
)
def test_rest_classify_regress(tfs_server, verb: str, body: dict, expected: dict) -> None:
    assert _post(tfs_server, f"/v1/models/{HALF_PLUS_TWO}:{verb}", body) == (200, expected)


def test_rest_half_plus_three_doc_example(tfs_server) -> None:
    body = {"signature_name": "tensorflow/serving/regress", "examples": [{"x": 1.0}, {"x": 2.0}]}
    assert _post(tfs_server, f"/v1/models/{HALF_PLUS_THREE}:regress", body) == (200, {"results": [3.5, 4.0]})


def test_rest_label_and_version(tfs_server) -> None:
    body = {"signature_name": "classify_x_to_y", "examples": [{"x": 20.0}]}
    for path in ("/labels/stable", "/versions/124"):
        assert _post(tfs_server, f"/v1/models/{HALF_PLUS_TWO}{path}:classify", body) == (
            200,
            {"results": [[["", 12.0]]]},
        )


@pytest.mark.parametrize(
    ("verb", "body", "message"),
    [
        ("regress", {"signature_name": "regress_x_to_y"}, "key 'examples' is expected and was not found"),
        ("regress", {"examples": {}}, "Expecting 'examples' value to be an list/array"),
        ("regress", {"examples": []}, "'examples' value is an empty array"),
        ("classify", {"examples": [3]}, "Example must be JSON object but got JSON Number"),
        ("classify", {"examples": [{"x": None}]}, "Feature: x has element with unexpected JSON type: Null"),
        ("classify", {"examples": [{"x": [1.0, "a"]}]}, "Unexpected element type in feature: x expecting type: float"),
        ("classify", {"examples": [{"x": 2.0}]}, "No classification inputs found in SignatureDef"),
        ("regress", {"signature_name": "nope", "examples": [{"x": 2.0}]}, "No signature was found with the name: nope"),
        (
            "regress",
            {"signature_name": "regress_x_to_y", "examples": [{"x": 2}]},
            "Data types don't match. Data type: int64 but expected type: float",
        ),
        (
            "regress",
            {"signature_name": "regress_x_to_y", "examples": [{"y": 2.0}]},
            "Feature: x (data type: float) is required but could not be found.",
        ),
    ],
)
def test_rest_errors(tfs_server, verb: str, body: dict, message: str) -> None:
    code, doc = _post(tfs_server, f"/v1/models/{HALF_PLUS_TWO}:{verb}", body)
    assert code == 400, doc
    assert message in doc["error"]


def _example_input(target, x: float = 2.0) -> None:
    target.example_list.examples.add().features.feature["x"].float_list.value.append(x)


def test_grpc_classify(stub) -> None:
    req = classification_pb2.ClassificationRequest()
    req.model_spec.name = HALF_PLUS_TWO
    req.model_spec.signature_name = "classify_x_to_y"
    req.model_spec.version.value = 123
    _example_input(req.input)
    resp = stub.Classify(req, timeout=20)
    assert len(resp.result.classifications) == 1
    assert [(c.label, c.score) for c in resp.result.classifications[0].classes] == [("", 3.0)]
    assert (resp.model_spec.name, resp.model_spec.signature_name, resp.model_spec.version.value) == (
        HALF_PLUS_TWO,
        "classify_x_to_y",
        123,
    )


def test_grpc_regress_with_context(stub) -> None:
    req = regression_pb2.RegressionRequest()
    req.model_spec.name = HALF_PLUS_TWO
    req.model_spec.signature_name = "regress_x_to_y"
    req.input.example_list_with_context.context.features.feature["x"].float_list.value.append(4.0)
    req.input.example_list_with_context.examples.add()
    req.input.example_list_with_context.examples.add().features.feature["x"].float_list.value.append(2.0)
    resp = stub.Regress(req, timeout=20)
    assert [r.value for r in resp.result.regressions] == [4.0, 3.0]
    assert resp.model_spec.version.value == 124


def test_grpc_multi_inference(stub) -> None:
    req = inference_pb2.MultiInferenceRequest()
    for sig, method in (
        ("regress_x_to_y", "tensorflow/serving/regress"),
        ("classify_x_to_y", "tensorflow/serving/classify"),
    ):
        task = req.tasks.add()
        task.model_spec.name = HALF_PLUS_TWO
        task.model_spec.signature_name = sig
        task.method_name = method
    _example_input(req.input)
    resp = stub.MultiInference(req, timeout=20)
    assert len(resp.results) == 2
    assert resp.results[0].regression_result.regressions[0].value == 3.0
    assert resp.results[1].classification_result.classifications[0].classes[0].score == 3.0
    assert [r.model_spec.signature_name for r in resp.results] == ["regress_x_to_y", "classify_x_to_y"]
    assert {r.model_spec.version.value for r in resp.results} == {124}


def test_grpc_errors(stub) -> None:
    req = regression_pb2.RegressionRequest()
    req.model_spec.name = HALF_PLUS_TWO
    req.model_spec.signature_name = "regress_x_to_y"
    with pytest.raises(grpc.RpcError) as err:
        stub.Regress(req, timeout=20)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Input is empty." in err.value.details()

    req = classification_pb2.ClassificationRequest()
    _example_input(req.input)
    with pytest.raises(grpc.RpcError) as err:
        stub.Classify(req, timeout=20)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    multi = inference_pb2.MultiInferenceRequest()
    task = multi.tasks.add()
    task.model_spec.name = HALF_PLUS_TWO
    task.model_spec.signature_name = "regress_x_to_y"
    task.method_name = "tensorflow/serving/predict"
    _example_input(multi.input)
    with pytest.raises(grpc.RpcError) as err:
        stub.MultiInference(multi, timeout=20)
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "Unsupported signature method_name: tensorflow/serving/predict" in err.value.details()


def test_tf2_model_classify_regress_multi(tfs_server: Any) -> None:
    """testClassifyTf2 / testRegressTf2 / testMultiInferenceTf2: TF2 signatures (method predict) still serve
    Classify, Regress and MultiInference (§7.2: the method name is not checked by default)."""
    from tests.serving.tfs_server import TEST_MODEL_TF2 as TF2

    with grpc.insecure_channel(tfs_server.grpc_target) as ch:
        stub = apis.PredictionServiceStub(ch)
        req = classification_pb2.ClassificationRequest()
        req.model_spec.name = TF2
        req.model_spec.signature_name = "classify_x_to_y"
        _example_input(req.input)
        resp = stub.Classify(req, timeout=20)
        assert [c.score for c in resp.result.classifications[0].classes] == [3.0]
        assert resp.model_spec.version.value == 123
        rreq = regression_pb2.RegressionRequest()
        rreq.model_spec.name = TF2
        rreq.model_spec.signature_name = "regress_x_to_y2"
        _example_input(rreq.input)
        assert [r.value for r in stub.Regress(rreq, timeout=20).result.regressions] == [4.0]
        multi = inference_pb2.MultiInferenceRequest()
        for sig, method in (
            ("regress_x_to_y", "tensorflow/serving/regress"),
            ("classify_x_to_y", "tensorflow/serving/classify"),
        ):
            task = multi.tasks.add()
            task.model_spec.name = TF2
            task.model_spec.signature_name = sig
            task.method_name = method
        _example_input(multi.input)
        results = stub.MultiInference(multi, timeout=20).results
        assert results[0].regression_result.regressions[0].value == 3.0
        assert results[1].classification_result.classifications[0].classes[0].score == 3.0
    r = httpx.post(tfs_server.rest_url + f"/v1/models/{TF2}:predict", json={"instances": [2.0]}, timeout=20)
    assert (r.status_code, r.json()) == (200, {"predictions": [3.0]})
    meta = httpx.get(tfs_server.rest_url + f"/v1/models/{TF2}/metadata", timeout=20).json()
    sigs = meta["metadata"]["signature_def"]["signature_def"]
    assert "__saved_model_init_op" in sigs
    assert sigs["classify_x_to_y"]["method_name"] == "tensorflow/serving/predict"
