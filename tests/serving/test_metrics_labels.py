"""Bounded metric labels: requests naming random models, versions and verbs (REST and gRPC, real server over
loopback) must not add label values to ``/monitoring/prometheus/metrics``; they are counted under one overflow
label (``__unknown__``). Access-log lines cut what the request sent (a 1 MB URL is not a 1 MB line).

Two ways the server can tell ``ServerMetrics`` which models exist are covered: no argument (labels earned by a
successful call, capped) and ``known_models=manager.known_versions`` (exact).
"""

from __future__ import annotations

import json
import logging
import random
import string
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from deepclf import protocol as P
from deepclf.serving import EdgeServer, ModelConfig, ServerConfig
from deepclf.serving.metrics import LOG_FIELD_MAX, MAX_MODEL_LABELS, UNKNOWN, ServerMetrics

HPT = "half_plus_two"
OTHER = "second_model"
REAL = {HPT, OTHER}
N_RANDOM = 200
COUNT = "deepclf_serving_request_count_total"


def _random_name(rng: random.Random) -> str:
    return "rnd" + "".join(rng.choices(string.ascii_lowercase + string.digits, k=12))


@pytest.fixture(scope="module")
def hpt_root(tmp_path_factory: pytest.TempPathFactory, half_plus_two_tflite: bytes) -> Path:
    root = tmp_path_factory.mktemp("labels")
    for name in REAL:
        (root / name / "1").mkdir(parents=True)
        (root / name / "1" / "model.tflite").write_bytes(half_plus_two_tflite)
    return root


@pytest.fixture(params=["default", "known_models"])
def label_server(request: pytest.FixtureRequest, hpt_root: Path) -> Iterator[EdgeServer]:
    """Two real models on loopback; ``known_models``: metrics told the manager's versions (what server.py should
    pass), ``default``: ``ServerMetrics()`` with no argument."""
    cfg = ServerConfig(
        model_configs=[ModelConfig(name, str(hpt_root / name)) for name in sorted(REAL)],
        host="127.0.0.1",
        port=0,
        rest_api_port=0,
        threads=2,
        poll_seconds=0,
    )
    srv = EdgeServer(cfg)
    if request.param == "known_models":
        # The manager is made by start(); the lambda reads it per request (start() makes it before any transport).
        srv.metrics = ServerMetrics(known_models=lambda: srv.manager.known_versions() if srv.manager else {})
    with srv:
        yield srv


def _counts(text: str) -> list[tuple[dict[str, str], float]]:
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == COUNT
    ]


