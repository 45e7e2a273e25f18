"""The result and signature types shared by every layer: runners, the edge server, the clients and the benchmarks.

They sit below both ``deepclf.runtime`` and ``deepclf.clients`` (numpy only, no TensorFlow, no I/O), so a client
never imports the runtime to name what it returns, and every ``Classification`` is built by one function::

    sigs = standard_signatures(manifest)            # {"serving_default": SignatureSpec(...), "predict_image_bytes": ...}
    sigs["serving_default"].inputs["image"]         # TensorSpec(name='image', dtype='float32', shape=(None, 180, 180, 3))
    classifications(probs, manifest.labels, k=3)[0].label   # 'roses'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from deepclf.manifest import (
    INPUT_BYTES,
    INPUT_FLOAT,
    OUTPUT_CLASSES,
    OUTPUT_LABELS,
    OUTPUT_PROBABILITIES,
    SIGNATURE_BYTES,
    SIGNATURE_FLOAT,
    Manifest,
)
from deepclf.preprocessing import top_k as _top_k

__all__ = ["CLASSIFY_BATCH", "Classification", "SignatureSpec", "TensorSpec", "classifications", "standard_signatures"]

#: How many images ``classify`` preprocesses and runs at once (bounds memory for long lists of files).
CLASSIFY_BATCH = 32


@dataclass(frozen=True)
class TensorSpec:
    """One named tensor of a signature. ``dtype`` is a numpy dtype name, or ``"string"`` for encoded bytes;
    ``None`` in ``shape`` means any size (the batch dimension)."""

    name: str
    dtype: str
    shape: tuple[int | None, ...]


@dataclass(frozen=True)
class SignatureSpec:
    """A named signature: its input and output tensors, keyed by tensor name."""

    name: str
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]


@dataclass(frozen=True)
class Classification:
    """The result for one image: the best label, its index and score, all probabilities and the top k."""

    label: str
    index: int
    score: float
    probabilities: np.ndarray
    top_k: list[tuple[str, int, float]]


def standard_signatures(manifest: Manifest) -> dict[str, SignatureSpec]:
    """The two signatures every deepclf model serves (the SavedModel's, which every other format mirrors)."""
    h, w, c = manifest.input.shape
    n = manifest.num_classes
    outputs = {
        OUTPUT_PROBABILITIES: TensorSpec(OUTPUT_PROBABILITIES, "float32", (None, n)),
        OUTPUT_CLASSES: TensorSpec(OUTPUT_CLASSES, "int64", (None,)),
        OUTPUT_LABELS: TensorSpec(OUTPUT_LABELS, "string", (None,)),
    }
    return {
        SIGNATURE_FLOAT: SignatureSpec(
            SIGNATURE_FLOAT, {INPUT_FLOAT: TensorSpec(INPUT_FLOAT, "float32", (None, h, w, c))}, dict(outputs)
        ),
        SIGNATURE_BYTES: SignatureSpec(
            SIGNATURE_BYTES, {INPUT_BYTES: TensorSpec(INPUT_BYTES, "string", (None,))}, dict(outputs)
        ),
    }


def classifications(probabilities: np.ndarray, labels: Sequence[str], k: int) -> list[Classification]:
    """One ``Classification`` per row of ``probabilities`` [N, C] (stable top ``k``, best first)."""
    probs = np.asarray(probabilities)
    out = []
    for row, best in zip(probs, _top_k(probs, labels, k), strict=True):
        label, index, score = best[0]
        out.append(Classification(label, index, score, row, best))
    return out
