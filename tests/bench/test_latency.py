"""``run_latency`` and ``deepclf bench latency`` end to end: real models, a dead server, files and plots written."""

from __future__ import annotations

import csv
import json

import pytest

from deepclf.bench.env import environment
from deepclf.bench.latency import LatencyOptions, run_latency, sample_images
from deepclf.cli import main
from deepclf.errors import UsageError

PNG = b"\x89PNG\r\n\x1a\n"


def test_report_with_working_and_failing_targets(bench_version, closed_port, tmp_path):
    specs = [
        f"tflite:{bench_version}?variant=fp32&threads=1",
        f"litert-raw:{bench_version}?variant=int8&threads=1",
        f"tflite:{bench_version}?variant=int8&send=bytes",
        f"tflite:{tmp_path / 'missing'}",  # cannot load
        f"rest://127.0.0.1:{closed_port}/flowers?codec=stdlib",  # server down
    ]
    opts = LatencyOptions(
        scenarios=("single-stream", "offline", "concurrency"),
        duration=0.3,
        warmup=1,
        batch_size=4,
        concurrency=(1, 2),
        quiet=True,
    )
    report = run_latency(specs, opts, images=sample_images(n=2))
    assert [t.status for t in report.targets] == ["ok", "ok", "ok", "failed", "failed"]
    missing = report.targets[3]
    assert missing.error and "cannot open" in missing.error and "not found" in missing.error
    down = report.targets[4]
    assert down.error and "every request failed" in down.error and "Connection" in down.error
    for t in report.targets[:3]:
        assert [r.scenario for r in t.results] == ["single-stream", "offline", "concurrency", "concurrency"]
        assert all(r.count > 0 and r.errors == 0 for r in t.results)
        assert t.info["model_bytes"] > 0
    assert report.targets[0].info["delegate"].startswith("XNNPACK")
    assert report.targets[1].info["variant"] == "int8"

    table = report.table()
    assert "tflite-fp32-t1" in table and "FAILED" in table and "p99 ms" in table
    paths = report.write(tmp_path / "out", plots=True)
    names = {p.name for p in paths}
    assert {
        "latency.json",
        "latency.csv",
        "latency_distribution.png",
        "latency_concurrency.png",
        "size_latency_accuracy.png",
    } <= names
    for p in paths:
        if p.suffix == ".png":
            assert p.read_bytes().startswith(PNG)
    data = json.loads((tmp_path / "out" / "latency.json").read_text())
    assert data["environment"]["cpu"]["logical_cores"] >= 1
    first = data["targets"][0]["results"][0]
    assert len(first["latencies_ms"]) == first["count"]
    with open(tmp_path / "out" / "latency.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 * 4 + 2 and {"p50_ms", "p99_ms", "p999_ms", "client_cpu"} <= set(rows[0])
    assert not list((tmp_path / "out").glob(".*"))  # atomic writes leave no temporaries behind


def test_in_process_keras_and_savedmodel(bench_run, bench_version):
    report = run_latency(
        [f"keras:{bench_run}", f"savedmodel:{bench_version}"],
        LatencyOptions(duration=0.3, warmup=1, quiet=True),
        images=sample_images(n=2),
    )
    assert [t.status for t in report.targets] == ["ok", "ok"], [t.error for t in report.targets]
    assert report.targets[0].info["format"] == "keras" and report.targets[0].results[0].count > 0


def test_cli_writes_reports_and_rejects_bad_input(bench_version, tmp_path, capsys):
    out = tmp_path / "res"
    rc = main(
        [
            "bench",
            "latency",
            f"tflite:{bench_version}?variant=dynamic",
            "--duration",
            "0.3",
            "--warmup",
            "1",
            "--scenario",
            "server",
            "--rate",
            "40",
            "--quiet",
            "--out",
            str(out),
        ]
    )
    captured = capsys.readouterr().out
    assert rc == 0
    assert "tflite-dynamic" in captured and "server: rate 40.0/s" in captured
    assert (out / "latency.json").is_file() and (out / "latency.csv").is_file()

    assert main(["bench", "latency", "nonsense", "--quiet"]) == 2
    assert "error: target spec must look like SCHEME:LOCATION" in capsys.readouterr().err
    assert main(["bench", "latency", f"tflite:{tmp_path}/nope", "--duration", "0.2", "--quiet"]) == 1
    with pytest.raises(SystemExit):
        main(["bench", "latency", "tflite:x", "--concurrency", "0,1"])


def test_options_are_checked():
    with pytest.raises(UsageError, match="unknown scenario"):
        LatencyOptions(scenarios=("nope",))
    with pytest.raises(UsageError, match="concurrency"):
        LatencyOptions(concurrency=(0,))


def test_environment_lists_cpu_and_libraries():
    env = environment()
    assert env["cpu"]["logical_cores"] >= 1 and isinstance(env["cpu"]["flags"], list)
    assert "numpy" in env["libraries"] and "ai-edge-litert" in env["libraries"]
