"""TF Serving's metrics (``:tensorflow:serving:request_count`` and friends) as ``tensorflow_model_server`` exports
them with ``--monitoring_config_file`` (docs/tfserving-behaviour.md §5.10): names, labels, buckets, exposition.

The exporter's own cases (TF Serving's util/prometheus_exporter_test.cc: a counter, a histogram of
``Exponential(1, 2, 10)``, label and metric name sanitizing) are checked line for line on
``deepclf.serving.tfmetrics``; then a real ``deepclf serve`` (a child process, TensorFlow blocked) started with a
TF Serving command line is called over REST and gRPC and its page parsed: every count and label as TF Serving's
sources record them (http_server.cc, prediction_service_impl.cc, predict_util.cc, multi_inference.cc,
saved_model_warmup_util.cc).
"""

from __future__ import annotations

import re
from pathlib import Path

import grpc
import numpy as np
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from deepclf import protocol as P
from deepclf.bench.prom import parse
from deepclf.protocol.messages import ClassificationRequest, MultiInferenceRequest
from deepclf.protocol.rpc import CLASSIFY, MULTI_INFERENCE
from deepclf.serving.tfmetrics import (
    DBL_MAX,
    EXAMPLE_COUNT_BUCKETS,
    LATENCY_BUCKETS,
    Counter,
    Sampler,
    exponential_buckets,
)
from tests.serving.child_server import child_server

TF = ":tensorflow:serving:"

# -- the exporter, as prometheus_exporter_test.cc checks it ---------------------------------------------------------


def test_counter_lines_as_the_exporter_writes_them() -> None:
    c = Counter("/test/path/total", ("name",))
    c.increment("abc", by=2)
    assert c.lines() == ["# TYPE :test:path:total counter", ':test:path:total{name="abc"} 2']


def test_histogram_lines_as_the_exporter_writes_them() -> None:
    """Exponential(1, 2, 10) plus TensorFlow's last bucket; 2 counts under le="4" (TensorFlow's value < limit)."""
    h = Sampler("/test/path/histogram", ("status",), exponential_buckets(1, 2, 10))
    for v in (2, 20, 200):
        h.add(v, "good")
    counts = {"1": 0, "2": 0, "4": 1, "8": 1, "16": 1, "32": 2, "64": 2, "128": 2, "256": 3, "512": 3, "+Inf": 3}
    assert h.lines() == [
        "# TYPE :test:path:histogram histogram",
        *(f':test:path:histogram_bucket{{status="good",le="{le}"}} {n}' for le, n in counts.items()),
        ':test:path:histogram_sum{status="good"} 222',
        ':test:path:histogram_count{status="good"} 3',
    ]


@pytest.mark.parametrize(
    ("name", "label", "value", "line"),
    [
        ("/test/path/total", "name", '"abc\\"', ':test:path:total{name="\\"abc\\\\\\""} 2'),  # SanitizeLabelValue
        ("/test/path/total", "my-name+1", "abc", ':test:path:total{my_name_1="abc"} 2'),  # SanitizeLabelName
        ("0/path-total_count", "name", "abc", '_0:path:total_count{name="abc"} 2'),  # SanitizeMetricName
    ],
)
def test_names_and_values_are_sanitized_as_the_exporter_does(name: str, label: str, value: str, line: str) -> None:
    c = Counter(name, (label,))
    c.increment(value, by=2)
    assert c.lines()[1] == line


def test_tf_serving_buckets() -> None:
    """util.cc: latency Exponential(10, 1.8, 33) (+ the DBL_MAX bucket), example counts Exponential(1, 2, 15)."""
    assert len(LATENCY_BUCKETS) == 34 and LATENCY_BUCKETS[:4] == (10.0, 18.0, 32.4, 58.32)
    assert LATENCY_BUCKETS[-1] == DBL_MAX and LATENCY_BUCKETS[-2] == pytest.approx(10 * 1.8**32)
    assert (*(float(2**i) for i in range(15)), DBL_MAX) == EXAMPLE_COUNT_BUCKETS


# -- a real server ---------------------------------------------------------------------------------------------------


def _examples(photos: list[Path], n: int) -> ClassificationRequest:
    req = ClassificationRequest()
    req.model_spec.name = "flowers"
    req.model_spec.signature_name = "classify_image_bytes"
    for photo in photos[:n]:
        req.input.example_list.examples.add().features.feature["image/encoded"].bytes_list.value.append(
            photo.read_bytes()
        )
    return req


def _lines(text: str, prefix: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(prefix)]


