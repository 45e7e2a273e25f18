"""Typed results of ``metadata()`` and ``status()`` (``classify()`` returns ``deepclf.runtime.Classification``).

Signatures reuse the runtime's ``SignatureSpec``/``TensorSpec``, so a remote model's metadata compares equal to a
local runner's ``signatures``::

    md = client.metadata("flowers")
    md.signatures["serving_default"].inputs["image"]     # TensorSpec('image', 'float32', (None, 180, 180, 3))
    md.input_size()                                       # (180, 180)
    client.status("flowers").available_versions           # [1, 3]
"""

from __future__ import annotations

from dataclasses import dataclass

from deepclf.manifest import INPUT_FLOAT, SIGNATURE_FLOAT
from deepclf.protocol.errors import InvalidInput
from deepclf.signatures import SignatureSpec


@dataclass(frozen=True)
class ModelMetadata:
    """A model version's signatures, as ``GetModelMetadata`` / ``GET .../metadata`` describe them."""

    model: str
    version: int | None
    signatures: dict[str, SignatureSpec]

    def input_size(self, signature: str = SIGNATURE_FLOAT, input_name: str = INPUT_FLOAT) -> tuple[int, int]:
        """(height, width) of the image input of ``signature`` (``[batch, H, W, C]``), to preprocess for it."""
        spec = self.signatures.get(signature)
        if spec is None:
            raise InvalidInput(f"model {self.model!r} has no signature {signature!r}; it has {sorted(self.signatures)}")
        tensor = spec.inputs.get(input_name)
        if tensor is None and len(spec.inputs) == 1:
            tensor = next(iter(spec.inputs.values()))
        if tensor is None or len(tensor.shape) != 4 or tensor.shape[1] is None or tensor.shape[2] is None:
            raise InvalidInput(
                f"signature {signature!r} of model {self.model!r} has no image input of shape [batch, H, W, C] "
                f"with a known H and W; its inputs: {spec.inputs}"
            )
        return (int(tensor.shape[1]), int(tensor.shape[2]))


@dataclass(frozen=True)
class VersionStatus:
    """One version's state (``START``, ``LOADING``, ``AVAILABLE``, ``UNLOADING``, ``END``) and its error, if any."""

    version: int
    state: str
    error_code: str = "OK"
    error_message: str = ""


@dataclass(frozen=True)
class ModelStatus:
    """The versions of a model that the server knows, as ``GetModelStatus`` / ``GET /v1/models/<name>`` list them."""

    model: str
    versions: tuple[VersionStatus, ...]

    @property
    def available_versions(self) -> list[int]:
        """Versions in state ``AVAILABLE``, lowest first."""
        return sorted(v.version for v in self.versions if v.state == "AVAILABLE")

    @property
    def available(self) -> bool:
        """Whether at least one version can serve requests."""
        return bool(self.available_versions)
