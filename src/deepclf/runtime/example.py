"""A minimal, dependency-free reader of serialized ``tf.Example`` protos (the wire format, no TensorFlow and no
generated classes), for the runners' ``classify_image_bytes`` signature::

    features = parse_example(serialized)          # {"image/encoded": [b"\\xff\\xd8..."], "x": [2.0], ...}

Only what Example carries: ``Features.feature`` (a map of name -> ``Feature``), each a ``bytes_list``,
``float_list`` or ``int64_list``. Later occurrences of a feature replace earlier ones (protobuf merge semantics,
so an Example concatenated after its context overrides the context's features, as TF Serving sends them).
"""

from __future__ import annotations

import struct
from typing import Any

__all__ = ["ExampleParseError", "parse_example"]


class ExampleParseError(ValueError):
    """The bytes are not a serialized tf.Example."""


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ExampleParseError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> list[tuple[int, int, Any]]:
    """(field number, wire type, value) of one message: ints for varints/fixed, bytes for length-delimited."""
    out: list[tuple[int, int, Any]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if field == 0:
            raise ExampleParseError("field number 0")
        if wire == 0:
            value: Any
            value, pos = _varint(buf, pos)
        elif wire == 1:
            if pos + 8 > len(buf):
                raise ExampleParseError("truncated fixed64")
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            if pos + n > len(buf):
                raise ExampleParseError("truncated length-delimited field")
            value, pos = buf[pos : pos + n], pos + n
        elif wire == 5:
            if pos + 4 > len(buf):
                raise ExampleParseError("truncated fixed32")
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise ExampleParseError(f"unsupported wire type {wire}")
        out.append((field, wire, value))
    return out


def _feature(buf: bytes) -> list[Any]:
    values: list[Any] = []
    for field, wire, value in _fields(buf):
        if wire != 2:
            raise ExampleParseError("Feature kind is not a message")
        if field == 1:  # bytes_list
            values = [v for f, w, v in _fields(value) if f == 1 and w == 2]
        elif field == 2:  # float_list (packed or not)
            values = []
            for f, w, v in _fields(value):
                if f == 1 and w == 2:
                    values.extend(struct.unpack(f"<{len(v) // 4}f", v[: len(v) // 4 * 4]))
                elif f == 1 and w == 5:
                    values.append(struct.unpack("<f", v)[0])
        elif field == 3:  # int64_list (packed or not)
            values = []
            for f, w, v in _fields(value):
                if f == 1 and w == 2:
                    pos = 0
                    while pos < len(v):
                        n, pos = _varint(v, pos)
                        values.append(n - (1 << 64) if n >= 1 << 63 else n)
                elif f == 1 and w == 0:
                    values.append(v - (1 << 64) if v >= 1 << 63 else v)
    return values


def parse_example(serialized: bytes) -> dict[str, list[Any]]:
    """``{feature name: values}`` of a serialized tf.Example; ``ExampleParseError`` when it is not one."""
    if not isinstance(serialized, (bytes, bytearray, memoryview)):
        raise ExampleParseError(f"expected bytes, got {type(serialized).__name__}")
    buf = bytes(serialized)
    out: dict[str, list[Any]] = {}
    for field, wire, features in _fields(buf):
        if field != 1 or wire != 2:
            continue
        for f_field, f_wire, entry in _fields(features):
            if f_field != 1 or f_wire != 2:
                continue
            name, value = "", b""
            for e_field, e_wire, v in _fields(entry):
                if e_field == 1 and e_wire == 2:
                    name = v.decode("utf-8", "replace")
                elif e_field == 2 and e_wire == 2:
                    value = v
            out[name] = _feature(value)
    return out
