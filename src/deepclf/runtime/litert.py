"""The LiteRT runner: runs any TFLite variant (fp32, fp16, dynamic, int8) with ``ai_edge_litert``, no TensorFlow.

The TFLite files carry one signature, ``serving_default``: input ``image`` [batch, H, W, 3] and outputs
``probabilities`` [batch, C] and ``classes`` [batch] (TFLite builtins have no string outputs, so ``labels`` is
mapped from ``classes`` with the manifest here). ``predict_image_bytes`` decodes with ``deepclf.preprocessing``.

Why it is built the way it is:

* A TFLite interpreter is not thread-safe, so a call borrows a set of interpreters nobody else is using
  (``InterpreterPool``) and gives it back when done: there are as many sets as calls ever ran at once (the edge
  server's inference threads), whichever threads make them. The set built at load time (to check the file) is
  the first one lent, so warm-up at load and the first request share one interpreter instead of allocating two
  (its size: ``python benchmarks/micro.py interpreter-memory model.tflite``, below).
* Memory is bounded whatever the request's batch size: interpreters exist only for a fixed set of batch sizes
  (``invoke_sizes``, by default just 1), each allocated once per set, and a batch of N rows runs as chunks of
  those sizes. An interpreter grows with its batch size (``python benchmarks/micro.py interpreter-memory
  model.tflite``; recorded in docs/results/2026-11-30-memory.md), while the time per row is roughly flat, so a
  client sending 2,000 rows costs time, never a 2,000-row interpreter. The server prepares its ``allowed_batch_sizes`` instead when batching is on.
* The int8 variant takes uint8 pixels and returns uint8 probabilities; we quantize and dequantize with each
  tensor's own scale and zero point, so callers always see float32 0..255 in and probabilities out.
* XNNPACK is LiteRT's default CPU delegate; ``num_threads`` sets its thread pool (and the interpreter's).

Usage::

    r = LiteRTRunner("models/flowers/3/model_int8.tflite", num_threads=2)
    r.predict(preprocess_batch(["rose.jpg"], r.manifest.input))
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

from deepclf.errors import MissingDependencyError, ModelFormatError
from deepclf.manifest import INPUT_FLOAT, OUTPUT_CLASSES, OUTPUT_PROBABILITIES, SIGNATURE_FLOAT, Manifest
from deepclf.runtime.base import Runner
from deepclf.variants import DEFAULT_VARIANT, RUNNER_FORMAT_PREFIX, variant_of_file

#: The batch sizes interpreters are prepared for when nothing else is asked (see the module docstring).
DEFAULT_INVOKE_SIZES: tuple[int, ...] = (1,)


def open_interpreter(
    content: bytes, path: str | os.PathLike[str], *, num_threads: int | None = None, allocate: bool = False
) -> Any:  # -> ai_edge_litert.interpreter.Interpreter
    """A LiteRT interpreter over a model file's bytes (``allocate``: allocate its tensors now, at the default shapes).

    Shared by every LiteRT runner: a missing ``ai-edge-litert`` is a ``MissingDependencyError`` and a file LiteRT
    cannot load (or allocate) a ``ModelFormatError`` naming ``path``.
    """
    try:
        from ai_edge_litert.interpreter import Interpreter  # optional 'edge' extra
    except ImportError as exc:  # pragma: no cover - the test environment has it
        raise MissingDependencyError("ai-edge-litert", "edge", "running a TFLite model") from exc
    try:
        interpreter = Interpreter(model_content=content, num_threads=num_threads)
        if allocate:
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ModelFormatError(f"{path}: not a loadable TFLite model ({exc})") from exc
    return interpreter


_T = TypeVar("_T")


class InterpreterPool(Generic[_T]):
    """Interpreters (or sets of them) lent to one call at a time, whichever thread makes it: interpreters are not
    thread-safe. An idle one is taken, or ``make()`` builds a new one, and it goes back when the call is done, so
    there are as many as calls ever ran at once. ``first``: one built already (at load time, to check the file),
    which the first call gets::

        pool = InterpreterPool(lambda: open_interpreter(content, path), "model.tflite")
        with pool.lend() as interpreter:
            ...
    """

    def __init__(self, make: Callable[[], _T], what: str | os.PathLike[str], first: _T | None = None) -> None:
        self._make, self._what = make, what
        self.idle: list[_T] = [] if first is None else [first]
        self._lock = threading.Lock()
        self._closed = False

    @contextmanager
    def lend(self) -> Iterator[_T]:
        with self._lock:
            if self._closed:
                raise ModelFormatError(f"{self._what}: runner is closed")
            item = self.idle.pop() if self.idle else None
        if item is None:
            item = self._make()
        try:
            yield item
        finally:
            with self._lock:
                if not self._closed:
                    self.idle.append(item)

    def close(self) -> None:
        """Refuse new calls and drop the idle interpreters; those lent now go when their calls return."""
        with self._lock:
            self._closed = True
            self.idle.clear()


def variant_of(path: str | os.PathLike[str], manifest: Manifest | None = None) -> str:
    """The variant name (fp32, fp16, dynamic, int8) of a .tflite file, from the manifest or its file name."""
    name = Path(path).name
    if manifest is not None:
        for variant, info in manifest.variants.items():
            if info.get("file") == name:
                return variant
    return variant_of_file(name) or DEFAULT_VARIANT


class _Slot:
    """One interpreter allocated for one batch size, with what ``_forward`` needs to feed and read it.

    The models ``deepclf convert`` writes have one signature, on the interpreter's main subgraph; those are fed
    through the interpreter itself (set, invoke, get: what a bare ``ai_edge_litert`` loop does), allocated once
    for ``batch``; the signature runner would resize and re-allocate on every call. Anything else goes through
    the signature runner.
    """

    def __init__(self, interpreter: Any, batch: int) -> None:
        self.interpreter = interpreter
        runner = interpreter.get_signature_runner(SIGNATURE_FLOAT)
        self.input = runner.get_input_details()[INPUT_FLOAT]
        self.batch = batch
        self.outputs = runner.get_output_details()
        main = interpreter.get_input_details()
        self.direct = (
            len(interpreter.get_signature_list()) == 1 and len(main) == 1 and main[0]["index"] == self.input["index"]
        )
        self.runner: Any = None
        if self.direct:
            del runner  # a live signature runner makes the interpreter refuse its own API (LiteRT's _ensure_safe)
            interpreter.resize_tensor_input(self.input["index"], [batch, *main[0]["shape"][1:]])
            interpreter.allocate_tensors()
            self._output_indices = {name: d["index"] for name, d in self.outputs.items()}
        else:
            self.runner = runner  # resizes and allocates on its first call

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The signature's outputs for the input ``x`` (``batch`` rows, the input's dtype); arrays are copies."""
        if not self.direct:
            return dict(self.runner(**{INPUT_FLOAT: x}))
        it = self.interpreter
        it.set_tensor(self.input["index"], x)
        it.invoke()
        return {name: it.get_tensor(index) for name, index in self._output_indices.items()}


