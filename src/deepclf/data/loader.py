"""The tutorial's tf.data pipeline: 80/20 split with seed 123, 180x180, batch 32, ``cache()`` + ``prefetch(AUTOTUNE)``.
Needs TensorFlow.

The files and their order are exactly those of ``image_dataset_from_directory(validation_split=0.2, seed=123)``
(``deepclf.data.split``; a test checks against Keras). Images are decoded and resized by
``deepclf.preprocessing_tf``, the TF twin of the one image contract, so training sees the very pixels that
``deepclf.preprocessing`` gives at inference (Keras' loader decodes JPEGs with TF's fast DCT, which does not).
Training examples are reshuffled every epoch (after the cache, before batching)::

    train_ds, val_ds, class_names = load_datasets("flower_photos", img_size=(180, 180), batch_size=32, seed=123)
"""

from __future__ import annotations

import os

from deepclf.data.split import split_files
from deepclf.errors import require_tensorflow


def make_dataset(
    paths,
    labels,
    *,
    img_size: tuple[int, int],
    batch_size: int,
    shuffle_seed: int | None = None,
    shuffle_buffer: int = 1000,
    cache: bool = True,
):  # -> tf.data.Dataset
    """(float32 images 0..255, int32 labels) batches from file paths and label indices."""
    tf = require_tensorflow("loading images")
    from deepclf.preprocessing_tf import decode_and_resize

    h, w = img_size
    ds = tf.data.Dataset.from_tensor_slices(([os.fspath(p) for p in paths], tf.constant(labels, dtype=tf.int32)))
    ds = ds.map(lambda p, y: (decode_and_resize(tf.io.read_file(p), h, w), y), num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        ds = ds.cache()
    if shuffle_seed is not None:
        ds = ds.shuffle(shuffle_buffer, seed=shuffle_seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


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
    """Training and validation datasets and the class names (sorted folder names)."""
    tr_paths, tr_labels, class_names = split_files(data_dir, "training", validation_split=validation_split, seed=seed)
    va_paths, va_labels, _ = split_files(data_dir, "validation", validation_split=validation_split, seed=seed)
    train_ds = make_dataset(
        tr_paths,
        tr_labels,
        img_size=img_size,
        batch_size=batch_size,
        shuffle_seed=seed,
        shuffle_buffer=shuffle_buffer,
        cache=cache,
    )
    val_ds = make_dataset(va_paths, va_labels, img_size=img_size, batch_size=batch_size, cache=cache)
    return train_ds, val_ds, class_names
