"""``quick_report`` (what ``make demo`` prints): discovers every format per model, short and textual."""

from __future__ import annotations

import pytest

from deepclf.bench.quick import _groups, discover_targets, quick_report
from deepclf.errors import UsageError


def test_discovers_every_format(bench_run, bench_version):
    specs = discover_targets([bench_run, bench_version.parent])  # a run folder and a models/<name> base folder
    assert specs[0] == f"keras:{bench_run}"
    assert f"savedmodel:{bench_version}" in specs
    for v in ("fp32", "fp16", "dynamic", "int8"):
        assert f"tflite:{bench_version}?variant={v}" in specs
    with pytest.raises(UsageError, match="no such model"):
        discover_targets([bench_version / "absent"])


def test_a_version_folder_brings_its_keras_run_as_reference(bench_run, bench_version):
    groups = _groups([bench_version.parent], None, None)
    assert list(groups.values()) == [[bench_run, bench_version]]
    # the run and its version given separately are one model, not two
    assert len(_groups([bench_run, bench_version], None, None)) == 1
    named = _groups([], {"basic": bench_run}, {"basic": bench_version})
    assert named == {"basic": [bench_run, bench_version]}


def test_quick_report_text(bench_run, bench_version, gen_photos, closed_port, tmp_path):
    text = quick_report(
        runs={"basic": bench_run},
        versions={"basic": bench_version},
        server_url=f"http://127.0.0.1:{closed_port}",
        images=gen_photos,
        duration=0.2,
        parity_images=10,
        out_dir=tmp_path,
    )
    assert "== latency" in text and "== parity on 10 validation images" in text
    for name in ("keras", "savedmodel", "tflite-int8", "rest-tensor"):
        assert name in text
    assert "FAILED" in text  # the server on a closed port
    assert (tmp_path / "quick_latency.json").is_file() and (tmp_path / "quick_parity.json").is_file()
    with pytest.raises(UsageError, match="at least one model"):
        quick_report()
