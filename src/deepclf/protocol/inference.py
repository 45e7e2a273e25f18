"""TF Serving's Classify / Regress inputs and results, without TensorFlow: tf.Example lists from REST JSON or the
``Input`` message, the serialized-Examples tensor a classification/regression signature takes, and the REST
result bodies (docs/tfserving-behaviour.md §5.5, §6.1)::

    inp = input_from_json(b'{"examples": [{"x": 2.0}]}', "classify")     # an ``Input`` message
    serialized = serialize_input(inp)              # [b"..."]: one serialized tf.Example each (context first)
    classify_results_to_json(response.result)      # b'{"results":[[["",3.0]]]}'
    regress_results_to_json(response.result)       # b'{"results":[3.0]}'
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import numpy as np
import orjson

from deepclf.protocol import messages
from deepclf.protocol.errors import InvalidInput

__all__ = [
    "classify_results_to_json",
    "input_from_json",
    "regress_results_to_json",
    "serialize_input",
]

_OPTS = orjson.OPT_SERIALIZE_NUMPY


def _load(body: bytes | str) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"JSON Parse error: {exc}") from None


def _json_type(value: Any) -> str:
    if value is None:
        return "Null"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, str):
        return "String"
    if isinstance(value, bool):
        return "True" if value else "False"
    return "Number"


def _fill_features(features: Any, doc: Any) -> None:
    """One JSON object of features into a ``Features`` message (TF Serving's kind per element, §5.5)."""
    if not isinstance(doc, dict):
        raise InvalidInput(f"Example must be JSON object but got JSON {_json_type(doc)}")
    for name, value in doc.items():
        values = value if isinstance(value, list) else [value]
        kind: str | None = None
        items: list[Any] = []
        for v in values:
            if isinstance(v, dict) and set(v) == {"b64"} and isinstance(v["b64"], str):
                try:
                    item: Any = base64.b64decode(v["b64"], validate=True)
                except (binascii.Error, ValueError):
                    raise InvalidInput(f"Unable to base64 decode feature: {name}") from None
                k = "bytes"
            elif isinstance(v, str):
                item, k = v.encode("utf-8"), "bytes"
            elif isinstance(v, bool):
                item, k = int(v), "int64"
            elif isinstance(v, int):
                if v >= 2**63:
                    raise InvalidInput(f"Feature: {name} has uint64_t element. Only int64_t is supported.")
                item, k = v, "int64"
            elif isinstance(v, float):
                item, k = v, "float"
            else:
                raise InvalidInput(f"Feature: {name} has element with unexpected JSON type: {_json_type(v)}")
            if kind is None:
                kind = k
            elif k != kind:
                raise InvalidInput(f"Unexpected element type in feature: {name} expecting type: {kind}")
            items.append(item)
        feature = features.feature[name]
        if kind == "bytes":
            feature.bytes_list.value.extend(items)
        elif kind == "int64":
            feature.int64_list.value.extend(items)
        elif kind == "float":
            feature.float_list.value.extend(items)
        else:  # an empty list: an empty (kind-less) feature
            feature.SetInParent()


def input_from_json(body: bytes | str, method: str) -> tuple[str, messages.Input]:
    """A REST ``:classify`` / ``:regress`` body -> (signature_name, ``Input``); errors worded as TF Serving's."""
    doc = _load(body)
    if not isinstance(doc, dict):
        raise InvalidInput(f"JSON Value: {_short(body)} Is not object")
    signature = doc.get("signature_name", "")
    if not isinstance(signature, str):
        raise InvalidInput("'signature_name' key must be a string value.")
    if "examples" not in doc:
        raise InvalidInput(
            f"JSON Value: {_short(body)} When method is {method}, key 'examples' is expected and was not found"
        )
    examples = doc["examples"]
    if not isinstance(examples, list):
        raise InvalidInput(f"JSON Value: {_short(body)} Expecting 'examples' value to be an list/array")
    if not examples:
        raise InvalidInput(f"JSON Value: {_short(body)} 'examples' value is an empty array")
    inp = messages.Input()
    if "context" in doc:
        _fill_features(inp.example_list_with_context.context.features, doc["context"])
        target: Any = inp.example_list_with_context.examples
    else:
        target = inp.example_list.examples
    for ex in examples:
        _fill_features(target.add().features, ex)
    return signature, inp


def _short(body: bytes | str, limit: int = 200) -> str:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    return text if len(text) <= limit else text[:limit] + "..."


def serialize_input(inp: messages.Input) -> list[bytes]:
    """The serialized tf.Examples of an ``Input`` (the DT_STRING ``inputs`` tensor, §6.1); with context each one
    is ``serialize(context) + serialize(example)`` (protobuf merge: the example's features win). Empty ->
    INVALID_ARGUMENT "Input is empty."."""
    kind = inp.WhichOneof("kind")
    if kind == "example_list":
        out = [ex.SerializeToString() for ex in inp.example_list.examples]
    elif kind == "example_list_with_context":
        ctx = inp.example_list_with_context.context.SerializeToString()
        out = [ctx + ex.SerializeToString() for ex in inp.example_list_with_context.examples]
    else:
        out = []
    if not out:
        raise InvalidInput("Input is empty.")
    return out


def classify_results_to_json(result: Any) -> bytes:
    """A ``ClassificationResult`` as TF Serving's REST body: ``{"results": [[[label, score], ...], ...]}``."""
    if not result.classifications:
        raise InvalidInput("Cannot convert empty ClassificationResults to JSON")
    rows = [
        [[c.label, np.float32(c.score)] for c in classification.classes] for classification in result.classifications
    ]
    return orjson.dumps({"results": rows}, option=_OPTS)


def regress_results_to_json(result: Any) -> bytes:
    """A ``RegressionResult`` as TF Serving's REST body: ``{"results": [v1, v2, ...]}``."""
    if not result.regressions:
        raise InvalidInput("Cannot convert empty RegressionResults to JSON")
    return orjson.dumps({"results": [np.float32(r.value) for r in result.regressions]}, option=_OPTS)
