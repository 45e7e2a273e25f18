"""The one image contract: encoded image -> RGB -> resized float32 tensor in 0..255. Pure numpy and Pillow.

Every path that turns an image into model input calls this module: training-time prediction, the LiteRT runtime,
the edge server's ``predict_image_bytes`` path, the clients' ``classify`` and the benchmarks. Its TensorFlow twin
(``deepclf.preprocessing_tf``, used inside exported graphs) does the same steps with TF ops; a test on real JPEGs
bounds their difference.

The steps reproduce ``tf.keras.utils.image_dataset_from_directory`` (save one choice, below):

1. decode JPEG/PNG/BMP/GIF (first frame only, like ``decode_image(expand_animations=False)``); EXIF orientation is
   ignored, as TensorFlow ignores it. JPEGs use libjpeg's accurate integer DCT (Pillow's; TF's
   ``dct_method="INTEGER_ACCURATE"``). ``image_dataset_from_directory`` uses TF's default INTEGER_FAST, which
   differs by up to ~20 grey levels on many pixels, so our training pipeline decodes with the twin instead: the
   model is trained, exported and served on the very same pixels;
2. convert to 3-channel RGB (grey is replicated, alpha is dropped without compositing, palettes are applied);
3. resize with TensorFlow's bilinear kernel (half-pixel centres, no antialiasing), which is *not* Pillow's
   ``BILINEAR`` (Pillow widens the kernel when shrinking), so we compute it here in float32;
4. leave values as float32 in 0..255 (the models rescale inside).

Those are the only settings implemented: a manifest's ``input`` declaring another ``color_mode``, ``resize``,
``crop_to_aspect_ratio`` or ``dtype`` is refused when it is loaded (``manifest.SUPPORTED_INPUT``), and given an
``InputSpec``, ``preprocess`` takes its size and resize kernel from it.

Usage::

    from deepclf.preprocessing import preprocess, preprocess_batch
    x = preprocess("rose.jpg", (180, 180))          # float32 (180, 180, 3)
    xb = preprocess_batch([b"...jpeg...", pil_img], manifest.input)  # float32 (2, 180, 180, 3)
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from deepclf.errors import ImageError

if TYPE_CHECKING:
    from deepclf.manifest import InputSpec

# Truncated files must fail loudly (TF's decoders fail on them too) instead of yielding grey bottoms.
ImageFile.LOAD_TRUNCATED_IMAGES = False

#: Formats the contract accepts (those ``tf.io.decode_image`` accepts).
SUPPORTED_FORMATS = ("JPEG", "PNG", "BMP", "GIF")

ImageSource: TypeAlias = str | os.PathLike[str] | bytes | bytearray | memoryview | Image.Image | np.ndarray
Size: TypeAlias = "tuple[int, int] | InputSpec"


def _as_size(size: Size) -> tuple[int, int]:
    if hasattr(size, "height") and hasattr(size, "width"):
        return (int(size.height), int(size.width))  # type: ignore[union-attr]  # an InputSpec, duck-typed
    try:
        h, w = size
        h, w = int(h), int(w)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"image size must be (height, width) or an InputSpec, got {size!r}") from exc
    if h <= 0 or w <= 0:
        raise ValueError(f"image size must be positive, got {(h, w)!r}")
    return (h, w)


def read_bytes(src: str | os.PathLike[str]) -> bytes:
    """Read an image file's bytes, with a clear error when it is missing or unreadable."""
    p = Path(src)
    try:
        return p.read_bytes()
    except FileNotFoundError as exc:
        raise ImageError(f"image file not found: {p}") from exc
    except IsADirectoryError as exc:
        raise ImageError(f"expected an image file, got a directory: {p}") from exc
    except OSError as exc:
        raise ImageError(f"cannot read image file {p}: {exc.strerror or exc}") from exc


