"""Classify and Regress on tf.Examples, as TF Serving runs them (classifier.cc, regressor.cc; spec 6.1-6.4):
the serialized examples are the signature's one input (``inputs``, 1-D DT_STRING), and its outputs become a
``ClassificationResult`` or ``RegressionResult`` after TF Serving's checks, in its order and words::

    inputs = examples_tensor(request.input, budget)        # {"inputs": array of serialized tf.Example}
    outputs = runner.run(inputs, key)
    fill_classification(outputs, len(inputs["inputs"]), response.result)

Shared by the REST and gRPC APIs (through ``ServingCore.classify``/``regress``) and by model warmup.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from deepclf import protocol as P
from deepclf.protocol.inference import serialize_input
from deepclf.protocol.limits import RequestBudget
from deepclf.protocol.tensors import tf_type_name
from deepclf.serving.signaturedefs import CLASSES_OUTPUT, EXAMPLES_INPUT, REGRESSION_OUTPUT, SCORES_OUTPUT


def examples_tensor(inp: Any, budget: RequestBudget | None = None) -> dict[str, np.ndarray]:
    """The signature's inputs for an ``Input``: ``inputs`` = 1-D DT_STRING serialized tf.Examples, admitted to
    ``budget`` (rows and bytes) when one is given."""
    serialized = serialize_input(inp)
    arr = np.empty(len(serialized), dtype=object)
    arr[:] = serialized
    if budget is not None:
        budget.admit(EXAMPLES_INPUT, [len(arr)], np.dtype(object), nbytes=8 * len(arr) + sum(map(len, arr)))
    return {EXAMPLES_INPUT: arr}


def fill_classification(outputs: Mapping[str, np.ndarray], n: int, result: Any) -> None:
    """Signature outputs ``classes`` [N, C] strings and/or ``scores`` [N, C] float -> ``ClassificationResult``,
    checked in classifier.cc's order and words (``PostProcessClassificationResult``)."""
    scores = outputs.get(SCORES_OUTPUT)
    classes = outputs.get(CLASSES_OUTPUT)
    for what, t, want in (("classes", classes, "DT_STRING"), ("scores", scores, "DT_FLOAT")):
        if t is None:
            continue
        if t.ndim != 2:
            raise P.InvalidInput(f"Expected Tensor shape: [batch_size num_classes] but got {_shape_text(t)}")
        if tf_type_name(t.dtype) != want:
            raise P.InvalidInput(f"Expected {what} Tensor of {want}. Got: {tf_type_name(t.dtype)}")
        if t.shape[0] != n:
            raise P.InvalidInput(f"Expected {what} output batch size of {n}. Got: {t.shape[0]}")
    if scores is not None and classes is not None and scores.shape[1] != classes.shape[1]:
        raise P.InvalidInput(
            f"Tensors class and score should match in dim_size(1). Got {classes.shape[1]} vs. {scores.shape[1]}"
        )
    width = scores.shape[1] if scores is not None else classes.shape[1] if classes is not None else 0
    for i in range(n):
        entry = result.classifications.add()
        for j in range(width):
            c = entry.classes.add()
            if classes is not None:
                label = classes[i, j]
                c.label = label.decode("utf-8", "replace") if isinstance(label, bytes) else str(label)
            if scores is not None:
                c.score = float(scores[i, j])


def fill_regression(outputs: Mapping[str, np.ndarray], n: int, result: Any) -> None:
    """Signature output ``outputs`` float [N] or [N, 1] -> ``RegressionResult``."""
    t = outputs[REGRESSION_OUTPUT]
    if not (t.ndim == 1 or (t.ndim == 2 and t.shape[1] == 1)):
        raise P.InvalidInput(
            f"Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got {_shape_text(t)}"
        )
    if t.shape[0] != n:
        raise P.InvalidInput(f"Input batch size did not match output batch size: {n} vs. {t.shape[0]}")
    if t.dtype != np.float32:
        raise P.InvalidInput(f"Expected output Tensor of DT_FLOAT.  Got: {tf_type_name(t.dtype)}")
    for v in t.reshape(-1).tolist():
        result.regressions.add().value = v


def _shape_text(arr: np.ndarray) -> str:
    """A shape as TensorFlow's ``TensorShape::DebugString`` prints it: ``[2,3,10]``."""
    return "[" + ",".join(str(d) for d in arr.shape) + "]"
