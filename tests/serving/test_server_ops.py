"""Operations: health, readiness, gRPC health, Prometheus metrics, access logs, body limit, internal errors,
micro-batching, models.config (parsed like TF Serving's), version labels and start-up errors."""

from __future__ import annotations

import json
import logging
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar

import grpc
import numpy as np
import pytest
import requests

from deepclf import protocol as P
from deepclf.errors import ModelFormatError, UsageError
from deepclf.preprocessing import preprocess_batch
from deepclf.serving import EdgeServer, ModelConfig, ServerConfig
from deepclf.serving.modelconfig import load_model_config_file, parse_model_server_config


def _cfg(base: Path, **kw) -> ServerConfig:
    kw.setdefault("threads", 2)
    kw.setdefault("poll_seconds", 0)
    return ServerConfig(model_name="flowers", model_base_path=str(base), port=0, rest_api_port=0, **kw)


class Wrapped:
    """Delegates to a real runner; subclasses change ``run`` (a slow, failing or counting server)."""

    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def run(self, inputs, signature="serving_default"):
        return self.inner.run(inputs, signature)


# ------------------------------------------------------------------------------------------- health, metrics


def test_healthz_readyz_and_grpc_health(server):
    assert requests.get(server.rest_url + "/healthz", timeout=5).json() == {"status": "alive"}
    ready = requests.get(server.rest_url + "/readyz", timeout=5)
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "models": {"flowers": {"1": "tflite-fp32"}, "half_plus_two": {"1": "tflite-generic"}},
    }
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(server.grpc_target) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        for service in ("", "tensorflow.serving.PredictionService", "tensorflow.serving.ModelService"):
            resp = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert resp.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as info:
            stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=5)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_metrics_are_labelled_per_model_version_format_api_method_status(server):
    requests.post(server.rest_url + "/v1/models/half_plus_two:predict", data=b'{"instances": [1.0]}', timeout=10)
    requests.post(server.rest_url + "/v1/models/half_plus_two:predict", data=b'{"instances": ["x"]}', timeout=10)
    with grpc.insecure_channel(server.grpc_target) as ch:
        req = P.PredictRequest(model_spec=P.model_spec("half_plus_two"))
        req.inputs["x"].CopyFrom(P.to_tensor_proto(np.array([1.0], np.float32)))
        P.unary_unary(ch, P.PREDICT)(req, timeout=10)
    text = requests.get(server.metrics_url, timeout=5).text
    base = 'format="tflite-generic",method="predict",model_name="half_plus_two"'
    assert f'deepclf_serving_request_count_total{{API="rest",{base},status="OK",version="1"}}' in text
    assert f'deepclf_serving_request_count_total{{API="rest",{base},status="INVALID_ARGUMENT",version="1"}}' in text
    assert f'deepclf_serving_request_count_total{{API="grpc",{base},status="OK",version="1"}}' in text
    assert (
        'deepclf_serving_request_latency_seconds_bucket{API="grpc",format="tflite-generic",le="+Inf",'
        'method="predict",model_name="half_plus_two",status="OK",version="1"}'
    ) in text
    assert 'deepclf_serving_model_versions_available{model_name="flowers"} 1.0' in text

    # The benchmark's own parser reads TF Serving's families on this page, as it reads them from TF Serving
    # (request counts; latency percentiles of the successful requests, TF Serving records no others).
    from deepclf.bench import prom

    view = prom.server_view({}, prom.parse(text), model="half_plus_two")
    assert view["requests"] >= 3 and view["by_status"]["OK"] >= 2 and view["by_status"]["INVALID_ARGUMENT"] >= 1
    assert view["request_latency"]["count"] == view["by_status"]["OK"]


def test_access_log_is_one_json_line_per_request(server, caplog):
    caplog.set_level(logging.INFO, logger="deepclf.serving.access")
    requests.post(
        server.rest_url + "/v1/models/half_plus_two/versions/1:predict", data=b'{"instances": [4.0]}', timeout=10
    )
    requests.get(server.rest_url + "/v1/models/nope", timeout=10)
    records = [json.loads(r.getMessage()) for r in caplog.records if r.name == "deepclf.serving.access"]
    ok = next(r for r in records if r.get("http") == "POST /v1/models/half_plus_two/versions/1:predict")
    assert ok["status"] == 200 and ok["code"] == "OK" and ok["model"] == "half_plus_two" and ok["version"] == "1"
    assert ok["api"] == "rest" and ok["method"] == "predict" and ok["ms"] >= 0
    missing = next(r for r in records if r.get("http") == "GET /v1/models/nope")
    assert missing["status"] == 404 and missing["code"] == "NOT_FOUND"


