"""Retries and deadlines against real servers: a server that comes up late, a slow server, a failing one.

No timing assertions: "late" is proven by a call that started before the server existed and succeeded; "slow" by
a ``TimeoutError`` that a larger per-call deadline turns into an answer.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from deepclf.clients import (
    AsyncGrpcClient,
    AsyncRestClient,
    DeadlineExceeded,
    GrpcClient,
    RestClient,
    RetryPolicy,
    TimeoutError,
)

from .conftest import MODEL, edge_config, free_port

PATIENT = RetryPolicy(max_attempts=1000, initial_backoff=0.02, max_backoff=0.2)


class SlowRunner:
    """Wraps a real runner; every ``run`` first sleeps (a server busy with something else)."""

    def __init__(self, runner: Any, delay: float) -> None:
        self._runner, self._delay = runner, delay

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runner, name)

    def run(self, inputs: Any, signature: str = "serving_default") -> Any:
        time.sleep(self._delay)
        return self._runner.run(inputs, signature)


def test_clients_retry_until_a_late_server_comes_up(model_base: Path) -> None:
    from deepclf.serving import EdgeServer

    grpc_port, rest_port = free_port(), free_port()
    rest_url, target = f"http://127.0.0.1:{rest_port}", f"127.0.0.1:{grpc_port}"
    up = threading.Event()
    stop = threading.Event()
    failures: list[BaseException] = []

    def serve_late() -> None:
        time.sleep(1.0)
        try:
            with EdgeServer(edge_config(model_base, port=grpc_port, rest_api_port=rest_port)):
                up.set()
                stop.wait(60)
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)
            up.set()

    results: dict[str, Any] = {}
    batch = np.full((1, 64, 64, 3), 100.0, np.float32)

    def call(name: str, fn: Any) -> None:
        try:
            results[name] = fn()
        except BaseException as exc:  # reported by the main thread
            results[name] = exc

    async def both_async() -> list[Any]:
        async with (
            AsyncRestClient(rest_url, retry=PATIENT, timeout=60) as ar,
            AsyncGrpcClient(target, retry=PATIENT, timeout=60) as ag,
        ):
            return await asyncio.gather(ar.predict({"image": batch}, model=MODEL), ag.status(MODEL))

    callers = [
        threading.Thread(
            target=call,
            args=(
                "rest",
                lambda: RestClient(rest_url, retry=PATIENT, timeout=60).predict({"image": batch}, model=MODEL),
            ),
        ),
        threading.Thread(
            target=call,
            args=("grpc", lambda: GrpcClient(target, retry=PATIENT, timeout=60).predict({"image": batch}, model=MODEL)),
        ),
        threading.Thread(target=call, args=("async", lambda: asyncio.run(both_async()))),
    ]
    server = threading.Thread(target=serve_late, daemon=True)
    try:
        for t in callers:
            t.start()
        server.start()
        assert not up.is_set()  # every call started before the server existed
        for t in callers:
            t.join(90)
    finally:
        stop.set()
        server.join(30)
    assert not failures, failures
    assert results["rest"]["probabilities"].shape == (1, 5), results["rest"]
    assert results["grpc"]["probabilities"].shape == (1, 5), results["grpc"]
    assert not isinstance(results["async"], BaseException), results["async"]
    arest, agrpc = results["async"]
    np.testing.assert_array_equal(arest["probabilities"], results["rest"]["probabilities"])
    assert agrpc.available_versions == [1, 2]


@pytest.fixture(scope="module")
def slow_edge(model_base: Path):
    from deepclf.serving import EdgeServer

    with EdgeServer(edge_config(model_base, runner_wrapper=lambda r: SlowRunner(r, 1.0), threads=4)) as srv:
        yield srv


def test_deadlines_end_calls_to_a_slow_server(slow_edge: Any) -> None:
    batch = np.full((1, 64, 64, 3), 100.0, np.float32)
    with RestClient(slow_edge.rest_url, timeout=0.25) as r, GrpcClient(slow_edge.grpc_target, timeout=0.25) as g:
        for c in (r, g):
            assert c.status(MODEL).available  # fast calls fit the default deadline
            with pytest.raises(TimeoutError) as info:
                c.predict({"image": batch}, model=MODEL)
            assert isinstance(info.value, DeadlineExceeded)
            out = c.predict({"image": batch}, model=MODEL, timeout=30)  # a per-call deadline overrides the default
            assert out["probabilities"].shape == (1, 5)


async def test_async_deadlines_end_calls_to_a_slow_server(slow_edge: Any) -> None:
    batch = np.full((1, 64, 64, 3), 100.0, np.float32)
    async with (
        AsyncRestClient(slow_edge.rest_url, timeout=0.25) as r,
        AsyncGrpcClient(slow_edge.grpc_target, timeout=0.25) as g,
    ):
        for c in (r, g):
            with pytest.raises(TimeoutError):
                await c.predict({"image": batch}, model=MODEL)
            out = await c.predict({"image": batch}, model=MODEL, timeout=30)
            assert out["probabilities"].shape == (1, 5)
