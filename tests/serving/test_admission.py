"""Admission by time (``deepclf.serving.overload``): a call waits in a queue bounded by count and bytes, and is
refused (UNAVAILABLE / 503 with Retry-After, gRPC retry pushback) only when that queue is full or when it could not
start before its deadline; the refusals are counted by reason and logged in the periodic "overloaded" line.

The ``Admission`` tests drive a clock of their own (no sleeps, no timing); the REST refusal goes through the real
app, before routing (the core needs no models); the gRPC one through a real server over loopback.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import grpc
import numpy as np
import pytest
from starlette.testclient import TestClient

from deepclf import protocol as P
from deepclf.serving import overload
from deepclf.serving.core import ServingCore
from deepclf.serving.metrics import ServerMetrics
from deepclf.serving.overload import DEADLINE, QUEUE_FULL, Admission, Overloaded
from deepclf.serving.rest import create_app


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_calls_queue_up_to_the_count_bound_then_queue_full() -> None:
    waits: list[float] = []
    clock = Clock()
    adm = Admission(max_in_flight=3, max_queued_bytes=1 << 20, on_wait=waits.append, clock=clock)
    tickets = [adm.admit(10, deadline=None) for _ in range(3)]
    assert (adm.in_flight, adm.queued, adm.queued_bytes) == (3, 3, 30)
    with pytest.raises(Overloaded) as refused:
        adm.admit(10, deadline=None)
    assert refused.value.reason == QUEUE_FULL and "--max_in_flight=3" in refused.value.message
    assert refused.value.http_status == 503 and refused.value.retry_after_header == "1"
    clock.now += 0.25
    tickets[0].begin()
    tickets[0].begin()  # idempotent: one wait, one place fewer in the queue
    assert waits == [0.25] and adm.queued == 2
    tickets[0].finish()
    tickets[0].finish()
    assert (adm.in_flight, adm.queued_bytes) == (2, 20)
    adm.admit(10, deadline=None)  # room again
    for t in tickets[1:]:
        t.finish()  # never started (failed early): leaves the queue too
    assert (adm.in_flight, adm.queued) == (1, 1)
    assert adm.refused == {QUEUE_FULL: 1, DEADLINE: 0}


def test_the_byte_bound_refuses_only_when_something_is_queued() -> None:
    adm = Admission(max_in_flight=100, max_queued_bytes=1000, clock=Clock())
    big = adm.admit(5000, deadline=None)  # alone: admitted whatever its size (never starved)
    with pytest.raises(Overloaded, match="--max_queued_bytes=1000") as refused:
        adm.admit(1, deadline=None)
    assert refused.value.reason == QUEUE_FULL
    big.finish()
    adm.admit(600, deadline=None)
    adm.admit(400, deadline=None)
    with pytest.raises(Overloaded):
        adm.admit(1, deadline=None)


def test_a_call_that_could_not_start_before_its_deadline_is_refused() -> None:
    clock = Clock()
    adm = Admission(max_in_flight=100, max_queued_bytes=1 << 20, clock=clock)
    # Teach the drain time: one call at a time taking 0.1 s each (the EWMA converges towards it).
    for _ in range(200):
        t = adm.admit(0, deadline=None)
        t.begin()
        clock.now += 0.1
        t.finish()
    assert adm.drain_s == pytest.approx(0.1, rel=1e-3)
    queued = [adm.admit(0, deadline=None) for _ in range(10)]  # ~1 s of work ahead
    assert adm.estimated_wait() == pytest.approx(1.0, rel=1e-2)
    adm.admit(0, deadline=clock.now + 1.5)  # can start in time: admitted
    with pytest.raises(Overloaded) as refused:
        adm.admit(0, deadline=clock.now + 0.5)
    err = refused.value
    assert err.reason == DEADLINE and "past its deadline" in err.message
    assert err.retry_after == pytest.approx(1.1, rel=1e-2)  # when the queue ahead of it will have drained
    assert err.retry_after_header == "2" and err.pushback_ms == str(int(err.wait_s * 1000))
    for t in queued:
        t.finish()
    assert adm.refused[DEADLINE] == 1


def test_the_drain_time_is_the_interval_between_completions_on_a_busy_server() -> None:
    # Two workers, each call 0.2 s: completions every 0.1 s once both are busy.
    clock = Clock()
    adm = Admission(max_in_flight=100, max_queued_bytes=1 << 20, clock=clock)
    running = [adm.admit(0, None), adm.admit(0, None)]
    for t in running:
        t.begin()
    clock.now += 0.1  # staggered: the second worker is half a call behind
    for _ in range(300):
        nxt = adm.admit(0, None)
        clock.now += 0.1
        done = running.pop(0)
        done.finish()
        nxt.begin()
        running.append(nxt)
    assert adm.drain_s == pytest.approx(0.1, rel=1e-2)


def test_rest_refusals_are_503_with_retry_after_counted_by_reason_and_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(overload, "SHED_LOG_PERIOD", 0.0)  # log at every refusal, not every 10 s
    adm = Admission(max_in_flight=1)
    adm.admit(0, None)  # the one place, taken
    # The refusal happens before routing: the core needs no models, only its admission.
    core = ServingCore(None, None, admission=adm)  # type: ignore[arg-type]
    metrics = ServerMetrics()
    metrics.track_admission(adm)
    app = create_app(core, metrics, ready=lambda: True, max_body_bytes=1024, access_log=False)
    with caplog.at_level(logging.WARNING, logger="deepclf.serving"), TestClient(app) as client:
        r = client.post("/v1/models/flowers:predict", content=b'{"instances": [1.0]}')
        health = client.get("/healthz")
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert "queue is full" in r.json()["error"] and "--max_in_flight=1" in r.json()["error"]
    assert health.status_code == 200  # never through admission
    assert adm.refused[QUEUE_FULL] == 1
    text = metrics.exposition().decode()
    assert 'deepclf_serving_refused_requests_total{API="rest",reason="queue_full"} 1.0' in text
    assert "deepclf_serving_in_flight_requests 1.0" in text and "deepclf_serving_queued_requests 1.0" in text
    assert 'status="UNAVAILABLE"' in text
    assert any(m.startswith("overloaded: 1 requests refused") for m in caplog.messages), caplog.messages


def test_grpc_refusals_carry_retry_pushback(models_root) -> None:
    """A real server whose queue is held full: Predict is UNAVAILABLE with ``grpc-retry-pushback-ms`` trailing
    metadata and says why; status calls still answer."""
    from deepclf.serving import EdgeServer, ServerConfig

    cfg = ServerConfig(
        model_name="flowers",
        model_base_path=models_root / "flowers",
        port=0,
        rest_api_port=0,
        max_in_flight=1,
        access_log=False,
    )
    with EdgeServer(cfg) as srv, grpc.insecure_channel(f"127.0.0.1:{srv.grpc_port}") as channel:
        assert srv.core is not None and srv.core.admission is not None
        held = srv.core.admission.admit(0, None)
        request = P.PredictRequest(model_spec=P.model_spec("flowers"))
        request.inputs["image"].CopyFrom(P.to_tensor_proto(np.zeros((1, 64, 64, 3), np.float32)))
        predict = channel.unary_unary(
            P.PREDICT.path,
            request_serializer=P.PredictRequest.SerializeToString,
            response_deserializer=P.PredictResponse.FromString,
        )
        with pytest.raises(grpc.RpcError) as refused:
            predict(request, timeout=10)
        err: Any = refused.value  # a grpc.Call too
        assert err.code() == grpc.StatusCode.UNAVAILABLE and "queue is full" in err.details()
        pushback = dict(err.trailing_metadata())["grpc-retry-pushback-ms"]
        assert int(pushback) >= 100
        held.finish()
        t0 = time.perf_counter()
        predict(request, timeout=10)  # admitted again once the place is free
        assert time.perf_counter() - t0 < 10
