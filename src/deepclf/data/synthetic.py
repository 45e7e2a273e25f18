"""A small generated dataset, so ``deepclf demo`` still runs end to end when no real photos can be had.

Each class gets a distinct colour and pattern, plus noise, so a CNN can learn it; it is only a stand-in and the demo
says so loudly.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from deepclf.fsutil import publish_dir

CLASSES = ("daisy", "dandelion", "roses", "sunflowers", "tulips")


def make_synthetic_dataset(
    dest: str | os.PathLike[str], *, per_class: int = 40, size: tuple[int, int] = (120, 160), seed: int = 0
) -> Path:
    """Write ``per_class`` JPEGs for each of 5 classes under ``dest`` (atomically); returns ``dest``."""
    dest = Path(dest)
    if dest.exists():
        return dest
    rng = np.random.default_rng(seed)
    palette = np.array([[240, 240, 240], [250, 210, 30], [200, 30, 60], [250, 170, 0], [220, 60, 160]], np.float32)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    with publish_dir(dest) as tmp:
        for ci, cls in enumerate(CLASSES):
            (tmp / cls).mkdir()
            for i in range(per_class):
                cy, cx = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w
                r = np.hypot(yy - cy, xx - cx)
                blob = (np.cos(r / (4 + ci * 2)) > 0).astype(np.float32)[..., None]
                green = np.array([40, 120, 40], np.float32)
                img = blob * palette[ci] + (1 - blob) * green + rng.normal(0, 25, (h, w, 3))
                Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(
                    tmp / cls / f"{cls}_{i:03d}.jpg", quality=90
                )
    return dest
