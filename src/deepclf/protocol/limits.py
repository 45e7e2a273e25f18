"""Admission before allocation: what one request may make the server build, checked before anything is built.

The body limits (``--max_body_bytes``, the gRPC message limit) bound the bytes on the wire, not what they expand
to: a 29-byte ``TensorProto`` with shape [200, 180, 180, 3] and one ``float_val`` is a 78 MB array once filled,
and ``{"b64": ...}`` copies of a 43-byte GIF become 388,800 float32 bytes each. So every decoder asks a
``RequestBudget`` first, with the shape and dtype it is about to materialise, and only then allocates::

    limits = RequestLimits(max_rows=32, max_bytes=16 << 20)
    budget = limits.budget()                       # one per request: the bytes add up over its tensors
    budget.admit("image", [200, 180, 180, 3], np.dtype("float32"))
    # InvalidInput: input 'image' has 200 rows (shape [200, 180, 180, 3]); this server accepts at most 32 rows
    # per request (--max_request_rows=32)

Every refusal is an ``InvalidInput`` (INVALID_ARGUMENT / 400) that names the input, the limit and its value. A
shape whose element count would overflow int64 is refused the same way (TensorFlow refuses it too), never a
500. The limits' names are the ``deepclf serve`` flags that set them, so the message says what to change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from deepclf.protocol.errors import InvalidInput

__all__ = [
    "DEFAULT_MAX_JSON_DEPTH",
    "DEFAULT_MAX_REQUEST_BYTES",
    "DEFAULT_MAX_REQUEST_ROWS",
    "INT64_MAX",
    "LimitExceeded",
    "RequestBudget",
    "RequestLimits",
]

#: Rows per request when neither the flag nor the batching config says otherwise: 32 images of 180x180x3 float32
#: are 12.4 MB, and the LiteRT runner runs them in fixed-size chunks, so the interpreter never grows with N.
DEFAULT_MAX_REQUEST_ROWS = 32
#: Decoded tensor bytes per request (all inputs together; strings count their bytes).
DEFAULT_MAX_REQUEST_BYTES = 16 * 1024 * 1024
#: JSON nesting: a tensor of rank 32 is already far beyond any model here (TensorFlow allows 254 dimensions).
DEFAULT_MAX_JSON_DEPTH = 32
INT64_MAX = 2**63 - 1
#: numpy arrays have at most 64 dimensions (TensorFlow allows 254; no model here comes near either).
MAX_RANK = 64


class LimitExceeded(InvalidInput):
    """A request over one of the server's admission limits (INVALID_ARGUMENT / 400); the message names it."""


@dataclass(frozen=True)
class RequestLimits:
    """What one request may allocate. ``None`` switches a limit off (for in-process use; the server sets both).

    ``max_rows``: the first (batch) dimension of any input. ``max_bytes``: decoded bytes over all its inputs.
    ``rows_flag`` / ``bytes_flag`` name the settings in messages; ``note`` follows them there (the server says
    that TF Serving has no such limit).
    """

    max_rows: int | None = DEFAULT_MAX_REQUEST_ROWS
    max_bytes: int | None = DEFAULT_MAX_REQUEST_BYTES
    max_json_depth: int = DEFAULT_MAX_JSON_DEPTH
    rows_flag: str = "--max_request_rows"
    bytes_flag: str = "--max_request_bytes"
    note: str = ""

    def budget(self) -> RequestBudget:
        """A fresh budget for one request."""
        return RequestBudget(self)

    @property
    def max_json_values(self) -> int | None:
        """The JSON values a REST body may hold: one per 4 bytes of ``max_bytes`` (a float32 or int32 each).

        Parsed JSON costs 8-32 bytes of Python objects per value, whatever the tensor's dtype, so the values are
        counted (``bytes.count``, before the body is parsed) as well as the tensors they make.
        """
        return None if self.max_bytes is None else max(self.max_bytes // 4, 1)


def element_count(shape: Sequence[int], name: str) -> int:
    """The number of elements of ``shape`` (Python ints: no wrap-around); negative or int64-overflowing refused."""
    if len(shape) > MAX_RANK:
        raise InvalidInput(f"input {name!r}: a shape of rank {len(shape)}; at most {MAX_RANK} dimensions are supported")
    n = nonzero = 1
    for d in shape:
        if d < 0:
            raise InvalidInput(f"input {name!r}: shape {_short(shape)} has a negative dimension {d}")
        n *= d
        # numpy refuses a shape whose non-zero dimensions overflow, even with a zero among them ([0, 2**62, 2**62])
        nonzero *= d or 1
        if nonzero > INT64_MAX:  # stop at once: multiplying on would only grow the number
            raise InvalidInput(f"input {name!r}: shape {_short(shape)} has more elements than int64 can count")
    return n


def _short(shape: Sequence[int]) -> str:
    text = str(list(shape))
    return text if len(text) <= 120 else text[:117] + "..."


class RequestBudget:
    """The decoded bytes one request has used so far; ``admit`` before each tensor is materialised."""

    def __init__(self, limits: RequestLimits) -> None:
        self.limits = limits
        self.used = 0

    def admit(
        self,
        name: str,
        shape: Sequence[int],
        dtype: np.dtype | None,
        *,
        nbytes: int | None = None,
        batch_dim: bool = True,
    ) -> int:
        """Account for a tensor of ``shape`` and ``dtype`` (``nbytes`` when the caller knows it: strings);
        returns its element count. ``batch_dim=False``: the first dimension is not a batch (no row limit)."""
        n, size = self._measure(name, shape, dtype, nbytes, batch_dim)
        self.used += size
        return n

    def check(self, name: str, shape: Sequence[int], dtype: np.dtype | None) -> None:
        """Refuse as ``admit`` would, without counting the tensor (for a caller that admits it later, once its
        dtype is known, or that may hand the request to another decoder)."""
        self._measure(name, shape, dtype, None, True)

    def _measure(
        self, name: str, shape: Sequence[int], dtype: np.dtype | None, nbytes: int | None, batch_dim: bool
    ) -> tuple[int, int]:
        lim = self.limits
        n = element_count(shape, name)
        if batch_dim and shape and lim.max_rows is not None and shape[0] > lim.max_rows:
            raise LimitExceeded(
                f"input {name!r} has {shape[0]} rows (shape {_short(shape)}); this server accepts at most "
                f"{lim.max_rows} rows per request ({lim.rows_flag}={lim.max_rows}{lim.note}); split the batch"
            )
        size = nbytes if nbytes is not None else n * (dtype.itemsize if dtype is not None and dtype.itemsize else 8)
        total = self.used + size
        if lim.max_bytes is not None and total > lim.max_bytes:
            raise LimitExceeded(
                f"input {name!r} (shape {_short(shape)}, {_dtype_name(dtype)}) would make this request "
                f"{total} bytes of tensors; this server accepts at most {lim.max_bytes} bytes per request "
                f"({lim.bytes_flag}={lim.max_bytes}{lim.note}); send fewer or smaller inputs"
            )
        return n, size


def _dtype_name(dtype: np.dtype | None) -> str:
    if dtype is None:
        return "unknown dtype"
    return "string" if dtype.kind in "OSU" else dtype.name
