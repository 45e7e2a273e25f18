"""The image contract's memory bounds: same pixels as before, fewer bytes, and pixel budgets read from headers.

``preprocess`` gathers only the rows and columns the bilinear kernel reads and converts only those to RGB and
float32; these tests hold it bit for bit (``np.array_equal``) to the historical whole-image implementation, kept
here in a few lines, for every mode the decoders produce. ``ImageBudget`` refuses images from their header, so a
tiny file declaring a huge size is never decoded. TF-free (the TF parity tests are in test_preprocessing.py).
"""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from deepclf import preprocessing
from deepclf.errors import ImageError
from deepclf.manifest import InputSpec
from deepclf.preprocessing import (
    ImageBudget,
    ImageHeader,
    decode_image,
    preprocess,
    probe_image,
    resize_bilinear,
    to_rgb_array,
)

# -- the historical implementation (before the memory work), the reference for bit-identical output ------------


def ref_rgb(img: Image.Image) -> np.ndarray:
    """The old ``to_rgb_array``: the whole image, converted as a whole."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr16 = np.asarray(img, dtype=np.uint32)
        grey = (arr16 >> 8).astype(np.uint8) if arr16.max(initial=0) > 255 else arr16.astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=-1)
    return np.asarray(img if img.mode == "RGB" else img.convert("RGB"), dtype=np.uint8)


def ref_resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The old ``resize_bilinear``: the whole image to float32 first, then the gathers."""
    img = image.astype(np.float32, copy=False)
    ylo, yhi, ylerp = preprocessing._interpolation_weights(img.shape[0], size[0])
    xlo, xhi, xlerp = preprocessing._interpolation_weights(img.shape[1], size[1])
    top_rows, bottom_rows = img[ylo], img[yhi]
    xl = xlerp[None, :, None]
    top = top_rows[:, xlo] + (top_rows[:, xhi] - top_rows[:, xlo]) * xl
    bottom = bottom_rows[:, xlo] + (bottom_rows[:, xhi] - bottom_rows[:, xlo]) * xl
    return (top + (bottom - top) * ylerp[:, None, None]).astype(np.float32, copy=False)


def ref_preprocess(data: bytes, size: tuple[int, int]) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        img.seek(0)
        return ref_resize(ref_rgb(img), size)


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


SIZES = [(180, 180), (13, 7), (64, 200), (97, 61), (300, 310), (1, 1)]  # down, odd, mixed, up, a single pixel


# -- resize_bilinear: gathers first, same float32 arithmetic ------------------------------------------------------


@pytest.mark.parametrize("shape", [(97, 131, 3), (5, 7, 3), (180, 180, 3), (333, 500, 1), (1, 9, 4)])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_resize_is_bit_identical_to_the_whole_image_formula(shape, dtype) -> None:
    rng = np.random.default_rng(sum(shape))
    # Floats get fractions (the float path), integers whole values (uint16 above 255 too).
    img = (rng.random(shape) * 255 if np.dtype(dtype).kind == "f" else rng.integers(0, 1000, shape)).astype(dtype)
    for size in [*SIZES, shape[:2]]:
        out = resize_bilinear(img, size)
        assert out.dtype == np.float32 and out.shape == (*size, shape[2])
        assert np.array_equal(out, ref_resize(img, size)), (shape, dtype, size)


# -- decoding only the needed rows and columns, for every mode -----------------------------------------------------


