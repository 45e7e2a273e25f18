"""The tutorial's tf.data pipeline: ``image_dataset_from_directory`` 80/20, seed 123, 180x180, batch 32,
``cache()`` (+ ``shuffle(1000)`` for training) + ``prefetch(AUTOTUNE)``. Needs TensorFlow.

The split is the same one ``deepclf.data.split.split_files`` computes without TF (a test checks the file lists)::

    train_ds, val_ds, class_names = load_datasets("flower_photos", img_size=(180, 180), batch_size=32, seed=123)
"""

from __future__ import annotations

import os

from deepclf.data.split import index_folder
from deepclf.errors import DatasetError, require_tensorflow


def load_datasets(
    data_dir: str | os.PathLike[str],
    *,
    img_size: tuple[int, int] = (180, 180),
    batch_size: int = 32,
    seed: int = 123,
    validation_split: float = 0.2,
    shuffle_buffer: int = 1000,
    cache: bool = True,
):  # -> (tf.data.Dataset, tf.data.Dataset, list[str])
    """Training and validation datasets of (float32 images 0..255, int32 labels) batches, and the class names."""
    tf = require_tensorflow("loading the training data")
    index_folder(data_dir)  # clear DatasetError for empty / single-class folders before Keras' ValueError
    try:
        train_ds, val_ds = tf.keras.utils.image_dataset_from_directory(
            os.fspath(data_dir),
            validation_split=validation_split,
            subset="both",
            seed=seed,
            image_size=tuple(img_size),
            batch_size=batch_size,
            verbose=False,
        )
    except ValueError as exc:
        raise DatasetError(f"cannot load {data_dir}: {exc}") from exc
    class_names = list(train_ds.class_names)
    autotune = tf.data.AUTOTUNE
    if cache:
        train_ds, val_ds = train_ds.cache(), val_ds.cache()
    train_ds = train_ds.shuffle(shuffle_buffer, seed=seed).prefetch(autotune)
    val_ds = val_ds.prefetch(autotune)
    return train_ds, val_ds, class_names
