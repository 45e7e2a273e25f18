"""Admission by time: an inference call waits in a queue bounded by memory, and is refused only when that queue is
full or when it could not start before its deadline.

Why not refuse beyond a fixed count of calls in flight: that keeps latency low by throwing work away, and clients
that retry at once turn every fast refusal into a new request, so the server spends its CPU refusing instead of
serving. TF Serving queues instead, and refuses only when its queue is full or a deadline has passed; so does
this::

    admission = Admission(max_in_flight=1024, max_queued_bytes=32 << 20)
    ticket = admission.admit(len(body), deadline=time.monotonic() + 30)   # or raises Overloaded (UNAVAILABLE)
    try:
        ticket.begin()          # its work starts on a worker: the queue wait is measured
        ...                     # decode, infer, encode
    finally:
        ticket.finish()         # the slot and the bytes are given back

A call is refused (``Overloaded``: UNAVAILABLE / 503, with ``retry_after`` seconds for ``Retry-After`` and gRPC's
``grpc-retry-pushback-ms``) when:

- ``queue_full``: ``max_in_flight`` calls are admitted and not answered (queued + running), or their request
  bytes plus this one's would pass ``max_queued_bytes`` (a lone call is always admitted, whatever its size);
- ``deadline``: it could not start before its deadline: the calls queued ahead of it times the time the queue
  takes to drain one call (an EWMA of the intervals between completions; on one busy worker that is the service
  time, on several the service time over their number, with batching the batch time over its size).

The estimate is deliberately simple: ``queued x drain``; it is checked against each call's own deadline (REST:
``--rest_api_timeout_in_ms``; gRPC: the call's deadline, or the same default when it has none).

Status, metadata, health and metrics calls never pass through admission: an overloaded server still answers them.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

from deepclf.protocol.errors import Unavailable

log = logging.getLogger("deepclf.serving")

#: Seconds between the log lines that count refusals (one line per refusal would make an overload worse).
SHED_LOG_PERIOD = 10.0

#: Calls admitted at once (queued + running) when ``--max_in_flight`` is not set. Sized by memory, not speed: a
#: queued call without its body holds a few KB (its task or thread, the parsed head, a future), so 1,024 of them
#: stay well under the 64 MB of growth the hostile suite and the overload benchmark allow, and 1,024 calls of a
#: few ms each drain in seconds, well inside the default 30 s deadline. Beyond it: ``queue_full``.
DEFAULT_MAX_IN_FLIGHT = 1024
#: Request bytes of admitted calls (``--max_queued_bytes``): half of the 64 MB of RSS growth the hostile suite and
#: the overload benchmark hold the server to; the other half is for the calls being decoded (at most ``--threads``
#: at a time, each within ``--max_request_bytes``) and the allocator's slack.
DEFAULT_MAX_QUEUED_BYTES = 32 * 1024 * 1024
#: Weight of the newest interval in the drain-time EWMA: about the last 20 completions count.
DRAIN_EWMA_ALPHA = 0.05
#: The drain-time estimate before any call has finished (seconds).
INITIAL_DRAIN_S = 0.005
#: ``retry_after`` bounds (seconds): HTTP's ``Retry-After`` takes whole seconds, and a client told to wait
#: minutes would rather go to another replica.
MIN_RETRY_AFTER_S = 0.1
MAX_RETRY_AFTER_S = 30.0

QUEUE_FULL = "queue_full"
DEADLINE = "deadline"
REASONS = (QUEUE_FULL, DEADLINE)


class Overloaded(Unavailable):
    """The call was refused before any work: UNAVAILABLE / 503 with ``retry_after`` seconds and a ``reason``."""

    def __init__(self, message: str, reason: str, retry_after: float) -> None:
        super().__init__(message)
        self.reason = reason
        self.retry_after = retry_after
        self.wait_s = retry_after  # the same, never None (``retry_after`` is optional on ServingError)

    @property
    def retry_after_header(self) -> str:
        """``Retry-After`` in whole seconds (HTTP has no fractions), at least 1."""
        return str(max(1, math.ceil(self.wait_s)))

    @property
    def pushback_ms(self) -> str:
        """gRPC's ``grpc-retry-pushback-ms`` trailing metadata value."""
        return str(int(self.wait_s * 1000))


class Ticket:
    """One admitted call: ``begin()`` when its work starts on a worker (idempotent), ``finish()`` once answered."""

    __slots__ = ("_admission", "_done", "admitted", "nbytes", "started")

    def __init__(self, admission: Admission, nbytes: int, admitted: float) -> None:
        self._admission = admission
        self.nbytes = nbytes
        self.admitted = admitted
        self.started: float | None = None
        self._done = False

    def begin(self) -> None:
        if self.started is None:
            self._admission._begin(self)

    def finish(self) -> None:
        if not self._done:
            self._done = True
            self._admission._finish(self)


