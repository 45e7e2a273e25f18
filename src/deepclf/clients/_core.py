"""The I/O-free core every client shares: requests built, answers read, retries decided, images prepared.

Nothing here opens a socket or sleeps; the four clients (REST/gRPC x sync/async) are thin loops around it, in
the style of httpx over h11: the sync client ``time.sleep``s and the async one ``await asyncio.sleep``s the same
backoff the core computes, and both send the same bytes::

    call = CallState(RetryPolicy(), timeout=5.0)
    while True:
        try:
            return send(request, timeout=call.next_attempt())     # transport-specific, maps its errors
        except ServingError as err:
            time.sleep(call.backoff(err))                         # re-raises when the call must end

``ClientCore`` is the state each client holds (default deadline, retry policy, caches, learned labels); the rest
of the core is one module a topic: ``_retry`` (deadlines, ``RetryPolicy``, ``CallState``), ``_targets`` (server
URLs), ``_addressing`` (``ModelKey``, inputs), ``_rest_codec`` and ``_grpc_codec`` (each transport's requests and
answers), ``_metadata`` (metadata, status and manifest answers, read alike for both) and ``_classify``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from deepclf.clients._addressing import ModelKey
from deepclf.clients._classify import LabelBook, classifications, probabilities_of
from deepclf.clients._models import ModelMetadata
from deepclf.clients._retry import CallState, RetryBudget, RetryPolicy, WaitState, check_timeout
from deepclf.errors import UsageError
from deepclf.manifest import Manifest
from deepclf.signatures import Classification

#: Client-wide default deadline for one call, retries included (seconds).
DEFAULT_TIMEOUT = 10.0


class ClientCore:
    """State every client keeps: default deadline, retry policy and budget, metadata cache, learned labels."""

    def __init__(self, *, timeout: float = DEFAULT_TIMEOUT, retry: RetryPolicy | None = None) -> None:
        self.timeout = check_timeout(timeout)
        self.retry = retry if retry is not None else RetryPolicy()
        if not isinstance(self.retry, RetryPolicy):
            raise UsageError(f"retry must be a RetryPolicy, got {type(retry).__name__}")
        #: shared by every call of this client (its threads or tasks): retries stay a bounded share of the calls
        self.retry_budget = RetryBudget(self.retry.retry_budget_tokens, self.retry.retry_budget_ratio)
        self.metadata_cache: dict[ModelKey, ModelMetadata] = {}
        #: the server's manifest per model/version/label; None: the server does not offer it (TF Serving)
        self.manifest_cache: dict[ModelKey, Manifest | None] = {}
        self.labels = LabelBook()

    def wait(self, key: ModelKey, timeout: float, poll_interval: float) -> WaitState:
        """A new ``wait_until_available``: each ``status`` poll gets at most the client's default deadline."""
        return WaitState(key, timeout, poll_interval, self.timeout)

    def classified(
        self,
        key: ModelKey,
        inputs: Mapping[str, np.ndarray],
        outputs: Mapping[str, np.ndarray],
        k: int,
        labels: Sequence[str] | None,
        vocabulary: Sequence[str] | None,
    ) -> list[Classification]:
        """The ``Classification``s of one ``classify`` batch from the server's answer to it."""
        probs = probabilities_of(outputs, len(next(iter(inputs.values()))))
        return classifications(probs, self.labels.names(key, probs.shape[1], labels, vocabulary), k)

    def start(self, timeout: float | None) -> CallState:
        """A new call: ``timeout`` seconds (``None``: the client's default), retried per the policy."""
        timeout = self.timeout if timeout is None else check_timeout(timeout)
        return CallState(self.retry, timeout, budget=self.retry_budget)
