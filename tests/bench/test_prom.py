"""Reading a server's own view from Prometheus text: TF Serving's metric names, real prometheus_client output."""

from __future__ import annotations

import math

import pytest

from deepclf.bench import prom

BEFORE = """\
# TYPE :tensorflow:serving:request_count counter
:tensorflow:serving:request_count{model_name="flowers",status="OK"} 10
:tensorflow:serving:request_count{model_name="other",status="OK"} 5
# TYPE :tensorflow:serving:request_latency histogram
:tensorflow:serving:request_latency_bucket{model_name="flowers",API="predict",entrypoint="REST",le="1000"} 4
:tensorflow:serving:request_latency_bucket{model_name="flowers",API="predict",entrypoint="REST",le="2000"} 10
:tensorflow:serving:request_latency_bucket{model_name="flowers",API="predict",entrypoint="REST",le="+Inf"} 10
:tensorflow:serving:request_latency_sum{model_name="flowers",API="predict",entrypoint="REST"} 12000
:tensorflow:serving:request_latency_count{model_name="flowers",API="predict",entrypoint="REST"} 10
"""

AFTER = """\
# TYPE :tensorflow:serving:request_count counter
:tensorflow:serving:request_count{model_name="flowers",status="OK"} 108
:tensorflow:serving:request_count{model_name="flowers",status="INVALID_ARGUMENT"} 2
:tensorflow:serving:request_count{model_name="other",status="OK"} 500
# TYPE :tensorflow:serving:request_latency histogram
:tensorflow:serving:request_latency_bucket{model_name="flowers",API="predict",entrypoint="REST",le="1000"} 54
:tensorflow:serving:request_latency_bucket{model_name="flowers",API="predict",entrypoint="REST",le="2000"} 110
:tensorflow:serving:request_latency_bucket{model_name="flowers",API="predict",entrypoint="REST",le="+Inf"} 110
:tensorflow:serving:request_latency_sum{model_name="flowers",API="predict",entrypoint="REST"} 132000
:tensorflow:serving:request_latency_count{model_name="flowers",API="predict",entrypoint="REST"} 110
"""


def test_server_view_diffs_tf_serving_counters_for_one_model():
    view = prom.server_view(prom.parse(BEFORE), prom.parse(AFTER), model="flowers")
    assert view["requests"] == 100  # 98 OK + 2 errors; the other model's 495 are not ours
    assert view["by_status"] == {"INVALID_ARGUMENT": 2, "OK": 98}
    lat = view["request_latency"]
    assert lat["count"] == 100
    assert lat["mean_ms"] == pytest.approx(1.2)  # (132000 - 12000) us / 100
    # 50 of the 100 new requests are <= 1000 us: the median sits exactly on that bucket edge
    assert lat["p50_ms"] == pytest.approx(1.0)
    assert lat["p90_ms"] == pytest.approx(1.8)  # 40 more in (1000, 2000]: 90th is 40/50 of the way


def test_histogram_quantile_interpolates_inside_buckets():
    buckets = [(1.0, 10.0), (2.0, 20.0), (float("inf"), 20.0)]
    assert prom.histogram_quantile(0.25, buckets) == pytest.approx(0.5)
    assert prom.histogram_quantile(0.75, buckets) == pytest.approx(1.5)
    assert math.isnan(prom.histogram_quantile(0.5, []))


def test_reads_what_prometheus_client_writes():
    from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

    def exposition(n: int) -> str:
        reg = CollectorRegistry()
        c = Counter("edge_request_count", "requests", ["model_name", "status"], registry=reg)
        h = Histogram(
            "edge_request_latency_seconds", "latency", ["model_name"], registry=reg, buckets=(0.001, 0.01, 0.1)
        )
        for _ in range(n):
            c.labels("flowers", "OK").inc()
            h.labels("flowers").observe(0.005)
        return generate_latest(reg).decode()

    view = prom.server_view(prom.parse(exposition(3)), prom.parse(exposition(13)), model="flowers")
    assert view["requests"] == 10
    assert view["request_latency"]["count"] == 10
    assert view["request_latency"]["mean_ms"] == pytest.approx(5.0)
    # all 10 new observations fall in the (1 ms, 10 ms] bucket: the median is interpolated halfway through it
    assert view["request_latency"]["p50_ms"] == pytest.approx(5.5)


def test_scrape_of_a_dead_server_raises_oserror(closed_port):
    with pytest.raises(OSError):
        prom.scrape(f"http://127.0.0.1:{closed_port}/monitoring/prometheus/metrics", timeout=2)
