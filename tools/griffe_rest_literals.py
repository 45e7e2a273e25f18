"""A Griffe extension for the documentation site: reST literal blocks in docstrings become Markdown code blocks.

The project's docstrings are prose with reST's ``::`` literal blocks (``Usage::`` then an indented block), which
Markdown would show as a stray ``::`` and a paragraph. mkdocstrings loads this file (``mkdocs.yml``, the python
handler's ``extensions``) and rewrites each docstring before it is rendered::

    Usage::                     Usage:

        x = f()        ->       ```
                                x = f()
                                ```

``text::`` becomes ``text:``, ``text ::`` and a lone ``::`` disappear, and the indented block that follows is
fenced, dedented. Docstrings without ``::`` are left as they are.
"""

from __future__ import annotations

import re
import textwrap
from typing import Any

import griffe

_LIST_ITEM = re.compile(r"\s*(?:[-*+]|\d+\.)\s+")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _content_indent(line: str) -> int:
    """Where a line's text starts: after its indentation, and after a list marker (``* ``, ``1. ``) if any."""
    item = _LIST_ITEM.match(line)
    return item.end() if item else _indent(line)


def rest_literals_to_markdown(text: str) -> str:
    """``text`` with every reST literal block (a paragraph ending in ``::``, then an indented block) fenced."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.rstrip()
        if not stripped.endswith("::"):
            out.append(line)
            i += 1
            continue
        head = stripped[:-2]
        if head.strip() == "":
            pass  # a lone "::": nothing shown
        elif head.endswith(" "):
            out.append(head.rstrip())  # "text ::": the colons vanish
        else:
            out.append(head + ":")  # "text::": one colon shown
        base = _content_indent(line)  # the block is indented past the paragraph's text
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        block_end = j
        while block_end < len(lines) and (not lines[block_end].strip() or _indent(lines[block_end]) > base):
            block_end += 1
        while block_end > j and not lines[block_end - 1].strip():
            block_end -= 1
        if block_end == j:  # no indented block follows: nothing to fence
            i += 1
            continue
        code = textwrap.dedent("\n".join(lines[j:block_end]))
        pad = " " * base
        out += ["", pad + "```", *[(pad + c) if c else "" for c in code.split("\n")], pad + "```"]
        i = block_end
    return "\n".join(out)


class RestLiterals(griffe.Extension):
    """Rewrites every docstring's reST literal blocks as fenced Markdown code blocks."""

    def on_instance(self, *, node: Any, obj: griffe.Object, agent: Any, **kwargs: Any) -> None:
        if obj.docstring is not None and "::" in obj.docstring.value:
            obj.docstring.value = rest_literals_to_markdown(obj.docstring.value)
