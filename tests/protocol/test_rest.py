"""numpy <-> TF Serving REST JSON: both directions, TF Serving's exact shapes, b64, NaN, errors, status/metadata."""

from __future__ import annotations

import base64
import json

import numpy as np
import orjson
import pytest

from deepclf import errors as deepclf_errors
from deepclf import protocol as P
from deepclf.protocol import messages, rest

IMAGE_SIG = {"image": "float32"}
BYTES_SIG = {"image_bytes": "DT_STRING"}


# ------------------------------------------------------------------------------------------ round trips


@pytest.mark.parametrize("fmt", [rest.ROW, rest.COLUMNAR])
def test_named_inputs_round_trip_with_signature_dtypes(fmt):
    inputs = {
        "image": np.random.default_rng(0).random((3, 4, 4, 3), dtype=np.float32) * 255,
        "k": np.array([1, 2, 3], np.int32),
        "mask": np.array([[True, False]] * 3),
        "tag": np.array(["daisy", "rose", "tulip"], dtype=object),
        "image_bytes": np.array([b"\xff\xd8\x00", b"\x89PNG\x00", b""], dtype=object),
    }
    sig = {"image": "float32", "k": "int32", "mask": bool, "tag": object, "image_bytes": object}
    body = P.encode_predict_request(inputs, signature_name="serving_default", format=fmt)
    req = P.decode_predict_request(body, sig)
    assert req.format == fmt and req.signature_name == "serving_default"
    assert sorted(req.inputs) == sorted(inputs)
    for name, arr in inputs.items():
        got = req.inputs[name]
        expected = (
            np.array([v.encode() if isinstance(v, str) else v for v in arr.tolist()], dtype=object)
            if (arr.dtype == object)
            else arr
        )
        assert got.dtype == expected.dtype, name
        assert got.shape == expected.shape, name
        assert got.tolist() == expected.tolist(), name


@pytest.mark.parametrize("fmt", [rest.ROW, rest.COLUMNAR])
def test_outputs_round_trip(fmt):
    outputs = {
        "probabilities": np.array([[0.1, 0.7, 0.2], [1.0, 0.0, 0.0]], np.float32),
        "classes": np.array([1, 0], np.int64),
        "labels": np.array([b"dandelion", b"daisy"], dtype=object),
    }
    back = P.decode_predict_response(P.encode_predict_response(outputs, fmt))
    assert sorted(back) == sorted(outputs)
    np.testing.assert_array_equal(back["probabilities"], outputs["probabilities"])
    assert back["probabilities"].dtype == np.float32
    np.testing.assert_array_equal(back["classes"], outputs["classes"])
    assert back["labels"].tolist() == [b"dandelion", b"daisy"]


def test_jpeg_file_bytes_travel_as_b64_and_come_back_identical(gen_photos):
    jpegs = [p.read_bytes() for p in sorted(gen_photos.rglob("*.jpg"))[:3]]
    body = P.encode_predict_request({"image_bytes": jpegs}, signature_name="predict_image_bytes")
    doc = orjson.loads(body)
    assert doc["signature_name"] == "predict_image_bytes"
    assert doc["instances"][0] == {"image_bytes": {"b64": base64.b64encode(jpegs[0]).decode()}}
    req = P.decode_predict_request(body, BYTES_SIG)
    assert req.inputs["image_bytes"].tolist() == jpegs
    # Columnar, unnamed single input, parsed against a one-input signature.
    req = P.decode_predict_request(P.encode_predict_request(jpegs, format="columnar"), BYTES_SIG)
    assert req.inputs["image_bytes"].tolist() == jpegs


# ------------------------------------------------------------------------ TF Serving's request rules


def test_plain_instances_list_maps_to_the_single_signature_input():
    req = P.decode_predict_request(b'{"instances": [[1.0, 2.0], [3.0, 4.0]]}', IMAGE_SIG)
    assert list(req.inputs) == ["image"] and req.inputs["image"].shape == (2, 2)
    assert req.instances == 2 and req.format == rest.ROW
    # b64 objects are values, not named-input objects.
    req = P.decode_predict_request(b'{"instances": [{"b64": "aGk="}]}', BYTES_SIG)
    assert req.inputs["image_bytes"].tolist() == [b"hi"]


