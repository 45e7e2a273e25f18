"""TF Serving's own metrics, named, labelled, bucketed and written out as ``tensorflow_model_server`` writes them.

TF Serving registers its metrics in TensorFlow's monitoring registry under slash names
(``/tensorflow/serving/request_count``) and its Prometheus exporter (``util/prometheus_exporter.cc``) writes them
with every character outside ``[a-zA-Z0-9_]`` turned into ``:``; dashboards and alerts built on TF Serving read
those names::

    # TYPE :tensorflow:serving:request_count counter
    :tensorflow:serving:request_count{model_name="flowers",status="OK"} 42
    # TYPE :tensorflow:serving:request_latency histogram
    :tensorflow:serving:request_latency_bucket{model_name="flowers",API="predict",entrypoint="REST",le="10"} 0
    ...
    :tensorflow:serving:request_latency_bucket{model_name="flowers",API="predict",entrypoint="REST",le="+Inf"} 42
    :tensorflow:serving:request_latency_sum{model_name="flowers",API="predict",entrypoint="REST"} 123456
    :tensorflow:serving:request_latency_count{model_name="flowers",API="predict",entrypoint="REST"} 42

The exporter's rules, kept here: only ``# TYPE`` lines (no ``# HELP``); counters keep their name (no ``_total``
added) and print integers; a histogram prints every bucket of its TensorFlow ``Buckets`` (``Exponential(scale,
growth, n)``: the ``n`` limits ``scale * growth**i``, then one last bucket up to ``DBL_MAX`` printed as ``+Inf``),
cumulative, with limits and ``_sum`` in ``absl::StrCat``'s six significant digits; a value equal to a limit
counts in the next bucket (TensorFlow's histogram is ``value < limit``); metrics come in the order of their slash
names, label sets in sorted order, and a metric with no cell yet still has its ``# TYPE`` line. Latencies are in
microseconds.

What is exported and when (each as the TF Serving source file named does it):

=========================================================  =====================================================
``request_count`` {model_name, status}                     every REST request under ``/v1/`` (http_server.cc),
                                                           and gRPC Predict/Classify/Regress
                                                           (prediction_service_impl.cc); status = the code name
``request_latency`` {model_name, API, entrypoint}          successful ones only: REST ``API`` = the URL's verb
                                                           (``predict``...; empty for GET), ``entrypoint="REST"``;
                                                           gRPC ``API="Predict"|"Classify"|"Regress"``, ``"GRPC"``
``runtime_latency`` {model_name, API, runtime}             the model run of a successful Predict/Classify/Regress
                                                           (predict_util.cc, classifier.cc, regressor.cc);
                                                           ``runtime="TF1"``, TF Serving's value for its Session
                                                           path, which is also the path of its TFLite models
``request_example_counts`` {model} (histogram)             tf.Examples per MultiInference (multi_inference.cc;
``request_example_count_total`` {model}                    TF Serving counts them for MultiInference only)
``model_warmup_latency`` {model_path, status}              a version's warmup, when it has a warmup file
``model_warmup_records_read`` {model_path, status}         (saved_model_warmup_util.cc); status ``OK`` or
                                                           ``<CODE>: <message>`` (absl's ``Status::ToString``)
``:tensorflow:cc:saved_model:load_attempt_count``          every load attempt of a version folder
{model_path, status} and ``load_latency`` {model_path}     (``success``/``fail``; latency of the successful ones),
                                                           as TensorFlow's SavedModel loader counts them
=========================================================  =====================================================

Deliberate difference: TF Serving labels a request with whatever model name it named; here (as for the deepclf
metrics) an unknown model is labelled ``__unknown__``, so requests naming random models cannot grow the series
without bound (``ServerMetrics.bounded_labels``).
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

#: ``DBL_MAX``: TensorFlow's ``Buckets`` close the last bucket with it (printed as ``+Inf``).
DBL_MAX = 1.7976931348623157e308


def exponential_buckets(scale: float, growth: float, count: int) -> tuple[float, ...]:
    """TensorFlow's ``monitoring::Buckets::Exponential(scale, growth, count)``: ``count`` limits, each the last
    times ``growth`` (computed by repeated multiplication, as there), then ``DBL_MAX``."""
    limits, bound = [], float(scale)
    for _ in range(count):
        limits.append(bound)
        bound *= growth
    return (*limits, DBL_MAX)


#: ``Exponential(10, 1.8, 33)``: request, runtime and warmup latency in microseconds (util.cc: "~20 minutes").
LATENCY_BUCKETS = exponential_buckets(10, 1.8, 33)
#: ``Exponential(1, 2, 15)``: tf.Examples per request (util.cc).
EXAMPLE_COUNT_BUCKETS = exponential_buckets(1, 2, 15)


def prometheus_name(name: str) -> str:
    """A TensorFlow metric name as TF Serving's exporter writes it: ``[^a-zA-Z0-9_]`` -> ``:``, and a leading
    ``_`` when it would start with a digit (``/tensorflow/serving/request_count`` ->
    ``:tensorflow:serving:request_count``)."""
    out = "".join(c if (c.isascii() and (c.isalnum() or c == "_")) else ":" for c in name)
    return f"_{out}" if out[:1].isdigit() else out


def sanitize_label_name(name: str) -> str:
    """A label name as the exporter writes it: ``[^a-zA-Z0-9]`` -> ``_``, a leading ``_`` before a digit."""
    out = "".join(c if (c.isascii() and c.isalnum()) else "_" for c in name)
    return f"_{out}" if out[:1].isdigit() else out


def sanitize_label_value(value: str) -> str:
    """A label value as the exporter writes it: ``\\`` and ``"`` escaped. A newline is escaped too (``\\n``), which
    the exporter does not do: an unescaped one would break the page for every scraper."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def format_double(value: float) -> str:
    """``absl::StrCat(double)``: six significant digits, ``%g`` style (``32.4``, ``188.957``, ``1.23457e+08``)."""
    return format(value, ".6g")


