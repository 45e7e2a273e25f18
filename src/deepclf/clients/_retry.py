"""Deadlines and retries, decided without I/O: a client asks, then sleeps and sends itself.

``CallState`` is one call under its deadline and ``RetryPolicy``: how long each attempt may take, how long to back
off after a failure, or that the call is over (it raises); ``RetryBudget`` is what all the calls of one client
may still retry (gRPC's retry throttling); ``WaitState`` is the same for the polls of ``wait_until_available``;
``RoundRobin`` hands out several targets in turn::

    policy = RetryPolicy(initial_backoff=0.1, max_backoff=0.5, jitter=0.0)
    [policy.backoff(n, rand=0.0) for n in (1, 2, 3, 4)]     # [0.1, 0.2, 0.4, 0.5]: seconds after attempt n

Why a budget as well as backoff: backoff spaces one call's retries, but when a server is overloaded every call
fails, and each one retrying multiplies the load by up to ``max_attempts``. The budget lets retries be at most
about ``retry_budget_ratio`` of the successful calls (plus a burst of ``retry_budget_tokens / 2``), so a client can
never turn an overload into a storm, while a lone failure on a healthy server is still retried.
"""

from __future__ import annotations

import itertools
import math
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from deepclf.clients._addressing import ModelKey
from deepclf.clients._errors import ConnectError, TimeoutError, is_retryable
from deepclf.clients._models import ModelStatus
from deepclf.errors import UsageError
from deepclf.protocol.errors import ServingError

T = TypeVar("T")


