"""Overload: 64 clients sending back to back to a 2-thread server get answers or fast refusals, never slow answers.

What is proven, on the real flowers fp32 model (LiteRT, ``threads=2``, the default ``--max_in_flight``: 4 per
thread), REST and gRPC together:

1. Unloaded latency first: 100 sequential REST predicts and 100 gRPC predicts of one 64x64 image (p50 / p99).
2. Then 64 concurrent clients (32 REST, each its own ``requests.Session``; 32 gRPC, each its own channel) send
   predicts back to back for 10 s, without retries, while this process polls ``GET /healthz`` every 100 ms.
3. Every request either succeeds (200 / OK) or is shed: 503 with ``Retry-After`` (REST) or UNAVAILABLE (gRPC);
   nothing else (no timeouts, no 500s, no RESOURCE_EXHAUSTED, no connection errors).
4. Sheds are fast (p99 under 100 ms as the client sees it, on a saturated machine) and the p99 of the successful
   requests is under 10x the unloaded p99 (the issue's acceptance criterion): the queue is bounded, so a request
   the server takes waits at most a few service times.
5. ``/healthz`` answers 200 within 1 s throughout (it is never gated); right after the load stops a request succeeds
   at once and ``srv.core.gate.in_flight`` returns to 0 (no slot leaked by shed, failed or cancelled calls).

How it is measured honestly: the server runs in this process (so its in-flight gate can be read), and the load
generator runs in 4 child processes of 16 threads (this module, run as a script), so the 64 client threads never
hold the server's GIL nor queue behind one client GIL; the unloaded latencies are measured by the same client code in
a child process, so per-request client overheads are on both sides of the ratio. Both processes share the machine's cores, which only makes the bound harder to meet.

The numbers are printed (``pytest -s``) and, when ``DEEPCLF_OVERLOAD_REPORT`` names a file, written there as JSON::

    DEEPCLF_OVERLOAD_REPORT=overload.json .venv/bin/python -m pytest tests/serving/test_overload.py -s
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

CLIENTS = 64
GRPC_CLIENTS = 32  # the rest are REST clients
LOAD_PROCESSES = 4  # client processes (16 threads each), so the clients' own GIL is not what is measured
LOAD_SECONDS = 10.0
UNLOADED_REQUESTS = 100
HEALTH_PERIOD = 0.1
HEALTH_BOUND = 1.0
SHED_P99_BOUND = 0.100
RATIO_BOUND = 10.0


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


# ---------------------------------------------------------------------------------- the load generator (child)


def _image() -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 255, (1, 64, 64, 3)).astype(np.float32)


def _clients(rest_url: str, grpc_target: str) -> tuple[Any, Any]:
    """(rest_call, grpc_call) factories: each returns (outcome, seconds, detail) for one predict."""
    import grpc
    import requests

    from deepclf import protocol as P

    body = P.encode_predict_request({"image": _image()})
    req = P.PredictRequest(model_spec=P.model_spec("flowers"))
    req.inputs["image"].CopyFrom(P.to_tensor_proto(_image()))
    url = rest_url + "/v1/models/flowers:predict"

    def rest_client() -> Any:
        session = requests.Session()

        def call() -> tuple[str, float, str]:
            t0 = time.perf_counter()
            try:
                r = session.post(url, data=body, timeout=30)
            except requests.RequestException as exc:
                return "other", time.perf_counter() - t0, f"rest {type(exc).__name__}: {exc}"[:300]
            dt = time.perf_counter() - t0
            if r.status_code == 200:
                return "ok", dt, ""
            if r.status_code == 503 and r.headers.get("Retry-After"):
                return "shed", dt, ""
            return "other", dt, f"rest {r.status_code} {r.headers.get('Retry-After')!r} {r.text[:200]}"

        return call

    def grpc_client() -> Any:
        channel = grpc.insecure_channel(grpc_target)
        predict = P.unary_unary(channel, P.PREDICT)

        def call() -> tuple[str, float, str]:
            t0 = time.perf_counter()
            try:
                predict(req, timeout=30)
                return "ok", time.perf_counter() - t0, ""
            except grpc.RpcError as exc:
                dt = time.perf_counter() - t0
                if exc.code() == grpc.StatusCode.UNAVAILABLE:
                    return "shed", dt, ""
                return "other", dt, f"grpc {exc.code().name} {exc.details()}"[:300]

        return call

    return rest_client, grpc_client


def _unloaded(rest_url: str, grpc_target: str, n: int) -> dict[str, list[float]]:
    rest_client, grpc_client = _clients(rest_url, grpc_target)
    out: dict[str, list[float]] = {}
    for api, make in (("rest", rest_client), ("grpc", grpc_client)):
        call = make()
        for _ in range(5):  # connection set-up and first-call costs are not latency
            call()
        lat = []
        for _ in range(n):
            outcome, dt, detail = call()
            assert outcome == "ok", detail
            lat.append(dt)
        out[api] = lat
    return out


def _load(rest_url: str, grpc_target: str, clients: int, grpc_clients: int, seconds: float) -> dict[str, Any]:
    rest_client, grpc_client = _clients(rest_url, grpc_target)
    calls = [(("grpc", grpc_client()) if i < grpc_clients else ("rest", rest_client())) for i in range(clients)]
    results: list[list[tuple[str, str, float, str]]] = [[] for _ in calls]
    start = threading.Barrier(len(calls) + 1)
    stop_at = [0.0]

    def worker(i: int) -> None:
        api, call = calls[i]
        start.wait()
        while time.perf_counter() < stop_at[0]:
            outcome, dt, detail = call()
            results[i].append((api, outcome, dt, detail))

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(len(calls))]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + seconds
    start.wait()
    for t in threads:
        t.join(timeout=seconds + 60)
    flat = [r for rs in results for r in rs]
    return {
        "ok": [dt for _, o, dt, _ in flat if o == "ok"],
        "shed": [dt for _, o, dt, _ in flat if o == "shed"],
        "by_api": {
            api: {o: sum(1 for a, oo, _, _ in flat if a == api and oo == o) for o in ("ok", "shed", "other")}
            for api in ("rest", "grpc")
        },
        "other": [d for _, o, _, d in flat if o == "other"][:20],
        "other_count": sum(1 for _, o, _, _ in flat if o == "other"),
        "stuck_threads": sum(t.is_alive() for t in threads),
    }


def main(argv: list[str]) -> int:
    """``python test_overload.py unloaded|load REST_URL GRPC_TARGET``: one JSON document on stdout."""
    phase, rest_url, grpc_target = argv
    if phase == "unloaded":
        doc: Any = _unloaded(rest_url, grpc_target, UNLOADED_REQUESTS)
    else:
        per = CLIENTS // LOAD_PROCESSES
        doc = _load(rest_url, grpc_target, per, GRPC_CLIENTS // LOAD_PROCESSES, LOAD_SECONDS)
    sys.stdout.write(json.dumps(doc))
    return 0


def _child(phase: str, srv: Any, timeout: float) -> Any:
    """Run the load generator: one process for ``unloaded``, ``LOAD_PROCESSES`` (results merged) for ``load``."""
    n = 1 if phase == "unloaded" else LOAD_PROCESSES
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, phase, srv.rest_url, srv.grpc_target],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(n)
    ]
    docs = []
    for proc in procs:
        out, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, err[-3000:]
        docs.append(json.loads(out))
    if phase == "unloaded":
        return docs[0]
    merged: dict[str, Any] = {"ok": [], "shed": [], "other": [], "other_count": 0, "stuck_threads": 0}
    merged["by_api"] = {api: {"ok": 0, "shed": 0, "other": 0} for api in ("rest", "grpc")}
    for doc in docs:
        for key in ("ok", "shed", "other"):
            merged[key] += doc[key]
        merged["other_count"] += doc["other_count"]
        merged["stuck_threads"] += doc["stuck_threads"]
        for api, counts in doc["by_api"].items():
            for k, v in counts.items():
                merged["by_api"][api][k] += v
    return merged


# --------------------------------------------------------------------------------------------------- the test


@pytest.fixture(scope="module")
def overload_server(models_root: Path) -> Any:
    from deepclf.serving import EdgeServer, ModelConfig, ServerConfig

    cfg = ServerConfig(
        model_configs=[ModelConfig("flowers", str(models_root / "flowers"))],
        host="127.0.0.1",
        port=0,
        rest_api_port=0,
        format="fp32",
        threads=2,
        poll_seconds=0,
        access_log=False,  # thousands of log lines to stderr would measure the terminal, not the server
    )
    with EdgeServer(cfg) as srv:
        yield srv


def test_overload_sheds_fast_and_keeps_latency_bounded(overload_server):
    import requests

    from deepclf import protocol as P

    srv = overload_server
    assert srv.core.gate is not None, "the default config must bound the calls in flight"
    unloaded = _child("unloaded", srv, timeout=120)
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
        loaded = _child("load", srv, timeout=LOAD_SECONDS + 120)
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
    while srv.core.gate.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)

    ok, shed = loaded["ok"], loaded["shed"]
    un_p99 = _pct(un_all, 99)
    ok_p99 = _pct(ok, 99)
    report = {
        "config": {
            "threads": 2,
            "max_in_flight": srv.core.gate.limit,
            "clients": CLIENTS,
            "grpc_clients": GRPC_CLIENTS,
            "client_processes": LOAD_PROCESSES,
            "seconds": LOAD_SECONDS,
        },
        "unloaded_ms": {
            "rest_p50": _pct(unloaded["rest"], 50) * 1e3,
            "rest_p99": _pct(unloaded["rest"], 99) * 1e3,
            "grpc_p50": _pct(unloaded["grpc"], 50) * 1e3,
            "grpc_p99": _pct(unloaded["grpc"], 99) * 1e3,
            "p50": _pct(un_all, 50) * 1e3,
            "p99": un_p99 * 1e3,
        },
        "loaded_success_ms": {"p50": _pct(ok, 50) * 1e3, "p99": ok_p99 * 1e3},
        "ratio_p99": ok_p99 / un_p99,
        "success_count": len(ok),
        "shed_count": len(shed),
        "shed_ms": {"p50": _pct(shed, 50) * 1e3, "p99": _pct(shed, 99) * 1e3},
        "by_api": loaded["by_api"],
        "other_count": loaded["other_count"],
        "healthz": {"polls": len(health), "max_ms": max((dt for _, dt in health), default=float("nan")) * 1e3},
        "recovery_ms": recovery * 1e3,
        "in_flight_after": srv.core.gate.in_flight,
        "server_shed_total": srv.core.gate.shed,
    }
    print("\noverload report:", json.dumps(report, indent=2))
    path = os.environ.get("DEEPCLF_OVERLOAD_REPORT")
    if path:
        Path(path).write_text(json.dumps(report, indent=2) + "\n")

    assert loaded["stuck_threads"] == 0
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
    assert srv.core.gate.in_flight == 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
