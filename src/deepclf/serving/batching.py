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

import bisect
import collections
import itertools
import os
import threading
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deepclf.errors import UsageError
from deepclf.protocol.errors import InvalidInput, Unavailable

QUEUE_FULL = "The batch scheduling queue to which this task was submitted is full"


@dataclass
class BatchingParameters:
    """TF Serving's ``BatchingParameters`` (``--batching_parameters_file``), with its defaults when unset.

    ``parse_batching_parameters(text)`` reads the text proto::

        max_batch_size { value: 128 }
        batch_timeout_micros { value: 0 }
        max_enqueued_batches { value: 1000000 }
        num_batch_threads { value: 8 }
        allowed_batch_sizes: 32
        allowed_batch_sizes: 128
        pad_variable_length_inputs: true
    """

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    allowed_batch_sizes: tuple[int, ...] = ()
    pad_variable_length_inputs: bool = False
    thread_pool_name: str = "batch_threads"
    enable_large_batch_splitting: bool = False
    max_execution_batch_size: int | None = None

    def validate(self, source: str = "batching parameters") -> None:
        """Raise ``UsageError`` (what was wrong, what is expected) as TF Serving refuses the same file."""
        for name in ("max_batch_size", "num_batch_threads", "max_enqueued_batches"):
            value = getattr(self, name)
            if value < 1:
                raise UsageError(f"{source}: {name} must be >= 1, got {value}")
        if self.batch_timeout_micros < 0:
            raise UsageError(f"{source}: batch_timeout_micros must not be negative, got {self.batch_timeout_micros}")
        sizes = self.allowed_batch_sizes
        if sizes:
            if any(b <= a for a, b in itertools.pairwise(sizes)) or sizes[0] < 1:
                raise UsageError(
                    f"{source}: allowed_batch_sizes entries must be positive and monotonically increasing, "
                    f"got {list(sizes)}"
                )
            if sizes[-1] != self.max_batch_size:
                raise UsageError(
                    f"{source}: Last entry in allowed_batch_sizes must match max_batch_size; last entry was "
                    f"{sizes[-1]}; expected {self.max_batch_size}"
                )


#: The ``google.protobuf`` wrapper fields of ``BatchingParameters`` (set only when the file gives them).
_WRAPPED = (
    "max_batch_size",
    "batch_timeout_micros",
    "max_enqueued_batches",
    "num_batch_threads",
    "max_execution_batch_size",
    "thread_pool_name",
    "enable_large_batch_splitting",
)


def parse_batching_parameters(text: str, *, source: str = "<text>") -> BatchingParameters:
    """``BatchingParameters`` from TF Serving's text proto, parsed by protobuf's text format into the message TF
    Serving reads (so every valid spelling is taken: ``allowed_batch_sizes: [1, 2, 4]`` or one per line,
    ``max_batch_size { value: 8 }`` / ``: { ... }`` / ``< ... >``, comments, either quote); ``UsageError``
    naming the file, the line and what was wrong otherwise. Unset fields keep TF Serving's defaults."""
    from deepclf.serving.modelconfig import batching_parameters_class, parse_text_proto  # lazy: protobuf

    msg = parse_text_proto(
        batching_parameters_class(), text, source=source, what="TF Serving BatchingParameters (text format)"
    )
    message: Any = msg  # HasField by a name held in a variable (the stub types it by literal names)
    values: dict[str, object] = {name: getattr(msg, name).value for name in _WRAPPED if message.HasField(name)}
    params = BatchingParameters(**values)  # type: ignore[arg-type]  # names from the message, values typed by it
    params.allowed_batch_sizes = tuple(int(v) for v in msg.allowed_batch_sizes)
    params.pad_variable_length_inputs = bool(msg.pad_variable_length_inputs)
    return params


