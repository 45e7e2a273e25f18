"""Block-style YAML text from plain Python data, with comments, and no YAML library.

The generators write Kubernetes manifests that people read, so each document keeps its "why" comments next to
the fields. Strings are always JSON-quoted (YAML reads a JSON string as a double-quoted scalar), so a name, flag
or path can never turn into a number, a boolean or a broken document; keys stay plain when that is unambiguous::

    dump({
        "apiVersion": "v1",
        "kind": "Service",
        Comment("headless: one DNS record per ready pod"): None,
        "spec": {"clusterIP": "None", "ports": [{"name": "grpc", "port": 8500}]},
        "script": Literal("set -eu\\nexec \\"$@\\"\\n"),
    })
    # apiVersion: "v1"
    # kind: "Service"
    # # headless: one DNS record per ready pod
    # spec:
    #   clusterIP: "None"
    #   ports:
    #     - name: "grpc"
    #       port: 8500
    # script: |
    #   set -eu
    #   exec "$@"

Same input, same bytes: dicts keep their insertion order.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: Keys written without quotes: label keys, field names. Anything else (and YAML 1.1's booleans) is quoted.
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]*$")
_YAML11_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"}


@dataclass(frozen=True)
class Comment:
    """A comment line (or lines) emitted where this key sits in a mapping; its value is ignored."""

    text: str


@dataclass(frozen=True)
class Literal:
    """A multi-line string written as a ``|`` block scalar (scripts, config files), kept byte for byte."""

    text: str


def quote(value: object) -> str:
    """A scalar as YAML text: strings JSON-quoted, ints and booleans plain, None as null."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if value is None:
        return "null"
    if isinstance(value, str):
        return json.dumps(value)
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as a YAML scalar; use str, int, bool or None")


def _key(key: str) -> str:
    if not isinstance(key, str):
        raise TypeError(f"mapping keys must be strings, got {key!r}")
    return key if _PLAIN_KEY.match(key) and key.lower() not in _YAML11_WORDS else json.dumps(key)


def _comment_lines(comment: Comment, pad: str) -> list[str]:
    return [f"{pad}# {line}".rstrip() for line in comment.text.split("\n")]


def _literal(text: str, pad: str) -> tuple[str, list[str]]:
    """The block header (``|``, ``|-`` or ``|+``) and the indented lines of ``text``."""
    if text[:1] in (" ", "\n"):
        raise ValueError(f"a literal block cannot start with a space or an empty line: {text[:20]!r}")
    body = text.rstrip("\n")
    trailing = len(text) - len(body)
    header = "|-" if trailing == 0 else "|" if trailing == 1 else "|+"
    lines = [pad + line if line else "" for line in body.split("\n")]
    lines += [""] * max(0, trailing - 1)
    return header, lines


def _mapping(data: Mapping[object, object], indent: int) -> list[str]:
    pad = " " * indent
    out: list[str] = []
    for key, value in data.items():
        if isinstance(key, Comment):
            out += _comment_lines(key, pad)
            continue
        k = _key(key)  # type: ignore[arg-type]
        if isinstance(value, Literal):
            header, lines = _literal(value.text, pad + "  ")
            out += [f"{pad}{k}: {header}", *lines]
        elif isinstance(value, Mapping):
            out += [f"{pad}{k}:", *_mapping(value, indent + 2)] if value else [f"{pad}{k}: {{}}"]
        elif isinstance(value, Sequence) and not isinstance(value, str):
            out += [f"{pad}{k}:", *_sequence(value, indent + 2)] if value else [f"{pad}{k}: []"]
        else:
            out.append(f"{pad}{k}: {quote(value)}")
    return out


def _sequence(items: Sequence[object], indent: int) -> list[str]:
    pad = " " * indent
    out: list[str] = []
    for item in items:
        if isinstance(item, Mapping):
            if not item:
                out.append(f"{pad}- {{}}")
                continue
            lines = _mapping(item, indent + 2)
            # Comments before the first field stay above the dash; the first field goes on the dash's line.
            first = next(i for i, line in enumerate(lines) if not line.lstrip().startswith("#"))
            out += [pad + line.lstrip() for line in lines[:first]]
            out.append(f"{pad}- {lines[first][indent + 2 :]}")
            out += lines[first + 1 :]
        elif isinstance(item, Literal):
            header, lines = _literal(item.text, pad + "  ")
            out += [f"{pad}- {header}", *lines]
        elif isinstance(item, Sequence) and not isinstance(item, str):
            raise TypeError("nested sequences are not used in manifests; wrap the inner list in a mapping")
        elif isinstance(item, Comment):
            out += _comment_lines(item, pad)
        else:
            out.append(f"{pad}- {quote(item)}")
    return out


def dump(data: Mapping[Any, object], indent: int = 0) -> str:
    """``data`` (a mapping) as block-style YAML text ending in a newline, every line indented by ``indent``.

    Keys are strings, or ``Comment`` objects (comment lines before the next key).
    """
    return "\n".join(_mapping(data, indent)) + "\n"


def document(header: str, data: Mapping[Any, object]) -> str:
    """One YAML file: ``header`` comment lines (``# ...``), then ``data``."""
    lines = "".join(f"# {line}".rstrip() + "\n" for line in header.rstrip("\n").split("\n")) if header else ""
    return lines + dump(data)
