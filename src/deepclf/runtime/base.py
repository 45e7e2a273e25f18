"""The runner interface every model format implements, and the input validation they all share.

A runner wraps one loaded model (Keras, SavedModel or a LiteRT variant) behind TF Serving's view of it: named
signatures with named, typed tensors. The edge server, the local client and the benchmarks only ever talk to this
interface, so a format is a constructor argument, not a code path::

    with load_runner("models/flowers/3", variant="int8") as r:
        out = r.run({"image": batch})                                   # float32 [N, H, W, 3] in 0..255
        out = r.run({"image_bytes": np.array([jpeg], dtype=object)}, "predict_image_bytes")
        out["probabilities"], out["classes"], out["labels"]             # f32 [N, C], i64 [N], bytes [N]
        r.classify(["rose.jpg"], top_k=3)[0].label                      # 'roses'

Subclasses implement one method, ``_forward`` (float batch -> probabilities and classes); validation, decoding,
labels, batching and ``classify`` live here so that every format rejects bad input with the same message.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deepclf.errors import ImageError, InvalidInputError, NotFoundError
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
from deepclf.preprocessing import ImageBudget, ImageSource, preprocess, preprocess_batch, probe_image
from deepclf.runtime.example import ExampleParseError, parse_example
from deepclf.signatures import (
    CLASSIFY_BATCH,
    Classification,
    SignatureSpec,
    TensorSpec,
    classifications,
    standard_signatures,
)
from deepclf.variants import VARIANTS

__all__ = [
    "CLASSIFY_BATCH",
    "FORMATS",
    "Classification",
    "Runner",
    "SignatureSpec",
    "TensorSpec",
    "check_request",
    "softmax",
    "standard_signatures",
]

#: TF Serving's Classify API on a deepclf model: the signature takes serialized tf.Examples (alias ``inputs``) whose
#: ``image/encoded`` bytes feature holds an encoded image, and answers ``classes`` (the manifest labels, [N, C]
#: strings) and ``scores`` (probabilities, [N, C] float32) -- TF Serving's classification signature.
SIGNATURE_EXAMPLE = "classify_image_bytes"
CLASSIFY_METHOD = "tensorflow/serving/classify"
EXAMPLE_INPUT = "inputs"
EXAMPLE_IMAGE_FEATURE = "image/encoded"
EXAMPLE_CLASSES = "classes"
EXAMPLE_SCORES = "scores"


def example_signature(manifest: Manifest) -> SignatureSpec:
    """The ``classify_image_bytes`` signature of a deepclf model (what ``Classify`` uses; method classify)."""
    n = manifest.num_classes
    return SignatureSpec(
        SIGNATURE_EXAMPLE,
        {EXAMPLE_INPUT: TensorSpec(EXAMPLE_INPUT, "string", (None,))},
        {
            EXAMPLE_CLASSES: TensorSpec(EXAMPLE_CLASSES, "string", (None, n)),
            EXAMPLE_SCORES: TensorSpec(EXAMPLE_SCORES, "float32", (None, n)),
        },
    )


#: Every format a deepclf runner can have; ``Runner.format`` is one of these (a LiteRT runner's is its variant's
#: ``runner_format``, ``tflite-int8``, from the table in ``deepclf.variants``).
FORMATS = ("keras", "savedmodel", *(v.runner_format for v in VARIANTS.values()))


def check_request(signatures: Mapping[str, SignatureSpec], signature: str, inputs: Any, model: str) -> SignatureSpec:
    """The spec of the signature a ``run`` call names, once ``inputs`` is known to be a mapping with exactly that
    signature's input names: ``NotFoundError`` for an unknown signature, ``InvalidInputError`` for the rest.
    Every runner's ``run`` starts here, so all of them word these errors alike."""
    spec = signatures.get(signature)
    if spec is None:
        raise NotFoundError(
            f"signature {signature!r} not found in model {model!r}; "
            f"available signatures: {', '.join(sorted(signatures))}"
        )
    if not isinstance(inputs, Mapping):
        raise InvalidInputError(
            f"inputs must be a mapping of tensor name to array, got {type(inputs).__name__}; "
            f"signature {signature!r} expects {sorted(spec.inputs)}"
        )
    missing = sorted(set(spec.inputs) - set(inputs))
    unexpected = sorted(set(inputs) - set(spec.inputs))
    if missing or unexpected:
        problems = ([f"missing {missing}"] if missing else []) + ([f"unexpected {unexpected}"] if unexpected else [])
        raise InvalidInputError(f"signature {signature!r} takes input(s) {sorted(spec.inputs)}; " + "; ".join(problems))
    return spec


