"""SavedModel export with explicit, stable signatures, and the check that reloads it and compares it to Keras.

The exported version folder serves three signatures (names from ``deepclf.manifest`` and ``deepclf.runtime.base``):

* ``serving_default``: ``image`` float32 [batch, H, W, 3] in 0..255 ->
  ``probabilities`` float32 [batch, C] (softmax of the logits), ``classes`` int64 [batch] (argmax of the logits),
  ``labels`` string [batch] (the manifest's labels, gathered in the graph);
* ``predict_image_bytes``: ``image_bytes`` string [batch] of encoded JPEG/PNG (the ``_bytes`` suffix lets TF
  Serving's REST API take ``{"b64": ...}``), decoded and resized in the graph by ``deepclf.preprocessing_tf``;
* ``classify_image_bytes`` (method ``tensorflow/serving/classify``): ``inputs`` string [batch] of serialized
  tf.Examples whose ``image/encoded`` bytes feature is the encoded image (parsed with ``tf.io.parse_example``) ->
  ``classes`` string [batch, C] (the labels) and ``scores`` float32 [batch, C], so TF Serving's Classify answers
  what ``deepclf serve`` answers.

The TFLite variants are converted from a second, float-only export (``export_tflite_source``): TFLite builtins
have no string tensors, so that signature has ``probabilities`` and ``classes`` only, and runners map classes to
labels with the manifest. TensorFlow is imported by the functions, never at import time of this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from deepclf.errors import ModelFormatError, require_tensorflow
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
from deepclf.runtime.base import (
    CLASSIFY_METHOD,
    EXAMPLE_CLASSES,
    EXAMPLE_IMAGE_FEATURE,
    EXAMPLE_INPUT,
    EXAMPLE_SCORES,
    SIGNATURE_EXAMPLE,
)
from deepclf.signatures import SignatureSpec, TensorSpec, standard_signatures

#: SavedModel vs Keras, float signature: the same float32 graph, so only op-order noise is allowed.
SAVEDMODEL_TOLERANCE = 1e-5
#: Bytes signature (TF decode + resize in the graph) vs float signature on deepclf.preprocessing's tensors:
#: both decoders are libjpeg(-turbo) with the same IDCT and the resize is the same kernel, so they agree to
#: float noise on real JPEGs; 1e-4 leaves room for a different libjpeg build without hiding a real mismatch.
BYTES_TOLERANCE = 1e-4


def _heads(tf: Any, model: Any, manifest: Manifest, *, with_labels: bool):
    labels = tf.constant(manifest.labels, dtype=tf.string)

    def heads(images):
        logits = model(images, training=False)
        # argmax of the logits, not of the probabilities: identical in float, and in the int8 TFLite model it
        # keeps the class decision on the finer logits scale instead of 1/256-step probabilities.
        classes = tf.argmax(logits, axis=-1, output_type=tf.int64)
        out = {OUTPUT_PROBABILITIES: tf.nn.softmax(logits, axis=-1), OUTPUT_CLASSES: classes}
        if with_labels:
            out[OUTPUT_LABELS] = tf.gather(labels, classes)
        return out

    return heads


def _export(model: Any, manifest: Manifest, out: str | Path, *, serving: bool) -> Path:
    tf = require_tensorflow("exporting a SavedModel")
    import keras

    h, w, c = manifest.input.shape
    heads = _heads(tf, model, manifest, with_labels=serving)

    def serve_image(image):
        return heads(image)

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        SIGNATURE_FLOAT, serve_image, input_signature=[tf.TensorSpec([None, h, w, c], tf.float32, name=INPUT_FLOAT)]
    )
    if serving:
        from deepclf import preprocessing_tf  # imports TF

        def serve_image_bytes(image_bytes):
            return heads(preprocessing_tf.decode_and_resize_batch(image_bytes, h, w))

        archive.add_endpoint(
            SIGNATURE_BYTES, serve_image_bytes, input_signature=[tf.TensorSpec([None], tf.string, name=INPUT_BYTES)]
        )
        labels = tf.constant(manifest.labels, dtype=tf.string)

        def classify_image_bytes(inputs):
            # TF Serving's Classify: serialized tf.Examples carrying the encoded image -> labels and probabilities
            parsed = tf.io.parse_example(inputs, {EXAMPLE_IMAGE_FEATURE: tf.io.FixedLenFeature([], tf.string)})
            probs = heads(preprocessing_tf.decode_and_resize_batch(parsed[EXAMPLE_IMAGE_FEATURE], h, w))[
                OUTPUT_PROBABILITIES
            ]
            classes = tf.tile(labels[None, :], [tf.shape(probs)[0], 1])
            return {EXAMPLE_CLASSES: classes, EXAMPLE_SCORES: probs}

        archive.add_endpoint(
            SIGNATURE_EXAMPLE,
            classify_image_bytes,
            input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLE_INPUT)],
        )
    archive.write_out(str(out), verbose=False)
    if serving:
        _set_method_name(Path(out), SIGNATURE_EXAMPLE, CLASSIFY_METHOD)
    return Path(out)


def _set_method_name(path: Path, signature: str, method: str) -> None:
    """Give one signature of a written SavedModel its TF Serving method name (TF2 writes every one as predict)."""
    from tensorflow.core.protobuf import saved_model_pb2

    sm = saved_model_pb2.SavedModel()
    pb = path / "saved_model.pb"
    sm.ParseFromString(pb.read_bytes())
    for mg in sm.meta_graphs:
        if signature in mg.signature_def:
            mg.signature_def[signature].method_name = method
    pb.write_bytes(sm.SerializeToString())


def export_savedmodel(model: Any, manifest: Manifest, out: str | Path) -> Path:
    """Write ``model`` (logits out) as a SavedModel with both serving signatures into the folder ``out``."""
    return _export(model, manifest, out, serving=True)


def export_tflite_source(model: Any, manifest: Manifest, out: str | Path) -> Path:
    """Write the float-only SavedModel the TFLite converter starts from (``serving_default`` without labels)."""
    return _export(model, manifest, out, serving=False)


def signature_specs(loaded: Any) -> dict[str, SignatureSpec]:
    """The signatures of a ``tf.saved_model.load``-ed object as ``SignatureSpec``s (dtype ``string`` for bytes)."""

    def spec(name: str, t: Any) -> TensorSpec:
        dtype = "string" if t.dtype.name == "string" else t.dtype.name
        shape = tuple(None if d is None else int(d) for d in t.shape.as_list())
        return TensorSpec(name, dtype, shape)

    out = {}
    for sig_name, fn in loaded.signatures.items():
        _, kwargs = fn.structured_input_signature
        out[sig_name] = SignatureSpec(
            sig_name,
            {k: spec(k, v) for k, v in kwargs.items()},
            {k: spec(k, v) for k, v in fn.structured_outputs.items()},
        )
    return out


def verify_savedmodel(
    path: str | Path,
    manifest: Manifest,
    images: np.ndarray,
    reference: np.ndarray,
    image_bytes: list[bytes],
    bytes_reference: np.ndarray,
) -> dict[str, Any]:
    """Reload the SavedModel at ``path`` and check it against Keras; raise ``ModelFormatError`` on any mismatch.

    Checks the signature names, tensor names, dtypes and shapes against ``standard_signatures(manifest)``, then
    runs ``serving_default`` on ``images`` (compared with ``reference``, Keras' softmax, within
    ``SAVEDMODEL_TOLERANCE``) and ``predict_image_bytes`` on ``image_bytes`` (compared with ``bytes_reference``,
    Keras on ``deepclf.preprocessing``'s tensors of the same files, within ``BYTES_TOLERANCE``).
    Returns the measured differences.
    """
    tf = require_tensorflow("verifying a SavedModel")
    loaded = tf.saved_model.load(str(path))
    got = signature_specs(loaded)
    want = standard_signatures(manifest)
    for name, spec in want.items():
        if got.get(name) != spec:
            raise ModelFormatError(f"exported signature {name!r} is {got.get(name)}, expected {spec}")

    labels = np.array([lab.encode() for lab in manifest.labels], dtype=object)
    float_fn = loaded.signatures[SIGNATURE_FLOAT]
    probs, classes = [], []
    for start in range(0, len(images), 32):
        out = float_fn(**{INPUT_FLOAT: tf.constant(images[start : start + 32])})
        probs.append(out[OUTPUT_PROBABILITIES].numpy())
        classes.append(out[OUTPUT_CLASSES].numpy())
        if list(out[OUTPUT_LABELS].numpy()) != list(labels[classes[-1]]):
            raise ModelFormatError("exported 'labels' output does not match the manifest's labels for 'classes'")
    p = np.concatenate(probs) if probs else np.zeros((0, manifest.num_classes), np.float32)
    float_diff = float(np.abs(p - reference).max()) if len(p) else 0.0
    if float_diff > SAVEDMODEL_TOLERANCE:
        raise ModelFormatError(
            f"SavedModel {SIGNATURE_FLOAT!r} differs from Keras by {float_diff:.3g} in probability "
            f"(allowed {SAVEDMODEL_TOLERANCE:g})"
        )
    if len(p) and not np.array_equal(np.concatenate(classes), reference.argmax(-1)):
        raise ModelFormatError(f"SavedModel {SIGNATURE_FLOAT!r} classes differ from Keras' argmax")

    bytes_diff = 0.0
    if image_bytes:
        out = loaded.signatures[SIGNATURE_BYTES](**{INPUT_BYTES: tf.constant(image_bytes, dtype=tf.string)})
        bytes_diff = float(np.abs(out[OUTPUT_PROBABILITIES].numpy() - bytes_reference).max())
        if bytes_diff > BYTES_TOLERANCE:
            raise ModelFormatError(
                f"SavedModel {SIGNATURE_BYTES!r} (in-graph decoding) differs from {SIGNATURE_FLOAT!r} on "
                f"deepclf.preprocessing's tensors by {bytes_diff:.3g} (allowed {BYTES_TOLERANCE:g})"
            )
    return {
        "images": len(p),
        "max_abs_diff": float_diff,
        "bytes_images": len(image_bytes),
        "bytes_max_abs_diff": bytes_diff,
        "top1_agreement": 1.0,
    }
