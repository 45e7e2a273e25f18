"""The TF-free split is Keras' split; `data check` finds corrupt files, non-images, duplicates, tiny images.

The split and the clean check are checked on the generated photos everywhere and on the real archive (mini and
full) when the shared data is here; the problem-finding tests build their messy folder from generated JPEGs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deepclf.cli import main
from deepclf.data.check import check_folder
from deepclf.data.split import split_files
from deepclf.errors import DatasetError


@pytest.fixture(params=["gen_photos", "mini_photos"])
def photos200(request) -> Path:
    """200 JPEGs, 40 in each of the 5 flower classes: generated (anywhere), then the real mini set (shared data)."""
    return request.getfixturevalue(request.param)


def test_split_sizes_on_200_photos(photos200: Path) -> None:
    tr, trl, classes = split_files(photos200, "training")
    va, val, _ = split_files(photos200, "validation")
    assert classes == ["daisy", "dandelion", "roses", "sunflowers", "tulips"]
    assert (len(tr), len(va)) == (160, 40)
    assert not set(tr) & set(va) and len(set(tr) | set(va)) == 200
    assert all(Path(p).parent.name == classes[y] for p, y in zip(tr + va, trl + val, strict=True))


def test_split_is_exactly_keras_split(photos200: Path) -> None:
    tf = pytest.importorskip("tensorflow")
    for subset in ("training", "validation"):
        ds = tf.keras.utils.image_dataset_from_directory(
            str(photos200), validation_split=0.2, subset=subset, seed=123, image_size=(8, 8), verbose=False
        )
        ours, _, _ = split_files(photos200, subset)
        assert [str(p) for p in ours] == list(ds.file_paths)


def test_split_full_counts(full_photos: Path) -> None:
    n = len(list(full_photos.glob("*/*.jpg")))  # 2,645 now, 3,304 when complete: never assume a count
    tr, _, _ = split_files(full_photos, "training")
    va, _, _ = split_files(full_photos, "validation")
    assert len(va) == int(0.2 * n) and len(tr) + len(va) == n


def test_split_errors(tmp_path: Path, tiny_folder: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        split_files(tmp_path / "missing", "training")
    one = tmp_path / "one"
    (one / "a").mkdir(parents=True)
    with pytest.raises(DatasetError, match="1 class folder"):
        split_files(one, "training")
    with pytest.raises(Exception, match="subset must be"):
        split_files(tiny_folder, "test")


@pytest.fixture()
def messy(tmp_path: Path, gen_photos: Path) -> Path:
    root = tmp_path / "messy"
    for c in ("roses", "tulips"):
        (root / c).mkdir(parents=True)
        for f in sorted((gen_photos / c).glob("*.jpg"))[:3]:
            shutil.copy(f, root / c / f.name)
    dup = sorted((root / "roses").glob("*.jpg"))[0]
    shutil.copy(dup, root / "tulips" / dup.name)  # the same photo under two labels, as in the real set
    good = sorted((root / "tulips").glob("*.jpg"))[0].read_bytes()
    (root / "tulips" / "truncated.jpg").write_bytes(good[: len(good) // 3])
    (root / "roses" / "garbage.jpg").write_bytes(b"this is not a jpeg")
    (root / "roses" / "notes.txt").write_text("not an image")
    Image.fromarray(np.zeros((10, 12, 3), np.uint8)).save(root / "roses" / "tiny.png")
    return root


def test_check_finds_every_problem(messy: Path) -> None:
    r = check_folder(messy)
    assert r.counts == {"roses": 5, "tulips": 5}
    assert sorted(p.name for p, _ in r.unreadable) == ["garbage.jpg", "truncated.jpg"]
    assert [p.name for p in r.non_images] == ["notes.txt"]
    assert len(r.duplicates) == 1 and len(r.cross_class_duplicates()) == 1
    assert [p.name for p, _ in r.tiny] == ["tiny.png"]
    assert not r.ok


def test_check_cli_text_and_json(messy: Path, capsys) -> None:
    assert main(["data", "check", str(messy)]) == 1
    out = capsys.readouterr().out
    assert "garbage.jpg" in out and "across classes" in out and "NOT OK" in out
    assert main(["data", "check", str(messy), "--json"]) == 1
    d = json.loads(capsys.readouterr().out)
    assert d["ok"] is False and len(d["cross_class_duplicates"]) == 1


def test_check_clean_data(photos200: Path) -> None:
    r = check_folder(photos200)
    assert r.ok and r.total == 200 and not r.duplicates
