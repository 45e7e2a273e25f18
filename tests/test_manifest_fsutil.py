"""The manifest round-trips and rejects bad files; atomic writes and folder publishing lose nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from deepclf.errors import ModelFormatError, UsageError
from deepclf.fsutil import atomic_write_json, publish_dir
from deepclf.manifest import SUPPORTED_INPUT, InputSpec, Manifest


def test_manifest_round_trip(tmp_path: Path) -> None:
    m = Manifest(
        labels=["a", "b"],
        input=InputSpec(64, 48),
        architecture="basic",
        variants={"int8": {"file": "model_int8.tflite"}},
    )
    m.save(tmp_path)
    back = Manifest.load(tmp_path / "manifest.json")
    assert back.to_dict() == m.to_dict()
    assert back.input.size == (64, 48) and back.variant_file("int8") == "model_int8.tflite"
    assert Manifest.load(tmp_path / "model.tflite").labels == ["a", "b"]  # found beside a model file


def test_manifest_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelFormatError, match=r"no manifest\.json"):
        Manifest.load(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ModelFormatError, match="not valid JSON"):
        Manifest.load(tmp_path)
    with pytest.raises(ModelFormatError, match="unique"):
        Manifest(labels=["a", "a"])
    with pytest.raises(ModelFormatError, match="unknown TFLite variant 'int4'"):
        Manifest(labels=["a", "b"]).variant_file("int4")


@pytest.mark.parametrize(
    ("field", "value", "supported"),
    [
        ("resize", "nearest", "'bilinear'"),
        ("resize", "area", "'bilinear'"),
        ("color_mode", "grayscale", "'rgb'"),
        ("color_mode", "RGB", "'rgb'"),
        ("crop_to_aspect_ratio", True, "False"),
        ("crop_to_aspect_ratio", "false", "False"),  # a string is not JSON's false
        ("dtype", "uint8", "'float32'"),
    ],
)
def test_manifest_input_settings_the_code_cannot_honour_are_refused_at_load(
    tmp_path: Path, field: str, value: object, supported: str
) -> None:
    doc = Manifest(labels=["a", "b"]).to_dict()
    doc["input"][field] = value
    (tmp_path / "manifest.json").write_text(json.dumps(doc))
    expected = (
        f"{tmp_path / 'manifest.json'}: input.{field} is {value!r}; this version of deepclf implements only {supported}"
    )
    with pytest.raises(ModelFormatError) as info:
        Manifest.load(tmp_path)
    assert str(info.value).startswith(expected)
    with pytest.raises(ModelFormatError, match=f"input.{field} is"):
        kwargs: dict[str, Any] = {field: value}
        InputSpec(**kwargs)  # built in code: refused the same way


def test_manifest_input_settings_that_are_implemented_load(tmp_path: Path) -> None:
    doc = Manifest(labels=["a", "b"]).to_dict()
    doc["input"].update(color_mode="rgb", resize="bilinear", crop_to_aspect_ratio=False, dtype="float32")
    (tmp_path / "manifest.json").write_text(json.dumps(doc))
    assert Manifest.load(tmp_path).input == InputSpec()
    for key in SUPPORTED_INPUT:  # manifests that do not declare them mean the implemented defaults
        del doc["input"][key]
    (tmp_path / "manifest.json").write_text(json.dumps(doc))
    assert Manifest.load(tmp_path).input == InputSpec()


def test_preprocessing_implements_every_supported_resize_and_takes_it_from_the_spec() -> None:
    import numpy as np

    from deepclf import preprocessing

    assert set(preprocessing.RESIZE_METHODS) == set(SUPPORTED_INPUT["resize"])
    img = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    spec = InputSpec(height=20, width=30)
    out = preprocessing.preprocess(img, spec)
    assert out.dtype == np.float32 and out.shape == (20, 30, 3)
    assert np.array_equal(out, preprocessing.resize_bilinear(img, (20, 30)))


def test_publish_dir_is_atomic(tmp_path: Path) -> None:
    final = tmp_path / "models" / "flowers" / "1"
    with pytest.raises(RuntimeError), publish_dir(final) as tmp:
        (tmp / "saved_model.pb").write_bytes(b"half")
        raise RuntimeError("export failed midway")
    assert not final.exists()
    assert list(final.parent.iterdir()) == []  # no partial folder left behind
    with publish_dir(final) as tmp:
        (tmp / "saved_model.pb").write_bytes(b"whole")
    assert (final / "saved_model.pb").read_bytes() == b"whole"
    with pytest.raises(UsageError, match="refusing to overwrite"), publish_dir(final):
        pass
    with publish_dir(final, overwrite=True) as tmp:
        (tmp / "saved_model.pb").write_bytes(b"new")
    assert (final / "saved_model.pb").read_bytes() == b"new"


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_published_files_and_folders_get_the_modes_a_plain_write_would(tmp_path: Path, umask: int) -> None:
    """Not tempfile's 0600/0700: a model folder converted on a workstation and copied to a board must stay readable
    by the service user there (deployment/systemd; found by tests/arm64 running the unit's user: PermissionError
    on manifest.json)."""
    import os

    from deepclf.fsutil import atomic_output_file

    old = os.umask(umask)
    try:
        with publish_dir(tmp_path / "models" / "1") as tmp:
            atomic_write_json(tmp / "manifest.json", {"a": 1})
            with atomic_output_file(tmp / "plot.png") as out:
                out.write_bytes(b"png")
    finally:
        os.umask(old)
    version = tmp_path / "models" / "1"
    assert version.stat().st_mode & 0o777 == 0o777 & ~umask
    for name in ("manifest.json", "plot.png"):
        assert (version / name).stat().st_mode & 0o777 == 0o666 & ~umask, name


def test_atomic_write_keeps_old_file_on_failure(tmp_path: Path) -> None:
    p = tmp_path / "r.json"
    atomic_write_json(p, {"a": 1})
    with pytest.raises(TypeError):
        atomic_write_json(p, {"a": object()})
    assert p.read_text().strip() == '{\n  "a": 1\n}'
    assert [x.name for x in tmp_path.iterdir()] == ["r.json"]


def test_tensorflow_startup_noise_is_filtered_but_real_errors_pass(capfd) -> None:
    import os

    from deepclf.errors import _quiet_native_stderr

    with _quiet_native_stderr():  # native code writes straight to fd 2, as TensorFlow's C++ logging does
        os.write(2, b"I0000 00:00:1 port.cc:153] oneDNN custom operations are on.\n")
        os.write(2, b"E0000 00:00:1 cuda_platform.cc:52] failed call to cuInit: UNKNOWN ERROR (303)\n")
        os.write(2, b"E0000 00:00:1 something really broke\n")
    err = capfd.readouterr().err
    assert err == "E0000 00:00:1 something really broke\n"
