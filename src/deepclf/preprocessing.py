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

Images from untrusted clients are checked against an ``ImageBudget`` from their header, before any pixel is
decoded, and only the rows and columns the resize reads are ever converted (the decode buffer Pillow fills,
``W * H * 4`` bytes for RGB, is the one full-size allocation)::

    budget = ImageBudget(max_pixels=4096 * 4096, max_total_pixels=64 * 2**20)
    budget.check_request([(name, *probe_image(data, name=name).size) for name, data in images])
    x = preprocess(data, manifest.input, name="image_bytes[0]", budget=budget)
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, TypeAlias

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from deepclf.errors import ImageError

if TYPE_CHECKING:
    from deepclf.manifest import InputSpec

# Truncated files must fail loudly (TF's decoders fail on them too) instead of yielding grey bottoms.
ImageFile.LOAD_TRUNCATED_IMAGES = False
# Pillow warns (on stderr, once per distinct size) when a header declares over ``Image.MAX_IMAGE_PIXELS`` (89 MP)
# and raises over twice that. This module is the project's image decoder and applies its own limit, the caller's
# ``ImageBudget``, right after reading the header; a per-request warning would let any client write to the
# server's stderr. (A process-wide filter: ``warnings.catch_warnings`` is not thread-safe, and runners decode on
# many threads.) The hard error above 2x stays, as an ``ImageError``.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

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


class ImageHeader(NamedTuple):
    """What an image's header says, read without decoding a pixel (``probe_image``)."""

    format: str
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), Pillow's order."""
        return (self.width, self.height)


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.1f} MP"


@dataclass(frozen=True)
class ImageBudget:
    """Pixel limits for untrusted images, checked from their headers before anything is decoded.

    ``max_pixels`` bounds each image (width x height), ``max_total_pixels`` the sum over one request; ``None``
    means no limit. Decoding costs about 4 bytes per pixel however small the file is (a 563 KB JPEG can declare
    6000 x 6000), so these, not the request's byte size, bound a request's memory. The other fields only word
    the refusal, so that a server can name the flag that sets each limit::

        budget = ImageBudget(4096 * 4096, 64 * 2**20, owner="this server's",
                             max_pixels_setting="--max_image_pixels", max_total_pixels_setting="--max_request_pixels")
        budget.check_image("image_bytes[2]", 6000, 6000)
        # ImageError: image_bytes[2]: 6000x6000 pixels (36.0 MP) is over this server's limit of 16777216 pixels
        #             per image (--max_image_pixels)
    """

    max_pixels: int | None = None
    max_total_pixels: int | None = None
    #: Whose limit it is, as the message says it: "the", "this server's".
    owner: str = "the"
    #: The name of the setting behind each limit, shown in brackets (a flag, a config key).
    max_pixels_setting: str = "max_pixels"
    max_total_pixels_setting: str = "max_total_pixels"

    def __post_init__(self) -> None:
        for field in ("max_pixels", "max_total_pixels"):
            value = getattr(self, field)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
                raise ValueError(f"ImageBudget.{field} must be a positive integer or None, got {value!r}")

    def check_image(self, name: str, width: int, height: int) -> None:
        """Raise ``ImageError`` if one ``width`` x ``height`` image (called ``name``) is over ``max_pixels``."""
        pixels = width * height
        if self.max_pixels is not None and pixels > self.max_pixels:
            raise ImageError(
                f"{name}: {width}x{height} pixels ({_megapixels(pixels)}) is over {self.owner} limit of "
                f"{self.max_pixels} pixels per image ({self.max_pixels_setting})"
            )

    def check_request(self, images: Sequence[tuple[str, int, int]], *, name: str = "request") -> None:
        """Check a whole request's images, given as (name, width, height): each one, then their sum.

        ``name`` names the request (or the input holding the images) in the message about the sum.
        """
        for image_name, width, height in images:
            self.check_image(image_name, width, height)
        total = sum(width * height for _, width, height in images)
        if self.max_total_pixels is not None and total > self.max_total_pixels:
            raise ImageError(
                f"{name}: {len(images)} images of {total} pixels in all ({_megapixels(total)}) are over "
                f"{self.owner} limit of {self.max_total_pixels} pixels per request ({self.max_total_pixels_setting})"
            )


