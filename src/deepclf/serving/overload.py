"""Load shedding: a bounded number of inference calls in flight, and UNAVAILABLE at once beyond it.

Without a bound, an overloaded server queues every request in its worker pool: latency grows for everyone until
clients time out, and the pool keeps working on requests whose callers have gone. With one, the requests beyond
``limit`` (queued + running Predict, Classify, Regress and MultiInference calls, REST and gRPC together) are
refused before their body is read, with UNAVAILABLE / 503 and ``Retry-After`` (what TF Serving answers when its
queues are full), which clients retry with backoff, ideally on another replica::

    gate = InFlightLimit(16)
    with gate.slot():          # raises Overloaded (a protocol Unavailable) when 16 calls are in flight
        ...                    # decode, infer, encode

Status, metadata, health and metrics calls are never gated: an overloaded server still says it is alive.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from deepclf.protocol.errors import Unavailable

log = logging.getLogger("deepclf.serving")

#: Seconds between the log lines that count shed requests (one line per shed would make an overload worse).
SHED_LOG_PERIOD = 10.0

#: Seconds a refused client is told to wait (``Retry-After``; HTTP takes whole seconds).
RETRY_AFTER_SECONDS = 1
#: In-flight calls per inference thread when ``--max_in_flight`` is not set: enough to keep every thread busy
#: while the next requests are decoded, few enough that an admitted request waits a few service times. What it
#: trades, 64 clients back to back on 2 threads (``python benchmarks/overload_floor.py --also=--max_in_flight=4
#: --also=--max_in_flight=16``, README "Reliability"): limit 4 / 8 / 16 served 2,353 / 3,721 / 5,536 calls in
#: 10 s at a served p99 of 66 / 83 / 112 ms.
IN_FLIGHT_PER_THREAD = 4


class Overloaded(Unavailable):
    """More calls in flight than ``--max_in_flight``: UNAVAILABLE / 503 with ``Retry-After``."""

    retry_after = RETRY_AFTER_SECONDS


#: The least default in-flight limit: one inference thread (the default on up to 4 CPUs) still admits a few
#: concurrent clients without refusing any.
MIN_DEFAULT_IN_FLIGHT = 8


def default_max_in_flight(threads: int, batch_size: int | None = None) -> int:
    """``IN_FLIGHT_PER_THREAD`` per inference thread (at least ``MIN_DEFAULT_IN_FLIGHT``), plus one full batch
    when batching is on (so a batch can fill while the previous one runs)."""
    return max(IN_FLIGHT_PER_THREAD * threads, MIN_DEFAULT_IN_FLIGHT) + (batch_size or 0)


class InFlightLimit:
    """Counts calls in flight; ``slot()`` admits one or raises ``Overloaded`` at once (never waits)."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"the in-flight limit must be >= 1, got {limit}")
        self.limit = limit
        self.in_flight = 0
        self.shed = 0  # calls refused since start (also in the Prometheus metrics)
        self._lock = threading.Lock()
        self._logged_shed, self._logged_at = 0, time.monotonic()
        self.message = (
            f"the server is overloaded: {limit} requests are in flight (--max_in_flight={limit}); "
            f"retry in {RETRY_AFTER_SECONDS} s or on another replica"
        )

    def try_enter(self) -> bool:
        with self._lock:
            if self.in_flight >= self.limit:
                self._count_shed()
                return False
            self.in_flight += 1
            return True

    def refuse(self) -> None:
        """Count one call refused before it could ask for a slot (REST sheds before reading the body)."""
        with self._lock:
            self._count_shed()

    def _count_shed(self) -> None:
        # With the lock held: one more refusal, and the count logged once every SHED_LOG_PERIOD seconds.
        self.shed += 1
        now = time.monotonic()
        if now - self._logged_at >= SHED_LOG_PERIOD:
            log.warning(
                "overloaded: %d requests shed in the last %.0f s (--max_in_flight=%d)",
                self.shed - self._logged_shed,
                now - self._logged_at,
                self.limit,
            )
            self._logged_shed, self._logged_at = self.shed, now

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    @contextmanager
    def slot(self) -> Iterator[None]:
        if not self.try_enter():
            raise Overloaded(self.message)
        try:
            yield
        finally:
            self.leave()
