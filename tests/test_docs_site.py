"""The documentation site's docstring rendering (tools/griffe_rest_literals.py): reST literal blocks in docstrings
become fenced Markdown code, everything else is left alone. The site itself is built by `make check`."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.scripts import load_script


@pytest.fixture(scope="module")
def convert() -> Callable[[str], str]:
    pytest.importorskip("griffe")
    return load_script("tools/griffe_rest_literals.py").rest_literals_to_markdown


def test_a_literal_block_is_fenced_and_dedented(convert: Callable[[str], str]) -> None:
    text = "Usage::\n\n    x = f()\n        y = 1\n\nAfter."
    assert convert(text) == "Usage:\n\n```\nx = f()\n    y = 1\n```\n\nAfter."


def test_colons_after_a_space_and_alone_vanish(convert: Callable[[str], str]) -> None:
    assert convert("Example ::\n\n    a\n") == "Example\n\n```\na\n```\n"
    assert convert("Text.\n\n::\n\n    a\n    b") == "Text.\n\n\n```\na\nb\n```"


def test_nested_blocks_keep_their_indentation(convert: Callable[[str], str]) -> None:
    text = "* item::\n\n      code\n\n  more of the item"
    assert convert(text) == "* item:\n\n  ```\n  code\n  ```\n\n  more of the item"


def test_text_without_a_literal_block_is_unchanged(convert: Callable[[str], str]) -> None:
    for text in ("plain text", "a :: b in a sentence", "ends with a colon:", "Usage::\nnot indented"):
        assert convert(text) == text.replace("Usage::", "Usage:")