def _images() -> dict[str, bytes]:
    rng = np.random.default_rng(7)
    rgb = rng.integers(0, 256, (211, 157, 3), dtype=np.uint8)
    grey = rng.integers(0, 256, (211, 157), dtype=np.uint8)
    alpha = rng.integers(0, 256, (211, 157), dtype=np.uint8)
    out = {
        "jpeg-rgb": encode(Image.fromarray(rgb), "JPEG", quality=90),
        "jpeg-L": encode(Image.fromarray(grey, "L"), "JPEG"),
        "jpeg-cmyk": encode(Image.fromarray(rng.integers(0, 256, (211, 157, 4), dtype=np.uint8), "CMYK"), "JPEG"),
        "png-rgb": encode(Image.fromarray(rgb), "PNG"),
        "png-rgba": encode(Image.fromarray(np.dstack([rgb, alpha]), "RGBA"), "PNG"),
        "png-L": encode(Image.fromarray(grey, "L"), "PNG"),
        "png-LA": encode(Image.fromarray(np.dstack([grey, alpha]), "LA"), "PNG"),
        "png-1": encode(Image.fromarray(grey > 127), "PNG"),
        "bmp-rgb": encode(Image.fromarray(rgb), "BMP"),
        "bmp-1": encode(Image.fromarray(grey > 100), "BMP"),
        "gif": encode(Image.fromarray(rgb), "GIF"),
    }
    pal = Image.fromarray(rgb).quantize(64)
    out["png-P"] = encode(pal, "PNG")
    out["bmp-P"] = encode(pal, "BMP")
    out["png-P-trns-index"] = encode(pal, "PNG", transparency=5)  # one transparent palette entry (an int)
    out["png-P-trns-bytes"] = encode(pal, "PNG", transparency=bytes(range(0, 256, 4)))  # per-entry alphas
    out["gif-trns"] = encode(pal, "GIF", transparency=3)
    frames = [Image.fromarray(rgb), Image.fromarray(255 - rgb)]
    out["gif-animated"] = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    # 16-bit greys: whether TF keeps the high byte depends on the WHOLE image's maximum, so put values over 255
    # in one row only, which a small resize does not read: the decision must still see it.
    wide = rng.integers(0, 200, (211, 157)).astype(np.uint16)
    wide[100, 3] = 40000
    out["png-I16-one-bright-row"] = encode(Image.fromarray(wide), "PNG")
    out["png-I16-dark"] = encode(Image.fromarray(rng.integers(0, 256, (211, 157)).astype(np.uint16)), "PNG")
    out["png-I16-bright"] = encode(Image.fromarray(rng.integers(0, 65536, (211, 157)).astype(np.uint16)), "PNG")
    return out


IMAGES = _images()


@pytest.mark.parametrize("key", sorted(IMAGES))
def test_preprocess_is_bit_identical_for_every_mode(key: str) -> None:
    data = IMAGES[key]
    with Image.open(io.BytesIO(data)) as img:
        mode = img.mode
    for size in SIZES:
        ours = preprocess(data, size)
        assert ours.dtype == np.float32 and ours.shape == (*size, 3)
        assert np.array_equal(ours, ref_preprocess(data, size)), (key, mode, size)
    assert np.array_equal(decode_image(data), np.asarray(ref_rgb(Image.open(io.BytesIO(data)))))


def test_the_sixteen_bit_decision_sees_rows_the_resize_skips() -> None:
    data = IMAGES["png-I16-one-bright-row"]
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    # (4, 4) from 211 rows reads rows near 26, 79, 131, 184: not row 100, which alone holds a value over 255.
    rows = np.unique(np.concatenate(preprocessing._interpolation_weights(211, 4)[:2]))
    assert 100 not in rows
    assert np.array_equal(preprocess(data, (4, 4)), ref_preprocess(data, (4, 4)))


@pytest.mark.parametrize("mode", ["RGB", "P", "L", "LA", "RGBA", "1", "CMYK", "I;16", "I;16B", "I;16L", "I"])
def test_pil_sources_are_bit_identical(mode: str) -> None:
    rng = np.random.default_rng(3)
    base = Image.fromarray(rng.integers(0, 256, (77, 59, 3), dtype=np.uint8))
    if mode in ("I;16B", "I;16L"):
        values = rng.integers(0, 4096, (77, 59)).astype(">u2" if mode.endswith("B") else "<u2")
        img = Image.frombytes(mode, (59, 77), values.tobytes())
    elif mode == "I":
        img = Image.fromarray(rng.integers(0, 70000, (77, 59)).astype(np.int32))
    elif mode == "I;16":
        img = Image.fromarray(rng.integers(0, 70, (77, 59)).astype(np.uint16))
    elif mode == "P":
        img = base.quantize(32)
    else:
        img = base.convert(mode)
    assert img.mode == mode
    for size in SIZES:
        assert np.array_equal(preprocess(img, size), ref_resize(ref_rgb(img), size)), (mode, size)
    assert np.array_equal(to_rgb_array(img), ref_rgb(img))


