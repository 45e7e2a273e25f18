"""How a call addresses a model and its inputs: the ``ModelKey`` (name, version, label) and the ``ModelSpec``
built from it, named inputs as arrays::

    key = model_key("flowers", None, "stable")    # ("flowers", None, "stable"): the version labelled stable
    model_spec(key, "serving_default")            # the ModelSpec message of a request
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from deepclf.clients._models import ModelMetadata
from deepclf.errors import UsageError
from deepclf.protocol import messages
from deepclf.protocol.errors import InvalidInput
from deepclf.protocol.tensors import as_array

#: (model, version, label): what one ``ModelSpec`` addresses; the key of the per-model caches.
ModelKey = tuple[str, "int | None", "str | None"]


def model_key(model: str, version: int | None, label: str | None) -> ModelKey:
    """Validate how a call addresses a model: a name, and a version *or* a label (neither: the latest)."""
    if not isinstance(model, str) or not model:
        raise UsageError(f"model must be a non-empty model name, got {model!r}")
    if version is not None and label is not None:
        raise UsageError(f"address a model by version ({version!r}) or by label ({label!r}), not both")
    if version is not None and (isinstance(version, bool) or not isinstance(version, (int, np.integer)) or version < 0):
        raise UsageError(f"version must be a non-negative integer, got {version!r}")
    if label is not None and (not isinstance(label, str) or not label):
        raise UsageError(f"label must be a non-empty string, got {label!r}")
    return (model, None if version is None else int(version), label)


def model_spec(key: ModelKey, signature: str = "") -> Any:
    """The ``ModelSpec`` message for a key."""
    model, version, label = key
    return messages.model_spec(model, version, version_label=label, signature_name=signature)


def as_inputs(inputs: Mapping[str, Any] | Any) -> dict[str, np.ndarray] | np.ndarray:
    """Named inputs as arrays (bytes kept intact), or one array for a signature's single input."""
    if isinstance(inputs, Mapping):
        if not inputs:
            raise InvalidInput("predict needs at least one input, got an empty mapping")
        bad = [k for k in inputs if not isinstance(k, str)]
        if bad:
            raise InvalidInput(f"input names must be strings, got {bad!r}")
        return {k: as_array(v) for k, v in inputs.items()}
    return as_array(inputs)


def single_input_name(md: ModelMetadata, signature: str) -> str:
    """The name of a signature's only input (for predict calls given one bare array)."""
    spec = md.signatures.get(signature)
    if spec is None:
        raise InvalidInput(f"model {md.model!r} has no signature {signature!r}; it has {sorted(md.signatures)}")
    if len(spec.inputs) != 1:
        raise InvalidInput(
            f"signature {signature!r} takes {len(spec.inputs)} inputs {sorted(spec.inputs)}; pass a mapping "
            "of input name to array"
        )
    return next(iter(spec.inputs))