def load_batching_parameters(path: str | os.PathLike[str]) -> BatchingParameters:
    """Read and validate ``--batching_parameters_file``."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise UsageError(f"--batching_parameters_file {p}: cannot read it ({exc.strerror})") from None
    params = parse_batching_parameters(text, source=str(p))
    params.validate(str(p))
    return params


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
    on_start: Callable[[], None] | None = None  # called when its batch starts (queue wait ends)


#: TF Serving pads only tensors of rank 1 to 6 (batching_util.h).
MAX_PADDED_RANK = 6


def batch_key(
    prefix: tuple[Hashable, ...], inputs: Mapping[str, np.ndarray], *, pad_variable_length: bool = False
) -> tuple[Hashable, ...] | None:
    """The queue key for ``inputs`` (``prefix`` + each input's name, dtype and per-item shape), or ``None`` when
    the request cannot be merged (a scalar input, or inputs whose batch sizes differ).

    ``pad_variable_length`` (``pad_variable_length_inputs``): requests whose inputs differ only in their non-batch
    dimensions share a queue (the key holds each input's rank instead of its shape), and ``Batcher`` pads them.
    """
    rows = {int(v.shape[0]) for v in inputs.values() if v.ndim >= 1}
    if not inputs or len(rows) != 1 or any(v.ndim == 0 for v in inputs.values()) or 0 in rows:
        return None
    if pad_variable_length and all(v.ndim <= MAX_PADDED_RANK for v in inputs.values()):
        return (*prefix, "padded", tuple(sorted((k, v.dtype.str, v.ndim) for k, v in inputs.items())))
    return (*prefix, tuple(sorted((k, v.dtype.str, v.shape[1:]) for k, v in inputs.items())))


def pad_to(arr: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """``arr`` padded at the end of every non-batch dimension to ``shape[1:]`` with its own first element, as TF
    Serving's ``pad_variable_length_inputs`` does (batching_util.cc)."""
    if tuple(arr.shape[1:]) == tuple(shape[1:]):
        return arr
    out = np.full((arr.shape[0], *shape[1:]), arr.reshape(-1)[0] if arr.size else 0, dtype=arr.dtype)
    out[tuple(slice(0, d) for d in arr.shape)] = arr
    return out


def _concatenate(parts: list[np.ndarray]) -> np.ndarray:
    """Rows of several requests in one array; with different non-batch dims (only queued together under
    ``pad_variable_length_inputs``) each part is first padded to the largest."""
    if len({p.shape[1:] for p in parts}) > 1:
        top = [max(p.shape[d] for p in parts) for d in range(parts[0].ndim)]
        parts = [pad_to(p, top) for p in parts]
    return np.concatenate(parts)


class Batcher:
    """Merges concurrent ``submit`` calls with the same key into batched runner calls on ``num_threads`` threads."""

    def __init__(
        self,
        *,
        max_batch_size: int = 32,
        timeout_s: float = 0.001,
        num_threads: int = 2,
        max_enqueued_batches: int = 100,
        allowed_batch_sizes: Sequence[int] = (),
        pad_variable_length_inputs: bool = False,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        if max_enqueued_batches < 1:
            raise UsageError(f"max_enqueued_batches must be >= 1, got {max_enqueued_batches}")
        self.max_batch_size = max_batch_size
        self.timeout_s = timeout_s
        self.max_enqueued_batches = max_enqueued_batches
        self.max_enqueued = max_enqueued_batches * max_batch_size
        self.allowed_batch_sizes = tuple(allowed_batch_sizes)
        self.pad_variable_length_inputs = pad_variable_length_inputs
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

    def submit(
        self,
        key: Hashable,
        run: RunFn,
        inputs: Mapping[str, np.ndarray],
        signature: str,
        *,
        on_start: Callable[[], None] | None = None,
    ) -> Future[Outputs]:
        """Queue one request; its future gets the request's own slice of the outputs (or its exception).
        ``on_start`` is called when the batch it is in starts (its wait in the queue ends)."""
        rows = int(next(iter(inputs.values())).shape[0])
        if rows > self.max_batch_size:
            raise InvalidInput(f"Task size {rows} is larger than maximum input batch size {self.max_batch_size}")
        item = _Item(run, inputs, signature, rows, on_start=on_start)
        with self._cond:
            if self._closed:
                raise Unavailable("the server is shutting down; retry against another replica")
            if self._pending + rows > self.max_enqueued:
                batches = -(-self._pending // self.max_batch_size)
                raise Unavailable(
                    f"{QUEUE_FULL}; currently {batches} batches enqueued and max_enqueued_batches is "
                    f"{self.max_enqueued_batches}"
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
            batch: list[_Item] = []
            rows = taken = 0
            while q and (not batch or rows + q[0].rows <= self.max_batch_size):
                item = q.popleft()
                taken += item.rows
                if item.future.cancelled():  # its caller gave up (deadline, disconnect): never run it
                    continue
                batch.append(item)
                rows += item.rows
            self._queued_rows[ready_key] -= taken
            if not q:
                del self._queues[ready_key], self._queued_rows[ready_key]
            self._pending -= taken
            if not batch:
                continue
            return batch

    def _loop(self) -> None:
        while True:
            with self._cond:
                batch = self._take()
            if batch is None:
                return
            self._run(batch)

    def _run(self, batch: list[_Item]) -> None:
        for item in batch:
            if item.on_start is not None:
                item.on_start()
        if len(batch) == 1 and self.padded_size(batch[0].rows) == batch[0].rows:
            self._run_one(batch[0])
            return
        first = batch[0]
        try:
            total = sum(i.rows for i in batch)
            padded = self.padded_size(total)
            merged = {name: _concatenate([i.inputs[name] for i in batch]) for name in first.inputs}
            if padded > total:  # TF Serving pads with copies of a row of the last task; dropped from outputs
                first_of_last = total - batch[-1].rows  # its row as merged (padded to the batch's dims)
                merged = {
                    k: np.concatenate([v, np.repeat(v[first_of_last : first_of_last + 1], padded - total, axis=0)])
                    for k, v in merged.items()
                }
            outputs = first.run(merged, first.signature)
            if any(np.ndim(v) == 0 or np.shape(v)[0] != padded for v in outputs.values()):
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

    def padded_size(self, rows: int) -> int:
        """The smallest allowed batch size >= ``rows`` (``rows`` itself without ``allowed_batch_sizes``)."""
        if not self.allowed_batch_sizes:
            return rows
        i = bisect.bisect_left(self.allowed_batch_sizes, rows)
        return self.allowed_batch_sizes[i] if i < len(self.allowed_batch_sizes) else rows

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
