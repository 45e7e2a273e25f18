"""Property-based fuzzing of every decoder a client's bytes reach, in process and through a real server.

What is proven (for every input hypothesis builds, a few thousand per ``make test``, 20,000 per test under
``make test-slow``):

* ``decode_predict_request`` (REST predict) on arbitrary bytes, on mutated valid bodies and on JSON documents built
  from recursive strategies (lists, objects, NaN/inf, integers past int64, strings, ``{"b64": ...}`` objects,
  the keys ``instances`` / ``inputs`` / ``signature_name``, and rectangular tensors so that the success path is
  reached too), against signatures of float32 / int32 / bool / string inputs and random ``RequestLimits``: the
  only exception that escapes is a ``ServingError`` whose HTTP status is 4xx (``InvalidInput``, ``LimitExceeded``,
  ``InvalidInput`` for an unknown signature, ...), never ``ValueError``, ``TypeError``, ``RecursionError``,
  ``MemoryError``, ``OverflowError``...; a success has exactly the signature's names and dtypes, at most
  ``max_rows`` rows per input and at most ``max_bytes`` decoded bytes (strings counted as the budget counts them:
  8 bytes per element plus their lengths).
* ``to_ndarray`` (gRPC tensors) on ``TensorProto``s with random dtype numbers (valid and not), shapes (negative,
  huge, int64-overflowing, unknown rank, high rank), ``tensor_content`` bytes and typed value lists, and on
  arbitrary bytes parsed by ``TensorProto.FromString`` (a ``DecodeError`` there is the client library's refusal:
  gRPC never hands the server an unparseable message): same rule, and a success respects the budget.
* ``input_from_json(body, "classify")`` (REST :classify / :regress) on arbitrary bytes and generated documents with
  ``examples`` / ``context``: only 4xx ``ServingError``; a success serializes (``serialize_input``) with the same
  rule. ``parse_example`` (the runners' tf.Example reader) on arbitrary and mutated bytes: only ``ExampleParseError``
  escapes, and a generated ``tf.Example`` round-trips exactly.
* A real in-process ``EdgeServer`` (TF Serving's half_plus_two SavedModel, whose signatures the server does not hold
  to shapes, so the decoders get everything): generated REST bodies to ``:predict`` / ``:classify`` / ``:regress``
  and generated gRPC ``PredictRequest``s are answered 2xx or 4xx, never 5xx / INTERNAL / UNKNOWN, and ``/healthz``
  still answers 200 afterwards.

Bugs this fuzzer found are kept as plain reproducers at the end of the file (a rank over numpy's 64 dimensions, a
zero dimension beside huge ones: both were ValueErrors, now INVALID_ARGUMENT).

Settings: the hypothesis profiles ``ci`` (the default tests; deadline off, 300-800 examples each) and ``slow``
(the ``@pytest.mark.slow`` variants, ``make test-slow``: 20,000 each); ``DEEPCLF_FUZZ_EXAMPLES`` overrides the
``slow`` count.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import os
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from deepclf import protocol as P
from deepclf.protocol import messages
from deepclf.protocol.errors import InvalidInput, ServingError
from deepclf.protocol.inference import input_from_json, serialize_input
from deepclf.protocol.limits import RequestLimits
from deepclf.protocol.rest import decode_predict_request
from deepclf.protocol.tensors import to_ndarray
from deepclf.runtime.example import ExampleParseError, parse_example

_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile("ci", deadline=None, max_examples=500, suppress_health_check=_HEALTH, print_blob=True)
settings.register_profile(
    "slow",
    deadline=None,
    max_examples=int(os.environ.get("DEEPCLF_FUZZ_EXAMPLES", "20000")),
    suppress_health_check=_HEALTH,
    print_blob=True,
)
CI = settings.get_profile("ci")
SLOW = settings.get_profile("slow")


def ci(n: int) -> settings:
    return settings(CI, max_examples=n)


# ------------------------------------------------------------------------------------------------------ the rule


def _assert_client_error(exc: BaseException) -> None:
    """The one thing a decoder may raise: a ServingError of the 4xx family, with a message."""
    assert isinstance(exc, ServingError), f"{type(exc).__name__} escaped: {exc!r}"
    assert 400 <= exc.http_status < 500, f"{type(exc).__name__} is HTTP {exc.http_status}: {exc!r}"
    assert isinstance(exc.message, str) and exc.message


def _event(text: str) -> None:
    """Counted in ``--hypothesis-show-statistics`` (how often the success path is reached); no-op outside @given."""
    with contextlib.suppress(Exception):  # outside a hypothesis test there is nothing to count
        event(text)


def _string_bytes(arr: np.ndarray) -> int:
    return 8 * arr.size + sum(len(x) for x in arr.reshape(-1).tolist())


# ------------------------------------------------------------------------------------------- JSON strategies

_B64_TEXT = st.binary(max_size=24).map(lambda b: base64.b64encode(b).decode("ascii"))
_HUGE_INTS = st.sampled_from([2**31, -(2**31) - 1, 2**53 + 1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64, 10**30])
_NUMBERS = st.one_of(
    st.integers(-1000, 1000),
    st.integers(),
    _HUGE_INTS,
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e39, -1e39, 3.4e38, 1e308, 5e-324, -0.0]),
)
_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    _NUMBERS,
    st.text(max_size=8),
    st.builds(lambda s: {"b64": s}, st.one_of(_B64_TEXT, st.text(max_size=8))),
)
_KEYS = st.one_of(
    st.sampled_from(["instances", "inputs", "signature_name", "b64", "x", "f", "i", "s_bytes"]), st.text(max_size=6)
)
_JSONISH = st.recursive(
    _LEAVES,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(_KEYS, inner, max_size=4)),
    max_leaves=40,
)

#: signature dtypes as the server gives them (numpy dtype-likes; strings are ``object``)
_SIG_DTYPES = {"float32": np.dtype(np.float32), "int32": np.dtype(np.int32), "bool": np.dtype(np.bool_)}
_SIG_DTYPES["string"] = np.dtype(object)
_SIG_NAMES = ["x", "f", "i", "s_bytes"]
_SIGNATURES = st.dictionaries(st.sampled_from(_SIG_NAMES), st.sampled_from(sorted(_SIG_DTYPES)), min_size=1, max_size=3)
_LIMITS = st.builds(
    RequestLimits,
    max_rows=st.integers(1, 40),
    max_bytes=st.integers(8, 1 << 16),
    max_json_depth=st.integers(1, 40),
)


@st.composite
def _tensor_json(draw: st.DrawFn, kind: str | None = None) -> Any:
    """A rectangular nested list of one kind of value (so decoding can succeed), or a scalar."""
    kind = kind or draw(st.sampled_from(["float", "int", "bool", "string", "b64"]))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4))
    n = int(np.prod(shape))
    if kind == "float":
        leaf: st.SearchStrategy[Any] = st.floats(allow_nan=True, allow_infinity=True, width=32)
    elif kind == "int":
        leaf = st.one_of(st.integers(-(2**31), 2**31 - 1), _HUGE_INTS)
    elif kind == "bool":
        leaf = st.booleans()
    elif kind == "string":
        leaf = st.text(max_size=6)
    else:
        leaf = st.builds(lambda s: {"b64": s}, _B64_TEXT)
    flat = draw(st.lists(leaf, min_size=n, max_size=n))
    arr = np.empty(n, dtype=object)
    arr[:] = flat
    return arr.reshape(shape).tolist()


@st.composite
def _predict_docs(draw: st.DrawFn) -> Any:
    """A predict body's shape: instances (bare or objects) or inputs (bare or named), sometimes a signature."""
    names = draw(st.lists(st.sampled_from(_SIG_NAMES), min_size=1, max_size=3, unique=True))
    value = st.one_of(_tensor_json(), _JSONISH)
    form = draw(st.sampled_from(["rows-bare", "rows-named", "cols-bare", "cols-named", "both", "neither"]))
    doc: dict[str, Any] = {}
    if form == "rows-bare":
        doc["instances"] = draw(value)
    elif form == "rows-named":
        n = draw(st.integers(0, 4))
        doc["instances"] = [{k: draw(value) for k in names} for _ in range(n)]
    elif form == "cols-bare":
        doc["inputs"] = draw(value)
    elif form == "cols-named":
        doc["inputs"] = {k: draw(value) for k in names}
    elif form == "both":
        doc["instances"], doc["inputs"] = draw(value), draw(value)
    if draw(st.booleans()):
        doc["signature_name"] = draw(st.one_of(st.sampled_from(["", "serving_default", "nope"]), _JSONISH))
    return doc


