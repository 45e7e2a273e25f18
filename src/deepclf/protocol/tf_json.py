"""TF Serving's JSON dialect (its ``util/json_tensor.cc``, spec §5.3, §5.5, §5.8): how it reads a body, the words
it refuses one in, and how it writes floats.

Reading: ``parse_json`` takes what rapidjson takes (NaN / Infinity tokens, anything after the first value
ignored) and words syntax errors as rapidjson does. The tensor decoder in ``deepclf.protocol.rest`` is vectorised:
when it fails it knows *that* the body is wrong but not which element TF Serving would have named. TF Serving
converts a row request element by element (each item of ``instances`` becomes a tensor of its own, compared with
the first one), so its messages name the item and the first offending value. ``explain_rows`` /
``explain_columns`` walk an already parsed body the same way, without building any array, and return the error
TF Serving answers, or ``None`` when it would have accepted the body (the decoder's own, deepclf-specific error
then stands: a value out of a dtype's range, a request limit)::

    err = explain_rows([[1, 2], ["a", "b"]], {"x": np.dtype(np.int32)})
    err.message   # "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: JSON Value:
                  #  \"a\" Type: String is not of expected type: int32"

Writing: ``decimal_texts`` formats floats as TF Serving's ``WriteDecimal`` does: ``%g`` (six significant digits)
when that reads back to the same float, else ``%.9g`` (float) / ``%.17g`` (double); ``.0`` appended to whole
numbers; ``NaN``, ``Infinity``, ``-Infinity`` as bare tokens::

    decimal_texts(np.array([9e6, 999999, 0.5, 1 / 3], np.float32))   # ['9e+06', '999999.0', '0.5', '0.333333343']
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson

from deepclf.protocol.errors import InvalidInput, ServingError, Unimplemented
from deepclf.protocol.tensors import tf_type_string

#: The dtypes TF Serving converts JSON values to (json_tensor.cc ``AddValueToTensor``); others are UNIMPLEMENTED.
JSON_DTYPES = frozenset(
    np.dtype(d)
    for d in (np.float32, np.float64, np.int32, np.int16, np.int8, np.uint8, np.int64, np.bool_, np.uint32, np.uint64)
) | {np.dtype(object)}

#: TF Serving quotes at most this many bytes of a JSON value in an error (``kMaxJsonDebugStringBytes``).
DEBUG_BYTES = 256

_INT_RANGES: dict[str, tuple[int, int]] = {
    "int32": (-(2**31), 2**31 - 1),  # rapidjson IsInt(): also what int16, int8 and uint8 ask for
    "int64": (-(2**63), 2**63 - 1),
    "uint32": (0, 2**32 - 1),
    "uint64": (0, 2**64 - 1),
}
_INT_CHECK = {"int32": "int32", "int16": "int32", "int8": "int32", "uint8": "int32"}


def decimal_texts(arr: np.ndarray) -> list[str]:
    """Each value of a float32 / float64 array (flattened) as TF Serving writes it (module docstring)."""
    flat = np.ascontiguousarray(arr).reshape(-1)
    values = flat.tolist()
    texts = [f"{v:g}" for v in values]
    with np.errstate(invalid="ignore", over="ignore"):
        back = np.array(texts, dtype=flat.dtype)  # "nan" / "inf" read back too; they are replaced below
    full = ".9g" if flat.dtype == np.float32 else ".17g"
    for i in np.flatnonzero(back != flat).tolist():  # does not read back exactly (or NaN): full precision
        texts[i] = format(values[i], full)
    for i, (t, v) in enumerate(zip(texts, values, strict=True)):
        if "." in t or "e" in t:
            continue
        if v != v:
            texts[i] = "NaN"
        elif v in (np.inf, -np.inf):
            texts[i] = "Infinity" if v > 0 else "-Infinity"
        else:
            texts[i] = t + ".0"
    return texts


def debug_string(value: Any) -> str:
    """A JSON value as TF Serving prints it in an error: compact JSON, cut after ``DEBUG_BYTES`` bytes."""
    try:
        text = orjson.dumps(value).decode("utf-8")
    except TypeError:  # NaN / Infinity (orjson has no token for them), or nested past orjson's limit
        try:
            text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        except (RecursionError, ValueError):
            text = repr(value)[:DEBUG_BYTES]
    data = text.encode("utf-8", "replace")  # a lone \ud800 (valid JSON escape) becomes "?": errors must encode
    return data[:DEBUG_BYTES].decode("utf-8", "ignore")


def json_type(value: Any) -> str:
    """rapidjson's name for a value's JSON type (``JsonTypeString``)."""
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def parse_error_words(exc: json.JSONDecodeError) -> str:
    """rapidjson's words (``GetParseError_En``) for a syntax error Python's ``json`` reports as ``exc``."""
    msg = exc.msg
    if msg == "Expecting value":
        return "The document is empty." if not exc.doc.strip() else "Invalid value."
    if msg == "Expecting ',' delimiter":
        return (
            "Missing a comma or '}' after an object member."
            if _container_at(exc.doc, exc.pos) == "{"
            else "Missing a comma or ']' after an array element."
        )
    if msg.startswith("Expecting property name"):
        return "Missing a name for object member."
    if msg == "Expecting ':' delimiter":
        return "Missing a colon after a name of object member."
    if msg.startswith("Unterminated string"):
        return "Missing a closing quotation mark in string."
    if msg.startswith("Invalid \\uXXXX"):
        return "Incorrect hex digit after \\u escape in string."
    if msg.startswith("Invalid \\escape"):
        return "Invalid escape character in string."
    if msg.startswith("Invalid control character"):
        return "Invalid encoding in string."
    return "Unspecific syntax error."


def parse_json(body: bytes | str) -> Any:
    """The JSON value of a request body, as TF Serving's parser (rapidjson) reads it: NaN / Infinity tokens allowed, anything after
    the first value ignored (rapidjson's ``kParseStopWhenDoneFlag``); errors in rapidjson's words and offsets."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    if not body:
        raise InvalidInput("JSON Parse error: The document is empty")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        first = exc
        if "surrogate" in exc.msg:  # Python's parser would take a lone surrogate; rapidjson refuses it
            raise InvalidInput(
                f"JSON Parse error: The surrogate pair in string is invalid. at offset: {exc.pos}"
            ) from None
    # orjson rejects NaN / Infinity and trailing data, which TF Serving takes; the stdlib parser takes them.
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"JSON Parse error: Invalid encoding in string. at offset: {exc.start}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        if not isinstance(exc, json.JSONDecodeError):  # an integer of thousands of digits
            digits = re.search(r"\d{4000,}", text)
            offset = len(text[: digits.start()].encode("utf-8")) if digits else 0
            raise InvalidInput(
                f"JSON Parse error: Number too big to be stored in double. at offset: {offset}"
            ) from None
        if exc.msg == "Extra data":
            start = len(text) - len(text.lstrip())
            return json.JSONDecoder().raw_decode(text, start)[0]
        offset = len(text[: exc.pos].encode("utf-8"))
        raise InvalidInput(f"JSON Parse error: {parse_error_words(exc)} at offset: {offset}") from None
    except RecursionError:  # the stdlib parser recurses per nesting level
        raise InvalidInput(f"JSON Parse error: the document is nested too deeply ({first})") from None


def _container_at(text: str, pos: int, limit: int = 1 << 20) -> str:
    """The innermost ``[`` or ``{`` open at ``pos`` (``[`` when the body is too long to scan)."""
    if pos > limit:
        return "["
    stack: list[str] = []
    in_string = escaped = False
    for ch in text[:pos]:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            stack.append(ch)
        elif ch in "]}" and stack:
            stack.pop()
    return stack[-1] if stack else "["


# ------------------------------------------------------------------------------------------------ tensors


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _dense_shape(value: Any) -> list[int]:
    """The shape TF Serving reads off a value: each level's length, following the first element down."""
    shape: list[int] = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def _shape_text(shape: list[int]) -> str:
    return "[" + ",".join(map(str, shape)) + "]"


def _type_error(value: Any, dtype: np.dtype) -> InvalidInput:
    return InvalidInput(
        f"JSON Value: {debug_string(value)} Type: {json_type(value)} is not of expected type: {tf_type_string(dtype)}"
    )


def _check_value(value: Any, dtype: np.dtype) -> ServingError | None:
    """One leaf against the dtype, as ``AddValueToTensor`` checks it."""
    if dtype == np.dtype(object):
        if _is_b64(value):
            try:
                base64.b64decode(value["b64"], validate=True)
            except (binascii.Error, ValueError):
                return InvalidInput("Unable to base64 decode")
            return None
        if isinstance(value, dict):
            return InvalidInput(f"JSON Value: {debug_string(value)} not formatted correctly for base64 data")
        return None if isinstance(value, str) else _type_error(value, dtype)
    if isinstance(value, dict):
        return _type_error(value, dtype)
    if dtype not in JSON_DTYPES:
        return Unimplemented(f"Conversion of JSON Value: {debug_string(value)} to type: {tf_type_string(dtype)}")
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if dtype.kind == "f":
        return None if is_number else _type_error(value, dtype)
    if dtype.kind == "b":
        return None if isinstance(value, bool) else _type_error(value, dtype)
    lo, hi = _INT_RANGES[_INT_CHECK.get(dtype.name, dtype.name)]
    if not (is_number and isinstance(value, int) and lo <= value <= hi):
        return _type_error(value, dtype)
    return None


def _fill(value: Any, level: int, shape: list[int], dtype: np.dtype) -> tuple[ServingError | None, int]:
    """``FillTensorProto``: every leaf at the tensor's rank, every list of the size the shape says; the error and
    the number of values seen."""
    rank = len(shape)
    if not isinstance(value, list):
        if level != rank:
            return InvalidInput(
                f"JSON Value: {debug_string(value)} found at incorrect level: {level + 1} in the JSON DOM. "
                f"Expected at level: {rank}"
            ), 0
        return _check_value(value, dtype), 1
    if level >= rank:
        return InvalidInput(f"Encountered list at unexpected level: {level} expected < {rank}"), 0
    if len(value) != shape[level]:
        return InvalidInput(
            f"Encountered list at unexpected size: {len(value)} at level: {level} expected size: {shape[level]}"
        ), 0
    count = 0
    for item in value:
        err, n = _fill(item, level + 1, shape, dtype)
        if err is not None:
            return err, 0
        count += n
    return None, count


def _status(err: ServingError) -> str:
    """An error as absl's ``Status::ToString`` writes it inside another message: ``INVALID_ARGUMENT: ...``."""
    return f"{err.code.name}: {err.message}"


def explain_rows(instances: list[Any], sig: Mapping[str, np.dtype]) -> ServingError | None:
    """The error TF Serving answers for a non-empty ``instances`` list, or ``None`` if it would convert it
    (json_tensor.cc ``FillTensorMapFromInstancesList``)."""
    names = sorted(sig)
    if not isinstance(instances[0], dict) and len(sig) > 1:
        return InvalidInput(
            "instances is a plain list, but expecting list of objects as multiple input tensors required as per "
            "tensorinfo_map"
        )

    def is_object(v: Any) -> bool:
        return isinstance(v, dict) and not _is_b64(v)

    objects = is_object(instances[0])
    sizes: dict[str, int] = {}
    shapes: dict[str, list[int]] = {}

    def add(value: Any, name: str) -> ServingError | None:
        if name not in sig:
            return InvalidInput(f"JSON object: does not have named input: {name}")
        shape = _dense_shape(value)
        err, count = _fill(value, 0, shape, sig[name])
        if err is not None:
            return err
        if name not in sizes:
            sizes[name], shapes[name] = count, shape
        elif sizes[name] != count:
            return InvalidInput(f"Expecting tensor size: {sizes[name]} but got: {count}")
        elif shapes[name] != shape:
            return InvalidInput(f"Expecting shape {_shape_text(shapes[name])} but got: {_shape_text(shape)}")
        return None

    for i, item in enumerate(instances):
        if objects:
            if not is_object(item):
                return InvalidInput(f"Expecting object but got list at item {i} of input list")
            for name, value in item.items():
                err = add(value, name)
                if err is not None:
                    return InvalidInput(
                        f"Failed to process element: {i} key: {name} of 'instances' list. Error: {_status(err)}"
                    )
            if set(item) != set(sig):
                return InvalidInput(
                    f"Failed to process element: {i} of 'instances' list. JSON object: {debug_string(item)} "
                    f"keys must be equal to: {','.join(names)}"
                )
        else:
            if is_object(item):
                return InvalidInput(f"Expecting value/list but got object at item {i} of input list")
            err = add(item, names[0])
            if err is not None:
                return InvalidInput(f"Failed to process element: {i} of 'instances' list. Error: {_status(err)}")
    return None


def explain_columns(inputs: Any, sig: Mapping[str, np.dtype]) -> ServingError | None:
    """The error TF Serving answers for an ``inputs`` value, or ``None`` if it would convert it
    (json_tensor.cc ``FillTensorMapFromInputsMap``)."""
    names = sorted(sig)
    if not isinstance(inputs, dict) or _is_b64(inputs):
        if len(sig) > 1:
            return InvalidInput(
                "inputs is a plain value/list, but expecting an object as multiple input tensors required as per "
                "tensorinfo_map"
            )
        return _fill(inputs, 0, _dense_shape(inputs), sig[names[0]])[0]
    for name in names:
        if name not in inputs:
            return InvalidInput(f"Missing named input: {name} in 'inputs' object.")
        err = _fill(inputs[name], 0, _dense_shape(inputs[name]), sig[name])[0]
        if err is not None:
            return err
    return None