@dataclass
class _Histogram:
    limits: tuple[float, ...]
    counts: list[int] = field(init=False)
    total: float = 0.0

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.limits)

    def add(self, value: float) -> None:
        # TensorFlow's Histogram::Add: the first bucket whose limit is greater than the value (upper_bound).
        index = min(bisect.bisect_right(self.limits, value), len(self.limits) - 1)
        self.counts[index] += 1
        self.total += value


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, labels: Sequence[str]) -> None:
        self.name = name  # TensorFlow's slash name
        self.labels = tuple(labels)
        self._lock = threading.Lock()

    def _label_text(self, values: tuple[str, ...]) -> list[str]:
        return [
            f'{sanitize_label_name(k)}="{sanitize_label_value(v)}"' for k, v in zip(self.labels, values, strict=True)
        ]

    def lines(self) -> list[str]:
        raise NotImplementedError


class Counter(_Metric):
    """``monitoring::Counter<N>``: an integer per label set."""

    kind = "counter"

    def __init__(self, name: str, labels: Sequence[str]) -> None:
        super().__init__(name, labels)
        self._cells: dict[tuple[str, ...], int] = {}

    def increment(self, *values: str, by: int = 1) -> None:
        with self._lock:
            self._cells[values] = self._cells.get(values, 0) + int(by)

    def value(self, *values: str) -> int:
        with self._lock:
            return self._cells.get(values, 0)

    def lines(self) -> list[str]:
        prom = prometheus_name(self.name)
        out = [f"# TYPE {prom} {self.kind}"]
        with self._lock:
            cells = sorted(self._cells.items())
        for values, count in cells:
            out.append(f"{prom}{{{','.join(self._label_text(values))}}} {count}")
        return out