def test_tf_serving_docs_example_row_request():
    # The example from TF Serving's REST API docs: named inputs, one object per instance.
    body = b"""{"instances": [
        {"tag": "foo", "signal": [1, 2, 3, 4, 5], "sensor": [[1, 2], [3, 4]]},
        {"tag": "bar", "signal": [3, 4, 1, 2, 5], "sensor": [[4, 5], [6, 8]]}]}"""
    req = P.decode_predict_request(body, {"tag": object, "signal": "int64", "sensor": "float32"})
    assert req.inputs["tag"].tolist() == [b"foo", b"bar"]
    assert req.inputs["signal"].shape == (2, 5)
    assert req.inputs["sensor"].shape == (2, 2, 2) and req.inputs["sensor"].dtype == np.float32
    # The same as columns.
    body = b'{"inputs": {"tag": ["foo", "bar"], "signal": [[1, 2, 3, 4, 5], [3, 4, 1, 2, 5]], "sensor": 1}}'
    req = P.decode_predict_request(body, {"tag": object, "signal": "int64", "sensor": "float32"})
    assert req.format == rest.COLUMNAR
    assert req.inputs["sensor"].shape == () and req.inputs["sensor"] == 1.0  # scalars are allowed in columns


def test_columnar_ignores_extra_keys_like_tf_serving():
    req = P.decode_predict_request(b'{"inputs": {"image": [[1.5]], "unused": "x"}}', IMAGE_SIG)
    assert list(req.inputs) == ["image"]


def test_nan_and_infinity_are_accepted():
    req = P.decode_predict_request(b'{"instances": [[NaN, Infinity, -Infinity, 1]]}', IMAGE_SIG)
    x = req.inputs["image"][0]
    assert np.isnan(x[0]) and x[1] == np.inf and x[2] == -np.inf and x[3] == 1.0


def test_without_signature_names_come_from_json_and_dtypes_are_inferred():
    req = P.decode_predict_request(b'{"instances": [{"a": 1.5, "b": 2, "c": "s", "d": true}]}')
    assert {k: v.dtype for k, v in req.inputs.items()} == {
        "a": np.float32,
        "b": np.int64,
        "c": np.dtype(object),
        "d": np.bool_,
    }
    req = P.decode_predict_request(b'{"inputs": [[1, 2]]}')
    assert list(req.inputs) == [rest.UNNAMED] and req.inputs[rest.UNNAMED].dtype == np.int64


def test_signature_dtypes_from_a_callable_of_the_requested_signature_name():
    sigs = {"serving_default": IMAGE_SIG, "predict_image_bytes": BYTES_SIG}
    asked: list[str] = []

    def dtypes_for(name):
        asked.append(name)
        if (name or "serving_default") not in sigs:
            raise P.ModelNotFound(f"no signature {name!r}")
        return sigs[name or "serving_default"]

    # the ints would be inferred as int64; the callable's float32 for "image" wins, as with a mapping
    req = P.decode_predict_request(b'{"instances": [[1, 2]]}', dtypes_for)
    assert req.inputs["image"].dtype == np.float32 and req.inputs["image"].tolist() == [[1.0, 2.0]]
    req = P.decode_predict_request(
        b'{"signature_name": "predict_image_bytes", "instances": [{"b64": "aGk="}]}', dtypes_for
    )
    assert req.signature_name == "predict_image_bytes" and req.inputs["image_bytes"].tolist() == [b"hi"]
    assert asked == ["", "predict_image_bytes"]
    with pytest.raises(P.ModelNotFound, match="no signature 'nope'"):
        P.decode_predict_request(b'{"signature_name": "nope", "instances": [1]}', dtypes_for)
    with pytest.raises(deepclf_errors.InvalidInputError, match="JSON Parse error"):
        P.decode_predict_request(b"{", dtypes_for)  # a body that is not JSON fails before any signature lookup
    assert asked == ["", "predict_image_bytes", "nope"]