def _quant(details: dict[str, Any]) -> tuple[float, int]:
    q: dict[str, Any] = details.get("quantization_parameters") or {}
    scales = q.get("scales")
    if scales is not None and len(scales):
        return float(scales[0]), int(q["zero_points"][0])  # LiteRT gives both arrays, or neither
    scale, zero = details.get("quantization", (0.0, 0))
    return float(scale), int(zero)


class LiteRTRunner(Runner):
    """A TFLite/LiteRT model file behind the standard signatures. TF-free; safe to call from several threads."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        manifest: Manifest | None = None,
        num_threads: int | None = None,
        invoke_sizes: tuple[int, ...] = DEFAULT_INVOKE_SIZES,
    ) -> None:
        path = Path(path)
        if not path.is_file():
            raise ModelFormatError(f"TFLite model not found: {path} (expected a .tflite file)")
        manifest = manifest or Manifest.load(path)
        variant = variant_of(path, manifest)
        super().__init__(manifest, path, RUNNER_FORMAT_PREFIX + variant)
        self.variant = variant
        if num_threads is not None and num_threads < 1:
            raise ModelFormatError(f"num_threads must be at least 1, got {num_threads}")
        self.num_threads = num_threads
        sizes = tuple(sorted({int(b) for b in invoke_sizes}))
        if not sizes or sizes[0] < 1:
            raise ModelFormatError(f"invoke_sizes must be positive batch sizes, got {list(invoke_sizes)}")
        self.invoke_sizes = sizes if sizes[0] == 1 else (1, *sizes)  # 1 always: any N splits without padding
        self._content = path.read_bytes()  # one copy shared by every interpreter
        # Load once now so that a broken file or a missing signature fails at load time, not at the first request;
        # that interpreter starts the first set (batch size -> slot) the pool lends.
        slot = self._new_slot(1)
        self._pool: InterpreterPool[dict[int, _Slot]] = InterpreterPool(dict, path, first={1: slot})
        self._input_dtype = np.dtype(slot.input["dtype"])
        self.input_dtype = self._input_dtype.name
        self.input_quantization = _quant(slot.input)
        if OUTPUT_PROBABILITIES not in slot.outputs:
            raise ModelFormatError(
                f"{path}: signature {SIGNATURE_FLOAT!r} has outputs {sorted(slot.outputs)}; "
                f"expected {OUTPUT_PROBABILITIES!r} (and {OUTPUT_CLASSES!r}); was it written by `deepclf convert`?"
            )
        # Every slot holds the same model: its tensors' dtypes and quantization are read here once, not per call.
        self._output_quantization = _quant(slot.outputs[OUTPUT_PROBABILITIES])

    def _new_slot(self, batch: int) -> _Slot:
        interpreter = open_interpreter(self._content, self.path, num_threads=self.num_threads)
        signatures = interpreter.get_signature_list()
        if SIGNATURE_FLOAT not in signatures:
            raise ModelFormatError(
                f"{self.path}: no {SIGNATURE_FLOAT!r} signature (found {sorted(signatures) or 'none'}); "
                "convert the model with `deepclf convert`"
            )
        if INPUT_FLOAT not in signatures[SIGNATURE_FLOAT]["inputs"]:
            raise ModelFormatError(
                f"{self.path}: signature {SIGNATURE_FLOAT!r} takes {signatures[SIGNATURE_FLOAT]['inputs']}, "
                f"expected an input named {INPUT_FLOAT!r}"
            )
        return _Slot(interpreter, batch)

    def _slot(self, slots: dict[int, _Slot], batch: int) -> _Slot:
        slot = slots.get(batch)
        if slot is None:  # only ever one of self.invoke_sizes: a set is bounded by construction
            slot = slots[batch] = self._new_slot(batch)
        return slot

    def chunks(self, n: int) -> list[int]:
        """The invoke sizes a batch of ``n`` rows runs as, largest first (``invoke_sizes=(1, 8)``: 19 -> 8, 8, 1, 1, 1)."""
        out: list[int] = []
        for size in reversed(self.invoke_sizes):
            q, n = divmod(n, size)
            out.extend([size] * q)
        return out

    def _forward(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sizes = self.chunks(images.shape[0])
        with self._pool.lend() as slots:
            if len(sizes) == 1:
                return self._invoke(slots, images)
            parts, start = [], 0
            for size in sizes:
                parts.append(self._invoke(slots, images[start : start + size]))
                start += size
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def _invoke(self, slots: dict[int, _Slot], images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        slot = self._slot(slots, images.shape[0])
        out = slot(self._to_input(images))
        probs = self._from_output(out[OUTPUT_PROBABILITIES])
        if OUTPUT_CLASSES in out:
            classes = np.asarray(out[OUTPUT_CLASSES]).astype(np.int64).reshape(-1)
        else:
            classes = np.argmax(probs, axis=-1)
        return probs, classes

    def _to_input(self, x: np.ndarray) -> np.ndarray:
        dtype = self._input_dtype
        if dtype == np.float32:
            return x
        scale, zero = self.input_quantization
        if scale == 0.0:
            raise ModelFormatError(f"quantized input of dtype {dtype} has no scale; cannot feed float pixels")
        info = np.iinfo(dtype)
        return np.clip(np.round(x / np.float32(scale) + zero), info.min, info.max).astype(dtype)

    def _from_output(self, y: np.ndarray) -> np.ndarray:
        if np.issubdtype(y.dtype, np.floating):
            return y.astype(np.float32, copy=False)
        scale, zero = self._output_quantization
        if scale == 0.0:
            return y.astype(np.float32)
        return ((y.astype(np.float32) - np.float32(zero)) * np.float32(scale)).astype(np.float32)

    def close(self) -> None:
        self._pool.close()
