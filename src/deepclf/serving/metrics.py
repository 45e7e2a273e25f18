"""Prometheus metrics and JSON access logs of one edge server.

Each server gets its own ``CollectorRegistry`` (never the global one), so several servers can run in one process
(tests, benchmarks) without clashing or mixing their counts. Exposed at ``/monitoring/prometheus/metrics``::

    deepclf_serving_request_count_total{model_name="flowers",version="1",format="tflite-fp32",API="rest",
                                        method="predict",status="OK"} 42
    deepclf_serving_request_latency_seconds_bucket{...,le="0.005"} 40
    deepclf_serving_batch_size_bucket{le="8"} 3             # with --enable_batching
    deepclf_serving_model_versions_available{model_name="flowers"} 1

``deepclf.bench.prom`` reads the ``request_count`` and ``request_latency`` families of these (and TF Serving's).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

access_log = logging.getLogger("deepclf.serving.access")

LABELS = ("model_name", "version", "format", "API", "method", "status")
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class ServerMetrics:
    """The counters and histograms of one server, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "deepclf_serving_request_count",
            "Requests by model, version, format, API, method and final status",
            LABELS,
            registry=self.registry,
        )
        self.latency = Histogram(
            "deepclf_serving_request_latency_seconds",
            "Request latency from receipt to answer, in seconds",
            LABELS,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "deepclf_serving_batch_size",
            "Items per runner call when micro-batching is on",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.available = Gauge(
            "deepclf_serving_model_versions_available",
            "Versions of each model that are AVAILABLE",
            ("model_name",),
            registry=self.registry,
        )

    def observe(
        self, *, api: str, method: str, model: str, version: str, format: str, status: str, seconds: float
    ) -> None:
        labels = (model, version, format, api, method, status)
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)

    def record(
        self,
        *,
        api: str,
        method: str,
        info: Any,
        code: str,
        seconds: float,
        access_log: bool,
        counted: bool = True,
        **extra: Any,
    ) -> None:
        """Count one call (unless ``counted`` is false) and write its access-log line: the fields REST and gRPC share
        (``info``: the call's model, version, format and signature), then the transport's ``extra`` ones."""
        if counted:
            self.observe(
                api=api,
                method=method,
                model=info.model,
                version=info.version,
                format=info.format,
                status=code,
                seconds=seconds,
            )
        log_access(
            access_log,
            api=api,
            method=method,
            code=code,
            model=info.model,
            version=info.version,
            format=info.format,
            signature=info.signature,
            ms=round(seconds * 1e3, 3),
            **extra,
        )

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)


def log_access(enabled: bool, **fields: Any) -> None:
    """One JSON line per request on the ``deepclf.serving.access`` logger (INFO)."""
    if not enabled or not access_log.isEnabledFor(logging.INFO):
        return
    fields.setdefault("ts", round(time.time(), 3))
    access_log.info(orjson.dumps(fields, default=str).decode())