_KIND_OF = {"float32": "float", "int32": "int", "bool": "bool", "string": "string"}


@st.composite
def _conforming(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    """A signature and a body written for it (so most decode, and the success properties are exercised)."""
    sig = draw(_SIGNATURES)
    rows = draw(st.integers(1, 4))
    inner = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3))

    def value(kind: str, shape: tuple[int, ...]) -> Any:
        if kind == "string" and draw(st.booleans()):
            kind = "b64"
        leaf = {
            "float": st.one_of(st.floats(width=32), st.integers(-(2**24), 2**24)),
            "int": st.integers(-(2**31), 2**31 - 1),
            "bool": st.booleans(),
            "string": st.text(max_size=6),
            "b64": st.builds(lambda t: {"b64": t}, _B64_TEXT),
        }[kind]
        n = int(np.prod(shape))
        arr = np.empty(n, dtype=object)
        arr[:] = draw(st.lists(leaf, min_size=n, max_size=n))
        return arr.reshape(shape).tolist()

    doc: dict[str, Any] = {}
    form = draw(st.sampled_from(["rows", "cols"]))
    if form == "rows" and (len(sig) > 1 or draw(st.booleans())):
        doc["instances"] = [{k: value(_KIND_OF[t], inner) for k, t in sig.items()} for _ in range(rows)]
    elif form == "rows":
        ((_, t),) = sig.items()
        doc["instances"] = value(_KIND_OF[t], (rows, *inner))
    elif len(sig) > 1 or draw(st.booleans()):
        doc["inputs"] = {k: value(_KIND_OF[t], (rows, *inner)) for k, t in sig.items()}
    else:
        ((_, t),) = sig.items()
        doc["inputs"] = value(_KIND_OF[t], (rows, *inner))
    if draw(st.booleans()):
        doc["signature_name"] = draw(st.sampled_from(["", "serving_default"]))
    return _dumps(doc), sig


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc, allow_nan=True).encode()


