"""numpy <-> TF Serving's REST JSON, both directions, following TF Serving's ``json_tensor.cc`` rules.

Requests (``POST /v1/models/<name>[/versions/<v>]:predict``) come in two formats:

* row: ``{"signature_name": "...", "instances": [...]}`` - one entry per batch item; each entry is an object
  keyed by input name, or, when the signature has one input, the bare value (so ``"instances": [[...], [...]]``);
* columnar: ``{"inputs": {"name": value, ...}}``, or ``{"inputs": value}`` for a single input.

String inputs take JSON strings (UTF-8) or ``{"b64": "<base64>"}`` objects; names ending in ``_bytes`` are the
binary convention, and we always send those as b64. Responses mirror the request format: ``"predictions"``
(rows; a single output is not named, several become one object per row) or ``"outputs"`` (columnar; a single
output is the bare value). String outputs whose names end in ``_bytes`` are written as b64 objects, floats as
TF does (``1.0``, ``NaN``, ``Infinity``, ``-Infinity``). Errors are ``{"error": "<message>"}``::

    body = encode_predict_request({"image": batch}, signature_name="serving_default")       # client
    req = decode_predict_request(body, {"image": "float32"})                                # server
    http_body = encode_predict_response({"probabilities": p, "classes": c}, req.format)      # server
    outputs = decode_predict_response(http_body)                                            # client

Everything here is strict about shapes and types and raises ``InvalidInput`` (INVALID_ARGUMENT / 400) with a
message that says what was wrong, echoing the bad value.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import numpy as np
import orjson
from google.protobuf import json_format
from google.protobuf.message import Message

from deepclf.protocol import json_fast, messages
from deepclf.protocol.errors import InvalidInput, ServingError, Unknown, error_for_http
from deepclf.protocol.limits import DEFAULT_MAX_JSON_DEPTH, LimitExceeded, RequestBudget
from deepclf.protocol.rest_types import COLUMNAR as COLUMNAR  # re-exported: rest.ROW, rest.COLUMNAR, rest.RestRequest
from deepclf.protocol.rest_types import ROW as ROW
from deepclf.protocol.rest_types import RestRequest as RestRequest
from deepclf.protocol.tensors import as_array, numpy_dtype_for, tf_type_string
from deepclf.protocol.tf_json import (
    JSON_DTYPES,
    debug_string,
    decimal_texts,
    explain_columns,
    explain_rows,
    parse_json,
)

#: The key of a single input/output that the JSON does not name (a bare list) when no name is known.
UNNAMED = ""
BYTES_SUFFIX = "_bytes"
B64 = "b64"

_STRING = np.dtype(object)
_ORJSON_OPTS = orjson.OPT_SERIALIZE_NUMPY


# --------------------------------------------------------------------------------------------------- parsing


def _loads(body: bytes | str) -> Any:
    return parse_json(body)


def _load_object(body: bytes | str) -> dict[str, Any]:
    doc = _loads(body)
    if not isinstance(doc, dict):
        raise InvalidInput(f"expected a JSON object at the top level, got {_short(doc)}")
    return doc


def _short(value: Any, limit: int = 80) -> str:
    try:
        text = orjson.dumps(value).decode()
    except TypeError:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(B64), str)


def _b64decode(value: dict[str, str]) -> bytes:
    try:
        return base64.b64decode(value[B64], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"unable to base64-decode {_short(value)}") from None


def _json_shape(value: Any, name: str = "", max_depth: int = DEFAULT_MAX_JSON_DEPTH) -> list[int]:
    shape: list[int] = []
    while isinstance(value, list):
        shape.append(len(value))
        if len(shape) > max_depth:
            raise InvalidInput(
                f"input {name!r}: lists nested more than {max_depth} deep; a tensor here has at most {max_depth} "
                "dimensions"
            )
        if not value:
            break
        value = value[0]
    return shape


def _strings_to_array(value: Any, name: str, budget: RequestBudget | None = None) -> np.ndarray:
    """Nested lists of JSON strings / b64 objects -> an ``object`` array of bytes (shape checked like TF)."""
    shape = _json_shape(value, name, _depth(budget))
    if budget is not None:  # the strings are in the body already (bounded by it); the rows are checked first
        budget.admit(name, shape, _STRING, nbytes=0)
    flat: list[bytes] = []

    def fill(v: Any, level: int) -> None:
        if isinstance(v, list):
            if level >= len(shape) or len(v) != shape[level]:
                raise InvalidInput(
                    f"input {name!r}: list of length {len(v)} at depth {level} does not fit shape {shape} "
                    "(nested lists must be rectangular)"
                )
            for x in v:
                fill(x, level + 1)
            return
        if level != len(shape):
            raise InvalidInput(f"input {name!r}: value {_short(v)} at depth {level}, expected depth {len(shape)}")
        if isinstance(v, str):
            flat.append(v.encode("utf-8"))
        elif _is_b64(v):
            flat.append(_b64decode(v))
        else:
            raise InvalidInput(f'input {name!r}: {_short(v)} is not a string or a {{"b64": ...}} object')

    fill(value, 0)
    if budget is not None:
        budget.admit(name, shape, _STRING, nbytes=8 * len(flat) + sum(map(len, flat)), batch_dim=False)
    arr = np.empty(len(flat), dtype=object)
    arr[:] = flat
    return arr.reshape(shape)


def _depth(budget: RequestBudget | None) -> int:
    return budget.limits.max_json_depth if budget is not None else DEFAULT_MAX_JSON_DEPTH


def _numbers_to_array(value: Any, dtype: np.dtype, name: str, budget: RequestBudget | None = None) -> np.ndarray:
    """Nested lists of JSON numbers/bools -> an array of ``dtype``, rejecting what TF Serving rejects."""
    shape = _json_shape(value, name, _depth(budget))
    if budget is not None:
        budget.admit(name, shape, dtype)
    try:
        raw = np.array(value)
    except (ValueError, OverflowError) as exc:
        raise InvalidInput(f"input {name!r}: not a rectangular list of numbers ({exc})") from None
    if raw.dtype.kind not in "biuf":
        raise InvalidInput(
            f"input {name!r}: expected {dtype} values, got {_short(value)} (strings, objects, nulls or ragged lists)"
        )
    if raw.size:
        if dtype.kind == "b" and raw.dtype.kind != "b":
            raise InvalidInput(f"input {name!r}: expected true/false values for bool, got {raw.dtype.name} values")
        if dtype.kind in "iu":
            if raw.dtype.kind not in "iu":
                raise InvalidInput(f"input {name!r}: expected integers for {dtype}, got {raw.dtype.name} values")
            info = np.iinfo(dtype)
            lo, hi = int(raw.min()), int(raw.max())
            if lo < info.min or hi > info.max:
                raise InvalidInput(f"input {name!r}: value {lo if lo < info.min else hi} does not fit {dtype}")
        if dtype.kind in "fc" and raw.dtype.kind == "b":
            raise InvalidInput(f"input {name!r}: expected numbers for {dtype}, got true/false")
    with np.errstate(over="ignore"):  # a double past float's range is +-inf, as TF Serving reads it (GetFloat)
        return raw.astype(dtype, copy=False)


def _value_to_array(value: Any, dtype: np.dtype | None, name: str, budget: RequestBudget | None = None) -> np.ndarray:
    if dtype is None:  # no signature: infer (strings -> bytes, floats -> float32, ints -> int64, bools)
        leaf = value
        while isinstance(leaf, list) and leaf:
            leaf = leaf[0]
        if isinstance(leaf, str) or _is_b64(leaf):
            return _strings_to_array(value, name, budget)
        if budget is not None:  # checked before np.array; counted once, below, with the inferred dtype
            budget.check(name, _json_shape(value, name, _depth(budget)), np.dtype(np.float64))
        try:
            raw = np.array(value)
        except (ValueError, OverflowError) as exc:
            raise InvalidInput(f"input {name!r}: not a rectangular list of numbers ({exc})") from None
        kind = raw.dtype.kind
        if kind == "f" or (kind in "iu" and raw.size == 0):
            dtype = np.dtype(np.float32)
        elif kind in "iu":
            dtype = np.dtype(np.int64)
        elif kind == "b":
            dtype = np.dtype(np.bool_)
        else:
            raise InvalidInput(f"input {name!r}: cannot infer a dtype for {_short(value)}")
    if dtype == _STRING:
        return _strings_to_array(value, name, budget)
    if dtype.kind not in "biuf":
        raise InvalidInput(f"input {name!r} is {dtype}; TF Serving's JSON has no encoding for it")
    return _numbers_to_array(value, dtype, name, budget)


def _dtype_of(spec: Any) -> np.dtype:
    """A signature dtype given as numpy dtype-like, DataType number or name, or a TensorInfo message."""
    if isinstance(spec, Message):  # ours or the official class: either has TensorInfo's fields
        return numpy_dtype_for(cast("messages.TensorInfo", spec).dtype)
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        return numpy_dtype_for(int(spec))
    if isinstance(spec, str) and spec.startswith("DT_"):
        return numpy_dtype_for(spec)
    dt = np.dtype(spec)
    return _STRING if dt.kind in "SUO" else dt


def decode_predict_request(
    body: bytes | str,
    signature_inputs: Mapping[str, Any] | Callable[[str], Mapping[str, Any]] | None = None,
    *,
    budget: RequestBudget | None = None,
) -> RestRequest:
    """Parse a TF Serving REST predict body into named numpy arrays (server side).

    ``signature_inputs`` maps the signature's input names to their dtypes (numpy dtype-likes, DataType numbers
    or names, or ``TensorInfo`` messages): JSON carries no types, so TF Serving takes them from the signature,
    and so do we. Without it, names come from the JSON (a bare value gets ``UNNAMED``) and dtypes are inferred
    (floats -> float32, integers -> int64, strings -> bytes).

    A server only learns which signature is asked for from the body itself, so ``signature_inputs`` may also be
    a callable: it gets the request's ``signature_name`` (``""`` when the body names none) once the JSON is
    parsed, returns that mapping (or raises, e.g. for an unknown signature), and the body is parsed only once::

        req = decode_predict_request(body, lambda name: dtypes_of_signature(name or "serving_default"))

    ``budget`` (``deepclf.protocol.limits``, one per request) bounds what the body may expand to: the number of
    JSON values is counted before parsing, and each tensor's rows and bytes are admitted before its array is made.
    """
    if budget is not None:
        _check_value_count(body, budget)  # first: nothing below allocates for a body over the value limit
    if callable(signature_inputs) and not isinstance(signature_inputs, Mapping):
        signature_inputs = _once(signature_inputs)  # the fast path and the general one ask it once in all
    if signature_inputs is not None and isinstance(body, bytes):
        fast = json_fast.fast_predict_request(body, signature_inputs, budget, _dtype_of)
        if fast is not None:
            return fast
    # The checks and their words follow json_tensor.cc FillPredictRequestFromJson, in its order.
    doc = _loads(body)
    if not isinstance(doc, dict):
        raise InvalidInput(f"JSON Value: {debug_string(doc)} Is not object")
    signature_name = doc.get("signature_name", "")
    if not isinstance(signature_name, str):
        raise InvalidInput(
            f"JSON Value: {debug_string(doc)} not formatted correctly. 'signature_name' key must be a string value."
        )
    if callable(signature_inputs) and not isinstance(signature_inputs, Mapping):
        signature_inputs = signature_inputs(signature_name)
    sig = {k: _dtype_of(v) for k, v in signature_inputs.items()} if signature_inputs is not None else None
    if sig is not None and not sig:
        raise InvalidInput(f"Failed to get input map for signature: {signature_name or 'DEFAULT'}")
    has_instances, has_inputs = "instances" in doc, "inputs" in doc
    if has_instances and has_inputs:
        raise InvalidInput(
            f"JSON Value: {debug_string(doc)} Not formatted correctly expecting only one of 'inputs' or 'instances' "
            "keys to exist "
        )
    if has_instances:
        instances = doc["instances"]
        if not isinstance(instances, list):
            raise InvalidInput(f"JSON Value: {debug_string(doc)} Expecting 'instances' to be an list/array")
        if not instances:
            raise InvalidInput(f"JSON Value: {debug_string(doc)} No values in 'instances' array")
        inputs, n = _tf_worded(_decode_rows, explain_rows, instances, sig, budget)
        return RestRequest(inputs, signature_name, ROW, n)
    if has_inputs:
        columns = _tf_worded(_decode_columns, explain_columns, doc["inputs"], sig, budget)
        return RestRequest(columns, signature_name, COLUMNAR)
    raise InvalidInput("Missing 'inputs' or 'instances' key")


def _tf_worded(decode: Callable[..., Any], explain: Callable[..., Any], value: Any, sig: Any, budget: Any) -> Any:
    """``decode(value, sig, budget)``; what it refuses is refused in TF Serving's words where TF Serving refuses it
    too (``deepclf.protocol.tf_json``), and a dtype TF Serving cannot read from JSON is refused even where the
    decoder could (UNIMPLEMENTED, as TF Serving answers)."""
    if sig is not None and any(dtype not in JSON_DTYPES for dtype in sig.values()):
        err = _explained(explain, value, sig)
        if err is not None:
            raise err
    try:
        return decode(value, sig, budget)
    except LimitExceeded:
        raise
    except InvalidInput as exc:
        err = _explained(explain, value, sig) if sig is not None else None
        if err is None:
            raise
        raise err from exc


def _explained(explain: Callable[..., Any], value: Any, sig: Any) -> Any:
    try:
        return explain(value, sig)
    except RecursionError:  # nested past Python's stack: the decoder's own refusal (a depth limit) stands
        return None


def _once(fn: Callable[[str], Mapping[str, Any]]) -> Callable[[str], Mapping[str, Any]]:
    """``fn``, called at most once per signature name."""
    seen: dict[str, Mapping[str, Any]] = {}

    def once(name: str) -> Mapping[str, Any]:
        if name not in seen:
            seen[name] = fn(name)
        return seen[name]

    return once


def _sole_name(sig: dict[str, np.dtype] | None, what: str) -> str:
    if sig is None:
        return UNNAMED
    if len(sig) > 1:
        raise InvalidInput(
            f"{what} is a plain value/list, but the signature has {len(sig)} inputs {sorted(sig)}: name each input"
        )
    return next(iter(sig))


def _check_value_count(body: bytes | str, budget: RequestBudget) -> None:
    # Parsed JSON costs 8-32 bytes of Python objects per value whatever the target dtype, so the values are
    # counted (one C-speed pass, no allocation; every value after a container's first follows a comma) before
    # anything is built. A body shorter than the limit cannot hold that many commas: no pass at all.
    limit = budget.limits.max_json_values
    if limit is None or len(body) < limit:
        return
    values = (body.encode("utf-8") if isinstance(body, str) else body).count(b",") + 1
    if values > limit:
        lim = budget.limits
        raise LimitExceeded(
            f"the JSON body holds about {values} values; this server accepts at most {limit} per request "
            f"(one per 4 bytes of {lim.bytes_flag}={lim.max_bytes}); send fewer or smaller inputs, or send images as "
            '{"b64": ...} to a *_bytes input'
        )


def _decode_rows(
    instances: Any, sig: dict[str, np.dtype] | None, budget: RequestBudget | None = None
) -> tuple[dict[str, np.ndarray], int]:
    if not isinstance(instances, list):
        raise InvalidInput(f"expected 'instances' to be a list, got {_short(instances)}")
    if not instances:
        raise InvalidInput("no values in the 'instances' list")

    def is_object(v: Any) -> bool:
        return isinstance(v, dict) and not _is_b64(v)

    if not is_object(instances[0]):
        name = _sole_name(sig, "'instances'")
        for i, item in enumerate(instances):
            if is_object(item):
                raise InvalidInput(f"expecting a value/list but got an object at item {i} of 'instances'")
        arr = _value_to_array(instances, sig[name] if sig else None, name, budget)
        return {name: arr}, len(instances)

    names = sorted(sig) if sig is not None else sorted(instances[0])
    for i, item in enumerate(instances):
        if not is_object(item):
            raise InvalidInput(f"expecting an object but got {_short(item)} at item {i} of 'instances'")
        if sorted(item) != names:
            raise InvalidInput(f"item {i} of 'instances' has keys {sorted(item)}; every item must have exactly {names}")
    out = {}
    for name in names:
        try:
            out[name] = _value_to_array([item[name] for item in instances], sig[name] if sig else None, name, budget)
        except LimitExceeded:
            raise
        except InvalidInput as exc:
            raise InvalidInput(f"'instances' (all items must have the same shape per input): {exc}") from None
    return out, len(instances)


def _decode_columns(
    inputs: Any, sig: dict[str, np.dtype] | None, budget: RequestBudget | None = None
) -> dict[str, np.ndarray]:
    if not isinstance(inputs, dict) or _is_b64(inputs):
        name = _sole_name(sig, "'inputs'")
        return {name: _value_to_array(inputs, sig[name] if sig else None, name, budget)}
    if sig is None:
        return {name: _value_to_array(v, None, name, budget) for name, v in inputs.items()}
    missing = sorted(set(sig) - set(inputs))
    if missing:
        raise InvalidInput(f"missing named input(s) {missing} in 'inputs'; the signature takes {sorted(sig)}")
    # Like TF Serving, keys that the signature does not take are ignored.
    return {name: _value_to_array(inputs[name], dtype, name, budget) for name, dtype in sig.items()}


# --------------------------------------------------------------------------------------------------- writing


def _float_token(x: float) -> bytes:
    if math.isnan(x):
        return b"NaN"
    if math.isinf(x):
        return b"Infinity" if x > 0 else b"-Infinity"
    raise AssertionError(x)  # pragma: no cover


def _jsonable(arr: np.ndarray, name: str, *, b64: bool | None = None, output: bool = False) -> Any:
    """What orjson should write for one tensor: an ndarray it serializes natively, or nested lists.

    ``output``: a server's answer, written as TF Serving writes it: only the dtypes it can write (others are
    INVALID_ARGUMENT "Failed to write JSON value for tensor type: ..."), floats in its decimal format
    (``tf_json.decimal_texts``) as one text per item of the first dimension (a row of the row format)."""
    arr = np.asarray(arr)
    kind = arr.dtype.kind
    if output and kind not in "SUO" and arr.dtype.newbyteorder("=") not in JSON_DTYPES:
        raise InvalidInput(f"Failed to write JSON value for tensor type: {tf_type_string(arr.dtype)}")
    if output and kind == "f":
        return _decimal_json(arr)
    if kind in "SUO":
        as_b64 = name.endswith(BYTES_SUFFIX) if b64 is None else b64
        flat = arr.reshape(-1).tolist()
        conv = np.empty(len(flat), dtype=object)
        conv[:] = [_text_or_b64(x, name, as_b64) for x in flat]
        return conv.reshape(arr.shape).tolist()
    if kind == "c":
        raise InvalidInput(f"Failed to write JSON value for tensor type: {tf_type_string(arr.dtype)}")
    if kind == "f":
        if arr.dtype.itemsize < 4:
            arr = arr.astype(np.float32)
        if not np.isfinite(arr).all():
            # orjson would write null; TF Serving writes NaN / Infinity / -Infinity (and reads them back).
            scalar = arr.dtype.type
            conv = np.empty(arr.size, dtype=object)
            conv[:] = [
                orjson.Fragment(str(scalar(x)).encode() if math.isfinite(x) else _float_token(x))
                for x in arr.reshape(-1).tolist()
            ]
            return conv.reshape(arr.shape).tolist()
    elif kind not in "biu":
        raise InvalidInput(f"tensor {name!r} has dtype {arr.dtype}, which has no JSON encoding")
    if arr.dtype.byteorder not in "=|":
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if arr.ndim == 0:
        return arr[()]  # a numpy scalar, which orjson writes like TF (1.0 stays 1.0)
    return np.ascontiguousarray(arr)


def _decimal_json(arr: np.ndarray) -> Any:
    """A float tensor in TF Serving's decimal format: a ``Fragment`` for a scalar, else one per item of the first
    dimension, each the nested JSON text of that item (so the row format can take them one by one)."""
    texts = decimal_texts(arr)
    if arr.ndim == 0:
        return orjson.Fragment(texts[0])
    per = int(np.prod(arr.shape[1:], dtype=np.int64))
    return [orjson.Fragment(_nested(texts[i * per : (i + 1) * per], arr.shape[1:])) for i in range(arr.shape[0])]


def _nested(texts: list[str], shape: tuple[int, ...]) -> str:
    """The JSON text of a tensor of ``shape`` whose values, flattened, are ``texts``."""
    if not shape:
        return texts[0]
    if len(shape) == 1:
        return "[" + ",".join(texts) + "]"
    step = int(np.prod(shape[1:], dtype=np.int64))
    return "[" + ",".join(_nested(texts[j * step : (j + 1) * step], shape[1:]) for j in range(shape[0])) + "]"


def _text_or_b64(x: Any, name: str, as_b64: bool) -> Any:
    if isinstance(x, str):
        return {B64: base64.b64encode(x.encode("utf-8")).decode("ascii")} if as_b64 else x
    if not isinstance(x, (bytes, bytearray, memoryview, np.bytes_)):
        raise InvalidInput(f"tensor {name!r}: a string tensor holds bytes or str, got {type(x).__name__}")
    data = bytes(x)
    if not as_b64:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass  # binary data in a tensor not named *_bytes: b64 is the only lossless JSON form
    return {B64: base64.b64encode(data).decode("ascii")}


def _batch_size(reps: Mapping[str, np.ndarray], what: str) -> int:
    """The row format's batch size: every tensor's first dimension, which must agree. Outputs are refused in
    TF Serving's words (json_tensor.cc ``MakeRowFormatJsonFromTensors``), a client's inputs in ours."""
    n = None
    for name, arr in reps.items():
        if arr.ndim == 0:
            if what == "output":
                raise InvalidInput(f"Tensor name: {name} has no shape information ")
            raise InvalidInput(f"{what} {name!r} is a scalar; the row format needs a batch dimension (use columnar)")
        if n is not None and arr.shape[0] != n:
            if what == "output":
                raise InvalidInput(f"Tensor name: {name} has inconsistent batch size: {arr.shape[0]} expecting: {n}")
            raise InvalidInput(f"{what} {name!r} has batch size {arr.shape[0]}, expected {n} like the others")
        n = arr.shape[0]
    return int(n or 0)


def _rows(reps: dict[str, Any], n: int) -> list[dict[str, Any]]:
    return [{name: rep[i] for name, rep in reps.items()} for i in range(n)]


def encode_predict_request(
    inputs: Mapping[str, Any] | Any,
    *,
    signature_name: str | None = None,
    format: str = ROW,  # the word TF Serving's docs use
) -> bytes:
    """Build a REST predict body (client side).

    ``inputs`` is a mapping of input name -> array-like, or a single array-like (sent unnamed: the server's
    signature must then have exactly one input). ``format`` is ``"row"`` (``instances``; every input needs the
    same batch size) or ``"columnar"`` (``inputs``). Bytes go as ``{"b64": ...}`` for ``*_bytes`` inputs (and
    whenever they are not valid UTF-8), str as JSON strings.
    """
    if format not in (ROW, COLUMNAR):
        raise InvalidInput(f"format must be {ROW!r} or {COLUMNAR!r}, got {format!r}")
    named = isinstance(inputs, Mapping)
    arrays = {k: as_array(v) for k, v in inputs.items()} if named else {UNNAMED: as_array(inputs)}
    if named and not arrays:
        raise InvalidInput("a predict request needs at least one input, got an empty mapping")
    doc: dict[str, Any] = {}
    if signature_name:
        doc["signature_name"] = signature_name
    if format == ROW:
        n = _batch_size(arrays, "input")
        reps = {k: _jsonable(a, k) for k, a in arrays.items()}
        doc["instances"] = _rows(reps, n) if named else reps[UNNAMED]
    else:
        reps = {k: _jsonable(a, k) for k, a in arrays.items()}
        doc["inputs"] = reps if named else reps[UNNAMED]
    return orjson.dumps(doc, option=_ORJSON_OPTS)


def encode_predict_response(outputs: Mapping[str, Any], format: str = ROW) -> bytes:
    """Build the REST predict response body exactly as TF Serving shapes it (server side).

    Row format: ``{"predictions": [...]}``, one entry per batch item, the bare value when there is one output,
    else an object per row (every output needs the same batch size). Columnar: ``{"outputs": value}`` for one
    output, else ``{"outputs": {name: value}}``. Outputs are written in name order.
    """
    if format not in (ROW, COLUMNAR):
        raise InvalidInput(f"format must be {ROW!r} or {COLUMNAR!r}, got {format!r}")
    if not outputs:
        raise InvalidInput("Cannot convert empty tensor map to JSON")
    arrays = {k: as_array(outputs[k]) for k in sorted(outputs)}
    if format == ROW:
        n = _batch_size(arrays, "output")
        reps = {k: _jsonable(a, k, output=True) for k, a in arrays.items()}
        doc = {"predictions": _rows(reps, n) if len(reps) > 1 else next(iter(reps.values()))}
    else:
        reps = {k: _jsonable(a, k, output=True) for k, a in arrays.items()}
        doc = {"outputs": reps if len(reps) > 1 else next(iter(reps.values()))}
    return orjson.dumps(doc, option=_ORJSON_OPTS)


def decode_predict_response(
    body: bytes | str,
    *,
    output_names: Sequence[str] | None = None,
    dtypes: Mapping[str, Any] | None = None,
) -> dict[str, np.ndarray]:
    """Parse a REST predict response into named numpy arrays (client side).

    A single output arrives unnamed; it is keyed by ``output_names[0]`` when exactly one name is given, else by
    ``UNNAMED``. ``dtypes`` (name -> dtype) fixes the dtypes JSON cannot carry; otherwise floats become
    float32 (what the models output), integers int64, strings ``object`` arrays of bytes (b64 decoded).
    An ``{"error": ...}`` body raises the matching ``ServingError`` (``Unknown`` without a status; use
    ``decode_error`` when you have the HTTP status).
    """
    doc = _load_object(body)
    if "error" in doc:
        raise Unknown(str(doc["error"]))
    types = {k: _dtype_of(v) for k, v in (dtypes or {}).items()}
    single = output_names[0] if output_names is not None and len(output_names) == 1 else UNNAMED

    def convert(value: Any, name: str) -> np.ndarray:
        return _value_to_array(value, types.get(name), name)

    if "predictions" in doc:
        preds = doc["predictions"]
        if not isinstance(preds, list):
            raise InvalidInput(f"expected 'predictions' to be a list, got {_short(preds)}")
        if preds and isinstance(preds[0], dict) and not _is_b64(preds[0]):
            names = sorted(preds[0])
            for i, row in enumerate(preds):
                if not isinstance(row, dict) or sorted(row) != names:
                    raise InvalidInput(f"prediction {i} is {_short(row)}; expected an object with keys {names}")
            return {name: convert([row[name] for row in preds], name) for name in names}
        return {single: convert(preds, single)}
    if "outputs" in doc:
        outs = doc["outputs"]
        if isinstance(outs, dict) and not _is_b64(outs):
            return {name: convert(v, name) for name, v in outs.items()}
        return {single: convert(outs, single)}
    raise InvalidInput(f"expected 'predictions' or 'outputs' in the response, got keys {sorted(doc)}")


# ------------------------------------------------------------------------------------------------ errors


def encode_error(error: BaseException | str) -> bytes:
    """TF Serving's REST error body: ``{"error": "<message>"}``."""
    message = error.message if isinstance(error, ServingError) else str(error)
    return orjson.dumps({"error": message})


