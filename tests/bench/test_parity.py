"""Accuracy parity on validation images: formats agree, an injected disagreement is flagged, failures are reported."""

from __future__ import annotations

import json

import numpy as np
import pytest

from deepclf.bench.parity import ParityImages, Thresholds, confusion_matrix, run_parity
from deepclf.bench.specs import parse_target
from deepclf.bench.targets import FunctionTarget, Target
from deepclf.cli import main
from deepclf.errors import UsageError


@pytest.fixture(scope="module")
def parity_report(bench_run, bench_version, gen_photos, closed_port):
    fp32 = parse_target(f"tflite:{bench_version}?variant=fp32")
    fp32.open()
    labels = fp32.labels

    def permuted(batch):  # a broken deployment: class columns rotated by one
        return np.roll(fp32.predict(batch), 1, axis=1)

    def served_exact(batch):  # a faithful server: the same runner, same tensor
        return fp32.predict(batch)

    def served_off(batch):  # a server whose numbers drift by one float32 step (not the same computation)
        p = fp32.predict(batch)
        return np.nextafter(p, np.float32(2.0))

    targets: list[str | Target] = [
        f"keras:{bench_run}",
        f"savedmodel:{bench_version}",
        fp32,
        f"tflite:{bench_version}?variant=int8",
        f"tflite:{bench_version}?variant=fp16&send=bytes",
        FunctionTarget("permuted", permuted, kind="quantized", labels=labels),
        FunctionTarget("served-exact", served_exact, kind="served"),
        FunctionTarget("served-off", served_off, kind="served"),
        f"tflite:{bench_version}/nope",  # cannot load
        f"grpc://127.0.0.1:{closed_port}/flowers",  # down (or no client yet): reported either way
    ]
    data = ParityImages.from_folder(gen_photos)  # the validation split: 40 generated JPEGs
    report = run_parity(targets, data, thresholds=Thresholds(quantized_agreement=0.9))
    fp32.close()
    return report


def test_formats_agree_with_keras(parity_report):
    by = {t.name: t for t in parity_report.targets}
    assert parity_report.reference == "keras"
    assert by["keras"].passed is None and by["keras"].agreement == 1.0
    for name in ("savedmodel", "tflite-fp32"):
        assert by[name].status == "ok" and by[name].passed, by[name].checks
        assert by[name].max_abs_diff <= 1e-3
    assert by["tflite-int8"].images == 40 and by["tflite-int8"].agreement >= 0.9
    assert by["tflite-fp16-bytes"].status == "ok"  # bytes decoded by the runner, same contract
    for t in parity_report.targets:
        if t.status == "ok":
            cm = np.asarray(t.confusion)
            assert cm.sum() == 40 and np.trace(cm) == round(t.accuracy * 40)


def test_injected_disagreement_is_flagged(parity_report):
    by = {t.name: t for t in parity_report.targets}
    bad = by["permuted"]
    assert bad.passed is False
    assert bad.agreement < 0.5
    assert any(c.startswith("FAIL: top-1 agreement") for c in bad.checks)
    assert parity_report.passed is False


def test_served_endpoints_must_match_their_in_process_twin_exactly(parity_report):
    by = {t.name: t for t in parity_report.targets}
    assert by["served-exact"].passed is True
    assert by["served-exact"].compared_with == "tflite-fp32" and by["served-exact"].max_abs_diff == 0.0
    off = by["served-off"]
    assert off.passed is False and 0 < off.max_abs_diff < 1e-6
    assert "must be <= 0" in off.checks[0]


def test_failing_targets_are_reported_not_fatal(parity_report):
    failed = [t for t in parity_report.targets if t.status == "failed"]
    assert len(failed) == 2
    assert all(t.error for t in failed)
    text = parity_report.table()
    assert "FAILED" in text and "overall: FAIL" in text


def test_report_files(parity_report, tmp_path):
    paths = parity_report.write(tmp_path, plots=True)
    assert {p.name for p in paths} == {"parity.json", "parity.csv", "parity_confusion.png"}
    data = json.loads((tmp_path / "parity.json").read_text())
    assert data["passed"] is False and data["images"]["count"] == 40
    assert data["thresholds"]["served_tolerance"] == 0.0


def test_cli_exit_status_follows_the_verdict(bench_version, gen_photos, tmp_path, capsys):
    ok = main(
        [
            "bench",
            "parity",
            f"tflite:{bench_version}?variant=fp32",
            f"tflite:{bench_version}?variant=int8",
            "--images",
            str(gen_photos),
            "--limit",
            "12",
            "--agreement",
            "0.5",
            "--accuracy-ratio",
            "0.5",
            "--out",
            str(tmp_path),
        ]
    )
    out = capsys.readouterr().out
    assert ok == 0, out
    assert "reference: tflite-fp32" in out and "overall: PASS" in out
    assert (tmp_path / "parity.csv").is_file()
    bad = main(
        [
            "bench",
            "parity",
            f"tflite:{bench_version}",
            f"tflite:{tmp_path}/missing",
            "--images",
            str(gen_photos),
            "--limit",
            "4",
        ]
    )
    assert bad == 1
    assert main(["bench", "parity", f"tflite:{bench_version}", "--pair", "nonsense"]) == 2


def test_confusion_matrix_and_missing_images():
    cm = confusion_matrix(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 0]), 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]
    with pytest.raises(UsageError, match="no images to compare on"):
        run_parity([FunctionTarget("f", lambda b: b.tensor[:, 0, 0, :])])