def test_random_model_names_versions_and_verbs_do_not_add_labels(label_server: EdgeServer) -> None:
    srv = label_server
    rng = random.Random(7)
    sent: list[str] = []  # every random string a request carried
    body = b'{"instances": [1.0]}'
    with requests.Session() as http, grpc.insecure_channel(srv.grpc_target) as ch:
        # Real traffic first, so the real labels exist (and a random flood cannot push them out).
        for name in sorted(REAL):
            assert http.post(f"{srv.rest_url}/v1/models/{name}:predict", data=body, timeout=10).status_code == 200
        ok = P.PredictRequest(model_spec=P.model_spec(HPT))
        ok.inputs["x"].CopyFrom(P.to_tensor_proto(np.array([1.0], np.float32)))
        P.unary_unary(ch, P.PREDICT)(ok, timeout=10)

        predict = P.unary_unary(ch, P.PREDICT)
        metadata = P.unary_unary(ch, P.GET_MODEL_METADATA)
        status = P.unary_unary(ch, P.GET_MODEL_STATUS)
        for i in range(N_RANDOM):
            name = _random_name(rng)
            sent.append(name)
            kind = i % 8
            if kind == 0:
                r = http.get(f"{srv.rest_url}/v1/models/{name}", timeout=10)
            elif kind == 1:
                r = http.get(f"{srv.rest_url}/v1/models/{name}/metadata", timeout=10)
            elif kind == 2:
                r = http.post(f"{srv.rest_url}/v1/models/{name}:predict", data=body, timeout=10)
            elif kind == 3:  # a real model, a random verb (the REST method label came from the URL)
                verb = "zq" + "".join(rng.choices(string.ascii_lowercase, k=10))
                sent.append(verb)
                r = http.post(f"{srv.rest_url}/v1/models/{HPT}:{verb}", data=body, timeout=10)
            elif kind == 4:  # a real model, a version it does not have
                version = str(rng.randrange(10**6, 10**12))
                sent.append(version)
                r = http.get(f"{srv.rest_url}/v1/models/{HPT}/versions/{version}", timeout=10)
            else:
                r = None
                spec = P.model_spec(name)
                with pytest.raises(grpc.RpcError) as err:
                    if kind == 5:
                        meta_req = P.GetModelMetadataRequest(model_spec=spec)
                        meta_req.metadata_field.append("signature_def")
                        metadata(meta_req, timeout=10)
                    elif kind == 6:
                        status(P.GetModelStatusRequest(model_spec=spec), timeout=10)
                    else:
                        req = P.PredictRequest(model_spec=spec)
                        req.inputs["x"].CopyFrom(P.to_tensor_proto(np.array([1.0], np.float32)))
                        predict(req, timeout=10)
                assert err.value.code() == grpc.StatusCode.NOT_FOUND
            if r is not None:
                assert r.status_code in (400, 404), (r.status_code, r.text)

    page = requests.get(srv.metrics_url, timeout=10)
    text = page.text
    assert len(page.content) < 64 * 1024, len(page.content)
    leaked = [s for s in sent if s in text]
    assert not leaked, leaked[:5]
    counts = _counts(text)
    models = {labels["model_name"] for labels, _ in counts}
    assert models <= REAL | {UNKNOWN} and len(models) <= len(REAL) + 1, models
    methods = {labels["method"] for labels, _ in counts}
    assert methods <= {"predict", "metadata", "status", UNKNOWN}, methods
    versions = {labels["version"] for labels, _ in counts}
    assert versions <= {"1", "", UNKNOWN}, versions
    # Every request naming a random model was counted under the overflow model; the random verbs and versions of a
    # real model under that model (the URL names it, as TF Serving labels them), the random verbs under the
    # overflow method.
    real_model_cases = 2 * (N_RANDOM // 8)
    assert sum(v for labels, v in counts if labels["model_name"] == UNKNOWN) == N_RANDOM - real_model_cases
    assert sum(v for labels, v in counts if labels["model_name"] == HPT and labels["status"] != "OK") == (
        real_model_cases
    )
    assert sum(v for labels, v in counts if labels["method"] == UNKNOWN) == N_RANDOM // 8
    # The real traffic kept its own labels.
    assert sum(v for labels, v in counts if labels["model_name"] == HPT and labels["status"] == "OK") == 2
    assert any(labels["model_name"] == OTHER and labels["status"] == "OK" for labels, _ in counts)


def test_access_log_cuts_long_fields(label_server: EdgeServer, caplog: pytest.LogCaptureFixture) -> None:
    srv = label_server
    caplog.set_level(logging.INFO, logger="deepclf.serving.access")
    long_name = "n" * 20_000
    r = requests.get(f"{srv.rest_url}/v1/models/{long_name}", timeout=10)
    assert r.status_code == 404
    with grpc.insecure_channel(srv.grpc_target) as ch, pytest.raises(grpc.RpcError):
        P.unary_unary(ch, P.GET_MODEL_METADATA)(
            P.GetModelMetadataRequest(model_spec=P.model_spec("g" * 100_000), metadata_field=["signature_def"]),
            timeout=10,
        )
    lines = [r.getMessage() for r in caplog.records if r.name == "deepclf.serving.access"]
    assert len(lines) >= 2
    for line in lines:
        assert len(line) < 4 * LOG_FIELD_MAX + 1000, len(line)
    records = [json.loads(line) for line in lines]
    rest = next(rec for rec in records if rec.get("api") == "rest")
    assert rest["http"].startswith("GET /v1/models/nnn") and "chars)" in rest["http"]
    grpc_rec = next(rec for rec in records if rec.get("api") == "grpc")
    assert grpc_rec["model"].startswith("ggg") and grpc_rec["code"] == "NOT_FOUND"


def test_labels_without_a_model_list_are_earned_and_capped() -> None:
    metrics = ServerMetrics()

    def count(model: str, version: str = "1", status: str = "OK", fmt: str = "tflite-fp32") -> None:
        metrics.observe(
            api="rest", method="predict", model=model, version=version, format=fmt, status=status, seconds=0.001
        )

    count("never-succeeded", status="NOT_FOUND", fmt="")  # unproven: overflow
    for i in range(MAX_MODEL_LABELS + 10):
        count(f"m{i}")
    count("m0", version="999", status="NOT_FOUND", fmt="")  # a known model, an unproven version
    models = {labels["model_name"] for labels, _ in _counts(metrics.exposition().decode())}
    assert "never-succeeded" not in models and UNKNOWN in models
    assert len(models) == MAX_MODEL_LABELS + 1  # the cap, plus the overflow label
    versions = {labels["version"] for labels, _ in _counts(metrics.exposition().decode())}
    assert versions == {"1", "", UNKNOWN}


def test_labels_with_a_model_list_follow_it() -> None:
    known: dict[str, frozenset[int]] = {"a": frozenset({1, 2})}
    metrics = ServerMetrics(known_models=lambda: known)
    labels = metrics.bounded_labels
    assert labels(model="a", version="2", format="f", method="predict", status="OK") == ("a", "2", "f", "predict")
    assert labels(model="a", version="3", format="f", method="predict", status="OK") == ("a", UNKNOWN, "f", "predict")
    assert labels(model="a", version="", format="", method="zzz", status="OK") == ("a", "", "", UNKNOWN)
    assert labels(model="a", version="9" * 5000, format="", method="status", status="OK")[1] == UNKNOWN
    assert labels(model="b", version="1", format="f", method="status", status="OK") == (UNKNOWN, "", "", "status")
    known = {"b": frozenset({1})}  # a reloaded config: b now exists, a does not
    assert labels(model="b", version="1", format="f", method="status", status="OK")[0] == "b"
    assert labels(model="a", version="1", format="f", method="status", status="OK")[0] == UNKNOWN
