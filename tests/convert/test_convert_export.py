"""The published version folder: SavedModel signatures, in-graph decoding, warmup file, manifest and report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from deepclf.manifest import TFLITE_FILES, Manifest
from deepclf.runtime.base import standard_signatures


@pytest.fixture(scope="module")
def loaded(version_dir: Path):
    import tensorflow as tf

    return tf.saved_model.load(str(version_dir))


def test_version_folder_holds_every_artifact(version_dir: Path) -> None:
    names = {p.name for p in version_dir.iterdir()}
    assert {"saved_model.pb", "variables", "assets.extra", "manifest.json", "conversion_report.json"} <= names
    assert set(TFLITE_FILES.values()) <= names
    # publish_dir leaves no hidden temporary sibling behind
    assert [p.name for p in version_dir.parent.iterdir()] == ["1"]


def test_signatures_have_stable_names_dtypes_shapes(loaded, version_dir: Path) -> None:
    from deepclf.convert.export import signature_specs

    manifest = Manifest.load(version_dir)
    got = signature_specs(loaded)
    assert got["serving_default"] == standard_signatures(manifest)["serving_default"]
    assert got["predict_image_bytes"] == standard_signatures(manifest)["predict_image_bytes"]
    # spelled out, so a change in standard_signatures cannot silently change the contract
    sd = got["serving_default"]
    assert (sd.inputs["image"].dtype, sd.inputs["image"].shape) == ("float32", (None, 64, 64, 3))
    assert {k: (v.dtype, v.shape) for k, v in sd.outputs.items()} == {
        "probabilities": ("float32", (None, 5)),
        "classes": ("int64", (None,)),
        "labels": ("string", (None,)),
    }
    assert got["predict_image_bytes"].inputs["image_bytes"].dtype == "string"


def test_float_signature_matches_keras(loaded, keras_reference, version_dir: Path) -> None:
    import tensorflow as tf

    x, ref = keras_reference
    out = loaded.signatures["serving_default"](image=tf.constant(x))
    probs = out["probabilities"].numpy()
    assert np.abs(probs - ref).max() <= 1e-5  # same float32 graph: op-order noise only
    np.testing.assert_array_equal(out["classes"].numpy(), ref.argmax(-1))
    labels = Manifest.load(version_dir).labels
    assert [b.decode() for b in out["labels"].numpy()] == [labels[i] for i in ref.argmax(-1)]


@pytest.fixture(params=["generated", "real"])
def jpeg_files(request, validation_files) -> list[Path]:
    """12 JPEG files: the generated validation images (anywhere), and real photos (when the shared data is here)."""
    if request.param == "generated":
        return validation_files[:12]
    mini = request.getfixturevalue("mini_photos")
    return sorted(mini.glob("*/*.jpg"))[::17][:12]  # every class, camera JPEGs of many sizes


def test_bytes_signature_matches_float_signature_on_jpegs(loaded, jpeg_files) -> None:
    """In-graph decode+resize (preprocessing_tf) vs deepclf.preprocessing: within 1e-4 in probability."""
    import tensorflow as tf

    from deepclf.preprocessing import preprocess_batch

    files = jpeg_files
    raw = [f.read_bytes() for f in files]
    assert len(raw) == 12 and all(r[:2] == b"\xff\xd8" for r in raw)  # JPEG files
    by_bytes = loaded.signatures["predict_image_bytes"](image_bytes=tf.constant(raw))
    by_float = loaded.signatures["serving_default"](image=tf.constant(preprocess_batch(files, (64, 64))))
    diff = np.abs(by_bytes["probabilities"].numpy() - by_float["probabilities"].numpy()).max()
    assert diff <= 1e-4, diff
    np.testing.assert_array_equal(by_bytes["classes"].numpy(), by_float["classes"].numpy())
    np.testing.assert_array_equal(by_bytes["labels"].numpy(), by_float["labels"].numpy())


def test_warmup_file_parses_into_prediction_logs_the_model_accepts(loaded, version_dir: Path) -> None:
    import tensorflow as tf

    from deepclf.convert.warmup import read_warmup, warmup_path

    assert warmup_path(version_dir) == version_dir / "assets.extra" / "tf_serving_warmup_requests"
    logs = read_warmup(version_dir)
    assert len(logs) == 4  # 3 image_bytes requests + 1 float request
    sigs = [log.predict_log.request.model_spec.signature_name for log in logs]
    assert sigs == ["predict_image_bytes"] * 3 + ["serving_default"]
    for log in logs:
        req = log.predict_log.request
        assert req.model_spec.name == "flowers"
        ((name, proto),) = req.inputs.items()
        out = loaded.signatures[req.model_spec.signature_name](**{name: tf.constant(tf.make_ndarray(proto))})
        assert out["probabilities"].shape == (1, 5)


def test_manifest_lists_variants_with_quantization(version_dir: Path) -> None:
    m = Manifest.load(version_dir)
    assert m.format == "savedmodel" and m.name == "flowers" and len(m.labels) == 5
    assert set(m.variants) == set(TFLITE_FILES)
    for variant, info in m.variants.items():
        assert info["file"] == TFLITE_FILES[variant]
        assert info["size_bytes"] == (version_dir / info["file"]).stat().st_size
    q = m.variants["int8"]["quantization"]
    assert q["inputs"]["image"]["dtype"] == "uint8"
    # calibrated on 0..255 pixels: uint8 maps onto pixels almost one to one
    assert q["inputs"]["image"]["scale"] == pytest.approx(1.0, abs=0.01) and q["inputs"]["image"]["zero_point"] == 0
    assert q["outputs"]["probabilities"] == {"dtype": "uint8", "scale": 1 / 256, "zero_point": 0}
    assert q["outputs"]["classes"]["dtype"] == "int64"
    assert m.variants["fp32"]["quantization"]["inputs"]["image"] == {"dtype": "float32"}


def test_report_sizes_ratios_and_parity(version_dir: Path) -> None:
    report = json.loads((version_dir / "conversion_report.json").read_text())
    fp32 = report["variants"]["fp32"]["size_bytes"]
    assert report["variants"]["fp32"]["ratio_to_fp32"] == 1.0
    # weights dominate this model: fp16 halves it, int8 quarters it (give or take the graph)
    assert 0.45 < report["variants"]["fp16"]["ratio_to_fp32"] < 0.56
    assert 0.2 < report["variants"]["dynamic"]["ratio_to_fp32"] < 0.3
    assert 0.2 < report["variants"]["int8"]["ratio_to_fp32"] < 0.3
    assert report["savedmodel"]["size_bytes"] > fp32
    for e in report["variants"].values():
        assert e["seconds"] > 0 and e["parity"]["images"] == 40
        # published, so every variant passed the gate the report records (modelkit converts with 0.8)
        assert report["min_agreement"] == 0.8 and e["parity"]["top1_agreement"] >= report["min_agreement"]
    assert report["savedmodel"]["parity"]["max_abs_diff"] <= 1e-5
