"""numpy <-> ``tensorflow.TensorProto``, the way TensorFlow reads and writes them, without TensorFlow.

Writing uses ``tensor_content`` (raw little-endian bytes: one copy, no per-element work) for numeric dtypes and
``string_val`` for strings. Reading accepts everything other producers send: ``tensor_content`` or the typed
fields (``float_val``, ``int_val``, ``int64_val``, ``half_val``, ``bool_val``, ...), with TensorFlow's rule that a
short list is padded with its last value (so one value fills the whole shape) and an empty one means zeros::

    proto = to_tensor_proto(np.zeros((2, 180, 180, 3), np.float32))
    arr = to_ndarray(proto)                            # float32, (2, 180, 180, 3)
    to_tensor_proto([b"\\xff\\xd8...", b"..."])         # DT_STRING, shape [2]
    to_ndarray(proto_with_float_val_only)              # e.g. from tf.make_tensor_proto(3.0, shape=[2, 2])

Strings come back as an ``object`` array of ``bytes`` (as ``tf.make_ndarray`` gives them). Anything that cannot
be represented raises ``deepclf.protocol.errors.InvalidInput`` (also a ``deepclf.errors.InvalidInputError``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from deepclf.protocol import messages
from deepclf.protocol.errors import InvalidInput
from deepclf.protocol.limits import RequestBudget, element_count

DT = messages.DataType

#: numpy dtype <-> DataType for every dtype the codecs handle (strings are ``object`` arrays of bytes).
_NUMPY_TO_DT: dict[np.dtype, int] = {
    np.dtype(np.float32): DT.DT_FLOAT,
    np.dtype(np.float64): DT.DT_DOUBLE,
    np.dtype(np.float16): DT.DT_HALF,
    np.dtype(np.int8): DT.DT_INT8,
    np.dtype(np.int16): DT.DT_INT16,
    np.dtype(np.int32): DT.DT_INT32,
    np.dtype(np.int64): DT.DT_INT64,
    np.dtype(np.uint8): DT.DT_UINT8,
    np.dtype(np.uint16): DT.DT_UINT16,
    np.dtype(np.uint32): DT.DT_UINT32,
    np.dtype(np.uint64): DT.DT_UINT64,
    np.dtype(np.bool_): DT.DT_BOOL,
    np.dtype(np.complex64): DT.DT_COMPLEX64,
    np.dtype(np.complex128): DT.DT_COMPLEX128,
    np.dtype(object): DT.DT_STRING,
}
_DT_TO_NUMPY: dict[int, np.dtype] = {v: k for k, v in _NUMPY_TO_DT.items()}

#: Which typed field carries each numeric DataType when ``tensor_content`` is empty (TensorFlow's choice).
_VAL_FIELD: dict[int, str] = {
    DT.DT_FLOAT: "float_val",
    DT.DT_DOUBLE: "double_val",
    DT.DT_HALF: "half_val",
    DT.DT_INT8: "int_val",
    DT.DT_INT16: "int_val",
    DT.DT_INT32: "int_val",
    DT.DT_UINT8: "int_val",
    DT.DT_UINT16: "int_val",
    DT.DT_INT64: "int64_val",
    DT.DT_UINT32: "uint32_val",
    DT.DT_UINT64: "uint64_val",
    DT.DT_BOOL: "bool_val",
    DT.DT_COMPLEX64: "scomplex_val",
    DT.DT_COMPLEX128: "dcomplex_val",
    DT.DT_STRING: "string_val",
}


def supported_dtypes() -> list[str]:
    """Names of the DataTypes the codecs handle (``DT_FLOAT``, ...), for error messages and docs."""
    return [DT.Name(v) for v in _DT_TO_NUMPY]


def datatype_for(dtype: Any) -> int:
    """The ``DataType`` number for a numpy dtype (anything ``np.dtype`` takes; ``str``/``bytes`` -> DT_STRING).

    >>> DataType.Name(datatype_for("float32"))   # doctest: +SKIP
    'DT_FLOAT'
    """
    dt = np.dtype(dtype)
    if dt.kind in "SUO":
        return DT.DT_STRING
    try:
        return _NUMPY_TO_DT[dt.newbyteorder("=")]
    except KeyError:
        raise InvalidInput(
            f"dtype {dt} has no TensorProto encoding here; supported: "
            f"{sorted(str(d) for d in _NUMPY_TO_DT)} (and str/bytes)"
        ) from None


def tf_type_name(dtype: Any) -> str:
    """TensorFlow's ``DataType_Name`` for a numpy dtype, as its error messages print it (``DT_FLOAT``); the numpy
    name for a dtype TensorFlow has no ``DataType`` for."""
    dt = np.dtype(dtype)
    number = DT.DT_STRING if dt.kind in "SUO" else _NUMPY_TO_DT.get(dt.newbyteorder("="))
    return DT.Name(number) if number is not None else dt.name


def tf_type_string(dtype: Any) -> str:
    """TensorFlow's ``DataTypeString`` for a numpy dtype, as its JSON and runtime errors print it: ``float``,
    ``double``, ``half``, ``int32``, ``string``, ``bool``, ``complex64``... (``DT_`` dropped, lower case)."""
    return tf_type_name(dtype).removeprefix("DT_").lower()


def numpy_dtype_for(datatype: int | str) -> np.dtype:
    """The numpy dtype for a ``DataType`` number or name (``DT_STRING`` -> ``object``)."""
    number = DT.Value(datatype) if isinstance(datatype, str) else int(datatype)
    try:
        return _DT_TO_NUMPY[number]
    except KeyError:
        name = DT.Name(number) if number in DT.values() else f"DataType {number}"
        raise InvalidInput(f"{name} is not supported; supported dtypes: {supported_dtypes()}") from None


def shape_proto(shape: Sequence[int | None]) -> messages.TensorShapeProto:
    """A ``TensorShapeProto`` for a shape (``-1`` or ``None`` for an unknown dimension, as in signatures)."""
    proto = messages.TensorShapeProto()
    for d in shape:
        proto.dim.add(size=-1 if d is None else int(d))
    return proto


def shape_of(proto: messages.TensorShapeProto) -> tuple[int, ...]:
    """The shape of a ``TensorShapeProto`` (``-1`` for unknown dimensions); unknown rank raises."""
    if proto.unknown_rank:
        raise InvalidInput("tensor shape has unknown rank; a tensor needs a concrete shape")
    return tuple(int(d.size) for d in proto.dim)


def _as_bytes(x: Any) -> bytes:
    if isinstance(x, bytes):
        return x
    if isinstance(x, str):
        return x.encode("utf-8")
    if isinstance(x, (bytearray, memoryview, np.bytes_)):
        return bytes(x)
    raise InvalidInput(f"a string tensor holds bytes or str, got {type(x).__name__}: {str(x)[:60]!r}")


def as_array(value: Any, dtype: Any = None) -> np.ndarray:
    """``np.asarray`` that keeps bytes intact: ``bytes``/``str`` (and lists of them) become ``object`` arrays.

    numpy's own ``S`` dtype drops trailing NUL bytes, which would corrupt binary payloads such as images.
    """
    if dtype is not None and np.dtype(dtype).kind not in "SUO":
        return np.asarray(value, dtype=np.dtype(dtype))
    if isinstance(value, np.ndarray):
        return value.astype(object) if dtype is not None and value.dtype != object else value
    if isinstance(value, (bytes, str, bytearray, memoryview)):
        arr = np.empty((), dtype=object)
        arr[()] = bytes(value) if isinstance(value, (bytearray, memoryview)) else value
        return arr
    if isinstance(value, (list, tuple)) and _first_leaf_is_text(value):
        try:
            return np.array(value, dtype=object)
        except ValueError as exc:
            raise InvalidInput(f"nested lists of strings must be rectangular (not ragged): {exc}") from None
    try:
        return np.asarray(value)
    except ValueError as exc:
        raise InvalidInput(f"cannot make an array of this value (ragged nested lists?): {exc}") from None


def _first_leaf_is_text(value: Any) -> bool:
    while isinstance(value, (list, tuple)) and value:
        value = value[0]
    return isinstance(value, (bytes, str, bytearray, memoryview))


def to_tensor_proto(value: Any, dtype: Any = None, *, typed: bool = False) -> messages.TensorProto:
    """Encode an array (or anything ``np.asarray`` takes) as a ``TensorProto``.

    ``dtype`` casts first (``to_tensor_proto([1, 2], "float32")``). Numeric arrays go into ``tensor_content``, or
    with ``typed=True`` into the typed field (``float_val``, ``int64_val``, ...), as TF Serving writes responses
    by default (``Tensor::AsProtoField``); strings (``str``, ``bytes``, ``np.str_``/``np.bytes_`` arrays,
    ``object`` arrays of them) into ``string_val`` (``str`` is UTF-8 encoded).
    """
    arr = as_array(value, dtype)
    datatype = datatype_for(arr.dtype)
    proto = messages.TensorProto(dtype=datatype)
    proto.tensor_shape.SetInParent()  # present even for a scalar, as TensorFlow's AsProto writes it
    for d in arr.shape:
        proto.tensor_shape.dim.add(size=d)
    if datatype == DT.DT_STRING:
        proto.string_val.extend(_as_bytes(x) for x in arr.reshape(-1).tolist())
    elif typed:
        flat = arr.reshape(-1)
        field = getattr(proto, _VAL_FIELD[datatype])
        if datatype == DT.DT_HALF:
            field.extend(flat.view(np.uint16).astype(np.int32).tolist())
        elif datatype in (DT.DT_COMPLEX64, DT.DT_COMPLEX128):
            field.extend(np.stack([flat.real, flat.imag], axis=-1).reshape(-1).tolist())
        else:
            field.extend(flat.tolist())
    else:
        # TensorProto's content is little-endian whatever the host is.
        le = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
        proto.tensor_content = np.ascontiguousarray(le).tobytes()
    return proto


def to_ndarray(
    proto: messages.TensorProto,
    *,
    budget: RequestBudget | None = None,
    name: str = "tensor",
    batch_dim: bool = True,
) -> np.ndarray:
    """Decode a ``TensorProto`` (ours or the official class) into a numpy array, as ``tf.make_ndarray`` does.

    Numeric results are read-only views of the message's bytes when ``tensor_content`` is used (no copy); call
    ``.copy()`` to write to them. ``budget`` (``deepclf.protocol.limits``) is asked with the declared shape before
    anything is allocated: a short ``float_val`` list is broadcast to the whole shape, so a few bytes on the wire
    can declare gigabytes. ``name`` is the input named in errors; ``batch_dim``: the first dimension is a batch.
    """
    dtype = numpy_dtype_for(proto.dtype)
    shape = shape_of(proto.tensor_shape)
    if any(d < 0 for d in shape):
        raise InvalidInput(
            f"input {name!r}: tensor shape {list(shape)[:16]} has an unknown (-1) dimension; a tensor needs a "
            "concrete one"
        )
    datatype = int(proto.dtype)
    if budget is None:
        n = element_count(shape, name)
    elif datatype == DT.DT_STRING:
        # An object array holds one pointer per element; the strings themselves are already in the message.
        n = element_count(shape, name)
        budget.admit(name, shape, dtype, nbytes=8 * n + sum(map(len, proto.string_val)), batch_dim=batch_dim)
    else:
        n = budget.admit(name, shape, dtype, batch_dim=batch_dim)

    if datatype != DT.DT_STRING and proto.tensor_content:
        content = proto.tensor_content
        expected = n * dtype.itemsize
        if len(content) != expected:
            raise InvalidInput(
                f"{DT.Name(datatype)} tensor of shape {list(shape)} needs {expected} bytes of tensor_content "
                f"({n} elements x {dtype.itemsize} bytes), got {len(content)}"
            )
        arr = np.frombuffer(content, dtype=dtype.newbyteorder("<"))
        return arr.astype(dtype, copy=False).reshape(shape)

    field = _VAL_FIELD[datatype]
    values = getattr(proto, field)
    if datatype == DT.DT_STRING:
        flat = np.empty(len(values), dtype=object)
        flat[:] = list(values)
    elif datatype == DT.DT_HALF:
        # half_val holds each float16's bit pattern in an int32.
        flat = np.asarray(values, dtype=np.int32).astype(np.uint16).view(np.float16)
    elif datatype in (DT.DT_COMPLEX64, DT.DT_COMPLEX128):
        parts = np.asarray(values, dtype=np.float32 if datatype == DT.DT_COMPLEX64 else np.float64)
        if parts.size % 2:
            raise InvalidInput(f"{field} holds (real, imag) pairs, got an odd count: {parts.size}")
        flat = parts.view(dtype)
    else:
        flat = np.asarray(values, dtype=np.int64 if field == "int_val" else None)
        _check_int_range(flat, dtype, field)
        flat = flat.astype(dtype, copy=False)

    if flat.size == n:
        return flat.reshape(shape)
    if flat.size > n:
        raise InvalidInput(
            f"{DT.Name(datatype)} tensor of shape {list(shape)} has {n} elements but {field} holds {flat.size} values"
        )
    if flat.size == 0:
        # TensorFlow reads a tensor without values as zeros (empty strings for DT_STRING).
        return np.full(shape, b"" if datatype == DT.DT_STRING else 0, dtype=dtype)
    # TensorFlow pads a short list with its last value: one value is broadcast to the whole shape.
    out = np.empty(n, dtype=dtype)
    out[: flat.size] = flat
    out[flat.size :] = flat[-1]
    return out.reshape(shape)


def _check_int_range(values: np.ndarray, dtype: np.dtype, field: str) -> None:
    # int_val is int32 on the wire for int8/uint8/int16/uint16; a value outside the target range is an error, not
    # a silent wrap-around.
    if values.size == 0 or dtype.kind not in "iu" or dtype.itemsize >= 4:
        return
    info = np.iinfo(dtype)
    lo, hi = int(values.min()), int(values.max())
    if lo < info.min or hi > info.max:
        bad = lo if lo < info.min else hi
        raise InvalidInput(f"{field} value {bad} does not fit {dtype} (range {info.min}..{info.max})")
