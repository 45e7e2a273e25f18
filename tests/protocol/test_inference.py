"""deepclf.protocol.inference without TensorFlow: REST Classify/Regress bodies into ``Input`` messages (feature kinds
and errors of docs/tfserving-behaviour.md §5.5), the serialized-Examples tensor with context (§6.1), result JSON."""

from __future__ import annotations

import base64

import orjson
import pytest

from deepclf.protocol import InvalidInput
from deepclf.protocol.inference import (
    classify_results_to_json,
    input_from_json,
    regress_results_to_json,
    serialize_input,
)
from deepclf.protocol.messages import ClassificationResult, RegressionResult
from deepclf.runtime.example import ExampleParseError, parse_example

# The serialized Examples are read back with the runners' own parser (the one that serves classify_image_bytes).
example_features = parse_example


def test_feature_kinds() -> None:
    body = {
        "signature_name": "s",
        "examples": [
            {"f": 2.5, "i": 3, "b": True, "s": "text", "raw": {"b64": base64.b64encode(b"\x00\xff").decode()}}
        ],
    }
    sig, inp = input_from_json(orjson.dumps(body), "classify")
    assert sig == "s"
    (ser,) = serialize_input(inp)
    feats = example_features(ser)
    assert feats == {"f": [2.5], "i": [3], "b": [1], "s": [b"text"], "raw": [b"\x00\xff"]}


def test_context_is_prepended_and_examples_win() -> None:
    _, inp = input_from_json(b'{"context": {"x": 1.0, "c": "ctx"}, "examples": [{"x": 2.0}, {}]}', "regress")
    first, second = (example_features(s) for s in serialize_input(inp))
    assert first == {"x": [2.0], "c": [b"ctx"]}
    assert second == {"x": [1.0], "c": [b"ctx"]}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"signature_name": "s"}', "When method is classify, key 'examples' is expected and was not found"),
        (b'{"examples": 1}', "Expecting 'examples' value to be an list/array"),
        (b'{"examples": []}', "'examples' value is an empty array"),
        (b'{"examples": ["a"]}', "Example must be JSON object but got JSON String"),
        (b'{"examples": [{"x": [1, 2.0]}]}', "Unexpected element type in feature: x expecting type: int64"),
        (b'{"examples": [{"x": 18446744073709551615}]}', "has uint64_t element. Only int64_t is supported."),
        (b'{"examples": [{"x": [[1]]}]}', "unexpected JSON type: Array"),
        (b'{"examples": [{}], "context": 3}', "Example must be JSON object but got JSON Number"),
        (b"not json", "JSON Parse error"),
    ],
)
def test_errors(body: bytes, message: str) -> None:
    with pytest.raises(InvalidInput, match=None) as err:
        input_from_json(body, "classify")
    assert message in str(err.value)


def test_empty_input_and_bad_example() -> None:
    from deepclf.protocol.messages import Input

    with pytest.raises(InvalidInput, match=r"Input is empty\."):
        serialize_input(Input())
    with pytest.raises(ExampleParseError):
        example_features(b"\xff\xff\xff")


def test_results_json() -> None:
    cr = ClassificationResult()
    c = cr.classifications.add().classes.add()
    c.label, c.score = "roses", 0.1
    assert orjson.loads(classify_results_to_json(cr)) == {"results": [[["roses", 0.1]]]}
    rr = RegressionResult()
    rr.regressions.add().value = 3.0
    assert regress_results_to_json(rr) == b'{"results":[3.0]}'
    with pytest.raises(InvalidInput, match="Cannot convert empty ClassificationResults to JSON"):
        classify_results_to_json(ClassificationResult())
    with pytest.raises(InvalidInput, match="Cannot convert empty RegressionResults to JSON"):
        regress_results_to_json(RegressionResult())
