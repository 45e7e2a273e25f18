"""numpy <-> TensorProto: round trips for every dtype and shape, and agreement with TensorFlow's own codecs."""

from __future__ import annotations

import numpy as np
import pytest

from deepclf import errors as deepclf_errors
from deepclf import protocol as P
from deepclf.protocol import messages

NUMERIC = [
    np.float32,
    np.float16,
    np.float64,
    np.int8,
    np.uint8,
    np.int16,
    np.uint16,
    np.int32,
    np.uint32,
    np.int64,
    np.uint64,
    np.bool_,
    np.complex64,
    np.complex128,
]
SHAPES = [(), (0,), (1,), (3,), (2, 3), (0, 180, 180, 3), (2, 4, 5, 3)]


def _sample(dtype, shape, seed=0):
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return rng.integers(0, 2, size=shape).astype(bool)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        return rng.integers(info.min, info.max, size=shape, dtype=dt, endpoint=True)
    if dt.kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dt)
    return (rng.standard_normal(shape) * 100).astype(dt)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", NUMERIC, ids=lambda d: np.dtype(d).name)
def test_numeric_round_trip(dtype, shape):
    arr = _sample(dtype, shape)
    proto = P.to_tensor_proto(arr)
    assert proto.dtype == P.datatype_for(dtype)
    assert [d.size for d in proto.tensor_shape.dim] == list(shape)
    back = P.to_ndarray(P.TensorProto.FromString(proto.SerializeToString()))
    assert back.dtype == np.dtype(dtype)
    assert back.shape == shape
    np.testing.assert_array_equal(back, arr)


@pytest.mark.parametrize("shape", [(), (0,), (2,), (2, 2)], ids=str)
def test_string_round_trip_keeps_binary_bytes(shape):
    values = [b"\xff\xd8\xff\xe0\x00", b"", "caf\u00e9", b"\x00\x00"]
    n = int(np.prod(shape))
    arr = np.empty(n, dtype=object)
    arr[:] = [values[i % len(values)] for i in range(n)]
    arr = arr.reshape(shape)
    back = P.to_ndarray(P.to_tensor_proto(arr))
    assert back.dtype == object and back.shape == shape
    expected = [v.encode() if isinstance(v, str) else v for v in arr.reshape(-1).tolist()]
    assert back.reshape(-1).tolist() == expected  # trailing NULs included


def test_lists_of_bytes_are_never_truncated_by_numpy_s_dtype():
    proto = P.to_tensor_proto([b"png\x00\x00", b"x"])
    assert list(proto.string_val) == [b"png\x00\x00", b"x"]
    assert P.to_tensor_proto("text").string_val[0] == b"text"
    assert P.to_tensor_proto(np.array(["a", "bc"])).string_val[1] == b"bc"


def test_dtype_argument_casts():
    proto = P.to_tensor_proto([[1, 2, 3]], "float32")
    assert proto.dtype == messages.DataType.DT_FLOAT
    assert P.to_ndarray(proto).dtype == np.float32


def _typed(datatype, shape, field, values):
    proto = P.TensorProto(dtype=messages.DataType.Value(datatype))
    for d in shape:
        proto.tensor_shape.dim.add(size=d)
    getattr(proto, field).extend(values)
    return proto


@pytest.mark.parametrize(
    ("datatype", "field", "values", "dtype"),
    [
        ("DT_FLOAT", "float_val", [1.5, -2.0, 0.25, 8.0], np.float32),
        ("DT_DOUBLE", "double_val", [1.5, -2.0, 0.25, 8.0], np.float64),
        ("DT_INT32", "int_val", [1, -2, 3, 2**31 - 1], np.int32),
        ("DT_INT16", "int_val", [1, -2, 3, -32768], np.int16),
        ("DT_INT8", "int_val", [1, -2, 3, 127], np.int8),
        ("DT_UINT8", "int_val", [0, 1, 200, 255], np.uint8),
        ("DT_UINT16", "int_val", [0, 1, 200, 65535], np.uint16),
        ("DT_INT64", "int64_val", [1, -2, 3, 2**62], np.int64),
        ("DT_UINT32", "uint32_val", [0, 1, 2, 2**32 - 1], np.uint32),
        ("DT_UINT64", "uint64_val", [0, 1, 2, 2**64 - 1], np.uint64),
        ("DT_BOOL", "bool_val", [True, False, False, True], np.bool_),
        ("DT_STRING", "string_val", [b"a", b"", b"\x00", b"d"], object),
    ],
)
def test_typed_value_fields_are_read(datatype, field, values, dtype):
    arr = P.to_ndarray(_typed(datatype, (2, 2), field, values))
    assert arr.dtype == np.dtype(dtype) and arr.shape == (2, 2)
    assert arr.reshape(-1).tolist() == list(values)


def test_half_val_holds_bit_patterns():
    halves = np.array([1.5, -2.0, 65504.0, 0.0009765625], np.float16)
    arr = P.to_ndarray(_typed("DT_HALF", (4,), "half_val", halves.view(np.uint16).tolist()))
    np.testing.assert_array_equal(arr, halves)


def test_complex_val_holds_pairs():
    arr = P.to_ndarray(_typed("DT_COMPLEX64", (2,), "scomplex_val", [1, 2, 3, -4]))
    np.testing.assert_array_equal(arr, np.array([1 + 2j, 3 - 4j], np.complex64))


