"""Every ``noqa`` comment in the project says which rules it silences and why (``tools/check_noqa.py``)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from tests.scripts import load_script

REPO = Path(__file__).resolve().parents[1]


def _checker() -> ModuleType:
    return load_script("tools/check_noqa.py")


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