def _bomb_message(name: str, exc: Exception, budget: ImageBudget | None) -> str:
    # Pillow refuses headers over 2 x Image.MAX_IMAGE_PIXELS (179 MP) before we see the size; word it like our
    # own refusal when there is a budget (the pixel count is in Pillow's message), plainly otherwise.
    found = re.search(r"\((\d+) pixels\)", str(exc))
    if budget is not None and budget.max_pixels is not None and found:
        pixels = int(found.group(1))
        return (
            f"{name}: {pixels} pixels ({_megapixels(pixels)}) is over {budget.owner} limit of {budget.max_pixels} "
            f"pixels per image ({budget.max_pixels_setting})"
        )
    return f"{name}: too large to decode ({exc})"


@contextlib.contextmanager
def _open_image(
    data: bytes | bytearray | memoryview, name: str, budget: ImageBudget | None = None
) -> Iterator[Image.Image]:
    """The image in ``data``, opened lazily (header read, checked against ``budget``, no pixel decoded yet).

    Every Pillow failure, in opening or in whatever the ``with`` body decodes, becomes an ``ImageError`` naming
    ``name``.
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
            if budget is not None:
                budget.check_image(name, *img.size)
            # The first frame, like decode_image(expand_animations=False). A GIF's size is known at open: Pillow
            # reads the first frame's descriptor then (and grows the size to fit it).
            img.seek(0)
            yield img
    except ImageError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageError(
            f"{name}: not a decodable image ({len(data)} bytes starting {bytes(data[:8])!r}); "
            "expected a JPEG, PNG, BMP or GIF image"
        ) from exc
    except Image.DecompressionBombError as exc:
        raise ImageError(_bomb_message(name, exc, budget)) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{name}: corrupt or truncated image ({exc})") from exc


def probe_image(
    data: bytes | bytearray | memoryview, *, name: str = "image bytes", budget: ImageBudget | None = None
) -> ImageHeader:
    """Format and size from an image's header, without decoding it: check a request's budget before decoding any.

    ::

        head = probe_image(data, name="image_bytes[0]")   # ImageHeader(format='JPEG', width=6000, height=6000)
        budget.check_request([("image_bytes[0]", head.width, head.height), ...], name="image_bytes")

    Raises ``ImageError`` for what ``decode_image`` would refuse from the header alone: empty, unknown or
    unsupported data, an image over ``budget``'s per-image limit, a header past Pillow's decompression-bomb limit
    (worded as ``budget``'s refusal when given). A corrupt body is only found by decoding.
    """
    with _open_image(data, name, budget) as img:
        return ImageHeader(str(img.format), img.size[0], img.size[1])


def decode_image(
    data: bytes | bytearray | memoryview, *, name: str = "image bytes", budget: ImageBudget | None = None
) -> np.ndarray:
    """Decode JPEG/PNG/BMP/GIF bytes into a uint8 RGB array (H, W, 3); the first frame of an animation.

    Raises ``ImageError`` naming ``name`` for empty, truncated, unknown or unsupported data, and for an image
    over ``budget`` (checked from the header, before decoding). To feed a model, ``preprocess`` is cheaper: it
    converts only the pixels the resize reads.
    """
    with _open_image(data, name, budget) as img:
        return to_rgb_array(img)


#: Modes holding 16-bit (or wider) greys, which TF's ``decode_png(dtype=uint8)`` narrows to their high byte.
_WIDE_GREY_MODES = ("I;16", "I;16B", "I;16L", "I")
#: At most this many pixels are converted to RGB at once when only some rows are needed (a band of rows).
_BAND_PIXELS = 1 << 20


def _wide_grey_shift(img: Image.Image) -> bool:
    # Whether 16-bit greys keep their high byte: TF does when any value is over 255 anywhere in the image, so
    # this scans the whole image (in bands, never a full-size copy) even when only some rows are used.
    return any(
        int(np.asarray(img.crop((0, y0, img.size[0], y1)), dtype=np.uint32).max(initial=0)) > 255
        for y0, y1 in _bands(np.arange(img.size[1]), img.size[0])
    )


def _rgb_pixels(img: Image.Image, wide_grey_shift: bool | None = None) -> np.ndarray:
    # The conversion every path shares; per pixel, so converting a crop gives the crop of the converted image
    # (``wide_grey_shift`` carries the one whole-image decision, for 16-bit greys).
    if img.mode in _WIDE_GREY_MODES:
        arr16 = np.asarray(img, dtype=np.uint32)
        if wide_grey_shift is None:
            wide_grey_shift = bool(arr16.max(initial=0) > 255)
        grey = (arr16 >> 8).astype(np.uint8) if wide_grey_shift else arr16.astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=-1)
    if img.mode != "RGB":
        img = img.convert("RGB")
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim != 3 or arr.shape[2] != 3:  # pragma: no cover - PIL guarantees this after convert
        raise ImageError(f"decoded image has shape {arr.shape}, expected (H, W, 3)")
    return arr


def to_rgb_array(img: Image.Image) -> np.ndarray:
    """Convert a PIL image to a uint8 RGB array, the way TF's ``decode_image(channels=3)`` does."""
    return _rgb_pixels(img)


def _bands(rows: np.ndarray, width: int) -> Iterator[tuple[int, int]]:
    """Sorted unique row indices -> (y0, y1) bands of consecutive rows, each at most ``_BAND_PIXELS`` pixels."""
    most = max(1, _BAND_PIXELS // max(1, width))
    start = 0
    for i in range(1, len(rows) + 1):
        if i == len(rows) or rows[i] != rows[i - 1] + 1 or i - start == most:
            yield int(rows[start]), int(rows[i - 1]) + 1
            start = i


def _rgb_subset(img: Image.Image, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """uint8 RGB pixels at ``rows`` x ``cols`` (sorted, unique) of a loaded image: (len(rows), len(cols), 3).

    Band by band, so no full-size array is made: each band of rows is cropped, converted and cut to ``cols``.
    """
    shift = _wide_grey_shift(img) if img.mode in _WIDE_GREY_MODES else None
    out = np.empty((len(rows), len(cols), 3), dtype=np.uint8)
    done = 0
    for y0, y1 in _bands(rows, img.size[0]):
        out[done : done + y1 - y0] = _rgb_pixels(img.crop((0, y0, img.size[0], y1)), shift).take(cols, axis=1)
        done += y1 - y0
    return out


def _resize_pil(img: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """``resize_bilinear(to_rgb_array(img), size)``, bit for bit, converting only the pixels the kernel reads."""
    img.load()  # decodes (the one full-size buffer) and settles the mode
    width, height = img.size
    ylo, yhi, ylerp = _interpolation_weights(height, size[0])
    xlo, xhi, xlerp = _interpolation_weights(width, size[1])
    if width * height <= _BAND_PIXELS:
        # A photo-sized image converts whole in one step, cheaper than cutting out the rows and columns read.
        return _bilinear(_rgb_pixels(img), ylo, yhi, ylerp, xlo, xhi, xlerp)
    rows = np.unique(np.concatenate([ylo, yhi]))
    cols = np.unique(np.concatenate([xlo, xhi]))
    sub = _rgb_subset(img, rows, cols)
    # The same kernel on the subset, its indices renumbered into it: the very same pixels and weights.
    return _bilinear(
        sub,
        np.searchsorted(rows, ylo),
        np.searchsorted(rows, yhi),
        ylerp,
        np.searchsorted(cols, xlo),
        np.searchsorted(cols, xhi),
        xlerp,
    )


def _interpolation_weights(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # TensorFlow's bilinear kernel with half_pixel_centers=True, computed in float32 as TF does.
    scale = np.float32(in_size) / np.float32(out_size)
    src = (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    floor = np.floor(src)
    lower = np.maximum(floor.astype(np.int64), 0)
    upper = np.minimum(np.ceil(src).astype(np.int64), in_size - 1)
    lerp = (src - floor).astype(np.float32)
    return lower, upper, lerp


def _bilinear(
    image: np.ndarray,
    ylo: np.ndarray,
    yhi: np.ndarray,
    ylerp: np.ndarray,
    xlo: np.ndarray,
    xhi: np.ndarray,
    xlerp: np.ndarray,
) -> np.ndarray:
    # TF's order of float32 operations, kept exactly so results are bit-identical:
    #   top = tl + (tr - tl) * xlerp;  bottom = bl + (br - bl) * xlerp;  out = top + (bottom - top) * ylerp.
    # ``top`` and ``bottom`` are the same horizontal interpolation of two input rows, so it is computed once per
    # input row (``across``) and then gathered by ``ylo``/``yhi``: half the work of interpolating both corner
    # pairs per output row, and only the gathered columns are ever converted to float32 (never the whole input).
    # np.take along one axis at a time copies whole rows, then picks columns (faster than two broadcast index
    # arrays: `python benchmarks/micro.py resize`); the in-place operations round exactly as the expressions above do.
    across = image.take(xhi, axis=1).astype(np.float32)
    left = image.take(xlo, axis=1).astype(np.float32)
    across -= left
    across *= xlerp[None, :, None]
    across += left
    top = across.take(ylo, axis=0)
    bottom = across.take(yhi, axis=0)
    bottom -= top
    bottom *= ylerp[:, None, None]
    bottom += top
    return bottom


def resize_bilinear(image: np.ndarray, size: Size) -> np.ndarray:
    """Resize an (H, W, C) array to ``size`` exactly like ``tf.image.resize(..., "bilinear")``; returns float32."""
    h, w = _as_size(size)
    if image.ndim != 3:
        raise ValueError(f"expected an (H, W, C) image, got shape {image.shape}")
    ylo, yhi, ylerp = _interpolation_weights(image.shape[0], h)
    xlo, xhi, xlerp = _interpolation_weights(image.shape[1], w)
    return _bilinear(image, ylo, yhi, ylerp, xlo, xhi, xlerp)


#: Resize kernels by ``InputSpec.resize`` name: exactly the names ``manifest.SUPPORTED_INPUT`` allows.
RESIZE_METHODS: dict[str, Callable[[np.ndarray, Size], np.ndarray]] = {"bilinear": resize_bilinear}


def load_rgb(src: ImageSource, *, name: str | None = None, budget: ImageBudget | None = None) -> np.ndarray:
    """Any image source -> uint8 (or float, for float arrays) RGB array (H, W, 3), not resized.

    ``budget`` applies to encoded sources (bytes, paths): they are refused from their header when over it.
    """
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
        _first_frame(src)
        return to_rgb_array(src)
    if isinstance(src, (bytes, bytearray, memoryview)):
        return decode_image(src, name=name or "image bytes", budget=budget)
    if isinstance(src, (str, os.PathLike)):
        return decode_image(read_bytes(src), name=name or os.fspath(src), budget=budget)
    raise ImageError(
        f"cannot use {type(src).__name__} as an image; expected a path, bytes, a PIL image or a numpy array"
    )


def _first_frame(img: Image.Image) -> None:
    if getattr(img, "n_frames", 1) > 1:
        img.seek(0)  # the first frame, like decode_image(expand_animations=False)


def preprocess(
    src: ImageSource, size: Size, *, name: str | None = None, budget: ImageBudget | None = None
) -> np.ndarray:
    """One image source -> float32 (H, W, 3) in 0..255 at the model's size: the whole contract in one call.

    ``size`` is (height, width), or the manifest's ``InputSpec`` (its size and ``resize`` kernel)::

        preprocess("rose.jpg", manifest.input)      # float32 (180, 180, 3)
        preprocess(data, manifest.input, name="image_bytes[0]", budget=ImageBudget(max_pixels=4096 * 4096))

    Encoded images (bytes, paths) over ``budget`` are refused from their header (``ImageError``). Beyond the
    decoder's own buffer, only the rows and columns the bilinear kernel reads are converted to RGB and float.
    """
    target = _as_size(size)
    # A plain (h, w) means the contract's default kernel; an InputSpec was validated against RESIZE_METHODS' names.
    resize = RESIZE_METHODS[getattr(size, "resize", "bilinear")]
    if resize is resize_bilinear:
        if isinstance(src, Image.Image):
            _first_frame(src)
            return _resize_pil(src, target)
        if isinstance(src, (str, os.PathLike)):
            name = name or str(os.fspath(src))
            src = read_bytes(src)
        if isinstance(src, (bytes, bytearray, memoryview)):
            with _open_image(src, name or "image bytes", budget) as img:
                return _resize_pil(img, target)
    arr = load_rgb(src, name=name, budget=budget)
    if arr.shape[:2] == target and arr.dtype == np.float32:
        return arr  # already a model-ready tensor: leave it untouched
    return resize(arr, target)


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