def decode_error(status: int, body: bytes | str) -> ServingError:
    """The ``ServingError`` for a non-2xx REST answer (TF Serving's ``{"error": ...}``, or any text)."""
    text = body.decode("utf-8", "replace") if isinstance(body, (bytes, bytearray)) else str(body)
    message = text.strip()
    try:
        doc = orjson.loads(text) if text.strip() else None
        if isinstance(doc, dict) and isinstance(doc.get("error"), str):
            message = doc["error"]
    except orjson.JSONDecodeError:
        pass  # a proxy's HTML or plain text: keep it, shortened
    if len(message) > 2000:
        message = message[:2000] + "..."
    return error_for_http(status, message)


# ------------------------------------------------------------------------------- model status and metadata


def _to_dict(msg: Message, *, preserve_names: bool) -> dict[str, Any]:
    return json_format.MessageToDict(
        msg,
        preserving_proto_field_name=preserve_names,
        always_print_fields_with_no_presence=True,
        descriptor_pool=messages.POOL,
    )


def model_status_to_json(response: messages.GetModelStatusResponse) -> bytes:
    """A ``GetModelStatusResponse`` as TF Serving's ``GET /v1/models/<name>`` body (proto3 JSON).

    TF Serving always fills each version's ``status`` (``{"error_code": "OK", "error_message": ""}`` when
    fine); so do we, on a copy, when the caller left it unset.
    """
    if any(not s.HasField("status") for s in response.model_version_status):
        filled = type(response)()
        filled.CopyFrom(response)
        for s in filled.model_version_status:
            s.status.SetInParent()
        response = filled
    return orjson.dumps(_to_dict(response, preserve_names=False), option=orjson.OPT_INDENT_2)


