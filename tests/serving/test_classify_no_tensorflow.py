"""Classify on a deepclf TFLite model never imports TensorFlow, and a SavedModel without TensorFlow is a clear
error (each checked in a fresh interpreter where ``import tensorflow`` fails)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import sys
    sys.modules["tensorflow"] = None  # any `import tensorflow` now raises ImportError
    import numpy as np
    from deepclf.errors import ModelFormatError
    from deepclf.protocol.inference import input_from_json, serialize_input
    from deepclf.runtime import load_runner

    version_dir, photo, saved_model = sys.argv[1:4]
    import base64, json
    body = json.dumps({"examples": [{"image/encoded": {"b64": base64.b64encode(open(photo, "rb").read()).decode()}}]})
    _, inp = input_from_json(body, "classify")
    examples = np.array(serialize_input(inp), dtype=object)
    for variant in ("fp32", "int8"):
        with load_runner(version_dir, variant=variant) as r:
            out = r.run({"inputs": examples}, "classify_image_bytes")
            assert out["classes"].shape == out["scores"].shape == (1, r.manifest.num_classes)
    from deepclf.runtime.savedmodel_generic import GenericSavedModelRunner
    try:
        GenericSavedModelRunner(saved_model)
    except ModelFormatError as exc:
        assert "needs TensorFlow" in str(exc), exc
    else:
        raise AssertionError("loaded a SavedModel without TensorFlow")
    bad = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras") and sys.modules[m] is not None)
    print("LOADED:", bad)
    sys.exit(1 if bad else 0)
    """
)


def test_classify_without_tensorflow(shared_version_dir: Path, photos: list[Path], tfserving_models: Path) -> None:
    saved_model = tfserving_models / "half_plus_two" / "00000123"
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(shared_version_dir), str(photos[0]), str(saved_model)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "LOADED: []" in proc.stdout
