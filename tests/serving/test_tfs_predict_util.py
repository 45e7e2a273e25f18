"""tensorflow_serving/servables/tensorflow/predict_util_test.cc, case by case, against ``deepclf serve`` started
with a ``tensorflow_model_server`` command line (tests/serving/tfs_server.py), through gRPC with the
``tensorflow_serving.apis`` stubs (what a TF Serving client uses).

Upstream calls ``RunPredict`` on TF's half_plus_two as ``test_model`` version 123 and on ``saved_model_counter``;
here ``test_model`` is half_plus_two at version 123 and ``counter`` a graph of the same four signatures
(tests/tfserving_upstream_models.py). Responses are compared whole (upstream's ``EqualsProto``), errors by code and
whole message. Test ids name the upstream test; docs/tfserving-conformance.md lists every case.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from tests.serving.tfs_server import TEST_MODEL

pytest.importorskip("tensorflow")
apis = pytest.importorskip("tensorflow_serving.apis.prediction_service_pb2_grpc")
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import predict_pb2

UPSTREAM = "predict_util_test"
VERSION = 123


def _case(test: str, n: int, *values: Any) -> Any:
    return pytest.param(*values, id=f"{UPSTREAM}::{test}#{n}")


@pytest.fixture(scope="module")
def stub(tfs_upstream: Any) -> Iterator[Any]:
    with grpc.insecure_channel(tfs_upstream.grpc_target) as channel:
        yield apis.PredictionServiceStub(channel)


def _tensor(dtype: int, shape: list[int] | None = None, **values: Any) -> Any:
    t = tensor_pb2.TensorProto(dtype=dtype, **values)
    for d in shape or []:
        t.tensor_shape.dim.add(size=d)
    return t


def _scalar_float(value: float) -> Any:
    """A DT_FLOAT TensorProto with one float_val and no shape (a scalar), as the upstream requests build it."""
    return _tensor(types_pb2.DT_FLOAT, float_val=[value])


def _request(model: str | None = TEST_MODEL, signature: str = "", **inputs: Any) -> Any:
    req = predict_pb2.PredictRequest()
    if model is not None:
        req.model_spec.name = model
        req.model_spec.version.value = VERSION
    if signature:
        req.model_spec.signature_name = signature
    for name, t in inputs.items():
        req.inputs[name].CopyFrom(t)
    return req


def _error(stub: Any, req: Any) -> tuple[Any, str]:
    with pytest.raises(grpc.RpcError) as err:
        stub.Predict(req, timeout=30)
    return err.value.code(), err.value.details() or ""


def _expected(model: str, signature: str, **outputs: float) -> Any:
    """A PredictResponse as upstream's expectations write it: each output a scalar DT_FLOAT with ``tensor_shape {}``
    present, ``model_spec`` = the request's with the resolved signature name."""
    resp = predict_pb2.PredictResponse()
    resp.model_spec.name = model
    resp.model_spec.version.value = VERSION
    resp.model_spec.signature_name = signature
    for name, value in outputs.items():
        out = resp.outputs[name]
        out.dtype = types_pb2.DT_FLOAT
        out.float_val.append(value)
        out.tensor_shape.SetInParent()
    return resp


def _empty_spec() -> Any:
    req = predict_pb2.PredictRequest()
    req.model_spec.SetInParent()
    return req


def _named(name: str) -> Any:
    req = predict_pb2.PredictRequest()
    req.model_spec.name = name
    return req


@pytest.mark.parametrize(
    ("make", "code", "message"),
    [
        _case(
            "MissingOrEmptyModelSpec",
            0,
            predict_pb2.PredictRequest,
            grpc.StatusCode.INVALID_ARGUMENT,
            "Missing ModelSpec",
        ),
        _case(
            "MissingOrEmptyModelSpec",
            1,
            _empty_spec,
            grpc.StatusCode.INVALID_ARGUMENT,
            "ModelSpec has no name specified.",
        ),
        # Upstream expects INVALID_ARGUMENT here because its harness looks the servable up under test_model whatever
        # the request names, and the empty inputs are refused; through the server the name is resolved first
        # (predict_impl.cc: ServerCore::GetServableHandle), so an unknown model is NOT_FOUND.
        _case(
            "MissingOrEmptyModelSpec",
            2,
            lambda: _named("test"),
            grpc.StatusCode.NOT_FOUND,
            "Servable not found for request: Latest(test)",
        ),
    ],
)
def test_missing_or_empty_model_spec(stub: Any, make: Any, code: Any, message: str) -> None:
    assert _error(stub, make()) == (code, message)


@pytest.mark.parametrize("n", [_case("EmptyInputList", 0, 0)])
def test_empty_input_list(stub: Any, n: int) -> None:
    """INVALID_ARGUMENT (VerifyRequestInputsSize)."""
    assert _error(stub, _request()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "input size does not match signature: 0!=1 len({}) != len({x}). Sent extra: {}. Missing but required: {x}.",
    )


