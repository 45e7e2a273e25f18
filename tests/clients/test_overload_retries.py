"""Our clients against a real overloaded server: they honour its Retry-After / gRPC retry pushback, and a retry
budget keeps their retries a bounded share of their calls, so they never turn an overload into a storm.

The server (``max_in_flight=1``) is kept full by holding its one admission place from the test: every inference
call is refused (503 + ``Retry-After: 1``, or UNAVAILABLE + ``grpc-retry-pushback-ms``) until it is given back.
What the server refused is read from its own admission counters. The waits are checked as lower bounds only (a
client that honours a pushback of 100 ms cannot retry sooner; one that ignores it would, after its own 1 ms
backoff), never as timings that a busy machine could break.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from deepclf.clients import AsyncGrpcClient, AsyncRestClient, GrpcClient, RestClient, RetryPolicy, Unavailable
from deepclf.clients import TimeoutError as ClientTimeout
from deepclf.serving.overload import QUEUE_FULL

from .conftest import MODEL, edge_config

#: Without a pushback these clients would retry after 1 ms.
FAST = RetryPolicy(max_attempts=2, initial_backoff=0.001, max_backoff=0.001)
BATCH = np.full((1, 64, 64, 3), 100.0, np.float32)


@pytest.fixture(scope="module")
def full_edge(model_base: Path) -> Iterator[Any]:
    from deepclf.serving import EdgeServer

    with EdgeServer(edge_config(model_base, max_in_flight=1)) as srv:
        yield srv


class Held:
    """The server's one admission place, held for the ``with`` block."""

    def __init__(self, srv: Any) -> None:
        self.admission = srv.core.admission

    def __enter__(self) -> Held:
        self.ticket = self.admission.admit(0, None)
        self.before = self.admission.refused[QUEUE_FULL]
        return self

    def refused(self) -> int:
        return self.admission.refused[QUEUE_FULL] - self.before

    def __exit__(self, *exc: object) -> None:
        self.ticket.finish()


def test_sync_clients_wait_as_long_as_the_server_asks(full_edge: Any) -> None:
    with (
        RestClient(full_edge.rest_url, retry=FAST) as rest,
        GrpcClient(full_edge.grpc_target, retry=FAST) as grpc_client,
    ):
        for client, at_least in ((rest, 1.0), (grpc_client, 0.1)):  # Retry-After: 1 s; pushback: >= 100 ms
            with Held(full_edge) as held:
                t0 = time.monotonic()
                with pytest.raises(Unavailable) as refused:
                    client.predict({"image": BATCH}, model=MODEL)
                waited = time.monotonic() - t0
            assert held.refused() == 2, "one call, two attempts (max_attempts=2)"
            assert refused.value.retry_after is not None and refused.value.retry_after >= at_least
            assert "queue is full" in str(refused.value)
            assert waited >= at_least, (type(client).__name__, waited)
        assert rest.predict({"image": BATCH}, model=MODEL)["probabilities"].shape == (1, 5)  # place given back


async def test_async_clients_wait_as_long_as_the_server_asks(full_edge: Any) -> None:
    async with (
        AsyncRestClient(full_edge.rest_url, retry=FAST) as rest,
        AsyncGrpcClient(full_edge.grpc_target, retry=FAST) as grpc_client,
    ):
        for client, at_least in ((rest, 1.0), (grpc_client, 0.1)):
            with Held(full_edge) as held:
                t0 = time.monotonic()
                with pytest.raises(Unavailable):
                    await client.predict({"image": BATCH}, model=MODEL)
                waited = time.monotonic() - t0
            assert held.refused() == 2
            assert waited >= at_least, (type(client).__name__, waited)


def test_a_pushback_longer_than_the_deadline_ends_the_call_at_once(full_edge: Any) -> None:
    with (
        RestClient(full_edge.rest_url, retry=FAST, timeout=0.5) as rest,
        Held(full_edge) as held,
        pytest.raises(ClientTimeout, match="asked to retry in 1s") as ended,
    ):
        rest.predict({"image": BATCH}, model=MODEL)
    assert held.refused() == 1  # not retried: Retry-After (1 s) is past the 0.5 s deadline
    assert isinstance(ended.value.__cause__, Unavailable)


def test_the_retry_budget_bounds_retries_across_calls(full_edge: Any) -> None:
    """20 calls to a full server, 5 attempts each allowed: the budget (10 tokens, retries while > 5) lets the first
    call retry 4 times and none after it: 24 requests instead of 100. Successes earn retries back."""
    policy = RetryPolicy(max_attempts=5, initial_backoff=0.001, max_backoff=0.001)
    with GrpcClient(full_edge.grpc_target, retry=policy) as client:
        with Held(full_edge) as held:
            notes: list[str] = []
            for _ in range(20):
                with pytest.raises(Unavailable) as refused:
                    client.predict({"image": BATCH}, model=MODEL)
                notes = getattr(refused.value, "__notes__", [])
            assert held.refused() == 24
            assert "retry budget is spent" in "".join(notes)
        assert client._core.retry_budget.tokens == 0  # one token off per failure, down to none
        for _ in range(70):  # +0.1 token each: 0 -> 7.0
            client.predict({"image": BATCH}, model=MODEL)
        with Held(full_edge) as held, pytest.raises(Unavailable):
            client.predict({"image": BATCH}, model=MODEL)
        assert held.refused() == 2  # 7 -> 6 tokens: one retry earned back; 6 -> 5: the budget stops the next


async def test_the_async_clients_share_one_budget_per_client(full_edge: Any) -> None:
    policy = RetryPolicy(max_attempts=5, initial_backoff=0.001, max_backoff=0.001)
    async with AsyncGrpcClient(full_edge.grpc_target, retry=policy) as client:
        with Held(full_edge) as held:
            for _ in range(10):
                with pytest.raises(Unavailable):
                    await client.predict({"image": BATCH}, model=MODEL)
        assert held.refused() == 14
