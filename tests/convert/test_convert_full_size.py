"""The tutorial's real input size (180x180): a full conversion of all variants, checked like the 64x64 one."""

from __future__ import annotations

from pathlib import Path

import modelkit
import numpy as np
import pytest

from deepclf.convert.pipeline import ConvertOptions, convert_run
from deepclf.runtime import load_runner


@pytest.mark.slow
def test_convert_at_180x180(tmp_path: Path, gen_photos: Path, validation_files) -> None:
    run = modelkit.make_run(tmp_path / "run", gen_photos, img_size=(180, 180), epochs=3)
    result = convert_run(
        run,
        tmp_path / "models",
        ConvertOptions(parity_images=40, calibration_steps=50, min_agreement=0.8),
        log=lambda _m: None,
    )
    report = result.report
    assert report["input"] == [180, 180, 3]
    assert report["variants"]["fp32"]["parity"]["max_abs_diff"] <= 1e-4
    assert report["variants"]["fp32"]["parity"]["top1_agreement"] == 1.0
    # 3.99M parameters: fp32 ~16 MB, int8 ~4 MB
    assert 15e6 < report["variants"]["fp32"]["size_bytes"] < 17e6
    assert 0.2 < report["variants"]["int8"]["ratio_to_fp32"] < 0.3
    with load_runner(result.version_dir, variant="int8") as r:
        out = r.run(
            {"image_bytes": np.array([f.read_bytes() for f in validation_files[:4]], dtype=object)},
            "predict_image_bytes",
        )
    assert out["probabilities"].shape == (4, 5)
