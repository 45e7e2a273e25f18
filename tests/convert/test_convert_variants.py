"""Each TFLite variant, run by the TF-free LiteRT runtime, against the Keras model on its 40 validation images.

The model and images are the session's generated photos (tests/conftest.py ``gen_photos``), so this runs anywhere.
Tolerances (max absolute probability difference / minimum top-1 agreement, 40 images), with what was measured on
the generated photos (5 epochs) and, before, on the real mini photos (10 epochs):

* fp32    1e-4 / 1.00  same float graph, XNNPACK's summation order is the only difference (measured 1e-6);
* fp16    5e-3 / 0.95  weights rounded to 11 significant bits (measured 3.5e-4; real photos 6e-4);
* dynamic 3e-2 / 0.90  int8 weights + on-the-fly int8 activations (measured 1.5e-3; real photos 5e-3);
* int8    6e-2 / 0.90  int8 everywhere, probabilities in 1/256 steps (measured 1.6e-2; real photos 1.5e-2).

The agreement bounds allow near-ties to flip (2 of 40 images for the quantized variants), nothing more.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deepclf.runtime import load_runner
from deepclf.runtime.litert import LiteRTRunner

BOUNDS = {"fp32": (1e-4, 1.0), "fp16": (5e-3, 0.95), "dynamic": (3e-2, 0.90), "int8": (6e-2, 0.90)}


@pytest.mark.parametrize("variant", list(BOUNDS))
def test_variant_agrees_with_keras(variant: str, version_dir: Path, keras_reference) -> None:
    x, ref = keras_reference
    max_diff, min_agree = BOUNDS[variant]
    with load_runner(version_dir, variant=variant) as r:
        assert r.format == f"tflite-{variant}"
        out = r.run({"image": x})
    probs = out["probabilities"]
    assert probs.dtype == np.float32 and probs.shape == ref.shape
    assert np.abs(probs - ref).max() <= max_diff
    assert np.mean(probs.argmax(-1) == ref.argmax(-1)) >= min_agree
    # classes come from the model's own argmax (of the logits); they agree with its probabilities' argmax
    # except where int8's 1/256 steps tie two classes
    ties = np.sort(probs, -1)[:, -1] - np.sort(probs, -1)[:, -2] < 1 / 256 + 1e-6
    assert np.all((out["classes"] == probs.argmax(-1)) | ties)


def test_int8_runner_quantizes_pixels_to_uint8(version_dir: Path) -> None:
    with load_runner(version_dir, variant="int8") as r:
        assert isinstance(r, LiteRTRunner)
        assert r.input_dtype == "uint8"
        scale, zero = r.input_quantization
        assert scale == pytest.approx(1.0, abs=0.01) and zero == 0
        probs = r.predict(np.full((2, 64, 64, 3), 128.0, np.float32))
    # dequantized with scale 1/256: exact multiples of 1/256 in [0, 1)
    assert np.all((probs >= 0) & (probs < 1))
    np.testing.assert_allclose(probs * 256, np.round(probs * 256), atol=1e-4)


def test_report_parity_matches_an_independent_rerun(version_dir: Path, keras_reference) -> None:
    """The numbers convert wrote are the numbers the runtime reproduces."""
    import json

    x, ref = keras_reference
    report = json.loads((version_dir / "conversion_report.json").read_text())
    for variant in BOUNDS:
        with load_runner(version_dir, variant=variant) as r:
            probs = r.predict(x)
        assert report["variants"][variant]["parity"]["top1_agreement"] == pytest.approx(
            float(np.mean(probs.argmax(-1) == ref.argmax(-1)))
        )
        assert report["variants"][variant]["parity"]["max_abs_diff"] == pytest.approx(
            float(np.abs(probs - ref).max()), abs=1e-6
        )
