"""gRPC plumbing on a real loopback server: our handlers and stubs, the official stubs against ours, errors."""

from __future__ import annotations

from concurrent import futures

import grpc
import numpy as np
import pytest

from deepclf import protocol as P
from deepclf.protocol import rpc


def test_method_table_has_tf_servings_paths():
    assert set(P.METHODS) == {
        "/tensorflow.serving.PredictionService/Predict",
        "/tensorflow.serving.PredictionService/GetModelMetadata",
        "/tensorflow.serving.PredictionService/Classify",
        "/tensorflow.serving.PredictionService/Regress",
        "/tensorflow.serving.PredictionService/MultiInference",
        "/tensorflow.serving.ModelService/GetModelStatus",
    }
    assert P.PREDICT.path == "/tensorflow.serving.PredictionService/Predict"
    assert P.PREDICT.request_class is P.PredictRequest and P.PREDICT.response_class is P.PredictResponse
    assert P.GET_MODEL_STATUS.request_class is P.GetModelStatusRequest
    assert P.GET_MODEL_METADATA.response_class is P.GetModelMetadataResponse
    req = P.PredictRequest(model_spec=P.model_spec("m"))
    assert P.PREDICT.request_class.FromString(req.SerializeToString()) == req
    with pytest.raises(KeyError, match="known"):
        rpc.method(P.PREDICTION_SERVICE, "Nope")


def _predict(request, context):
    if request.model_spec.name != "flowers":
        err = P.ModelNotFound(f"Servable not found for request: Latest({request.model_spec.name})")
        context.abort(P.grpc_code_for(err), str(err))
    image = P.to_ndarray(request.inputs["image"])
    resp = P.PredictResponse(model_spec=request.model_spec)
    resp.outputs["sum"].CopyFrom(P.to_tensor_proto(image.reshape(len(image), -1).sum(axis=1)))
    return resp


def _status(request, context):
    resp = P.GetModelStatusResponse()
    resp.model_version_status.add(version=1, state=P.ModelVersionState.AVAILABLE)
    return resp


@pytest.fixture(scope="module")
def server_address():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers(
        [
            P.generic_handler(P.PREDICTION_SERVICE, {"Predict": _predict}),
            P.generic_handler(P.MODEL_SERVICE, {"GetModelStatus": _status}),
        ]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(None)


def _request(name="flowers"):
    req = P.PredictRequest(model_spec=P.model_spec(name, signature_name="serving_default"))
    req.inputs["image"].CopyFrom(P.to_tensor_proto(np.ones((2, 4, 4, 3), np.float32)))
    return req


def test_our_stub_against_our_server(server_address):
    with grpc.insecure_channel(server_address) as channel:
        resp = P.unary_unary(channel, P.PREDICT)(_request(), timeout=10)
        np.testing.assert_array_equal(P.to_ndarray(resp.outputs["sum"]), [48.0, 48.0])
        status = P.unary_unary(channel, P.GET_MODEL_STATUS.path)(P.GetModelStatusRequest(), timeout=10)
        assert status.model_version_status[0].state == P.ModelVersionState.AVAILABLE


def test_errors_cross_the_wire_with_their_code(server_address):
    with grpc.insecure_channel(server_address) as channel:
        with pytest.raises(grpc.RpcError) as info:
            P.unary_unary(channel, P.PREDICT)(_request("nope"), timeout=10)
        err = P.from_exception(info.value)
        assert type(err) is P.ModelNotFound and "Latest(nope)" in err.message
        # A method the server does not register answers UNIMPLEMENTED -> Unimplemented.
        with pytest.raises(grpc.RpcError) as info:
            P.unary_unary(channel, P.GET_MODEL_METADATA)(P.GetModelMetadataRequest(), timeout=10)
        details = info.value.details()
        assert details is not None
        assert type(P.error_for_grpc(info.value.code(), details)) is P.Unimplemented


def test_official_stubs_talk_to_our_handlers(server_address):
    prediction_service_pb2_grpc = pytest.importorskip("tensorflow_serving.apis.prediction_service_pb2_grpc")
    from tensorflow_serving.apis import (
        get_model_status_pb2,
        model_service_pb2_grpc,
        predict_pb2,
    )

    with grpc.insecure_channel(server_address) as channel:
        theirs = predict_pb2.PredictRequest.FromString(_request().SerializeToString())
        resp = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(theirs, timeout=10)
        assert isinstance(resp, predict_pb2.PredictResponse)
        np.testing.assert_array_equal(P.to_ndarray(resp.outputs["sum"]), [48.0, 48.0])
        status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
            get_model_status_pb2.GetModelStatusRequest(), timeout=10
        )
        assert status.model_version_status[0].version == 1


async def test_aio_server_and_channel_use_the_same_helpers():
    async def predict(request, context):
        return _predict(request, context)

    server = grpc.aio.server()
    server.add_generic_rpc_handlers([P.generic_handler(P.PREDICTION_SERVICE, {"Predict": predict})])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            resp = await P.unary_unary(channel, P.PREDICT)(_request(), timeout=10)
        np.testing.assert_array_equal(P.to_ndarray(resp.outputs["sum"]), [48.0, 48.0])
    finally:
        await server.stop(None)