@pytest.mark.parametrize(
    ("body", "sig", "message"),
    [
        # TF Serving's words (util/json_tensor.cc), whole: the explainer names the element it would have named
        (b"", IMAGE_SIG, "JSON Parse error: The document is empty"),
        (b"  ", IMAGE_SIG, "JSON Parse error: The document is empty. at offset: 2"),
        (b"{not json", IMAGE_SIG, "JSON Parse error: Missing a name for object member. at offset: 1"),
        (
            b'{"instances": [1 2]}',
            IMAGE_SIG,
            "JSON Parse error: Missing a comma or ']' after an array element. at offset: 17",
        ),
        (
            b'{"a": 1 "b": 2}',
            IMAGE_SIG,
            "JSON Parse error: Missing a comma or '}' after an object member. at offset: 8",
        ),
        (b"[1, 2]", IMAGE_SIG, "JSON Value: [1,2] Is not object"),
        (
            b'{"signature_name": 3, "instances": [1]}',
            IMAGE_SIG,
            """JSON Value: {"signature_name":3,"instances":[1]} not formatted correctly. 'signature_name' key must be a string value.""",
        ),
        (
            b'{"instances": [1], "inputs": [1]}',
            IMAGE_SIG,
            """JSON Value: {"instances":[1],"inputs":[1]} Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist """,
        ),
        (b'{"examples": []}', IMAGE_SIG, "Missing 'inputs' or 'instances' key"),
        (b'{"instances": []}', IMAGE_SIG, """JSON Value: {"instances":[]} No values in 'instances' array"""),
        (
            b'{"instances": {"image": 1}}',
            IMAGE_SIG,
            """JSON Value: {"instances":{"image":1}} Expecting 'instances' to be an list/array""",
        ),
        (
            b'{"instances": [[1, 2], [3]]}',
            IMAGE_SIG,
            "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: Expecting tensor size: 2 but "
            "got: 1",
        ),
        (
            b'{"instances": [[1, 2]]}',
            {"a": "float32", "b": "float32"},
            "instances is a plain list, but expecting list of objects as multiple input tensors required as per "
            "tensorinfo_map",
        ),
        (
            b'{"instances": [{"a": 1}, {"b": 1}]}',
            {"a": "float32", "b": "float32"},
            """Failed to process element: 0 of 'instances' list. JSON object: {"a":1} keys must be equal to: a,b""",
        ),
        (b'{"instances": [[1], {"a": 1}]}', IMAGE_SIG, "Expecting value/list but got object at item 1 of input list"),
        (
            b'{"instances": [["x"]]}',
            IMAGE_SIG,
            """Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: JSON Value: "x" Type: """
            "String is not of expected type: float",
        ),
        (
            b'{"instances": [[true]]}',
            IMAGE_SIG,
            "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: JSON Value: true Type: True "
            "is not of expected type: float",
        ),
        (
            b'{"instances": [[null]]}',
            IMAGE_SIG,
            "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: JSON Value: null Type: Null "
            "is not of expected type: float",
        ),
        (
            b'{"instances": [1.5]}',
            {"k": "int32"},
            "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: JSON Value: 1.5 Type: Number "
            "is not of expected type: int32",
        ),
        (
            b'{"instances": [1]}',
            {"m": bool},
            "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: JSON Value: 1 Type: Number "
            "is not of expected type: bool",
        ),
        (
            b'{"instances": [{"b64": "@@@"}]}',
            BYTES_SIG,
            "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: Unable to base64 decode",
        ),
        (
            b'{"instances": [1]}',
            BYTES_SIG,
            "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: JSON Value: 1 Type: Number "
            "is not of expected type: string",
        ),
        (
            b'{"instances": [["a", ["b"]]]}',
            BYTES_SIG,
            "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: Encountered list at "
            "unexpected level: 1 expected < 1",
        ),
        (b'{"inputs": {"other": 1}}', IMAGE_SIG, "Missing named input: image in 'inputs' object."),
        (
            b'{"inputs": [1]}',
            {"a": "float32", "b": "float32"},
            "inputs is a plain value/list, but expecting an object as multiple input tensors required as per "
            "tensorinfo_map",
        ),
        (
            b'{"instances": [1]}',
            {"c": "complex64"},
            "Failed to process element: 0 of 'instances' list. Error: UNIMPLEMENTED: Conversion of JSON Value: 1 to "
            "type: complex64",
        ),
        (b'{"instances": [1]}', {}, "Failed to get input map for signature: DEFAULT"),
        # deepclf's own refusals, where TF Serving would convert the value with a silent cast
        (b'{"instances": [300]}', {"k": "uint8"}, "input 'k': value 300 does not fit uint8"),
    ],
)
def test_bad_requests_raise_invalid_input(body, sig, message):
    with pytest.raises(P.ServingError) as info:
        P.decode_predict_request(body, sig)
    assert info.value.message == message
    assert P.http_status_for(info.value) == 400


