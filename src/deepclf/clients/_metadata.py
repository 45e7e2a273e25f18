"""What servers say about a model, read into ``ModelMetadata``/``ModelStatus``/``Manifest``; shared by both codecs.

Both transports get TF Serving's ``GetModelMetadataResponse`` and ``GetModelStatusResponse`` (over REST as JSON,
which ``deepclf.protocol.rest`` parses into the same messages), so one reader serves both; the edge server's
manifest extension (``DEEPCLF_MANIFEST``) arrives as a JSON document either way.
"""

from __future__ import annotations

from typing import Any

from deepclf.clients._errors import ProtocolError
from deepclf.clients._models import ModelMetadata, ModelStatus, VersionStatus
from deepclf.errors import DeepclfError
from deepclf.manifest import Manifest
from deepclf.protocol import messages
from deepclf.protocol.errors import Code
from deepclf.protocol.tensors import numpy_dtype_for
from deepclf.signatures import SignatureSpec, TensorSpec

#: The deepclf extension of GetModelMetadata that returns a model version's manifest (labels, input size).
DEEPCLF_MANIFEST = "deepclf_manifest"


def manifest_from(doc: Any) -> Manifest:
    """The manifest document of a metadata answer (either transport) -> ``Manifest``, or ``ProtocolError``."""
    try:
        return Manifest.from_dict(doc)
    except (DeepclfError, TypeError, ValueError, AttributeError) as exc:
        raise ProtocolError(f"metadata[{DEEPCLF_MANIFEST!r}] is not a deepclf manifest: {exc}") from None


def _tensor_spec(name: str, info: Any) -> TensorSpec:
    dtype = "string" if info.dtype == messages.DataType.DT_STRING else numpy_dtype_for(info.dtype).name
    shape: tuple[int | None, ...] = ()
    if not info.tensor_shape.unknown_rank:
        shape = tuple(None if d.size < 0 else int(d.size) for d in info.tensor_shape.dim)
    return TensorSpec(name, dtype, shape)


def metadata_from_proto(response: Any, model: str) -> ModelMetadata:
    """A ``GetModelMetadataResponse`` (gRPC, or parsed from REST JSON) -> ``ModelMetadata``."""
    try:
        sigs = messages.unpack_signature_defs(response)
    except (KeyError, ValueError) as exc:
        raise ProtocolError(f"model metadata without a usable signature_def: {exc}") from None
    out: dict[str, SignatureSpec] = {}
    for name in sorted(sigs.signature_def):
        sd = sigs.signature_def[name]
        out[name] = SignatureSpec(
            name,
            {k: _tensor_spec(k, v) for k, v in sorted(sd.inputs.items())},
            {k: _tensor_spec(k, v) for k, v in sorted(sd.outputs.items())},
        )
    spec = response.model_spec
    version = int(spec.version.value) if spec.HasField("version") else None
    return ModelMetadata(spec.name or model, version, out)


def status_from_proto(response: Any, model: str) -> ModelStatus:
    """A ``GetModelStatusResponse`` (gRPC, or parsed from REST JSON) -> ``ModelStatus``."""
    versions = []
    for v in response.model_version_status:
        try:
            state = messages.ModelVersionState.Name(v.state)
        except ValueError:
            state = str(v.state)
        try:
            code = Code(int(v.status.error_code)).name
        except ValueError:
            code = str(v.status.error_code)
        versions.append(VersionStatus(int(v.version), state, code, v.status.error_message))
    return ModelStatus(model, tuple(sorted(versions, key=lambda s: s.version)))