_BODIES = st.one_of(
    st.binary(max_size=200),
    _JSONISH.map(_dumps),
    _predict_docs().map(_dumps),
)


@st.composite
def _mutated(draw: st.DrawFn, base: st.SearchStrategy[bytes]) -> bytes:
    """A valid body with a slice replaced, bytes inserted or cut: near-valid input reaches the deepest code."""
    data = bytearray(draw(base))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(data)))
        j = draw(st.integers(i, min(len(data), i + 8)))
        data[i:j] = draw(st.binary(max_size=8))
    return bytes(data)


# --------------------------------------------------------------------------------------- REST predict decoder


def _check_predict(body: bytes | str, sig_names: Mapping[str, str], limits: RequestLimits, by_name: bool) -> None:
    sig = {k: _SIG_DTYPES[v] for k, v in sig_names.items()}

    def lookup(name: str) -> Mapping[str, Any]:  # what the server passes: unknown signatures are a 400
        if name not in ("", "serving_default"):
            raise InvalidInput(f'Serving signature name: "{name}" not found in signature def')
        return sig

    try:
        req = decode_predict_request(body, lookup if by_name else sig, budget=limits.budget())
    except Exception as exc:
        _assert_client_error(exc)
        _event(f"refused: {type(exc).__name__}")
        return
    _event("decoded")
    assert set(req.inputs) == set(sig)
    used = 0
    for name, arr in req.inputs.items():
        assert isinstance(arr, np.ndarray)
        assert arr.dtype == sig[name], (name, arr.dtype, sig[name])
        if arr.ndim:
            assert limits.max_rows is not None and arr.shape[0] <= limits.max_rows
        assert arr.ndim <= limits.max_json_depth
        used += _string_bytes(arr) if arr.dtype == object else arr.nbytes
    assert limits.max_bytes is not None and used <= limits.max_bytes
    if req.instances is not None:
        assert all(arr.shape[:1] == (req.instances,) for arr in req.inputs.values())


