"""TF Serving warmup requests: ``assets.extra/tf_serving_warmup_requests`` in a version folder.

TF Serving (``--enable_model_warmup``, on by default) replays these ``PredictionLog`` records when it loads a
version, so the first real request does not pay for graph initialisation. The records are real validation images:
one ``predict_image_bytes`` request per image and one ``serving_default`` float request, i.e. both signatures.
Uses the official ``tensorflow_serving.apis`` protos (convert needs TensorFlow anyway)::

    write_warmup(version_dir, "flowers", [jpeg_bytes, ...], float_batch)
    logs = read_warmup(version_dir)    # list of PredictionLog
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from deepclf.errors import MissingDependencyError, require_tensorflow
from deepclf.manifest import INPUT_BYTES, INPUT_FLOAT, SIGNATURE_BYTES, SIGNATURE_FLOAT

WARMUP_DIR = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"


def _apis():  # -> (predict_pb2, prediction_log_pb2)
    try:
        from tensorflow_serving.apis import predict_pb2, prediction_log_pb2
    except ImportError as exc:
        raise MissingDependencyError("tensorflow-serving-api", "dev", "writing TF Serving warmup requests") from exc
    return predict_pb2, prediction_log_pb2


def warmup_path(version_dir: str | Path) -> Path:
    """Where TF Serving looks for the warmup file in a version folder."""
    return Path(version_dir) / WARMUP_DIR / WARMUP_FILE


def write_warmup(
    version_dir: str | Path, model_name: str, image_bytes: list[bytes], images: np.ndarray | None = None
) -> Path:
    """Write PredictionLog records: one bytes request per encoded image and one float request for ``images``."""
    tf = require_tensorflow("writing TF Serving warmup requests")
    predict_pb2, prediction_log_pb2 = _apis()
    path = warmup_path(version_dir)
    path.parent.mkdir(parents=True, exist_ok=True)

    def record(signature: str, name: str, tensor: Any) -> bytes:
        req = predict_pb2.PredictRequest()
        req.model_spec.name = model_name
        req.model_spec.signature_name = signature
        req.inputs[name].CopyFrom(tf.make_tensor_proto(tensor))
        log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=req))
        return log.SerializeToString()

    with tf.io.TFRecordWriter(str(path)) as writer:
        for data in image_bytes:
            writer.write(record(SIGNATURE_BYTES, INPUT_BYTES, np.array([data], dtype=object)))
        if images is not None and len(images):
            writer.write(record(SIGNATURE_FLOAT, INPUT_FLOAT, np.asarray(images, dtype=np.float32)))
    return path


def read_warmup(version_dir: str | Path) -> list[Any]:
    """Parse the warmup file of a version folder back into ``PredictionLog`` messages."""
    tf = require_tensorflow("reading TF Serving warmup requests")
    _, prediction_log_pb2 = _apis()
    logs = []
    for raw in tf.data.TFRecordDataset(str(warmup_path(version_dir))):
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(raw.numpy())
        logs.append(log)
    return logs