def test_bands_split_long_runs(monkeypatch) -> None:
    # Upscaling reads every row: with a small band limit the rows come in many bands, and pixels stay the same.
    monkeypatch.setattr(preprocessing, "_BAND_PIXELS", 500)
    for key in ("png-rgb", "png-P-trns-bytes", "png-I16-one-bright-row", "jpeg-cmyk"):
        for size in ((300, 310), (50, 40)):
            assert np.array_equal(preprocess(IMAGES[key], size), ref_preprocess(IMAGES[key], size)), (key, size)
    assert list(preprocessing._bands(np.array([0, 1, 2, 5, 6, 9]), 200)) == [(0, 2), (2, 3), (5, 7), (9, 10)]


def test_input_spec_and_paths_take_the_same_path(tmp_path: Path) -> None:
    f = tmp_path / "x.png"
    f.write_bytes(IMAGES["png-rgba"])
    spec = InputSpec(height=31, width=17)
    assert np.array_equal(preprocess(f, spec), ref_preprocess(IMAGES["png-rgba"], (31, 17)))
    assert np.array_equal(preprocess(str(f), (31, 17)), preprocess(IMAGES["png-rgba"], spec))


def test_peak_memory_is_the_decoder_buffer(tmp_path: Path) -> None:
    """A 5000 x 5000 JPEG: the decode buffer (W * H * 4 bytes, 95 MiB) and little else (was about 3.8x that)."""
    side = 5000
    f = tmp_path / "big.jpg"
    small = np.random.default_rng(0).integers(0, 256, (50, 50, 3), dtype=np.uint8)
    Image.fromarray(small).resize((side, side), Image.Resampling.BILINEAR).save(f, quality=85)
    script = textwrap.dedent(
        f"""
        import resource, sys
        from deepclf.preprocessing import preprocess
        data = open({str(f)!r}, "rb").read()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        preprocess(data, (180, 180))
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
        """
    )
    grown_kib = int(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout)
    decoder_kib = side * side * 4 // 1024
    assert grown_kib < decoder_kib * 1.25, (
        f"peak RSS grew {grown_kib // 1024} MiB; decoder buffer {decoder_kib // 1024}"
    )


# -- budgets, from the header --------------------------------------------------------------------------------------


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG declaring ``width`` x ``height`` RGB pixels, with one byte of image data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


def gif_header_only(width: int, height: int) -> bytes:
    """A tiny GIF whose screen and first frame declare ``width`` x ``height``, with almost no image data."""
    screen = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff"
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x44\x01\x00"
    return screen + frame + b"\x3b"


SERVER = ImageBudget(
    max_pixels=16777216,
    max_total_pixels=40_000_000,
    owner="this server's",
    max_pixels_setting="--max_image_pixels",
    max_total_pixels_setting="--max_request_pixels",
)