class Sampler(_Metric):
    """``monitoring::Sampler<N>``: a histogram per label set, with TensorFlow's bucket rule."""

    kind = "histogram"

    def __init__(self, name: str, labels: Sequence[str], limits: tuple[float, ...]) -> None:
        super().__init__(name, labels)
        self.limits = limits
        self._cells: dict[tuple[str, ...], _Histogram] = {}

    def add(self, value: float, *values: str) -> None:
        with self._lock:
            cell = self._cells.get(values)
            if cell is None:
                cell = self._cells[values] = _Histogram(self.limits)
            cell.add(value)

    def count(self, *values: str) -> int:
        with self._lock:
            cell = self._cells.get(values)
            return sum(cell.counts) if cell is not None else 0

    def lines(self) -> list[str]:
        prom = prometheus_name(self.name)
        out = [f"# TYPE {prom} {self.kind}"]
        with self._lock:
            cells = [(values, list(h.counts), h.total) for values, h in sorted(self._cells.items())]
        last = len(self.limits) - 1
        for values, counts, total in cells:
            labels = self._label_text(values)
            prefix = f"{prom}_bucket{{{','.join(labels)}{',' if labels else ''}"
            cumulative = 0
            for i, n in enumerate(counts):
                cumulative += n
                limit = format_double(self.limits[i]) if i < last else "+Inf"
                out.append(f'{prefix}le="{limit}"}} {cumulative}')
            out.append(f"{prom}_sum{{{','.join(labels)}}} {format_double(total)}")
            out.append(f"{prom}_count{{{','.join(labels)}}} {cumulative}")
        return out


class TFServingMetrics:
    """The TF Serving metrics one server exports (see the module docstring); ``exposition()`` writes them."""

    def __init__(self) -> None:
        self.request_count = Counter("/tensorflow/serving/request_count", ("model_name", "status"))
        self.request_latency = Sampler(
            "/tensorflow/serving/request_latency", ("model_name", "API", "entrypoint"), LATENCY_BUCKETS
        )
        self.runtime_latency = Sampler(
            "/tensorflow/serving/runtime_latency", ("model_name", "API", "runtime"), LATENCY_BUCKETS
        )
        self.example_counts = Sampler("/tensorflow/serving/request_example_counts", ("model",), EXAMPLE_COUNT_BUCKETS)
        self.example_count_total = Counter("/tensorflow/serving/request_example_count_total", ("model",))
        self.warmup_latency = Sampler(
            "/tensorflow/serving/model_warmup_latency", ("model_path", "status"), LATENCY_BUCKETS
        )
        self.warmup_records_read = Counter("/tensorflow/serving/model_warmup_records_read", ("model_path", "status"))
        self.load_attempt_count = Counter("/tensorflow/cc/saved_model/load_attempt_count", ("model_path", "status"))
        self.load_latency = Counter("/tensorflow/cc/saved_model/load_latency", ("model_path",))
        self._metrics: list[_Metric] = sorted(
            (
                self.request_count,
                self.request_latency,
                self.runtime_latency,
                self.example_counts,
                self.example_count_total,
                self.warmup_latency,
                self.warmup_records_read,
                self.load_attempt_count,
                self.load_latency,
            ),
            key=lambda m: m.name,  # the registry's map is ordered by name
        )

    def record_runtime(self, model: str, api: str, seconds: float) -> None:
        """A model run of ``api`` (``Predict``, ``Classify``, ``Regress``) that succeeded."""
        self.runtime_latency.add(_micros(seconds), model, api, "TF1")

    def record_examples(self, model: str, count: int) -> None:
        """The tf.Examples of one MultiInference."""
        self.example_counts.add(float(count), model)
        self.example_count_total.increment(model, by=count)

    def record_load(self, model_path: str, ok: bool, seconds: float) -> None:
        """One load attempt of a version folder."""
        self.load_attempt_count.increment(model_path, "success" if ok else "fail")
        if ok:
            self.load_latency.increment(model_path, by=_micros(seconds))

    def record_warmup(self, model_path: str, status: str, records: int, seconds: float) -> None:
        """One version's warmup (``status``: ``OK`` or ``<CODE>: <message>``)."""
        self.warmup_latency.add(_micros(seconds), model_path, status)
        self.warmup_records_read.increment(model_path, status, by=records)

    def exposition(self) -> str:
        """Every metric as TF Serving's exporter writes it (one line each, ending in a newline)."""
        lines: list[str] = []
        for metric in self._metrics:
            lines.extend(metric.lines())
        return "\n".join(lines) + "\n"


def _micros(seconds: float) -> int:
    """Whole microseconds (TF Serving's latencies are ``int64`` microseconds)."""
    return max(0, int(seconds * 1e6))
