"""Every ``noqa`` comment in the project says which rules it silences and why (``tools/check_noqa.py``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]


def _checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_noqa", REPO / "tools" / "check_noqa.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_noqa_has_codes_and_a_reason(capsys) -> None:
    assert _checker().main([]) == 0, capsys.readouterr().err


def test_the_checker_finds_unexplained_noqa(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text(
        "a = 1  # noqa\n"
        "b = 2  # noqa: E501\n"
        "c = 3  # noqa: E501 - a URL\n"
        "d = 4  # noqa: BLE001, S110 - best effort\n"
        "e = '# noqa'  # a string, not a comment\n"
    )
    assert _checker().offences(src) == [(1, "# noqa"), (2, "# noqa: E501")]
