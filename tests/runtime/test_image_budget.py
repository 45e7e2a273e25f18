"""``Runner.image_budget``: a request's encoded images are checked from their headers before any is decoded.

A fake runner (no model: ``_forward`` returns uniform probabilities) is enough, since decoding lives in the base
class every format shares; the real-model equivalence of the bytes and float paths is in test_runtime_runners.py.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from deepclf.errors import InvalidInputError
from deepclf.manifest import InputSpec, Manifest
from deepclf.preprocessing import ImageBudget, preprocess, preprocess_batch
from deepclf.runtime.base import EXAMPLE_IMAGE_FEATURE, EXAMPLE_INPUT, SIGNATURE_EXAMPLE, Runner

BUDGET = ImageBudget(
    max_pixels=16777216,
    max_total_pixels=30_000,
    owner="this server's",
    max_pixels_setting="--max_image_pixels",
    max_total_pixels_setting="--max_request_pixels",
)


class FakeRunner(Runner):
    def __init__(self) -> None:
        super().__init__(Manifest(labels=["a", "b"], input=InputSpec(height=12, width=10)), ".", "fake")

    def _forward(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(images)
        return np.full((n, 2), 0.5, np.float32), np.zeros(n, np.int64)


def png(width: int, height: int, seed: int = 0) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A 60-byte PNG declaring ``width`` x ``height`` pixels: decoding it would allocate them all."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


def example(image: bytes) -> bytes:
    """A serialized tf.Example with one ``image/encoded`` bytes feature (protobuf wire format by hand)."""

    def field(number: int, body: bytes) -> bytes:
        out, n = bytearray([number << 3 | 2]), len(body)
        while n >= 0x80:
            out.append(n & 0x7F | 0x80)
            n >>= 7
        out.append(n)
        return bytes(out) + body

    feature = field(1, field(1, image))  # Feature.bytes_list.value
    entry = field(1, EXAMPLE_IMAGE_FEATURE.encode()) + field(2, feature)
    return field(1, field(1, entry))  # Example.features.feature[key]


@pytest.fixture
def decoded(monkeypatch) -> list[str]:
    """The names of the images the runner decoded, in order."""
    calls: list[str] = []

    def counting(src, size, *, name=None, budget=None):
        calls.append(name)
        return preprocess(src, size, name=name, budget=budget)

    monkeypatch.setattr("deepclf.runtime.base.preprocess", counting)
    return calls


def run_bytes(runner: Runner, images: list[bytes]) -> dict[str, np.ndarray]:
    return runner.run({"image_bytes": np.array(images, dtype=object)}, "predict_image_bytes")


def test_no_budget_by_default_and_same_pixels_with_one() -> None:
    assert Runner.image_budget is None and FakeRunner().image_budget is None
    images = [png(40, 30, 1), png(7, 90, 2)]
    want = preprocess_batch(images, (12, 10))
    for budget in (None, BUDGET):
        r = FakeRunner()
        r.image_budget = budget
        got = r._decode_bytes(np.array(images, dtype=object))
        assert got.dtype == np.float32 and got.shape == (2, 12, 10, 3)
        assert np.array_equal(got, want)
        assert r._decode_bytes(np.array([], dtype=object)).shape == (0, 12, 10, 3)


def test_an_image_over_budget_refuses_the_request_before_decoding_any(decoded) -> None:
    r = FakeRunner()
    r.image_budget = BUDGET
    with pytest.raises(InvalidInputError) as exc:
        run_bytes(r, [png(10, 10), png(10, 10), png_header_only(6000, 6000)])
    assert str(exc.value) == (
        "image_bytes[2]: 6000x6000 pixels (36.0 MP) is over this server's limit of 16777216 pixels per image "
        "(--max_image_pixels)"
    )
    assert decoded == []  # not even the two good images before it


def test_the_request_total_is_checked_before_decoding_any(decoded) -> None:
    r = FakeRunner()
    r.image_budget = BUDGET
    with pytest.raises(InvalidInputError) as exc:
        run_bytes(r, [png(100, 100, i) for i in range(4)])
    assert str(exc.value) == (
        "image_bytes: 4 images of 40000 pixels in all (0.0 MP) are over this server's limit of 30000 pixels per "
        "request (--max_request_pixels)"
    )
    assert decoded == []
    out = run_bytes(r, [png(100, 100, i) for i in range(3)])  # 30000: exactly the limit
    assert out["probabilities"].shape == (3, 2)
    assert decoded == [f"image_bytes[{i}]" for i in range(3)]


def test_bad_headers_are_found_before_decoding_and_bodies_while_decoding(decoded) -> None:
    r = FakeRunner()
    r.image_budget = BUDGET
    with pytest.raises(InvalidInputError, match=r"^image_bytes\[1\]: not a decodable image"):
        run_bytes(r, [png(10, 10), b"nonsense"])
    assert decoded == []
    good = png(10, 10)
    with pytest.raises(InvalidInputError, match=r"^image_bytes\[1\]: corrupt or truncated"):
        run_bytes(r, [good, good[: len(good) // 2]])
    with pytest.raises(InvalidInputError, match=r"^image_bytes\[0\] must be encoded image bytes, got int"):
        run_bytes(r, [3, good])  # type: ignore[list-item]


def test_pillow_bomb_refusal_is_worded_as_the_budget(decoded) -> None:
    r = FakeRunner()
    r.image_budget = BUDGET
    with pytest.raises(
        InvalidInputError, match=r"^image_bytes\[0\]: 400000000 pixels \(400.0 MP\) is over this server"
    ):
        run_bytes(r, [png_header_only(20000, 20000)])
    r.image_budget = None
    with pytest.raises(InvalidInputError, match=r"^image_bytes\[0\]: too large to decode"):
        run_bytes(r, [png_header_only(20000, 20000)])


def test_examples_are_checked_too(decoded) -> None:
    r = FakeRunner()
    r.image_budget = BUDGET
    out = r.run({EXAMPLE_INPUT: np.array([example(png(20, 20))], dtype=object)}, SIGNATURE_EXAMPLE)
    assert len(out["classes"]) == 1 and decoded == ["image_bytes[0]"]
    with pytest.raises(InvalidInputError, match=r"^image_bytes\[1\]: 6000x6000 pixels"):
        r.run(
            {EXAMPLE_INPUT: np.array([example(png(20, 20)), example(png_header_only(6000, 6000))], dtype=object)},
            SIGNATURE_EXAMPLE,
        )
    assert decoded == ["image_bytes[0]"]