def test_unimplemented_dtypes_in_columns_are_unimplemented():
    """A dtype TF Serving cannot read from JSON (half, uint16, complex): UNIMPLEMENTED, HTTP 501, even where
    numpy could convert it."""
    with pytest.raises(P.Unimplemented) as info:
        P.decode_predict_request(b'{"inputs": [1.5]}', {"h": "float16"})
    assert info.value.message == "Conversion of JSON Value: 1.5 to type: half"
    assert P.http_status_for(info.value) == 501


def test_out_of_range_floats_become_infinity_or_zero_like_tf_serving():
    """json_tensor_test.cc FloatTensorThatExceeds{Max,Min}: a double past float's range is inf / 0, not an error."""
    req = P.decode_predict_request(b'{"instances": [1e300, -1e300, 1e-300, -1e-300]}', IMAGE_SIG)
    got = req.inputs["image"]
    assert got.dtype == np.float32 and got.tolist()[:2] == [np.inf, -np.inf]
    assert got.tolist()[2:] == [0.0, 0.0] and np.signbit(got[3])


def test_trailing_data_after_the_object_is_ignored_like_tf_serving():
    """rapidjson's kParseStopWhenDoneFlag: what follows the first JSON value is not read."""
    req = P.decode_predict_request(b'{"instances": [1.0, 2.0]} trailing', IMAGE_SIG)
    assert req.inputs["image"].tolist() == [1.0, 2.0]


# ------------------------------------------------------------------------ TF Serving's response shapes


def test_row_response_single_output_is_unnamed_list():
    body = P.encode_predict_response({"probabilities": np.array([[0.5, 0.5]], np.float32)})
    assert orjson.loads(body) == {"predictions": [[0.5, 0.5]]}
    back = P.decode_predict_response(body, output_names=["probabilities"])
    assert list(back) == ["probabilities"]
    assert list(P.decode_predict_response(body)) == [rest.UNNAMED]


def test_row_response_multiple_outputs_are_objects_per_row():
    body = P.encode_predict_response({"b": np.array([1, 2]), "a": np.array([[1.0], [2.0]], np.float32)})
    assert orjson.loads(body) == {"predictions": [{"a": [1.0], "b": 1}, {"a": [2.0], "b": 2}]}


def test_columnar_response_single_output_is_the_bare_value_multiple_are_named():
    assert orjson.loads(P.encode_predict_response({"x": np.array([[1, 2]])}, "columnar")) == {"outputs": [[1, 2]]}
    assert orjson.loads(P.encode_predict_response({"x": np.float32(2.5)}, "columnar")) == {"outputs": 2.5}
    body = P.encode_predict_response({"x": np.array([1]), "y": np.array(3.0)}, "columnar")
    assert orjson.loads(body) == {"outputs": {"x": [1], "y": 3.0}}


def test_floats_are_written_like_tf_serving():
    body = P.encode_predict_response({"p": np.array([1.0, 0.1, 2.5, np.nan, np.inf, -np.inf], np.float32)})
    # Whole numbers keep ".0", float32 keeps its short form, non-finite values use TF's tokens.
    assert body == b'{"predictions":[1.0,0.1,2.5,NaN,Infinity,-Infinity]}'
    back = P.decode_predict_response(body)[rest.UNNAMED]
    assert back[0] == 1.0 and np.float32(back[1]) == np.float32(0.1)
    assert np.isnan(back[3]) and back[4] == np.inf and back[5] == -np.inf
    assert json.loads(body)["predictions"][2] == 2.5  # the stdlib reads TF's tokens too
    # json_tensor_test.cc FromJsonSingleFloatTensorSixDigitPrecision: %g, else %.9g (float) / %.17g (double)
    six = P.encode_predict_response({"f": np.array([[9e6, 999999, 0.5], [0.0003, 0.00003, 555557.5]], np.float32)})
    assert six == b'{"predictions":[[9e+06,999999.0,0.5],[0.0003,3e-05,555557.5]]}'
    assert P.encode_predict_response({"f": np.array([1 / 3], np.float32)}) == b'{"predictions":[0.333333343]}'
    assert P.encode_predict_response({"d": np.array([1 / 3])}) == b'{"predictions":[0.33333333333333331]}'
    with pytest.raises(P.InvalidInput, match=r"^Failed to write JSON value for tensor type: half$"):
        P.encode_predict_response({"h": np.array([0.5, 1.0], np.float16)})  # TF Serving cannot write half


