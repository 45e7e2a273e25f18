"""How the training pipeline orders the photos: the augmented recipes reshuffle the whole split each epoch.

Each photo's label here is its position in the file list, so a batch's labels say where in the list it came from.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from deepclf.data.loader import make_dataset
from deepclf.data.split import split_files


def _first_batches(photos: Path, augment: bool, epochs: int = 2) -> list[np.ndarray]:
    paths, _, _ = split_files(photos, "training", validation_split=0.2, seed=123)
    ds = make_dataset(
        paths,
        list(range(len(paths))),
        img_size=(16, 16),
        batch_size=16,
        shuffle_seed=123,
        shuffle_buffer=8,  # a window far smaller than the 160 photos
        augment=(lambda x, seed: tf.cast(x, tf.float32)) if augment else None,
    )
    return [next(iter(ds))[1].numpy() for _ in range(epochs)]


def test_augmented_pipeline_draws_each_batch_from_the_whole_split(gen_photos: Path) -> None:
    first, second = _first_batches(gen_photos, augment=True)
    assert first.max() >= 40 and second.max() >= 40  # past the window: the whole split is the buffer
    assert sorted(first.tolist()) != sorted(second.tolist())  # a fresh order each epoch


def test_tutorial_pipeline_keeps_its_shuffle_window(gen_photos: Path) -> None:
    first, _ = _first_batches(gen_photos, augment=False)
    assert first.max() < 16 + 8  # 16 photos drawn from a window of 8 sliding over the list
