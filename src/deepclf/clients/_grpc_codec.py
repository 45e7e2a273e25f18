"""TF Serving's gRPC messages without I/O: requests built for a ``ModelKey``, answers read into arrays and
manifests (metadata and status answers: ``_metadata``); the gRPC clients only send and receive::

    req = grpc_predict_request({"image": batch}, ("flowers", 1, None), "serving_default")   # PredictRequest
    outputs = grpc_read_predict(response)                                                 # {"probabilities": ...}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson
from google.protobuf.message import DecodeError

from deepclf.clients._addressing import ModelKey, model_spec
from deepclf.clients._errors import ProtocolError
from deepclf.clients._metadata import DEEPCLF_MANIFEST, manifest_from
from deepclf.manifest import Manifest
from deepclf.protocol import messages
from deepclf.protocol.errors import InvalidInput
from deepclf.protocol.tensors import to_ndarray, to_tensor_proto

#: gRPC message limit for both directions: a batch of 32 float32 180x180 images is ~12 MB, over gRPC's 4 MB default.
DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024 * 1024


def grpc_predict_request(inputs: Mapping[str, np.ndarray], key: ModelKey, signature: str) -> Any:
    """A ``PredictRequest`` for named inputs."""
    req = messages.PredictRequest(model_spec=model_spec(key, signature))
    for name, value in inputs.items():
        req.inputs[name].CopyFrom(to_tensor_proto(value))
    return req


def grpc_read_predict(response: Any) -> dict[str, np.ndarray]:
    """A ``PredictResponse`` -> named arrays (writable copies, not views of the message)."""
    try:
        return {name: np.array(to_ndarray(t), copy=True) for name, t in response.outputs.items()}
    except InvalidInput as exc:
        raise ProtocolError(f"the server's predict answer holds an unreadable tensor: {exc}") from None


def grpc_metadata_request(key: ModelKey) -> Any:
    return messages.GetModelMetadataRequest(model_spec=model_spec(key), metadata_field=[messages.SIGNATURE_DEF_FIELD])


def grpc_manifest_request(key: ModelKey) -> Any:
    """GetModelMetadata asking for the deepclf extension field alone (TF Serving answers INVALID_ARGUMENT)."""
    return messages.GetModelMetadataRequest(model_spec=model_spec(key), metadata_field=[DEEPCLF_MANIFEST])


_STRING_VALUE = "google.protobuf.StringValue"


def grpc_read_manifest(response: Any) -> Manifest | None:
    """The manifest packed in a ``GetModelMetadataResponse`` (an ``Any`` holding a ``StringValue`` of JSON)."""
    if DEEPCLF_MANIFEST not in response.metadata:
        return None
    entry = response.metadata[DEEPCLF_MANIFEST]
    if entry.type_url.split("/")[-1] != _STRING_VALUE:
        raise ProtocolError(f"metadata[{DEEPCLF_MANIFEST!r}] packs {entry.type_url!r}, expected {_STRING_VALUE}")
    try:
        text = messages.StringValue.FromString(entry.value).value
        return manifest_from(orjson.loads(text))
    except (DecodeError, orjson.JSONDecodeError) as exc:
        raise ProtocolError(f"metadata[{DEEPCLF_MANIFEST!r}] is not a JSON manifest: {exc}") from None


def grpc_status_request(key: ModelKey) -> Any:
    return messages.GetModelStatusRequest(model_spec=model_spec(key))
