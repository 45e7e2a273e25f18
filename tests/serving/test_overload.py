"""Overload: 64 clients sending back to back to a 2-thread server get answers or refusals, and the server stays up.

What is proven, on the real flowers fp32 model (LiteRT), ``deepclf serve --threads=2`` with every other flag at its
default (``--max_in_flight`` 8: 4 per inference thread), run as a child process as a user runs it:

1. Unloaded latency first: 100 sequential REST predicts and 100 gRPC predicts of one 64x64 image (p50 / p99).
2. Then 64 concurrent clients (32 REST on their own kept-alive connections, 32 gRPC on their own channels) send
   predicts back to back for 10 s, without retries, while this process polls ``GET /healthz`` every 100 ms.
3. Every request either succeeds (200 / OK) or is shed: 503 with ``Retry-After`` (REST) or UNAVAILABLE (gRPC);
   nothing else (no timeouts, no 500s, no RESOURCE_EXHAUSTED, no connection errors), and the server's own count
   of refusals (its metrics) equals what the clients got.
4. ``/healthz`` answers 200 within 1 s throughout (it is never gated); right after the load stops a request
   succeeds at once and the in-flight gauge returns to 0 (no slot leaked by shed, failed or cancelled calls).
5. Latency: the shed and successful p99s are recorded (printed, and written as JSON to ``DEEPCLF_OVERLOAD_REPORT``)
   and held to regression bounds. The issue's goal, successful p99 under 10x the unloaded p99, is NOT met on this
   2-core machine (README "Reliability": 29-40x). It is below what Python's gRPC can do here at all: under this
   same load a server that answers a fixed response and does nothing else has a p99 above 10x ours unloaded
   (``python benchmarks/overload_floor.py``), with the load generator sharing the 2 cores.

The load generator is ``deepclf.bench.overload``: 2 processes of 32 asyncio clients each (raw HTTP/1.1 and
``grpc.aio``), a client's own cost per call a few microseconds, so what is timed is the server; the same client
code measures the unloaded latencies, so per-call client overheads are on both sides of the ratio::

    DEEPCLF_OVERLOAD_REPORT=overload.json .venv/bin/python -m pytest tests/serving/test_overload.py -s
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from deepclf.bench.overload import image, percentile_ms, run_load, unloaded_latencies

CLIENTS = 64
GRPC_CLIENTS = 32  # the rest are REST clients
LOAD_PROCESSES = 2  # client processes, 32 asyncio clients each
LOAD_SECONDS = 10.0
UNLOADED_REQUESTS = 100
HEALTH_PERIOD = 0.1
HEALTH_BOUND = 1.0
IMAGE_SIZE = (64, 64)  # the shared test model's input
#: Regression bounds, not the goal (see the module docstring): client-observed on a saturated 2-core machine.
SHED_P99_BOUND = 0.500
RATIO_BOUND = 100.0
RATIO_GOAL = 10.0


def _image() -> np.ndarray:
    return image(IMAGE_SIZE)


def _loaded(srv: Any) -> dict[str, Any]:
    calls = run_load(
        srv.rest_url,
        srv.grpc_target,
        CLIENTS - GRPC_CLIENTS,
        GRPC_CLIENTS,
        seconds=LOAD_SECONDS,
        processes=LOAD_PROCESSES,
    )
    return {
        "ok": [c.seconds for c in calls if c.outcome == "ok"],
        "shed": [c.seconds for c in calls if c.outcome == "shed"],
        "ok_by_api": {
            api: [c.seconds for c in calls if c.outcome == "ok" and c.api == api] for api in ("rest", "grpc")
        },
        "by_api": {
            api: {o: sum(1 for c in calls if c.api == api and c.outcome == o) for o in ("ok", "shed", "other")}
            for api in ("rest", "grpc")
        },
        "other": [c.detail for c in calls if c.outcome == "other"][:20],
        "other_count": sum(1 for c in calls if c.outcome == "other"),
    }


# --------------------------------------------------------------------------------------------------- the test


@dataclass
class ServerProcess:
    """``deepclf serve`` as a child process (what a user runs), read through its Prometheus metrics."""

    proc: subprocess.Popen
    grpc_target: str
    rest_url: str

    def metric(self, name: str, **labels: str) -> float:
        """The sum of a metric's samples whose labels include ``labels``."""
        import requests

        text = requests.get(self.rest_url + "/monitoring/prometheus/metrics", timeout=10).text
        total = 0.0
        for line in text.splitlines():
            named = line.startswith(name) and line[len(name)] in " {"
            if named and all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total