def test_bytes_outputs_named_bytes_are_b64_other_strings_are_text():
    outs = {"labels": np.array([b"daisy"], dtype=object), "thumb_bytes": np.array([b"\x00\xff"], dtype=object)}
    doc = orjson.loads(P.encode_predict_response(outs, "columnar"))
    assert doc == {"outputs": {"labels": ["daisy"], "thumb_bytes": [{"b64": "AP8="}]}}
    back = P.decode_predict_response(P.encode_predict_response(outs, "columnar"))
    assert back["thumb_bytes"].tolist() == [b"\x00\xff"]
    # Binary bytes in a tensor not named *_bytes still survive (as b64: JSON strings cannot hold them).
    doc = orjson.loads(P.encode_predict_response({"raw": np.array([b"\xff"], dtype=object)}))
    assert doc == {"predictions": [{"b64": "/w=="}]}


def test_response_dtypes_can_be_fixed_by_the_caller():
    body = P.encode_predict_response({"p": np.array([[0.25, 0.75]], np.float64), "c": np.array([3], np.int32)})
    back = P.decode_predict_response(body, dtypes={"p": "float64", "c": "DT_INT32"})
    assert back["p"].dtype == np.float64 and back["c"].dtype == np.int32


@pytest.mark.parametrize(
    ("outputs", "fmt", "match"),
    [
        ({}, "row", "^Cannot convert empty tensor map to JSON$"),
        ({"a": np.array(1.0)}, "row", "^Tensor name: a has no shape information $"),
        ({"a": np.zeros(2), "b": np.zeros(3)}, "row", "^Tensor name: b has inconsistent batch size: 3 expecting: 2$"),
        ({"a": np.zeros(2, np.complex64)}, "columnar", "^Failed to write JSON value for tensor type: complex64$"),
        ({"a": np.zeros(2)}, "rows", "format must be"),
    ],
)
def test_bad_responses_raise(outputs, fmt, match):
    with pytest.raises(P.InvalidInput, match=match):
        P.encode_predict_response(outputs, fmt)


def test_encode_request_row_needs_equal_batches():
    with pytest.raises(P.InvalidInput, match="batch size"):
        P.encode_predict_request({"a": np.zeros((2, 1)), "b": np.zeros((3, 1))})


def test_response_error_body_raises():
    with pytest.raises(P.ServingError, match="boom"):
        P.decode_predict_response(b'{"error": "boom"}')
    with pytest.raises(P.InvalidInput, match="'predictions' or 'outputs'"):
        P.decode_predict_response(b'{"results": []}')


# ------------------------------------------------------------------------------------------ error bodies


def test_error_bodies_round_trip_through_http_status():
    err = P.ModelNotFound("Servable not found for request: Latest(flowers)")
    body = P.encode_error(err)
    assert orjson.loads(body) == {"error": "Servable not found for request: Latest(flowers)"}
    back = P.decode_error(P.http_status_for(err), body)
    assert type(back) is P.ModelNotFound and back.message == err.message
    assert isinstance(back, deepclf_errors.NotFoundError)


def test_decode_error_keeps_non_json_bodies():
    err = P.decode_error(502, b"<html>Bad Gateway</html>")
    assert isinstance(err, P.Unavailable) and "Bad Gateway" in err.message and err.http_status == 502


# --------------------------------------------------------------------------------- status and metadata


