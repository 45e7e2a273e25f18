"""TF Serving's message classes, wire-identical to ``tensorflow_serving.apis``, without TensorFlow.

The ``.proto`` subset in ``protocol/protos/`` (same packages, names and field numbers as upstream) is compiled at
development time into ``tfserving.binpb`` (``make protos``); here it is loaded into a *private*
``DescriptorPool``. Never the default pool: ``tensorflow_serving.apis`` registers the same full names there, and
two definitions of ``tensorflow.TensorProto`` in one pool would clash. So both can live in one process, and bytes
from one parse with the other::

    from deepclf.protocol.messages import PredictRequest, model_spec
    req = PredictRequest(model_spec=model_spec("flowers", version=3, signature_name="serving_default"))
    data = req.SerializeToString()          # what the official PredictRequest parses, field for field

Messages are ordinary protobuf messages; only ``isinstance`` checks against the official classes fail (they are
different classes), so convert with ``Official.FromString(ours.SerializeToString())`` where needed.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper
from google.protobuf.message import Message

DESCRIPTOR_SET_NAME = "tfserving.binpb"


def _load_pool() -> descriptor_pool.DescriptorPool:
    # One pool per process (module import), built from the committed descriptor set; it is never mutated after.
    data = resources.files("deepclf.protocol").joinpath(DESCRIPTOR_SET_NAME).read_bytes()
    fds = descriptor_pb2.FileDescriptorSet.FromString(data)
    pool = descriptor_pool.DescriptorPool()
    for fd in fds.file:  # protoc writes dependencies before their dependents
        pool.Add(fd)
    return pool


#: The private pool holding every TF Serving message, enum and service descriptor (pass it to json_format).
POOL: descriptor_pool.DescriptorPool = _load_pool()


def message_class(full_name: str) -> type[Message]:
    """The class of a message in the private pool: ``message_class("tensorflow.serving.PredictRequest")``."""
    return message_factory.GetMessageClass(POOL.FindMessageTypeByName(full_name))


def enum(full_name: str) -> EnumTypeWrapper:
    """An enum of the private pool with ``.Value(name)``, ``.Name(number)`` and attributes (``DataType.DT_FLOAT``)."""
    return EnumTypeWrapper(POOL.FindEnumTypeByName(full_name))


if TYPE_CHECKING:
    # The classes' fields, for type checkers: a stub generated from the same descriptor set (build_protos).
    from deepclf.protocol import _tfserving as _types

    ClassificationRequest = _types.ClassificationRequest
    ClassificationResponse = _types.ClassificationResponse
    ClassificationResult = _types.ClassificationResult
    RegressionResult = _types.RegressionResult
    Code = _types.Code
    DataType = _types.DataType
    Example = _types.Example
    Feature = _types.Feature
    Features = _types.Features
    GetModelMetadataRequest = _types.GetModelMetadataRequest
    GetModelMetadataResponse = _types.GetModelMetadataResponse
    GetModelStatusRequest = _types.GetModelStatusRequest
    GetModelStatusResponse = _types.GetModelStatusResponse
    Input = _types.Input
    ModelSpec = _types.ModelSpec
    ModelVersionStatus = _types.ModelVersionStatus
    MultiInferenceRequest = _types.MultiInferenceRequest
    MultiInferenceResponse = _types.MultiInferenceResponse
    PredictRequest = _types.PredictRequest
    PredictResponse = _types.PredictResponse
    RegressionRequest = _types.RegressionRequest
    RegressionResponse = _types.RegressionResponse
    SignatureDef = _types.SignatureDef
    SignatureDefMap = _types.SignatureDefMap
    StatusProto = _types.StatusProto
    StringValue = _types.StringValue
    TensorInfo = _types.TensorInfo
    TensorProto = _types.TensorProto
    TensorShapeProto = _types.TensorShapeProto
    ModelVersionState = ModelVersionStatus.State
else:
    # tensorflow (core)
    TensorProto = message_class("tensorflow.TensorProto")
    TensorShapeProto = message_class("tensorflow.TensorShapeProto")
    TensorInfo = message_class("tensorflow.TensorInfo")
    SignatureDef = message_class("tensorflow.SignatureDef")
    Example = message_class("tensorflow.Example")
    Feature = message_class("tensorflow.Feature")
    Features = message_class("tensorflow.Features")
    DataType = enum("tensorflow.DataType")
    Code = enum("tensorflow.error.Code")

    # tensorflow.serving
    ModelSpec = message_class("tensorflow.serving.ModelSpec")
    PredictRequest = message_class("tensorflow.serving.PredictRequest")
    PredictResponse = message_class("tensorflow.serving.PredictResponse")
    SignatureDefMap = message_class("tensorflow.serving.SignatureDefMap")
    GetModelMetadataRequest = message_class("tensorflow.serving.GetModelMetadataRequest")
    GetModelMetadataResponse = message_class("tensorflow.serving.GetModelMetadataResponse")
    StatusProto = message_class("tensorflow.serving.StatusProto")
    GetModelStatusRequest = message_class("tensorflow.serving.GetModelStatusRequest")
    ModelVersionStatus = message_class("tensorflow.serving.ModelVersionStatus")
    GetModelStatusResponse = message_class("tensorflow.serving.GetModelStatusResponse")
    ModelVersionState = enum("tensorflow.serving.ModelVersionStatus.State")
    Input = message_class("tensorflow.serving.Input")
    ClassificationRequest = message_class("tensorflow.serving.ClassificationRequest")
    ClassificationResponse = message_class("tensorflow.serving.ClassificationResponse")
    ClassificationResult = message_class("tensorflow.serving.ClassificationResult")
    RegressionResult = message_class("tensorflow.serving.RegressionResult")
    RegressionRequest = message_class("tensorflow.serving.RegressionRequest")
    RegressionResponse = message_class("tensorflow.serving.RegressionResponse")
    MultiInferenceRequest = message_class("tensorflow.serving.MultiInferenceRequest")
    MultiInferenceResponse = message_class("tensorflow.serving.MultiInferenceResponse")
    # google.protobuf (the well-known types the TF Serving protos use)
    StringValue = message_class("google.protobuf.StringValue")


#: The metadata key TF Serving uses for the packed SignatureDefMap (the only metadata field it supports).
SIGNATURE_DEF_FIELD = "signature_def"
_TYPE_URL_PREFIX = "type.googleapis.com/"


def model_spec(
    name: str,
    version: int | None = None,
    *,
    version_label: str | None = None,
    signature_name: str = "",
) -> ModelSpec:
    """A ``ModelSpec``; ``version`` and ``version_label`` are exclusive (unset: the latest version).

    >>> model_spec("flowers", 3, signature_name="predict_image_bytes").version.value
    3
    """
    if version is not None and version_label is not None:
        raise ValueError(f"give a version ({version!r}) or a version label ({version_label!r}), not both")
    spec = ModelSpec(name=name, signature_name=signature_name)
    if version is not None:
        spec.version.value = int(version)
    elif version_label is not None:
        spec.version_label = version_label
    return spec


def pack_signature_defs(
    response: GetModelMetadataResponse, signature_defs: SignatureDefMap
) -> GetModelMetadataResponse:
    """Put a ``SignatureDefMap`` into ``response.metadata["signature_def"]`` (an ``Any``), as TF Serving does.

    Done by hand (type URL + bytes) because ``Any.Pack`` looks the type up by class, and ours are private-pool
    classes; the result is what ``Any.Pack(signature_defs, deterministic=True)`` makes.
    """
    entry = response.metadata[SIGNATURE_DEF_FIELD]
    entry.type_url = _TYPE_URL_PREFIX + signature_defs.DESCRIPTOR.full_name
    # Deterministic: map order would otherwise vary, and equal responses should be equal bytes.
    entry.value = signature_defs.SerializeToString(deterministic=True)
    return response


def unpack_signature_defs(response: GetModelMetadataResponse) -> SignatureDefMap:
    """The ``SignatureDefMap`` packed in a ``GetModelMetadataResponse`` (our class or the official one).

    Raises ``KeyError`` naming what is there when the response has no ``signature_def`` entry, ``ValueError``
    when it packs another type.
    """
    if SIGNATURE_DEF_FIELD not in response.metadata:
        raise KeyError(f"no {SIGNATURE_DEF_FIELD!r} in the metadata; it has {sorted(response.metadata)!r}")
    entry = response.metadata[SIGNATURE_DEF_FIELD]
    expected = _TYPE_URL_PREFIX + SignatureDefMap.DESCRIPTOR.full_name
    if entry.type_url.split("/")[-1] != SignatureDefMap.DESCRIPTOR.full_name:
        raise ValueError(f"metadata[{SIGNATURE_DEF_FIELD!r}] packs {entry.type_url!r}, expected {expected!r}")
    return SignatureDefMap.FromString(entry.value)
