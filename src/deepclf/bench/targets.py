"""What a benchmark measures: a *target*, one model in one format behind one transport, named by a spec string.

Every target turns the same ``Batch`` (float32 images plus their encoded bytes) into probabilities ``[N, C]``, so
the latency scenarios and the parity check treat an in-process Keras model and a gRPC server alike::

    t = parse_target("tflite:models/flowers/1?variant=int8&threads=2")    # deepclf.bench.specs
    t.open()                                  # load the model / connect; raises -> reported as a failed target
    probs = t.predict(Batch.from_sources(["rose.jpg"], t.input_size))
    t.close()

This module holds the base classes (``Batch``, ``Target``, ``FunctionTarget``); the targets a spec string builds
live in ``deepclf.bench.local_targets`` (Keras, SavedModel, LiteRT in process) and ``deepclf.bench.remote_targets``
(REST/gRPC servers), and the spec strings themselves in ``deepclf.bench.specs``.

Targets are used from several threads at once (concurrency sweeps, the server scenario). Anything that is not
thread-safe (a LiteRT interpreter, an HTTP session) is created per thread, lazily, on that thread's first call:
the scenarios warm every worker up before they measure, so that cost never lands in a measurement.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from deepclf.errors import ModelFormatError
from deepclf.preprocessing import encode_image, preprocess


@dataclass(frozen=True)
class Batch:
    """The same images in both forms a target may send: float32 ``[N, H, W, 3]`` (0..255) and encoded bytes."""

    tensor: np.ndarray
    encoded: tuple[bytes, ...] = ()

    def __len__(self) -> int:
        return int(self.tensor.shape[0])

    @classmethod
    def from_sources(cls, sources: Sequence[Any], size: tuple[int, int]) -> Batch:
        """Preprocess image sources (paths, bytes, arrays) once with the project's contract; keep their bytes."""
        tensor = np.stack([preprocess(s, size) for s in sources]).astype(np.float32, copy=False)
        return cls(tensor, tuple(encode_image(s) for s in sources))

    def take(self, idx: Sequence[int] | slice) -> Batch:
        """A sub-batch (rows ``idx``)."""
        if isinstance(idx, slice):
            return Batch(self.tensor[idx], self.encoded[idx])
        idx = list(idx)
        return Batch(self.tensor[idx], tuple(self.encoded[i] for i in idx) if self.encoded else ())

    def repeat_to(self, n: int) -> Batch:
        """A batch of exactly ``n`` rows, cycling through these images (for offline-scenario batches)."""
        return self.take([i % len(self) for i in range(n)])


class Target:
    """Base class: one model behind one transport. Subclasses implement ``_open``, ``_predict``, ``_close``.

    Attributes that reports use: ``spec`` (as given), ``name`` (short, unique in a report), ``kind`` (parity class:
    ``reference`` for Keras, ``float`` for float conversions, ``quantized``, ``served`` for remote endpoints),
    ``labels`` and ``input_size`` (known after ``open`` for local targets), ``metrics_url`` (Prometheus, remote).
    """

    kind: str = "other"

    def __init__(self, spec: str, name: str | None = None) -> None:
        self.spec = spec
        self.name = name or spec
        self.labels: list[str] | None = None
        self.input_size: tuple[int, int] | None = None
        self.metrics_url: str | None = None
        self.send = "tensor"
        self._local = threading.local()
        self._opened = False

    # -- lifecycle -------------------------------------------------------------------------------------------
    def open(self) -> None:
        """Load the model or connect (idempotent). Raises whatever went wrong; callers report it."""
        if not self._opened:
            self._open()
            self._opened = True

    def close(self) -> None:
        """Release what ``open`` took (idempotent, never raises)."""
        if self._opened:
            self._opened = False
            with contextlib.suppress(Exception):  # closing must never hide the result being reported
                self._close()

    def __enter__(self) -> Target:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def predict(self, batch: Batch) -> np.ndarray:
        """Probabilities ``[N, C]`` (float32) for the batch; safe to call from several threads."""
        out = np.asarray(self._predict(batch))
        if out.ndim != 2 or out.shape[0] != len(batch):
            raise ModelFormatError(
                f"{self.name}: expected probabilities of shape [{len(batch)}, C], got shape {tuple(out.shape)}"
            )
        return out

    def info(self) -> dict[str, Any]:
        """What the report says about the target (format, variant, transport, threads, delegate, size...)."""
        return {"spec": self.spec, "name": self.name, "kind": self.kind, "send": self.send}

    # -- for subclasses ----------------------------------------------------------------------------------------
    def _open(self) -> None:  # pragma: no cover - trivial default
        pass

    def _close(self) -> None:  # pragma: no cover - trivial default
        pass

    def _predict(self, batch: Batch) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _per_thread(self, factory: Callable[[], Any]) -> Any:
        """The calling thread's own instance of something that is not thread-safe (made on first use)."""
        obj = getattr(self._local, "obj", None)
        if obj is None:
            obj = factory()
            self._local.obj = obj
        return obj


class FunctionTarget(Target):
    """A target around a plain function ``Batch -> probabilities``; for tests, wrappers and ad-hoc comparisons.

    ``FunctionTarget("permuted", lambda b: inner.predict(b)[:, ::-1], labels=inner.labels)``
    """

    def __init__(
        self,
        name: str,
        fn: Callable[[Batch], np.ndarray],
        *,
        kind: str = "other",
        labels: Sequence[str] | None = None,
        input_size: tuple[int, int] | None = None,
        info: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(f"function:{name}", name)
        self._fn = fn
        self.kind = kind
        self.labels = list(labels) if labels is not None else None
        self.input_size = input_size
        self._info = dict(info or {})

    def _predict(self, batch: Batch) -> np.ndarray:
        return self._fn(batch)

    def info(self) -> dict[str, Any]:
        return {**super().info(), "format": "function", **self._info}