class Deadline:
    """A point in time a call must finish by; ``remaining()`` is what each attempt may still use."""

    __slots__ = ("_clock", "_end", "timeout")

    def __init__(self, timeout: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout = check_timeout(timeout)
        self._clock = clock
        self._end = clock() + self.timeout

    def remaining(self) -> float:
        """Seconds left (0.0 once passed)."""
        return max(0.0, self._end - self._clock())


def check_timeout(timeout: Any, what: str = "timeout") -> float:
    """A deadline in seconds must be a positive finite number; say so, echoing the value, when it is not."""
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not (0 < timeout < math.inf):
        raise UsageError(f"{what} must be a positive number of seconds, got {timeout!r}")
    return float(timeout)


@dataclass(frozen=True)
class RetryPolicy:
    """When and how often a failed call is sent again: exponential backoff with jitter, within a budget.

    Attempt ``n`` (n >= 1) that fails with a retryable error waits ``min(max_backoff, initial_backoff *
    multiplier**(n-1))``, minus up to ``jitter`` of it at random (1.0: "full jitter", spreading clients that failed
    together), then tries again, at most ``max_attempts`` attempts in all, and never past ``max_elapsed`` seconds
    of retrying nor past the call's deadline. When the server says when to come back (REST ``Retry-After``, gRPC
    ``grpc-retry-pushback-ms``), the wait is at least that long; a pushback the deadline cannot wait for ends the
    call at once (``TimeoutError``). ``retry_if`` decides what is retryable (default: UNAVAILABLE / 503 and
    connection failures; never INVALID_ARGUMENT / 400 nor NOT_FOUND / 404).

    Retry budget (gRPC's ``retryThrottling``, shared by all the calls of one client): a token bucket of
    ``retry_budget_tokens`` that each retryable failure empties by 1 and each success refills by
    ``retry_budget_ratio``; retries stop while it is at half or below, and start again as calls succeed
    (``retry_budget_tokens=0``: no budget). Connection failures (no server answered, so a retry loads none) are
    retried by the policy alone, so a client can wait for a server that is starting::

        RestClient(url, retry=RetryPolicy(max_attempts=10, max_backoff=0.5))
        GrpcClient(target, retry=NO_RETRIES)
    """

    max_attempts: int = 5
    initial_backoff: float = 0.05
    max_backoff: float = 1.0
    multiplier: float = 2.0
    jitter: float = 1.0
    max_elapsed: float | None = None
    retry_budget_tokens: float = 10.0
    retry_budget_ratio: float = 0.1
    retry_if: Callable[[BaseException], bool] = field(default=is_retryable, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise UsageError(f"max_attempts must be an integer >= 1, got {self.max_attempts!r}")
        if not (0 <= self.initial_backoff <= self.max_backoff):
            raise UsageError(
                f"backoffs must satisfy 0 <= initial_backoff <= max_backoff, got {self.initial_backoff!r} "
                f"and {self.max_backoff!r}"
            )
        if self.multiplier < 1:
            raise UsageError(f"multiplier must be >= 1, got {self.multiplier!r}")
        if not (0 <= self.jitter <= 1):
            raise UsageError(f"jitter must be in 0..1, got {self.jitter!r}")
        if self.max_elapsed is not None and self.max_elapsed < 0:
            raise UsageError(f"max_elapsed must be >= 0 seconds or None, got {self.max_elapsed!r}")
        if not (0 <= self.retry_budget_tokens < math.inf):
            raise UsageError(f"retry_budget_tokens must be >= 0 (0: no budget), got {self.retry_budget_tokens!r}")
        if not (0 < self.retry_budget_ratio <= self.retry_budget_tokens or self.retry_budget_tokens == 0):
            raise UsageError(f"retry_budget_ratio must be in (0, retry_budget_tokens], got {self.retry_budget_ratio!r}")

    def backoff(self, attempt: int, rand: float) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based); ``rand`` is uniform in [0, 1)."""
        cap = min(self.max_backoff, self.initial_backoff * self.multiplier ** (attempt - 1))
        return cap * (1.0 - self.jitter * rand)


#: One attempt per call: errors surface at once.
NO_RETRIES = RetryPolicy(max_attempts=1)


class RetryBudget:
    """gRPC's retry throttling (gRFC A6), shared by every call of one client, across threads::

        budget = RetryBudget(tokens=10, ratio=0.1)
        budget.failed()            # a retryable failure: -1 token
        budget.allows_retry()      # True while tokens > 5
        budget.succeeded()         # +0.1 token (at most 10)

    ``tokens=0``: no budget (every retry the policy allows is made).
    """

    def __init__(self, tokens: float, ratio: float) -> None:
        self.max_tokens = tokens
        self.ratio = ratio
        self.tokens = tokens
        self._lock = threading.Lock()

    def failed(self) -> None:
        if self.max_tokens:
            with self._lock:
                self.tokens = max(0.0, self.tokens - 1)

    def succeeded(self) -> None:
        if self.max_tokens and self.tokens < self.max_tokens:
            with self._lock:
                self.tokens = min(self.max_tokens, self.tokens + self.ratio)

    def allows_retry(self) -> bool:
        return not self.max_tokens or self.tokens > self.max_tokens / 2


class CallState:
    """One call's attempts under its deadline and retry budget (no I/O: the caller sends and sleeps)."""

    def __init__(
        self,
        policy: RetryPolicy,
        timeout: float,
        *,
        budget: RetryBudget | None = None,
        rand: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy
        self.budget = budget if budget is not None else RetryBudget(0, 0)
        self.deadline = Deadline(timeout, clock)
        self.attempts = 0
        self._rand = rand
        self._clock = clock
        self._started = clock()

    def next_attempt(self) -> float:
        """Count an attempt; return the seconds it may take (what is left of the deadline)."""
        self.attempts += 1
        return max(self.deadline.remaining(), 1e-3)  # a zero timeout would mean "no deadline" to some libraries

    def succeeded(self) -> None:
        """The attempt succeeded: the client's retry budget grows."""
        self.budget.succeeded()

    def backoff(self, error: ServingError) -> float:
        """The seconds to wait before retrying after ``error``; raises ``error`` when the call must end instead.

        Ends on non-retryable errors, spent attempts and a spent retry budget, and when the server asked not to
        retry (a negative pushback); when the next attempt could not start before the deadline (the backoff or
        the server's ``retry_after`` is longer than what is left), raises ``TimeoutError`` naming the attempts and
        the last error (its ``__cause__``).
        """
        policy = self.policy
        if not policy.retry_if(error):
            raise error
        answered = not isinstance(error, ConnectError)  # a server refused it: a retry is more load on it
        if answered:
            self.budget.failed()
        if self.attempts >= policy.max_attempts:
            if self.attempts > 1:
                error.add_note(f"gave up after {self.attempts} attempts (max_attempts={policy.max_attempts})")
            raise error
        pushback = error.retry_after
        if pushback is not None and pushback < 0:
            error.add_note("not retried: the server asked not to (negative grpc-retry-pushback-ms)")
            raise error
        if answered and not self.budget.allows_retry():
            error.add_note(
                f"not retried: this client's retry budget is spent (more than {policy.retry_budget_tokens / 2:g} "
                "failures beyond what its successes earned back); calls are retried again as they succeed"
            )
            raise error
        delay = policy.backoff(self.attempts, self._rand())
        if pushback is not None:
            delay = max(delay, pushback)
        if policy.max_elapsed is not None and self._clock() - self._started + delay > policy.max_elapsed:
            error.add_note(f"gave up after {self.attempts} attempts (max_elapsed={policy.max_elapsed}s)")
            raise error
        if delay >= self.deadline.remaining():
            asked = f"the server asked to retry in {pushback:g}s, " if pushback is not None else ""
            raise TimeoutError(
                f"deadline of {self.deadline.timeout:g}s passed after {self.attempts} attempt(s) ({asked}"
                f"{self.deadline.remaining():.3g}s left); last error: {type(error).__name__}: {error}"
            ) from error
        return delay


class WaitState:
    """One ``wait_until_available`` poll loop (no I/O: the caller asks ``status`` and sleeps).

    Connection failures, UNAVAILABLE and NOT_FOUND (TF Serving's answer while a model loads) mean "not yet";
    the caller passes them to ``failed`` and keeps polling.
    """

    def __init__(self, key: ModelKey, timeout: float, poll_interval: float, attempt_timeout: float) -> None:
        self.key = key
        self.timeout = check_timeout(timeout)
        self._end = time.monotonic() + self.timeout
        self._poll_interval = poll_interval
        self._attempt_timeout = attempt_timeout
        self._last = "no answer yet"

    def next_attempt(self) -> float:
        """The timeout for the next ``status`` call; ``TimeoutError`` once the wait is over."""
        left = self._end - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"model {self.key[0]!r} was not available within {self.timeout:g}s; last: {self._last}")
        return min(left, self._attempt_timeout)

    def ready(self, status: ModelStatus) -> bool:
        """Whether ``status`` shows the model (or the awaited version) AVAILABLE."""
        version = self.key[1]
        if (version in status.available_versions) if version is not None else status.available:
            return True
        self._last = f"versions {[(v.version, v.state) for v in status.versions]}"
        return False

    def failed(self, error: BaseException) -> None:
        self._last = f"{type(error).__name__}: {error}"

    def pause(self) -> float:
        """Seconds to sleep before the next poll."""
        return max(0.0, min(self._poll_interval, self._end - time.monotonic()))


class RoundRobin(Generic[T]):
    """Hands out ``items`` in turn, across threads (``itertools.count`` steps atomically under the GIL)."""

    def __init__(self, items: Iterable[T]) -> None:
        self.items: tuple[T, ...] = tuple(items)
        if not self.items:
            raise UsageError("need at least one target")
        self._counter = itertools.count()

    def next(self) -> T:
        return self.items[next(self._counter) % len(self.items)]

    def __len__(self) -> int:
        return len(self.items)
