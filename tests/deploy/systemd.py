"""deployment/systemd/deepclf-serve.service read as systemd reads it (for tests/deploy/test_systemd_unit.py and
the arm64 tests that run its ExecStart line)."""

from __future__ import annotations

import shlex
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "deployment" / "systemd" / "deepclf-serve.service"


def unit_sections(path: Path = UNIT) -> dict[str, dict[str, str]]:
    """``{section: {key: value}}`` of a unit file (comments and blank lines skipped; a repeated key: the last)."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None and "=" in line, f"{path.name}: {raw!r}"
        key, value = line.split("=", 1)
        current[key.strip()] = value.strip()
    return sections


def exec_start(path: Path = UNIT) -> list[str]:
    return shlex.split(unit_sections(path)["Service"]["ExecStart"])
