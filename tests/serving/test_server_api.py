"""The edge server answers what TF Serving's documentation shows, over REST and gRPC, through curl and through the
official ``tensorflow_serving.apis`` stubs, with probabilities identical (tolerance 0) to the local runner."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time

import grpc
import numpy as np
import pytest
import requests

from deepclf import protocol as P
from deepclf.preprocessing import preprocess_batch
from deepclf.runtime import load_runner
from tests.prebuilt import require_tensorflow

FLOWERS = "flowers"


def _post(srv, path: str, body) -> requests.Response:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return requests.post(srv.rest_url + path, data=data, timeout=30)


@pytest.fixture(scope="module")
def batch(photos, server):
    return preprocess_batch(photos, (64, 64))


@pytest.fixture(scope="module")
def local(models_root):
    # The same file, the same thread count as the server's interpreters: the numbers must match exactly.
    with load_runner(models_root / "flowers" / "1", variant="fp32", num_threads=1) as r:
        yield r


# ------------------------------------------------------------------------------------ half_plus_two (TF docs)


def test_half_plus_two_row_example(server):
    r = _post(server, "/v1/models/half_plus_two:predict", b'{"instances": [1.0, 2.0, 5.0]}')
    assert r.status_code == 200
    assert r.json() == {"predictions": [2.5, 3.0, 4.5]}


def test_half_plus_two_columnar_and_named_forms(server):
    assert _post(server, "/v1/models/half_plus_two:predict", {"inputs": [1.0, 2.0, 5.0]}).json() == {
        "outputs": [2.5, 3.0, 4.5]
    }
    assert _post(server, "/v1/models/half_plus_two:predict", {"inputs": {"x": [1.0, 2.0, 5.0]}}).json() == {
        "outputs": [2.5, 3.0, 4.5]
    }
    assert _post(
        server,
        "/v1/models/half_plus_two/versions/1:predict",
        {"signature_name": "serving_default", "instances": [{"x": 1.0}, {"x": 2.0}]},
    ).json() == {"predictions": [2.5, 3.0]}
    # JSON integers are read as the signature's float32, as TF Serving does.
    assert _post(server, "/v1/models/half_plus_two:predict", {"instances": [1, 2, 5]}).json() == {
        "predictions": [2.5, 3.0, 4.5]
    }


def test_half_plus_two_status_and_metadata(server):
    status = requests.get(server.rest_url + "/v1/models/half_plus_two", timeout=10).json()
    assert status == {
        "model_version_status": [
            {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]
    }
    meta = requests.get(server.rest_url + "/v1/models/half_plus_two/metadata", timeout=10).json()
    assert meta["model_spec"]["name"] == "half_plus_two" and meta["model_spec"]["version"] == "1"
    sig = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert sig["method_name"] == "tensorflow/serving/predict"
    assert sig["inputs"]["x"]["dtype"] == "DT_FLOAT" and [
        d["size"] for d in sig["inputs"]["x"]["tensor_shape"]["dim"]
    ] == ["-1"]
    assert sig["outputs"]["y"]["dtype"] == "DT_FLOAT"


# ------------------------------------------------------------------------------------------ flowers over REST


def test_status_version_and_label_urls(server):
    for path in ("/v1/models/flowers", "/v1/models/flowers/versions/1", "/v1/models/flowers/labels/stable"):
        r = requests.get(server.rest_url + path, timeout=10)
        assert r.status_code == 200, (path, r.text)
        (entry,) = r.json()["model_version_status"]
        assert entry["version"] == "1" and entry["state"] == "AVAILABLE"


def test_metadata_lists_both_signatures(server):
    doc = requests.get(server.rest_url + "/v1/models/flowers/labels/stable/metadata", timeout=10).json()
    sigs = doc["metadata"]["signature_def"]["signature_def"]
    assert set(sigs) == {"serving_default", "predict_image_bytes", "classify_image_bytes"}
    image = sigs["serving_default"]["inputs"]["image"]
    assert image["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in image["tensor_shape"]["dim"]] == ["-1", "64", "64", "3"]
    assert sigs["predict_image_bytes"]["inputs"]["image_bytes"]["dtype"] == "DT_STRING"
    assert set(sigs["serving_default"]["outputs"]) == {"probabilities", "classes", "labels"}


def test_rest_row_columnar_and_b64_agree_exactly_with_local_runner(server, batch, photos, local):
    expected = local.run({"image": batch})
    row = _post(server, "/v1/models/flowers:predict", P.encode_predict_request({"image": batch}))
    col = _post(
        server, "/v1/models/flowers/versions/1:predict", P.encode_predict_request({"image": batch}, format="columnar")
    )
    assert row.status_code == col.status_code == 200
    row_out = P.decode_predict_response(row.content)
    col_out = P.decode_predict_response(col.content)
    np.testing.assert_array_equal(row_out["probabilities"], expected["probabilities"])
    np.testing.assert_array_equal(col_out["probabilities"], expected["probabilities"])
    assert row.json()["predictions"][0]["labels"] == expected["labels"][0].decode()
    assert col.json()["outputs"]["classes"] == expected["classes"].tolist()

    # The bytes signature: TF Serving's documented b64 form, decoded on the server with deepclf.preprocessing.
    jpegs = [p.read_bytes() for p in photos]
    body = {
        "signature_name": "predict_image_bytes",
        "instances": [{"b64": base64.b64encode(j).decode()} for j in jpegs],
    }
    b64 = _post(server, "/v1/models/flowers/labels/stable:predict", body)
    assert b64.status_code == 200, b64.text
    expected_bytes = local.run({"image_bytes": np.array(jpegs, dtype=object)}, "predict_image_bytes")
    np.testing.assert_array_equal(
        P.decode_predict_response(b64.content)["probabilities"], expected_bytes["probabilities"]
    )
    # Same pixels either way (the server decodes with the one image contract).
    np.testing.assert_array_equal(expected_bytes["probabilities"], expected["probabilities"])


# ------------------------------------------------------------------------------------------ flowers over gRPC


def test_grpc_predict_metadata_status(server, batch, local):
    with grpc.insecure_channel(server.grpc_target) as ch:
        req = P.PredictRequest(model_spec=P.model_spec(FLOWERS, signature_name="serving_default"))
        req.inputs["image"].CopyFrom(P.to_tensor_proto(batch))
        resp = P.unary_unary(ch, P.PREDICT)(req, timeout=30)
        assert resp.model_spec.name == FLOWERS and resp.model_spec.version.value == 1
        assert resp.model_spec.signature_name == "serving_default"
        np.testing.assert_array_equal(
            P.to_ndarray(resp.outputs["probabilities"]), local.run({"image": batch})["probabilities"]
        )
        assert set(resp.outputs) == {"probabilities", "classes", "labels"}

        req.output_filter.append("labels")
        only = P.unary_unary(ch, P.PREDICT)(req, timeout=30)
        assert set(only.outputs) == {"labels"}

        meta_req = P.GetModelMetadataRequest(model_spec=P.model_spec(FLOWERS, version_label="stable"))
        meta_req.metadata_field.append("signature_def")
        meta = P.unary_unary(ch, P.GET_MODEL_METADATA)(meta_req, timeout=10)
        assert set(P.unpack_signature_defs(meta).signature_def) == {
            "serving_default",
            "predict_image_bytes",
            "classify_image_bytes",
        }

        status = P.unary_unary(ch, P.GET_MODEL_STATUS)(P.GetModelStatusRequest(model_spec=P.model_spec(FLOWERS)))
        (entry,) = status.model_version_status
        assert entry.version == 1 and entry.state == P.ModelVersionState.Value("AVAILABLE")


def test_grpc_accepts_messages_over_the_4mb_default(models_root, batch, local):
    from deepclf.serving import EdgeServer, ServerConfig

    big = np.concatenate([batch] * 30)  # 120 x 64 x 64 x 3 float32 = 5.9 MB
    assert big.nbytes > 4 * 1024 * 1024
    # 120 rows is over the default --max_request_rows (32): raised here, the point is the message size
    cfg = ServerConfig(
        model_name=FLOWERS,
        model_base_path=models_root / FLOWERS,
        port=0,
        rest_api_port=None,
        threads=1,
        poll_seconds=0,
        max_request_rows=120,
        access_log=False,
    )
    with (
        EdgeServer(cfg) as srv,
        grpc.insecure_channel(srv.grpc_target, options=[("grpc.max_send_message_length", 64 << 20)]) as ch,
    ):
        req = P.PredictRequest(model_spec=P.model_spec(FLOWERS))
        req.inputs["image"].CopyFrom(P.to_tensor_proto(big))
        resp = P.unary_unary(ch, P.PREDICT)(req, timeout=60)
    probs = P.to_ndarray(resp.outputs["probabilities"])
    assert probs.shape == (120, 5)
    np.testing.assert_array_equal(probs[:4], local.run({"image": batch})["probabilities"])


def test_half_plus_two_over_grpc(server):
    with grpc.insecure_channel(server.grpc_target) as ch:
        req = P.PredictRequest(model_spec=P.model_spec("half_plus_two"))
        req.inputs["x"].CopyFrom(P.to_tensor_proto(np.array([1.0, 2.0, 5.0], np.float32)))
        resp = P.unary_unary(ch, P.PREDICT)(req, timeout=10)
    assert P.to_ndarray(resp.outputs["y"]).tolist() == [2.5, 3.0, 4.5]


class _SlowRunner:
    """A real runner whose calls take 50 ms, so that a caller waits on its future (a fast model can be done first)."""

    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def run(self, inputs, signature="serving_default"):
        time.sleep(0.05)
        return self.inner.run(inputs, signature)


def test_grpc_calls_without_a_deadline_are_answered(models_root):
    """Most callers (TF Serving's own examples) set no deadline: grpc then reports centuries remaining, which must
    mean "no deadline", not an overflowing wait (it was an INTERNAL error whenever inference had to be waited for)."""
    from deepclf.serving import EdgeServer, ServerConfig

    cfg = ServerConfig(
        model_name="half_plus_two",
        model_base_path=models_root / "half_plus_two",
        port=0,
        rest_api_port=None,
        threads=1,
        poll_seconds=0,
        access_log=False,
        runner_wrapper=_SlowRunner,
    )
    with EdgeServer(cfg) as srv, grpc.insecure_channel(srv.grpc_target) as ch:
        req = P.PredictRequest(model_spec=P.model_spec("half_plus_two"))
        req.inputs["x"].CopyFrom(P.to_tensor_proto(np.array([1.0, 2.0, 5.0], np.float32)))
        resp = P.unary_unary(ch, P.PREDICT)(req)  # no timeout
        assert P.to_ndarray(resp.outputs["y"]).tolist() == [2.5, 3.0, 4.5]
        resp = P.unary_unary(ch, P.PREDICT)(req, timeout=30)  # and with one
        assert P.to_ndarray(resp.outputs["y"]).tolist() == [2.5, 3.0, 4.5]


# -------------------------------------------------------------------------------- official stubs and curl


def test_official_tensorflow_serving_stubs_identical(server, batch, photos, local):
    require_tensorflow("the official stubs come with tensorflow-serving-api, which imports it")
    pytest.importorskip(
        "tensorflow_serving.apis.prediction_service_pb2_grpc",
        reason="tensorflow-serving-api (the dev extra) provides the official stubs",
    )
    import tensorflow as tf
    from tensorflow_serving.apis import (
        get_model_metadata_pb2,
        get_model_status_pb2,
        model_service_pb2_grpc,
        predict_pb2,
        prediction_service_pb2_grpc,
    )

    with grpc.insecure_channel(server.grpc_target) as ch:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(ch)
        req = predict_pb2.PredictRequest()
        req.model_spec.name = FLOWERS
        req.model_spec.signature_name = "serving_default"
        req.inputs["image"].CopyFrom(tf.make_tensor_proto(batch))
        official = tf.make_ndarray(stub.Predict(req, timeout=30).outputs["probabilities"])

        req_b = predict_pb2.PredictRequest()
        req_b.model_spec.name = FLOWERS
        req_b.model_spec.signature_name = "predict_image_bytes"
        req_b.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto([p.read_bytes() for p in photos]))
        official_b = tf.make_ndarray(stub.Predict(req_b, timeout=30).outputs["probabilities"])

        meta_req = get_model_metadata_pb2.GetModelMetadataRequest()
        meta_req.model_spec.name = FLOWERS
        meta_req.metadata_field.append("signature_def")
        meta = stub.GetModelMetadata(meta_req, timeout=10)
        sigs = get_model_metadata_pb2.SignatureDefMap()
        meta.metadata["signature_def"].Unpack(sigs)
        assert sigs.signature_def["serving_default"].inputs["image"].dtype == tf.float32.as_datatype_enum

        st_req = get_model_status_pb2.GetModelStatusRequest()
        st_req.model_spec.name = FLOWERS
        st = model_service_pb2_grpc.ModelServiceStub(ch).GetModelStatus(st_req, timeout=10)
        assert st.model_version_status[0].state == get_model_status_pb2.ModelVersionStatus.AVAILABLE

        with pytest.raises(grpc.RpcError) as info:
            req.model_spec.name = "no_such_model"
            stub.Predict(req, timeout=10)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND

    rest = P.decode_predict_response(
        _post(server, "/v1/models/flowers:predict", P.encode_predict_request({"image": batch})).content
    )
    expected = local.run({"image": batch})["probabilities"]
    np.testing.assert_array_equal(official, expected)
    np.testing.assert_array_equal(official_b, expected)
    np.testing.assert_array_equal(rest["probabilities"], official)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_gives_the_same_answers(server, batch, tmp_path):
    def curl(*args: str) -> tuple[int, bytes]:
        proc = subprocess.run(
            ["curl", "-s", "-w", "\n%{http_code}", *args], capture_output=True, timeout=60, check=True
        )
        body, _, code = proc.stdout.rpartition(b"\n")
        return int(code), body

    # TF Serving's documented half_plus_two calls, verbatim.
    code, body = curl(
        "-d", '{"instances": [1.0, 2.0, 5.0]}', "-X", "POST", f"{server.rest_url}/v1/models/half_plus_two:predict"
    )
    assert code == 200 and json.loads(body) == {"predictions": [2.5, 3.0, 4.5]}
    code, body = curl(f"{server.rest_url}/v1/models/half_plus_two")
    assert code == 200 and json.loads(body)["model_version_status"][0]["state"] == "AVAILABLE"

    request_file = tmp_path / "request.json"
    request_file.write_bytes(P.encode_predict_request({"image": batch}))
    code, body = curl(
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        f"@{request_file}",
        f"{server.rest_url}/v1/models/flowers:predict",
    )
    assert code == 200
    by_requests = _post(server, "/v1/models/flowers:predict", request_file.read_bytes())
    assert body == by_requests.content  # byte-identical answers
    code, body = curl(f"{server.rest_url}/v1/models/flowers/versions/42")
    assert code == 404 and "Could not find version 42" in json.loads(body)["error"]