def decode_image(data: bytes | bytearray | memoryview, *, name: str = "image bytes") -> np.ndarray:
    """Decode JPEG/PNG/BMP/GIF bytes into a uint8 RGB array (H, W, 3); the first frame of an animation.

    Raises ``ImageError`` naming ``name`` for empty, truncated, unknown or unsupported data.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ImageError(f"{name}: expected encoded image bytes, got {type(data).__name__}")
    if len(data) == 0:
        raise ImageError(f"{name}: empty (0 bytes); expected a JPEG, PNG, BMP or GIF image")
    try:
        with Image.open(io.BytesIO(bytes(data))) as img:
            if img.format not in SUPPORTED_FORMATS:
                raise ImageError(
                    f"{name}: unsupported image format {img.format}; expected one of {', '.join(SUPPORTED_FORMATS)}"
                )
            img.seek(0)
            return to_rgb_array(img)
    except ImageError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageError(
            f"{name}: not a decodable image ({len(data)} bytes starting {bytes(data[:8])!r}); "
            "expected a JPEG, PNG, BMP or GIF image"
        ) from exc
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageError(f"{name}: corrupt or truncated image ({exc})") from exc


def to_rgb_array(img: Image.Image) -> np.ndarray:
    """Convert a PIL image to a uint8 RGB array, the way TF's ``decode_image(channels=3)`` does."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greys: TF's decode_png(dtype=uint8) keeps the high byte; do the same.
        arr16 = np.asarray(img, dtype=np.uint32)
        grey = (arr16 >> 8).astype(np.uint8) if arr16.max(initial=0) > 255 else arr16.astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=-1)
    if img.mode != "RGB":
        img = img.convert("RGB")
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim != 3 or arr.shape[2] != 3:  # pragma: no cover - PIL guarantees this after convert
        raise ImageError(f"decoded image has shape {arr.shape}, expected (H, W, 3)")
    return arr


def _interpolation_weights(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # TensorFlow's bilinear kernel with half_pixel_centers=True, computed in float32 as TF does.
    scale = np.float32(in_size) / np.float32(out_size)
    src = (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    floor = np.floor(src)
    lower = np.maximum(floor.astype(np.int64), 0)
    upper = np.minimum(np.ceil(src).astype(np.int64), in_size - 1)
    lerp = (src - floor).astype(np.float32)
    return lower, upper, lerp


def resize_bilinear(image: np.ndarray, size: Size) -> np.ndarray:
    """Resize an (H, W, C) array to ``size`` exactly like ``tf.image.resize(..., "bilinear")``; returns float32."""
    h, w = _as_size(size)
    if image.ndim != 3:
        raise ValueError(f"expected an (H, W, C) image, got shape {image.shape}")
    img = image.astype(np.float32, copy=False)
    ylo, yhi, ylerp = _interpolation_weights(img.shape[0], h)
    xlo, xhi, xlerp = _interpolation_weights(img.shape[1], w)
    top_rows, bottom_rows = img[ylo], img[yhi]
    xl = xlerp[None, :, None]
    top = top_rows[:, xlo] + (top_rows[:, xhi] - top_rows[:, xlo]) * xl
    bottom = bottom_rows[:, xlo] + (bottom_rows[:, xhi] - bottom_rows[:, xlo]) * xl
    return (top + (bottom - top) * ylerp[:, None, None]).astype(np.float32, copy=False)


#: Resize kernels by ``InputSpec.resize`` name: exactly the names ``manifest.SUPPORTED_INPUT`` allows.
RESIZE_METHODS: dict[str, Callable[[np.ndarray, Size], np.ndarray]] = {"bilinear": resize_bilinear}


def load_rgb(src: ImageSource, *, name: str | None = None) -> np.ndarray:
    """Any image source -> uint8 (or float, for float arrays) RGB array (H, W, 3), not resized."""
    if isinstance(src, np.ndarray):
        arr = src
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, axis=-1)
        if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4):
            raise ImageError(f"{name or 'array'}: expected an (H, W, 3) image array, got shape {arr.shape}")
        if arr.shape[-1] == 1:
            arr = np.repeat(arr, 3, axis=-1)
        elif arr.shape[-1] == 4:
            arr = arr[..., :3]
        if not np.issubdtype(arr.dtype, np.number):
            raise ImageError(f"{name or 'array'}: expected a numeric image array, got dtype {arr.dtype}")
        return arr
    if isinstance(src, Image.Image):
        if getattr(src, "n_frames", 1) > 1:
            src.seek(0)  # the first frame, like decode_image(expand_animations=False)
        return to_rgb_array(src)
    if isinstance(src, (bytes, bytearray, memoryview)):
        return decode_image(src, name=name or "image bytes")
    if isinstance(src, (str, os.PathLike)):
        return decode_image(read_bytes(src), name=name or os.fspath(src))
    raise ImageError(
        f"cannot use {type(src).__name__} as an image; expected a path, bytes, a PIL image or a numpy array"
    )


