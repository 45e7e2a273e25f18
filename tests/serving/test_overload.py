"""Overload: 64 clients that retry at once, against a 2-thread server, get their work done, and nothing is lost.

What is proven, on the real flowers fp32 model (LiteRT), ``deepclf serve --threads=2`` run as a child process as a
user runs it, with 64 closed-loop clients (32 REST on kept-alive connections, 32 gRPC on their own channels; each
sends its next request as soon as an answer comes back, so a refusal is retried at once) for 10 s while this
process polls ``GET /healthz`` every 100 ms:

1. default flags (admission by time: a queue of ``--max_in_flight`` 1,024 calls and 32 MiB, refusals only when it
   is full or a call could not start before its 30 s deadline):
   - every answer is 200 / OK, 503 / UNAVAILABLE or 504 / DEADLINE_EXCEEDED: no connection errors, no 500s;
   - none is refused at all: 64 calls never fill the queue, and wait a few service times, not 30 s;
   - nothing lost or served twice: the server's count of served predicts equals what the clients got;
   - ``/healthz`` answers 200 throughout (its latency is the benchmark's: benchmarks/overload_goals.py);
   - memory stays bounded: peak RSS (VmHWM) after the load minus RSS before it under 64 MB;
   - afterwards the in-flight, queued and queued-bytes gauges are back to 0 (no admission ticket leaked).
2. ``--max_in_flight=8`` (a queue too short for 64 clients): refusals happen, every one is 503 + ``Retry-After`` or
   UNAVAILABLE, and the server's count of refusals by reason (``queue_full``) equals what the clients got.

Goodput as a share of capacity, latency and recovery are timed, so they live in the benchmark, not here::

    DEEPCLF_OVERLOAD_REPORT=overload.json .venv/bin/python -m pytest tests/serving/test_overload.py -s
    python benchmarks/overload_goals.py          # the goals, with hey, measured against capacity
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from deepclf.bench.overload import Call, run_load

GRPC_CLIENTS = 32
REST_CLIENTS = 32
LOAD_PROCESSES = 2  # client processes, 32 asyncio clients each
LOAD_SECONDS = 10.0
SHORT_QUEUE_SECONDS = 5.0
HEALTH_PERIOD = 0.1
MAX_RSS_GROWTH_MB = 64.0
IMAGE_SIZE = (64, 64)  # the shared test model's input
ANSWERS = {"ok", "shed", "deadline"}  # 200, 503 + Retry-After / UNAVAILABLE, 504 / DEADLINE_EXCEEDED


@dataclass
class ServerProcess:
    """``deepclf serve`` as a child process (what a user runs), read through its Prometheus metrics and /proc."""

    proc: Any
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

    def memory_mb(self, field: str) -> float:
        """``VmRSS`` (now) or ``VmHWM`` (peak) of the server process, in MB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024 / 1e6
        raise AssertionError(f"no {field} in /proc/{self.proc.pid}/status")


@pytest.fixture
def serve(models_root: Path, tmp_path: Path) -> Iterator[Any]:
    """Starts ``deepclf serve`` with flowers fp32, ``--threads=2`` and the given flags (no access log: thousands of
    lines would measure the log), TensorFlow blocked (serve_driver.py)."""
    from tests.serving.child_server import child_server

    started = itertools.count()
    with contextlib.ExitStack() as stack:

        def start(*flags: str) -> ServerProcess:
            args = ["--model_name=flowers", f"--model_base_path={models_root / 'flowers'}", "--threads=2"]
            args += ["--port=0", "--rest_api_port=0", "--no_access_log", *flags]
            stderr = tmp_path / f"serve{next(started)}.stderr"
            return ServerProcess(*stack.enter_context(child_server(args, stderr)))

        yield start


