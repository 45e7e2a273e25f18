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
from deepclf.protocol.tf_json import debug_string, decimal_texts, json_type, parse_json

__all__ = [
    "classify_results_to_json",
    "input_from_json",
    "regress_results_to_json",
    "serialize_input",
]

_OPTS = orjson.OPT_SERIALIZE_NUMPY


def _fill_features(features: Any, doc: Any) -> None:
    """One JSON object of features into a ``Features`` message (TF Serving's kind per element, §5.5)."""
    if not isinstance(doc, dict):
        raise InvalidInput(f"Example must be JSON object but got JSON {json_type(doc)}")
    for name, value in doc.items():
        values = value if isinstance(value, list) else [value]
        kind: str | None = None
        items: list[Any] = []
        for v in values:
            if isinstance(v, dict) and set(v) == {"b64"} and isinstance(v["b64"], str):
                try:
                    item: Any = base64.b64decode(v["b64"], validate=True)
                except (binascii.Error, ValueError):
                    raise InvalidInput("Unable to base64 decode") from None
                k = "bytes"
            elif isinstance(v, str):
                item, k = v.encode("utf-8"), "bytes"
            elif isinstance(v, bool):
                item, k = int(v), "int64"
            elif isinstance(v, int) and v < 2**64:  # rapidjson reads a larger integer as a double
                if v >= 2**63:
                    raise InvalidInput(f"Feature: {name} has uint64_t element. Only int64_t is supported.")
                item, k = v, "int64"
            elif isinstance(v, (int, float)):
                item, k = float(v), "float"
            else:
                raise InvalidInput(f"Feature: {name} has element with unexpected JSON type: {json_type(v)}")
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
    # json_tensor.cc FillClassifyRegressRequestFromJson's checks, in its order and words (its text says
    # "classify" for regress too); the context is read before the examples.
    doc = parse_json(body)
    if not isinstance(doc, dict):
        raise InvalidInput(f"JSON Value: {debug_string(doc)} Is not object")
    signature = doc.get("signature_name", "")
    if not isinstance(signature, str):
        raise InvalidInput(
            f"JSON Value: {debug_string(doc)} not formatted correctly. 'signature_name' key must be a string value."
        )
    inp = messages.Input()
    if "context" in doc:
        _fill_features(inp.example_list_with_context.context.features, doc["context"])
        target: Any = inp.example_list_with_context.examples
    else:
        target = inp.example_list.examples
    if "examples" not in doc:
        raise InvalidInput(
            f"JSON Value: {debug_string(doc)} When method is classify, key 'examples' is expected and was not found"
        )
    examples = doc["examples"]
    if not isinstance(examples, list):
        raise InvalidInput(f"JSON Value: {debug_string(doc)} Expecting 'examples' value to be an list/array")
    if not examples:
        raise InvalidInput(f"JSON Value: {debug_string(doc)} 'examples' value is an empty array")
    for ex in examples:
        _fill_features(target.add().features, ex)
    return signature, inp


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
    scores = iter(decimal_texts(np.array([c.score for cl in result.classifications for c in cl.classes], np.float32)))
    rows = [[[c.label, orjson.Fragment(next(scores))] for c in cl.classes] for cl in result.classifications]
    return orjson.dumps({"results": rows}, option=_OPTS)


def regress_results_to_json(result: Any) -> bytes:
    """A ``RegressionResult`` as TF Serving's REST body: ``{"results": [v1, v2, ...]}``."""
    if not result.regressions:
        raise InvalidInput("Cannot convert empty RegressionResults to JSON")
    values = decimal_texts(np.array([r.value for r in result.regressions], np.float32))
    return orjson.dumps({"results": [orjson.Fragment(v) for v in values]}, option=_OPTS)
