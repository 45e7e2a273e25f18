"""``to_tensor_proto(..., typed=True)`` writes the typed fields TF Serving answers with (``float_val``, ...), never
``tensor_content``, and reads back to the same array for every numeric dtype."""

from __future__ import annotations

import numpy as np
import pytest

from deepclf.protocol import to_ndarray, to_tensor_proto

DTYPES = ["float32", "float64", "float16", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]


@pytest.mark.parametrize("dtype", [*DTYPES, "bool", "complex64", "complex128"])
def test_typed_round_trip(dtype: str) -> None:
    arr = (np.arange(6).reshape(2, 3) % 2 == 1) if dtype == "bool" else np.arange(6).reshape(2, 3).astype(dtype)
    if dtype.startswith("complex"):
        arr = arr + 1j * arr
    proto = to_tensor_proto(arr, typed=True)
    assert proto.tensor_content == b""
    out = to_ndarray(proto)
    assert out.dtype == arr.dtype
    np.testing.assert_array_equal(out, arr)


def test_float_val_as_tf_serving_writes_it() -> None:
    proto = to_tensor_proto(np.array([[3.0]], np.float32), typed=True)
    assert list(proto.float_val) == [3.0]
    assert [d.size for d in proto.tensor_shape.dim] == [1, 1]