def load_with_health(srv: ServerProcess, seconds: float) -> tuple[list[Call], list[tuple[int, str]]]:
    """The 64 clients for ``seconds``, and every ``/healthz`` poll meanwhile (status, error)."""
    import requests

    health: list[tuple[int, str]] = []
    done = threading.Event()

    def poll() -> None:
        with requests.Session() as s:
            while not done.is_set():
                try:
                    health.append((s.get(srv.rest_url + "/healthz", timeout=5).status_code, ""))
                except requests.RequestException as exc:
                    health.append((-1, f"{type(exc).__name__}: {exc}"))
                done.wait(HEALTH_PERIOD)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        calls = run_load(
            srv.rest_url, srv.grpc_target, REST_CLIENTS, GRPC_CLIENTS, seconds=seconds, processes=LOAD_PROCESSES
        )
    finally:
        done.set()
        poller.join(timeout=10)
    return calls, health


def count(calls: list[Call]) -> dict[str, dict[str, int]]:
    return {
        api: {o: sum(1 for c in calls if c.api == api and c.outcome == o) for o in (*sorted(ANSWERS), "other")}
        for api in ("rest", "grpc")
    }


def test_retry_at_once_clients_are_served_and_nothing_is_lost(serve: Any) -> None:
    srv = serve()
    assert srv.metric("deepclf_serving_max_in_flight_requests") == 1024
    rss_before = srv.memory_mb("VmRSS")
    calls, health = load_with_health(srv, LOAD_SECONDS)
    hwm_after = srv.memory_mb("VmHWM")
    served = srv.metric("deepclf_serving_request_count_total", method="predict", status="OK")
    gauges = {
        g: srv.metric(f"deepclf_serving_{g}") for g in ("in_flight_requests", "queued_requests", "queued_request_bytes")
    }
    by_api = count(calls)
    report = {
        "config": {"threads": 2, "clients": REST_CLIENTS + GRPC_CLIENTS, "seconds": LOAD_SECONDS},
        "by_api": by_api,
        "server_served": served,
        "server_refused": srv.metric("deepclf_serving_refused_requests_total"),
        "rss_before_mb": rss_before,
        "peak_rss_after_mb": hwm_after,
        "healthz_polls": len(health),
        "gauges_after": gauges,
        "other": [c.detail for c in calls if c.outcome not in ANSWERS][:20],
    }
    print("\noverload report:", json.dumps(report, indent=2))
    if path := os.environ.get("DEEPCLF_OVERLOAD_REPORT"):
        Path(path).write_text(json.dumps(report, indent=2) + "\n")

    assert not report["other"], report  # every answer 200 / 503 / 504: no connection error, no 500
    ok = sum(1 for c in calls if c.outcome == "ok")
    assert ok == len(calls) and ok > 0, report  # none refused: 64 calls never fill the queue nor miss 30 s
    assert served == ok, report  # nothing lost, nothing served twice
    assert report["server_refused"] == 0
    assert health and all(status == 200 for status, _ in health), health[:20]
    assert hwm_after - rss_before < MAX_RSS_GROWTH_MB, report
    assert gauges == dict.fromkeys(gauges, 0.0), gauges


def test_a_short_queue_refuses_with_retry_after_and_counts_every_refusal(serve: Any) -> None:
    srv = serve("--max_in_flight=8")
    calls, health = load_with_health(srv, SHORT_QUEUE_SECONDS)
    by_api = count(calls)
    assert not [c.detail for c in calls if c.outcome not in ANSWERS][:20], by_api
    shed = sum(1 for c in calls if c.outcome == "shed")
    ok = sum(1 for c in calls if c.outcome == "ok")
    assert shed > 0 and ok > 0, by_api  # the queue did fill, and the server still served
    refused = srv.metric("deepclf_serving_refused_requests_total", reason="queue_full")
    assert refused == shed, (refused, by_api)  # the server counted every refusal it sent, by its reason
    assert srv.metric("deepclf_serving_request_count_total", method="predict", status="OK") == ok
    assert all(status == 200 for status, _ in health), health[:20]
    assert srv.metric("deepclf_serving_in_flight_requests") == 0
