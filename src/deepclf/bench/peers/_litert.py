"""The model both peers run: one LiteRT interpreter over a ``.tflite`` file, called the way its docs show.

Deliberately plain (numpy and ``ai_edge_litert`` only, nothing from deepclf's runtime): the peers must run from
their own virtual environment, where deepclf's pins may not be installed, and must not borrow our optimisations::

    model = PeerModel("models/flowers/1/model.tflite", threads=2)
    probs = model.predict(rows_to_array([{"image": pixels}]))    # float32 [N, C]
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: deepclf's exported signature and its names (deepclf.manifest; repeated so the peers import no deepclf code).
SIGNATURE = "serving_default"
INPUT = "image"
OUTPUT = "probabilities"


class PeerModel:
    """A LiteRT interpreter with ``threads`` XNNPACK threads, called through its signature runner."""

    def __init__(self, model_file: str, *, threads: int = 2) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=model_file, num_threads=threads)
        # The signature runner is the documented way to call a converted SavedModel signature by its names; it
        # resizes the input to each call's batch and reallocates only when the shape changes.
        self.runner = self.interpreter.get_signature_runner(SIGNATURE)
        shape = self.interpreter.get_input_details()[0]["shape"]
        self.input_shape = (int(shape[1]), int(shape[2]), int(shape[3]))

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Probabilities ``[N, C]`` for float32 pixels ``[N, H, W, 3]``. Not thread-safe (one interpreter)."""
        return np.asarray(self.runner(**{INPUT: x})[OUTPUT])


def rows_to_array(instances: Any) -> np.ndarray:
    """TF Serving's row format -> float32 ``[N, H, W, 3]``.

    Each instance is the image itself or, with named inputs (what TF Serving clients send, deepclf's included),
    ``{"image": pixels}``; both are accepted, as TF Serving does.
    """
    if not isinstance(instances, list) or not instances:
        raise ValueError("'instances' must be a non-empty list")
    rows = [row[INPUT] if isinstance(row, dict) else row for row in instances]
    return np.asarray(rows, dtype=np.float32)
