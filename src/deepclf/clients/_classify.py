"""``classify`` on top of ``predict``, without I/O: images batched and prepared as ``Runner.classify`` does, class
names learned from answers, probabilities turned into ``Classification``s::

    for signature, inputs in classify_batches(image_list(files), SEND_TENSOR, (180, 180)):
        out = client.predict(inputs, model="flowers", signature=signature)
        results += classifications(probabilities_of(out, len(inputs["image"])), labels, k=3)
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, cast

import numpy as np

from deepclf.clients._addressing import ModelKey
from deepclf.clients._errors import ProtocolError
from deepclf.errors import UsageError
from deepclf.manifest import (
    INPUT_BYTES,
    INPUT_FLOAT,
    OUTPUT_CLASSES,
    OUTPUT_LABELS,
    OUTPUT_PROBABILITIES,
    SIGNATURE_BYTES,
    SIGNATURE_FLOAT,
)
from deepclf.preprocessing import ImageSource, encode_image, preprocess_batch
from deepclf.signatures import CLASSIFY_BATCH, Classification
from deepclf.signatures import classifications as _classifications

SEND_TENSOR = "tensor"
SEND_BYTES = "bytes"


def image_list(images: Any) -> list[ImageSource]:
    """One image or a sequence of them (paths, bytes, PIL images, arrays) -> a list."""
    if isinstance(images, (str, bytes, bytearray, memoryview, np.ndarray)):
        return [images]
    if not isinstance(images, Iterable) or hasattr(images, "getpixel"):  # a PIL image is iterable-ish: one image
        return [cast("ImageSource", images)]  # one image of any kind; preprocessing says if it is not one
    return list(images)


def check_send(send: str) -> str:
    if send not in (SEND_TENSOR, SEND_BYTES):
        raise UsageError(
            f"send must be {SEND_TENSOR!r} (preprocess here) or {SEND_BYTES!r} (encoded images), got {send!r}"
        )
    return send


def check_top_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise UsageError(f"top_k must be an integer >= 1, got {k!r}")
    return int(k)


def classify_batches(
    items: Sequence[ImageSource], send: str, size: tuple[int, int] | None, batch: int = CLASSIFY_BATCH
) -> Iterator[tuple[str, dict[str, np.ndarray]]]:
    """(signature, inputs) per batch of at most ``batch`` images, prepared lazily (bounded memory).

    ``send="tensor"``: pixels through ``deepclf.preprocessing`` at ``size`` for ``serving_default``;
    ``send="bytes"``: encoded images (files as they are) for ``predict_image_bytes``. Batches match
    ``Runner.classify``'s, so local and remote results are computed on identical batches.
    """
    for start in range(0, len(items), batch):
        chunk = items[start : start + batch]
        if send == SEND_TENSOR:
            if size is None:
                raise AssertionError("tensor batches need the model's input size")  # pragma: no cover
            yield SIGNATURE_FLOAT, {INPUT_FLOAT: preprocess_batch(chunk, size)}
        else:
            arr = np.empty(len(chunk), dtype=object)
            arr[:] = [encode_image(x) for x in chunk]
            yield SIGNATURE_BYTES, {INPUT_BYTES: arr}


class LabelBook:
    """Class names per model, learned from answers (``classes`` + ``labels`` outputs) or given by the caller.

    TF Serving's metadata carries no label vocabulary; each answer names the top class only. ``classify`` thus
    uses, in order: ``labels=`` when given, the model's manifest labels when the server offers them (the edge
    server's ``deepclf_manifest`` metadata extension), else the classes the server has named so far, and
    ``class_<i>`` for the others.
    """

    def __init__(self) -> None:
        self._known: dict[ModelKey, dict[int, str]] = {}
        self._lock = threading.Lock()

    def learn(self, key: ModelKey, outputs: Mapping[str, np.ndarray]) -> None:
        classes, labels = outputs.get(OUTPUT_CLASSES), outputs.get(OUTPUT_LABELS)
        if classes is None or labels is None or np.shape(classes) != np.shape(labels):
            return
        pairs = {
            int(c): (x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x))
            for c, x in zip(np.ravel(classes).tolist(), np.ravel(labels).tolist(), strict=True)
        }
        with self._lock:
            self._known.setdefault(key, {}).update(pairs)

    def names(
        self, key: ModelKey, n: int, given: Sequence[str] | None = None, vocabulary: Sequence[str] | None = None
    ) -> list[str]:
        """``n`` class names: ``given`` (must have ``n``), else ``vocabulary`` (the server's manifest labels, used
        when it has ``n``), else the names learned from answers."""
        if given is not None:
            if len(given) != n:
                raise UsageError(f"labels has {len(given)} names but the model scores {n} classes")
            return [str(x) for x in given]
        if vocabulary is not None and len(vocabulary) == n:
            return [str(x) for x in vocabulary]
        known = self._known.get(key, {})
        return [known.get(i, f"class_{i}") for i in range(n)]


def classifications(probabilities: np.ndarray, labels: Sequence[str], k: int) -> list[Classification]:
    """``Classification`` per row of an answer's probabilities, exactly as ``Runner.classify`` builds them."""
    probs = np.asarray(probabilities)
    if probs.ndim != 2:
        raise ProtocolError(f"expected {OUTPUT_PROBABILITIES!r} of shape [batch, classes], got {list(probs.shape)}")
    return _classifications(probs, labels, k)


def probabilities_of(outputs: Mapping[str, np.ndarray], n: int) -> np.ndarray:
    """The ``probabilities`` output of an answer for ``n`` images, checked."""
    probs = outputs.get(OUTPUT_PROBABILITIES)
    if probs is None:
        raise ProtocolError(
            f"the answer has no {OUTPUT_PROBABILITIES!r} output (outputs: {sorted(outputs)}); classify needs a "
            "deepclf model's signatures"
        )
    probs = np.asarray(probs, dtype=np.float32)
    if probs.ndim != 2 or probs.shape[0] != n:
        raise ProtocolError(f"expected {OUTPUT_PROBABILITIES!r} of shape [{n}, classes], got {list(probs.shape)}")
    return probs
