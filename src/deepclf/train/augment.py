"""The edge model's augmentation policy, applied to whole batches inside the ``tf.data`` pipeline (never in the model).

The training images are decoded and resized once, to a square slightly larger than the model's input, and cached as
uint8 (``deepclf.data.loader.make_dataset(cache_size=...)``); every epoch then draws new views of them cheaply:

* one geometric transform per image, a single ``ImageProjectiveTransformV3`` over the batch: a random resized crop
  (area ``scale`` of the cached image, aspect ratio ``ratio``), a horizontal flip (half of the images) and a small
  rotation (``rotation``, in turns of the circle as Keras' ``RandomRotation`` counts), resampled bilinearly straight
  to the model's input size; corners uncovered by the rotation reflect the image;
* colour jitter: brightness, contrast and saturation factors drawn per image.

Being outside the model, none of it is exported: the SavedModel and the TFLite files hold the network alone, and
validation images go through exactly the inference contract (``deepclf.preprocessing``: the whole image resized to
the input size)::

    augment = AugmentPolicy().batch_fn(out_size=(128, 128))   # (uint8 [B, H, W, 3], seed [2]) -> float32 [B, 128, 128, 3]
    seeds = tf.data.Dataset.random(seed=123, rerandomize_each_iteration=True).batch(2)
    ds = tf.data.Dataset.zip((ds.batch(64), seeds)).map(lambda xy, s: (augment(xy[0], s), xy[1]))
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from deepclf.errors import UsageError, require_tensorflow

#: ITU-R 601 luma weights: the grey an image desaturates towards (what ``tf.image.rgb_to_grayscale`` uses).
LUMA = (0.2989, 0.587, 0.114)


@dataclass(frozen=True)
class AugmentPolicy:
    """How far each random change may go (0 turns one off). Recorded in the run's ``config.json``."""

    scale: tuple[float, float] = (0.25, 1.0)  # area of the crop, as a fraction of the (cached) image
    ratio: tuple[float, float] = (3 / 4, 4 / 3)  # width/height of the crop
    flip: bool = True  # horizontal, half of the images
    rotation: float = 0.03  # +- this fraction of a full turn (0.03 = 10.8 degrees)
    brightness: float = 0.2  # + U(-b, b) * 255
    contrast: float = 0.2  # (x - mean) * U(1-c, 1+c) + mean
    saturation: float = 0.3  # grey + (x - grey) * U(1-s, 1+s)

    def __post_init__(self) -> None:
        lo, hi = self.scale
        if not 0 < lo <= hi <= 1:
            raise UsageError(f"crop scale must satisfy 0 < low <= high <= 1, got {self.scale}")
        if not 0 < self.ratio[0] <= self.ratio[1]:
            raise UsageError(f"crop ratio must satisfy 0 < low <= high, got {self.ratio}")
        for name in ("rotation", "brightness", "contrast", "saturation"):
            if not 0 <= getattr(self, name) < 1:
                raise UsageError(f"{name} must be in [0, 1), got {getattr(self, name)}")

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def batch_fn(self, out_size: tuple[int, int]) -> Callable[[Any, Any], Any]:
        """A function (images uint8/float [B, H, W, 3] in 0..255, seed int [2]) -> float32 [B, out_h, out_w, 3] in
        0..255: random views, a pure function of the images and the seed (stateless random ops)."""
        tf = require_tensorflow("augmenting images")
        out_h, out_w = (int(out_size[0]), int(out_size[1]))

        def augment(images, seed):
            images = tf.cast(images, tf.float32)
            n = tf.shape(images)[0]
            in_h = tf.cast(tf.shape(images)[1], tf.float32)
            in_w = tf.cast(tf.shape(images)[2], tf.float32)
            u = tf.random.stateless_uniform((n, 9), seed=tf.cast(seed, tf.int64))  # one draw per image and parameter
            transforms = self._transforms(tf, u, in_h, in_w, out_h, out_w)
            x = tf.raw_ops.ImageProjectiveTransformV3(
                images=images,
                transforms=transforms,
                output_shape=tf.constant([out_h, out_w], tf.int32),
                fill_value=0.0,
                interpolation="BILINEAR",
                fill_mode="REFLECT",
            )
            x = self._colour(tf, x, u[:, 6:9])
            x.set_shape((None, out_h, out_w, 3))
            return x

        return augment

    def _transforms(self, tf: Any, u: Any, in_h: Any, in_w: Any, out_h: int, out_w: int) -> Any:
        """[B, 8] projective transforms mapping output pixels to input pixels (crop, flip, rotation in one)."""
        lo, hi = self.scale
        area = lo + (hi - lo) * u[:, 0]
        log_r = math.log(self.ratio[0]) + (math.log(self.ratio[1]) - math.log(self.ratio[0])) * u[:, 1]
        r = tf.exp(log_r)
        bw = tf.minimum(tf.sqrt(area * r), 1.0) * in_w  # crop size in input pixels
        bh = tf.minimum(tf.sqrt(area / r), 1.0) * in_h
        cx = bw / 2 + (in_w - bw) * u[:, 2]  # crop centre, the crop inside the image
        cy = bh / 2 + (in_h - bh) * u[:, 3]
        flip = tf.where(u[:, 4] < 0.5, -1.0, 1.0) if self.flip else tf.ones_like(bw)
        theta = (2 * u[:, 5] - 1) * (self.rotation * 2 * math.pi)
        cos, sin = tf.cos(theta), tf.sin(theta)
        # Output pixel (x, y) has centre (x + 0.5) / out_w - 0.5 = x / out_w + du in crop units (-0.5..0.5); it maps
        # to the input point centre + R(theta) (flip * u * bw, v * bh), and pixel indices sit 0.5 below centres.
        du, dv = 0.5 / out_w - 0.5, 0.5 / out_h - 0.5
        sx, sy = flip * bw, bh
        a0, a1 = cos * sx / out_w, -sin * sy / out_h
        b0, b1 = sin * sx / out_w, cos * sy / out_h
        a2 = cx - 0.5 + cos * sx * du - sin * sy * dv
        b2 = cy - 0.5 + sin * sx * du + cos * sy * dv
        zeros = tf.zeros_like(a0)
        return tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)

    def _colour(self, tf: Any, x: Any, u: Any) -> Any:
        """Brightness, contrast and saturation jitter, one factor of each per image; clipped to 0..255."""

        def factor(amount: float, draw: Any) -> Any:
            return (1 + amount * (2 * draw - 1))[:, None, None, None]

        if self.saturation:
            grey = tf.reduce_sum(x * tf.constant(LUMA), axis=-1, keepdims=True)
            x = grey + (x - grey) * factor(self.saturation, u[:, 2])
        if self.contrast:
            mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
            x = mean + (x - mean) * factor(self.contrast, u[:, 1])
        if self.brightness:
            x = x + (self.brightness * 255.0) * (2 * u[:, 0] - 1)[:, None, None, None]
        return tf.clip_by_value(x, 0.0, 255.0)