@pytest.fixture(scope="module")
def overload_server(models_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """flowers fp32, ``--threads=2``, every other flag at its default (no access log: thousands of lines would
    measure the log, not the server), TensorFlow blocked (serve_driver.py)."""
    from tests.serving.child_server import child_server

    stderr_path = tmp_path_factory.mktemp("overload") / "serve.stderr"
    args = ["--model_name=flowers", f"--model_base_path={models_root / 'flowers'}", "--threads=2"]
    args += ["--port=0", "--rest_api_port=0", "--no_access_log"]
    with child_server(args, stderr_path) as (proc, grpc_target, rest_url):
        yield ServerProcess(proc, grpc_target, rest_url)


def test_overload_sheds_fast_and_keeps_latency_bounded(overload_server):
    import requests

    from deepclf import protocol as P

    srv = overload_server
    limit = int(srv.metric("deepclf_serving_max_in_flight_requests"))
    assert limit == 8, "the default config bounds the calls in flight: 4 per inference thread"
    unloaded = unloaded_latencies(srv.rest_url, srv.grpc_target, calls=UNLOADED_REQUESTS, size=IMAGE_SIZE)
    un_all = unloaded["rest"] + unloaded["grpc"]

    health: list[tuple[int, float]] = []
    health_errors: list[str] = []
    done = threading.Event()

    def poll_health() -> None:
        with requests.Session() as s:
            while not done.is_set():
                t0 = time.perf_counter()
                try:
                    status = s.get(srv.rest_url + "/healthz", timeout=HEALTH_BOUND * 5).status_code
                except requests.RequestException as exc:
                    health_errors.append(f"{type(exc).__name__}: {exc}")
                    status = -1
                health.append((status, time.perf_counter() - t0))
                done.wait(HEALTH_PERIOD)

    poller = threading.Thread(target=poll_health, daemon=True)
    poller.start()
    try:
        loaded = _loaded(srv)
    finally:
        done.set()
        poller.join(timeout=10)

    # recovery: at once, and every slot given back
    t0 = time.perf_counter()
    r = requests.post(
        srv.rest_url + "/v1/models/flowers:predict",
        data=P.encode_predict_request({"image": _image()}),
        timeout=30,
    )
    recovery = time.perf_counter() - t0
    deadline = time.monotonic() + 5
    while srv.metric("deepclf_serving_in_flight_requests") and time.monotonic() < deadline:
        time.sleep(0.01)
    in_flight_after = srv.metric("deepclf_serving_in_flight_requests")
    server_shed = srv.metric("deepclf_serving_request_count_total", status="UNAVAILABLE")

    ok, shed = loaded["ok"], loaded["shed"]
    un_p99 = percentile_ms(un_all, 99)
    ok_p99 = percentile_ms(ok, 99)
    report = {
        "config": {
            "threads": 2,
            "max_in_flight": limit,
            "clients": CLIENTS,
            "grpc_clients": GRPC_CLIENTS,
            "client_processes": LOAD_PROCESSES,
            "seconds": LOAD_SECONDS,
        },
        "unloaded_ms": {
            "rest_p50": percentile_ms(unloaded["rest"], 50),
            "rest_p99": percentile_ms(unloaded["rest"], 99),
            "grpc_p50": percentile_ms(unloaded["grpc"], 50),
            "grpc_p99": percentile_ms(unloaded["grpc"], 99),
            "p50": percentile_ms(un_all, 50),
            "p99": un_p99,
        },
        "loaded_success_ms": {"p50": percentile_ms(ok, 50), "p99": ok_p99},
        "loaded_success_ms_by_api": {
            api: {"p50": percentile_ms(v, 50), "p99": percentile_ms(v, 99)} for api, v in loaded["ok_by_api"].items()
        },
        "ratio_p99": ok_p99 / un_p99,
        "ratio_goal": RATIO_GOAL,
        "success_count": len(ok),
        "shed_count": len(shed),
        "shed_ms": {"p50": percentile_ms(shed, 50), "p99": percentile_ms(shed, 99)},
        "by_api": loaded["by_api"],
        "other_count": loaded["other_count"],
        "healthz": {"polls": len(health), "max_ms": max((dt for _, dt in health), default=float("nan")) * 1e3},
        "recovery_ms": recovery * 1e3,
        "in_flight_after": in_flight_after,
        "server_shed_total": server_shed,
    }
    print("\noverload report:", json.dumps(report, indent=2))
    path = os.environ.get("DEEPCLF_OVERLOAD_REPORT")
    if path:
        Path(path).write_text(json.dumps(report, indent=2) + "\n")

    assert loaded["other_count"] == 0, loaded["other"]
    assert ok and shed, report  # the load did overload the server, and it still served
    assert report["shed_ms"]["p99"] < SHED_P99_BOUND * 1e3, report
    assert report["ratio_p99"] < RATIO_BOUND, report
    assert not health_errors and all(status == 200 for status, _ in health), (health_errors, health[:20])
    assert (
        len(health) >= LOAD_SECONDS / (HEALTH_PERIOD + HEALTH_BOUND)
        and report["healthz"]["max_ms"] < 1e3 * HEALTH_BOUND
    )
    assert r.status_code == 200 and recovery < 1.0, (r.status_code, recovery)
    assert in_flight_after == 0
    assert server_shed == len(shed), (server_shed, len(shed))  # the server counted every refusal it sent