def test_body_limit_gives_413(models_root):
    with EdgeServer(_cfg(models_root / "flowers", max_body_bytes=2048)) as srv:
        url = srv.rest_url + "/v1/models/flowers:predict"
        big = json.dumps({"instances": np.zeros((1, 64, 64, 3)).tolist()}).encode()
        r = requests.post(url, data=big, timeout=10)
        assert r.status_code == 413
        assert "at most 2048 bytes (--max_body_bytes; a deepclf limit: TF Serving has none)" in r.json()["error"]
        # Without a Content-Length (chunked upload) the limit applies while reading.
        r = requests.post(url, data=iter([big[:1500], big[1500:3000]]), timeout=10)
        assert r.status_code == 413 and "over 2048 bytes" in r.json()["error"]
        assert requests.post(url, data=b'{"instances": [1.0]}', timeout=10).status_code == 400  # small: served


# ------------------------------------------------------------------------------------------ internal errors


class Exploding(Wrapped):
    def run(self, inputs, signature="serving_default"):
        raise RuntimeError("secret internal detail /etc/passwd")


def test_unexpected_exceptions_are_500_with_a_generic_message(models_root, caplog):
    caplog.set_level(logging.ERROR, logger="deepclf.serving")
    # Warmup off: a runner that always raises would fail its warmup, and so the load (as TF Serving does).
    with EdgeServer(_cfg(models_root / "flowers", runner_wrapper=Exploding, enable_model_warmup=False)) as srv:
        body = P.encode_predict_request({"image": np.zeros((1, 64, 64, 3), np.float32)})
        r = requests.post(srv.rest_url + "/v1/models/flowers:predict", data=body, timeout=10)
        assert r.status_code == 500
        assert "internal server error" in r.json()["error"] and "secret" not in r.text
        with grpc.insecure_channel(srv.grpc_target) as ch:
            req = P.PredictRequest(model_spec=P.model_spec("flowers"))
            req.inputs["image"].CopyFrom(P.to_tensor_proto(np.zeros((1, 64, 64, 3), np.float32)))
            with pytest.raises(grpc.RpcError) as info:
                P.unary_unary(ch, P.PREDICT)(req, timeout=10)
        details = info.value.details()
        assert info.value.code() == grpc.StatusCode.INTERNAL and details is not None and "secret" not in details
        assert requests.get(srv.rest_url + "/healthz", timeout=5).status_code == 200
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "secret internal detail" in logged and "RuntimeError" in logged  # the details stay server-side


# ------------------------------------------------------------------------------------------------- batching


class Counting(Wrapped):
    calls: ClassVar[list[int]] = []
    lock = threading.Lock()

    def run(self, inputs, signature="serving_default"):
        with Counting.lock:
            Counting.calls.append(len(next(iter(inputs.values()))))
        return self.inner.run(inputs, signature)


def test_micro_batching_merges_concurrent_requests_and_isolates_bad_ones(models_root, photos):
    Counting.calls = []
    cfg = _cfg(
        models_root / "flowers",
        runner_wrapper=Counting,
        enable_batching=True,
        max_batch_size=8,
        batch_timeout_micros=300_000,
        num_batch_threads=1,
        threads=4,
    )
    images = preprocess_batch(photos, (64, 64))
    bad = np.full((1, 64, 64, 3), np.nan, np.float32)
    with EdgeServer(cfg) as srv:
        Counting.calls = []  # ignore anything before the requests
        url = srv.rest_url + "/v1/models/flowers:predict"

        def send(x):
            return requests.post(url, data=P.encode_predict_request({"image": x}), timeout=30)

        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(send, [images[i : i + 1] for i in range(4)] + [bad, images[:2]]))
        text = requests.get(srv.metrics_url, timeout=5).text
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 400, 200]
    assert "NaN or infinite" in answers[4].json()["error"]
    assert max(Counting.calls) > 1, Counting.calls  # at least one runner call served several requests
    with EdgeServer(_cfg(models_root / "flowers")) as plain:  # the same requests without batching
        for x, got in zip([images[i : i + 1] for i in range(4)] + [images[:2]], answers[:4] + answers[5:], strict=True):
            want = P.decode_predict_response(
                requests.post(
                    plain.rest_url + "/v1/models/flowers:predict",
                    data=P.encode_predict_request({"image": x}),
                    timeout=30,
                ).content
            )
            out = P.decode_predict_response(got.content)
            np.testing.assert_array_equal(out["classes"], want["classes"])
            np.testing.assert_allclose(out["probabilities"], want["probabilities"], rtol=0, atol=1e-6)
    assert "deepclf_serving_batch_size_count" in text


# ------------------------------------------------------------------------------- models.config and labels

MODELS_CONFIG = """
# TF Serving's format, as in its documentation
model_config_list {
  config {
    name: 'flowers'
    base_path: 'flowers'
    model_platform: 'tensorflow'
    model_version_policy { specific { versions: 1 versions: 2 } }
    version_labels { key: 'stable' value: 1 }
    version_labels { key: 'canary' value: 2 }
  }
  config {
    name: 'half_plus_two'
    base_path: 'half_plus_two'
    model_platform: 'tensorflow'
    model_version_policy { all {} }
  }
}
"""