@ci(800)
@given(body=_BODIES, sig=_SIGNATURES, limits=_LIMITS, by_name=st.booleans())
def test_rest_predict_decoder_only_raises_client_errors(body, sig, limits, by_name):
    _check_predict(body, sig, limits, by_name)


@ci(400)
@given(body=_mutated(_predict_docs().map(_dumps)), sig=_SIGNATURES, limits=_LIMITS)
def test_rest_predict_decoder_on_mutated_bodies(body, sig, limits):
    _check_predict(body, sig, limits, by_name=True)


@ci(500)
@given(case=_conforming(), limits=_LIMITS, by_name=st.booleans())
def test_rest_predict_decoder_on_conforming_bodies(case, limits, by_name):
    body, sig = case
    _check_predict(body, sig, limits, by_name)


@ci(200)
@given(text=st.text(max_size=200), sig=_SIGNATURES, limits=_LIMITS)
def test_rest_predict_decoder_takes_str_bodies(text, sig, limits):
    _check_predict(text, sig, limits, by_name=False)


def test_rest_predict_decoder_deep_nesting_and_value_count():
    """The cases the random documents rarely reach: nesting far past the JSON depth, in both parsers (orjson, and
    the stdlib fallback that NaN forces), and a body of more values than the budget allows."""
    limits = RequestLimits()
    for depth in (33, 1000, 100_000):
        for tail in (b"", b", NaN"):
            body = b'{"instances": ' + b"[" * depth + b"1" + tail + b"]" * depth + b"}"
            _check_predict(body, {"x": "float32"}, limits, by_name=False)
    _check_predict(b'{"inputs": [' + b"1," * 5_000_000 + b"1]}", {"x": "float32"}, limits, by_name=False)
    big = b'{"inputs": [' + b"9" * 5000 + b"]}"  # past Python's int-string limit
    _check_predict(big, {"x": "int32"}, limits, by_name=False)


@pytest.mark.slow
@SLOW
@given(body=st.one_of(_BODIES, _mutated(_predict_docs().map(_dumps))), sig=_SIGNATURES, limits=_LIMITS)
def test_rest_predict_decoder_slow(body, sig, limits):
    _check_predict(body, sig, limits, by_name=True)


@pytest.mark.slow
@SLOW
@given(case=_conforming(), limits=_LIMITS)
def test_rest_predict_decoder_conforming_slow(case, limits):
    body, sig = case
    _check_predict(body, sig, limits, by_name=True)


# -------------------------------------------------------------------------------------------- gRPC tensors

DT = P.DataType
_DT_NUMBERS = st.one_of(st.sampled_from(sorted(DT.values())), st.integers(-3, 130), st.integers(-(2**31), 2**31 - 1))
_DIMS = st.one_of(
    st.integers(0, 5),
    st.integers(-3, 40),
    st.sampled_from([2**31, 2**32, 2**62, 2**63 - 1, -1, -(2**63)]),
)
_I32 = st.integers(-(2**31), 2**31 - 1)
_TYPED_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "float_val": st.floats(width=32),
    "double_val": st.floats(),
    "half_val": _I32,
    "int_val": _I32,
    "int64_val": st.integers(-(2**63), 2**63 - 1),
    "uint32_val": st.integers(0, 2**32 - 1),
    "uint64_val": st.integers(0, 2**64 - 1),
    "bool_val": st.booleans(),
    "scomplex_val": st.floats(width=32),
    "dcomplex_val": st.floats(),
    "string_val": st.binary(max_size=16),
}


