"""tensorflow_serving/util/json_tensor_test.cc, case by case, against ``deepclf serve`` started with a
``tensorflow_model_server`` command line (tests/serving/tfs_server.py), over loopback HTTP.

Upstream calls the JSON codec directly: a body plus a ``TensorInfo`` map in, a ``PredictRequest`` out, or tensors
in and JSON out. Over the wire the map is a signature of the ``json_tensor`` model whose inputs have the upstream
map's aliases and dtypes and whose outputs echo them (tests/tfserving_upstream_models.py): the REST answer shows
the tensor TF Serving would have decoded, written back by the JSON writer under test. Numbers are compared as
the text TF Serving writes (upstream's ``CompareJsonAllValuesAsStrings``) where upstream does so, else as
numbers. Classify/regress request building is observed through ``examples_b64`` / ``examples_size``, which return
the serialized tf.Examples a body became. Test ids name the upstream test; docs/tfserving-conformance.md lists
every case.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any

import httpx
import pytest

pytest.importorskip("tensorflow")
import tensorflow as tf

UPSTREAM = "json_tensor_test"
MODEL = "/v1/models/json_tensor"


def _case(test: str, n: int, *values: Any) -> Any:
    return pytest.param(*values, id=f"{UPSTREAM}::{test}#{n}")


def _post(srv: Any, verb: str, body: str | bytes, model: str = MODEL) -> httpx.Response:
    data = body.encode() if isinstance(body, str) else body
    return httpx.post(f"{srv.rest_url}{model}:{verb}", content=data, timeout=30)


def _texts(r: httpx.Response) -> Any:
    """The answer with every number kept as the text TF Serving wrote (NaN and Infinity included)."""
    return json.loads(r.text, parse_float=str, parse_int=str, parse_constant=str)


def _body(signature: str, **doc: Any) -> str:
    return json.dumps({"signature_name": signature, **doc}, allow_nan=True)


# ---------------------------------------------------------------------------------- FillPredictRequestFromJson

DECODED = [
    # (upstream test, n, signature, body document, expected answer with numbers as text)
    (
        "SingleUnnamedTensor",
        0,
        "int32",
        {"instances": [[1, 2], [3, 4], [5, 6]]},
        {"predictions": [["1", "2"], ["3", "4"], ["5", "6"]]},
    ),
    (
        "MixedInputForFloatTensor",
        0,
        "float",
        {"instances": [1, 2.0, 3, 4, 5.003, 0.007, 0.0]},
        {"predictions": ["1.0", "2.0", "3.0", "4.0", "5.003", "0.007", "0.0"]},
    ),
    (
        "MixedInputForDoubleTensor",
        0,
        "double",
        {"instances": [1.0, 2, 3, 4, 0.662, 0, 0.0]},
        {"predictions": ["1.0", "2.0", "3.0", "4.0", "0.662", "0.0", "0.0"]},
    ),
    # 1435774380 is not a float: both spellings read as the same nearest float (9 significant digits written)
    ("FloatTensorWithPrecisionLoss", 0, "float", {"instances": [1435774380]}, {"predictions": ["1.43577434e+09"]}),
    ("FloatTensorWithPrecisionLoss", 1, "float", {"instances": [1435774380.0]}, {"predictions": ["1.43577434e+09"]}),
    (
        "FloatTensorThatExceedsMaxReturnsInf",
        0,
        "float",
        {"instances": [1.7976931348623157e308]},
        {"predictions": ["Infinity"]},
    ),
    (
        "FloatTensorThatExceedsMaxReturnsInf",
        1,
        "float",
        {"instances": [-1.7976931348623157e308]},
        {"predictions": ["-Infinity"]},
    ),
    (
        "FloatTensorThatExceedsMinReturnsZero",
        0,
        "float",
        {"instances": [2.2250738585072014e-308]},
        {"predictions": ["0.0"]},
    ),
    (
        "FloatTensorThatExceedsMinReturnsZero",
        1,
        "float",
        {"instances": [-2.2250738585072014e-308]},
        {"predictions": ["-0.0"]},
    ),
    ("SingleUnnamedTensorWithSignature", 0, "int32", {"instances": [[1, 2]]}, {"predictions": [["1", "2"]]}),
    (
        "SingleUnnamedTensorBase64Scalars",
        0,
        "string",
        {"instances": [{"b64": "aGVsbG8="}, {"b64": "d29ybGQ="}]},
        {"predictions": ["hello", "world"]},
    ),
    (
        "SingleUnnamedTensorBase64Lists",
        0,
        "string",
        {"instances": [[{"b64": "aGVsbG8="}], [{"b64": "d29ybGQ="}]]},
        {"predictions": [["hello"], ["world"]]},
    ),
    (
        "SingleNamedTensorBase64",
        0,
        "string",
        {"instances": [{"default": [[{"b64": "aGVsbG8="}], [{"b64": "d29ybGQ="}]]}]},
        {"predictions": [[["hello"], ["world"]]]},
    ),
    (
        "MultipleNamedTensor",
        0,
        "multi",
        {
            "instances": [
                {
                    "int_tensor": [[1, 2], [3, 4], [5, 6]],
                    "str_tensor": ["foo", "bar"],
                    "float_tensor": [1.0, math.nan],
                    "dbl_tensor": [math.nan],
                },
                {
                    "int_tensor": [[7, 8], [9, 0], [1, 2]],
                    "str_tensor": ["baz", "bat"],
                    "float_tensor": [2.0, math.inf],
                    "dbl_tensor": [2.0],
                },
            ]
        },
        {
            "predictions": [
                {
                    "int_tensor": [["1", "2"], ["3", "4"], ["5", "6"]],
                    "str_tensor": ["foo", "bar"],
                    "float_tensor": ["1.0", "NaN"],
                    "dbl_tensor": ["NaN"],
                },
                {
                    "int_tensor": [["7", "8"], ["9", "0"], ["1", "2"]],
                    "str_tensor": ["baz", "bat"],
                    "float_tensor": ["2.0", "Infinity"],
                    "dbl_tensor": ["2.0"],
                },
            ]
        },
    ),
    (
        "SingleUnnamedTensorColumnarFormat",
        0,
        "int_tensor",
        {"inputs": {"int_tensor": [[[1, 2], [3, 4], [5, 6]]]}},
        {"outputs": [[["1", "2"], ["3", "4"], ["5", "6"]]]},
    ),
    (
        "SingleUnnamedTensorColumnarFormat",
        1,
        "int_tensor",
        {"inputs": [[[1, 2], [3, 4], [5, 6]]]},
        {"outputs": [[["1", "2"], ["3", "4"], ["5", "6"]]]},
    ),
    (
        "MultipleNamedTensorColumnarFormat",
        0,
        "columnar",
        {
            "inputs": {
                "int_tensor": [[[1, 2], [3, 4], [5, 6]]],
                "str_tensor": ["foo", "bar"],
                "bin_tensor": {"b64": "aGVsbG8="},
            }
        },
        {
            "outputs": {
                "int_tensor": [[["1", "2"], ["3", "4"], ["5", "6"]]],
                "str_tensor": ["foo", "bar"],
                "bin_tensor": "hello",
            }
        },
    ),
]


@pytest.mark.parametrize(("signature", "doc", "expected"), [_case(t, n, *c) for t, n, *c in DECODED])
def test_decoded_tensors(tfs_upstream: Any, signature: str, doc: dict, expected: dict) -> None:
    """What the body decodes to (dtype from the signature, shape from the JSON), echoed back: row requests answer
    ``predictions``, columnar ones ``outputs`` (upstream's ``JsonPredictRequestFormat``)."""
    r = _post(tfs_upstream, "predict", _body(signature, **doc))
    assert (r.status_code, _texts(r)) == (200, expected)


@pytest.mark.parametrize(
    "tail",
    [_case("TensorFromNonNullTerminatedBuffer", 0, b""), _case("TensorFromNonNullTerminatedBuffer", 1, b"X")],
)
def test_buffer_ends_where_the_body_ends(tfs_upstream: Any, tail: bytes) -> None:
    """The body is read as a buffer of its length; anything after the JSON value (upstream's stray ``X``) is not
    read (rapidjson's kParseStopWhenDoneFlag)."""
    r = _post(tfs_upstream, "predict", b'{"signature_name": "int32", "instances": [[1,2],[3,4],[5,6]]}' + tail)
    assert (r.status_code, r.json()) == (200, {"predictions": [[1, 2], [3, 4], [5, 6]]})


DEEP = 500_000


@pytest.mark.parametrize(
    "body",
    [
        _case("DeeplyNestedWellFormed", 0, '{"instances":[1], "nested":' + "[" * DEEP + "]" * DEEP + "}"),
        _case("DeeplyNestedMalformed", 0, '{"signature_name":' + "[" * DEEP + "]" * DEEP + "}"),
    ],
)
def test_deep_nesting_is_a_deliberate_difference(tfs_upstream: Any, body: str) -> None:
    """Deliberate difference: TF Serving's iterative parser reads 500,000 nested brackets (and then serves the
    first body, refuses the second's signature_name); a Python parser recurses per level, so deepclf refuses a
    body nested past what it can parse, saying so (a 400, the server unharmed)."""
    r = _post(tfs_upstream, "predict", body)
    assert r.status_code == 400 and "nested too deeply" in r.json()["error"]
    assert _post(tfs_upstream, "predict", _body("int32", instances=[[1]])).status_code == 200


ROW = "Failed to process element: {} of 'instances' list. Error: INVALID_ARGUMENT: {}"
ROW_KEY = "Failed to process element: {} key: {} of 'instances' list. Error: INVALID_ARGUMENT: {}"


def _doc_text(doc: dict) -> str:
    return json.dumps(doc, separators=(",", ":"))


SIG5 = {"signature_name": 5, "instances": [[1, 2], [3, 4], [5, 6, 7]]}
BOTH = {"signature_name": "int32", "instances": [[1, 2], [3, 4], [5, 6, 7]], "inputs": [[1, 2], [3, 4], [5, 6, 7]]}
OBJ0 = {"int_tensor": [[1, 2], [3, 4], [5, 6]], "str_tensor": ["foo", "bar"]}
DECODE_ERRORS = [
    ("SingleUnnamedTensorErrors", 0, "", "JSON Parse error: The document is empty"),
    (
        "SingleUnnamedTensorErrors",
        1,
        json.dumps(SIG5),
        f"JSON Value: {_doc_text(SIG5)} not formatted correctly. 'signature_name' key must be a string value.",
    ),
    (
        "SingleUnnamedTensorErrors",
        2,
        json.dumps(BOTH),
        f"JSON Value: {_doc_text(BOTH)} Not formatted correctly expecting only one of 'inputs' or 'instances' keys "
        "to exist ",
    ),
    (
        "SingleUnnamedTensorErrors",
        3,
        _body("int32", instances=[[1, 2], [3, 4], [5, 6, 7]]),
        ROW.format(2, "Expecting tensor size: 2 but got: 3"),
    ),
    (
        "SingleUnnamedTensorErrors",
        4,
        _body("int32", instances=[[1, 2], [3, 4], [[5, 6]]]),
        ROW.format(2, "Expecting shape [2] but got: [1,2]"),
    ),
    (
        "SingleUnnamedTensorErrors",
        5,
        _body("int32", instances=[1, [1]]),
        ROW.format(1, "Expecting shape [] but got: [1]"),
    ),
    (
        "SingleUnnamedTensorErrors",
        6,
        _body("int32", instances=[[1, 2], ["a", "b"]]),
        ROW.format(1, 'JSON Value: "a" Type: String is not of expected type: int32'),
    ),
    (
        "MultipleNamedTensorErrors",
        0,
        _body(
            "int_and_str", instances=[OBJ0, {"int_tensor": [[[7, 8], [9, 0], [1, 2]]], "str_tensor": ["baz", "bat"]}]
        ),
        ROW_KEY.format(1, "int_tensor", "Expecting shape [3,2] but got: [1,3,2]"),
    ),
    (
        "MultipleNamedTensorErrors",
        1,
        _body(
            "int_and_str",
            instances=[
                {"int_tensor": [[1, 2], [3, 4], [5, 6], [7, 8]], "str_tensor": ["foo", "bar"]},
                {"int_tensor": [[7, 8], [9, 0], [1, 2]], "str_tensor": ["baz", "bat"]},
            ],
        ),
        ROW_KEY.format(1, "int_tensor", "Expecting tensor size: 8 but got: 6"),
    ),
    (
        "MultipleNamedTensorErrors",
        2,
        _body("int_and_str", instances=[OBJ0, [1, 20, 30], OBJ0]),
        "Expecting object but got list at item 1 of input list",
    ),
    (
        "MultipleNamedTensorErrors",
        3,
        _body("str_tensor", instances=[["baz", "bar"], {"str_tensor": ["baz", "bat"]}]),
        "Expecting value/list but got object at item 1 of input list",
    ),
]


@pytest.mark.parametrize(("body", "message"), [_case(t, n, *c) for t, n, *c in DECODE_ERRORS])
def test_decode_errors(tfs_upstream: Any, body: str, message: str) -> None:
    """INVALID_ARGUMENT -> 400 with json_tensor.cc's whole message (upstream checks a substring of each)."""
    r = _post(tfs_upstream, "predict", body)
    assert (r.status_code, r.json()) == (400, {"error": message})


# ------------------------------------------------------------------------------------------- MakeJsonFromTensors

ROWS_3D = [[[1, 2], [3, 4], [5, 6]], [[7, 8], [9, 0], [1, 2]]]
ROWS_3D_TEXT = [[["1", "2"], ["3", "4"], ["5", "6"]], [["7", "8"], ["9", "0"], ["1", "2"]]]
FIVE_ROWS = [
    {
        "int_tensor": [[1, 2], [3, 4], [5, 6]],
        "str_tensor": ["foo", "bar"],
        "float_tensor": [1.0],
        "double_scalar_tensor": 8.0,
        "str_tensor_bytes": ["hello", "world"],
    },
    {
        "int_tensor": [[7, 8], [9, 0], [1, 2]],
        "str_tensor": ["baz", "bat"],
        "float_tensor": [2.0],
        "double_scalar_tensor": 9.0,
        "str_tensor_bytes": ["tf", "serving"],
    },
]
B64 = {"hello": "aGVsbG8=", "world": "d29ybGQ=", "tf": "dGY=", "serving": "c2VydmluZw=="}
WRITTEN = [
    ("FromJsonSingleTensor", 0, "int32", {"instances": ROWS_3D}, {"predictions": ROWS_3D_TEXT}),
    ("FromJsonSingleTensor", 1, "int32", {"inputs": ROWS_3D}, {"outputs": ROWS_3D_TEXT}),
    (
        "FromJsonSingleScalarTensor",
        0,
        "int32",
        {"instances": [1, 2, 3, 4, 5]},
        {"predictions": ["1", "2", "3", "4", "5"]},
    ),
    ("FromJsonSingleScalarTensor", 1, "int32", {"inputs": [1, 2, 3, 4, 5]}, {"outputs": ["1", "2", "3", "4", "5"]}),
    (
        "FromJsonSingleBytesTensor",
        0,
        "bytes_out",
        {"instances": [["hello", "world"], ["tf", "serving"]]},
        {
            "predictions": [
                [{"b64": B64["hello"]}, {"b64": B64["world"]}],
                [{"b64": B64["tf"]}, {"b64": B64["serving"]}],
            ]
        },
    ),
    (
        "FromJsonSingleFloatTensorSixDigitPrecision",
        0,
        "float",
        {"instances": [[9000000, 999999, 0.50000], [0.0003, 0.00003, 555557.5]]},
        {"predictions": [["9e+06", "999999.0", "0.5"], ["0.0003", "3e-05", "555557.5"]]},
    ),
    (
        "FromJsonSingleFloatTensorNonFinite",
        0,
        "float",
        {"instances": [[math.nan, math.inf], [3, -math.inf]]},
        {"predictions": [["NaN", "Infinity"], ["3.0", "-Infinity"]]},
    ),
    (
        "FromJsonMultipleNamedTensors",
        0,
        "five",
        {"instances": FIVE_ROWS},
        {
            "predictions": [
                {
                    "double_scalar_tensor": "8.0",
                    "float_tensor": ["1.0"],
                    "int_tensor": [["1", "2"], ["3", "4"], ["5", "6"]],
                    "str_tensor": ["foo", "bar"],
                    "str_tensor_bytes": [{"b64": B64["hello"]}, {"b64": B64["world"]}],
                },
                {
                    "double_scalar_tensor": "9.0",
                    "float_tensor": ["2.0"],
                    "int_tensor": [["7", "8"], ["9", "0"], ["1", "2"]],
                    "str_tensor": ["baz", "bat"],
                    "str_tensor_bytes": [{"b64": B64["tf"]}, {"b64": B64["serving"]}],
                },
            ]
        },
    ),
    (
        "FromJsonMultipleNamedTensors",
        1,
        "five",
        {"inputs": {k: [row[k] for row in FIVE_ROWS] for k in FIVE_ROWS[0]}},
        {
            "outputs": {
                "double_scalar_tensor": ["8.0", "9.0"],
                "float_tensor": [["1.0"], ["2.0"]],
                "int_tensor": ROWS_3D_TEXT,
                "str_tensor": [["foo", "bar"], ["baz", "bat"]],
                "str_tensor_bytes": [
                    [{"b64": B64["hello"]}, {"b64": B64["world"]}],
                    [{"b64": B64["tf"]}, {"b64": B64["serving"]}],
                ],
            }
        },
    ),
    ("FromJsonSingleZeroBatchTensor", 0, "zero_rows", {"instances": [1.0]}, {"predictions": []}),
    ("FromJsonMultipleZeroBatchTensors", 0, "zero_rows2", {"instances": [1.0]}, {"predictions": []}),
]


@pytest.mark.parametrize(("signature", "doc", "expected"), [_case(t, n, *c) for t, n, *c in WRITTEN])
def test_written_tensors(tfs_upstream: Any, signature: str, doc: dict, expected: dict) -> None:
    """The JSON writer: one output unnamed, several as an object per row (row format) or per name (columnar);
    ``*_bytes`` outputs as ``{"b64": ...}``; floats in TF Serving's decimal text; zero rows as ``[]``."""
    r = _post(tfs_upstream, "predict", _body(signature, **doc))
    assert (r.status_code, _texts(r)) == (200, expected)


@pytest.mark.parametrize(
    ("model", "signature", "message"),
    [
        _case(
            "FromJsonSingleTensorErrors",
            0,
            "/v1/models/counter",
            "no_outputs",
            "Cannot convert empty tensor map to JSON",
        ),
        _case(
            "FromJsonSingleTensorErrors", 1, MODEL, "complex", "Failed to write JSON value for tensor type: complex64"
        ),
        _case("FromJsonSingleTensorErrors", 2, MODEL, "scalar", "Tensor name: tensor has no shape information "),
        _case(
            "FromJsonMultipleNamedTensorsErrors",
            0,
            MODEL,
            "inconsistent",
            "Tensor name: str_tensor has inconsistent batch size: 1 expecting: 2",
        ),
        _case(
            "FromJsonMultipleZeroBatchTensorsErrors",
            0,
            MODEL,
            "zero_and_one_row",
            "Tensor name: str_tensor has inconsistent batch size: 1 expecting: 0",
        ),
    ],
)
def test_write_errors(tfs_upstream: Any, model: str, signature: str, message: str) -> None:
    """Outputs the writer refuses: INVALID_ARGUMENT -> 400. (The order of the names is TF Serving's map order,
    which its test leaves open; here they are taken in name order.)"""
    r = _post(tfs_upstream, "predict", _body(signature, instances=[1.0, 2.0]), model=model)
    assert (r.status_code, r.json()) == (400, {"error": message})


# ------------------------------------------------------------------------- classify / regress request building


def _feature(kind: str, values: list) -> Any:
    f = tf.train.Feature()
    getattr(f, f"{kind}_list").value.extend(values)
    return f


def _example(**features: tuple[str, list]) -> Any:
    ex = tf.train.Example()
    for name, (kind, values) in features.items():
        ex.features.feature[name].CopyFrom(_feature(kind, values))
    return ex


NO_CONTEXT = {
    "examples": [
        {"names": ["foo", "bar"], "ratings": [8.0, 9.0], "age": 20},
        {"names": ["baz"], "ratings": 6.0},
    ]
}
NO_CONTEXT_EXAMPLES = [
    _example(names=("bytes", [b"foo", b"bar"]), ratings=("float", [8.0, 9.0]), age=("int64", [20])),
    _example(names=("bytes", [b"baz"]), ratings=("float", [6.0])),
]
CONTEXT = {
    "context": {"query": "pizza", "location": ["sfo"]},
    "examples": [
        {"names": ["foo", "bar"], "ratings": [8.0, 9.0, math.nan, math.inf], "age": 20},
        {"names": ["baz", {"b64": "aGVsbG8="}], "ratings": 6.0, "intboolmix": [1, True, False]},
        {"names": "bar", "ratings": -math.inf},
    ],
}
CONTEXT_EXAMPLE = _example(query=("bytes", [b"pizza"]), location=("bytes", [b"sfo"]))
CONTEXT_EXAMPLES = [
    _example(names=("bytes", [b"foo", b"bar"]), ratings=("float", [8.0, 9.0, math.nan, math.inf]), age=("int64", [20])),
    _example(names=("bytes", [b"baz", b"hello"]), ratings=("float", [6.0]), intboolmix=("int64", [1, 1, 0])),
    _example(names=("bytes", [b"bar"]), ratings=("float", [-math.inf])),
]


def _features(ex: Any) -> dict:
    """An Example's features as comparable values (NaN as a string, so that equal means equal)."""
    out = {}
    for name, f in ex.features.feature.items():
        kind = f.WhichOneof("kind")
        values = list(getattr(f, kind).value)
        out[name] = (kind, ["nan" if isinstance(v, float) and math.isnan(v) else v for v in values])
    return out


def _merged(context: Any | None, ex: Any) -> Any:
    """What TF Serving feeds for one example: context + example serialized back to back (protobuf merge)."""
    merged = tf.train.Example()
    merged.ParseFromString((context.SerializeToString() if context is not None else b"") + ex.SerializeToString())
    return merged


@pytest.mark.parametrize(
    ("kind", "doc", "context", "examples"),
    [
        _case(
            "ClassifyRegressRequestTest/ClassificationRequest.RequestNoContext",
            0,
            "classify",
            NO_CONTEXT,
            None,
            NO_CONTEXT_EXAMPLES,
        ),
        _case(
            "ClassifyRegressRequestTest/RegressionRequest.RequestNoContext",
            0,
            "regress",
            NO_CONTEXT,
            None,
            NO_CONTEXT_EXAMPLES,
        ),
        _case(
            "ClassifyRegressRequestTest/ClassificationRequest.RequestWithContextAndSignature",
            0,
            "classify",
            CONTEXT,
            CONTEXT_EXAMPLE,
            CONTEXT_EXAMPLES,
        ),
        _case(
            "ClassifyRegressRequestTest/RegressionRequest.RequestWithContextAndSignature",
            0,
            "regress",
            CONTEXT,
            CONTEXT_EXAMPLE,
            CONTEXT_EXAMPLES,
        ),
    ],
)
def test_examples_from_json(tfs_upstream: Any, kind: str, doc: dict, context: Any, examples: list) -> None:
    """The tf.Examples a body becomes (upstream compares the request proto): strings and ``{"b64": ...}`` are bytes,
    numbers with a point float (NaN and Infinity too), integers and booleans int64; with a context, each example
    fed is context + example. Classify returns each fed Example (base64 label); Regress its size in bytes."""
    signature = "examples_b64" if kind == "classify" else "examples_size"
    r = _post(tfs_upstream, kind, _body(signature, **doc))
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert len(results) == len(examples)
    for got, ex in zip(results, examples, strict=True):
        if kind == "classify":
            fed = tf.train.Example.FromString(base64.urlsafe_b64decode(got[0][0] + "=" * (-len(got[0][0]) % 4)))
            assert _features(fed) == _features(_merged(context, ex))
        else:
            size = (context.ByteSize() if context is not None else 0) + ex.ByteSize()
            assert got == float(size)


SIGNATURE_LIST = {"signature_name": ["hello"], "examples": [{"names": ["foo", "bar"]}]}
EXAMPLES_OBJECT = {"examples": {"names": ["foo", "bar"]}}
JSON_ERRORS = [
    (
        json.dumps(SIGNATURE_LIST),
        f"JSON Value: {_doc_text(SIGNATURE_LIST)} not formatted correctly. 'signature_name' key must be a string value.",
    ),
    (json.dumps({"context": [{"names": ["foo", "bar"]}]}), "Example must be JSON object but got JSON Array"),
    (
        json.dumps(EXAMPLES_OBJECT),
        f"JSON Value: {_doc_text(EXAMPLES_OBJECT)} Expecting 'examples' value to be an list/array",
    ),
    (json.dumps({"examples": [[{"names": ["foo", "bar"]}]]}), "Example must be JSON object but got JSON Array"),
    ('{"examples": [{"names": [10, null]}]}', "Feature: names has element with unexpected JSON type: Null"),
    ('{"examples": [{"names": [10, 10.0]}]}', "Unexpected element type in feature: names expecting type: int64"),
    ('{"examples": [{"names": [10, {"test": 10}]}]}', "Feature: names has element with unexpected JSON type: Object"),
    ('{"examples": [{"names": [[10], 20]}]}', "Feature: names has element with unexpected JSON type: Array"),
    (
        '{"examples": [{"names": [20, 18446744073709551603]}]}',
        "Feature: names has uint64_t element. Only int64_t is supported.",
    ),
]


@pytest.mark.parametrize(
    ("kind", "body", "message"),
    [
        *(
            _case(f"ClassifyRegressRequestTest/{t}.JsonErrors", i, kind, *c)
            for kind, t in (("classify", "ClassificationRequest"), ("regress", "RegressionRequest"))
            for i, c in enumerate(JSON_ERRORS)
        )
    ],
)
def test_examples_json_errors(tfs_upstream: Any, kind: str, body: str, message: str) -> None:
    """INVALID_ARGUMENT -> 400 with json_tensor.cc's whole message (upstream checks a substring of each)."""
    r = _post(tfs_upstream, kind, body)
    assert (r.status_code, r.json()) == (400, {"error": message})


# ---------------------------------------------------------------- MakeJsonFromClassificationResult / Regression


@pytest.mark.parametrize(
    ("verb", "examples", "expected"),
    [
        _case(
            "ClassifyRegressnResultTest.JsonFromClassificationResult",
            0,
            "classify",
            [
                {"class": ["car", "bike", "bus"], "score": [0.2, 0.7, 0.1]},
                {"class": ["car", "bike", "bus"], "score": [0.7, 0.1, 0.2]},
            ],
            [[["car", "0.2"], ["bike", "0.7"], ["bus", "0.1"]], [["car", "0.7"], ["bike", "0.1"], ["bus", "0.2"]]],
        ),
        _case(
            "ClassifyRegressnResultTest.JsonFromRegressionResult",
            0,
            "regress",
            [{"output": 0.2}, {"output": 0.9}, {"output": 1.0}],
            ["0.2", "0.9", "1.0"],
        ),
        _case(
            "ClassifyRegressnResultTest.JsonFromRegressionResultWithNonFinite",
            0,
            "regress",
            [{"output": v} for v in (0.2, math.inf, 1.0, -math.inf, math.nan)],
            ["0.2", "Infinity", "1.0", "-Infinity", "NaN"],
        ),
    ],
)
def test_json_from_results(tfs_upstream: Any, verb: str, examples: list, expected: list) -> None:
    """``{"results": ...}``: ``[[label, score], ...]`` per example, or one value per example; floats in TF
    Serving's decimal text, non-finite values as bare tokens. (The classifier / regressor stand-ins return each
    example's ``class``/``score`` or ``output`` feature.)"""
    model = "/v1/models/classifier" if verb == "classify" else "/v1/models/regressor"
    r = _post(tfs_upstream, verb, json.dumps({"examples": examples}, allow_nan=True), model=model)
    assert (r.status_code, _texts(r)) == (200, {"results": expected})


@pytest.mark.parametrize(
    ("body", "raw", "message"),
    [
        _case(
            "MakeJsonFromTensors.StatusError",
            0,
            _body("nope", instances=[1.0]),
            '"Serving signature name: \\"nope\\" not found in signature def"',
            'Serving signature name: "nope" not found in signature def',
        ),
        _case(
            "MakeJsonFromTensors.StatusError",
            1,
            '{"signature_name": "int32", "examples": []}',
            "\"Missing 'inputs' or 'instances' key\"",
            "Missing 'inputs' or 'instances' key",
        ),
    ],
)
def test_error_body_escaping(tfs_upstream: Any, body: str, raw: str, message: str) -> None:
    """``{"error": <message>}`` with the message JSON-escaped: double quotes as ``\\"``, single quotes as they are."""
    r = _post(tfs_upstream, "predict", body)
    assert r.status_code == 400 and raw in r.text
    assert r.json() == {"error": message}