class Runner(abc.ABC):
    """A loaded model behind the serving signatures. Use ``load_runner`` to get one.

    ``run`` is the strict, server-facing call (exact names, dtypes and shapes, like TF Serving); ``predict`` and
    ``classify`` are the forgiving local conveniences. Runners are safe to call from several threads.
    """

    manifest: Manifest
    format: str
    path: Path
    signatures: dict[str, SignatureSpec]
    #: Pixel limits for the images a request sends encoded (``image_bytes``, tf.Examples), checked from their
    #: headers before any is decoded. ``None`` (local use) means no limit; a server sets it on the runners it loads.
    image_budget: ImageBudget | None = None

    def __init__(self, manifest: Manifest, path: str | Path, format: str) -> None:
        self.manifest = manifest
        self.path = Path(path)
        self.format = format
        self.signatures = standard_signatures(manifest)
        self.signatures[SIGNATURE_EXAMPLE] = example_signature(manifest)
        #: Signatures whose TF Serving method is not predict (the rest are ``tensorflow/serving/predict``).
        self.method_names = {SIGNATURE_EXAMPLE: CLASSIFY_METHOD}
        self._labels = np.array([lab.encode("utf-8") for lab in manifest.labels], dtype=object)

    # -- what a format implements ------------------------------------------------------------------------------

    @abc.abstractmethod
    def _forward(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A validated float32 batch [N>=1, H, W, 3] in 0..255 -> (probabilities f32 [N, C], classes i64 [N])."""

    def close(self) -> None:  # noqa: B027 - a no-op default on purpose: runners holding nothing need not override it
        """Release the model (interpreters, TF objects). Calling it twice is harmless."""

    # -- the public interface ----------------------------------------------------------------------------------

    def run(self, inputs: Mapping[str, Any], signature: str = SIGNATURE_FLOAT) -> dict[str, np.ndarray]:
        """Run one signature on named inputs; returns ``probabilities``, ``classes`` and ``labels``.

        ``serving_default`` takes ``image``: float32 [N, H, W, 3] in 0..255. ``predict_image_bytes`` takes
        ``image_bytes``: a 1-D array (dtype object or bytes) of encoded JPEG/PNG/BMP/GIF images, decoded with
        ``deepclf.preprocessing``. Raises ``NotFoundError`` for an unknown signature and ``InvalidInputError``
        for anything else that does not match the signature.
        """
        check_request(self.signatures, signature, inputs, self.manifest.name)
        if signature == SIGNATURE_EXAMPLE:
            out = self._outputs(self._decode_examples(inputs[EXAMPLE_INPUT]))
            probs = out[OUTPUT_PROBABILITIES]
            classes = np.empty(probs.shape, dtype=object)
            classes[:] = self._labels
            return {EXAMPLE_CLASSES: classes, EXAMPLE_SCORES: probs}
        if signature == SIGNATURE_BYTES:
            images = self._decode_bytes(inputs[INPUT_BYTES])
        else:
            images = self._check_float(inputs[INPUT_FLOAT])
        return self._outputs(images)

    def predict(self, images: np.ndarray) -> np.ndarray:
        """float [N, H, W, 3] (or one [H, W, 3]) pixels in 0..255 -> probabilities float32 [N, C]."""
        x = np.asarray(images)
        if x.ndim == 3:
            x = x[None]
        if np.issubdtype(x.dtype, np.number) and x.dtype != np.float32:
            x = x.astype(np.float32)  # local callers may hand us uint8 or float64; the server path stays strict
        return self.run({INPUT_FLOAT: x})[OUTPUT_PROBABILITIES]

    def classify(self, images: Sequence[ImageSource], top_k: int = 5) -> list[Classification]:
        """Paths, bytes, PIL images or arrays -> one ``Classification`` each (preprocessed per the manifest)."""
        if isinstance(images, (str, bytes, bytearray, memoryview, np.ndarray)) or not isinstance(images, Iterable):
            images = [images]  # one image given on its own
        items = list(images)
        results: list[Classification] = []
        for start in range(0, len(items), CLASSIFY_BATCH):
            batch = preprocess_batch(items[start : start + CLASSIFY_BATCH], self.manifest.input)
            results.extend(classifications(self.predict(batch), self.manifest.labels, top_k))
        return results

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.format} {self.path}>"

    # -- shared helpers ----------------------------------------------------------------------------------------

    def _outputs(self, images: np.ndarray) -> dict[str, np.ndarray]:
        n = images.shape[0]
        if n == 0:  # interpreters and TF graphs dislike empty batches; the answer is known anyway
            probs = np.zeros((0, self.manifest.num_classes), dtype=np.float32)
            classes = np.zeros((0,), dtype=np.int64)
        else:
            probs, classes = self._forward(images)
            probs = np.asarray(probs, dtype=np.float32)
            classes = np.asarray(classes, dtype=np.int64)
        return {
            OUTPUT_PROBABILITIES: probs,
            OUTPUT_CLASSES: classes,
            OUTPUT_LABELS: self._labels[classes] if n else np.zeros((0,), dtype=object),
        }

    def _in_range_fast(self, x: np.ndarray) -> bool:
        """Whether every value of the float32 ``x`` is surely in the input's range, in one pass: for a range
        starting at 0, the bit patterns of +0.0..vmax, read as unsigned integers, are exactly 0..bits(vmax), and
        negatives, NaN and infinities all read larger. ``False`` means "check properly" (also for -0.0)."""
        vmin, vmax = self.manifest.input.value_range
        if vmin != 0 or not x.flags.c_contiguous:
            return False
        return int(x.view(np.uint32).max()) <= int(np.float32(vmax).view(np.uint32))

    def _check_float(self, value: Any) -> np.ndarray:
        want = self.manifest.input.shape
        x = value if isinstance(value, np.ndarray) else np.asarray(value)
        if x.dtype != np.float32:
            raise InvalidInputError(
                f"input {INPUT_FLOAT!r} must be float32 pixels in 0..255, got dtype {x.dtype}; "
                "cast it with .astype('float32') (or send encoded images to 'predict_image_bytes')"
            )
        if x.ndim != 4 or tuple(x.shape[1:]) != want:
            raise InvalidInputError(
                f"input {INPUT_FLOAT!r} must have shape [batch, {want[0]}, {want[1]}, {want[2]}], got "
                f"{list(x.shape)}; resize images with deepclf.preprocessing.preprocess(img, {want[:2]})"
            )
        if x.size and not self._in_range_fast(x):
            lo, hi = float(np.min(x)), float(np.max(x))
            if not (np.isfinite(lo) and np.isfinite(hi)):
                raise InvalidInputError(f"input {INPUT_FLOAT!r} contains NaN or infinite values")
            vmin, vmax = self.manifest.input.value_range
            if lo < vmin or hi > vmax:
                raise InvalidInputError(
                    f"input {INPUT_FLOAT!r} values must be in {vmin:g}..{vmax:g} (the model rescales inside), "
                    f"got min {lo:g} and max {hi:g}"
                )
        return np.ascontiguousarray(x)

    def _decode_examples(self, value: Any) -> np.ndarray:
        """A 1-D string tensor of serialized tf.Examples -> their ``image/encoded`` images, decoded (TF-free)."""
        arr = np.asarray(value, dtype=object) if not isinstance(value, np.ndarray) else value
        if arr.dtype.kind not in ("O", "S") or arr.ndim != 1:
            raise InvalidInputError(
                f"input {EXAMPLE_INPUT!r} must be a 1-D string tensor of serialized tf.Examples, got dtype "
                f"{arr.dtype} and shape {list(arr.shape)}"
            )
        images = np.empty(arr.shape, dtype=object)
        for i, item in enumerate(arr.tolist()):
            try:
                features = parse_example(item)
            except ExampleParseError:
                raise InvalidInputError(f"Could not parse example input, value: '{bytes(item)[:64]!r}'") from None
            encoded = features.get(EXAMPLE_IMAGE_FEATURE)
            if not encoded or not isinstance(encoded[0], bytes) or len(encoded) != 1:
                raise InvalidInputError(
                    f"Name: <unknown>, Feature: {EXAMPLE_IMAGE_FEATURE} (data type: string) is required but could "
                    "not be found (each Example needs one encoded image in its bytes_list)"
                )
            images[i] = encoded[0]
        return self._decode_bytes(images)

    def _decode_bytes(self, value: Any) -> np.ndarray:
        if isinstance(value, (bytes, bytearray, memoryview)):
            raise InvalidInputError(
                f"input {INPUT_BYTES!r} must be a 1-D array of encoded images (shape [batch]), got a single bytes "
                "object; wrap it: np.array([data], dtype=object)"
            )
        arr = np.asarray(value, dtype=object) if not isinstance(value, np.ndarray) else value
        if arr.dtype.kind not in ("O", "S"):
            raise InvalidInputError(
                f"input {INPUT_BYTES!r} must hold encoded image bytes (dtype string), got dtype {arr.dtype}"
            )
        if arr.ndim != 1:
            raise InvalidInputError(
                f"input {INPUT_BYTES!r} must have shape [batch] (one encoded image per element), got {list(arr.shape)}"
            )
        items = arr.tolist()
        names = [f"{INPUT_BYTES}[{i}]" for i in range(len(items))]
        for name, item in zip(names, items, strict=True):
            if not isinstance(item, (bytes, bytearray, memoryview)):
                raise InvalidInputError(f"{name} must be encoded image bytes, got {type(item).__name__}")
        budget = self.image_budget
        h, w, c = self.manifest.input.shape
        out = np.empty((len(items), h, w, c), dtype=np.float32)
        try:
            if budget is not None:
                # Every header first, and the whole request's pixels, before decoding anything: a refused request
                # costs no decoding, and an accepted one holds one decoded image at a time (plus ``out``).
                sizes = [
                    (name, *probe_image(item, name=name, budget=budget).size)
                    for name, item in zip(names, items, strict=True)
                ]
                budget.check_request(sizes, name=INPUT_BYTES)
            for i, (name, item) in enumerate(zip(names, items, strict=True)):
                out[i] = preprocess(item, self.manifest.input, name=name, budget=budget)
        except ImageError as exc:
            raise InvalidInputError(str(exc)) from exc
        return out


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float32, stable for large logits."""
    z = np.asarray(logits, dtype=np.float32)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    out: np.ndarray = (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
    return out