@st.composite
def _tensor_protos(draw: st.DrawFn) -> P.TensorProto:
    proto = P.TensorProto(dtype=draw(_DT_NUMBERS))
    rank = draw(st.one_of(st.integers(0, 5), st.integers(0, 70)))
    small = draw(st.booleans())
    for _ in range(rank):
        proto.tensor_shape.dim.add(size=draw(st.integers(0, 3) if small else _DIMS))
    if draw(st.integers(0, 20)) == 0:
        proto.tensor_shape.unknown_rank = True
    if draw(st.booleans()):
        content = draw(st.sampled_from(["random", "exact"]))
        if content == "exact":  # the right size for the declared dtype and shape, when both are sane
            n = 1
            for d in proto.tensor_shape.dim:
                n *= max(int(d.size), 0)
            n = min(n, 4096) * draw(st.sampled_from([1, 2, 4, 8, 16]))
            proto.tensor_content = draw(st.binary(min_size=n, max_size=n))
        else:
            proto.tensor_content = draw(st.binary(max_size=64))
    for field in draw(st.lists(st.sampled_from(sorted(_TYPED_FIELDS)), max_size=3, unique=True)):
        getattr(proto, field).extend(draw(st.lists(_TYPED_FIELDS[field], max_size=12)))
    return proto


_VAL_FIELD = {
    DT.DT_FLOAT: "float_val",
    DT.DT_DOUBLE: "double_val",
    DT.DT_HALF: "half_val",
    DT.DT_INT8: "int_val",
    DT.DT_UINT8: "int_val",
    DT.DT_INT16: "int_val",
    DT.DT_UINT16: "int_val",
    DT.DT_INT32: "int_val",
    DT.DT_INT64: "int64_val",
    DT.DT_UINT32: "uint32_val",
    DT.DT_UINT64: "uint64_val",
    DT.DT_BOOL: "bool_val",
    DT.DT_COMPLEX64: "scomplex_val",
    DT.DT_COMPLEX128: "dcomplex_val",
    DT.DT_STRING: "string_val",
}


@st.composite
def _coherent_protos(draw: st.DrawFn) -> P.TensorProto:
    """A supported dtype, a small shape and its own typed field (0..n values, or exact tensor_content)."""
    dtype = draw(st.sampled_from(sorted(_VAL_FIELD)))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4))
    proto = P.TensorProto(dtype=dtype)
    for d in shape:
        proto.tensor_shape.dim.add(size=d)
    n = int(np.prod(shape))
    field = _VAL_FIELD[dtype]
    if dtype != DT.DT_STRING and n and draw(st.booleans()):
        itemsize = P.numpy_dtype_for(dtype).itemsize
        proto.tensor_content = draw(st.binary(min_size=n * itemsize, max_size=n * itemsize))
    else:
        k = draw(st.integers(0, n)) * (2 if "complex" in field else 1)
        getattr(proto, field).extend(draw(st.lists(_TYPED_FIELDS[field], min_size=k, max_size=k)))
    return proto


def _check_tensor(proto: P.TensorProto, limits: RequestLimits, batch_dim: bool) -> None:
    budget = limits.budget()
    try:
        arr = to_ndarray(proto, budget=budget, name="t", batch_dim=batch_dim)
    except Exception as exc:
        _assert_client_error(exc)
        _event(f"refused: {type(exc).__name__}")
        return
    _event("decoded")
    assert isinstance(arr, np.ndarray)
    assert list(arr.shape) == [int(d.size) for d in proto.tensor_shape.dim]
    assert arr.dtype == P.numpy_dtype_for(proto.dtype)
    if batch_dim and arr.ndim:
        assert limits.max_rows is not None and arr.shape[0] <= limits.max_rows
    used = 8 * arr.size + sum(len(s) for s in proto.string_val) if arr.dtype == object else arr.nbytes
    assert limits.max_bytes is not None and used <= limits.max_bytes
    assert budget.used == used


_TENSOR_LIMITS = st.builds(RequestLimits, max_rows=st.integers(1, 64), max_bytes=st.integers(1, 1 << 20))


