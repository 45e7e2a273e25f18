"""Runners for the TensorFlow formats: a Keras model (a training run) and a SavedModel (a served version).

TensorFlow is imported inside the constructors only, so ``import deepclf.runtime`` stays TF-free; without TF
installed, loading these raises ``MissingDependencyError`` naming the ``tf`` extra::

    r = KerasRunner("runs/basic-001")            # or runs/basic-001/model.keras
    r = SavedModelRunner("models/flowers/3")     # calls the exported serving_default signature
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from deepclf.errors import ModelFormatError, require_tensorflow
from deepclf.manifest import (
    INPUT_FLOAT,
    OUTPUT_CLASSES,
    OUTPUT_PROBABILITIES,
    SIGNATURE_FLOAT,
    Manifest,
)
from deepclf.runtime.base import Runner, softmax

KERAS_FILE = "model.keras"
SAVED_MODEL_FILE = "saved_model.pb"


class KerasRunner(Runner):
    """A ``model.keras`` (logits out) behind the standard signatures; softmax and argmax are applied here.

    Calls ``model(x, training=False)`` (inside one ``tf.function``) per request: ``model.predict`` builds a
    dataset and a callback loop per call, which costs milliseconds for nothing at batch sizes a server sees.
    """

    def __init__(self, path: str | os.PathLike[str], *, manifest: Manifest | None = None) -> None:
        path = Path(path)
        file = path / KERAS_FILE if path.is_dir() else path
        if not file.is_file():
            raise ModelFormatError(f"Keras model not found: {file} (expected a run folder holding {KERAS_FILE})")
        tf = require_tensorflow("running a Keras model")
        manifest = manifest or Manifest.load(file)
        super().__init__(manifest, file, "keras")
        try:
            self._model = tf.keras.models.load_model(file, compile=False)
        except (ValueError, OSError) as exc:
            raise ModelFormatError(f"{file}: not a loadable Keras model ({exc})") from exc
        self._tf = tf
        h, w, c = manifest.input.shape
        model = self._model
        # One traced graph for every batch size: an eager call runs every layer through Python on every request.
        self._call = tf.function(
            lambda x: model(x, training=False),
            reduce_retracing=True,
            input_signature=[tf.TensorSpec([None, h, w, c], tf.float32)],
        )

    def logits(self, images: np.ndarray) -> np.ndarray:
        """The model's raw logits for a float32 batch (what training saw), for parity checks."""
        return np.asarray(self._call(self._tf.constant(images, dtype=self._tf.float32)), dtype=np.float32)

    def _forward(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        probs = softmax(self.logits(images))
        return probs, np.argmax(probs, axis=-1)

    def close(self) -> None:
        self._model = None
        self._call = None


class SavedModelRunner(Runner):
    """A SavedModel folder behind the standard signatures, calling its exported ``serving_default`` graph.

    ``predict_image_bytes`` decodes with ``deepclf.preprocessing`` like every runner (the graph's own bytes
    signature is what TF Serving runs; ``tests/convert`` bounds the difference between the two).
    """

    def __init__(self, path: str | os.PathLike[str], *, manifest: Manifest | None = None) -> None:
        path = Path(path)
        if not (path / SAVED_MODEL_FILE).is_file():
            raise ModelFormatError(f"SavedModel not found: {path} (expected a folder holding {SAVED_MODEL_FILE})")
        tf = require_tensorflow("running a SavedModel")
        manifest = manifest or Manifest.load(path)
        super().__init__(manifest, path, "savedmodel")
        try:
            self._loaded = tf.saved_model.load(str(path))
        except (ValueError, OSError) as exc:
            raise ModelFormatError(f"{path}: not a loadable SavedModel ({exc})") from exc
        if SIGNATURE_FLOAT not in self._loaded.signatures:
            raise ModelFormatError(
                f"{path}: no {SIGNATURE_FLOAT!r} signature (found {sorted(self._loaded.signatures)})"
            )
        self._fn = self._loaded.signatures[SIGNATURE_FLOAT]
        self._tf = tf

    def _forward(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = self._fn(**{INPUT_FLOAT: self._tf.constant(images)})
        return out[OUTPUT_PROBABILITIES].numpy(), out[OUTPUT_CLASSES].numpy()

    def close(self) -> None:
        self._fn = None
        self._loaded = None
