"""The goals' in-process and server measurements on the session's real converted model: ``local:`` targets
(``LocalClient.predict``) give the runner's exact probabilities on tensors and image bytes, and
``measure_server_footprint`` times a real ``deepclf serve`` to AVAILABLE and reads its RSS after a request mix."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from deepclf.bench.latency import LatencyOptions, run_latency, sample_images
from deepclf.bench.peers import goals
from deepclf.bench.server_footprint import MIX, measure_server_footprint, proc_status_mb
from deepclf.bench.specs import parse_target
from deepclf.bench.targets import Batch


def test_local_client_target_matches_the_runner_on_tensors_and_bytes(bench_version: Path) -> None:
    images = sample_images(n=3)
    runner = parse_target(f"tflite:{bench_version}?variant=fp32&threads=1")
    local = parse_target(f"local:{bench_version}?variant=fp32&threads=1")
    local_bytes = parse_target(f"local:{bench_version}?variant=fp32&threads=1&send=bytes")
    runner_bytes = parse_target(f"tflite:{bench_version}?variant=fp32&threads=1&send=bytes")
    with runner, local, local_bytes, runner_bytes:
        assert local.input_size == runner.input_size and local.labels == runner.labels
        batch = Batch.from_sources(images, runner.input_size)  # type: ignore[arg-type]
        expect = runner.predict(batch)
        np.testing.assert_array_equal(local.predict(batch), expect)
        np.testing.assert_array_equal(local_bytes.predict(batch), runner_bytes.predict(batch))
        assert local.info()["transport"] == "in-process (LocalClient)" and local.info()["num_threads"] == 1


def test_local_client_targets_give_the_goal_keys(bench_version: Path) -> None:
    rep = run_latency(
        [
            f"litert-raw:{bench_version}?variant=fp32&threads=1&name={goals.BARE}",
            f"local:{bench_version}?variant=fp32&threads=1&name={goals.LOCAL_TENSOR}",
            f"local:{bench_version}?variant=fp32&threads=1&send=bytes&name={goals.LOCAL_BYTES}",
        ],
        LatencyOptions(scenarios=("single-stream",), duration=0.3, warmup=1, quiet=True),
        images=sample_images(n=2),
    )
    rows = {r.name: r for r in goals.evaluate_goals(goals.measurements(rep))}
    assert rows["local_tensor_p50"].value is not None and rows["local_bytes_p50"].value is not None
    assert rows["local_tensor_p50"].verdict in ("met", "missed")
    assert rows["server_rss"].verdict == "n/a"  # the footprint was not measured here


def test_proc_status_reads_this_process() -> None:
    if not Path(f"/proc/{os.getpid()}/status").is_file():
        pytest.skip("no /proc here")
    rss = proc_status_mb(os.getpid())
    assert rss is not None and 5 < rss < 100_000
    peak = proc_status_mb(os.getpid(), "VmHWM")
    assert peak is not None and peak >= rss * 0.9
    assert proc_status_mb(os.getpid(), "NoSuchField") is None


def test_footprint_of_a_real_server(bench_version: Path) -> None:
    fp = measure_server_footprint(bench_version.parent, "flowers", requests=12, timeout=120)
    assert fp.error is None and fp.errors == 0, fp.error
    assert fp.start_s is not None and 0 < fp.start_s < 120
    assert fp.requests == 12 and sum(fp.mix.values()) == 12 and set(fp.mix) == set(MIX)
    assert fp.mix["rest_tensor"] == 3 and fp.mix["metadata_status"] == 2  # cycled in MIX order
    assert fp.command[:2] == ["deepclf", "serve"] and "--enable_batching" not in fp.command  # default flags
    if Path("/proc/self/status").is_file():
        assert fp.rss_mb is not None and fp.rss_available_mb is not None and fp.peak_rss_mb is not None
        assert 10 < fp.rss_mb < 10_000 and fp.peak_rss_mb >= fp.rss_mb * 0.99
    values = fp.measurements()
    assert values[(goals.SERVER, goals.NO_LOAD, "start_s")] == fp.start_s
    rows = {r.name: r for r in goals.evaluate_goals(values)}
    assert rows["server_start"].verdict in ("met", "missed") and rows["batching_c8_rps"].verdict == "n/a"


def test_footprint_of_a_server_that_cannot_start(tmp_path: Path) -> None:
    fp = measure_server_footprint(tmp_path / "no-such-models", "flowers", requests=5, timeout=60)
    assert fp.error and fp.start_s is None and fp.rss_mb is None and fp.requests == 0
    assert fp.measurements() == {}
    rows = {r.name: r for r in goals.evaluate_goals(fp.measurements())}
    assert rows["server_rss"].verdict == "n/a" and rows["server_start"].verdict == "n/a"
