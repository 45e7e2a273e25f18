"""A runner for any TensorFlow SavedModel (TF1 or TF2), through its own SignatureDefs, as TF Serving serves it.

Needs TensorFlow (the ``[tf]`` extra), imported only when a runner is created. Every signature of the ``serve``
MetaGraph is exposed under its key, with its input and output aliases, dtypes, shapes and method name
(``tensorflow/serving/predict``, ``.../classify``, ``.../regress``); ``signature_defs`` holds each one's
serialized ``tensorflow.SignatureDef`` exactly as in ``saved_model.pb``, so ``GetModelMetadata`` answers the
model's real SignatureDefMap. Shapes are not checked here (TF Serving does not either, spec §7.5); the graph
refuses what it cannot run::

    r = GenericSavedModelRunner("models/half_plus_two/00000123")
    r.method_names["classify_x_to_y"]                    # 'tensorflow/serving/classify'
    r.run({"x": np.array([[1.0], [2.0]], np.float32)})   # {'y': array([[2.5], [3. ]], dtype=float32)}
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from deepclf.errors import InvalidInputError, ModelFormatError
from deepclf.runtime.base import SignatureSpec, TensorSpec, check_request

#: TF Serving's default signature key and method names (signature_constants.h).
DEFAULT_SIGNATURE = "serving_default"
PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
#: Signature keys that are not servable (TF2's init op).
_HIDDEN = frozenset({"__saved_model_init_op"})
_SERVE_TAG = "serve"


def _import_tf() -> Any:
    try:
        import tensorflow as tf
    except ImportError as exc:
        raise ModelFormatError(
            "this version is a TensorFlow SavedModel without a deepclf manifest: serving it needs TensorFlow "
            "(pip install 'deepclf[tf]'), or convert it to a .tflite file for the TF-free runtime"
        ) from exc
    return tf


def _dtype_name(tf_dtype: Any) -> str:
    return "string" if tf_dtype.name == "string" else str(np.dtype(tf_dtype.as_numpy_dtype).name)


def _shape(info: Any) -> tuple[int | None, ...] | None:
    shape = info.tensor_shape
    if shape.unknown_rank:
        return None
    return tuple(None if d.size < 0 else int(d.size) for d in shape.dim)


def tf_error_text(message: str) -> str:
    """The part of a TF runtime error that TF Serving sends: without eager mode's "Graph execution error" frame,
    the Python stack and the ``[[{{node ...}}]]`` suffix, e.g. "Could not parse example input, value: '...'"."""
    text = message.strip()
    if text.startswith("Graph execution error:"):
        blocks = [b.strip() for b in text.split("\n\n") if b.strip()]
        text = blocks[-1] if blocks else text
    text = text.split("\n\t [[")[0].split(" [Op:")[0].strip()
    return text or "TensorFlow could not run the signature"


#: TensorFlow's ``DataTypeString`` where it differs from the ``tf.DType`` name.
_TYPE_STRINGS = {"float32": "float", "float64": "double", "float16": "half"}


def _type_string(dtype: Any) -> str:
    name = str(dtype.name)
    return _TYPE_STRINGS.get(name, name)


def _tf_dtype_of(tf: Any, value: Any) -> Any:
    """The TF dtype an array (or list of bytes) would be fed as; ``None`` when it cannot tell (left to TF)."""
    dtype = getattr(value, "dtype", None)
    if dtype is None:
        return None
    dtype = np.dtype(dtype)
    if dtype.kind in "OSU":
        return tf.string
    try:
        return tf.as_dtype(dtype)
    except TypeError:
        return None


class GenericSavedModelRunner:
    """Any SavedModel behind its own signatures; ``run(inputs, signature)`` -> ``{output alias: array}``."""

    manifest = None

    def __init__(self, path: str | os.PathLike[str]) -> None:
        path = Path(path)
        if not (path / "saved_model.pb").is_file():
            raise ModelFormatError(f"{path} holds no saved_model.pb (expected a SavedModel folder)")
        tf = _import_tf()
        from tensorflow.core.protobuf import saved_model_pb2

        self.path = path
        self.format = "savedmodel-generic"
        sm = saved_model_pb2.SavedModel()
        sm.ParseFromString((path / "saved_model.pb").read_bytes())
        graphs = [mg for mg in sm.meta_graphs if _SERVE_TAG in mg.meta_info_def.tags] or list(sm.meta_graphs)
        if not graphs:
            raise ModelFormatError(f"{path}/saved_model.pb has no MetaGraph")
        meta = graphs[0]
        try:
            self._model = tf.saved_model.load(str(path), tags=list(meta.meta_info_def.tags) or None)
        except Exception as exc:  # TF raises many types; the message says what went wrong
            raise ModelFormatError(f"{path}: TensorFlow could not load the SavedModel: {exc}") from exc
        self._functions: dict[str, Any] = dict(self._model.signatures)
        self.signature_defs: dict[str, bytes] = {}
        self.method_names: dict[str, str] = {}
        self.signatures: dict[str, SignatureSpec] = {}
        #: For each signature, each input alias's TF dtype (inputs are converted to it before the call).
        self._in_dtypes: dict[str, dict[str, Any]] = {}
        self._graph_dtypes: dict[str, dict[str, Any]] = {}
        for key, sd in sorted(meta.signature_def.items()):
            self.signature_defs[key] = sd.SerializeToString()  # all of them, as TF Serving's metadata lists them
            if key in _HIDDEN or key not in self._functions:
                continue
            self.method_names[key] = sd.method_name
            ins = {a: TensorSpec(a, _dtype_name(tf.as_dtype(i.dtype)), _shape(i) or ()) for a, i in sd.inputs.items()}
            outs = {a: TensorSpec(a, _dtype_name(tf.as_dtype(i.dtype)), _shape(i) or ()) for a, i in sd.outputs.items()}
            self.signatures[key] = SignatureSpec(key, ins, outs)
            self._in_dtypes[key] = {a: tf.as_dtype(i.dtype) for a, i in sd.inputs.items()}
        if not self.signatures:
            raise ModelFormatError(f"{path}: the SavedModel has no servable signatures")
        self._tf = tf
        self._lock = threading.Lock()
        self._closed = False

    def run(self, inputs: Mapping[str, Any], signature: str = DEFAULT_SIGNATURE) -> dict[str, np.ndarray]:
        """Run ``signature`` on named inputs (converted to the signature's dtypes); outputs by alias."""
        if self._closed:
            raise ModelFormatError(f"{self.path}: runner is closed")
        spec = check_request(self.signatures, signature, inputs, self.path.parent.name or self.path.name)
        tf = self._tf
        feed = {}
        for index, (name, dtype) in enumerate(sorted(self._feed_dtypes(signature).items())):
            value = inputs[name]
            given = _tf_dtype_of(tf, value)
            if given is not None and given != dtype:
                # what TensorFlow's session answers for a feed of another dtype (TF Serving passes it through)
                raise InvalidInputError(
                    f"Expects arg[{index}] to be {_type_string(dtype)} but {_type_string(given)} is provided"
                )
            try:
                feed[name] = tf.convert_to_tensor(value, dtype=dtype)
            except (TypeError, ValueError) as exc:
                raise InvalidInputError(f"input {name!r} cannot be converted to {dtype.name}: {exc}") from None
        try:
            out = self._functions[signature](**feed)
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as exc:
            raise InvalidInputError(tf_error_text(getattr(exc, "message", None) or str(exc))) from None
        return {name: self._numpy(out[name]) for name in spec.outputs if name in out}

    def _feed_dtypes(self, signature: str) -> dict[str, Any]:
        """Each input's dtype as the graph takes it (the function's own input signature: a SignatureDef's
        ``TensorInfo`` may declare another, and TensorFlow checks feeds against the graph), else the TensorInfo's."""
        cached = self._graph_dtypes.get(signature)
        if cached is None:
            declared = self._in_dtypes[signature]
            try:
                specs = self._functions[signature].structured_input_signature[1]
                cached = {name: specs[name].dtype if name in specs else dtype for name, dtype in declared.items()}
            except (AttributeError, IndexError, TypeError):
                cached = declared
            self._graph_dtypes[signature] = cached
        return cached

    @staticmethod
    def _numpy(t: Any) -> np.ndarray:
        arr = np.asarray(t.numpy())
        return arr

    def close(self) -> None:
        """Refuse new work and drop the TF objects."""
        self._closed = True
        self._functions = {}

    def __enter__(self) -> GenericSavedModelRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<GenericSavedModelRunner {self.path}>"
