"""The simdjson fast path of REST predict bodies gives the general parser's arrays bit for bit, and hands every
other body (ragged, NaN tokens, booleans, mixed, out of range, strings) back to it, so errors keep their words."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from deepclf.protocol import json_fast
from deepclf.protocol.errors import InvalidInput
from deepclf.protocol.limits import RequestLimits
from deepclf.protocol.rest import _dtype_of, decode_predict_request

pytestmark = pytest.mark.skipif(not json_fast.available(), reason="pysimdjson is not installed")


def _both(body: bytes, sig: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    fast = json_fast.fast_predict_request(body, sig, RequestLimits().budget(), _dtype_of)
    with monkeypatch.context() as m:
        m.setattr(json_fast, "simdjson", None)
        slow = decode_predict_request(body, sig, budget=RequestLimits().budget())
    return fast, slow


def _same(fast: Any, slow: Any) -> None:
    assert fast is not None, "the fast path should have taken this body"
    assert (fast.signature_name, fast.format, fast.instances) == (slow.signature_name, slow.format, slow.instances)
    assert fast.inputs.keys() == slow.inputs.keys()
    for k in fast.inputs:
        a, b = fast.inputs[k], slow.inputs[k]
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes()  # bit for bit, NaN-free by construction


@pytest.mark.parametrize(
    ("doc", "sig"),
    [
        ({"instances": np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype(np.float32)}, "float32"),
        ({"instances": np.random.default_rng(1).integers(0, 256, (1, 4, 4, 3))}, "float32"),  # ints for floats
        ({"instances": np.random.default_rng(2).integers(-5, 5, (3, 2))}, "int32"),
        ({"instances": [1.5, 2.25, 1e-40, -0.0]}, "float32"),  # subnormal and -0.0 round the same way
        ({"instances": [0.1, 1 / 3, 1e300]}, "float64"),
        ({"instances": [1e39, -1e39]}, "float32"),  # past float's range: +-Infinity, as TF Serving reads it
        ({"signature_name": "serving_default", "inputs": [[1.0, 2.0], [3.0, 4.0]]}, "float32"),
        ({"inputs": {"x": [[1.0, 2.0]]}}, "float32"),  # columnar, named
        ({"instances": [{"x": [[1.0, 2.5]]}, {"x": [[3.0, 4.0]]}]}, "float32"),  # rows as objects (our clients)
    ],
)
def test_fast_path_equals_the_general_parser(doc, sig, monkeypatch):
    body = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
    fast, slow = _both(body, {"x": sig}, monkeypatch)
    _same(fast, slow)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        # ragged, same count and same lists (TF Serving's words for each: json_tensor.cc)
        (b'{"instances": [[[1,2],[3,4,5]],[[6],[7,8]]]}', "Encountered list at unexpected size: 3 at level: 1"),
        (b'{"instances": [[1,2],[3]]}', "Failed to process element: 1 .*Expecting tensor size: 2 but got: 1"),
        (b'{"instances": [[[1,2],[3,4]],[[5,6]],[[7,8],[9,10],[11,12]]]}', "Expecting tensor size: 4 but got: 2"),
        (b'{"instances": [NaN, 1.0]}', None),  # TF Serving's NaN token: the general parser takes it
        (b'{"instances": [true, false]}', "JSON Value: true Type: True is not of expected type: float"),
        (b'{"instances": ["a"]}', 'JSON Value: "a" Type: String is not of expected type: float'),
        (b'{"instances": [[2, 1.5]]}', None),  # an integer first, then a float: the general parser takes it
        (b'{"instances": [1.0], "extra": 1}', None),
        (b'{"signature_name": "a[b", "instances": [1.0]}', None),  # a bracket outside the tensor
        (b'{"instances": [{"x": [1.0, 2.0]}, {"x": [3.0]}]}', "element: 1 key: x .*Expecting tensor size: 2 but"),
        (b'{"instances": [{"x": [1.0]}, {"y": [3.0]}]}', "does not have named input: y"),
    ],
)
def test_other_bodies_go_to_the_general_parser(body, needle):
    budget = RequestLimits().budget()
    assert json_fast.fast_predict_request(body, {"x": "float32"}, budget, _dtype_of) is None
    assert budget.used == 0  # nothing admitted twice
    if needle is None:
        decode_predict_request(body, {"x": "float32"}, budget=RequestLimits().budget())
    else:
        with pytest.raises(InvalidInput, match=needle):
            decode_predict_request(body, {"x": "float32"}, budget=RequestLimits().budget())


def test_limits_are_asked_as_the_general_parser_asks():
    body = orjson.dumps({"instances": np.zeros((40, 2), np.float32)}, option=orjson.OPT_SERIALIZE_NUMPY)
    with pytest.raises(InvalidInput, match="40 rows"):
        json_fast.fast_predict_request(body, {"x": "float32"}, RequestLimits().budget(), _dtype_of)


@settings(max_examples=300, deadline=None)
@given(
    arr=hnp.arrays(
        np.float32,
        hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=5),
        elements=st.floats(-3.0000000054977558e38, 3.0000000054977558e38, width=32, allow_nan=False),
    ),
    form=st.sampled_from(["rows", "columns", "named rows"]),
)
def test_fast_path_equals_the_general_parser_on_any_rectangular_float32(arr, form):
    doc = {
        "rows": {"instances": arr},
        "columns": {"inputs": arr},
        "named rows": {"instances": [{"x": row} for row in arr]},
    }[form]
    body = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
    with pytest.MonkeyPatch.context() as m:
        fast, slow = _both(body, {"x": "float32"}, m)
    if form == "named rows" and arr.ndim == 1:
        assert fast is None  # rows of scalars: the general parser
        return
    _same(fast, slow)
    np.testing.assert_array_equal(fast.inputs["x"], arr)


_nested = st.recursive(
    st.lists(st.integers(-9, 9), min_size=1, max_size=4),
    lambda inner: st.lists(inner, min_size=1, max_size=3),
    max_leaves=40,
)


def _is_rectangular(v: Any) -> bool:
    try:
        np.asarray(v, dtype=np.int64)  # numpy refuses an inhomogeneous (ragged) nesting
    except ValueError:
        return False
    return True


@settings(max_examples=300, deadline=None)
@given(value=_nested, spaces=st.booleans())
def test_fast_path_takes_exactly_the_rectangular_bodies(value, spaces):
    """Any nesting of lists, ragged or not (the structure check compares the body's brackets and commas with
    the tensor's): the fast path takes a body only when it is rectangular, and then gives the general parser's
    array; whitespace anywhere changes nothing."""
    body = orjson.dumps({"instances": value})
    if spaces:
        body = body.replace(b",", b" , ").replace(b"[", b"[ \n")
    fast = json_fast.fast_predict_request(body, {"x": "int32"}, RequestLimits().budget(), _dtype_of)
    if not _is_rectangular(value):
        assert fast is None
        return
    assert fast is not None
    np.testing.assert_array_equal(fast.inputs["x"], np.asarray(value, dtype=np.int32))


def test_large_structure_patterns_are_not_kept():
    """The expected bracket/comma pattern of a shape is cached only when small (a client sending many large
    shapes must not make the server keep their patterns), and a large rectangular body still takes the fast path."""
    json_fast._cached_structure.cache_clear()
    small = orjson.dumps({"instances": np.zeros((2, 3), np.float32)}, option=orjson.OPT_SERIALIZE_NUMPY)
    big = orjson.dumps({"instances": np.zeros((4, 300_000), np.float32)}, option=orjson.OPT_SERIALIZE_NUMPY)
    for body in (small, big):
        req = json_fast.fast_predict_request(body, {"x": "float32"}, None, _dtype_of)
        assert req is not None and req.inputs["x"].size in (6, 1_200_000)
    assert json_fast._cached_structure.cache_info().currsize == 1  # the small one only