@pytest.mark.parametrize(
    ("inputs", "filters", "message"),
    [
        _case(
            "InputTensorsDontMatchModelSpecInputs",
            0,
            {
                "unknown_key1": _tensor(types_pb2.DT_STRING, [1], string_val=[b"any_value"]),
                "unknown_key2": _tensor(types_pb2.DT_FLOAT, [1], float_val=[1.0]),
            },
            [],
            "input size does not match signature: 2!=1 len({unknown_key1,unknown_key2}) != len({x}). Sent extra: "
            "{unknown_key1,unknown_key2}. Missing but required: {x}.",
        ),
        _case(
            "PredictionInvalidTensor",
            0,
            {"x": _tensor(types_pb2.DT_BOOL, bool_val=[True])},
            [],
            "Expects arg[0] to be float but bool is provided",
        ),
        _case(
            "OutputFiltersDontMatchModelSpecOutputs",
            0,
            {"x": _scalar_float(2.0)},
            ["output_filter"],
            "output tensor alias not found in signature: output_filter Outputs expected to be in the set {y}.",
        ),
        _case(
            "OutputFiltersDontMatchModelSpecOutputs",
            2,
            {"x": _scalar_float(2.0)},
            ["y", "y"],
            "duplicate output tensor alias: y",
        ),
        _case(
            "InputTensorsHaveWrongType",
            0,
            {"x": _tensor(types_pb2.DT_STRING, [1], string_val=[b"any_value"])},
            ["y"],
            "Expects arg[0] to be float but string is provided",
        ),
    ],
)
def test_invalid_argument(stub: Any, inputs: dict, filters: list[str], message: str) -> None:
    """INVALID_ARGUMENT with TF Serving's (or, for a feed of the wrong dtype, the TF runtime's) words; upstream checks
    substrings of these."""
    req = _request(**inputs)
    req.output_filter.extend(filters)
    assert _error(stub, req) == (grpc.StatusCode.INVALID_ARGUMENT, message)


@pytest.mark.parametrize(
    ("signature", "alias", "output", "filters", "expected"),
    [
        _case("PredictionSuccess", 0, "", "x", "y", [], 3.0),
        _case("OutputFiltersDontMatchModelSpecOutputs", 1, "", "x", "y", ["y"], 3.0),
        _case("PredictionWithNamedRegressionSignature", 0, "regress_x2_to_y3", "inputs", "outputs", [], 4.0),
        _case("PredictionWithNamedClassificationSignature", 0, "classify_x2_to_y3", "inputs", "scores", [], 4.0),
    ],
)
def test_prediction_success(
    stub: Any, signature: str, alias: str, output: str, filters: list[str], expected: float
) -> None:
    """A scalar feed into a ``[-1, 1]`` signature is run as it is (shapes are not checked, spec 7.5) and answers a
    scalar; the whole response equals upstream's expected PredictResponse."""
    req = _request(signature=signature, **{alias: _scalar_float(2.0)})
    req.output_filter.extend(filters)
    resp = stub.Predict(req, timeout=30)
    assert resp == _expected(TEST_MODEL, signature or "serving_default", **{output: expected})


@pytest.mark.parametrize("n", [_case("PredictionWithCustomizedSignatures", 0, 0)])
def test_prediction_with_customized_signatures(stub: Any, n: int) -> None:
    """The counter model's stateful signatures in upstream's order (get 0, incr 1, reset 0, incr with an output
    filter 1, incr_by 3 -> 4): Predict on signatures without inputs. (A reset first makes the order hold if the
    session runs the test again; upstream's sequence starts from a fresh model.)"""
    calls = [
        ("reset_counter", {}, [], 0.0),
        ("get_counter", {}, [], 0.0),
        ("incr_counter", {}, [], 1.0),
        ("reset_counter", {}, [], 0.0),
        ("incr_counter", {}, ["output"], 1.0),
        ("incr_counter_by", {"delta": _scalar_float(3.0)}, [], 4.0),
    ]
    for signature, inputs, filters, value in calls:
        req = _request("counter", signature, **inputs)
        req.output_filter.extend(filters)
        assert stub.Predict(req, timeout=30) == _expected("counter", signature, output=value), signature


@pytest.fixture(scope="module")
def checked_stub(tfs_upstream_checked: Any) -> Iterator[Any]:
    with grpc.insecure_channel(tfs_upstream_checked.grpc_target) as channel:
        yield apis.PredictionServiceStub(channel)


@pytest.mark.parametrize(
    ("signature", "method"),
    [
        _case("MethodNameCheck", 0, "serving_default", "tensorflow/serving/classify"),
        _case("MethodNameCheck", 1, "unsupported_method", "not/supported/method"),
        _case("MethodNameCheck", 2, "empty_method", ""),
    ],
)
def test_method_name_check(stub: Any, checked_stub: Any, signature: str, method: str) -> None:
    """Predict on the classifier stand-in's signatures (upstream sets the method names on half_plus_two's
    serving_default and runs a fake session): any method with the check off; with it on, only predict, classify
    and regress, else INTERNAL."""
    import tensorflow as tf

    ex = tf.train.Example()
    ex.features.feature["class"].bytes_list.value.append(b"uno")
    ex.features.feature["score"].float_list.value.append(1.0)
    req = _request(
        "classifier", signature, inputs=_tensor(types_pb2.DT_STRING, [1], string_val=[ex.SerializeToString()])
    )
    assert list(stub.Predict(req, timeout=30).outputs["scores"].float_val) == [1.0]
    if method == "tensorflow/serving/classify":
        assert list(checked_stub.Predict(req, timeout=30).outputs["scores"].float_val) == [1.0]
    else:
        assert _error(checked_stub, req) == (
            grpc.StatusCode.INTERNAL,
            "Expected prediction signature method_name to be one of {tensorflow/serving/predict, "
            f"tensorflow/serving/classify, tensorflow/serving/regress}}. Was: {method}",
        )
