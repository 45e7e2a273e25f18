"""A LiteRT runner for any ``.tflite`` model, through the model's own signatures (no manifest, no TensorFlow).

``deepclf`` models carry a manifest and use ``LiteRTRunner`` (labels, image decoding, quantization). Any other
TFLite model -- TF Serving's ``half_plus_two``, a model from elsewhere -- is served as it is: its signatures,
tensor names, dtypes and shapes come from the file, inputs are checked against them, and outputs are returned
by name. Same ``run()`` / ``signatures`` interface as ``deepclf.runtime.Runner``::

    r = GenericLiteRTRunner("models/half_plus_two/1/model.tflite")
    r.signatures["serving_default"].inputs      # {'x': TensorSpec(name='x', dtype='float32', shape=(None,))}
    r.run({"x": np.array([1.0, 2.0, 5.0], np.float32)})      # {'y': array([2.5, 3. , 4.5], dtype=float32)}

A model without signature defs (old converters) gets one, ``serving_default``, built from its input and output
tensors. Interpreters are not thread-safe, so a call takes one nobody else is using from the runner's idle list
(the one built at load time first) and puts it back when done: as many as calls ever ran at once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from deepclf.errors import InvalidInputError, ModelFormatError
from deepclf.manifest import SIGNATURE_FLOAT
from deepclf.runtime.base import SignatureSpec, TensorSpec, check_request
from deepclf.runtime.litert import InterpreterPool, open_interpreter

#: The signature name a model without signature defs gets (TF Serving's default).
DEFAULT_SIGNATURE = SIGNATURE_FLOAT


def _dtype_name(dtype: Any) -> str:
    dt = np.dtype(dtype)
    return "string" if dt.kind in "SUO" else dt.name


def _spec(name: str, details: Mapping[str, Any]) -> TensorSpec:
    shape = details.get("shape_signature")
    if shape is None or (len(shape) == 0 and len(details.get("shape", ()))):
        shape = details.get("shape", ())
    return TensorSpec(name, _dtype_name(details["dtype"]), tuple(None if int(d) < 0 else int(d) for d in shape))


def _tensor_name(details: Mapping[str, Any]) -> str:
    # Signature-less models name tensors like "serving_default_x:0"; the part before ":" is what callers use.
    return str(details["name"]).split(":")[0]


class _Plain:
    """A signature-runner lookalike for models without signature defs (interpreter-level API)."""

    def __init__(self, interpreter: Any) -> None:
        self.interpreter = interpreter
        self.inputs = {_tensor_name(d): d for d in interpreter.get_input_details()}
        self.outputs = {_tensor_name(d): d for d in interpreter.get_output_details()}
        self.shapes: dict[str, tuple[int, ...]] = {}

    def __call__(self, **kwargs: np.ndarray) -> dict[str, np.ndarray]:
        it = self.interpreter
        if any(self.shapes.get(k) != v.shape for k, v in kwargs.items()):
            for name, value in kwargs.items():
                it.resize_tensor_input(self.inputs[name]["index"], list(value.shape))
            it.allocate_tensors()
            self.shapes = {k: v.shape for k, v in kwargs.items()}
        for name, value in kwargs.items():
            it.set_tensor(self.inputs[name]["index"], value)
        it.invoke()
        return {name: it.get_tensor(d["index"]) for name, d in self.outputs.items()}


class GenericLiteRTRunner:
    """Any TFLite model behind its own signatures; ``run(inputs, signature)`` -> ``{output name: array}``."""

    manifest = None

    def __init__(self, path: str | os.PathLike[str], *, num_threads: int | None = None) -> None:
        path = Path(path)
        if not path.is_file():
            raise ModelFormatError(f"TFLite model not found: {path} (expected a .tflite file)")
        if num_threads is not None and num_threads < 1:
            raise ModelFormatError(f"num_threads must be at least 1, got {num_threads}")
        self.path = path
        self.format = "tflite-generic"
        self.num_threads = num_threads
        self._content = path.read_bytes()  # one copy shared by every interpreter
        # Load once now: a broken file fails at load time, and the signatures are known before the first request.
        interpreter = self._new_interpreter()
        self.signatures: dict[str, SignatureSpec] = {}
        listed = interpreter.get_signature_list()
        if listed:
            for key in listed:
                sr = interpreter.get_signature_runner(key)
                self.signatures[key] = SignatureSpec(
                    key,
                    {n: _spec(n, d) for n, d in sr.get_input_details().items()},
                    {n: _spec(n, d) for n, d in sr.get_output_details().items()},
                )
        else:
            plain = _Plain(interpreter)
            self.signatures[DEFAULT_SIGNATURE] = SignatureSpec(
                DEFAULT_SIGNATURE,
                {n: _spec(n, d) for n, d in plain.inputs.items()},
                {n: _spec(n, d) for n, d in plain.outputs.items()},
            )
        if not self.signatures:
            raise ModelFormatError(f"{path}: the model has no signatures and no input tensors")
        # Interpreters lent as {signature: callable}; the one built above is the first.
        self._pool = InterpreterPool(lambda: self._calls(self._new_interpreter()), path, first=self._calls(interpreter))

    def _new_interpreter(self) -> Any:
        return open_interpreter(self._content, self.path, num_threads=self.num_threads, allocate=True)

    def _calls(self, interpreter: Any) -> dict[str, Any]:
        """One interpreter's callable per signature."""
        if interpreter.get_signature_list():
            return {key: interpreter.get_signature_runner(key) for key in self.signatures}
        return {DEFAULT_SIGNATURE: _Plain(interpreter)}

    def run(self, inputs: Mapping[str, Any], signature: str = DEFAULT_SIGNATURE) -> dict[str, np.ndarray]:
        """Run ``signature`` on named inputs (exact dtypes, shapes that fit the signature); outputs by name."""
        spec = check_request(self.signatures, signature, inputs, self.path.parent.parent.name or self.path.name)
        feed = {name: self._check(spec.inputs[name], inputs[name]) for name in spec.inputs}
        with self._pool.lend() as calls:
            out = calls[signature](**feed)
            # The interpreter reuses its output buffers on the next call: hand out copies, before it is put back.
            return {name: np.array(out[name], copy=True) for name in spec.outputs if name in out}

    @staticmethod
    def _check(spec: TensorSpec, value: Any) -> np.ndarray:
        x = value if isinstance(value, np.ndarray) else np.asarray(value)
        if spec.dtype == "string":
            if x.dtype.kind not in "OS":
                raise InvalidInputError(f"input {spec.name!r} must be a string tensor, got dtype {x.dtype}")
        elif x.dtype != np.dtype(spec.dtype):
            raise InvalidInputError(f"input {spec.name!r} must have dtype {spec.dtype}, got {x.dtype}")
        want = ["-1" if d is None else str(d) for d in spec.shape]
        if x.ndim != len(spec.shape) or any(d is not None and d != n for d, n in zip(spec.shape, x.shape, strict=True)):
            raise InvalidInputError(
                f"input {spec.name!r} must have shape [{', '.join(want)}] (-1: any size), got {list(x.shape)}"
            )
        if x.size == 0:
            raise InvalidInputError(f"input {spec.name!r} is empty (shape {list(x.shape)}); send at least one value")
        return np.ascontiguousarray(x)

    def close(self) -> None:
        """Refuse new work and drop the idle interpreters; those of calls still running go when they return."""
        self._pool.close()

    def __enter__(self) -> GenericLiteRTRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<GenericLiteRTRunner {self.path}>"
