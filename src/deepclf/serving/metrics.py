"""Prometheus metrics and JSON access logs of one edge server.

Each server gets its own ``CollectorRegistry`` (never the global one), so several servers can run in one process
(tests, benchmarks) without clashing or mixing their counts. Exposed at ``/monitoring/prometheus/metrics``::

    deepclf_serving_request_count_total{model_name="flowers",version="1",format="tflite-fp32",API="rest",
                                        method="predict",status="OK"} 42
    deepclf_serving_request_latency_seconds_bucket{...,le="0.005"} 40
    deepclf_serving_batch_size_bucket{le="8"} 3             # with --enable_batching
    deepclf_serving_model_versions_available{model_name="flowers"} 1

TF Serving's own metrics (``:tensorflow:serving:request_count``, ``request_latency``, ``runtime_latency``, ...)
are on the same page, named, labelled and written as ``tensorflow_model_server`` writes them
(``deepclf.serving.tfmetrics``), so dashboards and alerts built on TF Serving keep working::

    :tensorflow:serving:request_count{model_name="flowers",status="OK"} 42

``deepclf.bench.prom`` reads the ``request_count`` and ``request_latency`` families of these (and TF Serving's).

Label values are bounded whatever the requests say: every distinct label value is a time series kept for the
life of the process (and on every scrape), so 200 requests naming random models must not make 200 series. A
model gets its own ``model_name`` only when it exists, a version its own ``version`` only when the server knows
it, a method its own ``method`` only when it is one of the API's (``METHODS``); everything else is counted under
``UNKNOWN`` (``model_name="__unknown__",version="",format=""``)::

    metrics = ServerMetrics(known_models=manager.known_versions)   # {"flowers": {1, 2}}: exact labels
    metrics = ServerMetrics()   # no model list: a model (version) earns a label once a call for it succeeds
                                # (or resolved a loaded version), at most MAX_MODEL_LABELS (MAX_VERSION_LABELS each)

The access log is not a metric, so it keeps what the request said (an unknown model's name is what an operator
wants to see there), but every string field is cut to ``LOG_FIELD_MAX`` characters: a 1 MB URL or model name
must not become a 1 MB log line.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from deepclf.serving.tfmetrics import TFServingMetrics

access_log = logging.getLogger("deepclf.serving.access")

LABELS = ("model_name", "version", "format", "API", "method", "status")
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
CONTENT_TYPE = CONTENT_TYPE_LATEST

#: The one label value everything unknown is counted under (model, version and method alike).
UNKNOWN = "__unknown__"
#: The ``method`` label values of the REST and gRPC APIs; any other method (a REST verb is whatever the URL says
#: after the colon) is counted as ``UNKNOWN``.
METHODS = frozenset({"predict", "classify", "regress", "multi_inference", "metadata", "status", "reload_config"})
#: The methods TF Serving counts over gRPC (prediction_service_impl.cc), and their ``API`` label.
TF_GRPC_APIS = {"predict": "Predict", "classify": "Classify", "regress": "Regress"}
#: The REST verbs TF Serving's handler dispatches (its ``API`` label is the verb; empty for GET requests).
TF_REST_VERBS = frozenset({"predict", "classify", "regress"})
#: Without a ``known_models`` callable: at most this many models, and versions per model, get labels of their own.
MAX_MODEL_LABELS = 64
MAX_VERSION_LABELS = 32
#: Longest string field in an access-log line (longer ones are cut and say by how much).
LOG_FIELD_MAX = 200

KnownModels = Callable[[], Mapping[str, Collection[int]]]


class ServerMetrics:
    """The counters and histograms of one server, in a registry of its own.

    ``known_models``: called once per counted call, returns the models the server has and their versions (a cheap,
    thread-safe snapshot such as ``ModelManager.known_versions``); without it, labels are earned by successful calls
    and capped (see the module docstring).
    """

    def __init__(self, known_models: KnownModels | None = None) -> None:
        self._known_models = known_models
        # Without known_models: the model and version labels already handed out (bounded by the caps).
        self._earned: dict[str, set[str]] = {}
        self._earned_lock = threading.Lock()
        self.registry = CollectorRegistry(auto_describe=True)
        #: TF Serving's metrics (``deepclf.serving.tfmetrics``), written on the same page before these.
        self.tf = TFServingMetrics()
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
        self.queue_wait = Histogram(
            "deepclf_serving_queue_wait_seconds",
            "Seconds an admitted inference request waited before its work started on a worker",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.refused = Counter(
            "deepclf_serving_refused_requests",
            "Inference requests refused before any work: queue full, or could not start before their deadline",
            ("API", "reason"),
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
        """Count one call; ``model``, ``version`` and ``method`` are bounded here (``bounded_labels``)."""
        named = bool(model)
        model, version, format, method = self.bounded_labels(
            model=model, version=version, format=format, method=method, status=status
        )
        labels = (model, version, format, api, method, status)
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)
        self.observe_tf(api=api, method=method, model=model if named else "", status=status, seconds=seconds)

    def observe_tf(self, *, api: str, method: str, model: str, status: str, seconds: float) -> None:
        """Count one call in TF Serving's metrics as ``tensorflow_model_server`` counts it: every REST request
        under ``/v1/`` (``request_count``; ``request_latency`` when it succeeded, ``API`` = the URL's verb, empty for
        GET), gRPC Predict/Classify/Regress only. ``model`` is already bounded ("" when the request named none)."""
        if api == "rest":
            tf_api, entrypoint = (method if method in TF_REST_VERBS else ""), "REST"
        elif method in TF_GRPC_APIS:
            tf_api, entrypoint = TF_GRPC_APIS[method], "GRPC"
        else:
            return  # gRPC metadata, status, MultiInference, reloads: TF Serving counts none of them
        self.tf.request_count.increment(model, status)
        if status == "OK":
            self.tf.request_latency.add(max(0, int(seconds * 1e6)), model, tf_api, entrypoint)

    def bounded_labels(
        self, *, model: str, version: str, format: str, method: str, status: str
    ) -> tuple[str, str, str, str]:
        """``(model, version, format, method)`` as labels: the call's own where they are known, ``UNKNOWN`` else.

        ``api`` and ``status`` are not bounded here: the transports set them from fixed sets (``rest``/``grpc``,
        the canonical code names), never from the request.
        """
        if method not in METHODS:
            method = UNKNOWN
        if self._known_models is not None:
            versions = self._known_models().get(model)
            if versions is None:
                return UNKNOWN, "", "", method
            if version and not _is_version_in(version, versions):
                version = UNKNOWN
            return model, version, format, method
        # No list of models: a call that succeeded or reached a loaded version (format is only filled from a
        # served version) proves its model and version exist, so only those may take a new label.
        proven = status == "OK" or bool(format)
        with self._earned_lock:
            earned = self._earned.get(model)
            if earned is None:
                if not proven or len(self._earned) >= MAX_MODEL_LABELS:
                    return UNKNOWN, "", "", method
                earned = self._earned[model] = set()
            if version and version not in earned:
                if proven and len(earned) < MAX_VERSION_LABELS:
                    earned.add(version)
                else:
                    version = UNKNOWN
        return model, version, format, method

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
        else:  # not a deepclf series (its labels would be unbounded), but TF Serving counts every /v1/ request
            model = self.bounded_labels(model=info.model, version="", format="", method="", status=code)[0]
            self.observe_tf(api=api, method="", model=model if info.model else "", status=code, seconds=seconds)
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
        )  # log_access cuts the request's strings (model, signature, http path) to LOG_FIELD_MAX

    def track_admission(self, admission: Any) -> None:
        """Export admission (``deepclf.serving.overload.Admission``), its gauges read at scrape time::

        deepclf_serving_in_flight_requests         inference calls admitted and not answered (queued + running)
        deepclf_serving_queued_requests            admitted calls whose work has not started
        deepclf_serving_queued_request_bytes       request bytes of the admitted calls
        deepclf_serving_max_in_flight_requests     --max_in_flight
        deepclf_serving_max_queued_request_bytes   --max_queued_bytes
        deepclf_serving_queue_wait_seconds         histogram: admitted -> work started on a worker
        deepclf_serving_refused_requests_total     {API, reason="queue_full"|"deadline"}
        """
        for name, doc, read in (
            ("in_flight_requests", "Inference requests admitted and not answered (queued + running)", "in_flight"),
            ("queued_requests", "Admitted inference requests whose work has not started", "queued"),
            ("queued_request_bytes", "Request bytes of the admitted inference requests", "queued_bytes"),
        ):
            gauge = Gauge(f"deepclf_serving_{name}", doc, registry=self.registry)
            gauge.set_function(lambda attr=read: getattr(admission, attr))  # type: ignore[misc]
        Gauge("deepclf_serving_max_in_flight_requests", "The --max_in_flight bound", registry=self.registry).set(
            admission.max_in_flight
        )
        Gauge("deepclf_serving_max_queued_request_bytes", "The --max_queued_bytes bound", registry=self.registry).set(
            admission.max_queued_bytes
        )

    def observe_refused(self, api: str, method: str, reason: str) -> None:
        """Count one inference call refused by admission (UNAVAILABLE before any work, no model resolved yet)."""
        self.refused.labels(api, reason).inc()
        self.observe(api=api, method=method, model="", version="", format="", status="UNAVAILABLE", seconds=0.0)

    def exposition(self) -> bytes:
        """TF Serving's metrics, then the registry, in Prometheus' text format."""
        return self.tf.exposition().encode() + generate_latest(self.registry)


def _is_version_in(version: str, versions: Collection[int]) -> bool:
    # ASCII digits of int64 length only: int() of a long digit string is slow (and refused past 4300 digits).
    return version.isascii() and version.isdigit() and len(version) <= 19 and int(version) in versions


def _cut(value: Any) -> Any:
    """A string field of the access log, at most ``LOG_FIELD_MAX`` characters (and how many were cut)."""
    if isinstance(value, str) and len(value) > LOG_FIELD_MAX:
        return f"{value[:LOG_FIELD_MAX]}...(+{len(value) - LOG_FIELD_MAX} chars)"
    return value


def log_access(enabled: bool, **fields: Any) -> None:
    """One JSON line per request on the ``deepclf.serving.access`` logger (INFO); strings cut to ``LOG_FIELD_MAX``."""
    if not enabled or not access_log.isEnabledFor(logging.INFO):
        return
    fields = {key: _cut(value) for key, value in fields.items()}
    fields.setdefault("ts", round(time.time(), 3))
    access_log.info(orjson.dumps(fields, default=str).decode())