def preprocess(src: ImageSource, size: Size, *, name: str | None = None) -> np.ndarray:
    """One image source -> float32 (H, W, 3) in 0..255 at the model's size: the whole contract in one call.

    ``size`` is (height, width), or the manifest's ``InputSpec`` (its size and ``resize`` kernel)::

        preprocess("rose.jpg", manifest.input)      # float32 (180, 180, 3)
    """
    arr = load_rgb(src, name=name)
    target = _as_size(size)
    if arr.shape[:2] == target and arr.dtype == np.float32:
        return arr  # already a model-ready tensor: leave it untouched
    # A plain (h, w) means the contract's default kernel; an InputSpec was validated against RESIZE_METHODS' names.
    return RESIZE_METHODS[getattr(size, "resize", "bilinear")](arr, target)


def preprocess_batch(srcs: Iterable[ImageSource], size: Size) -> np.ndarray:
    """Several image sources -> float32 (N, H, W, 3)."""
    items = [preprocess(s, size) for s in srcs]
    h, w = _as_size(size)
    if not items:
        return np.zeros((0, h, w, 3), dtype=np.float32)
    return np.stack(items).astype(np.float32, copy=False)


def encode_image(src: ImageSource, *, fmt: str = "PNG") -> bytes:
    """Encoded bytes for an image source, for the ``predict_image_bytes`` signature.

    Paths and bytes are sent as they are (the server decodes the original, exactly like local preprocessing);
    arrays and PIL images are encoded losslessly (PNG by default) so nothing changes on the way.
    """
    if isinstance(src, (bytes, bytearray, memoryview)):
        return bytes(src)
    if isinstance(src, (str, os.PathLike)):
        return read_bytes(src)
    if isinstance(src, np.ndarray):
        arr = load_rgb(src)
        if arr.dtype != np.uint8:
            if arr.min(initial=0) < 0 or arr.max(initial=0) > 255 or not np.all(np.equal(np.mod(arr, 1), 0)):
                raise ImageError(
                    "cannot encode a non-integer float array as image bytes without loss; "
                    "send it as a tensor (send='tensor') or pass uint8 pixels"
                )
            arr = arr.astype(np.uint8)
        img = Image.fromarray(arr, "RGB")
    elif isinstance(src, Image.Image):
        img = src.convert("RGB")
    else:
        raise ImageError(f"cannot encode {type(src).__name__} as an image")
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def top_k(probabilities: np.ndarray, labels: Sequence[str], k: int = 5) -> list[list[tuple[str, int, float]]]:
    """Per row, the ``k`` best (label, index, probability), best first (ties broken by lower index)."""
    probs = np.atleast_2d(np.asarray(probabilities))
    k = max(1, min(int(k), probs.shape[1]))
    out = []
    for row in probs:
        idx = np.argsort(-row, kind="stable")[:k]
        out.append([(labels[i], int(i), float(row[i])) for i in idx])
    return out