def test_budget_messages_name_the_image_size_limit_and_setting() -> None:
    with pytest.raises(ImageError) as exc:
        SERVER.check_image("image_bytes[2]", 6000, 6000)
    assert str(exc.value) == (
        "image_bytes[2]: 6000x6000 pixels (36.0 MP) is over this server's limit of 16777216 pixels per image "
        "(--max_image_pixels)"
    )
    SERVER.check_image("x", 4096, 4096)  # exactly the limit is fine
    with pytest.raises(ImageError) as exc:
        SERVER.check_request([(f"image_bytes[{i}]", 4000, 4000) for i in range(3)], name="image_bytes")
    assert str(exc.value) == (
        "image_bytes: 3 images of 48000000 pixels in all (48.0 MP) are over this server's limit of 40000000 "
        "pixels per request (--max_request_pixels)"
    )
    with pytest.raises(ImageError, match=r"over the limit of 10 pixels per image \(max_pixels\)"):
        ImageBudget(max_pixels=10).check_image("a", 4, 3)
    ImageBudget().check_request([("a", 100000, 100000)])  # no limits
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="positive integer or None"):
            ImageBudget(max_pixels=bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="positive integer or None"):
            ImageBudget(max_total_pixels=bad)  # type: ignore[arg-type]


def test_probe_reads_the_header_only(monkeypatch) -> None:
    def no_decoding(self):  # pragma: no cover - failing here is the test failing
        raise AssertionError("decoded pixels while probing")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    assert probe_image(IMAGES["jpeg-rgb"]) == ImageHeader("JPEG", 157, 211)
    assert probe_image(png_header_only(12000, 12000)).size == (12000, 12000)  # 144 MP: Pillow only warns
    assert probe_image(gif_header_only(13000, 13000)).pixels == 13000 * 13000
    with pytest.raises(ImageError, match=r"^x: 12000x12000 pixels \(144.0 MP\) is over this server's limit"):
        probe_image(png_header_only(12000, 12000), name="x", budget=SERVER)
    with pytest.raises(ImageError, match="upload: not a decodable image"):
        probe_image(b"nonsense", name="upload")
    with pytest.raises(ImageError, match="empty"):
        probe_image(b"")


@pytest.mark.parametrize(
    "data,size",
    [(png_header_only(20000, 5000), "20000x5000"), (gif_header_only(9000, 9000), "9000x9000")],
    ids=["png", "gif"],
)
def test_huge_declared_sizes_are_refused_before_decoding(monkeypatch, data: bytes, size: str) -> None:
    def no_decoding(self):  # pragma: no cover - failing here is the test failing
        raise AssertionError("decoded an image over budget")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    assert len(data) < 100
    for call in (preprocess, lambda d, s, **kw: decode_image(d, **kw)):
        with pytest.raises(ImageError, match=f"^img: {size} pixels .* over this server's limit"):
            call(data, (180, 180), name="img", budget=SERVER)


def test_pillow_bomb_error_is_an_image_error() -> None:
    # Over twice Pillow's MAX_IMAGE_PIXELS (179 MP), Pillow itself refuses the header.
    bomb = png_header_only(20000, 20000)
    with pytest.raises(ImageError, match=r"^x: 400000000 pixels \(400.0 MP\) is over this server's limit"):
        preprocess(bomb, (8, 8), name="x", budget=SERVER)
    with pytest.raises(ImageError, match=r"^x: too large to decode"):
        preprocess(bomb, (8, 8), name="x")
    with pytest.raises(ImageError, match="too large to decode"):
        probe_image(bomb)
    with pytest.raises(ImageError, match=r"^x: 400000000 pixels \(400.0 MP\) is over this server's limit"):
        probe_image(bomb, name="x", budget=SERVER)


def test_bomb_warning_is_not_printed() -> None:
    """Pillow's DecompressionBombWarning (over 89 MP) would print one stderr line per distinct size."""
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent.parent)!r})
        from tests.test_preprocessing_budget import png_header_only
        from deepclf.errors import ImageError
        from deepclf.preprocessing import ImageBudget, preprocess, probe_image
        for side in (9500, 9600, 9700):
            probe_image(png_header_only(side, side))
            try:
                preprocess(png_header_only(side, side), (8, 8), budget=ImageBudget(max_pixels=2**24))
            except ImageError as exc:
                print(exc)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stderr == ""
    assert done.stdout.count("is over the limit of 16777216 pixels per image") == 3
