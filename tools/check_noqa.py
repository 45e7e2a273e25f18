"""Every ``# noqa`` in the project's Python names its rules and says why: ``# noqa: BLE001 - <reason>``.

Run by ``make check`` (exit 1 listing offenders); ``tests/test_noqa.py`` runs it too::

    python tools/check_noqa.py            # src/ tests/ benchmarks/ deployment/ docs/ tools/ of the repository
    python tools/check_noqa.py PATH ...   # other files or folders

A bare ``# noqa``, one without rule codes, or one without `` - reason`` after the codes is an offence. Unused
suppressions are ruff's job (RUF100); this checks only that the used ones are explained.
"""

from __future__ import annotations

import io
import re
import sys
import tokenize
from collections.abc import Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIRS = ("src", "tests", "benchmarks", "deployment", "docs", "tools")

_NOQA = re.compile(r"#\s*noqa\b", re.IGNORECASE)
#: The directive, a colon, comma-separated rule codes, then " - " and a reason (some non-blank text).
_WITH_REASON = re.compile(r"#\s*noqa:\s*[A-Z]+[0-9]+(\s*,\s*[A-Z]+[0-9]+)*\s+-\s+\S", re.IGNORECASE)


def python_files(paths: Iterable[Path]) -> Iterator[Path]:
    """The ``.py`` and ``.pyi`` files under ``paths`` (files given directly are taken as they are), sorted."""
    for path in paths:
        if path.is_file():
            yield path
        elif path.is_dir():
            yield from sorted(p for p in path.rglob("*.py*") if p.suffix in (".py", ".pyi") and p.is_file())


def offences(path: Path) -> list[tuple[int, str]]:
    """(line, comment) of each ``noqa`` comment in ``path`` without codes and a reason. Only real comments count
    (``tokenize``), so a string that mentions noqa, like this module's own docstring, is not one."""
    text = path.read_text(encoding="utf-8")
    found = []
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.COMMENT and _NOQA.search(tok.string) and not _WITH_REASON.search(tok.string):
            found.append((tok.start[0], tok.string))
    return found


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    paths = [Path(a) for a in args] if args else [ROOT / d for d in DEFAULT_DIRS]
    bad = []
    count = 0
    for path in python_files(paths):
        count += 1
        for line, comment in offences(path):
            shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
            bad.append(f"{shown}:{line}: {comment.strip()}")
    if bad:
        print(
            "noqa without rule codes and a reason (write `# noqa: CODE - why`):\n" + "\n".join(bad),
            file=sys.stderr,
        )
        return 1
    print(f"noqa reasons: ok ({count} files)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