@ci(800)
@given(proto=st.one_of(_tensor_protos(), _coherent_protos()), limits=_TENSOR_LIMITS, batch_dim=st.booleans())
def test_to_ndarray_only_raises_client_errors(proto, limits, batch_dim):
    _check_tensor(proto, limits, batch_dim)


def _parsed(data: bytes) -> P.TensorProto | None:
    try:
        return P.TensorProto.FromString(data)
    except DecodeError:  # the client library refuses it; gRPC never hands the server such a message
        return None


@ci(500)
@given(
    data=st.one_of(st.binary(max_size=200), _mutated(_tensor_protos().map(lambda p: p.SerializeToString()))),
    limits=_TENSOR_LIMITS,
)
def test_to_ndarray_on_arbitrary_wire_bytes(data, limits):
    proto = _parsed(data)
    if proto is not None:
        _check_tensor(proto, limits, batch_dim=True)


@pytest.mark.slow
@SLOW
@given(
    proto=st.one_of(
        _tensor_protos(),
        _coherent_protos(),
        _mutated(_tensor_protos().map(lambda p: p.SerializeToString())).map(_parsed),
    ).filter(lambda p: p is not None),
    limits=_TENSOR_LIMITS,
    batch_dim=st.booleans(),
)
def test_to_ndarray_slow(proto, limits, batch_dim):
    _check_tensor(proto, limits, batch_dim)


# ---------------------------------------------------------------------------------- classify / regress, Example

_FEATURE_VALUES = st.one_of(
    _LEAVES,
    st.lists(st.one_of(st.floats(), st.integers(-(2**63), 2**63 + 5), st.text(max_size=6)), max_size=4),
    st.lists(_LEAVES, max_size=4),
    _JSONISH,
)
_EXAMPLE_DOCS = st.dictionaries(st.text(max_size=6), _FEATURE_VALUES, max_size=4)


_GOOD_FEATURE = st.one_of(
    st.floats(allow_nan=False),
    st.integers(-(2**63), 2**63 - 1),
    st.text(max_size=6),
    st.builds(lambda t: {"b64": t}, _B64_TEXT),
    st.lists(st.floats(allow_nan=False), max_size=3),
    st.lists(st.integers(-(2**63), 2**63 - 1), max_size=3),
    st.lists(st.text(max_size=4), max_size=3),
)
_GOOD_EXAMPLE = st.dictionaries(st.text(max_size=6), _GOOD_FEATURE, max_size=3)


@st.composite
def _good_classify_docs(draw: st.DrawFn) -> Any:
    doc: dict[str, Any] = {"examples": draw(st.lists(_GOOD_EXAMPLE, min_size=1, max_size=3))}
    if draw(st.booleans()):
        doc["context"] = draw(_GOOD_EXAMPLE)
    return doc


@st.composite
def _classify_docs(draw: st.DrawFn) -> Any:
    doc: dict[str, Any] = {}
    if draw(st.booleans()):
        doc["examples"] = draw(st.one_of(st.lists(st.one_of(_EXAMPLE_DOCS, _JSONISH), max_size=4), _JSONISH))
    if draw(st.booleans()):
        doc["context"] = draw(st.one_of(_EXAMPLE_DOCS, _JSONISH))
    if draw(st.integers(0, 3)) == 0:
        doc["signature_name"] = draw(_JSONISH)
    return doc


_CLASSIFY_BODIES = st.one_of(
    st.binary(max_size=200),
    _JSONISH.map(_dumps),
    _classify_docs().map(_dumps),
    _good_classify_docs().map(_dumps),
    _mutated(_classify_docs().map(_dumps)),
    _mutated(_good_classify_docs().map(_dumps)),
)


def _check_classify(body: bytes, method: str) -> None:
    try:
        signature, inp = input_from_json(body, method)
        assert isinstance(signature, str)
        serialized = serialize_input(inp)
    except Exception as exc:
        _assert_client_error(exc)
        _event(f"refused: {type(exc).__name__}")
        return
    _event("decoded")
    assert serialized and all(isinstance(s, bytes) for s in serialized)
    for s in serialized:  # what the runners then read
        assert isinstance(parse_example(s), dict)


