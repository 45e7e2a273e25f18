"""deepclf.versions: which folder names are versions (TF Serving's rules, stricter where documented), and that an
odd name is skipped, never fatal."""

from __future__ import annotations

from pathlib import Path

import pytest

from deepclf.errors import ModelFormatError, UsageError
from deepclf.versions import (
    MAX_VERSION,
    NoVersionError,
    duplicate_versions,
    latest_version,
    list_versions,
    next_version,
    parse_version,
    require_latest_version,
    skipped_folders,
    version_numbers,
    version_of_path,
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("1", 1),
        ("42", 42),
        ("0", 0),  # TF Serving accepts 0; convert never writes it (--version >= 1)
        ("007", 7),  # leading zeros: safe_strto64 reads them, so do we
        (str(MAX_VERSION), MAX_VERSION),  # int64 max
        (str(MAX_VERSION + 1), None),  # 9223372036854775808: TF Serving's int64 overflows, not a version
        ("9" * 40, None),
        ("²", None),  # str.isdigit() is True, int() raises: the server-poll bug
        ("³1", None),
        ("٣", None),  # Arabic-Indic three: int() would say 3, TF Serving would not
        ("１", None),  # fullwidth one
        ("-1", None),  # safe_strto64 accepts; refused here (documented in the module)
        ("+7", None),
        (" 7", None),
        ("7 ", None),
        ("7\n", None),  # re's $ would match before a trailing newline; fullmatch does not
        ("", None),
        (".3", None),
        (".tmp-3", None),
        (".3.partial-abc", None),
        ("3.partial", None),
        ("v3", None),
        ("1e3", None),
        ("0x10", None),
        ("3_000", None),  # int() accepts underscores; a folder name is not a literal
    ],
)
def test_parse_version(name: str, expected: int | None) -> None:
    assert parse_version(name) == expected


def _layout(base: Path, dirs: list[str], files: tuple[str, ...] = ()) -> Path:
    base.mkdir(parents=True, exist_ok=True)
    for d in dirs:
        (base / d).mkdir()
    for f in files:
        (base / f).write_text("x")
    return base


def test_list_versions_skips_everything_that_is_not_a_version_folder(tmp_path: Path) -> None:
    base = _layout(
        tmp_path / "flowers",
        ["1", "3", "²", "٣", ".tmp-4", ".5.partial-x", "-1", "v2", str(MAX_VERSION + 1)],
        files=("9", "README"),
    )
    assert list_versions(base) == [(1, base / "1"), (3, base / "3")]
    assert version_numbers(base) == [1, 3]
    assert latest_version(base) == (3, base / "3")
    assert next_version(base) == 4
    assert sorted(skipped_folders(base)) == sorted(["²", "٣", "-1", "v2", str(MAX_VERSION + 1)])  # not dot-folders


def test_missing_or_empty_base(tmp_path: Path) -> None:
    for base in (tmp_path / "absent", _layout(tmp_path / "empty", [".tmp-1"], files=("2",))):
        assert list_versions(base) == []
        assert latest_version(base) is None
        assert next_version(base) == 1
    (tmp_path / "file").write_text("x")
    assert list_versions(tmp_path / "file") == []  # a file where a folder is expected: no versions, no crash


def test_require_latest_version_says_what_it_found(tmp_path: Path) -> None:
    base = _layout(tmp_path / "flowers", ["²", ".tmp-1"])
    with pytest.raises(NoVersionError, match=r"has no version folder; expected .*ASCII digits.*ignored: '²'") as e:
        require_latest_version(base)
    assert isinstance(e.value, ModelFormatError) and ".tmp-1" not in str(e.value)
    (base / "2").mkdir()
    assert require_latest_version(base) == (2, base / "2")


def test_duplicates_pick_the_name_tf_serving_picks(tmp_path: Path) -> None:
    # TF Serving indexes the sorted children by number, so the last name wins ("7" after "007"), with a warning.
    base = _layout(tmp_path / "m", ["007", "7", "07", "8"])
    assert list_versions(base) == [(7, base / "7"), (8, base / "8")]
    assert duplicate_versions(base) == {7: [base / "007", base / "07", base / "7"]}
    assert duplicate_versions(_layout(tmp_path / "clean", ["1", "2"])) == {}


def test_leading_zeros_only(tmp_path: Path) -> None:
    base = _layout(tmp_path / "m", ["007"])
    assert list_versions(base) == [(7, base / "007")]
    assert next_version(base) == 8


def test_next_version_refuses_to_overflow(tmp_path: Path) -> None:
    base = _layout(tmp_path / "m", [str(MAX_VERSION)])
    with pytest.raises(UsageError, match="highest TF Serving can address"):
        next_version(base)


def test_version_of_path() -> None:
    assert version_of_path("models/flowers/3") == 3
    assert version_of_path("models/flowers/3/model_int8.tflite") == 3
    assert version_of_path("models/flowers/²/model.tflite") is None
    assert version_of_path("runs/basic-001/model.keras") is None


def test_symlinked_version_folder_counts(tmp_path: Path) -> None:
    base = _layout(tmp_path / "m", ["1"])
    (base / "2").symlink_to(base / "1", target_is_directory=True)
    assert version_numbers(base) == [1, 2]


def test_no_tensorflow_import() -> None:
    import subprocess
    import sys

    code = "import sys, deepclf.versions; assert 'tensorflow' not in sys.modules; print('ok')"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "ok\n"
