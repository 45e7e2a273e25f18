"""The serving layers called alone, without a socket: ``RestApp``'s handlers with a Starlette ``Request`` built from
an ASGI scope, ``GrpcApi``'s methods with request messages, ``ServingCore`` on decoded inputs. Each runs on the
real core of a real server (the module's ``server`` fixture: half_plus_two and flowers, fp32) and must answer what
the same call over the wire answers (TF Serving's documented half_plus_two example: y = 0.5 x + 2).
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import numpy as np
import pytest
from starlette.requests import Request

from deepclf import protocol as P
from deepclf.serving.core import CallInfo
from deepclf.serving.grpc_api import GrpcApi
from deepclf.serving.rest import RestApp
from deepclf.serving.rest_api import RestApi
from tests.tfserving_models import HALF_PLUS_TWO


def _request(method: str, path: str, body: bytes = b"", query: bytes = b"") -> Request:
    """A Starlette request for ``path`` whose body arrives in one message, as uvicorn would hand it over."""
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "headers": [(b"content-length", str(len(body)).encode())] if body else [],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8501),
        "scheme": "http",
    }
    return Request(scope, receive)


@pytest.fixture(scope="module")
def rest_app(server: Any) -> RestApp:
    return RestApp(server.core, server.metrics, ready=server.ready, max_body_bytes=1 << 20, access_log=False)


def test_rest_predict_handler_alone(rest_app: RestApp) -> None:
    body = b'{"instances": [1.0, 2.0, 5.0]}'
    response = asyncio.run(rest_app.v1(_request("POST", f"/v1/models/{HALF_PLUS_TWO}:predict", body)))
    assert response.status_code == 200
    assert json.loads(bytes(response.body)) == {"predictions": [2.5, 3.0, 4.5]}


def test_rest_error_handler_alone_answers_tf_servings_body(rest_app: RestApp) -> None:
    body = b'{"signature_name": "nope", "instances": [1.0]}'
    response = asyncio.run(rest_app.v1(_request("POST", f"/v1/models/{HALF_PLUS_TWO}:predict", body)))
    assert response.status_code == 400
    assert json.loads(bytes(response.body)) == {"error": 'Serving signature name: "nope" not found in signature def'}


def test_rest_status_metadata_health_and_readiness_alone(rest_app: RestApp) -> None:
    status = asyncio.run(rest_app.v1(_request("GET", f"/v1/models/{HALF_PLUS_TWO}")))
    assert json.loads(bytes(status.body))["model_version_status"][0]["state"] == "AVAILABLE"
    metadata = json.loads(bytes(asyncio.run(rest_app.v1(_request("GET", f"/v1/models/{HALF_PLUS_TWO}/metadata"))).body))
    assert sorted(metadata) == ["metadata", "model_spec"]  # TF Serving's keys, nothing else
    assert asyncio.run(rest_app.healthz(_request("GET", "/healthz"))).status_code == 200
    ready = asyncio.run(rest_app.readyz(_request("GET", "/readyz")))
    assert ready.status_code == 200 and json.loads(bytes(ready.body))["status"] == "ready"


def test_rest_api_translation_alone(server: Any) -> None:
    api = RestApi(server.core)

    async def call() -> bytes:
        return await api.predict(HALF_PLUS_TWO, None, None, b'{"inputs": [1.0, 2.0, 5.0]}', CallInfo())

    assert json.loads(asyncio.run(call())) == {"outputs": [2.5, 3.0, 4.5]}


def test_grpc_api_alone(server: Any) -> None:
    api = GrpcApi(server.core)
    request = P.PredictRequest(model_spec=P.model_spec(HALF_PLUS_TWO))
    request.inputs["x"].CopyFrom(P.to_tensor_proto(np.array([1.0, 2.0, 5.0], np.float32)))
    info = CallInfo()
    response = api.predict(request, info)
    np.testing.assert_array_equal(P.to_ndarray(response.outputs["y"]), [2.5, 3.0, 4.5])
    assert (info.model, info.version, info.signature) == (HALF_PLUS_TWO, "1", "serving_default")
    with pytest.raises(P.FailedPrecondition, match=re.escape('Serving signature key "nope" not found.')):
        api.predict(P.PredictRequest(model_spec=P.model_spec(HALF_PLUS_TWO, signature_name="nope")), CallInfo())


def test_core_alone_on_decoded_inputs(server: Any) -> None:
    core, info = server.core, CallInfo()
    with core.acquire(HALF_PLUS_TWO, None, None, info) as served:
        key, _ = core.predict_signature(served, "")
        outputs = core.wait(core.predict(served, key, {"x": np.array([1.0, 2.0, 5.0], np.float32)}, info), info)
    np.testing.assert_array_equal(outputs["y"], [2.5, 3.0, 4.5])
    with pytest.raises(P.ModelNotFound), core.acquire("no_such_model", None, None, CallInfo()):
        pass
