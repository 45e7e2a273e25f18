"""The image contract: numpy/Pillow preprocessing and its TensorFlow twin agree on real photos.

Stated bound: on real JPEGs (and on generated JPEGs, PNG/BMP/GIF) the two paths give IDENTICAL float32 tensors
(max abs diff 0.0): both decode JPEGs with libjpeg's accurate integer DCT and both resize with TF's half-pixel
bilinear kernel. The real-photo tests need the shared data (camera JPEGs of many sizes); the generated ones run
anywhere.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deepclf.errors import ImageError
from deepclf.preprocessing import (
    decode_image,
    encode_image,
    load_rgb,
    preprocess,
    preprocess_batch,
    resize_bilinear,
    top_k,
)

tf = pytest.importorskip("tensorflow")
from deepclf.preprocessing_tf import decode_and_resize, decode_and_resize_batch

PARITY_BOUND = 0.0  # max |numpy - tf| over all pixels, in 0..255 units


def test_parity_on_real_jpegs(mini_photos: Path) -> None:
    files = sorted(mini_photos.glob("*/*.jpg"))
    assert len(files) == 200
    worst = 0.0
    for f in files:
        ours = preprocess(f, (180, 180))
        theirs = decode_and_resize(tf.io.read_file(str(f)), 180, 180).numpy()
        assert ours.dtype == np.float32 and ours.shape == (180, 180, 3)
        worst = max(worst, float(np.abs(ours - theirs).max()))
    assert worst <= PARITY_BOUND


@pytest.mark.parametrize("size", [(180, 180), (64, 64), (200, 300)])  # down, further down, up
def test_parity_on_generated_jpegs(gen_photos: Path, size: tuple[int, int]) -> None:
    files = sorted(gen_photos.glob("*/*.jpg"))[::5]  # 40 files, every class
    assert len(files) == 40
    for f in files:
        raw = f.read_bytes()
        np.testing.assert_array_equal(
            preprocess(raw, size), decode_and_resize(tf.constant(raw), *size).numpy(), err_msg=str(f)
        )


def test_parity_on_full_size_jpegs(full_photos: Path) -> None:
    files = sorted(full_photos.glob("*/*.jpg"))[::60]  # originals up to 1024 px wide, every class
    for f in files:
        raw = f.read_bytes()
        ours = preprocess(raw, (180, 180))
        theirs = decode_and_resize(tf.constant(raw), 180, 180).numpy()
        np.testing.assert_array_equal(ours, theirs, err_msg=str(f))


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "GIF"])
def test_parity_on_other_formats(fmt: str) -> None:
    rng = np.random.default_rng(1)
    arr = rng.integers(0, 256, (97, 131, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    raw = buf.getvalue()
    ours = preprocess(raw, (64, 80))
    theirs = decode_and_resize(tf.constant(raw), 64, 80).numpy()
    np.testing.assert_array_equal(ours, theirs)


def test_batch_twin_matches() -> None:
    imgs = [encode_image(np.full((30 + i, 40, 3), 20 * i, np.uint8)) for i in range(3)]
    ours = preprocess_batch(imgs, (16, 16))
    theirs = decode_and_resize_batch(tf.constant(imgs), 16, 16).numpy()
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("shape,size", [((5, 7, 3), (13, 3)), ((180, 180, 3), (180, 180)), ((333, 500, 3), (180, 180))])
def test_resize_matches_tf_image_resize(shape, size) -> None:
    arr = np.random.default_rng(0).integers(0, 256, shape).astype(np.uint8)
    np.testing.assert_allclose(resize_bilinear(arr, size), tf.image.resize(arr, size).numpy(), atol=1e-4)


def test_modes_become_rgb() -> None:
    grey = Image.fromarray(np.arange(256, dtype=np.uint8).reshape(16, 16), "L")
    rgba = Image.fromarray(np.full((8, 8, 4), 200, np.uint8), "RGBA")
    assert load_rgb(grey).shape == (16, 16, 3)
    assert np.array_equal(load_rgb(grey)[..., 0], load_rgb(grey)[..., 2])
    assert load_rgb(rgba).shape == (8, 8, 3)


def test_gif_first_frame() -> None:
    frames = [Image.new("RGB", (10, 10), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    arr = decode_image(buf.getvalue())
    assert arr[0, 0, 0] > 200 and arr[0, 0, 2] < 50


@pytest.mark.parametrize(
    "data,needle",
    [
        (b"", "empty"),
        (b"not an image at all", "not a decodable image"),
        (b"\xff\xd8\xff\xe0" + b"\0" * 20, "upload: not a decodable image"),
    ],
)
def test_bad_bytes_raise_clear_errors(data: bytes, needle: str) -> None:
    with pytest.raises(ImageError, match=needle):
        decode_image(data, name="upload")


def test_truncated_jpeg_is_an_error(gen_photos: Path) -> None:
    raw = next(iter(sorted(gen_photos.glob("*/*.jpg")))).read_bytes()
    with pytest.raises(ImageError, match="corrupt or truncated"):
        decode_image(raw[: len(raw) // 2])


def test_missing_file_and_bad_type() -> None:
    with pytest.raises(ImageError, match="not found"):
        preprocess("/nonexistent/rose.jpg", (8, 8))
    with pytest.raises(ImageError, match="cannot use int"):
        preprocess(42, (8, 8))  # type: ignore[arg-type]


def test_encode_is_lossless_for_arrays() -> None:
    arr = np.random.default_rng(2).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    assert np.array_equal(decode_image(encode_image(arr)), arr)
    with pytest.raises(ImageError, match="non-integer"):
        encode_image(arr.astype(np.float32) + 0.5)


def test_top_k_orders_and_breaks_ties_by_index() -> None:
    res = top_k(np.array([[0.1, 0.4, 0.4, 0.1]]), ["a", "b", "c", "d"], k=3)
    assert [(lbl, i) for lbl, i, _ in res[0]] == [("b", 1), ("c", 2), ("a", 0)]