@ci(600)
@given(body=_CLASSIFY_BODIES, method=st.sampled_from(["classify", "regress"]))
def test_classify_json_decoder_only_raises_client_errors(body, method):
    _check_classify(body, method)


@pytest.mark.slow
@SLOW
@given(body=_CLASSIFY_BODIES, method=st.sampled_from(["classify", "regress"]))
def test_classify_json_decoder_slow(body, method):
    _check_classify(body, method)


_FEATURES = st.dictionaries(
    st.text(max_size=6),
    st.one_of(
        st.tuples(st.just("bytes_list"), st.lists(st.binary(max_size=8), max_size=4)),
        st.tuples(st.just("float_list"), st.lists(st.floats(width=32, allow_nan=False), max_size=4)),
        st.tuples(st.just("int64_list"), st.lists(st.integers(-(2**63), 2**63 - 1), max_size=4)),
    ),
    max_size=4,
)


def _example(features: dict[str, tuple[str, list[Any]]]) -> bytes:
    ex = messages.Example()
    for name, (kind, values) in features.items():
        getattr(ex.features.feature[name], kind).value.extend(values)
    return ex.SerializeToString()


def _check_example(data: bytes) -> None:
    try:
        out = parse_example(data)
    except ExampleParseError as exc:
        assert str(exc)
        return
    assert isinstance(out, dict)
    for name, values in out.items():
        assert isinstance(name, str) and isinstance(values, list)
        assert all(isinstance(v, (bytes, float, int)) for v in values)


_EXAMPLE_BYTES = st.one_of(st.binary(max_size=200), _mutated(_FEATURES.map(_example)))


@ci(800)
@given(data=_EXAMPLE_BYTES)
def test_parse_example_only_raises_its_error(data):
    _check_example(data)


@ci(300)
@given(features=_FEATURES)
def test_parse_example_round_trips(features):
    out = parse_example(_example(features))
    assert set(out) == set(features)
    for name, (kind, values) in features.items():
        got = out[name]
        if kind == "float_list":
            assert got == [float(np.float32(v)) for v in values]
        else:
            assert got == values


@pytest.mark.slow
@SLOW
@given(data=_EXAMPLE_BYTES)
def test_parse_example_slow(data):
    _check_example(data)


# ------------------------------------------------------------------------------------------- a real server


@pytest.fixture(scope="module")
def fuzz_server(tfserving_models):
    pytest.importorskip("tensorflow")
    from tests.tfserving_models import serve

    with serve(tfserving_models) as srv:
        yield srv


@st.composite
def _predict_requests(draw: st.DrawFn) -> P.PredictRequest:
    req = P.PredictRequest()
    req.model_spec.name = "half_plus_two"
    req.model_spec.signature_name = draw(st.sampled_from(["", "serving_default", "classify_x_to_y", "nope"]))
    if draw(st.booleans()):  # what half_plus_two takes: x, float32 [n] (so the success path is reached)
        req.model_spec.signature_name = draw(st.sampled_from(["", "serving_default"]))
        values = draw(st.lists(st.floats(width=32), min_size=1, max_size=8))
        req.inputs["x"].CopyFrom(P.to_tensor_proto(np.array(values, np.float32), typed=draw(st.booleans())))
        return req
    for name in draw(st.lists(st.sampled_from(["x", "y", "inputs"]), min_size=0, max_size=2, unique=True)):
        proto = draw(st.one_of(_tensor_protos(), _coherent_protos()))
        req.inputs[name].CopyFrom(proto)
    req.output_filter.extend(draw(st.lists(st.sampled_from(["y", "z"]), max_size=1)))
    return req