def model_status_from_json(body: bytes | str) -> messages.GetModelStatusResponse:
    """Parse a ``GET /v1/models/<name>`` body into our ``GetModelStatusResponse``."""
    doc = _load_object(body)
    try:
        return json_format.ParseDict(
            doc, messages.GetModelStatusResponse(), ignore_unknown_fields=True, descriptor_pool=messages.POOL
        )
    except json_format.ParseError as exc:
        raise InvalidInput(f"not a model status response: {exc}") from None


def model_metadata_to_json(response: messages.GetModelMetadataResponse) -> bytes:
    """A ``GetModelMetadataResponse`` as TF Serving's ``GET /v1/models/<name>/metadata`` body.

    TF Serving writes ``{"model_spec": {...}, "metadata": {"signature_def": <SignatureDefMap>}}``: the packed
    ``Any`` is unpacked and written with proto field names, every field printed.
    """
    doc = {
        "model_spec": _to_dict(response.model_spec, preserve_names=True),
        "metadata": {
            messages.SIGNATURE_DEF_FIELD: _to_dict(messages.unpack_signature_defs(response), preserve_names=True)
        },
    }
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2)


def model_metadata_from_json(body: bytes | str) -> messages.GetModelMetadataResponse:
    """Parse a ``GET /v1/models/<name>/metadata`` body into our ``GetModelMetadataResponse``."""
    doc = _load_object(body)
    try:
        spec = json_format.ParseDict(
            doc.get("model_spec", {}), messages.ModelSpec(), ignore_unknown_fields=True, descriptor_pool=messages.POOL
        )
        sig_doc = (doc.get("metadata") or {}).get(messages.SIGNATURE_DEF_FIELD)
        if sig_doc is None:
            raise InvalidInput(f"no metadata.signature_def in the metadata response; keys: {sorted(doc)}")
        sigs = json_format.ParseDict(
            sig_doc, messages.SignatureDefMap(), ignore_unknown_fields=True, descriptor_pool=messages.POOL
        )
    except (json_format.ParseError, AttributeError) as exc:
        raise InvalidInput(f"not a model metadata response: {exc}") from None
    response = messages.GetModelMetadataResponse(model_spec=spec)
    return messages.pack_signature_defs(response, sigs)