class Admission:
    """Admits inference calls by memory and time (see the module docstring); thread-safe.

    ``on_wait(seconds)``: called with each call's queue wait (admitted -> work started), for the metrics.
    ``clock``: ``time.monotonic`` (tests pass their own).
    """

    def __init__(
        self,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        max_queued_bytes: int = DEFAULT_MAX_QUEUED_BYTES,
        *,
        on_wait: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
        if max_queued_bytes < 1:
            raise ValueError(f"max_queued_bytes must be >= 1, got {max_queued_bytes}")
        self.max_in_flight = max_in_flight
        self.max_queued_bytes = max_queued_bytes
        self.in_flight = 0  # admitted, not finished (queued + running)
        self.queued = 0  # admitted, work not started
        self.queued_bytes = 0  # request bytes of the admitted calls
        self.drain_s = INITIAL_DRAIN_S
        self.refused = dict.fromkeys(REASONS, 0)  # since start (also in the Prometheus metrics)
        self._last_done: float | None = None
        self._on_wait = on_wait
        self._clock = clock
        self._lock = threading.Lock()
        self._logged, self._logged_at = 0, clock()

    def estimated_wait(self) -> float:
        """Seconds a call admitted now would wait before its work starts: the calls queued ahead x the drain time."""
        return self.queued * self.drain_s

    def admit(self, nbytes: int, deadline: float | None) -> Ticket:
        """A ``Ticket`` for a call of ``nbytes`` request bytes that must start by ``deadline`` (``clock()`` time;
        ``None``: no deadline), or ``Overloaded`` at once."""
        with self._lock:
            now = self._clock()
            wait = self.queued * self.drain_s
            if self.in_flight >= self.max_in_flight:
                raise self._refuse(
                    QUEUE_FULL,
                    now,
                    wait,
                    f"the server is overloaded: its queue is full ({self.in_flight} requests queued or running, "
                    f"--max_in_flight={self.max_in_flight})",
                )
            if self.in_flight and self.queued_bytes + nbytes > self.max_queued_bytes:
                raise self._refuse(
                    QUEUE_FULL,
                    now,
                    wait,
                    f"the server is overloaded: its queue is full ({self.queued_bytes} bytes of requests queued "
                    f"or running, this one {nbytes} more; --max_queued_bytes={self.max_queued_bytes})",
                )
            if deadline is not None and now + wait > deadline:
                raise self._refuse(
                    DEADLINE,
                    now,
                    wait,
                    f"the server is overloaded: this request would wait about {wait:.3g} s to start, past its "
                    f"deadline ({max(deadline - now, 0.0):.3g} s left; REST: --rest_api_timeout_in_ms, gRPC: "
                    "the call's deadline)",
                )
            self.in_flight += 1
            self.queued += 1
            self.queued_bytes += nbytes
            return Ticket(self, nbytes, now)

    def _refuse(self, reason: str, now: float, wait: float, message: str) -> Overloaded:
        # With the lock held: counted, logged once every SHED_LOG_PERIOD seconds, and the error to raise.
        self.refused[reason] += 1
        total = sum(self.refused.values())
        if now - self._logged_at >= SHED_LOG_PERIOD:
            log.warning(
                "overloaded: %d requests refused in the last %.0f s (queue full: %d, deadline: %d since start; "
                "%d in flight, about %.3g s of queue)",
                total - self._logged,
                now - self._logged_at,
                self.refused[QUEUE_FULL],
                self.refused[DEADLINE],
                self.in_flight,
                wait,
            )
            self._logged, self._logged_at = total, now
        retry_after = min(max(wait, MIN_RETRY_AFTER_S), MAX_RETRY_AFTER_S)
        return Overloaded(f"{message}; retry in {retry_after:.3g} s or on another replica", reason, retry_after)

    def _begin(self, ticket: Ticket) -> None:
        with self._lock:
            if ticket.started is not None:
                return
            ticket.started = now = self._clock()
            self.queued -= 1
        if self._on_wait is not None:
            self._on_wait(now - ticket.admitted)

    def _finish(self, ticket: Ticket) -> None:
        with self._lock:
            now = self._clock()
            if ticket.started is None:  # refused or failed before its work started
                self.queued -= 1
            else:
                # The interval since the previous completion, or since this call started when the server was
                # idle in between: on a busy server, 1 / throughput.
                since = ticket.started if self._last_done is None else max(self._last_done, ticket.started)
                self.drain_s += DRAIN_EWMA_ALPHA * (now - since - self.drain_s)
                self._last_done = now
            self.in_flight -= 1
            self.queued_bytes -= ticket.nbytes
