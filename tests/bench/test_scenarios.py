"""Every scenario runs on real LiteRT models and on plain-function targets; errors are counted, never fatal.

No assertion depends on how fast this machine is: only lower bounds that hold by construction (a request that
sleeps 20 ms cannot take less) and counts.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from deepclf.bench.latency import sample_images
from deepclf.bench.scenarios import ScenarioConfig, run_scenario, sweep
from deepclf.bench.specs import parse_target
from deepclf.bench.targets import Batch, FunctionTarget
from deepclf.errors import UsageError


@pytest.fixture(scope="module")
def images64() -> Batch:
    return Batch.from_sources(sample_images(n=4), (64, 64))


class _CountingTarget(FunctionTarget):
    calls: dict[str, int]  # {"n": calls so far}


def _counting_target(delay: float = 0.0, fail_every: int = 0) -> _CountingTarget:
    calls = {"n": 0}
    lock = threading.Lock()

    def fn(batch: Batch) -> np.ndarray:
        with lock:
            calls["n"] += 1
            n = calls["n"]
        if delay:
            time.sleep(delay)
        if fail_every and n % fail_every == 0:
            raise RuntimeError(f"injected failure on call {n}")
        return np.full((len(batch), 3), 1 / 3, dtype=np.float32)

    t = _CountingTarget("fn", fn)
    t.calls = calls
    return t


@pytest.mark.parametrize("scenario", ["single-stream", "offline", "concurrency", "server"])
def test_every_scenario_runs_on_a_real_litert_model(bench_version, images64, scenario):
    target = parse_target(f"tflite:{bench_version}?variant=int8&threads=1")
    cfg = ScenarioConfig(
        scenario,
        duration=0.5,
        warmup=2,
        batch_size=8 if scenario == "offline" else 1,
        concurrency=2 if scenario in ("concurrency", "server") else 1,
        rate=50.0 if scenario == "server" else None,
        quiet=True,
    )
    with target:
        res = run_scenario(target, images64, cfg)
    assert res.errors == 0, res.error_messages
    assert res.count > 0 and res.latency.count == res.count == len(res.latencies_ms)
    assert res.throughput_ips == pytest.approx(res.throughput_rps * cfg.batch_size)
    assert res.latency.p50 <= res.latency.p90 <= res.latency.p99 <= res.latency.max
    assert res.warmup["requests"] == 2 * cfg.concurrency and res.warmup["first_ms"] > 0
    assert res.client_cpu >= 0
    if scenario == "server":
        assert res.achieved_rate is not None and res.offered_rate is not None and res.queue_ms is not None
        assert res.count + res.dropped == round(res.offered_rate * 0.5)


def test_request_count_limit_and_warmup_excluded(images64):
    t = _counting_target()
    res = run_scenario(t, images64, ScenarioConfig("single-stream", duration=None, requests=7, warmup=3, quiet=True))
    assert res.count == 7 and t.calls["n"] == 10  # 3 warm-up calls, not in the measurement
    assert res.warmup["requests"] == 3


def test_errors_are_counted_with_their_messages(images64):
    t = _counting_target(fail_every=3)
    res = run_scenario(t, images64, ScenarioConfig("single-stream", duration=None, requests=30, warmup=1, quiet=True))
    assert res.count + res.errors == 30
    assert res.errors >= 9
    assert res.error_messages and res.error_messages[0].startswith("RuntimeError: injected failure")
    assert len(res.error_messages) <= 5


def test_a_target_that_always_fails_is_reported_quickly(images64):
    def boom(batch):
        raise ConnectionRefusedError("server down")

    res = run_scenario(
        FunctionTarget("down", boom), images64, ScenarioConfig("single-stream", duration=30, warmup=2, quiet=True)
    )
    assert res.count == 0 and res.errors == 2
    assert res.duration_s < 30  # the measurement is skipped when every warm-up request failed
    assert "server down" in res.error_messages[0]


def test_server_scenario_counts_queueing_from_the_scheduled_arrival(images64):
    # One worker that needs 20 ms per request, offered ~200 requests/s: arrivals must queue behind each other,
    # and latency measured from the scheduled arrival includes that wait.
    t = _counting_target(delay=0.02)
    res = run_scenario(
        t, images64, ScenarioConfig("server", duration=0.4, rate=200, concurrency=1, warmup=0, quiet=True, seed=3)
    )
    assert res.count > 0
    assert min(res.latencies_ms) >= 20.0
    assert res.queue_ms is not None and res.latency is not None
    assert res.queue_ms.max > 0
    assert res.latency.max >= res.queue_ms.max + 20.0


def test_concurrency_sweep_gives_one_result_per_level(images64):
    t = _counting_target()
    results = sweep(t, images64, ScenarioConfig("concurrency", duration=0.2, warmup=1, quiet=True), [1, 2, 4])
    assert [r.concurrency for r in results] == [1, 2, 4]
    assert all(r.count > 0 and r.errors == 0 for r in results)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scenario": "burst"}, "unknown scenario"),
        ({"duration": None, "requests": None}, "duration"),
        ({"scenario": "server"}, "needs a positive --rate"),
        ({"concurrency": 0}, "concurrency must be at least 1"),
        ({"batch_size": 0}, "batch size"),
    ],
)
def test_bad_configs_are_usage_errors(kwargs, message):
    with pytest.raises(UsageError, match=message):
        ScenarioConfig(**kwargs)
