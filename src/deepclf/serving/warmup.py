"""Model warmup as TF Serving does it (``--enable_model_warmup``, on by default), without TensorFlow.

A version folder may hold ``assets.extra/tf_serving_warmup_requests``: a TFRecord file (each record: uint64 length,
masked CRC32C of the length, the data, masked CRC32C of the data) of ``tensorflow.serving.PredictionLog``
messages (``deepclf convert`` writes one). Before the version becomes AVAILABLE each ``predict_log``,
``classify_log`` and ``regress_log`` request is run through the freshly loaded runner (Classify/Regress through
the same signature checks, tf.Example serialization and result filling the APIs use); any failure fails the load::

    n = run_warmup(version_dir, runner)     # records replayed (0 when there is no warmup file)
    for data in read_tfrecords(path): ...   # the raw records, CRCs checked

Records of another kind (MultiInference, session_run) are skipped with a warning; more than 1000 records fail
as in TF Serving (``kMaxNumRecords``).
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from deepclf.protocol import errors as E

log = logging.getLogger("deepclf.serving")

WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"
MAX_RECORDS = 1000  # TF Serving's kMaxNumRecords


def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), as TFRecord uses: ``crc32c(b"123456789") == 0xE3069283``."""
    crc = 0xFFFFFFFF
    table = _TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC: rotate right by 15 bits and add 0xa282ead8."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def read_tfrecords(path: str | Path) -> Iterator[bytes]:
    """The records of an uncompressed TFRecord file; ``DataLoss`` naming the record on bad framing or CRCs."""
    p = Path(path)
    with p.open("rb") as f:
        index = 0
        while True:
            header = f.read(12)
            if not header:
                return
            hint = ". Please verify your warmup data is in TFRecord format."
            if len(header) < 12:
                raise E.DataLoss(f"{p}: record {index} is truncated (header of {len(header)} of 12 bytes){hint}")
            (length,) = struct.unpack("<Q", header[:8])
            (length_crc,) = struct.unpack("<I", header[8:])
            if masked_crc32c(header[:8]) != length_crc:
                raise E.DataLoss(f"{p}: record {index}: corrupted length (CRC mismatch){hint}")
            data = f.read(length)
            footer = f.read(4)
            if len(data) < length or len(footer) < 4:
                raise E.DataLoss(f"{p}: record {index} is truncated (expected {length} bytes){hint}")
            if masked_crc32c(data) != struct.unpack("<I", footer)[0]:
                raise E.DataLoss(f"{p}: record {index}: corrupted data (CRC mismatch){hint}")
            yield data
            index += 1


def run_warmup(
    version_dir: str | Path,
    runner: Any,
    *,
    model: str = "?",
    version: int | str = "?",
    records_read: list[int] | None = None,
) -> int:
    """Replay the version's warmup requests through ``runner.run``; the number of requests run.

    Raises the request's own error (so the load fails with it), ``InvalidInput`` for an unparseable record or more
    than 1000 records, ``DataLoss`` for a file that is not TFRecord. ``records_read`` (a one-item list): set to the
    number of records read so far, also when it raises (TF Serving's ``model_warmup_records_read``).
    """
    from deepclf.protocol.messages import message_class
    from deepclf.protocol.tensors import to_ndarray

    path = Path(version_dir) / WARMUP_FILE
    if not path.is_file():
        log.info("model %r version %s: no warmup data file found at %s", model, version, path)
        return 0
    prediction_log = message_class("tensorflow.serving.PredictionLog")
    t0 = time.perf_counter()
    count = skipped = 0
    for i, data in enumerate(read_tfrecords(path)):
        if records_read is not None:
            records_read[0] = i + 1
        if i >= MAX_RECORDS:
            raise E.InvalidInput(f"Number of warmup records exceeds the maximum ({MAX_RECORDS}) at {path}")
        msg: Any = prediction_log()
        try:
            msg.ParseFromString(data)
        except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError and friends: the record is not a PredictionLog
            raise E.InvalidInput(f"Failed to parse warmup record {i} from {path}: {exc}") from None
        kind = msg.WhichOneof("log_type")
        if kind is None:
            continue  # TF Serving skips a record with no log_type
        if kind not in ("predict_log", "classify_log", "regress_log", "multi_inference_log"):
            skipped += 1
            continue
        try:
            if kind == "predict_log":
                request = msg.predict_log.request
                inputs = {name: to_ndarray(t) for name, t in request.inputs.items()}
                runner.run(inputs, request.model_spec.signature_name or "serving_default")
            elif kind == "multi_inference_log":
                _replay_multi_inference(runner, msg.multi_inference_log.request)
            else:
                _replay_examples(runner, kind, getattr(msg, kind).request)
        except Exception as exc:
            err = E.from_exception(exc)
            raise type(err)(f"warmup request {i} from {path} failed: {err.message}") from exc
        count += 1
    if skipped:
        log.warning(
            "model %r version %s: %d warmup records skipped (only predict/classify/regress/multi-inference logs "
            "are replayed)",
            model,
            version,
            skipped,
        )
    log.info(
        "Finished reading warmup data for model %r version %s at %s. Number of warmup records read: %d. "
        "Elapsed time (microseconds): %d.",
        model,
        version,
        path,
        count,
        (time.perf_counter() - t0) * 1e6,
    )
    return count


def _replay_multi_inference(runner: Any, request: Any) -> None:
    """A ``MultiInferenceRequest``: each task's Classify or Regress on the shared input, as the API runs them."""
    from deepclf.protocol.errors import Unimplemented
    from deepclf.serving.signaturedefs import CLASSIFY_METHOD_NAME, REGRESS_METHOD_NAME

    kinds = {CLASSIFY_METHOD_NAME: "classify_log", REGRESS_METHOD_NAME: "regress_log"}
    for task in request.tasks:
        if task.method_name not in kinds:
            raise Unimplemented(f"Unsupported signature method_name: {task.method_name}")
        _run_examples(runner, kinds[task.method_name], task.model_spec.signature_name, request.input)


def _replay_examples(runner: Any, kind: str, request: Any) -> None:
    """A ``ClassificationRequest`` / ``RegressionRequest`` through the path the Classify/Regress APIs take."""
    _run_examples(runner, kind, request.model_spec.signature_name, request.input)


def _run_examples(runner: Any, kind: str, signature_name: str, input_: Any) -> None:
    """Classify (``kind="classify_log"``) or Regress an ``Input`` on ``signature_name``, as the APIs do."""
    from deepclf.protocol.messages import ClassificationResult, RegressionResult
    from deepclf.serving.examples import examples_tensor, fill_classification, fill_regression
    from deepclf.serving.signaturedefs import CLASSIFY, EXAMPLES_INPUT, REGRESS, inference_signature

    verb = CLASSIFY if kind == "classify_log" else REGRESS
    key = inference_signature(runner.signatures, runner, signature_name, verb)
    inputs = examples_tensor(input_)
    outputs = runner.run(inputs, key)
    n = len(inputs[EXAMPLES_INPUT])
    if verb == CLASSIFY:
        fill_classification(outputs, n, ClassificationResult())
    else:
        fill_regression(outputs, n, RegressionResult())
