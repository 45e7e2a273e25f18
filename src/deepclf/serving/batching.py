"""Server-side micro-batching: concurrent requests to one model/version/signature merged into one runner call.

Like TF Serving's ``--enable_batching`` (``max_batch_size``, ``batch_timeout_micros``, ``num_batch_threads``,
``max_enqueued_batches``): a request's inputs join a queue keyed by what can be concatenated (model, version,
signature, and each input's dtype and per-item shape); a batch thread takes the oldest queue once it holds
``max_batch_size`` items or its oldest request has waited ``batch_timeout_micros``, concatenates the inputs along
the batch axis, makes one runner call and splits the outputs back::

    batcher = Batcher(max_batch_size=32, timeout_s=0.001, num_threads=2)
    future = batcher.submit(key, runner.run, {"image": batch}, "serving_default")   # concurrent.futures.Future
    outputs = future.result()
    batcher.close()

Why a failed merged call is retried one request at a time: one request with a bad value (say NaN pixels) must
get its own error, not fail the requests it happened to share a batch with.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Hashable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from deepclf.protocol.errors import ResourceExhausted, Unavailable

RunFn = Callable[[Mapping[str, np.ndarray], str], Mapping[str, np.ndarray]]
#: What a request's future holds: its own outputs.
Outputs = Mapping[str, np.ndarray]


@dataclass
class _Item:
    run: RunFn
    inputs: Mapping[str, np.ndarray]
    signature: str
    rows: int
    future: Future[Outputs] = field(default_factory=Future)
    enqueued: float = field(default_factory=time.monotonic)


def batch_key(prefix: tuple[Hashable, ...], inputs: Mapping[str, np.ndarray]) -> tuple[Hashable, ...] | None:
    """The queue key for ``inputs`` (``prefix`` + each input's name, dtype and per-item shape), or ``None`` when
    the request cannot be merged (a scalar input, or inputs whose batch sizes differ)."""
    rows = {int(v.shape[0]) for v in inputs.values() if v.ndim >= 1}
    if not inputs or len(rows) != 1 or any(v.ndim == 0 for v in inputs.values()) or 0 in rows:
        return None
    return (*prefix, tuple(sorted((k, v.dtype.str, v.shape[1:]) for k, v in inputs.items())))


class Batcher:
    """Merges concurrent ``submit`` calls with the same key into batched runner calls on ``num_threads`` threads."""

    def __init__(
        self,
        *,
        max_batch_size: int = 32,
        timeout_s: float = 0.001,
        num_threads: int = 2,
        max_enqueued_batches: int = 100,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.max_batch_size = max_batch_size
        self.timeout_s = timeout_s
        self.max_enqueued = max_enqueued_batches * max_batch_size
        self._on_batch = on_batch
        self._queues: collections.OrderedDict[Hashable, collections.deque[_Item]] = collections.OrderedDict()
        self._queued_rows: dict[Hashable, int] = {}  # rows waiting per queue, kept as items come and go
        self._pending = 0
        self._cond = threading.Condition()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._loop, name=f"deepclf-batch-{i}", daemon=True) for i in range(num_threads)
        ]
        for t in self._threads:
            t.start()

    def submit(self, key: Hashable, run: RunFn, inputs: Mapping[str, np.ndarray], signature: str) -> Future[Outputs]:
        """Queue one request; its future gets the request's own slice of the outputs (or its exception)."""
        rows = int(next(iter(inputs.values())).shape[0])
        item = _Item(run, inputs, signature, rows)
        with self._cond:
            if self._closed:
                raise Unavailable("the server is shutting down; retry against another replica")
            if self._pending + rows > self.max_enqueued:
                raise ResourceExhausted(
                    f"the batching queue is full ({self._pending} items waiting, limit {self.max_enqueued}); retry later"
                )
            self._queues.setdefault(key, collections.deque()).append(item)
            self._queued_rows[key] = self._queued_rows.get(key, 0) + rows
            self._pending += rows
            self._cond.notify()
        return item.future

    def _take(self) -> list[_Item] | None:
        # Called with the lock held: wait for a queue that is full or whose head has waited long enough.
        while True:
            if not self._queues:
                if self._closed:
                    return None
                self._cond.wait()
                continue
            now = time.monotonic()
            ready_key, wait = None, None
            for key, q in self._queues.items():
                left = q[0].enqueued + self.timeout_s - now
                if self._queued_rows[key] >= self.max_batch_size or left <= 0 or self._closed:
                    ready_key = key
                    break
                wait = left if wait is None else min(wait, left)
            if ready_key is None:
                self._cond.wait(wait)
                continue
            q = self._queues[ready_key]
            batch = [q.popleft()]
            rows = batch[0].rows
            while q and rows + q[0].rows <= self.max_batch_size:
                item = q.popleft()
                batch.append(item)
                rows += item.rows
            self._queued_rows[ready_key] -= rows
            if not q:
                del self._queues[ready_key], self._queued_rows[ready_key]
            self._pending -= rows
            return batch

    def _loop(self) -> None:
        while True:
            with self._cond:
                batch = self._take()
            if batch is None:
                return
            self._run(batch)

    def _run(self, batch: list[_Item]) -> None:
        if len(batch) == 1:
            self._run_one(batch[0])
            return
        first = batch[0]
        try:
            merged = {name: np.concatenate([i.inputs[name] for i in batch]) for name in first.inputs}
            outputs = first.run(merged, first.signature)
            total = sum(i.rows for i in batch)
            if any(np.ndim(v) == 0 or np.shape(v)[0] != total for v in outputs.values()):
                raise ValueError("outputs are not batch-major")  # cannot be split back: run one by one
        except BaseException:  # noqa: BLE001 - each request retried alone gets its own answer or error
            for item in batch:
                self._run_one(item)
            return
        if self._on_batch is not None:
            self._on_batch(total)
        start = 0
        for item in batch:
            stop = start + item.rows
            if item.future.set_running_or_notify_cancel():
                item.future.set_result({k: v[start:stop] for k, v in outputs.items()})
            start = stop

    def _run_one(self, item: _Item) -> None:
        if not item.future.set_running_or_notify_cancel():
            return
        try:
            result = item.run(item.inputs, item.signature)
        except BaseException as exc:  # noqa: BLE001 - delivered to the waiting request
            item.future.set_exception(exc)
        else:
            if self._on_batch is not None:
                self._on_batch(item.rows)
            item.future.set_result(result)

    def close(self, timeout: float | None = 10.0) -> None:
        """Run what is queued, then stop the batch threads."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout)