def test_single_value_is_broadcast_and_short_lists_padded_with_the_last_value():
    np.testing.assert_array_equal(P.to_ndarray(_typed("DT_FLOAT", (2, 3), "float_val", [7.0])), np.full((2, 3), 7.0))
    np.testing.assert_array_equal(P.to_ndarray(_typed("DT_INT32", (4,), "int_val", [1, 2])), [1, 2, 2, 2])
    assert P.to_ndarray(_typed("DT_STRING", (3,), "string_val", [b"x"])).tolist() == [b"x"] * 3
    # No values at all: zeros, as TensorFlow reads it.
    np.testing.assert_array_equal(P.to_ndarray(_typed("DT_INT64", (2,), "int64_val", [])), [0, 0])


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: _typed("DT_FLOAT", (2,), "float_val", [1, 2, 3]), "holds 3 values"),
        (lambda: _typed("DT_INT8", (1,), "int_val", [300]), "does not fit int8"),
        (lambda: _typed("DT_BFLOAT16", (1,), "half_val", [1]), "DT_BFLOAT16 is not supported"),
        (lambda: _typed("DT_RESOURCE", (1,), "half_val", []), "DT_RESOURCE is not supported"),
        (lambda: _typed("DT_FLOAT", (-1, 3), "float_val", [1]), r"unknown \(-1\) dimension"),
        (lambda: P.TensorProto(dtype=1, tensor_shape=P.TensorShapeProto(unknown_rank=True)), "unknown rank"),
    ],
)
def test_bad_protos_raise_invalid_input(make, match):
    with pytest.raises(deepclf_errors.InvalidInputError, match=match):
        P.to_ndarray(make())


def test_content_length_must_match_shape():
    proto = P.to_tensor_proto(np.zeros((2, 3), np.float32))
    proto.tensor_shape.dim[1].size = 4
    with pytest.raises(P.InvalidInput, match=r"needs 32 bytes of tensor_content .* got 24"):
        P.to_ndarray(proto)


@pytest.mark.parametrize("bad", [np.array(["2020-01-01"], dtype="datetime64[D]"), np.array([1.0], np.longdouble)])
def test_unsupported_numpy_dtypes_are_rejected(bad):
    with pytest.raises(deepclf_errors.InvalidInputError, match="no TensorProto encoding"):
        P.to_tensor_proto(bad)


def test_non_string_objects_are_rejected():
    with pytest.raises(P.InvalidInput, match="holds bytes or str, got int"):
        P.to_tensor_proto(np.array([1, b"x"], dtype=object))


# ------------------------------------------------------------------------ agreement with TensorFlow itself

TF_DTYPES = [np.float32, np.float16, np.float64, np.int8, np.uint8, np.int16, np.int32, np.int64, np.bool_]


@pytest.fixture(scope="module")
def tf():
    return pytest.importorskip("tensorflow")


@pytest.mark.parametrize("shape", [(), (0,), (1,), (2, 3), (0, 4, 4, 3), (2, 4, 4, 3)], ids=str)
@pytest.mark.parametrize("dtype", TF_DTYPES, ids=lambda d: np.dtype(d).name)
def test_agrees_with_tf_make_tensor_proto_and_make_ndarray(tf, dtype, shape):
    arr = _sample(dtype, shape, seed=1)
    # TF's proto -> ours (TF uses typed *_val fields for scalars and tensor_content for the rest).
    tf_proto = tf.make_tensor_proto(arr)
    ours = P.to_ndarray(P.TensorProto.FromString(tf_proto.SerializeToString()))
    assert ours.dtype == arr.dtype
    np.testing.assert_array_equal(ours, arr)
    # Ours -> TF's reader.
    from tensorflow.core.framework import tensor_pb2

    theirs = tf.make_ndarray(tensor_pb2.TensorProto.FromString(P.to_tensor_proto(arr).SerializeToString()))
    assert theirs.dtype == arr.dtype
    np.testing.assert_array_equal(theirs, arr)


def test_agrees_with_tf_on_strings_and_broadcast_scalars(tf):
    from tensorflow.core.framework import tensor_pb2

    strings = np.array([[b"\xff\xd8", b"a"], [b"", b"zz"]], dtype=object)
    assert tf.make_ndarray(
        tensor_pb2.TensorProto.FromString(P.to_tensor_proto(strings).SerializeToString())
    ).tolist() == (strings.tolist())
    tf_proto = tf.make_tensor_proto(strings)
    assert P.to_ndarray(P.TensorProto.FromString(tf_proto.SerializeToString())).tolist() == strings.tolist()
    # tf.make_tensor_proto(3.0, shape=...) writes one float_val; both readers broadcast it.
    for value, dtype in ((3.0, tf.float32), (7, tf.int32), (True, tf.bool), (2.5, tf.float16)):
        tf_proto = tf.make_tensor_proto(value, dtype=dtype, shape=[2, 3])
        ours = P.to_ndarray(P.TensorProto.FromString(tf_proto.SerializeToString()))
        np.testing.assert_array_equal(ours, tf.make_ndarray(tf_proto))
        assert ours.dtype == tf.make_ndarray(tf_proto).dtype


def test_agrees_with_tf_tensor_from_proto(tf):
    # The C++ reader (what TF Serving uses) accepts our protos too.
    from tensorflow.core.framework import tensor_pb2

    arr = _sample(np.float32, (2, 3))
    t = tf.io.parse_tensor(tf.constant(P.to_tensor_proto(arr).SerializeToString()), out_type=tf.float32)
    np.testing.assert_array_equal(t.numpy(), arr)
    assert tensor_pb2.TensorProto.FromString(P.to_tensor_proto(arr).SerializeToString()).dtype == 1