def test_model_status_json_is_tf_servings_shape():
    resp = P.GetModelStatusResponse()
    resp.model_version_status.add(version=1, state=P.ModelVersionState.AVAILABLE)
    doc = orjson.loads(P.model_status_to_json(resp))
    # The body TF Serving's REST API docs show for GET /v1/models/<name>.
    assert doc == {
        "model_version_status": [
            {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]
    }
    back = P.model_status_from_json(P.model_status_to_json(resp))
    assert back.model_version_status[0].version == 1
    assert back.model_version_status[0].state == P.ModelVersionState.AVAILABLE


def test_model_status_json_matches_official_json_format():
    get_model_status_pb2 = pytest.importorskip("tensorflow_serving.apis.get_model_status_pb2")
    from google.protobuf import json_format

    resp = P.GetModelStatusResponse()
    s = resp.model_version_status.add(version=2, state=P.ModelVersionState.LOADING)
    s.status.error_code = messages.Code.UNAVAILABLE
    s.status.error_message = "loading"
    official = get_model_status_pb2.GetModelStatusResponse.FromString(resp.SerializeToString())
    expected = json_format.MessageToDict(official, always_print_fields_with_no_presence=True)
    assert orjson.loads(P.model_status_to_json(resp)) == expected


def _metadata_response():
    sigs = P.SignatureDefMap()
    for name, inp, dtype in (
        ("serving_default", "image", "DT_FLOAT"),
        ("predict_image_bytes", "image_bytes", "DT_STRING"),
    ):
        sd = sigs.signature_def[name]
        sd.method_name = "tensorflow/serving/predict"
        sd.inputs[inp].name = f"{name}_{inp}:0"
        sd.inputs[inp].dtype = messages.DataType.Value(dtype)
        sd.inputs[inp].tensor_shape.CopyFrom(P.shape_proto([-1, 180, 180, 3] if dtype == "DT_FLOAT" else [-1]))
        sd.outputs["probabilities"].name = "StatefulPartitionedCall:0"
        sd.outputs["probabilities"].dtype = messages.DataType.DT_FLOAT
        sd.outputs["probabilities"].tensor_shape.CopyFrom(P.shape_proto([-1, 5]))
    return P.pack_signature_defs(P.GetModelMetadataResponse(model_spec=P.model_spec("flowers", 3)), sigs)


def test_model_metadata_json_is_tf_servings_shape_and_round_trips():
    resp = _metadata_response()
    doc = orjson.loads(P.model_metadata_to_json(resp))
    assert doc["model_spec"] == {"name": "flowers", "signature_name": "", "version": "3"}
    sig = doc["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert sig["method_name"] == "tensorflow/serving/predict"
    assert sig["inputs"]["image"]["dtype"] == "DT_FLOAT"
    assert sig["inputs"]["image"]["tensor_shape"]["dim"][0] == {"size": "-1", "name": ""}
    assert sig["inputs"]["image"]["tensor_shape"]["unknown_rank"] is False
    back = P.model_metadata_from_json(P.model_metadata_to_json(resp))
    assert back.model_spec == resp.model_spec
    assert P.unpack_signature_defs(back) == P.unpack_signature_defs(resp)


def test_model_metadata_json_matches_official_json_format():
    get_model_metadata_pb2 = pytest.importorskip("tensorflow_serving.apis.get_model_metadata_pb2")
    from google.protobuf import json_format

    official = get_model_metadata_pb2.GetModelMetadataResponse.FromString(_metadata_response().SerializeToString())
    sigs = get_model_metadata_pb2.SignatureDefMap()
    official.metadata["signature_def"].Unpack(sigs)

    def d(m):
        return json_format.MessageToDict(m, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)

    expected = {"model_spec": d(official.model_spec), "metadata": {"signature_def": d(sigs)}}
    assert orjson.loads(P.model_metadata_to_json(_metadata_response())) == expected


def test_bad_status_and_metadata_bodies():
    with pytest.raises(P.InvalidInput, match=r"no metadata\.signature_def"):
        P.model_metadata_from_json(b'{"model_spec": {"name": "x"}}')
    with pytest.raises(P.InvalidInput, match="not a model status response"):
        P.model_status_from_json(b'{"model_version_status": [{"version": "abc"}]}')
