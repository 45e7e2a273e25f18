"""Publishing: next version, refusal to overwrite, --force, and nothing published when a step fails midway."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deepclf.cli import main
from deepclf.convert import pipeline, warmup
from deepclf.convert.pipeline import ConvertOptions, convert_run
from deepclf.errors import UsageError
from deepclf.versions import version_numbers

# fp32 only and few images: these tests are about the folder, not the numbers
FAST = ["--variants", "fp32", "--parity-images", "8", "--calibration-steps", "4"]


def test_cli_versions_refuses_overwrite_and_forces(run_dir: Path, tmp_path: Path, capsys) -> None:
    models = tmp_path / "models"
    (models / "flowers" / "²").mkdir(parents=True)  # not a version (str.isdigit() is True, int() fails): skipped
    (models / "flowers" / ".tmp-7").mkdir()  # a hidden temporary folder: not a version either
    assert main(["convert", str(run_dir), "--out", str(models), *FAST]) == 0
    out = capsys.readouterr().out
    assert "tflite-fp32" in out and "savedmodel" in out and "published" in out
    assert main(["convert", str(run_dir), "--out", str(models), "--name", "flowers", *FAST]) == 0
    assert version_numbers(models / "flowers") == [1, 2]  # next integer version

    capsys.readouterr()
    report_before = (models / "flowers" / "1" / "conversion_report.json").read_bytes()
    assert main(["convert", str(run_dir), "--out", str(models), "--version", "1", *FAST]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "already exists" in err and "--force" in err and "Traceback" not in err
    assert (models / "flowers" / "1" / "conversion_report.json").read_bytes() == report_before

    assert main(["convert", str(run_dir), "--out", str(models), "--version", "1", "--force", *FAST]) == 0
    report = json.loads((models / "flowers" / "1" / "conversion_report.json").read_text())
    assert report["version"] == 1 and list(report["variants"]) == ["fp32"]
    assert sorted(p.name for p in (models / "flowers").iterdir()) == [".tmp-7", "1", "2", "²"]  # no leftovers


def test_failure_midway_publishes_nothing(run_dir: Path, tmp_path: Path, monkeypatch) -> None:
    """Fault injection: the warmup step (after the SavedModel and TFLite files are written) raises."""

    def boom(*args, **kwargs):
        raise RuntimeError("disk full (injected)")

    monkeypatch.setattr(warmup, "write_warmup", boom)
    models = tmp_path / "models"
    with pytest.raises(RuntimeError, match="injected"):
        convert_run(
            run_dir,
            models,
            ConvertOptions(variants=["fp32"], parity_images=8, calibration_steps=4),
            log=lambda _m: None,
        )
    assert list((models / "flowers").iterdir()) == []  # no version folder, no hidden partial folder


def test_agreement_gate_names_each_failing_variant() -> None:
    """The gate convert applies before publishing (the publish-nothing path itself is tested above)."""
    import numpy as np

    ref = np.eye(5, dtype=np.float32)[[0, 1, 2, 3, 4] * 4]  # 20 confident reference rows
    good = ref * 0.9 + 0.02  # same argmax everywhere
    bad = np.roll(ref, 1, axis=1)  # every argmax shifted: a broken conversion
    stats = {"fp32": pipeline.parity_stats(ref, good, None), "int8": pipeline.parity_stats(ref, bad, [0] * 20)}
    assert stats["fp32"]["top1_agreement"] == 1.0 and stats["int8"]["top1_agreement"] == 0.0
    assert stats["fp32"]["max_abs_diff"] == pytest.approx(0.08)
    assert stats["int8"]["accuracy"] == pytest.approx(0.2)
    failures = pipeline.agreement_failures(stats, 0.9)
    assert len(failures) == 1 and failures[0].startswith("int8 agrees with Keras on 0.0% of 20 images")
    assert pipeline.agreement_failures(stats, 0.0) == []


def test_bad_options_and_missing_data_are_usage_errors(run_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--min-agreement"):
        convert_run(run_dir, tmp_path, ConvertOptions(min_agreement=1.5))
    with pytest.raises(UsageError, match="--variants"):
        convert_run(run_dir, tmp_path, ConvertOptions(variants=["int4"]))
    with pytest.raises(UsageError, match="--version must be a positive integer up to 9223372036854775807"):
        convert_run(run_dir, tmp_path, ConvertOptions(version=2**63))  # TF Serving's versions are int64
    with pytest.raises(UsageError, match="--data"):
        convert_run(run_dir, tmp_path, ConvertOptions(data_dir=tmp_path / "nope"))
    with pytest.raises(UsageError, match="not a training run"):
        convert_run(tmp_path, tmp_path / "models")