def test_real_server_answers_2xx_or_4xx(fuzz_server):
    """Generated bodies over REST and PredictRequests over gRPC: every answer a success or a client error."""
    import grpc
    import requests

    rest = fuzz_server.rest_url + "/v1/models/half_plus_two"
    answers: list[tuple[str, Any]] = []
    with requests.Session() as session, grpc.insecure_channel(fuzz_server.grpc_target) as channel:
        predict = P.unary_unary(channel, P.PREDICT)

        @settings(CI, max_examples=200)
        @given(
            verb=st.sampled_from(["predict", "classify", "regress"]),
            body=st.one_of(
                _BODIES,
                _CLASSIFY_BODIES,
                _mutated(_predict_docs().map(_dumps)),
                st.lists(st.floats(width=32), min_size=1, max_size=8).map(lambda v: _dumps({"instances": v})),
            ),
            req=_predict_requests(),
        )
        @example(verb="predict", body=b'{"instances": [1.0, 2.0]}', req=_valid_predict_request())  # always tried
        def one(verb: str, body: bytes, req: P.PredictRequest) -> None:
            r = session.post(f"{rest}:{verb}", data=body, timeout=30)
            answers.append(("rest", r.status_code))
            assert 200 <= r.status_code < 300 or 400 <= r.status_code < 500, (r.status_code, r.text, body)
            try:
                predict(req, timeout=30)
                answers.append(("grpc", "OK"))
            except grpc.RpcError as exc:
                answers.append(("grpc", exc.code().name))
                assert exc.code() not in (
                    grpc.StatusCode.INTERNAL,
                    grpc.StatusCode.UNKNOWN,
                    grpc.StatusCode.DATA_LOSS,
                    grpc.StatusCode.UNAVAILABLE,
                    grpc.StatusCode.UNIMPLEMENTED,
                ), (exc.code(), exc.details(), req)

        one()
        assert session.get(fuzz_server.rest_url + "/healthz", timeout=5).status_code == 200
    # the fuzzing reached the success path of both APIs, not only the refusals
    assert ("rest", 200) in answers and ("grpc", "OK") in answers, sorted(set(answers))


def _valid_predict_request() -> P.PredictRequest:
    req = P.PredictRequest(model_spec=P.model_spec("half_plus_two"))
    req.inputs["x"].CopyFrom(P.to_tensor_proto(np.array([[1.0], [2.0]], np.float32)))
    return req


# ----------------------------------------------------------------------------------- known bugs (reproducers)


def _rank_65() -> P.TensorProto:
    proto = P.TensorProto(dtype=DT.DT_FLOAT)
    for _ in range(65):
        proto.tensor_shape.dim.add(size=1)
    proto.float_val.append(1.0)
    return proto


def _zero_times_huge() -> P.TensorProto:
    proto = P.TensorProto(dtype=DT.DT_FLOAT)
    for d in (0, 2**62, 2**62):
        proto.tensor_shape.dim.add(size=d)
    return proto


def test_to_ndarray_rank_over_64_is_a_client_error():
    """numpy's 64-dimension limit is checked with the shape (found by this fuzzer: it was a ValueError)."""
    with pytest.raises(ServingError):
        to_ndarray(_rank_65(), budget=RequestLimits().budget(), name="x")


def test_to_ndarray_zero_dim_with_huge_dims_is_a_client_error():
    """[0, 2**62, 2**62] has no elements, but numpy refuses the shape (found by this fuzzer: it was a ValueError)."""
    with pytest.raises(ServingError):
        to_ndarray(_zero_times_huge(), budget=RequestLimits().budget(), name="x")


def test_float_overflow_in_rest_json_is_infinity():
    """JSON numbers past float32's range become +-inf, as TF Serving reads them (json_tensor_test.cc
    FloatTensorThatExceedsMaxReturnsInf; rapidjson's GetFloat), without a numpy overflow warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for value in (1e39, -1e39, 1e308):
            body = _dumps({"instances": [value]})
            got = decode_predict_request(body, {"x": "float32"}, budget=RequestLimits().budget())
            assert got.inputs["x"].tolist() == [math.copysign(math.inf, value)]
    assert math.isinf(
        decode_predict_request(b'{"instances": [Infinity]}', {"x": "float32"}).inputs["x"][0]
    )  # an explicit inf is a value
