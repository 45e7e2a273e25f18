"""Remote targets against the real edge server on loopback: REST and gRPC, tensors and image bytes.

The server runs the same LiteRT runner on the same tensor as the in-process target, so parity must be exact; the
Prometheus scrape must see the requests the benchmark sent.
"""

from __future__ import annotations

import numpy as np
import pytest

from deepclf.bench.latency import LatencyOptions, run_latency, sample_images
from deepclf.bench.parity import ParityImages, run_parity

pytest.importorskip("deepclf.serving.server")
pytest.importorskip("deepclf.clients._rest")


@pytest.fixture(scope="module")
def edge(bench_version):
    from deepclf.serving import EdgeServer, ServerConfig

    cfg = ServerConfig(
        model_name="flowers",
        model_base_path=str(bench_version.parent),
        port=0,
        rest_api_port=0,
        access_log=False,
        poll_seconds=0,
        threads=2,
    )
    with EdgeServer(cfg) as srv:
        yield srv.rest_url.split("://", 1)[1], srv.grpc_target


def _specs(edge):
    rest, grpc = edge
    return [
        f"rest://{rest}/flowers",
        f"rest://{rest}/flowers?send=bytes",
        f"rest://{rest}/flowers?codec=stdlib",
        f"grpc://{grpc}/flowers",
        f"grpc://{grpc}/flowers?send=bytes&metrics=http://{rest}/monitoring/prometheus/metrics",
    ]


def test_latency_over_rest_and_grpc_with_the_servers_own_view(edge):
    report = run_latency(
        _specs(edge),
        LatencyOptions(scenarios=("single-stream", "server"), duration=0.4, rate=20, warmup=1, quiet=True),
        images=sample_images(n=2),
    )
    for t in report.targets:
        assert t.status == "ok", t.error
        for r in t.results:
            assert r.errors == 0 and r.count > 0, r.error_messages
            srv = r.server
            if t.info["metrics_url"] is None:  # gRPC on a port other than 8500: REST port unknown, no scrape
                assert srv is None
                continue
            assert srv and "error" not in srv, srv
            # the server counted at least the measured requests (clients may add a metadata call)
            assert srv["requests"] >= r.count
            assert srv["request_latency"]["count"] >= r.count
    assert report.targets[2].info["codec"] == "stdlib"
    assert report.targets[3].info["metrics_url"] is None and report.targets[4].info["metrics_url"]


def test_served_endpoints_match_the_in_process_runner_exactly(edge, bench_version, gen_photos):
    data = ParityImages.from_folder(gen_photos, limit=12)
    report = run_parity([f"tflite:{bench_version}?variant=fp32", *_specs(edge)], data)
    served = [t for t in report.targets if t.kind == "served"]
    assert len(served) == 5
    for t in served:
        assert t.status == "ok", t.error
        assert t.passed, t.checks
        assert t.compared_with == "tflite-fp32" and t.max_abs_diff == 0.0
    assert report.passed


def test_rows_target_replays_prebuilt_bodies_and_gets_the_runners_answers(edge, bench_version):
    """``rows://`` (the peers' load generator): one body per image, replayed; tensor and image bytes both answer
    what the in-process runner answers for the same images."""
    from deepclf.bench.peers.target import PeerTarget
    from deepclf.bench.specs import parse_target
    from deepclf.bench.targets import Batch
    from deepclf.runtime import load_runner

    rest, _ = edge
    images = sample_images(n=2)
    with load_runner(bench_version) as runner:
        h, w, _ = runner.manifest.input.shape
        batch = Batch.from_sources(images[:1], (h, w))
        expected = runner.predict(batch.tensor)
    for send in ("tensor", "bytes"):
        target = parse_target(f"rows://{rest}/flowers?size={h}&send={send}")
        assert isinstance(target, PeerTarget)
        with target:
            first = target.predict(batch)
            second = target.predict(batch)
        np.testing.assert_array_equal(first, expected)
        np.testing.assert_array_equal(second, expected)
        assert len(target._bodies) == 1  # encoded once, replayed