def test_models_config_parses_like_tf_serving(tmp_path, monkeypatch, caplog):
    msc_pb2 = pytest.importorskip(
        "tensorflow_serving.config.model_server_config_pb2",
        reason="tensorflow-serving-api (the dev extra) has the official proto",
    )
    from google.protobuf import text_format

    ours = parse_model_server_config(MODELS_CONFIG)
    official = text_format.Parse(MODELS_CONFIG, msc_pb2.ModelServerConfig())
    assert ours.SerializeToString(deterministic=True) == official.SerializeToString(deterministic=True)

    # Relative base paths: taken from the working directory (not the file's folder), with a warning that TF
    # Serving refuses them.
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "models.config").write_text(MODELS_CONFIG)
    monkeypatch.chdir(tmp_path)
    caplog.set_level(logging.WARNING, logger="deepclf.serving")
    flowers, hpt = load_model_config_file(tmp_path / "conf" / "models.config")
    assert flowers.name == "flowers" and flowers.base_path == str(tmp_path / "flowers")
    assert hpt.base_path == str(tmp_path / "half_plus_two")
    warned = [r.getMessage() for r in caplog.records if "relative base_path" in r.getMessage()]
    assert (
        len(warned) == 2
        and "Expected model flowers to have an absolute path or URI; got base_path()=flowers" in (warned[0])
    )
    assert flowers.policy == "specific" and flowers.versions == (1, 2)
    assert dict(flowers.version_labels) == {"stable": 1, "canary": 2}
    assert hpt.policy == "all" and flowers.wanted([1, 2, 3]) == [1, 2] and hpt.wanted([3, 1]) == [1, 3]
    assert ModelConfig("m", "/x", num_versions=2).wanted([1, 5, 3]) == [3, 5]

    with pytest.raises(UsageError, match="not a valid TF Serving model config"):
        parse_model_server_config("model_config_list { config { nme: 'x' } }")
    (tmp_path / "bad.config").write_text("model_config_list { config { name: 'x' } }")
    with pytest.raises(UsageError, match="needs both name and base_path"):
        load_model_config_file(tmp_path / "bad.config")


def test_server_from_models_config_routes_versions_and_labels(
    tmp_path, shared_version_dir, half_plus_two_tflite, monkeypatch
):
    root = tmp_path / "models"
    shutil.copytree(shared_version_dir.parent, root / "flowers")
    shutil.copytree(root / "flowers" / "1", root / "flowers" / "2")
    shutil.copytree(root / "flowers" / "1", root / "flowers" / "3")  # not in the specific policy: not served
    (root / "flowers" / ".4.partial-abc").mkdir()  # an unfinished publish: ignored
    for v in (1, 2):
        (root / "half_plus_two" / str(v)).mkdir(parents=True)
        (root / "half_plus_two" / str(v) / "model.tflite").write_bytes(half_plus_two_tflite)
    (root / "models.config").write_text(MODELS_CONFIG)
    monkeypatch.chdir(root)  # the config's relative base paths are taken from the working directory
    cfg = ServerConfig(
        model_config_file=str(root / "models.config"),
        port=0,
        rest_api_port=0,
        threads=2,
        poll_seconds=0,
        format="int8",
        allow_version_labels_for_unavailable_models=True,  # labels in the first config (TF Serving's rule)
    )
    with EdgeServer(cfg) as srv:
        assert srv.describe() == {
            "flowers": {"1": "tflite-int8", "2": "tflite-int8"},
            "half_plus_two": {"1": "tflite-generic", "2": "tflite-generic"},
        }
        with grpc.insecure_channel(srv.grpc_target) as ch:
            predict = P.unary_unary(ch, P.PREDICT)
            for spec, version in (
                (P.model_spec("flowers"), 2),
                (P.model_spec("flowers", version_label="stable"), 1),
                (P.model_spec("flowers", version_label="canary"), 2),
                (P.model_spec("flowers", 1), 1),
            ):
                req = P.PredictRequest(model_spec=spec)
                req.inputs["image"].CopyFrom(P.to_tensor_proto(np.zeros((1, 64, 64, 3), np.float32)))
                assert predict(req, timeout=10).model_spec.version.value == version
        status = requests.get(srv.rest_url + "/v1/models/flowers", timeout=5).json()
        assert [s["version"] for s in status["model_version_status"]] == ["2", "1"]  # newest first, as TF Serving
        r = requests.post(srv.rest_url + "/v1/models/flowers/versions/3:predict", data=b'{"instances": [1]}', timeout=5)
        assert (r.status_code, r.json()) == (404, {"error": "Servable not found for request: Specific(flowers, 3)"})


