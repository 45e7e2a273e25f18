"""Model version folders: the ``<base>/<version>/`` layout TF Serving reads, with one set of rules, TF-free.

``deepclf convert`` publishes ``models/flowers/3/``; the edge server, ``load_runner``, ``LocalClient``, the
deployment scan and ``convert`` itself all find versions through this module, so they agree on what a version
folder is::

    parse_version("3")                  # 3
    parse_version("007")                # 7 (TF Serving reads leading zeros too)
    parse_version("²")                  # None: a Unicode digit, not ASCII (str.isdigit() says True, int() fails)
    list_versions("models/flowers")     # [(1, PosixPath('models/flowers/1')), (3, PosixPath('models/flowers/3'))]
    latest_version("models/flowers")    # (3, PosixPath('models/flowers/3')), or None when there is none
    require_latest_version("models/x")  # the same, or NoVersionError saying what was found and what is expected
    next_version("models/flowers")      # 4 (1 for a new model)
    version_of_path("models/flowers/3/model_int8.tflite")   # 3

The rules (TF Serving's file-system source, ``ParseVersionNumber``, parses a child's name with TensorFlow's
``strings::safe_strto64``; every child whose name parses is a version):

* a version folder's whole name is ASCII digits ``0-9`` (leading zeros allowed: ``007`` is version 7, as in TF
  Serving); the value must fit TF Serving's int64 version (at most ``2**63 - 1``);
* everything else is ignored, never an error: files, hidden and temporary folders (``.3.partial-x`` that
  ``publish_dir`` renames into place), other names. A stray folder must not take the server's poll down;
* where two folders name one version (``7`` and ``007``), the one whose name sorts last is used, as TF Serving
  does (it logs a warning); ``duplicate_versions`` finds them so deployment checks can refuse them.

Deliberately stricter than ``safe_strto64``, which also accepts surrounding whitespace (``" 7"``) and a minus
sign (``"-1"``): no deepclf tool writes such names, a negative version cannot be asked for by number in our
clients, and ``" 7"`` beside ``"7"`` would be a silent duplicate. (Newer absl-based parsers also accept ``"+7"``;
refused here too.) So the only folders TF Serving would load that deepclf ignores are those with spaces or signs.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

from deepclf.errors import ModelFormatError, UsageError

__all__ = [
    "MAX_VERSION",
    "NoVersionError",
    "duplicate_versions",
    "expected_layout",
    "latest_version",
    "list_versions",
    "next_version",
    "parse_version",
    "require_latest_version",
    "skipped_folders",
    "version_numbers",
    "version_of_path",
]

#: TF Serving's versions are int64.
MAX_VERSION = 2**63 - 1

# [0-9], not \d or str.isdigit(): both accept other scripts' digits ('٣', '²'), which int() rejects or TF Serving
# would never read as a number.
_ASCII_DIGITS = re.compile(r"[0-9]+")


class NoVersionError(ModelFormatError):
    """A caller needed a version folder under a base folder that has none."""


def parse_version(name: str) -> int | None:
    """The version number a folder named ``name`` stands for, or ``None`` when it is not a version folder.

    >>> parse_version("12"), parse_version("007"), parse_version("²"), parse_version(".tmp-3")
    (12, 7, None, None)
    """
    if not _ASCII_DIGITS.fullmatch(name):
        return None
    value = int(name)
    return value if value <= MAX_VERSION else None


def _children(base: Path) -> list[os.DirEntry[str]]:
    # A missing base is "no versions": callers that need the base to exist say so in their own words.
    with contextlib.suppress(FileNotFoundError, NotADirectoryError), os.scandir(base) as it:
        return sorted(it, key=lambda e: e.name)
    return []


def _all_versions(base: Path) -> list[tuple[int, Path]]:
    """Every version folder, duplicates included, sorted by (number, name)."""
    found = []
    for entry in _children(base):
        number = parse_version(entry.name)
        if number is not None and entry.is_dir():  # is_dir() follows links: a linked version folder counts
            found.append((number, base / entry.name))
    return sorted(found, key=lambda vp: (vp[0], vp[1].name))


def list_versions(base: str | os.PathLike[str]) -> list[tuple[int, Path]]:
    """``(version, folder)`` for every version folder under ``base``, ascending; ``[]`` if ``base`` is missing.

    One folder per number: of two names for one version (``7``, ``007``) the one sorting last wins, as in TF Serving.
    """
    by_number: dict[int, Path] = {}
    for number, path in _all_versions(Path(base)):
        by_number[number] = path  # sorted by name within a number, so the last name wins
    return sorted(by_number.items())


def version_numbers(base: str | os.PathLike[str]) -> list[int]:
    """The version numbers under ``base``, ascending (``[1, 3]``)."""
    return [number for number, _ in list_versions(base)]


def duplicate_versions(base: str | os.PathLike[str]) -> dict[int, list[Path]]:
    """Versions named by more than one folder (``{7: [.../007, .../7]}``); empty when the layout is clean."""
    groups: dict[int, list[Path]] = {}
    for number, path in _all_versions(Path(base)):
        groups.setdefault(number, []).append(path)
    return {n: paths for n, paths in groups.items() if len(paths) > 1}


def skipped_folders(base: str | os.PathLike[str]) -> list[str]:
    """Names of visible folders under ``base`` that are not version folders (for error messages: ``['²', 'v2']``)."""
    return [
        e.name
        for e in _children(Path(base))
        if not e.name.startswith(".") and parse_version(e.name) is None and e.is_dir()
    ]


def latest_version(base: str | os.PathLike[str]) -> tuple[int, Path] | None:
    """The highest ``(version, folder)`` under ``base`` (what TF Serving's default policy serves), or ``None``."""
    versions = list_versions(base)
    return versions[-1] if versions else None


def require_latest_version(base: str | os.PathLike[str]) -> tuple[int, Path]:
    """Like ``latest_version``, but a base without versions raises ``NoVersionError`` saying what it found."""
    latest = latest_version(base)
    if latest is None:
        raise NoVersionError(f"{base} has no version folder; {expected_layout(base)}")
    return latest


def expected_layout(base: str | os.PathLike[str]) -> str:
    """What a version folder must look like, and which folders under ``base`` were passed over (for messages)."""
    skipped = skipped_folders(base)
    return (
        f"expected sub-folders named by a version number in ASCII digits, such as {Path(base) / '1'} "
        "(`deepclf convert` writes them)"
        + (
            f"; ignored: {', '.join(repr(s) for s in skipped[:5])}" + (" ..." if len(skipped) > 5 else "")
            if skipped
            else ""
        )
    )


def next_version(base: str | os.PathLike[str]) -> int:
    """The version number to publish next: the highest under ``base`` plus one (1 for a new model)."""
    latest = latest_version(base)
    number = latest[0] + 1 if latest else 1
    if number > MAX_VERSION:
        raise UsageError(
            f"{base} already holds version {MAX_VERSION}, the highest TF Serving can address; "
            "pass an explicit --version below it or use a new model name"
        )
    return number


def version_of_path(path: str | os.PathLike[str]) -> int | None:
    """The version of a model path in the layout: ``.../flowers/3`` or a file inside it -> 3; else ``None``."""
    p = Path(path)
    for candidate in (p, p.parent):
        number = parse_version(candidate.name)
        if number is not None:
            return number
    return None
