"""The tutorial's train/validation split, computed without TensorFlow.

``image_dataset_from_directory(validation_split=0.2, subset=..., seed=123)`` lists the image files of every class
sub-folder (sorted class names, files walked in sorted order), shuffles paths and labels with
``np.random.RandomState(seed)``, and keeps the last ``int(0.2 * n)`` for validation. ``split_files`` does exactly
that, so convert (calibration images), bench (parity images) and the training pipeline agree on which photo is in
which split; ``tests/data/test_split.py`` checks it against Keras itself::

    paths, labels, class_names = split_files("flower_photos", "validation")   # 20% of the files, seed 123
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from deepclf.errors import DatasetError, UsageError

#: The extensions ``image_dataset_from_directory`` indexes (case-insensitive).
IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
SUBSETS = ("training", "validation", "all")


def class_names_of(directory: str | os.PathLike[str]) -> list[str]:
    """Sorted names of the visible sub-folders: the labels, in label-index order."""
    d = Path(directory)
    if not d.is_dir():
        raise DatasetError(f"dataset folder not found: {d} (expected a folder with one sub-folder per class)")
    return sorted(p.name for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))


def index_folder(directory: str | os.PathLike[str]) -> tuple[list[Path], list[int], list[str]]:
    """All image files under each class folder, in Keras' order (sorted walk), with label indices and class names."""
    directory = os.fspath(directory)
    classes = class_names_of(directory)
    if len(classes) < 2:
        raise DatasetError(
            f"{directory} has {len(classes)} class folder(s) ({', '.join(classes) or 'none'}); "
            "expected at least 2 sub-folders, one per class, each holding that class's images"
        )
    paths: list[Path] = []
    labels: list[int] = []
    for idx, cls in enumerate(classes):
        sub = os.path.join(directory, cls)
        for root, _, files in sorted(os.walk(sub), key=lambda x: x[0]):
            for fname in sorted(files):
                if fname.lower().endswith(IMAGE_EXTENSIONS):
                    rel = os.path.join(cls, os.path.relpath(os.path.join(root, fname), sub))
                    paths.append(Path(os.path.join(directory, rel)))
                    labels.append(idx)
    if not paths:
        raise DatasetError(f"{directory} holds no images ({', '.join(IMAGE_EXTENSIONS)}) in its class folders")
    return paths, labels, classes


def split_files(
    directory: str | os.PathLike[str],
    subset: str,
    *,
    validation_split: float = 0.2,
    seed: int = 123,
) -> tuple[list[Path], list[int], list[str]]:
    """File paths, label indices and class names of one subset ("training", "validation", or "all").

    Identical to what ``image_dataset_from_directory(directory, validation_split=..., subset=..., seed=...)``
    uses.
    """
    if subset not in SUBSETS:
        raise UsageError(f"subset must be one of {', '.join(map(repr, SUBSETS))}, got {subset!r}")
    if not 0.0 < validation_split < 1.0:
        raise UsageError(f"validation_split must be between 0 and 1 (exclusive), got {validation_split!r}")
    paths, labels, classes = index_folder(directory)
    order_paths = list(paths)
    order_labels = np.asarray(labels, dtype=np.int32)
    # Keras shuffles the two lists with two generators seeded identically; mirror that exactly.
    np.random.RandomState(seed).shuffle(order_paths)  # type: ignore[arg-type]  # any mutable sequence, as Keras does
    np.random.RandomState(seed).shuffle(order_labels)
    if subset == "all":
        return order_paths, order_labels.tolist(), classes
    n_val = int(validation_split * len(order_paths))
    if n_val == 0 or n_val == len(order_paths):
        raise DatasetError(
            f"{directory} has {len(order_paths)} images: too few for a {validation_split:.0%} validation split "
            "(each subset needs at least one image)"
        )
    if subset == "training":
        return order_paths[:-n_val], order_labels[:-n_val].tolist(), classes
    return order_paths[-n_val:], order_labels[-n_val:].tolist(), classes