# ----------------------------------------------------------------------------------------- start-up errors


def test_start_up_errors_are_clear(tmp_path, half_plus_two_tflite):
    with pytest.raises(ModelFormatError, match="is not a folder"):
        EdgeServer(_cfg(tmp_path / "missing")).start()
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelFormatError, match=r"no version could be loaded .*found: none"):
        EdgeServer(_cfg(tmp_path / "empty")).start()
    (tmp_path / "broken" / "1").mkdir(parents=True)
    (tmp_path / "broken" / "1" / "model.tflite").write_bytes(b"not a flatbuffer at all")
    with pytest.raises(ModelFormatError, match="not a loadable TFLite model"):
        EdgeServer(_cfg(tmp_path / "broken")).start()
    with pytest.raises(UsageError, match="--format must be one of"):
        ServerConfig(model_base_path=str(tmp_path), format="int4")
    with pytest.raises(UsageError, match="nothing to serve"):
        EdgeServer(ServerConfig(port=0, rest_api_port=0)).start()


def test_odd_version_folders_are_skipped_not_fatal(tmp_path, half_plus_two_tflite):
    # A folder named '²' once aborted the poll of every model (str.isdigit() accepts it, int() does not).
    base = tmp_path / "hpt"
    for name in ("1", "007"):  # "007" is version 7, loaded from its own folder (TF Serving reads leading zeros)
        (base / name).mkdir(parents=True)
        (base / name / "model.tflite").write_bytes(half_plus_two_tflite)
    for odd in ("²", "٣", "-1", ".tmp-9", str(2**63)):
        (base / odd).mkdir()
        (base / odd / "model.tflite").write_bytes(half_plus_two_tflite)
    (base / "9").write_text("a file, not a version folder")
    with EdgeServer(_cfg(base)) as srv:
        assert srv.describe() == {"flowers": {"7": "tflite-generic"}}
        assert srv.manager is not None  # made by start()
        srv.manager.poll_once()  # the periodic poll goes through the same scan: still fine, nothing reloaded
        assert srv.describe() == {"flowers": {"7": "tflite-generic"}}
    shutil.rmtree(base / "1")
    shutil.rmtree(base / "007")
    with pytest.raises(ModelFormatError, match=r"found: none; .*ignored folders .*'²'"):
        EdgeServer(_cfg(base)).start()


def test_port_in_use_is_a_usage_error(server, models_root):
    rest_port = int(server.rest_url.rsplit(":", 1)[1])
    with pytest.raises(UsageError, match="cannot bind the REST port"):
        EdgeServer(
            ServerConfig(
                model_name="flowers",
                model_base_path=str(models_root / "flowers"),
                port=0,
                rest_api_port=rest_port,
                poll_seconds=0,
            )
        ).start()
    assert requests.get(server.rest_url + "/healthz", timeout=5).status_code == 200  # the first one is unharmed


def test_savedmodel_format_serves_the_same_model(models_root, photos):
    # --format savedmodel runs the SavedModel with TensorFlow (the tf extra); the answers match LiteRT fp32.
    images = preprocess_batch(photos, (64, 64))
    body = P.encode_predict_request({"image": images})
    answers = {}
    for fmt in ("savedmodel", "fp32"):
        with EdgeServer(_cfg(models_root / "flowers", format=fmt)) as srv:
            assert srv.describe() == {"flowers": {"1": "savedmodel" if fmt == "savedmodel" else "tflite-fp32"}}
            r = requests.post(srv.rest_url + "/v1/models/flowers:predict", data=body, timeout=60)
            answers[fmt] = P.decode_predict_response(r.content)
    np.testing.assert_array_equal(answers["savedmodel"]["classes"], answers["fp32"]["classes"])
    np.testing.assert_allclose(answers["savedmodel"]["probabilities"], answers["fp32"]["probabilities"], atol=1e-4)


def test_rest_connections_get_nodelay(server):
    # Without TCP_NODELAY every small REST answer waits ~40 ms for the client's delayed ACK. asyncio sets it only
    # on accepted sockets whose proto is IPPROTO_TCP (inherited from the listener, which _bind makes so); uvloop
    # sets it on every TCP connection. Checked on the server's side of a live kept-alive connection.
    import socket
    import time

    host, port = server.rest_url.split("//")[1].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as client:
        client.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert client.recv(65536).startswith(b"HTTP/1.1 200")
        deadline = time.monotonic() + 5
        while not (connections := list(server._uvicorn.server_state.connections)) and time.monotonic() < deadline:
            time.sleep(0.01)
        ours = [c for c in connections if c.transport.get_extra_info("peername") == client.getsockname()]
        assert len(ours) == 1, connections
        accepted = ours[0].transport.get_extra_info("socket")
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
