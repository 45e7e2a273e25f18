"""A REST request refused by the in-flight gate (before its body is read): 503 with ``Retry-After``, counted by
the gate and in the metrics, and logged in the periodic "overloaded" line like gRPC refusals."""

from __future__ import annotations

import logging

import pytest
from starlette.testclient import TestClient

from deepclf.serving import overload
from deepclf.serving.core import ServingCore
from deepclf.serving.metrics import ServerMetrics
from deepclf.serving.rest import create_app


def test_rest_sheds_are_counted_and_logged(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(overload, "SHED_LOG_PERIOD", 0.0)  # log at every refusal, not every 10 s
    # The shed happens before routing: the core needs no models, only its gate (1 slot, taken here).
    core = ServingCore(None, None, max_in_flight=1)  # type: ignore[arg-type]
    assert core.gate is not None and core.gate.try_enter()
    metrics = ServerMetrics()
    app = create_app(core, metrics, ready=lambda: True, max_body_bytes=1024, access_log=False)
    with caplog.at_level(logging.WARNING, logger="deepclf.serving"), TestClient(app) as client:
        r = client.post("/v1/models/flowers:predict", content=b'{"instances": [1.0]}')
    assert r.status_code == 503 and r.headers["retry-after"] == "1" and "max_in_flight=1" in r.json()["error"]
    assert core.gate.shed == 1
    assert b'status="UNAVAILABLE"' in metrics.exposition()
    assert any(m.startswith("overloaded: 1 requests shed") for m in caplog.messages), caplog.messages
