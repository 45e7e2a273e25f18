"""The TensorFlow twin of ``deepclf.preprocessing``, for use inside graphs (the exported ``predict_image_bytes``
signature and the training pipeline). Same steps: decode (first frame), RGB, TF bilinear resize, float32 0..255.

``tests/test_preprocessing.py`` bounds the difference between the two on real JPEGs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deepclf.errors import require_tensorflow

if TYPE_CHECKING:  # what type checkers see; at run time the same module, or an error naming the missing extra
    import tensorflow as tf
else:
    tf = require_tensorflow("the TensorFlow preprocessing twin")


def decode_and_resize(image_bytes: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """A scalar string tensor of JPEG/PNG/BMP/GIF bytes -> float32 (height, width, 3) in 0..255."""
    # JPEGs: libjpeg's accurate integer DCT, the one Pillow uses, so both paths decode to identical pixels.
    # (tf.io.decode_image's default, INTEGER_FAST, differs by up to ~20 levels on many pixels.)
    img = tf.cond(
        tf.io.is_jpeg(image_bytes),
        lambda: tf.io.decode_jpeg(image_bytes, channels=3, dct_method="INTEGER_ACCURATE"),
        lambda: tf.io.decode_image(image_bytes, channels=3, expand_animations=False, dtype=tf.uint8),
    )
    img.set_shape((None, None, 3))
    img = tf.image.resize(img, (height, width), method="bilinear")
    img.set_shape((height, width, 3))
    return tf.cast(img, tf.float32)


def decode_and_resize_batch(image_bytes: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """A [batch] string tensor -> float32 (batch, height, width, 3)."""
    return tf.map_fn(
        lambda b: decode_and_resize(b, height, width),
        image_bytes,
        fn_output_signature=tf.TensorSpec((height, width, 3), tf.float32),
    )
