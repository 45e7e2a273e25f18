"""The tutorial's tf.data pipeline: 80/20 split with seed 123, 180x180, batch 32, ``cache()`` + ``prefetch(AUTOTUNE)``.
Needs TensorFlow.

The files and their order are exactly those of ``image_dataset_from_directory(validation_split=0.2, seed=123)``
(``deepclf.data.split``; a test checks against Keras). Images are decoded and resized by
``deepclf.preprocessing_tf``, the TF twin of the one image contract, so training sees the very pixels that
``deepclf.preprocessing`` gives at inference (Keras' loader decodes JPEGs with TF's fast DCT, which does not).
Training examples are reshuffled every epoch (after the cache, before batching)::

    train_ds, val_ds, class_names = load_datasets("flower_photos", img_size=(180, 180), batch_size=32, seed=123)

With an augmentation (the edge model's recipe), each training photo is decoded and resized once, to ``cache_size``
(a little larger than the input), and cached as uint8; every batch then goes through ``augment`` (a function of the
batch and a seed, ``deepclf.train.augment``), which draws new views at the input size. The validation images are
never augmented: decoded and resized to the input size like any image at inference::

    augment = AugmentPolicy().batch_fn((128, 128))
    train_ds, val_ds, _ = load_datasets("flower_photos", img_size=(128, 128), batch_size=64,
                                        augment=augment, cache_size=(144, 144))
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

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
    augment: Callable[[Any, Any], Any] | None = None,
    cache_size: tuple[int, int] | None = None,
):  # -> tf.data.Dataset
    """(float32 images 0..255, int32 labels) batches from file paths and label indices.

    ``augment`` (training only): images are cached as uint8 at ``cache_size`` (default ``img_size``), reshuffled
    over the whole split every epoch (``shuffle_buffer`` is the tutorial's 1000 otherwise), batches of
    ``batch_size`` are kept whole (the last, smaller one is dropped: batch normalization learns nothing good from a
    handful of images) and mapped through ``augment(images, seed)``, with a fresh seed per batch drawn from
    ``shuffle_seed``.
    """
    tf = require_tensorflow("loading images")
    from deepclf.preprocessing_tf import decode_and_resize

    h, w = cache_size if augment is not None and cache_size else img_size
    ds = tf.data.Dataset.from_tensor_slices(([os.fspath(p) for p in paths], tf.constant(labels, dtype=tf.int32)))
    if augment is None:
        ds = ds.map(lambda p, y: (decode_and_resize(tf.io.read_file(p), h, w), y), num_parallel_calls=tf.data.AUTOTUNE)
    else:  # a quarter of the memory of float32, and the views are drawn from it anyway
        ds = ds.map(
            lambda p, y: (tf.cast(tf.round(decode_and_resize(tf.io.read_file(p), h, w)), tf.uint8), y),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    if cache:
        ds = ds.cache()
    if shuffle_seed is not None:
        # The augmented recipes shuffle the whole split: batch normalization's batch statistics and the many updates
        # of a short schedule want batches that are a fresh sample each epoch, not the file order blurred by a
        # 1000-photo window (the uint8 cache makes the full buffer cheap: 164 MB for the flowers at 144x144).
        buffer = shuffle_buffer if augment is None else max(shuffle_buffer, len(labels))
        ds = ds.shuffle(buffer, seed=shuffle_seed, reshuffle_each_iteration=True)
    if augment is None:
        return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    seeds = tf.data.Dataset.random(seed=shuffle_seed, rerandomize_each_iteration=True).batch(2)
    ds = tf.data.Dataset.zip((ds.batch(batch_size, drop_remainder=True), seeds))
    return ds.map(lambda xy, seed: (augment(xy[0], seed), xy[1]), num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)


def load_datasets(
    data_dir: str | os.PathLike[str],
    *,
    img_size: tuple[int, int] = (180, 180),
    batch_size: int = 32,
    seed: int = 123,
    validation_split: float = 0.2,
    shuffle_buffer: int = 1000,
    cache: bool = True,
    augment: Callable[[Any, Any], Any] | None = None,
    cache_size: tuple[int, int] | None = None,
):  # -> (tf.data.Dataset, tf.data.Dataset, list[str])
    """Training and validation datasets and the class names (sorted folder names); ``augment`` and
    ``cache_size`` apply to the training dataset (``make_dataset``)."""
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
        augment=augment,
        cache_size=cache_size,
    )
    val_ds = make_dataset(va_paths, va_labels, img_size=img_size, batch_size=batch_size, cache=cache)
    return train_ds, val_ds, class_names