def test_tf_serving_metrics_of_a_real_server(models_root: Path, tmp_path: Path, photos: list[Path]) -> None:
    monitoring = tmp_path / "monitoring.config"
    monitoring.write_text('prometheus_config { enable: true, path: "/monitoring/prometheus/metrics" }\n')
    config = tmp_path / "models.config"
    config.write_text(
        "model_config_list {\n"
        + "".join(
            f'  config {{ name: "{m}" base_path: "{models_root / m}" model_platform: "tensorflow" }}\n'
            for m in ("flowers", "half_plus_two")
        )
        + "}\n"
    )
    args = [
        "--port=0",
        "--rest_api_port=0",
        f"--model_config_file={config}",
        f"--monitoring_config_file={monitoring}",
        "--threads=1",
    ]
    with child_server(args, tmp_path / "serve.stderr") as (_proc, target, rest):
        hpt = f"{rest}/v1/models/half_plus_two"
        for _ in range(2):
            assert requests.post(f"{hpt}:predict", json={"instances": [1.0]}, timeout=30).status_code == 200
        assert requests.post(f"{rest}/v1/models/nosuch:predict", json={"instances": [1]}, timeout=30).status_code == 404
        assert requests.post(f"{hpt}:predict", json={"instances": "bad"}, timeout=30).status_code == 400
        assert requests.get(hpt, timeout=30).status_code == 200
        assert requests.get(f"{rest}/v1/models", timeout=30).status_code == 400  # no model name: model_name=""
        with grpc.insecure_channel(target) as ch:
            x = np.zeros((1, 64, 64, 3), np.float32)
            P.unary_unary(ch, P.PREDICT)(
                P.PredictRequest(model_spec=P.model_spec("flowers"), inputs={"image": P.to_tensor_proto(x)}), timeout=30
            )
            P.unary_unary(ch, CLASSIFY)(_examples(photos, 2), timeout=30)
            multi = MultiInferenceRequest()
            task = multi.tasks.add()
            task.model_spec.name, task.model_spec.signature_name = "flowers", "classify_image_bytes"
            task.method_name = "tensorflow/serving/classify"
            multi.input.CopyFrom(_examples(photos, 3).input)
            P.unary_unary(ch, MULTI_INFERENCE)(multi, timeout=30)
            meta = P.GetModelMetadataRequest(model_spec=P.model_spec("flowers"), metadata_field=["signature_def"])
            P.unary_unary(ch, P.GET_MODEL_METADATA)(meta, timeout=30)  # TF Serving counts no metadata call
        r = requests.get(f"{rest}/monitoring/prometheus/metrics", timeout=30)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    samples = parse(text)

    def value(name: str, **labels: str) -> float:
        return samples.get((TF + name, tuple(sorted(labels.items()))), 0.0)

    # request_count {model_name, status}: every REST request under /v1/, gRPC Predict/Classify/Regress.
    assert value("request_count", model_name="half_plus_two", status="OK") == 3  # 2 predicts + 1 status
    assert value("request_count", model_name="half_plus_two", status="INVALID_ARGUMENT") == 1
    assert value("request_count", model_name="__unknown__", status="NOT_FOUND") == 1  # bounded: see tfmetrics
    assert value("request_count", model_name="", status="INVALID_ARGUMENT") == 1
    assert value("request_count", model_name="flowers", status="OK") == 2  # gRPC Predict + Classify
    counted = sum(v for (n, _), v in samples.items() if n == TF + "request_count")
    assert counted == 8  # not MultiInference, not GetModelMetadata
    # request_latency {model_name, API, entrypoint}: successful requests only, microseconds.
    assert value("request_latency_count", model_name="half_plus_two", API="predict", entrypoint="REST") == 2
    assert value("request_latency_count", model_name="half_plus_two", API="", entrypoint="REST") == 1
    assert value("request_latency_count", model_name="flowers", API="Predict", entrypoint="GRPC") == 1
    assert value("request_latency_count", model_name="flowers", API="Classify", entrypoint="GRPC") == 1
    assert not [k for k in samples if k[0] == TF + "request_latency_count" and dict(k[1])["model_name"] == "nosuch"]
    # runtime_latency {model_name, API, runtime}: the model runs of successful Predict/Classify (not MultiInference).
    assert value("runtime_latency_count", model_name="half_plus_two", API="Predict", runtime="TF1") == 2
    assert value("runtime_latency_count", model_name="flowers", API="Predict", runtime="TF1") == 1
    assert value("runtime_latency_count", model_name="flowers", API="Classify", runtime="TF1") == 1
    # request_example_counts / request_example_count_total {model}: MultiInference only (3 examples).
    assert value("request_example_count_total", model="flowers") == 3
    assert value("request_example_counts_bucket", model="flowers", le="2") == 0  # 3 is not < 2
    assert value("request_example_counts_bucket", model="flowers", le="4") == 1
    assert value("request_example_counts_sum", model="flowers") == 3
    # Loads and warmup: the version folders as model_path; the converted flowers model has 4 warmup records.
    flowers_1 = str(models_root / "flowers" / "1")
    assert samples[
        (":tensorflow:cc:saved_model:load_attempt_count", (("model_path", flowers_1), ("status", "success")))
    ]
    assert value("model_warmup_records_read", model_path=flowers_1, status="OK") == 4
    assert value("model_warmup_latency_count", model_path=flowers_1, status="OK") == 1

    # The exposition itself: TYPE lines only for TF Serving's families, buckets as TF Serving prints them.
    assert f"# TYPE {TF}request_count counter" in text and f"# HELP {TF}request_count" not in text
    buckets = _lines(text, f'{TF}request_latency_bucket{{model_name="half_plus_two",API="predict",entrypoint="REST",')
    assert [re.search(r'le="([^"]+)"', b)[1] for b in buckets[:5]] == ["10", "18", "32.4", "58.32", "104.976"]  # type: ignore[index]
    assert len(buckets) == 34 and buckets[-1].startswith(f'{TF}request_latency_bucket{{model_name="half_plus_two"')
    assert buckets[-1].split("} ")[0].endswith('le="+Inf"') and buckets[-1].endswith(" 2")
    order = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE :tensorflow:")]
    assert order == sorted(order, key=lambda n: n.replace(":", "/"))  # the registry's order: by slash name
    # A Prometheus client parses the whole page (TF Serving's families and deepclf's own).
    families = {f.name for f in text_string_to_metric_families(text)}
    assert {f"{TF}request_count", f"{TF}request_latency", "deepclf_serving_request_count"} <= families
