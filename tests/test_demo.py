"""`deepclf demo` end to end on real photos (small and brief), and its loud fallback when no photos exist."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from deepclf.demo import find_data


def test_demo_runs_end_to_end(mini_photos: Path, tmp_path: Path) -> None:
    pytest.importorskip("tensorflow")
    out = tmp_path / "demo"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "deepclf.cli",
            "demo",
            "--data",
            str(mini_photos),
            "--epochs",
            "1",
            "--img-size",
            "32",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    text = r.stdout
    for step in (
        "training both models",
        "converting both models",
        "serving flowers_augmented",
        "latency and accuracy parity",
        "done in",
    ):
        assert step in text, step
    assert text.count("identical") == 4  # 4 photos, REST tensor == gRPC image bytes, bit for bit
    for m in ("basic", "augmented"):
        assert (out / "runs" / m / "model.keras").is_file()
        assert (out / "models" / f"flowers_{m}" / "1" / "model_int8.tflite").is_file()
    assert "Traceback" not in r.stderr


def test_demo_falls_back_loudly_to_generated_data(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("DEEPCLF_DATA", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty_keras_home"))
    from deepclf.data import discover

    # The one stand-in: the download itself (no internet here). The real download path, checksum and extraction
    # are tested against a loopback HTTP server in tests/data/test_discover.py.
    def no_download(*a, **k):
        raise discover.DatasetError("could not download (no network in this test)")

    monkeypatch.setattr(discover, "download_flowers", no_download)
    data, real = find_data(None, tmp_path)
    assert not real
    assert sorted(p.name for p in data.iterdir()) == ["daisy", "dandelion", "roses", "sunflowers", "tulips"]
    assert len(list(data.glob("*/*.jpg"))) == 200
    err = capsys.readouterr().err
    assert "NO REAL FLOWER PHOTOS FOUND" in err and "--data PATH or DEEPCLF_DATA" in err
