"""The REST hot path: a predict body holding one numeric tensor, parsed straight into a typed buffer.

``orjson.loads`` builds a Python float per number and ``np.asarray`` walks those nested lists again. simdjson
parses the body into its own tape and copies the numbers out in one flat buffer (``Array.as_buffer``), no Python
object per number, several times faster than the general parser on the row request of one 180x180 image
(``python benchmarks/micro.py rest-decode`` times both; docs/results/2026-11-30-profiles.md). So the common
request,

    {"instances": [[[[...]]]]}   {"instances": [{"image": [[[...]]]}, ...]}   {"inputs": [...] | {"image": [...]}}

with one float or integer input, takes this path::

    req = fast_predict_request(body, dtypes_of, budget)   # a RestRequest, or None: use the general parser

Anything else (several inputs, strings, b64, booleans, ``NaN`` tokens, mixed integers and floats, values that do
not fit the dtype, malformed JSON) returns ``None`` and goes through ``deepclf.protocol.rest``, which gives every
error its message; this path never words an error itself, except those of the signature lookup and the request
budget, which it asks exactly as the general parser does. The numbers are the same bits either way: both parsers
round each JSON number to the nearest double, then numpy casts it to the signature's dtype.

Rectangularity without touching every sub-list in Python: the shape comes from the first element at each depth,
then the body's brackets and commas, in order, must be exactly those of a rectangular tensor of that shape (one
``bytes.translate``, one comparison); a ragged body goes to the general parser, which says what is wrong.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from deepclf.protocol.limits import DEFAULT_MAX_JSON_DEPTH, RequestBudget
from deepclf.protocol.rest_types import COLUMNAR, ROW, RestRequest
from deepclf.protocol.tf_json import JSON_DTYPES

simdjson: Any
try:  # an optional accelerator: without it every request takes the general parser
    import simdjson
except ImportError:  # pragma: no cover - installed with the package
    simdjson = None

__all__ = ["available", "fast_predict_request"]

_local = threading.local()  # a simdjson.Parser per thread: one parser holds one document at a time
_FORMATS = ("instances", "inputs")


def available() -> bool:
    """Whether the fast path can run here (pysimdjson is installed)."""
    return simdjson is not None


def _parser() -> Any:
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = simdjson.Parser()
    return parser


def fast_predict_request(
    body: bytes,
    signature_inputs: Mapping[str, Any] | Callable[[str], Mapping[str, Any]],
    budget: RequestBudget | None,
    dtype_of: Callable[[Any], np.dtype],
) -> RestRequest | None:
    """The ``RestRequest`` for the simple case, else ``None`` (see the module docstring)."""
    if simdjson is None or not isinstance(body, bytes):
        return None
    parser = _parser()
    try:
        doc = parser.parse(body)
    except Exception:  # noqa: BLE001 - anything simdjson refuses goes to the general parser, which words the error
        return None
    try:
        return _decode(doc, body, signature_inputs, budget, dtype_of)
    finally:
        del doc  # the parser can take the next document only once no proxy of this one is alive


def _decode(
    doc: Any,
    body: bytes,
    signature_inputs: Mapping[str, Any] | Callable[[str], Mapping[str, Any]],
    budget: RequestBudget | None,
    dtype_of: Callable[[Any], np.dtype],
) -> RestRequest | None:
    if not isinstance(doc, simdjson.Object):
        return None
    keys = set(doc.keys())
    formats = [f for f in _FORMATS if f in keys]
    if len(formats) != 1 or not keys <= {"signature_name", *_FORMATS}:
        return None
    signature_name = doc.get("signature_name", "")
    if not isinstance(signature_name, str):
        return None
    if callable(signature_inputs) and not isinstance(signature_inputs, Mapping):
        signature_inputs = signature_inputs(signature_name)  # raises for an unknown signature, as rest does
    if len(signature_inputs) != 1:
        return None
    ((name, spec),) = signature_inputs.items()
    dtype = dtype_of(spec)
    if dtype.kind not in "fiu" or dtype not in JSON_DTYPES:  # the general path refuses those as TF Serving does
        return None
    fmt = formats[0]
    value = doc[fmt]
    if fmt == "inputs" and isinstance(value, simdjson.Object):
        if set(value.keys()) != {name}:
            return None
        value = value[name]
    if not isinstance(value, simdjson.Array) or not len(value):
        return None
    parts = [value]
    if fmt == "instances" and isinstance(value[0], simdjson.Object):
        # Rows as objects, {"instances": [{"image": [...]}, ...]}: what deepclf's clients send for named inputs.
        rows = [value[i] for i in range(len(value))]
        if not all(isinstance(r, simdjson.Object) and len(r) == 1 and name in r for r in rows):
            return None
        parts = [r[name] for r in rows]
        if not all(isinstance(p, simdjson.Array) for p in parts):
            return None
    arr = _numbers(parts, fmt == "instances" and parts[0] is not value, body, signature_name, dtype, name, budget)
    if arr is None:
        return None
    if fmt == "instances":
        return RestRequest({name: arr}, signature_name, ROW, int(arr.shape[0]))
    return RestRequest({name: arr}, signature_name, COLUMNAR)


def _numbers(
    parts: list[Any],
    rows: bool,
    body: bytes,
    signature_name: str,
    dtype: np.dtype,
    name: str,
    budget: RequestBudget | None,
) -> np.ndarray | None:
    """The tensor of ``parts`` (one array, or with ``rows`` one array per instance object)."""
    shape: list[int] = [len(parts)] if rows else []
    leaf = parts[0]
    max_depth = budget.limits.max_json_depth if budget is not None else DEFAULT_MAX_JSON_DEPTH
    while isinstance(leaf, simdjson.Array):
        if not len(leaf) or len(shape) >= max_depth:
            return None
        shape.append(len(leaf))
        leaf = leaf[0]
    if type(leaf) not in (int, float):  # bool is an int subclass: true/false go to the general parser
        return None
    if any(c in signature_name or c in name for c in "[],") or not _rectangular(body, shape):
        return None  # ragged (or brackets in a name): the general parser checks and words it
    if budget is not None:
        budget.check(name, shape, dtype)  # the general parser's refusal and message, before anything is built
    arr = _buffer(parts, leaf, dtype, shape)
    if arr is not None and budget is not None:
        budget.admit(name, shape, dtype)  # counted only here: on None the general parser admits it
    return arr


#: Every byte but ``[``, ``]`` and ``,``: what ``bytes.translate`` deletes to leave a body's list structure.
_NOT_STRUCTURE = bytes(c for c in range(256) if c not in b"[],")


def _structure_length(shape: list[int]) -> int:
    """How many ``[``, ``]`` and ``,`` a rectangular tensor of ``shape`` is written with."""
    total, lists = 0, 1
    for n in shape:
        total += 2 * lists + lists * (n - 1)  # each list's two brackets and the commas between its n items
        lists *= n
    return total


#: Patterns up to this size are kept (8 shapes at most): a 180x180x3 image's is ~160 KB. Larger ones are rebuilt
#: per request, so a client sending many large shapes cannot make the server keep more than 8 MiB of them.
_CACHED_STRUCTURE_MAX = 1 << 20


def _build_structure(shape: tuple[int, ...]) -> bytes:
    """The brackets and commas of a rectangular tensor of ``shape``, in body order: (2, 3) -> ``[[,,],[,,]]``."""
    inner = b"[" + b"," * (shape[-1] - 1) + b"]"
    for n in reversed(shape[:-1]):
        inner = b"[" + b",".join([inner] * n) + b"]"
    return inner


_cached_structure = functools.lru_cache(maxsize=8)(_build_structure)


def _rectangular(body: bytes, shape: list[int]) -> bool:
    """Whether the body's lists form exactly ``shape`` (every list at depth L holds ``shape[L]`` items): its
    brackets and commas in order must be exactly those of a rectangular tensor of that shape, give or take the
    commas between the body's keys (the tensor is its only list, and no name holds a bracket or a comma). One
    ``bytes.translate`` (one pass in C over the body) and one comparison."""
    marks = body.translate(None, _NOT_STRUCTURE).strip(b",")
    length = _structure_length(shape)
    if len(marks) != length:  # first: a short body never makes a long expected pattern
        return False
    key = tuple(shape)
    return marks == (_cached_structure(key) if length <= _CACHED_STRUCTURE_MAX else _build_structure(key))


def _buffer(parts: list[Any], leaf: Any, dtype: np.dtype, shape: list[int]) -> np.ndarray | None:
    floats = type(leaf) is float
    try:
        bufs = [p.as_buffer(of_type="d" if floats else "i") for p in parts]
    except (TypeError, ValueError):  # mixed integers and floats, or a value of another type
        return None
    buf = bufs[0] if len(bufs) == 1 else b"".join(bufs)
    raw = np.frombuffer(buf, dtype=np.float64 if floats else np.int64)
    if raw.size != math.prod(shape):
        return None
    return _cast(raw, dtype, shape)


def _cast(raw: np.ndarray, dtype: np.dtype, shape: list[int]) -> np.ndarray | None:
    """``raw`` as ``dtype``, or ``None`` where the general parser would refuse a value (it says which)."""
    if dtype.kind in "iu":
        if raw.dtype.kind != "i":
            return None  # floats for an integer input
        info = np.iinfo(dtype)
        if raw.size and (int(raw.min()) < info.min or int(raw.max()) > info.max):
            return None
    with np.errstate(over="ignore"):  # a number past float32's range is +-inf, as TF Serving reads it
        out = raw.astype(dtype, copy=False)
    return out.reshape(shape)
